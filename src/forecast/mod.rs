//! Demand forecasting (DESIGN §5): per (part, station) series, a mean and a spread per period.
//!
//! Plain synchronous numeric code on ndarray; no SQL, HTTP or async in here.
//!
//! - [`classify`]: Syntetos–Boylan classes from ADI and CV².
//! - [`methods`]: SES, Croston, SBA, TSB, ADIDA, parameters chosen per series by rolling-origin
//!   one-step error over a small grid.
//! - [`spread`]: negative binomial law fitted on the in-sample forecast errors; quantiles for
//!   one period and summed over a lead time.
//! - [`pooled`]: a cross-series hurdle model (occurrence × size) fitted on inner rolling
//!   origins of the history, its whole-unit quantiles read at levels recalibrated on the same
//!   inner folds; the backtest's mean and quantiles, and a run's series level and one-period
//!   dispersion, where the history allows (≥ 100 series, ≥ 3 inner origins).
//! - [`history`]: the demand matrix and the causal (installed base × usage) model built from the
//!   interchange rows.
//! - [`run()`]: the whole network in parallel, series and causal forecasts combined.
//! - [`backtest`]: rolling-origin evaluation, accuracy, calibration and the stocking trade-off.

pub mod backtest;
pub mod classify;
pub mod history;
pub mod methods;
pub mod period;
pub mod pooled;
pub mod run;
pub mod series;
pub mod spread;

use std::path::PathBuf;

pub use backtest::{backtest, backtest_csv, BacktestReport, PeriodForecast, LEVELS};
pub use classify::{classify, DemandClass, SeriesStats};
pub use history::{CausalConfig, History, HistoryRows, SeriesKey};
pub use methods::{Grid, MethodKind, MethodSpec};
pub use period::{Month, PeriodLength};
pub use pooled::{Hurdle, LevelMap, PooledModel};
pub use run::{run, ForecastConfig, ForecastRun, Override, SeriesForecast};
pub use series::{fit_series, ClassMethods, SeriesConfig, SeriesFit, SeriesOverride};
pub use spread::{nb_quantile, Dispersion};

/// Why a forecast or a backtest could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    #[error("parameter {name} = {value} is out of range")]
    BadParameter { name: &'static str, value: f32 },
    #[error("the parameter grid is empty")]
    EmptyGrid,
    #[error("override names method {method:?} but gives parameters of {spec:?}")]
    ConflictingOverride {
        method: MethodKind,
        spec: MethodSpec,
    },
    #[error("the forecast horizon must be at least one period")]
    ZeroHorizon,
    #[error("need at least {need} periods of history, have {have}")]
    NotEnoughHistory { have: usize, need: usize },
    #[error("series {series} has {have} periods, the others {want}")]
    RaggedSeries {
        series: String,
        have: usize,
        want: usize,
    },
    #[error("{keys} series keys for {rows} rows of demand")]
    ShapeMismatch { keys: usize, rows: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}:{line}: {why}")]
    BadRow {
        path: PathBuf,
        line: u64,
        why: String,
    },
    #[error("fault row {work_order}: {why}")]
    BadFault { work_order: String, why: String },
}
