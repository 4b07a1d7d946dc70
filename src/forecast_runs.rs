//! Forecast runs against the database: read the history, forecast off the async runtime,
//! store the run (identity of inputs, method and parameters per series, mean and spread
//! per period) so plans and proposals can point to the run they used.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::db::{Db, DbError};
use crate::forecast::{
    self, ForecastConfig, ForecastError, ForecastRun, History, HistoryRows, Month, SeriesForecast,
};
use crate::interchange::bulk::{BulkInsert, Val};
use crate::interchange::{history_snapshot, ExportError, HistorySnapshot};
use crate::{sql_fetch_all, sql_fetch_optional};

/// What to forecast.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Periods (months) to forecast after the last month of history.
    pub horizon: usize,
    /// Months of history to use; all of it when `None`.
    pub history_months: Option<usize>,
    /// The first month to forecast; the month after the last work order when `None`.
    /// History from this month on is not used.
    pub origin: Option<Month>,
    pub config: ForecastConfig,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            horizon: 12,
            history_months: None,
            origin: None,
            config: ForecastConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForecastRunError {
    #[error("there is no fault history to forecast from")]
    NoHistory,
    #[error("forecast run {0} does not exist")]
    UnknownRun(i64),
    #[error("stored forecast run {run} is unreadable: {why}")]
    Corrupt { run: i64, why: String },
    #[error(transparent)]
    Forecast(#[from] ForecastError),
    #[error(transparent)]
    Read(#[from] ExportError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the forecast task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<sqlx::Error> for ForecastRunError {
    fn from(e: sqlx::Error) -> Self {
        ForecastRunError::Db(DbError::Sqlx(e))
    }
}

/// A forecast run as stored, with the database ids of its series.
#[derive(Debug, Clone)]
pub struct StoredForecast {
    pub id: i64,
    /// The first forecast month.
    pub origin: Month,
    pub history_months: usize,
    pub run: ForecastRun,
    pub elapsed: Duration,
}

/// Reads the history, forecasts every active (part, station) series and stores the run
/// in one transaction.
pub async fn run_and_store(
    db: &Db,
    options: &RunOptions,
) -> Result<StoredForecast, ForecastRunError> {
    let started = Instant::now();
    let snapshot = history_snapshot(db).await?;
    let (first, last) = fault_span(&snapshot).ok_or(ForecastRunError::NoHistory)?;
    let origin = options.origin.unwrap_or(last.plus(1));
    let available = usize::try_from(origin.since(first)).unwrap_or(0).max(1);
    let history_months = options
        .history_months
        .map_or(available, |m| m.clamp(1, available));
    let (config, horizon) = (options.config.clone(), options.horizon);
    let inputs = describe_inputs(&snapshot, last);
    let run = tokio::task::spawn_blocking(move || -> Result<ForecastRun, ForecastError> {
        let rows = HistoryRows {
            locations: &snapshot.locations,
            parts: &snapshot.parts,
            fits: &snapshot.fits,
            equipment: &snapshot.equipment,
            faults: &snapshot.faults,
            peak: &snapshot.peak,
        };
        let history = History::from_rows(&rows, origin, history_months)?;
        forecast::run(&history, &config, horizon)
    })
    .await??;
    let id = store(db, &run, origin, history_months, &inputs, &options.config).await?;
    Ok(StoredForecast {
        id,
        origin,
        history_months,
        run,
        elapsed: started.elapsed(),
    })
}

/// First and last month with a work order.
fn fault_span(snapshot: &HistorySnapshot) -> Option<(Month, Month)> {
    let first = snapshot.faults.iter().map(|f| f.opened_on).min()?;
    let last = snapshot.faults.iter().map(|f| f.opened_on).max()?;
    Some((Month::of_date(first), Month::of_date(last)))
}

/// The identity of a run's inputs: enough to tell whether the history changed since.
fn describe_inputs(snapshot: &HistorySnapshot, last: Month) -> String {
    format!(
        "fault_lines={} equipment={} peak_rows={} parts={} last_month={last}",
        snapshot.faults.len(),
        snapshot.equipment.len(),
        snapshot.peak.len(),
        snapshot.parts.len()
    )
}

const SERIES_COLUMNS: &[&str] = &[
    "run_id",
    "part_id",
    "station_id",
    "demand_class",
    "method",
    "series_weight",
    "detail_json",
];
const VALUE_COLUMNS: &[&str] = &[
    "run_id",
    "part_id",
    "station_id",
    "step",
    "period_start",
    "mean",
    "p80",
    "p95",
];

async fn store(
    db: &Db,
    run: &ForecastRun,
    origin: Month,
    history_months: usize,
    inputs: &str,
    config: &ForecastConfig,
) -> Result<i64, ForecastRunError> {
    let parts = code_ids(db, "select code, id from parts").await?;
    let stations = code_ids(db, "select code, id from locations").await?;
    let mut tx = db.begin().await?;
    let config_json = serde_json::to_string(config).unwrap_or_default();
    let (id,) = sql_fetch_optional!(
        (i64,),
        tx.conn(),
        "insert into forecast_runs (created_at, first_period, period_length, horizon, history_periods,
             series_count, inputs, config_json)
         values ($1, $2, 'month', $3, $4, $5, $6, $7) returning id",
        Utc::now(),
        origin.to_string(),
        run.horizon as i64,
        history_months as i64,
        run.series.len() as i64,
        inputs,
        config_json
    )?
    .ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))?;
    let stored: Vec<(i64, i64, &SeriesForecast)> = run
        .series
        .iter()
        .filter_map(|s| Some((*parts.get(&s.key.part)?, *stations.get(&s.key.station)?, s)))
        .collect();
    // All series before any value: values refer to their series (forecast_values_series_fkey).
    let mut series_rows = BulkInsert::new("forecast_series", SERIES_COLUMNS);
    for &(part, station, s) in &stored {
        let detail = serde_json::to_string(s).map_err(|e| ForecastRunError::Corrupt {
            run: id,
            why: e.to_string(),
        })?;
        let row = vec![
            Val::Int(id),
            Val::Int(part),
            Val::Int(station),
            Val::Text(format!("{:?}", s.class).to_lowercase()),
            Val::Text(format!("{:?}", s.method.kind()).to_uppercase()),
            Val::Float(f64::from(s.series_weight)),
            Val::Text(detail),
        ];
        series_rows.push(tx.conn(), row).await?;
    }
    series_rows.finish(tx.conn()).await?;
    let mut value_rows = BulkInsert::new("forecast_values", VALUE_COLUMNS);
    for &(part, station, s) in &stored {
        for step in 0..run.horizon {
            let month = origin.plus(step as i32);
            let start =
                chrono::NaiveDate::from_ymd_opt(month.year(), month.month(), 1).unwrap_or_default();
            let row = vec![
                Val::Int(id),
                Val::Int(part),
                Val::Int(station),
                Val::Int(step as i64),
                Val::Date(start),
                Val::Float(f64::from(s.mean(step))),
                Val::Float(s.quantile(step, 0.80)),
                Val::Float(s.quantile(step, 0.95)),
            ];
            value_rows.push(tx.conn(), row).await?;
        }
    }
    value_rows.finish(tx.conn()).await?;
    tx.commit().await?;
    Ok(id)
}

