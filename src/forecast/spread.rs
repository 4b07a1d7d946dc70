//! The spread of a forecast: a negative binomial law (NB2: variance μ + φμ²) whose mean is the
//! forecast and whose dispersion φ is fitted by moments on the series' own in-sample one-step
//! forecast errors. φ = 0 is Poisson. A Poisson–gamma mixture is the natural law for counts of
//! lumpy demand, and fitting φ on *forecast errors* (not on raw demand variance) is what
//! DESIGN §6 asks of safety stock: the spread includes the error of the forecast itself.
//!
//! Over a lead time of k periods the sum has mean Σμ and a dispersion between φ/k (periods
//! independent, the sum of k NB(μ, 1/φ) is NB(kμ, k/φ)) and φ (the forecast error is one
//! common level error for the whole lead time). The weight ρ between the two is fitted on the
//! in-sample errors of cumulative K-period forecasts.

use serde::{Deserialize, Serialize};

use super::classify::SeriesStats;
use super::methods::MethodSpec;

/// Upper bound on φ: keeps a series with one huge spike from an absurd tail.
const MAX_PHI: f64 = 25.0;

/// Fitted spread of one series.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Dispersion {
    /// NB2 dispersion of one period's demand around its forecast (0 = Poisson).
    pub phi: f32,
    /// Share of the one-period dispersion that persists over a lead time (0..=1).
    pub rho: f32,
}

impl Dispersion {
    /// Dispersion of the sum over `k` periods.
    pub fn over(&self, k: usize) -> f64 {
        let k = k.max(1) as f64;
        let (phi, rho) = (self.phi as f64, self.rho as f64);
        phi * (rho + (1.0 - rho) / k)
    }

    /// The `p`-quantile of demand with mean `mean` over `k` periods.
    pub fn quantile(&self, mean: f64, k: usize, p: f64) -> f64 {
        nb_quantile(mean, self.over(k), p)
    }

    /// Fits φ and ρ on the in-sample errors of `spec` replayed over `y` alone.
    pub fn fit(spec: &MethodSpec, y: &[f32], stats: &SeriesStats, lead: usize) -> Self {
        ErrorMoments::of(spec, y, stats, lead).dispersion(None)
    }
}

/// Moment sums of the in-sample one-step errors e = y − f and of the cumulative errors over
/// `lead` periods. Under NB2, E[e²] = f + φf², so φ = Σ(e² − f) / Σf²: `excess` / `info`.
/// Sums rather than ratios, so that series can be pooled.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorMoments {
    pub excess: f32,
    pub info: f32,
    pub lead_excess: f32,
    pub lead_info: f32,
    pub lead: u16,
}

/// A pooled dispersion that a series' own moments are shrunk towards, worth `weight` units of
/// `info` (and `lead_weight` of `lead_info`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DispersionPrior {
    pub phi: f64,
    pub phi_lead: f64,
    pub weight: f64,
    pub lead_weight: f64,
}

impl ErrorMoments {
    pub fn of(spec: &MethodSpec, y: &[f32], stats: &SeriesStats, lead: usize) -> Self {
        let lead = lead.max(2);
        let (mut e2, mut f1, mut f2) = (0f64, 0f64, 0f64);
        let (mut c2, mut cf1, mut cf2) = (0f64, 0f64, 0f64);
        spec.replay(y, stats, |t, f| {
            let f = f as f64;
            let e = y[t] as f64 - f;
            e2 += e * e;
            f1 += f;
            f2 += f * f;
            if t + lead <= y.len() {
                let cum: f64 = y[t..t + lead].iter().map(|&v| v as f64).sum();
                let lf = lead as f64 * f;
                c2 += (cum - lf) * (cum - lf);
                cf1 += lf;
                cf2 += lf * lf;
            }
        });
        ErrorMoments {
            excess: (e2 - f1) as f32,
            info: f2 as f32,
            lead_excess: (c2 - cf1) as f32,
            lead_info: cf2 as f32,
            lead: lead.min(u16::MAX as usize) as u16,
        }
    }

