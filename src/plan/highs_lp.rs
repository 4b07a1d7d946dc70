//! A growing and shrinking LP kept in one HiGHS instance, for the decomposition's master.
//!
//! The `highs` crate builds a model and solves it, but cannot delete columns or read the
//! basis, and its column handles cannot be renumbered. A column-generation master needs all
//! three: plans that have left the solution are deleted (so the simplex stops carrying
//! them) while the basis of the last solve is kept, which HiGHS does as long as no basic
//! column is deleted. This is the few calls of HiGHS's C API that takes, behind a safe type,
//! and the one module of the crate allowed `unsafe`.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::raw::c_void;

use highs_sys::{
    HighsInt, Highs_addCols, Highs_addRows, Highs_create, Highs_deleteColsByMask, Highs_destroy,
    Highs_getBasis, Highs_getIntInfoValue, Highs_getModelStatus, Highs_getNumCol, Highs_getNumRow,
    Highs_getObjectiveValue, Highs_getSolution, Highs_run, Highs_setBoolOptionValue,
    Highs_setIntOptionValue, Highs_setStringOptionValue, MODEL_STATUS_OPTIMAL, STATUS_ERROR,
};

/// HiGHS's basis status of a basic variable (`HighsBasisStatus::kBasic`).
const BASIC: HighsInt = 1;

/// A minimisation LP in HiGHS whose rows and columns are addressed by position.
pub struct HighsLp {
    ptr: *mut c_void,
}

/// A row to add: `lower ≤ Σ value · column ≤ upper` over its entries (column, value).
pub struct NewRow {
    pub lower: f64,
    pub upper: f64,
    pub entries: Vec<(usize, f64)>,
}

/// What one solve left: objective, column values, their reduced costs and row duals.
pub struct LpSolution {
    pub objective: f64,
    pub columns: Vec<f64>,
    pub col_duals: Vec<f64>,
    pub row_duals: Vec<f64>,
    pub iterations: i64,
}

impl HighsLp {
    /// A quiet instance solving by simplex without presolve (which would discard the basis
    /// that each re-solve starts from).
    pub fn new() -> Self {
        // SAFETY: Highs_create has no preconditions; the pointer is destroyed in Drop.
        let lp = HighsLp {
            ptr: unsafe { Highs_create() },
        };
        lp.set_bool("output_flag", false);
        lp.set_string("presolve", "off");
        lp.set_string("solver", "simplex");
        lp
    }

    fn set_bool(&self, name: &str, value: bool) {
        let name = CString::new(name).unwrap_or_default();
        // SAFETY: valid instance and NUL-terminated name; an unknown option only warns.
        unsafe { Highs_setBoolOptionValue(self.ptr, name.as_ptr(), HighsInt::from(value)) };
    }

    fn set_string(&self, name: &str, value: &str) {
        let (name, value) = (
            CString::new(name).unwrap_or_default(),
            CString::new(value).unwrap_or_default(),
        );
        // SAFETY: as above.
        unsafe { Highs_setStringOptionValue(self.ptr, name.as_ptr(), value.as_ptr()) };
    }

    /// HiGHS's `simplex_strategy`: 1 dual, 4 primal.
    pub fn set_simplex_strategy(&mut self, strategy: i32) {
        let name = CString::new("simplex_strategy").unwrap_or_default();
        // SAFETY: as above.
        unsafe { Highs_setIntOptionValue(self.ptr, name.as_ptr(), strategy) };
    }

    pub fn num_cols(&self) -> usize {
        // SAFETY: valid instance.
        unsafe { Highs_getNumCol(self.ptr) as usize }
    }

    pub fn num_rows(&self) -> usize {
        // SAFETY: valid instance.
        unsafe { Highs_getNumRow(self.ptr) as usize }
    }