async fn code_ids(db: &Db, sql: &str) -> Result<HashMap<String, i64>, ForecastRunError> {
    let mut conn = db.acquire().await?;
    Ok(sql_fetch_all!((String, i64), conn.conn(), sql)?
        .into_iter()
        .collect())
}

/// The newest stored run's id, if any.
pub async fn latest_id(db: &Db) -> Result<Option<i64>, ForecastRunError> {
    let mut conn = db.acquire().await?;
    let row = sql_fetch_optional!(
        (Option<i64>,),
        conn.conn(),
        "select max(id) from forecast_runs"
    )?;
    Ok(row.and_then(|(id,)| id))
}

/// Loads a stored run back as the forecast module produced it.
pub async fn load(db: &Db, id: i64) -> Result<StoredForecast, ForecastRunError> {
    let mut conn = db.acquire().await?;
    let head = sql_fetch_optional!(
        (String, i64, i64),
        conn.conn(),
        "select first_period, horizon, history_periods from forecast_runs where id = $1",
        id
    )?
    .ok_or(ForecastRunError::UnknownRun(id))?;
    let corrupt = |why: String| ForecastRunError::Corrupt { run: id, why };
    let origin: Month = head
        .0
        .parse()
        .map_err(|e: forecast::period::BadMonth| corrupt(e.0))?;
    let details = sql_fetch_all!(
        (String,),
        conn.conn(),
        "select detail_json from forecast_series where run_id = $1 order by part_id, station_id",
        id
    )?;
    let series = details
        .into_iter()
        .map(|(json,)| {
            serde_json::from_str::<SeriesForecast>(&json).map_err(|e| corrupt(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let horizon = usize::try_from(head.1).map_err(|e| corrupt(e.to_string()))?;
    Ok(StoredForecast {
        id,
        origin,
        history_months: usize::try_from(head.2).unwrap_or(0),
        run: ForecastRun {
            period: forecast::PeriodLength::Month,
            first: Some(origin),
            horizon,
            series,
        },
        elapsed: Duration::ZERO,
    })
}

/// A readable summary: series by demand class and method, and the parts whose demand
/// rises most into their peak month over the horizon.
pub fn summary(stored: &StoredForecast) -> String {
    let run = &stored.run;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Forecast run {}: {} series, {} months from {} (history {} months), {:.1} s",
        stored.id,
        run.series.len(),
        run.horizon,
        stored.origin,
        stored.history_months,
        stored.elapsed.as_secs_f64()
    );
    let mut by_class: HashMap<String, (usize, f64)> = HashMap::new();
    for s in &run.series {
        // A pooled series' level and spread come from the hurdle model; its method still
        // gives the lead-time persistence and stands in wherever the model cannot be fitted.
        let method = if s.pooled {
            format!("pooled ({:?})", s.method.kind())
        } else {
            format!("{:?}", s.method.kind())
        };
        let entry = by_class
            .entry(format!("{:?} → {method}", s.class))
            .or_default();
        entry.0 += 1;
        entry.1 += (0..run.horizon).map(|t| f64::from(s.mean(t))).sum::<f64>();
    }
    let mut classes: Vec<_> = by_class.into_iter().collect();
    classes.sort_by_key(|c| std::cmp::Reverse(c.1 .0));
    let _ = writeln!(
        out,
        "  {:<32} {:>8} {:>14}",
        "class → method", "series", "units/horizon"
    );
    for (name, (count, units)) in classes {
        let _ = writeln!(out, "  {name:<32} {count:>8} {units:>14.0}");
    }
    let _ = writeln!(
        out,
        "\nParts whose network demand rises most into the peak (horizon months, units):"
    );
    let _ = writeln!(
        out,
        "  {:<16} {:>9} {:>9} {:>9} {:>7}",
        "part", "peak in", "peak", "low", "ratio"
    );
    for (part, peak_month, peak, low) in peak_rises(stored).into_iter().take(10) {
        let _ = writeln!(
            out,
            "  {part:<16} {peak_month:>9} {peak:>9.1} {low:>9.1} {:>7.2}",
            peak / low.max(0.1)
        );
    }
    out
}

/// Per part: the network-wide mean per horizon month; parts ranked by peak / low month,
/// among parts with at least two units a month at the peak (rarer ones are all noise).
fn peak_rises(stored: &StoredForecast) -> Vec<(String, Month, f64, f64)> {
    let horizon = stored.run.horizon;
    let mut per_part: HashMap<&str, Vec<f64>> = HashMap::new();
    for s in &stored.run.series {
        let months = per_part
            .entry(s.key.part.as_str())
            .or_insert_with(|| vec![0.0; horizon]);
        for (t, m) in months.iter_mut().enumerate() {
            *m += f64::from(s.mean(t));
        }
    }
    let mut ranked: Vec<(String, Month, f64, f64)> = per_part
        .into_iter()
        .filter_map(|(part, months)| {
            let (peak_t, peak) = months
                .iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            let low = months.iter().copied().fold(f64::INFINITY, f64::min);
            (peak >= 2.0).then(|| {
                (
                    part.to_owned(),
                    stored.origin.plus(peak_t as i32),
                    peak,
                    low,
                )
            })
        })
        .collect();
    ranked.sort_by(|a, b| (b.2 / b.3.max(0.1)).total_cmp(&(a.2 / a.3.max(0.1))));
    ranked
}

/// Rolling-origin backtest of the series methods over the stored history: first origin
/// after `train` months, `horizon` months each.
pub async fn backtest_stored(
    db: &Db,
    train: usize,
    horizon: usize,
) -> Result<forecast::BacktestReport, ForecastRunError> {
    let snapshot = history_snapshot(db).await?;
    let (first, last) = fault_span(&snapshot).ok_or(ForecastRunError::NoHistory)?;
    let origin = last.plus(1);
    let months = usize::try_from(origin.since(first)).unwrap_or(0);
    let report =
        tokio::task::spawn_blocking(move || -> Result<forecast::BacktestReport, ForecastError> {
            let rows = HistoryRows {
                locations: &snapshot.locations,
                parts: &snapshot.parts,
                fits: &snapshot.fits,
                equipment: &snapshot.equipment,
                faults: &snapshot.faults,
                peak: &snapshot.peak,
            };
            let history = History::from_rows(&rows, origin, months)?;
            let season = history.period.season_length();
            Ok(forecast::backtest(
                history.demand.view(),
                &forecast::SeriesConfig::default(),
                season,
                train,
                horizon,
            )?
            .report)
        })
        .await??;
    Ok(report)
}
