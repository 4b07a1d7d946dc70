//! Rolling-origin backtest: fit on the periods before each origin, forecast `horizon` periods,
//! score against what happened. Accuracy (MASE, RMSSE, bias), calibration (quantile coverage)
//! and the stocking trade-off: stocking each series-period up to its p-quantile, which fill rate
//! does it buy and how much stock is left over on average.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::classify::DemandClass;
use super::pooled::PooledModel;
use super::series::{fit_series, pool_spreads, SeriesConfig, SeriesFit};
use super::ForecastError;

/// Quantile levels written to the forecast CSV and scored. A planner picks a service level
/// where the stock it costs is worth the fill it buys, so the grid is dense where the
/// stocking trade-off bends (fill 80–95 %: levels .93–.99); with only the
/// [`STANDARD_LEVELS`], linear interpolation between p95 and p98 overstates the stock a fill
/// rate between them needs.
pub const LEVELS: [f64; 32] = [
    0.5, 0.6, 0.7, 0.75, 0.8, 0.82, 0.84, 0.86, 0.88, 0.89, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95,
    0.955, 0.96, 0.965, 0.97, 0.975, 0.98, 0.985, 0.99, 0.9925, 0.995, 0.9965, 0.998, 0.999,
    0.9995, 0.9998, 0.9999,
];
const NL: usize = LEVELS.len();
/// The levels of the CSV format (p50 … p995) and p999: the report's table, and the
/// trade-off read along them alone, comparable with figures read on those columns only.
pub const STANDARD_LEVELS: [f64; 8] = [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999];
/// Fill-rate targets at which the report interpolates the stock needed.
pub const FILL_TARGETS: [f64; 2] = [0.85, 0.90];

/// One fitted series at one origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OriginFit {
    pub series: usize,
    /// Index of the first forecast period (= number of training periods).
    pub origin: usize,
    pub fit: SeriesFit,
    /// Whether mean and quantiles come from the cross-series model ([`PooledModel`]).
    pub pooled: bool,
    /// The forecast of each period of the horizon (the same law for all of them).
    pub forecast: PeriodForecast,
}

/// The forecast of one period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeriodForecast {
    /// Mean demand: the pooled law's mean when there is one, else the series level.
    pub mean: f64,
    /// Whole-unit quantiles at [`LEVELS`].
    pub quantiles: [f64; NL],
}

/// Sums over series-periods, per class and overall; merged across threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub series: usize,
    pub periods: usize,
    pub demand: f64,
    pub error: f64,
    pub mase_sum: f64,
    pub mase_series: usize,
    pub rmsse_sum: f64,
    pub rmsse_series: usize,
    pub covered: [usize; NL],
    pub served: [f64; NL],
    pub left: [f64; NL],
}

impl Tally {
    fn merge(mut self, o: &Tally) -> Tally {
        self.series += o.series;
        self.periods += o.periods;
        self.demand += o.demand;
        self.error += o.error;
        self.mase_sum += o.mase_sum;
        self.mase_series += o.mase_series;
        self.rmsse_sum += o.rmsse_sum;
        self.rmsse_series += o.rmsse_series;
        for i in 0..NL {
            self.covered[i] += o.covered[i];
            self.served[i] += o.served[i];
            self.left[i] += o.left[i];
        }
        self
    }

    pub fn mase(&self) -> f64 {
        self.mase_sum / self.mase_series.max(1) as f64
    }
    pub fn rmsse(&self) -> f64 {
        self.rmsse_sum / self.rmsse_series.max(1) as f64
    }
    /// Mean forecast error (forecast − actual) per series-period: > 0 over-forecasts.
    pub fn bias(&self) -> f64 {
        self.error / self.periods.max(1) as f64
    }
    /// Share of periods with demand at or below the quantile at `LEVELS[i]`.
    pub fn coverage(&self, i: usize) -> f64 {
        self.covered[i] as f64 / self.periods.max(1) as f64
    }
    pub fn fill(&self, i: usize) -> f64 {
        if self.demand > 0.0 {
            self.served[i] / self.demand
        } else {
            1.0
        }
    }
    /// Average stock left after demand per series-period when stocking to `LEVELS[i]`.
    pub fn stock(&self, i: usize) -> f64 {
        self.left[i] / self.periods.max(1) as f64
    }

