//! A forecast run over a whole history: every series fitted in parallel, combined with the
//! causal forecast where there is one (DESIGN §5.4).
//!
//! Combination: the series level is carried along the causal profile (scaled by
//! causal(t) / causal average of the last season of history), so a flat series forecast still
//! sees the peak season and new equipment coming; it is then averaged with the plain causal
//! forecast with weight w = H / (H + k), H the amount of history in units of demand (what the
//! causal model expected over the history, or what was observed if more) and k the prior
//! weight. A station with no history or no exposure in it leans on the causal forecast.
//!
//! The series level is the cross-series hurdle model's mean where it can be fitted
//! ([`PooledModel`]: the law the backtest scores), and the one-period φ of the spread the NB
//! dispersion with the hurdle law's variance, so the planner's safety stock sees the lumpy
//! law's spread; the lead-time persistence ρ stays the series' own.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::classify::DemandClass;
use super::history::{CausalConfig, History, SeriesKey};
use super::methods::MethodSpec;
use super::period::{Month, PeriodLength};
use super::pooled::PooledModel;
use super::series::{fit_series, SeriesConfig, SeriesFit, SeriesOverride};
use super::spread::Dispersion;
use super::ForecastError;

/// A planner's override for one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub part: String,
    pub station: String,
    #[serde(flatten)]
    pub set: SeriesOverride,
}

/// Settings of a forecast run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ForecastConfig {
    pub series: SeriesConfig,
    pub causal: CausalConfig,
    pub overrides: Vec<Override>,
}

impl ForecastConfig {
    pub fn check(&self) -> Result<(), ForecastError> {
        self.series.check()?;
        if self.causal.prior_weight.is_nan() || self.causal.prior_weight <= 0.0 {
            return Err(ForecastError::BadParameter {
                name: "causal.prior_weight",
                value: self.causal.prior_weight,
            });
        }
        self.overrides.iter().try_for_each(|o| o.set.check())
    }
}

/// The forecast of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesForecast {
    pub key: SeriesKey,
    pub class: DemandClass,
    pub method: MethodSpec,
    /// The pure series forecast (flat over the horizon).
    pub series_level: f32,
    /// Weight of the series side in the combination (1 without a causal model).
    pub series_weight: f32,
    /// Mean demand per horizon period.
    pub means: Vec<f32>,
    pub spread: Dispersion,
    /// Whether `series_level` and the one-period φ of `spread` come from the cross-series
    /// model ([`PooledModel`]) rather than from `method` alone.
    #[serde(default)]
    pub pooled: bool,
}

impl SeriesForecast {
    /// Mean of horizon period `step`; past the horizon the last period repeats.
    pub fn mean(&self, step: usize) -> f32 {
        match self.means.get(step) {
            Some(m) => *m,
            None => self.means.last().copied().unwrap_or(0.0),
        }
    }

    /// The `p`-quantile of demand in horizon period `step`.
    pub fn quantile(&self, step: usize, p: f64) -> f64 {
        self.spread.quantile(self.mean(step) as f64, 1, p)
    }

    /// The `p`-quantile of total demand over the first `k` periods (a lead time).
    pub fn lead_time_quantile(&self, p: f64, k: usize) -> f64 {
        self.lead_time_quantile_from(0, p, k)
    }

    /// The `p`-quantile of total demand over periods `start .. start + k`.
    pub fn lead_time_quantile_from(&self, start: usize, p: f64, k: usize) -> f64 {
        let total: f64 = (start..start + k).map(|t| self.mean(t) as f64).sum();
        self.spread.quantile(total, k, p)
    }
}

/// All series of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastRun {
    pub period: PeriodLength,
    /// First forecast month, when periods are months.
    pub first: Option<Month>,
    pub horizon: usize,
    pub series: Vec<SeriesForecast>,
}

/// Forecasts every series of `history` for `horizon` periods.
pub fn run(
    history: &History,
    cfg: &ForecastConfig,
    horizon: usize,
) -> Result<ForecastRun, ForecastError> {
    cfg.check()?;
    if horizon == 0 {
        return Err(ForecastError::ZeroHorizon);
    }
    let overrides: HashMap<(&str, &str), &SeriesOverride> = cfg
        .overrides
        .iter()
        .map(|o| ((o.part.as_str(), o.station.as_str()), &o.set))
        .collect();
    let rows = history.series_rows();
    let model = if cfg.series.pooled {
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        PooledModel::fit(&refs, horizon)
    } else {
        None
    };
    let series = rows
        .par_iter()
        .enumerate()
        .map(|(i, y)| {
            let key = &history.keys[i];
            let over = overrides.get(&(key.part.as_str(), key.station.as_str()));
            let mut fit = fit_series(y, &cfg.series, over.copied());
            // The pooled law is the one the backtest scores; a planner's override of the
            // method keeps the series its own.
            let pooled = model
                .as_ref()
                .filter(|_| over.is_none())
                .map(|m| m.predict(y));
            if let Some(law) = &pooled {
                fit.level = law.mean() as f32;
                fit.spread.phi = law.nb_dispersion() as f32;
            }
            let (weight, means) = combine(history, i, y, &fit, &cfg.causal, horizon);
            SeriesForecast {
                key: key.clone(),
                class: fit.class,
                method: fit.method,
                series_level: fit.level,
                series_weight: weight,
                means,
                spread: fit.spread,
                pooled: pooled.is_some(),
            }
        })
        .collect();
    let n = history.periods() as i32;
    Ok(ForecastRun {
        period: history.period,
        first: history.first.map(|m| m.plus(n)),
        horizon,
        series,
    })
}