    /// Adds the rows `lower ≤ Σ value · column ≤ upper`, all in one call (HiGHS rebuilds
    /// its column-wise matrix on every call that adds rows); returns the first new row's
    /// position.
    pub fn add_rows(&mut self, rows: &[NewRow]) -> usize {
        let first = self.num_rows();
        if rows.is_empty() {
            return first;
        }
        let (lower, upper): (Vec<f64>, Vec<f64>) = rows.iter().map(|r| (r.lower, r.upper)).unzip();
        let (starts, index, value) = compressed(rows.iter().map(|r| r.entries.as_slice()));
        // SAFETY: `lower`/`upper`/`starts` hold one entry per row, `index`/`value` one per
        // nonzero; HiGHS copies them.
        unsafe {
            Highs_addRows(
                self.ptr,
                rows.len() as HighsInt,
                lower.as_ptr(),
                upper.as_ptr(),
                index.len() as HighsInt,
                starts.as_ptr(),
                index.as_ptr(),
                value.as_ptr(),
            )
        };
        first
    }

    /// Adds columns `0 ≤ x ≤ upper` of cost `c` with entries (row, value), in one call;
    /// returns the first new column's position.
    pub fn add_cols(&mut self, cols: &[(f64, Vec<(usize, f64)>)], upper: f64) -> usize {
        let first = self.num_cols();
        if cols.is_empty() {
            return first;
        }
        let cost: Vec<f64> = cols.iter().map(|c| c.0).collect();
        let (lower, upper) = (vec![0.0; cols.len()], vec![upper; cols.len()]);
        let (starts, index, value) = compressed(cols.iter().map(|c| c.1.as_slice()));
        // SAFETY: as in add_rows, per column.
        unsafe {
            Highs_addCols(
                self.ptr,
                cols.len() as HighsInt,
                cost.as_ptr(),
                lower.as_ptr(),
                upper.as_ptr(),
                index.len() as HighsInt,
                starts.as_ptr(),
                index.as_ptr(),
                value.as_ptr(),
            )
        };
        first
    }

    /// Whether each column is basic in the last solve's basis (all false before a solve).
    pub fn basic_columns(&self) -> Vec<bool> {
        let mut cols = vec![0 as HighsInt; self.num_cols()];
        let mut rows = vec![0 as HighsInt; self.num_rows()];
        // SAFETY: both arrays are sized to the model's columns and rows.
        let status = unsafe { Highs_getBasis(self.ptr, cols.as_mut_ptr(), rows.as_mut_ptr()) };
        cols.iter()
            .map(|s| status != STATUS_ERROR && *s == BASIC)
            .collect()
    }

    /// Deletes the columns marked in `delete`; returns each old column's new position.
    pub fn delete_cols(&mut self, delete: &[bool]) -> Vec<Option<usize>> {
        let mut mask: Vec<HighsInt> = delete.iter().map(|d| HighsInt::from(*d)).collect();
        mask.resize(self.num_cols(), 0);
        // SAFETY: the mask has one entry per column; HiGHS overwrites it with the new
        // position of each kept column and −1 for a deleted one.
        unsafe { Highs_deleteColsByMask(self.ptr, mask.as_mut_ptr()) };
        mask.iter().map(|m| usize::try_from(*m).ok()).collect()
    }

    /// Solves from the current basis. `Err` names HiGHS's status unless it is optimal.
    pub fn solve(&mut self) -> Result<LpSolution, String> {
        // SAFETY: valid instance; Highs_run reports failure through its return value and
        // the model status read below.
        unsafe { Highs_run(self.ptr) };
        // SAFETY: valid instance.
        let status = unsafe { Highs_getModelStatus(self.ptr) };
        if status != MODEL_STATUS_OPTIMAL {
            return Err(format!("HiGHS model status {status}"));
        }
        let (n, m) = (self.num_cols(), self.num_rows());
        let (mut columns, mut col_duals) = (vec![0.0; n], vec![0.0; n]);
        let (mut row_values, mut row_duals) = (vec![0.0; m], vec![0.0; m]);
        let mut iterations: HighsInt = 0;
        let info = CString::new("simplex_iteration_count").unwrap_or_default();
        // SAFETY: arrays sized to the model; the info name is NUL-terminated.
        let objective = unsafe {
            Highs_getSolution(
                self.ptr,
                columns.as_mut_ptr(),
                col_duals.as_mut_ptr(),
                row_values.as_mut_ptr(),
                row_duals.as_mut_ptr(),
            );
            Highs_getIntInfoValue(self.ptr, info.as_ptr(), &mut iterations);
            Highs_getObjectiveValue(self.ptr)
        };
        Ok(LpSolution {
            objective,
            columns,
            col_duals,
            row_duals,
            iterations: i64::from(iterations),
        })
    }
}