    /// Stock needed for a fill rate, linear between the two [`LEVELS`] that bracket it;
    /// `None` when even the highest level does not reach it.
    pub fn stock_for_fill(&self, target: f64) -> Option<f64> {
        let fill: [f64; NL] = std::array::from_fn(|i| self.fill(i));
        let stock: [f64; NL] = std::array::from_fn(|i| self.stock(i));
        stock_for_fill(&fill, &stock, target)
    }

    /// [`Tally::stock_for_fill`] along the [`STANDARD_LEVELS`] alone.
    pub fn standard_stock_for_fill(&self, target: f64) -> Option<f64> {
        let at = STANDARD_LEVELS.map(level_index);
        let fill = at.map(|i| self.fill(i));
        let stock = at.map(|i| self.stock(i));
        stock_for_fill(&fill, &stock, target)
    }
}

/// Index of level `p` in [`LEVELS`]; every standard level is one of them (checked by a test).
pub fn level_index(p: f64) -> usize {
    LEVELS.iter().position(|l| *l == p).unwrap_or(0)
}

/// Stock needed for a fill rate along a trade-off curve (`fill[i]`, `stock[i]`) of rising
/// levels, linear between the two levels that bracket it; `None` when no level reaches it.
pub fn stock_for_fill(fill: &[f64], stock: &[f64], target: f64) -> Option<f64> {
    let i = (0..fill.len().min(stock.len())).find(|&i| fill[i] >= target)?;
    if i == 0 {
        return Some(stock[0]);
    }
    let (f0, f1) = (fill[i - 1], fill[i]);
    let (s0, s1) = (stock[i - 1], stock[i]);
    let w = if f1 > f0 {
        (target - f0) / (f1 - f0)
    } else {
        1.0
    };
    Some(s0 + w * (s1 - s0))
}

/// What a backtest measured, overall and per demand class (class on the training periods).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    pub train: usize,
    pub horizon: usize,
    pub origins: usize,
    /// Series-origins forecast by the cross-series model; the others by their own methods
    /// (the model needs enough series and inner origins, see [`PooledModel::fit`]).
    pub pooled: usize,
    pub overall: Tally,
    pub by_class: Vec<(DemandClass, Tally)>,
}

/// The fits and the report of a backtest.
#[derive(Debug, Clone)]
pub struct Backtest {
    pub fits: Vec<OriginFit>,
    pub report: BacktestReport,
}

/// Mean absolute (`squared` = false) or squared difference at `lag` over the training periods;
/// `None` when there are no pairs or the scale is zero (the series drops out of the metric).
fn naive_scale(train: &[f32], lag: usize, squared: bool) -> Option<f64> {
    if lag == 0 || train.len() <= lag {
        return None;
    }
    let n = (train.len() - lag) as f64;
    let s: f64 = train
        .windows(lag + 1)
        .map(|w| {
            let d = (w[lag] - w[0]) as f64;
            if squared {
                d * d
            } else {
                d.abs()
            }
        })
        .sum();
    (s > 0.0).then_some(s / n)
}