    /// φ and ρ from these moments, shrunk towards `prior` when given.
    pub fn dispersion(&self, prior: Option<&DispersionPrior>) -> Dispersion {
        let p = prior.copied().unwrap_or_default();
        let ratio = |num: f64, den: f64| {
            if den > 0.0 {
                (num / den).clamp(0.0, MAX_PHI)
            } else {
                0.0
            }
        };
        let phi = ratio(
            self.excess as f64 + p.weight * p.phi,
            self.info as f64 + p.weight,
        );
        let phi_lead = ratio(
            self.lead_excess as f64 + p.lead_weight * p.phi_lead,
            self.lead_info as f64 + p.lead_weight,
        );
        let k = self.lead.max(2) as f64;
        let rho = if phi > 0.0 {
            ((k * phi_lead / phi - 1.0) / (k - 1.0)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Dispersion {
            phi: phi as f32,
            rho: rho as f32,
        }
    }
}

/// The pooled prior of a group of series: pooled moments, with weight `strength` times the
/// median information of the series that have any.
pub fn pooled_prior<'a>(
    moments: impl Iterator<Item = &'a ErrorMoments>,
    strength: f64,
) -> DispersionPrior {
    let (mut ex, mut info, mut lex, mut linfo) = (0f64, 0f64, 0f64, 0f64);
    let (mut infos, mut linfos) = (Vec::new(), Vec::new());
    for m in moments {
        ex += m.excess as f64;
        info += m.info as f64;
        lex += m.lead_excess as f64;
        linfo += m.lead_info as f64;
        if m.info > 0.0 {
            infos.push(m.info as f64);
            linfos.push(m.lead_info as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            (a / b).clamp(0.0, MAX_PHI)
        } else {
            0.0
        }
    };
    DispersionPrior {
        phi: ratio(ex, info),
        phi_lead: ratio(lex, linfo),
        weight: strength * median(&mut infos),
        lead_weight: strength * median(&mut linfos),
    }
}

/// Smallest whole number q with P(X ≤ q) ≥ p for X negative binomial with mean `mean` and
/// dispersion `phi` (variance mean + phi·mean²; Poisson when phi is 0).
pub fn nb_quantile(mean: f64, phi: f64, p: f64) -> f64 {
    if mean.is_nan() || mean <= 0.0 || p.is_nan() || p <= 0.0 {
        return 0.0;
    }
    let p = p.min(1.0 - 1e-12);
    let var = mean + phi * mean * mean;
    // Far from zero the pmf recursion would start from an underflowed P(0); the normal
    // approximation is then accurate to well under one unit.
    if mean > 500.0 {
        return (mean + inverse_normal(p) * var.sqrt()).max(0.0).ceil();
    }
    // P(k+1) = P(k)·(a + b·k)/(k + 1): Poisson a = μ, b = 0; NB a = r(1 − q), b = 1 − q.
    let (mut pmf, a, b) = if phi < 1e-9 {
        ((-mean).exp(), mean, 0.0)
    } else {
        let r = 1.0 / phi;
        let q = r / (r + mean);
        ((r * q.ln()).exp(), r * (1.0 - q), 1.0 - q)
    };
    let mut cdf = pmf;
    let mut k = 0.0;
    let cap = mean + 60.0 * var.sqrt() + 100.0;
    while cdf < p && k < cap {
        pmf *= (a + b * k) / (k + 1.0);
        k += 1.0;
        cdf += pmf;
    }
    k
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
pub fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn poisson_quantiles_by_hand() {
        // Poisson(1): P(0) = e⁻¹ = .3679, P(≤1) = .7358, P(≤2) = .9197, P(≤3) = .9810.
        assert_eq!(nb_quantile(1.0, 0.0, 0.3), 0.0);
        assert_eq!(nb_quantile(1.0, 0.0, 0.5), 1.0);
        assert_eq!(nb_quantile(1.0, 0.0, 0.9), 2.0);
        assert_eq!(nb_quantile(1.0, 0.0, 0.95), 3.0);
    }

    #[test]
    fn negative_binomial_quantiles_by_hand() {
        // φ = 1 (r = 1) is geometric on {0,1,..} with P(0) = r/(r+μ); μ = 1 gives P(0) = .5
        // and P(≤k) = 1 − .5^(k+1): .5, .75, .875, .9375, .96875.
        assert_eq!(nb_quantile(1.0, 1.0, 0.5), 0.0);
        assert_eq!(nb_quantile(1.0, 1.0, 0.8), 2.0);
        assert_eq!(nb_quantile(1.0, 1.0, 0.9), 3.0);
        assert_eq!(nb_quantile(1.0, 1.0, 0.95), 4.0);
    }

    #[test]
    fn degenerate_means_and_large_means() {
        assert_eq!(nb_quantile(0.0, 2.0, 0.99), 0.0);
        assert_eq!(nb_quantile(f64::NAN, 0.0, 0.99), 0.0);
        // μ = 10 000, Poisson: sd 100, z(.9) = 1.2816 → 10 128.2 → 10 129.
        assert_eq!(nb_quantile(10_000.0, 0.0, 0.9), 10_129.0);
        assert!((inverse_normal(0.975) - 1.959964).abs() < 1e-5);
        assert!((inverse_normal(0.01) + 2.326348).abs() < 1e-5);
    }

    #[test]
    fn lead_time_dispersion_interpolates() {
        let d = Dispersion {
            phi: 2.0,
            rho: 0.25,
        };
        // k = 4: 2·(.25 + .75/4) = .875; k = 1 keeps φ.
        assert!((d.over(4) - 0.875).abs() < 1e-9);
        assert!((d.over(1) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn poisson_looking_errors_fit_near_zero_dispersion() {
        // A constant series of 3s: SES with the mean as level has zero error, so e² − f < 0
        // and φ is clamped to 0 (Poisson).
        let y = [3.0f32; 24];
        let d = Dispersion::fit(&MethodSpec::Ses { alpha: 0.1 }, &y, &SeriesStats::of(&y), 3);
        assert_eq!(d.phi, 0.0);
        // A lumpy series (0,0,0,12 repeated): mean 3, errors −3,−3,−3,+9 → E e² = 27;
        // φ ≈ (27 − 3)/9 = 2.67 with the level held at 3 (α small keeps it near 3).
        let y: Vec<f32> = (0..48)
            .map(|t| if t % 4 == 3 { 12.0 } else { 0.0 })
            .collect();
        let d = Dispersion::fit(
            &MethodSpec::Ses { alpha: 0.02 },
            &y,
            &SeriesStats::of(&y),
            4,
        );
        assert!((d.phi - 2.67).abs() < 0.3, "{d:?}");
        // Over 4 periods the demand is exactly 12 = 4·3: errors vanish, so ρ is 0.
        assert!(d.rho < 0.05, "{d:?}");
    }
}