/// The combined means of series `i` (see the module comment) and the series weight.
fn combine(
    history: &History,
    i: usize,
    y: &[f32],
    fit: &SeriesFit,
    cfg: &CausalConfig,
    horizon: usize,
) -> (f32, Vec<f32>) {
    let n = y.len();
    let causal = |t: usize| history.causal_mean(i, t);
    if causal(0).is_none() {
        return (1.0, vec![fit.level; horizon]);
    }
    let past: Vec<f32> = (0..n).map(|t| causal(t).unwrap_or(0.0)).collect();
    let expected: f32 = past.iter().sum();
    let observed: f32 = y.iter().sum();
    let amount = expected.max(observed);
    let weight = amount / (amount + cfg.prior_weight);
    let season = history.period.season_length().min(n);
    let recent = if season > 0 {
        past[n - season..].iter().sum::<f32>() / season as f32
    } else {
        0.0
    };
    let means = (0..horizon)
        .map(|h| {
            let c = causal(n + h).unwrap_or(0.0);
            let carried = if recent > 0.0 {
                fit.level * c / recent
            } else {
                fit.level
            };
            weight * carried + (1.0 - weight) * c
        })
        .collect();
    (weight, means)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn plain() -> History {
        let keys = ["a", "b"]
            .map(|p| SeriesKey {
                part: p.into(),
                station: "S1".into(),
            })
            .to_vec();
        let demand = array![[2.0f32, 4.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]];
        History::from_series(keys, demand, PeriodLength::Week, None).unwrap()
    }

    #[test]
    fn plain_series_run_is_flat_with_overrides_applied() {
        let cfg = ForecastConfig {
            overrides: vec![Override {
                part: "a".into(),
                station: "S1".into(),
                set: SeriesOverride {
                    method: None,
                    spec: Some(MethodSpec::Ses { alpha: 0.5 }),
                },
            }],
            ..ForecastConfig::default()
        };
        let r = run(&plain(), &cfg, 3).unwrap();
        // SES α = .5 from the mean 2: 2 → 2 → 3 → 1.5 → 1.75.
        let a = &r.series[0];
        assert_eq!(a.method, MethodSpec::Ses { alpha: 0.5 });
        assert_eq!(a.means.len(), 3);
        assert!(a.means.iter().all(|m| (m - 1.75).abs() < 1e-6));
        assert_eq!(a.series_weight, 1.0);
        assert_eq!(r.series[1].class, DemandClass::NoDemand);
        assert_eq!(r.series[1].lead_time_quantile(0.99, 4), 0.0);
        // The run serialises for storage.
        let json = serde_json::to_string(&r).unwrap();
        let back: ForecastRun = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn quantiles_grow_with_level_and_lead_time() {
        let r = run(&plain(), &ForecastConfig::default(), 2).unwrap();
        let a = &r.series[0];
        assert!(a.quantile(0, 0.95) >= a.quantile(0, 0.5));
        assert!(a.lead_time_quantile(0.95, 6) >= a.quantile(0, 0.95));
        // Past the horizon the last mean repeats.
        assert_eq!(a.mean(10), a.mean(1));
    }

    #[test]
    fn a_network_of_series_takes_its_level_and_spread_from_the_pooled_model() {
        // 150 monthly series × 36 of lumpy demand (a k-unit demand every k-th month, k = 1..5);
        // the last one is overridden to SES.
        let n = 150;
        let keys: Vec<SeriesKey> = (0..n)
            .map(|s| SeriesKey {
                part: format!("P{s}"),
                station: "S1".into(),
            })
            .collect();
        let demand = Array2::from_shape_fn((n, 36), |(s, t)| {
            let k = 1 + s % 5;
            if (t + s) % k == 0 {
                k as f32
            } else {
                0.0
            }
        });
        let history = History::from_series(keys, demand, PeriodLength::Month, None).unwrap();
        let cfg = ForecastConfig {
            overrides: vec![Override {
                part: format!("P{}", n - 1),
                station: "S1".into(),
                set: SeriesOverride {
                    method: None,
                    spec: Some(MethodSpec::Ses { alpha: 0.5 }),
                },
            }],
            ..ForecastConfig::default()
        };
        let r = run(&history, &cfg, 12).unwrap();
        let rows = history.series_rows();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let model = PooledModel::fit(&refs, 12).unwrap();
        for (s, f) in r.series.iter().enumerate().take(n - 1) {
            let law = model.predict(&rows[s]);
            assert!(f.pooled);
            assert!((f.series_level - law.mean() as f32).abs() < 1e-6);
            assert!((f.spread.phi - law.nb_dispersion() as f32).abs() < 1e-6);
            // No causal model: the flat level is the forecast.
            assert!(f.means.iter().all(|m| *m == f.series_level));
        }
        let overridden = &r.series[n - 1];
        assert!(!overridden.pooled);
        assert_eq!(overridden.method, MethodSpec::Ses { alpha: 0.5 });
        // Too few series to pool: the series methods alone.
        assert!(run(&plain(), &ForecastConfig::default(), 2)
            .unwrap()
            .series
            .iter()
            .all(|f| !f.pooled));
    }

    #[test]
    fn bad_config_and_zero_horizon_are_rejected() {
        assert!(matches!(
            run(&plain(), &ForecastConfig::default(), 0),
            Err(ForecastError::ZeroHorizon)
        ));
        let mut cfg = ForecastConfig::default();
        cfg.series.grid.alphas = vec![1.5];
        assert!(run(&plain(), &cfg, 1).is_err());
    }
}