/// Scores one series at one origin into a fresh tally.
fn score(history: &[f32], actual: &[f32], forecast: &PeriodForecast, season: usize) -> Tally {
    let (level, q) = (forecast.mean, &forecast.quantiles);
    let mut t = Tally {
        series: 1,
        periods: actual.len(),
        ..Tally::default()
    };
    let (mut abs, mut sq) = (0f64, 0f64);
    for &a in actual {
        let a = a as f64;
        t.demand += a;
        t.error += level - a;
        abs += (level - a).abs();
        sq += (level - a) * (level - a);
        for (i, &qi) in q.iter().enumerate() {
            t.covered[i] += usize::from(a <= qi);
            t.served[i] += a.min(qi);
            t.left[i] += (qi - a).max(0.0);
        }
    }
    let h = actual.len().max(1) as f64;
    // MASE uses the seasonal naive scale as in the Monash archive; when the history is shorter
    // than a season, the one-step naive.
    let lag = if history.len() > season { season } else { 1 };
    if let Some(scale) = naive_scale(history, lag, false) {
        t.mase_sum = abs / h / scale;
        t.mase_series = 1;
    }
    // RMSSE uses the one-step naive scale, as in M5.
    if let Some(scale) = naive_scale(history, 1, true) {
        t.rmsse_sum = (sq / h / scale).sqrt();
        t.rmsse_series = 1;
    }
    t
}

/// Mean and one-period quantiles: from the pooled model's law after `history` when there is a
/// model, else from the series level and its negative binomial spread.
fn predictive(history: &[f32], fit: &SeriesFit, model: Option<&PooledModel>) -> PeriodForecast {
    match model {
        Some(m) => {
            let (mean, quantiles) = m.forecast(history, &LEVELS);
            PeriodForecast { mean, quantiles }
        }
        None => {
            let mean = fit.level as f64;
            PeriodForecast {
                mean,
                quantiles: LEVELS.map(|p| fit.spread.quantile(mean, 1, p)),
            }
        }
    }
}

/// Rolling-origin backtest over the rows of `demand` (series × periods). Origins are `train`,
/// `train + horizon`, … while a whole horizon fits: each test period is scored once. Every
/// fit sees only the periods before its origin.
pub fn backtest(
    demand: ArrayView2<f32>,
    cfg: &SeriesConfig,
    season: usize,
    train: usize,
    horizon: usize,
) -> Result<Backtest, ForecastError> {
    cfg.check()?;
    if horizon == 0 {
        return Err(ForecastError::ZeroHorizon);
    }
    let n = demand.ncols();
    if train == 0 || train + horizon > n {
        return Err(ForecastError::NotEnoughHistory {
            have: n,
            need: train.max(1) + horizon,
        });
    }
    let origins: Vec<usize> = (train..=n - horizon).step_by(horizon).collect();
    let rows: Vec<Vec<f32>> = demand.rows().into_iter().map(|r| r.to_vec()).collect();
    let mut fits: Vec<(usize, usize, SeriesFit)> = rows
        .par_iter()
        .enumerate()
        .flat_map_iter(|(s, y)| {
            origins
                .iter()
                .map(move |&o| (s, o, fit_series(&y[..o], cfg, None)))
        })
        .collect();
    // Pooling is per origin: a fit may only borrow from fits made at the same time.
    for &o in &origins {
        let mut at: Vec<SeriesFit> = fits.iter().filter(|f| f.1 == o).map(|f| f.2).collect();
        pool_spreads(&mut at, cfg.pool_strength);
        let mut it = at.into_iter();
        for f in fits.iter_mut().filter(|f| f.1 == o) {
            if let Some(pooled) = it.next() {
                f.2 = pooled;
            }
        }
    }
    // The cross-series model of each origin, fitted on the periods before it.
    let models: Vec<(usize, Option<PooledModel>)> = origins
        .iter()
        .map(|&o| {
            let model = if cfg.pooled {
                let train: Vec<&[f32]> = rows.iter().map(|y| &y[..o]).collect();
                PooledModel::fit(&train, horizon)
            } else {
                None
            };
            (o, model)
        })
        .collect();
    let per: Vec<(OriginFit, Tally)> = fits
        .into_par_iter()
        .map(|(s, o, fit)| {
            let y = &rows[s];
            let model = models.iter().find(|m| m.0 == o).and_then(|m| m.1.as_ref());
            let forecast = predictive(&y[..o], &fit, model);
            let tally = score(&y[..o], &y[o..o + horizon], &forecast, season);
            let of = OriginFit {
                series: s,
                origin: o,
                fit,
                pooled: model.is_some(),
                forecast,
            };
            (of, tally)
        })
        .collect();
    let mut overall = Tally::default();
    let mut by_class: HashMap<DemandClass, Tally> = HashMap::new();
    for (of, t) in &per {
        overall = overall.merge(t);
        let e = by_class.entry(of.fit.class).or_default();
        *e = e.merge(t);
    }
    let mut by_class: Vec<_> = by_class.into_iter().collect();
    by_class.sort_by_key(|(c, _)| *c);
    let report = BacktestReport {
        train,
        horizon,
        origins: origins.len(),
        pooled: per.iter().filter(|(of, _)| of.pooled).count(),
        overall,
        by_class,
    };
    Ok(Backtest {
        fits: per.into_iter().map(|(of, _)| of).collect(),
        report,
    })
}

