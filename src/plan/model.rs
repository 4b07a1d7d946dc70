//! The planning model: a TOML file under `models/` read into [`ModelFile`] (plain serde) and
//! checked into [`PlanModel`] (typed, valid by construction). Every error names the field.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::catalog::Criticality;
use crate::units::Amount;

/// Why a model file was refused; `field` is the TOML path of the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("model file is not valid TOML: {0}")]
    Toml(String),
    #[error("model field `{field}`: {why}")]
    Field { field: String, why: String },
}

fn field_err(field: impl Into<String>, why: impl Into<String>) -> ModelError {
    ModelError::Field {
        field: field.into(),
        why: why.into(),
    }
}

/// Service tier of a product line (一品一案).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Exceed,
    Above,
    Meet,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Exceed, Tier::Above, Tier::Meet];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Exceed => "exceed",
            Tier::Above => "above",
            Tier::Meet => "meet",
        }
    }
}

/// Length of one planning period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PeriodLength {
    #[default]
    Month,
    Week,
}

impl PeriodLength {
    /// Average length in days, used to turn lead times in days into whole periods.
    pub fn days(self) -> f64 {
        match self {
            PeriodLength::Month => 365.25 / 12.0,
            PeriodLength::Week => 7.0,
        }
    }

    pub fn per_year(self) -> f64 {
        match self {
            PeriodLength::Month => 12.0,
            PeriodLength::Week => 365.25 / 7.0,
        }
    }

    /// First day of period `t` (0-based) counted from `start`.
    pub fn start_of(self, start: NaiveDate, t: i64) -> NaiveDate {
        match self {
            PeriodLength::Month => {
                let months = i32::try_from(t).unwrap_or(0);
                let m0 = start.month0() as i32 + months;
                let year = start.year() + m0.div_euclid(12);
                let month = m0.rem_euclid(12) as u32 + 1;
                NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(start)
            }
            PeriodLength::Week => start + chrono::Duration::days(7 * t),
        }
    }
}

use chrono::Datelike;

/// How the budget row is written: one row per period, or one over the whole horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    Period,
    Horizon,
}

/// How the LP is solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Monolith for small instances, Dantzig–Wolfe above `monolith_max_columns`.
    #[default]
    Auto,
    Monolith,
    DantzigWolfe,
}

