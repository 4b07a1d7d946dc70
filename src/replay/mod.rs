//! The rolling replay (DESIGN §11, issue 25): the product's plan and the min/max baseline
//! live through a realised future month by month, by the same rules, so their fill and
//! inventory can be set side by side — the ruler the planner is judged with.
//!
//! - [`world`]: the month's rules as pure state (arrivals, releases, serving, valuation);
//! - [`minmax`]: the baseline, recomputed monthly, at several safety factors;
//! - [`rolling`]: the driver — the plan lives in a scratch copy of the database, where each
//!   month books receipts, forecasts, plans, releases and records demand through the
//!   product's own code, mirrored by a [`world::World`] that must agree with the ledger;
//! - [`report`]: what is printed and written.

pub mod minmax;
pub mod report;
pub mod rolling;
pub mod world;

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::forecast::Month;
use crate::plan::{LocId, PartId};

pub use report::{PolicyReport, RollingReport};
pub use rolling::{run, RollingOptions};

/// Month indices of the replay: month 0 is the first month of the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    pub first: Month,
}

impl Calendar {
    pub fn new(first: Month) -> Calendar {
        Calendar { first }
    }

    pub fn month(&self, m: usize) -> Month {
        self.first.plus(m as i32)
    }

    pub fn first_day(&self, m: usize) -> NaiveDate {
        let month = self.month(m);
        NaiveDate::from_ymd_opt(month.year(), month.month(), 1).unwrap_or_default()
    }

    /// 1–12.
    pub fn calendar_month(&self, m: usize) -> u32 {
        self.month(m).month()
    }

    /// The month index a date falls in (0 for anything before the first month).
    pub fn index_of(&self, date: NaiveDate) -> usize {
        usize::try_from(Month::of_date(date).since(self.first)).unwrap_or(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("{path}:{line}: {field}: {why}")]
    Row {
        path: String,
        line: u64,
        field: &'static str,
        why: String,
    },
    #[error("the truth starts in {truth}, but the stored history ends in {history}: the truth's first month must be {expected}")]
    NotAfterHistory {
        truth: Month,
        history: Month,
        expected: Month,
    },
    #[error("month {month}: the replay's books and the database disagree: {what}")]
    Diverged { month: Month, what: String },
    #[error(transparent)]
    Plan(#[from] crate::plan_runs::PlanRunError),
    #[error(transparent)]
    Forecast(#[from] crate::forecast_runs::ForecastRunError),
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("copying the network into the scratch database: {0}")]
    Copy(String),
}

impl From<sqlx::Error> for ReplayError {
    fn from(e: sqlx::Error) -> Self {
        ReplayError::Db(crate::db::DbError::Sqlx(e))
    }
}

/// Realised demand per month: `(part, station, units)`, sorted.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    pub months: Vec<Vec<(PartId, LocId, i64)>>,
    pub first: Option<Month>,
    /// Rows naming a part or station the network does not know (kept out, counted).
    pub unmatched_rows: usize,
    pub unmatched_units: i64,
}

#[derive(Debug, serde::Deserialize)]
struct TruthRow {
    part_code: String,
    station_code: String,
    month: String,
    demand: i64,
}

/// The header of a truth file.
pub const TRUTH_HEADER: &str = "part_code,station_code,month,demand";

/// Reads a truth file (`part_code,station_code,month,demand`, month `YYYY-MM`); codes map
/// through `parts` and `stations`. Months must be consecutive from the first one given.
pub fn read_truth(
    path: &Path,
    parts: &HashMap<String, PartId>,
    stations: &HashMap<String, LocId>,
) -> Result<Truth, ReplayError> {
    let shown = path.display().to_string();
    let file_err = |why: String| ReplayError::File {
        path: shown.clone(),
        why,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| file_err(e.to_string()))?;
    let header = reader
        .headers()
        .map_err(|e| file_err(e.to_string()))?
        .iter()
        .collect::<Vec<_>>()
        .join(",");
    if header != TRUTH_HEADER {
        return Err(file_err(format!(
            "the header must be '{TRUTH_HEADER}', found '{header}'"
        )));
    }
    type Row = (Month, Option<(PartId, LocId)>, i64);
    let mut rows: Vec<Row> = Vec::new();
    for (i, row) in reader.deserialize::<TruthRow>().enumerate() {
        let line = i as u64 + 2;
        let bad = |field, why: String| ReplayError::Row {
            path: shown.clone(),
            line,
            field,
            why,
        };
        let row = row.map_err(|e| bad("row", e.to_string()))?;
        let month: Month = row
            .month
            .parse()
            .map_err(|e| bad("month", format!("{e}")))?;
        if row.demand < 0 || row.demand > 1_000_000_000 {
            return Err(bad(
                "demand",
                format!("{} is not between 0 and 10^9", row.demand),
            ));
        }
        let cell = parts
            .get(&row.part_code)
            .zip(stations.get(&row.station_code))
            .map(|(p, s)| (*p, *s));
        rows.push((month, cell, row.demand));
    }
    let Some(first) = rows.iter().map(|r| r.0).min() else {
        return Err(file_err("no rows".into()));
    };
    let last = rows.iter().map(|r| r.0).max().unwrap_or(first);
    let span = usize::try_from(last.since(first)).unwrap_or(0) + 1;
    let mut cells: Vec<HashMap<(PartId, LocId), i64>> = vec![HashMap::new(); span];
    let mut truth = Truth {
        first: Some(first),
        ..Truth::default()
    };
    for (month, cell, demand) in rows {
        match cell {
            Some(c) => *cells[month.since(first) as usize].entry(c).or_insert(0) += demand,
            None => {
                truth.unmatched_rows += 1;
                truth.unmatched_units += demand;
            }
        }
    }
    truth.months = cells
        .into_iter()
        .map(|m| {
            let mut v: Vec<(PartId, LocId, i64)> = m
                .into_iter()
                .filter(|c| c.1 > 0)
                .map(|((p, s), q)| (p, s, q))
                .collect();
            v.sort_unstable();
            v
        })
        .collect();
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truth_file_is_read_by_month_and_bad_rows_are_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("truth.csv");
        let parts = HashMap::from([("P1".to_owned(), PartId(0))]);
        let stations = HashMap::from([("S1".to_owned(), LocId(2))]);
        let write = |text: &str| std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        write("part_code,station_code,month,demand\nP1,S1,2027-02,3\nP1,S1,2027-01,2\nP9,S1,2027-01,5\nP1,S1,2027-02,1\n");
        let truth = read_truth(&path, &parts, &stations).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(truth.first, Month::new(2027, 1));
        assert_eq!(
            truth.months,
            vec![
                vec![(PartId(0), LocId(2), 2)],
                vec![(PartId(0), LocId(2), 4)]
            ]
        );
        assert_eq!((truth.unmatched_rows, truth.unmatched_units), (1, 5));
        write("part_code,station_code,month,demand\nP1,S1,2027-13,3\n");
        let err = read_truth(&path, &parts, &stations)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.is_some_and(|e| e.contains(":2: month:")),
            "the line and field are named"
        );
    }

    #[test]
    fn the_calendar_counts_months_from_the_first() {
        let c = Calendar::new(Month::new(2026, 11).unwrap_or_else(|| panic!("month")));
        assert_eq!(
            c.first_day(2),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default()
        );
        assert_eq!(c.calendar_month(2), 1);
        assert_eq!(
            c.index_of(NaiveDate::from_ymd_opt(2027, 1, 31).unwrap_or_default()),
            2
        );
        assert_eq!(
            c.index_of(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap_or_default()),
            0
        );
    }
}