/// Reads `series_id,period,demand` (any order; periods sort as text, e.g. `YYYY-MM`), all
/// series of equal length. Returns the ids in order of first appearance and the matrix.
pub fn read_series_csv(path: &Path) -> Result<(Vec<String>, Array2<f32>), ForecastError> {
    let csv_err = |source| ForecastError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(csv_err)?;
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut cells: Vec<Vec<(String, f32)>> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        let line = record.position().map_or(0, |p| p.line());
        let bad = |why: String| ForecastError::BadRow {
            path: path.to_owned(),
            line,
            why,
        };
        if record.len() != 3 {
            return Err(bad(format!("expected 3 columns, found {}", record.len())));
        }
        let demand: f32 = record[2]
            .trim()
            .parse()
            .map_err(|_| bad(format!("demand: '{}' is not a number", &record[2])))?;
        if demand.is_nan() || demand < 0.0 {
            return Err(bad(format!("demand: {demand} is negative")));
        }
        let next = index.len();
        let s = *index.entry(record[0].to_owned()).or_insert(next);
        if s == cells.len() {
            cells.push(Vec::new());
        }
        cells[s].push((record[1].trim().to_owned(), demand));
    }
    let mut ids = vec![String::new(); index.len()];
    for (id, s) in index {
        ids[s] = id;
    }
    let width = cells.first().map_or(0, Vec::len);
    let mut matrix = Array2::zeros((ids.len(), width));
    for (s, mut row) in cells.into_iter().enumerate() {
        if row.len() != width {
            return Err(ForecastError::RaggedSeries {
                series: ids[s].clone(),
                have: row.len(),
                want: width,
            });
        }
        row.sort_by(|a, b| a.0.cmp(&b.0));
        for (t, (_, v)) in row.into_iter().enumerate() {
            matrix[[s, t]] = v;
        }
    }
    Ok((ids, matrix))
}

/// Backtests the series of a `series_id,period,demand` CSV with default settings and monthly
/// seasonality, writes `series_id,step,mean,p50,…,p9999` ([`LEVELS`]; step 1 = first period
/// after `train`)
/// to `output`, and returns the report.
pub fn backtest_csv(
    input: &Path,
    train: usize,
    horizon: usize,
    output: &Path,
) -> Result<BacktestReport, ForecastError> {
    let (ids, demand) = read_series_csv(input)?;
    let bt = backtest(demand.view(), &SeriesConfig::default(), 12, train, horizon)?;
    write_forecasts(output, &ids, &bt.fits, train, horizon)?;
    Ok(bt.report)
}

fn write_forecasts(
    path: &Path,
    ids: &[String],
    fits: &[OriginFit],
    train: usize,
    horizon: usize,
) -> Result<(), ForecastError> {
    let io = |source| ForecastError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    let head: Vec<String> = LEVELS.iter().map(|p| level_name(*p)).collect();
    writeln!(out, "series_id,step,mean,{}", head.join(",")).map_err(io)?;
    for f in fits {
        let q: Vec<String> = f
            .forecast
            .quantiles
            .iter()
            .map(|v| format!("{v}"))
            .collect();
        let q = q.join(",");
        for h in 0..horizon {
            let step = f.origin + h - train + 1;
            let id = &ids[f.series];
            writeln!(out, "{id},{step},{:.6},{q}", f.forecast.mean).map_err(io)?;
        }
    }
    out.flush().map_err(io)
}