// ---------------------------------------------------------------- the file, as written

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub horizon: HorizonFile,
    pub service: Vec<ServiceFile>,
    pub tiers: TiersFile,
    pub costs: CostsFile,
    #[serde(default)]
    pub constraints: ConstraintsFile,
    pub budget: Option<BudgetFile>,
    #[serde(default)]
    pub stocking: StockingFile,
    #[serde(default)]
    pub solver: SolverFile,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HorizonFile {
    pub periods: i64,
    #[serde(default)]
    pub period: PeriodLength,
    pub start: NaiveDate,
    #[serde(default = "one")]
    pub review_periods: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    pub tier: Tier,
    pub criticality: Criticality,
    pub fill_rate: f64,
    pub max_supply_days: f64,
    /// Penalty per unit short, as a multiple of the part's unit cost.
    pub shortage_factor: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TiersFile {
    pub default: Tier,
    #[serde(default)]
    pub product_lines: HashMap<String, Tier>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CostsFile {
    pub holding_rate_per_year: f64,
    /// Penalty per unit of safety-stock shortfall per period, as a multiple of unit cost.
    pub gap_factor: f64,
    /// End-of-horizon stock is credited at this fraction of unit cost.
    #[serde(default = "one_f")]
    pub end_stock_value: f64,
    /// Fixed cost of one order line (major units); sizes the min/max baseline's EOQ.
    #[serde(default)]
    pub order_cost: f64,
}

fn one_f() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintsFile {
    #[serde(default = "yes")]
    pub budget: bool,
    #[serde(default = "yes")]
    pub capacity: bool,
    #[serde(default = "yes")]
    pub credit: bool,
    #[serde(default = "yes")]
    pub safety_stock: bool,
    #[serde(default = "yes")]
    pub lateral_lanes: bool,
    /// Hard service: over the horizon a stocked pair may short at most (1 − fill rate) of
    /// its demand. Off by default (shortage is priced instead).
    #[serde(default)]
    pub hard_service: bool,
}

fn yes() -> bool {
    true
}

impl Default for ConstraintsFile {
    fn default() -> Self {
        ConstraintsFile {
            budget: true,
            capacity: true,
            credit: true,
            safety_stock: true,
            lateral_lanes: true,
            hard_service: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFile {
    pub scope: BudgetScope,
    /// Major units, e.g. "250000.00".
    pub amount: Amount,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StockingFile {
    /// A station stocks a part when its mean demand reaches this many units a year.
    #[serde(default = "one_f")]
    pub min_units_per_year: f64,
}

impl Default for StockingFile {
    fn default() -> Self {
        StockingFile {
            min_units_per_year: 1.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SolverFile {
    #[serde(default)]
    pub integer: bool,
    #[serde(default = "default_time_limit")]
    pub time_limit_s: f64,
    #[serde(default = "default_gap")]
    pub mip_gap: f64,
    #[serde(default)]
    pub method: Method,
    #[serde(default = "default_monolith_max")]
    pub monolith_max_columns: usize,
    /// Relative gap at which Dantzig–Wolfe stops (certified by the Lagrangian bound).
    #[serde(default = "default_dw_gap")]
    pub dw_gap: f64,
    #[serde(default = "default_dw_iter")]
    pub dw_max_iterations: usize,
    /// Dantzig–Wolfe with at least this many parts first solves a tenth of them for its
    /// starting prices; 0 never does.
    #[serde(default = "default_dw_sample_from")]
    pub dw_sample_from: usize,
}

fn default_time_limit() -> f64 {
    60.0
}
fn default_gap() -> f64 {
    0.01
}
fn default_monolith_max() -> usize {
    20_000
}
fn default_dw_gap() -> f64 {
    0.001
}
fn default_dw_iter() -> usize {
    400
}
fn default_dw_sample_from() -> usize {
    4_000
}

impl Default for SolverFile {
    fn default() -> Self {
        SolverFile {
            integer: false,
            time_limit_s: default_time_limit(),
            mip_gap: default_gap(),
            method: Method::Auto,
            monolith_max_columns: default_monolith_max(),
            dw_gap: default_dw_gap(),
            dw_max_iterations: default_dw_iter(),
            dw_sample_from: default_dw_sample_from(),
        }
    }
}

// ---------------------------------------------------------------- the checked model

/// Target of one tier × criticality cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ServiceTarget {
    pub fill_rate: f64,
    pub max_supply_days: f64,
    pub shortage_factor: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Active {
    pub budget: bool,
    pub capacity: bool,
    pub credit: bool,
    pub safety_stock: bool,
    pub lateral_lanes: bool,
    pub hard_service: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Budget {
    pub scope: BudgetScope,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolverParams {
    pub integer: bool,
    pub time_limit_s: f64,
    pub mip_gap: f64,
    pub method: Method,
    pub monolith_max_columns: usize,
    pub dw_gap: f64,
    pub dw_max_iterations: usize,
    pub dw_sample_from: usize,
}

/// A checked planning model. Build it with [`PlanModel::from_toml`] or [`ModelFile::check`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanModel {
    pub name: String,
    pub periods: usize,
    pub period: PeriodLength,
    pub start: NaiveDate,
    pub review_periods: usize,
    service: HashMap<(Tier, Criticality), ServiceTarget>,
    pub default_tier: Tier,
    pub product_lines: HashMap<String, Tier>,
    pub holding_rate_per_year: f64,
    pub gap_factor: f64,
    pub end_stock_value: f64,
    pub order_cost: f64,
    pub active: Active,
    /// `None` when no budget is given or the budget family is switched off.
    pub budget: Option<Budget>,
    pub min_units_per_year: f64,
    pub solver: SolverParams,
}

impl PlanModel {
    pub fn from_toml(text: &str) -> Result<Self, ModelError> {
        let file: ModelFile = toml::from_str(text).map_err(|e| ModelError::Toml(e.to_string()))?;
        file.check()
    }

    pub fn tier_of(&self, product_line: &str) -> Tier {
        self.product_lines
            .get(product_line)
            .copied()
            .unwrap_or(self.default_tier)
    }

    /// Every tier × criticality cell is present after `check()`.
    pub fn target(&self, tier: Tier, criticality: Criticality) -> ServiceTarget {
        self.service[&(tier, criticality)]
    }

    /// Holding cost per unit of value per period.
    pub fn holding_per_period(&self) -> f64 {
        self.holding_rate_per_year / self.period.per_year()
    }

    /// Whole periods for a lead time in days (nearest, so a 20-day lane in a month is 1).
    pub fn periods_for_days(&self, days: u32) -> usize {
        (f64::from(days) / self.period.days()).round() as usize
    }

    /// Changes the service table (used by the baseline comparisons at several targets).
    pub fn with_fill_rate(mut self, tier: Tier, criticality: Criticality, fill_rate: f64) -> Self {
        if let Some(t) = self.service.get_mut(&(tier, criticality)) {
            t.fill_rate = fill_rate;
        }
        self
    }
}

impl ModelFile {
    /// Validates every field into a [`PlanModel`].
    pub fn check(self) -> Result<PlanModel, ModelError> {
        let h = &self.horizon;
        if !(1..=520).contains(&h.periods) {
            return Err(field_err("horizon.periods", "must be between 1 and 520"));
        }
        if !(1..=h.periods).contains(&h.review_periods) {
            return Err(field_err(
                "horizon.review_periods",
                "must be between 1 and horizon.periods",
            ));
        }
        let service = check_service(&self.service)?;
        let c = &self.costs;
        check_range(
            "costs.holding_rate_per_year",
            c.holding_rate_per_year,
            0.0,
            5.0,
        )?;
        check_range("costs.gap_factor", c.gap_factor, 0.0, 1e6)?;
        check_range("costs.end_stock_value", c.end_stock_value, 0.0, 1.0)?;
        check_range("costs.order_cost", c.order_cost, 0.0, 1e9)?;
        check_range(
            "stocking.min_units_per_year",
            self.stocking.min_units_per_year,
            0.0,
            1e9,
        )?;
        let budget = match (&self.budget, self.constraints.budget) {
            (Some(b), true) if b.amount.minor() < 0 => {
                return Err(field_err("budget.amount", "must not be negative"))
            }
            (Some(b), true) => Some(Budget {
                scope: b.scope,
                amount: b.amount,
            }),
            _ => None,
        };
        let s = &self.solver;
        check_range("solver.time_limit_s", s.time_limit_s, 0.001, 1e6)?;
        check_range("solver.mip_gap", s.mip_gap, 0.0, 1.0)?;
        check_range("solver.dw_gap", s.dw_gap, 0.0, 1.0)?;
        if s.dw_max_iterations == 0 {
            return Err(field_err("solver.dw_max_iterations", "must be at least 1"));
        }
        if (1..10).contains(&s.dw_sample_from) {
            return Err(field_err(
                "solver.dw_sample_from",
                "must be 0 (no sample) or at least 10 parts",
            ));
        }
        let k = self.constraints;
        Ok(PlanModel {
            name: self.name,
            periods: h.periods as usize,
            period: h.period,
            start: h.start,
            review_periods: h.review_periods as usize,
            service,
            default_tier: self.tiers.default,
            product_lines: self.tiers.product_lines,
            holding_rate_per_year: c.holding_rate_per_year,
            gap_factor: c.gap_factor,
            end_stock_value: c.end_stock_value,
            order_cost: c.order_cost,
            active: Active {
                budget: k.budget,
                capacity: k.capacity,
                credit: k.credit,
                safety_stock: k.safety_stock,
                lateral_lanes: k.lateral_lanes,
                hard_service: k.hard_service,
            },
            budget,
            min_units_per_year: self.stocking.min_units_per_year,
            solver: SolverParams {
                integer: s.integer,
                time_limit_s: s.time_limit_s,
                mip_gap: s.mip_gap,
                method: s.method,
                monolith_max_columns: s.monolith_max_columns,
                dw_gap: s.dw_gap,
                dw_max_iterations: s.dw_max_iterations,
                dw_sample_from: s.dw_sample_from,
            },
        })
    }
}

fn check_range(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), ModelError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(field_err(field, format!("{value} is not in {lo}..={hi}")))
    }
}

fn check_service(
    rows: &[ServiceFile],
) -> Result<HashMap<(Tier, Criticality), ServiceTarget>, ModelError> {
    let mut table = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let at = |f: &str| format!("service[{i}].{f}");
        if !(row.fill_rate > 0.0 && row.fill_rate < 1.0) {
            return Err(field_err(
                at("fill_rate"),
                "must be strictly between 0 and 1",
            ));
        }
        check_range(&at("max_supply_days"), row.max_supply_days, 0.0, 3650.0)?;
        check_range(&at("shortage_factor"), row.shortage_factor, 0.0, 1e6)?;
        let cell = ServiceTarget {
            fill_rate: row.fill_rate,
            max_supply_days: row.max_supply_days,
            shortage_factor: row.shortage_factor,
        };
        if table.insert((row.tier, row.criticality), cell).is_some() {
            return Err(field_err(
                at("tier"),
                format!(
                    "{} × {} given twice",
                    row.tier.as_str(),
                    row.criticality.as_str()
                ),
            ));
        }
    }
    for tier in Tier::ALL {
        for crit in [Criticality::A, Criticality::B, Criticality::C] {
            if !table.contains_key(&(tier, crit)) {
                return Err(field_err(
                    "service",
                    format!("no target for {} × {}", tier.as_str(), crit.as_str()),
                ));
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> String {
        let path = format!("{}/models/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).expect("model file")
    }

    #[test]
    fn shipped_models_check() {
        for name in ["monthly-replenishment", "peak-prepositioning"] {
            let model = PlanModel::from_toml(&shipped(name)).expect(name);
            assert_eq!(model.period, PeriodLength::Month);
            assert!(model.periods >= 6);
            let a = model.target(Tier::Exceed, Criticality::A);
            assert!(a.fill_rate > model.target(Tier::Meet, Criticality::C).fill_rate);
        }
    }

    #[test]
    fn bad_fields_are_named() {
        let text = shipped("monthly-replenishment");
        let cases = [
            ("periods = 12", "periods = 0", "horizon.periods"),
            (
                "fill_rate = 0.98",
                "fill_rate = 1.5",
                "service[0].fill_rate",
            ),
            (
                "holding_rate_per_year = 0.25",
                "holding_rate_per_year = -1",
                "costs.holding_rate_per_year",
            ),
            ("mip_gap = 0.01", "mip_gap = 2.0", "solver.mip_gap"),
        ];
        for (from, to, field) in cases {
            assert!(text.contains(from), "fixture lacks {from}");
            let err = PlanModel::from_toml(&text.replacen(from, to, 1)).expect_err(field);
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
        let unknown = text.replacen("[costs]", "[costs]\nbogus = 1", 1);
        assert!(matches!(
            PlanModel::from_toml(&unknown),
            Err(ModelError::Toml(_))
        ));
    }

    #[test]
    fn lead_days_round_to_nearest_period() {
        let model = PlanModel::from_toml(&shipped("monthly-replenishment")).expect("model");
        // A month is 30.44 days: 10 days → 0 periods, 20 → 1, 45 → 1, 46 → 2.
        let got: Vec<usize> = [10, 20, 45, 46].map(|d| model.periods_for_days(d)).to_vec();
        assert_eq!(got, vec![0, 1, 1, 2]);
    }
}
