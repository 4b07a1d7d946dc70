//! The per-series pipeline: classify, pick the method (class default or override), choose its
//! parameters on the series' own history, fit the spread. Allocation-free; this is the loop the
//! throughput benchmark measures.

use serde::{Deserialize, Serialize};

use super::classify::{DemandClass, SeriesStats};
use super::methods::{fit, Grid, MethodKind, MethodSpec};
use super::spread::{pooled_prior, Dispersion, ErrorMoments};
use super::ForecastError;

/// The default method of each demand class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassMethods {
    pub smooth: MethodKind,
    pub erratic: MethodKind,
    pub intermittent: MethodKind,
    pub lumpy: MethodKind,
    pub no_demand: MethodKind,
}

impl Default for ClassMethods {
    /// SES where demand is regular; SBA for intermittent; TSB for lumpy and silent series,
    /// because TSB follows a part that is dying out down to zero while Croston-type methods
    /// hold their last level for ever.
    fn default() -> Self {
        ClassMethods {
            smooth: MethodKind::Ses,
            erratic: MethodKind::Ses,
            intermittent: MethodKind::Sba,
            lumpy: MethodKind::Tsb,
            no_demand: MethodKind::Tsb,
        }
    }
}

impl ClassMethods {
    pub fn for_class(&self, class: DemandClass) -> MethodKind {
        match class {
            DemandClass::Smooth => self.smooth,
            DemandClass::Erratic => self.erratic,
            DemandClass::Intermittent => self.intermittent,
            DemandClass::Lumpy => self.lumpy,
            DemandClass::NoDemand => self.no_demand,
        }
    }
}

/// What a planner may fix for one series: the method family (parameters still fitted) or a
/// complete method with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SeriesOverride {
    pub method: Option<MethodKind>,
    pub spec: Option<MethodSpec>,
}

impl SeriesOverride {
    pub fn check(&self) -> Result<(), ForecastError> {
        if let (Some(kind), Some(spec)) = (self.method, self.spec) {
            if spec.kind() != kind {
                return Err(ForecastError::ConflictingOverride { method: kind, spec });
            }
        }
        self.spec.as_ref().map_or(Ok(()), MethodSpec::check)
    }
}

/// Settings of the series methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeriesConfig {
    pub grid: Grid,
    pub methods: ClassMethods,
    /// Periods of the cumulative in-sample errors that fit the lead-time dispersion.
    pub lead_fit_periods: usize,
    /// Weight of the class-pooled dispersion prior, in multiples of the median series'
    /// information (0 = every series on its own errors alone).
    pub pool_strength: f64,
    /// Take each series' level and spread from the cross-series hurdle model
    /// ([`super::pooled`]) fitted on inner origins of the training periods, where there are
    /// enough of them and of series: in a backtest its mean and whole-unit quantiles, in a
    /// run its mean and the NB dispersion of its variance. The series' own level and negative
    /// binomial spread otherwise, and for a series whose method a planner overrode.
    pub pooled: bool,
}

impl Default for SeriesConfig {
    fn default() -> Self {
        SeriesConfig {
            grid: Grid::default(),
            methods: ClassMethods::default(),
            lead_fit_periods: 3,
            pool_strength: 0.0,
            pooled: true,
        }
    }
}

impl SeriesConfig {
    pub fn check(&self) -> Result<(), ForecastError> {
        for &a in self.grid.alphas.iter().chain(&self.grid.betas) {
            MethodSpec::Ses { alpha: a }.check()?;
        }
        if self.grid.alphas.is_empty() || self.grid.betas.is_empty() {
            return Err(ForecastError::EmptyGrid);
        }
        Ok(())
    }
}

/// Everything fitted on one series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesFit {
    pub class: DemandClass,
    pub method: MethodSpec,
    /// Mean demand per period from the end of the history on (these methods are flat).
    pub level: f32,
    pub spread: Dispersion,
    /// The in-sample error moments behind `spread`, kept for pooling.
    pub moments: ErrorMoments,
}

/// Fits one series. `y` is its whole history, oldest first.
pub fn fit_series(y: &[f32], cfg: &SeriesConfig, over: Option<&SeriesOverride>) -> SeriesFit {
    let stats = SeriesStats::of(y);
    let class = stats.class();
    let method = match over {
        Some(SeriesOverride {
            spec: Some(spec), ..
        }) => *spec,
        Some(SeriesOverride {
            method: Some(kind), ..
        }) => fit(*kind, y, &stats, &cfg.grid),
        _ => fit(cfg.methods.for_class(class), y, &stats, &cfg.grid),
    };
    let level = method.replay(y, &stats, |_, _| {}).max(0.0);
    let moments = ErrorMoments::of(&method, y, &stats, cfg.lead_fit_periods);
    SeriesFit {
        class,
        method,
        level,
        spread: moments.dispersion(None),
        moments,
    }
}

/// Empirical-Bayes pooling of the spread: each series' dispersion is shrunk towards the pooled
/// dispersion of its demand class, the prior weighing `strength` median series. A series'
/// own 3–4 years of errors say little about its tail; its class says more.
pub fn pool_spreads(fits: &mut [SeriesFit], strength: f64) {
    if strength <= 0.0 {
        return;
    }
    for class in DemandClass::ALL {
        let of_class = || fits.iter().filter(|f| f.class == class).map(|f| &f.moments);
        let prior = pooled_prior(of_class(), strength);
        for f in fits.iter_mut().filter(|f| f.class == class) {
            f.spread = f.moments.dispersion(Some(&prior));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn class_drives_the_default_method() {
        let cfg = SeriesConfig::default();
        let smooth = fit_series(&[4.0, 5.0, 6.0, 5.0, 4.0, 6.0], &cfg, None);
        assert_eq!(smooth.class, DemandClass::Smooth);
        assert_eq!(smooth.method.kind(), MethodKind::Ses);
        let inter = fit_series(&[0.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.0], &cfg, None);
        assert_eq!(inter.method.kind(), MethodKind::Sba);
        let lumpy = fit_series(&[0.0, 1.0, 0.0, 0.0, 9.0, 0.0], &cfg, None);
        assert_eq!(lumpy.method.kind(), MethodKind::Tsb);
    }

    #[test]
    fn overrides_fix_the_family_or_everything() {
        let cfg = SeriesConfig::default();
        let y = [0.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.0];
        let family = SeriesOverride {
            method: Some(MethodKind::Croston),
            spec: None,
        };
        assert_eq!(
            fit_series(&y, &cfg, Some(&family)).method.kind(),
            MethodKind::Croston
        );
        let fixed = SeriesOverride {
            method: None,
            spec: Some(MethodSpec::Ses { alpha: 0.4 }),
        };
        let f = fit_series(&y, &cfg, Some(&fixed));
        assert_eq!(f.method, MethodSpec::Ses { alpha: 0.4 });
        assert!((f.level - MethodSpec::Ses { alpha: 0.4 }.forecast(&y)).abs() < 1e-6);
        let clash = SeriesOverride {
            method: Some(MethodKind::Tsb),
            spec: Some(MethodSpec::Ses { alpha: 0.4 }),
        };
        assert!(clash.check().is_err());
    }

    #[test]
    fn empty_and_silent_series_forecast_zero() {
        let cfg = SeriesConfig::default();
        for y in [&[][..], &[0.0; 12][..]] {
            let f = fit_series(y, &cfg, None);
            assert_eq!(f.class, DemandClass::NoDemand);
            assert_eq!(f.level, 0.0);
        }
    }
}