/// `p50`, `p995`, `p999`: the level's digits after "0.".
fn level_name(p: f64) -> String {
    let s = format!("{p}");
    let digits = s.trim_start_matches("0.");
    if digits.len() == 1 {
        format!("p{digits}0")
    } else {
        format!("p{digits}")
    }
}

impl fmt::Display for BacktestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "backtest: train {} periods, horizon {}, {} origin(s); {} of {} series-origins \
             forecast by the pooled hurdle model, the rest by their series methods",
            self.train, self.horizon, self.origins, self.pooled, self.overall.series
        )?;
        write_tally(f, "all", &self.overall)?;
        for (class, t) in &self.by_class {
            write_tally(f, class.as_str(), t)?;
        }
        Ok(())
    }
}

fn write_tally(f: &mut fmt::Formatter<'_>, name: &str, t: &Tally) -> fmt::Result {
    writeln!(
        f,
        "\n[{name}] series {}  MASE {:.3} (n={})  RMSSE {:.3} (n={})  bias {:+.4}/period ({:+.1}% of demand)",
        t.series,
        t.mase(),
        t.mase_series,
        t.rmsse(),
        t.rmsse_series,
        t.bias(),
        100.0 * t.error / t.demand.max(f64::MIN_POSITIVE),
    )?;
    writeln!(f, "  level   coverage   fill    stock/series-period")?;
    for p in STANDARD_LEVELS {
        let i = level_index(p);
        writeln!(
            f,
            "  {:<6}  {:>7.1}%  {:>5.1}%  {:>8.3}",
            level_name(p),
            100.0 * t.coverage(i),
            100.0 * t.fill(i),
            t.stock(i)
        )?;
    }
    for target in FILL_TARGETS {
        let show = |s: Option<f64>| s.map_or("not reached".to_owned(), |s| format!("{s:.3}"));
        writeln!(
            f,
            "  stock for {:.0}% fill: {} along the {NL} written levels ({} along the {} above)",
            100.0 * target,
            show(t.stock_for_fill(target)),
            show(t.standard_stock_for_fill(target)),
            STANDARD_LEVELS.len(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn level_names() {
        let names: Vec<String> = STANDARD_LEVELS.iter().map(|p| level_name(*p)).collect();
        assert_eq!(
            names,
            ["p50", "p80", "p90", "p95", "p98", "p99", "p995", "p999"]
        );
        // Every standard level is written, and the written grid rises with distinct names.
        for p in STANDARD_LEVELS {
            assert_eq!(LEVELS[level_index(p)], p);
        }
        assert!(LEVELS.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<String> = LEVELS.iter().map(|p| level_name(*p)).collect();
        all.dedup();
        assert_eq!(all.len(), LEVELS.len());
        assert_eq!(level_name(0.9925), "p9925");
    }

    /// Quantiles of one series at every written level: `low` below level `at`, `high` from it.
    fn step_quantiles(low: f64, high: f64, at: f64) -> [f64; NL] {
        LEVELS.map(|p| if p < at { low } else { high })
    }

    #[test]
    fn scores_by_hand() {
        // History 1,2,1,2 (season 12 > 4 → lag 1): MAE scale |1|·3/3 = 1, MSE scale 1.
        // Forecast level 1.5 against actual 0, 3: abs errors 1.5, 1.5 → MASE 1.5;
        // squared 2.25 → RMSSE 1.5; bias (1.5 + −1.5)/2 = 0.
        // Quantile 1 below p80, 2 from p80, 3 from p90.
        let quantiles = LEVELS.map(|p| {
            if p < 0.8 {
                1.0
            } else if p < 0.9 {
                2.0
            } else {
                3.0
            }
        });
        let forecast = PeriodForecast {
            mean: 1.5,
            quantiles,
        };
        let t = score(&[1.0, 2.0, 1.0, 2.0], &[0.0, 3.0], &forecast, 12);
        assert!((t.mase() - 1.5).abs() < 1e-9);
        assert!((t.rmsse() - 1.5).abs() < 1e-9);
        assert!(t.bias().abs() < 1e-9);
        // p50 = 1: covers the 0, not the 3 → 50 %; served min(1,0) + min(1,3) = 1 of 3;
        // left 1 + 0 over 2 periods = .5. p90 = 3 covers both, fill 100 %, left (3+0)/2.
        assert!((t.coverage(0) - 0.5).abs() < 1e-9);
        assert!((t.fill(0) - 1.0 / 3.0).abs() < 1e-9);
        assert!((t.stock(0) - 0.5).abs() < 1e-9);
        assert!((t.fill(level_index(0.8)) - 2.0 / 3.0).abs() < 1e-9);
        assert!((t.fill(level_index(0.89)) - 2.0 / 3.0).abs() < 1e-9);
        assert!((t.fill(level_index(0.9)) - 1.0).abs() < 1e-9);
        // Stock for 85 % fill: between p89 (fill 2/3, stock 1) and p90 (fill 1, stock 1.5):
        // w = (.85 − .6667)/.3333 = .55 → 1 + .55·.5 = 1.275; along the standard levels the
        // bracket is p80–p90, the same two points.
        assert!((t.stock_for_fill(0.85).unwrap() - 1.275).abs() < 1e-9);
        assert!((t.standard_stock_for_fill(0.85).unwrap() - 1.275).abs() < 1e-9);
    }

    #[test]
    fn the_written_levels_follow_the_trade_off_where_the_standard_ones_cut_across() {
        // A: demand 0, 3; B: 0, 0, 0, 3 (6 periods, demand 6). Both quantiles go 2 → 3, A's
        // at p91 and B's at p93, both between the standard p90 and p95. A unit more for A buys
        // 1 served for 1 left, for B 1 served for 3 left: A's comes first, cheap.
        // (A2, B2): served 4 → fill 2/3; left 2 + 6 = 8 → 8/6 = 1.333.
        // (A3, B2): served 5 → 5/6; left 3 + 6 → 1.5. (A3, B3): fill 1; left 3 + 9 → 2.
        // 85 % along the written levels: between (5/6, 1.5) and (1, 2): w = .1 → 1.55.
        // Along the standard levels p90 = (A2, B2), p95 = (A3, B3): w = .55 → 1.7.
        let a = PeriodForecast {
            mean: 1.5,
            quantiles: step_quantiles(2.0, 3.0, 0.91),
        };
        let b = PeriodForecast {
            mean: 0.75,
            quantiles: step_quantiles(2.0, 3.0, 0.93),
        };
        let t = score(&[1.0; 4], &[0.0, 3.0], &a, 12).merge(&score(
            &[1.0; 4],
            &[0.0, 0.0, 0.0, 3.0],
            &b,
            12,
        ));
        assert!((t.fill(level_index(0.9)) - 2.0 / 3.0).abs() < 1e-9);
        assert!((t.stock(level_index(0.92)) - 1.5).abs() < 1e-9);
        assert!((t.stock_for_fill(0.85).unwrap() - 1.55).abs() < 1e-9);
        assert!((t.standard_stock_for_fill(0.85).unwrap() - 1.7).abs() < 1e-9);
    }

    #[test]
    fn a_flat_series_drops_out_of_the_scaled_metrics() {
        let forecast = PeriodForecast {
            mean: 2.0,
            quantiles: [2.0; NL],
        };
        let t = score(&[2.0; 24], &[2.0; 3], &forecast, 12);
        assert_eq!(t.mase_series, 0);
        assert_eq!(t.rmsse_series, 0);
    }

    #[test]
    fn csv_round_trip_and_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("s.csv");
        let mut text = String::from("series_id,period,demand\n");
        for s in ["a", "b"] {
            for m in 1..=8 {
                let d = if (m + s.len()) % 3 == 0 { 2 } else { 0 };
                text.push_str(&format!("{s},2001-{m:02},{d}\n"));
            }
        }
        std::fs::write(&input, &text).unwrap();
        let out = dir.path().join("f.csv");
        let report = backtest_csv(&input, 6, 2, &out).unwrap();
        assert_eq!(report.overall.series, 2);
        assert_eq!(report.overall.periods, 4);
        // Two series of 8 periods: too few and too short to pool.
        assert_eq!(report.pooled, 0);
        let written = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        let head: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(head.len(), 3 + LEVELS.len());
        assert_eq!(head[..5], ["series_id", "step", "mean", "p50", "p60"]);
        for name in ["p80", "p90", "p95", "p98", "p99", "p995", "p999", "p9999"] {
            assert!(head.contains(&name), "{name} missing from {}", lines[0]);
        }
        assert_eq!(lines.len(), 1 + 2 * 2);
        assert!(lines[1].starts_with("a,1,"));

        std::fs::write(&input, "series_id,period,demand\na,2001-01,-1\n").unwrap();
        let err = backtest_csv(&input, 1, 1, &out).unwrap_err();
        assert!(err.to_string().contains(":2: demand"), "{err}");
        std::fs::write(&input, "series_id,period,demand\na,2001-01,1\n").unwrap();
        assert!(matches!(
            backtest_csv(&input, 1, 1, &out),
            Err(ForecastError::NotEnoughHistory { .. })
        ));
    }
}

/// The real-data benchmark of issue 5: car parts (Hyndman et al. 2008), 2,674 monthly series,
/// train on 39 months, forecast 12. Everything is chosen on the training months.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod carparts {
    use super::*;

    fn data() -> std::path::PathBuf {
        std::env::var_os("SPAREPLAN_CARPARTS")
            .map(Into::into)
            .unwrap_or_else(|| "/work/shared/data/carparts.csv".into())
    }

    #[test]
    fn carparts_backtest_meets_the_goals() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("carparts_forecasts.csv");
        let report = backtest_csv(&data(), 39, 12, &out).unwrap();
        println!("{report}");
        let all = &report.overall;
        assert_eq!(all.series, 2674);
        // 16 series are all zero in the training months and drop out of MASE.
        assert_eq!(all.mase_series, 2658);
        // 39 months, 12 ahead: six inner origins, so the pooled model forecasts every series.
        assert_eq!(report.pooled, 2674);
        // Achieved (default settings: the pooled hurdle model, quantiles read at the levels
        // recalibrated on inner folds of the 39 training months): coverage p90 90.1 %, p95
        // 94.5 % (goal: within 2 points); stock 1.633 for 85 % fill and 2.093 for 90 % along
        // the 32 written levels (goal ≤ 1.70 / ≤ 2.34), 1.732 / 2.107 along the 8 standard
        // ones alone (the chord from p95 to p98 cuts across the curve); RMSSE 0.675, MASE
        // 1.159, bias −0.020 per period (−5 % of demand: the model fitted on earlier years
        // expects a little more decline than the test year shows). Before (uncalibrated
        // whole-unit quantiles): p90 94.1 %, p95 97.3 %, stock 1.752 / 2.263 along 32 levels,
        // RMSSE 0.702, MASE 1.309, bias −0.001. Anchor 2.0 / 2.75 (statsforecast, measured
        // again by benches/carparts_peer.sh: its best model needs 1.96 / 2.72 along these 32
        // levels too, Poisson quantiles hardly move with the grid). These bounds guard the
        // achieved level.
        let cov = |p: f64| all.coverage(level_index(p));
        assert!(
            (0.93..=0.97).contains(&cov(0.95)),
            "p95 coverage {}",
            cov(0.95)
        );
        assert!(
            (0.88..=0.92).contains(&cov(0.90)),
            "p90 coverage {}",
            cov(0.90)
        );
        assert!(
            (0.50..=0.85).contains(&cov(0.50)),
            "p50 coverage {}",
            cov(0.50)
        );
        let s85 = all.stock_for_fill(0.85).expect("85 % fill reached");
        let s90 = all.stock_for_fill(0.90).expect("90 % fill reached");
        assert!(s85 < 1.70 && s90 < 2.20, "stock {s85} / {s90}");
        let c85 = all
            .standard_stock_for_fill(0.85)
            .expect("85 % fill reached");
        let c90 = all
            .standard_stock_for_fill(0.90)
            .expect("90 % fill reached");
        assert!(
            c85 < 1.76 && c90 < 2.34,
            "stock along the standard levels {c85} / {c90}"
        );
        assert!(all.bias().abs() < 0.025, "bias {}", all.bias());
        assert!(all.rmsse() < 0.69, "RMSSE {}", all.rmsse());
        assert!(all.mase() < 1.2, "MASE {}", all.mase());
        // Fill rises with the level and the top level serves well above the anchor's 86 %.
        assert!((1..LEVELS.len()).all(|i| all.fill(i) >= all.fill(i - 1)));
        assert!(all.fill(LEVELS.len() - 1) > 0.95);
    }
}

/// Calibration on synthetic series whose law is known.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod calibration {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Gamma, Geometric, Poisson};

    /// 2,000 series × 60 periods; train 48, score 12 → 24,000 held-out periods, so sampling
    /// error of a coverage is ~0.2 points. Whole-unit quantiles over-cover by construction
    /// (P(D ≤ q) ≥ p, with jumps of several points at small means); the levels recalibrated on
    /// inner folds of the training periods bring them back within 2 points of the level
    /// (measured: NB p90 90.5 %, p95 95.4 %; compound Poisson 89.9 %, 94.9 %).
    fn coverage_of(draw: impl Fn(&mut ChaCha8Rng, f64, f64) -> f32) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (n, t) = (2000, 60);
        let mut d = Array2::zeros((n, t));
        for s in 0..n {
            let mean = rng.gen_range(0.2..4.0);
            let shape = rng.gen_range(0.3..3.0);
            for v in d.row_mut(s).iter_mut() {
                *v = draw(&mut rng, mean, shape);
            }
        }
        let bt = backtest(d.view(), &SeriesConfig::default(), 12, 48, 12).unwrap();
        let all = bt.report.overall;
        (
            all.coverage(level_index(0.9)),
            all.coverage(level_index(0.95)),
        )
    }

    #[test]
    fn negative_binomial_series_are_covered_at_their_level() {
        // Gamma–Poisson: rate ~ Gamma(shape, mean/shape), demand ~ Poisson(rate).
        let (c90, c95) = coverage_of(|rng, mean, shape| {
            let rate = Gamma::new(shape, mean / shape).unwrap().sample(rng);
            if rate > 0.0 {
                Poisson::new(rate).unwrap().sample(rng) as f32
            } else {
                0.0
            }
        });
        println!("NB coverage p90 {c90:.3} p95 {c95:.3}");
        assert!((0.88..=0.92).contains(&c90), "{c90}");
        assert!((0.93..=0.97).contains(&c95), "{c95}");
    }

    #[test]
    fn compound_poisson_series_are_covered_at_their_level() {
        // Demand events ~ Poisson(mean/size), each of geometric size with mean 1 + shape·2.
        let (c90, c95) = coverage_of(|rng, mean, shape| {
            let size = 1.0 + 2.0 * shape;
            let events = Poisson::new(mean / size).unwrap().sample(rng) as u64;
            let geo = Geometric::new(1.0 / size).unwrap();
            (0..events).map(|_| 1 + geo.sample(rng)).sum::<u64>() as f32
        });
        println!("compound coverage p90 {c90:.3} p95 {c95:.3}");
        assert!((0.88..=0.92).contains(&c90), "{c90}");
        assert!((0.93..=0.97).contains(&c95), "{c95}");
    }
}