impl Default for HighsLp {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for HighsLp {
    fn drop(&mut self) {
        // SAFETY: created by Highs_create, destroyed once.
        unsafe { Highs_destroy(self.ptr) };
    }
}

/// Vectors in HiGHS's compressed form: start of each, then indices and values.
fn compressed<'a>(
    vectors: impl Iterator<Item = &'a [(usize, f64)]>,
) -> (Vec<HighsInt>, Vec<HighsInt>, Vec<f64>) {
    let (mut starts, mut index, mut value) = (Vec::new(), Vec::new(), Vec::new());
    for v in vectors {
        starts.push(index.len() as HighsInt);
        for &(i, x) in v {
            index.push(i as HighsInt);
            value.push(x);
        }
    }
    (starts, index, value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// min −x − y s.t. x + y ≤ 4 (row 0), x ≤ 3 (row 1). With x alone: x = 3, value −3.
    /// With y added: x + y = 4, value −4, and row 0 binds (dual −1: one more unit of its
    /// bound saves 1). With y deleted again: back to −3.
    #[test]
    fn solves_grows_and_deletes() {
        let mut lp = HighsLp::new();
        let bounded = |upper| NewRow {
            lower: f64::NEG_INFINITY,
            upper,
            entries: Vec::new(),
        };
        let r0 = lp.add_rows(&[bounded(4.0), bounded(3.0)]);
        let r1 = r0 + 1;
        let x = lp.add_cols(&[(-1.0, vec![(r0, 1.0), (r1, 1.0)])], f64::INFINITY);
        let sol = lp.solve().unwrap();
        assert!((sol.objective + 3.0).abs() < 1e-9);
        let y = lp.add_cols(&[(-1.0, vec![(r0, 1.0)])], f64::INFINITY);
        let sol = lp.solve().unwrap();
        assert!((sol.objective + 4.0).abs() < 1e-9);
        assert!((sol.row_duals[r0] + 1.0).abs() < 1e-9);
        assert_eq!(lp.basic_columns().len(), 2);
        let remap = lp.delete_cols(&[false, true]);
        assert_eq!(remap, vec![Some(x), None]);
        assert_eq!(lp.num_cols(), 1);
        let sol = lp.solve().unwrap();
        assert!((sol.objective + 3.0).abs() < 1e-9);
        assert_eq!(y, 1);
    }

    /// min −x + y, 0 ≤ x ≤ 1 (a boxed column, no row), y ≥ 0 in x + y ≤ 4: x sits at its
    /// upper bound with reduced cost −1 (the dual of its bound), y at zero with +1.
    #[test]
    fn a_boxed_column_reports_its_bound_dual() {
        let mut lp = HighsLp::new();
        let r = lp.add_rows(&[NewRow {
            lower: f64::NEG_INFINITY,
            upper: 4.0,
            entries: Vec::new(),
        }]);
        let x = lp.add_cols(&[(-1.0, vec![(r, 1.0)])], 1.0);
        let y = lp.add_cols(&[(1.0, vec![(r, 1.0)])], f64::INFINITY);
        let sol = lp.solve().unwrap();
        assert!((sol.objective + 1.0).abs() < 1e-9);
        assert!((sol.columns[x] - 1.0).abs() < 1e-9);
        assert!((sol.col_duals[x] + 1.0).abs() < 1e-9);
        assert!((sol.col_duals[y] - 1.0).abs() < 1e-9);
    }
}
