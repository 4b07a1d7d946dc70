//! A cross-series (global) hurdle model of next-period demand, fitted on inner rolling origins
//! of the history at hand.
//!
//! The per-series methods see one series each: 3–4 years of a slow part say little about its
//! level next year, and nothing about how parts like it age. Pooled over all series, the same
//! history says a lot: how much a level seen over the last 3, 12 or all months carries into the
//! next year (high series regress down, series waking up rise), how a long silence predicts
//! death, how big the next demand is given the sizes seen so far. The model is:
//!
//! - occurrence: P(D > 0) = logistic(x·γ);
//! - size: D | D > 0 = 1 + NB(μ − 1, φ), μ − 1 = exp(z·δ) (a Poisson regression), one φ;
//!
//! with x and z summaries of the series' own history ([`features`]). γ and δ are fitted by
//! Newton's method (logistic and Poisson likelihood), φ by maximum likelihood, on examples made
//! *inside* the history: at inner origins o = T − H, T − H − s, … every series' first o periods
//! give the features and its next H periods the targets. Nothing after the history is seen,
//! and every coefficient is re-fitted on each data set — nothing is tuned to one.
//!
//! A hurdle law fits lumpy demand where a negative binomial around a mean does not: a part that
//! sells once a year, 8 at a time, has P(0) high *and* a size far from 1, which one mean and one
//! dispersion cannot both match.
//!
//! Quantiles are whole units, and the smallest whole q with P(D ≤ q) ≥ p is exceeded in *less*
//! than 1 − p of periods (P(D > q) ≤ 1 − p, with jumps of several points where P(0) is near p).
//! A [`LevelMap`] fitted on the same inner examples says at which level of the law to read the
//! quantile so that it is exceeded in about 1 − p of them: recalibration of the probability
//! integral transform (Kuleshov, Fenner & Ermon 2018, "Accurate uncertainty for deep learning
//! using calibrated regression"), here for whole-unit quantiles. It corrects the rounding and
//! any misfit of the law alike, and it is fitted on the history only.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::spread::nb_quantile;

/// Occurrence features (with the intercept).
pub const NX: usize = 11;
/// Size features: the occurrence features and three of the demand sizes.
pub const NZ: usize = NX + 3;
/// Examples used for a fit at most; series are taken at a regular stride beyond that.
const MAX_EXAMPLES: usize = 400_000;
/// Spacing of the inner origins.
const ORIGIN_STEP: usize = 3;
/// Inner origins need at least this many periods of history before them.
const MIN_INNER_HISTORY: usize = 12;
/// Inner origins needed to fit the model. At one origin every history has the same length,
/// so the windows coincide (the last-12 mean is the whole mean) and the fit cannot tell
/// them apart, and a forecast from a longer history extrapolates: on the demo network,
/// trained on 24 months with one inner origin, the model forecast 4.3× the demand that came
/// (the series methods: −16 %); from 3 origins on (train 27 or 30) its bias and the stock
/// for an 85 % fill were below theirs, its RMSSE a little above.
const MIN_ORIGINS: usize = 3;
/// Series needed to fit the model: 25 coefficients and a dispersion are not learnt from a
/// handful of series, whose own methods then stand alone.
pub const MIN_SERIES: usize = 100;

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PooledModel {
    /// Softening of the log mean features: a tenth of the pooled mean demand per period.
    pub soft: f64,
    pub occurrence: [f64; NX],
    /// Range of x·γ over the examples fitted; a forecast's is clamped to it.
    pub occurrence_range: [f64; 2],
    pub size: [f64; NZ],
    /// Range of z·δ over the examples with demand; a forecast's is clamped to it. A history
    /// unlike any the fit saw (a burst of large demands, then a silence longer than any inner
    /// origin had) would otherwise extrapolate the log-linear size without bound.
    pub size_range: [f64; 2],
    /// NB2 dispersion of (size − 1).
    pub size_phi: f64,
    /// Prior weight, in demands, of the model's size law against the series' own sizes: the
    /// size law is own·n/(n + κ) + model·κ/(n + κ) after n demands (κ = ∞: the model alone).
    pub size_kappa: f64,
    /// Level of the law at which to read a nominal quantile.
    pub levels: LevelMap,
    /// Inner origins and examples the fit used.
    pub origins: usize,
    pub examples: usize,
}

/// A monotone map from the nominal level p of a quantile to the level p′ of the law at which
/// the whole-unit quantile is read, tabulated at [`LevelMap::GRID`] and linear between. Fitted
/// from the probability integral transform of held-out demands: with u = P(D < d) under the
/// law, the whole-unit p′-quantile covers d exactly when u < p′, so the share of examples
/// covered at p′ is the empirical CDF of u at p′ and p′ is read off as the p-quantile of the
/// u's. Empty = the identity (nominal levels used as they are).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LevelMap {
    pub nominal: Vec<f64>,
    pub working: Vec<f64>,
}

impl LevelMap {
    /// Nominal levels tabulated: every percent and the far tail.
    pub const GRID: [f64; 103] = {
        let mut g = [0.0; 103];
        let mut i = 0;
        while i < 99 {
            g[i] = (i + 1) as f64 / 100.0;
            i += 1;
        }
        g[99] = 0.995;
        g[100] = 0.998;
        g[101] = 0.999;
        g[102] = 0.9995;
        g
    };
    /// A level is tabulated only where at least this many examples fall on either side of it;
    /// past the last one the tail is extrapolated at a constant ratio of exceedance.
    pub const MIN_SIDE: f64 = 20.0;

    /// The map that makes the whole-unit quantiles cover the examples whose PIT values
    /// (P(D < d) under their law) are `u`.
    pub fn from_pit(u: &mut [f64]) -> LevelMap {
        u.sort_by(f64::total_cmp);
        let n = u.len();
        let at = |i: usize| u.get(i).copied().unwrap_or(1.0);
        let mut map = LevelMap::default();
        for p in Self::GRID {
            let want = p * n as f64;
            if want < Self::MIN_SIDE || n as f64 - want < Self::MIN_SIDE {
                continue;
            }
            // The p′ that covers `want` examples falls between two sorted u's; ties (all the
            // zero demands share u = 0) leave a choice of counts a or b, take the nearer one.
            let k = (want.ceil() as usize).clamp(1, n);
            let lo = u[k - 1];
            let a = u.partition_point(|&v| v < lo);
            let b = u.partition_point(|&v| v <= lo);
            let c = if want - a as f64 <= b as f64 - want {
                a
            } else {
                b
            };
            let below = if c == 0 { 0.0 } else { u[c - 1] };
            map.nominal.push(p);
            map.working.push(0.5 * (below + at(c)));
        }
        map
    }

    /// The level of the law at which to read the nominal `p`-quantile.
    pub fn working(&self, p: f64) -> f64 {
        let (nom, work) = (&self.nominal, &self.working);
        let (Some(&first), Some(&last)) = (nom.first(), nom.last()) else {
            return p;
        };
        if p.is_nan() {
            return p;
        }
        if p <= first {
            return p * work[0] / first;
        }
        if p >= last {
            let last_work = work[work.len() - 1];
            return 1.0 - (1.0 - p) * (1.0 - last_work) / (1.0 - last);
        }
        let i = nom.partition_point(|&v| v <= p);
        let w = (p - nom[i - 1]) / (nom[i] - nom[i - 1]);
        work[i - 1] + w * (work[i] - work[i - 1])
    }
}

/// The law of one period's demand: 0 with probability 1 − `p`, else a size drawn from the
/// mixture `own_weight` × the series' own past sizes + (1 − `own_weight`) × (1 + NB(`size` − 1,
/// `phi`)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hurdle {
    pub p: f64,
    /// Mean size of the model's size law (≥ 1).
    pub size: f64,
    pub phi: f64,
    pub own_weight: f64,
    /// The series' past demand sizes, ascending.
    pub own: Vec<f64>,
}

impl Hurdle {
    fn as_law(&self) -> Law<'_> {
        Law {
            p: self.p,
            size: self.size,
            phi: self.phi,
            own_weight: self.own_weight,
            own: &self.own,
        }
    }

    pub fn mean(&self) -> f64 {
        self.as_law().mean()
    }

    /// Variance of one period's demand: with S the size, E[D²] = p·E[S²], so
    /// Var D = p·E[S²] − (p·E[S])²; the model's size 1 + X, X ~ NB(m, φ), has
    /// E[S²] = m + φm² + (1 + m)², the own sizes their sample mean square.
    pub fn variance(&self) -> f64 {
        let law = self.as_law();
        let m = (self.size - 1.0).max(0.0);
        let model_sq = m + self.phi * m * m + (1.0 + m) * (1.0 + m);
        let w = law.own_weight();
        let own_sq = if self.own.is_empty() {
            model_sq
        } else {
            self.own.iter().map(|v| v * v).sum::<f64>() / self.own.len() as f64
        };
        let mean = law.mean();
        (self.p * (w * own_sq + (1.0 - w) * model_sq) - mean * mean).max(0.0)
    }

    /// The NB2 dispersion φ with this law's mean and variance (Var = μ + φμ²; 0 when the
    /// variance is below the mean's, where a Poisson is the closest NB).
    pub fn nb_dispersion(&self) -> f64 {
        let mean = self.mean();
        if mean <= 0.0 {
            return 0.0;
        }
        ((self.variance() - mean) / (mean * mean)).max(0.0)
    }

    /// Smallest whole q with P(D ≤ q) ≥ `level`.
    pub fn quantile(&self, level: f64) -> f64 {
        self.as_law().quantile(level)
    }

    /// The quantiles at ascending `levels`, in one walk up the size law.
    pub fn quantiles<const L: usize>(&self, levels: &[f64; L]) -> [f64; L] {
        self.as_law().quantiles(levels)
    }

    /// P(D ≤ k) for a whole k (P(D ≤ −1) = 0).
    pub fn cdf(&self, k: f64) -> f64 {
        self.as_law().cdf(k)
    }
}

/// A [`Hurdle`] that borrows the own sizes (no allocation per law).
#[derive(Debug, Clone, Copy)]
struct Law<'a> {
    p: f64,
    size: f64,
    phi: f64,
    own_weight: f64,
    own: &'a [f64],
}

impl Law<'_> {
    fn own_weight(&self) -> f64 {
        if self.own.is_empty() {
            0.0
        } else {
            self.own_weight
        }
    }

    fn mean(&self) -> f64 {
        let own_mean = if self.own.is_empty() {
            self.size
        } else {
            self.own.iter().sum::<f64>() / self.own.len() as f64
        };
        let w = self.own_weight();
        self.p * (w * own_mean + (1.0 - w) * self.size)
    }

    /// Level t of the size law that the overall `level` asks for, or `None` when 0 reaches it.
    fn size_level(&self, level: f64) -> Option<f64> {
        if level.is_nan() || level <= 1.0 - self.p || self.p <= 0.0 {
            return None;
        }
        Some(((level - (1.0 - self.p)) / self.p).min(1.0))
    }

    fn quantile(&self, level: f64) -> f64 {
        self.quantiles(&[level])[0]
    }

    /// The quantiles at ascending `levels` in one walk up the size law.
    fn quantiles<const L: usize>(&self, levels: &[f64; L]) -> [f64; L] {
        let mut out = [0f64; L];
        let mean = self.size - 1.0;
        if self.own_weight() <= 0.0 && mean > 500.0 {
            // Far from zero the walk would start from an underflowed P(0); nb_quantile then
            // uses the normal approximation.
            for (o, &l) in out.iter_mut().zip(levels) {
                if let Some(t) = self.size_level(l) {
                    *o = 1.0 + nb_quantile(mean, self.phi, t);
                }
            }
            return out;
        }
        let mut walk = SizeWalk::new(self);
        for (o, &l) in out.iter_mut().zip(levels) {
            let Some(t) = self.size_level(l) else {
                continue;
            };
            while walk.cdf() < t - 1e-12 && !walk.at_cap() {
                walk.advance();
            }
            *o = walk.size();
        }
        out
    }

    /// P(D = d) for a whole d.
    fn pmf(&self, d: f64) -> f64 {
        if d.is_nan() || d < 0.0 {
            return 0.0;
        }
        if d < 1.0 {
            return 1.0 - self.p.clamp(0.0, 1.0);
        }
        if self.p <= 0.0 {
            return 0.0;
        }
        let mut walk = SizeWalk::new(self);
        let mut below = 0.0;
        while walk.size() < d.floor() && !walk.at_cap() {
            below = walk.cdf();
            walk.advance();
        }
        self.p * (walk.cdf() - below).max(0.0)
    }

    fn cdf(&self, k: f64) -> f64 {
        if k.is_nan() || k < 0.0 {
            return 0.0;
        }
        let zero = 1.0 - self.p.clamp(0.0, 1.0);
        if k < 1.0 || self.p <= 0.0 {
            return zero;
        }
        let mut walk = SizeWalk::new(self);
        while walk.size() < k.floor() && !walk.at_cap() {
            walk.advance();
        }
        zero + self.p * walk.cdf()
    }
}

/// Walks the CDF of the size law over the sizes 1, 2, …, summing both parts of the mixture.
struct SizeWalk<'a> {
    w: f64,
    own: &'a [f64],
    pmf: f64,
    a: f64,
    b: f64,
    nb_cdf: f64,
    seen: usize,
    /// The size is k + 1.
    k: f64,
    cap: f64,
}

impl<'a> SizeWalk<'a> {
    fn new(law: &Law<'a>) -> Self {
        let mean = (law.size - 1.0).max(0.0);
        let (pmf, a, b) = nb_recursion(mean, law.phi);
        SizeWalk {
            w: law.own_weight(),
            own: law.own,
            pmf,
            a,
            b,
            nb_cdf: pmf,
            seen: 0,
            k: 0.0,
            cap: law.own.last().copied().unwrap_or(1.0) + mean * 60.0 + 200.0,
        }
    }

    fn size(&self) -> f64 {
        self.k + 1.0
    }

    fn at_cap(&self) -> bool {
        self.k >= self.cap
    }

    /// P(size ≤ the current size).
    fn cdf(&mut self) -> f64 {
        while self.seen < self.own.len() && self.own[self.seen] <= self.k + 1.0 {
            self.seen += 1;
        }
        let own = if self.own.is_empty() {
            0.0
        } else {
            self.seen as f64 / self.own.len() as f64
        };
        (1.0 - self.w) * self.nb_cdf + self.w * own
    }

    fn advance(&mut self) {
        self.pmf *= (self.a + self.b * self.k) / (self.k + 1.0);
        self.k += 1.0;
        self.nb_cdf += self.pmf;
    }
}

/// P(0) and the (a, b) of P(k+1) = P(k)·(a + b·k)/(k + 1) for NB2(mean, φ) (Poisson at φ = 0).
fn nb_recursion(mean: f64, phi: f64) -> (f64, f64, f64) {
    if mean <= 0.0 {
        return (1.0, 0.0, 0.0);
    }
    if phi < 1e-9 {
        return ((-mean).exp(), mean, 0.0);
    }
    let r = 1.0 / phi;
    let q = r / (r + mean);
    ((r * q.ln()).exp(), r * (1.0 - q), 1.0 - q)
}

fn softened_log(v: f64, soft: f64) -> f64 {
    (v + soft).ln()
}

/// The summaries of a history `h` (oldest first) that the model reads: mean of the last 3, of
/// the last 12 and of all periods, an exponentially weighted mean (weight 0.9 per period back),
/// the periods since the last demand, the share of demand periods in the last 12, two weighted
/// shares (0.7, 0.9), the share over all periods, and whether there was any demand at all; for
/// the size the mean and the largest size and the number of demands. An empty history reads as
/// one zero period.
///
/// A history without demand does not say how long the part has been silent, only that it has
/// been for at least the whole history (a part not yet sold, or dead before the data begin): its
/// silence reads as 0 and the indicator carries it, so that the slope of the silence is learnt
/// from parts that did sell and is not extrapolated to the longer histories of the forecast.
pub fn features(h: &[f32], soft: f64) -> ([f64; NX], [f64; NZ]) {
    let n = h.len().max(1);
    let mean_last = |w: usize| {
        let w = w.min(h.len());
        if w == 0 {
            0.0
        } else {
            h[h.len() - w..].iter().map(|&v| v as f64).sum::<f64>() / w as f64
        }
    };
    let (mut e9, mut i7, mut i9, mut wsum9, mut wsum7, mut w9, mut w7) =
        (0f64, 0f64, 0f64, 0f64, 0f64, 1f64, 1f64);
    let mut since = None;
    let (mut nonzero, mut total, mut largest) = (0usize, 0f64, 0f64);
    for (back, &v) in h.iter().rev().enumerate() {
        let v = v as f64;
        let hit = if v > 0.0 { 1.0 } else { 0.0 };
        e9 += w9 * v;
        i9 += w9 * hit;
        i7 += w7 * hit;
        wsum9 += w9;
        wsum7 += w7;
        w9 *= 0.9;
        w7 *= 0.7;
        if v > 0.0 {
            since.get_or_insert(back);
            nonzero += 1;
            total += v;
            largest = largest.max(v);
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let since = since.unwrap_or(h.len()) as f64;
    let last12 = h.len().clamp(1, 12);
    let nz12 = h[h.len() - h.len().min(12)..]
        .iter()
        .filter(|&&v| v > 0.0)
        .count() as f64
        / last12 as f64;
    let never = nonzero == 0;
    let x = [
        1.0,
        softened_log(mean_last(3), soft),
        softened_log(mean_last(12), soft),
        softened_log(total / n as f64, soft),
        softened_log(ratio(e9, wsum9), soft),
        if never { 0.0 } else { (1.0 + since).ln() },
        nz12,
        ratio(i7, wsum7),
        ratio(i9, wsum9),
        nonzero as f64 / n as f64,
        if never { 1.0 } else { 0.0 },
    ];
    let size_mean = if nonzero > 0 {
        total / nonzero as f64
    } else {
        1.0
    };
    let mut z = [0f64; NZ];
    z[..NX].copy_from_slice(&x);
    z[NX] = size_mean.max(1.0).ln();
    z[NX + 1] = largest.max(1.0).ln();
    z[NX + 2] = (1.0 + nonzero as f64).ln();
    (x, z)
}

/// One training example: features at an inner origin and the demand of one later period.
struct Example {
    z: [f64; NZ],
    demand: f64,
    /// Index of the series' past sizes at the origin (in the fit's `pasts`).
    past: usize,
}

/// The past demand sizes of `h`, rounded to whole units, ascending.
fn past_sizes(h: &[f32]) -> Vec<f64> {
    let mut v: Vec<f64> = h
        .iter()
        .filter(|&&d| d > 0.0)
        .map(|&d| (d as f64).round().max(1.0))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Histories up to this long keep their sizes on the stack in [`PooledModel::forecast`].
pub const STACK_HISTORY: usize = 128;

/// Candidate κ for the own-size blend; infinity is the model's size law alone.
const KAPPAS: [f64; 7] = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, f64::INFINITY];

impl PooledModel {
    /// Fits the model on `rows` (every series' history, all of one length T), for forecasts
    /// `horizon` periods ahead. `None` when the history is too short for an inner origin
    /// (fewer than 3 inner origins: T < 18 + the inner horizon), holds no demand, or has fewer
    /// than [`MIN_SERIES`] series.
    pub fn fit(rows: &[&[f32]], horizon: usize) -> Option<PooledModel> {
        if rows.len() < MIN_SERIES {
            return None;
        }
        let t = rows.first()?.len();
        let inner = horizon.clamp(1, t / 2);
        if t < MIN_INNER_HISTORY + inner || rows.iter().any(|r| r.len() != t) {
            return None;
        }
        let origins: Vec<usize> = (MIN_INNER_HISTORY..=t - inner)
            .rev()
            .step_by(ORIGIN_STEP)
            .collect();
        if origins.len() < MIN_ORIGINS {
            return None;
        }
        let total: f64 = rows
            .par_iter()
            .map(|r| r.iter().map(|&v| v as f64).sum::<f64>())
            .sum();
        let mean = total / (rows.len() * t) as f64;
        if mean.is_nan() || mean <= 0.0 {
            return None;
        }
        let soft = 0.1 * mean;
        let per_series = origins.len() * inner;
        let stride = (rows.len() * per_series).div_ceil(MAX_EXAMPLES).max(1);
        let sampled: Vec<&[f32]> = rows.iter().step_by(stride).copied().collect();
        let pasts: Vec<Vec<f64>> = sampled
            .par_iter()
            .flat_map_iter(|r| origins.iter().map(move |&o| past_sizes(&r[..o])))
            .collect();
        let n_origins = origins.len();
        let origins = &origins;
        let examples: Vec<Example> = sampled
            .par_iter()
            .enumerate()
            .flat_map_iter(|(s, r)| {
                let r: &[f32] = r;
                origins.iter().enumerate().flat_map(move |(i, &o)| {
                    let (_, z) = features(&r[..o], soft);
                    r[o..o + inner].iter().map(move |&d| Example {
                        z,
                        demand: d.max(0.0).round() as f64,
                        past: s * n_origins + i,
                    })
                })
            })
            .collect();
        let occurrence = newton::<NX>(
            &examples,
            |e| if e.demand > 0.0 { 1.0 } else { 0.0 },
            Glm::Logistic,
        );
        let sized: Vec<Example> = examples
            .iter()
            .filter(|e| e.demand > 0.0)
            .map(|e| Example {
                z: e.z,
                demand: e.demand - 1.0,
                past: e.past,
            })
            .collect();
        let size = newton::<NZ>(&sized, |e| e.demand, Glm::Poisson);
        let size_phi = fit_phi(&sized, &size);
        let occurrence_range = predictor_range(&examples, &occurrence);
        let size_range = predictor_range(&sized, &size);
        drop(sized);
        let mut model = PooledModel {
            soft,
            occurrence,
            occurrence_range,
            size,
            size_range,
            size_phi,
            size_kappa: f64::INFINITY,
            levels: LevelMap::default(),
            origins: origins.len(),
            examples: examples.len(),
        };
        model.size_kappa = model.choose_kappa(&examples, &pasts);
        model.levels = model.calibrate(&examples, &pasts);
        Some(model)
    }

    /// The law of demand in each period after history `h` (the model has no term for the
    /// distance ahead: the law is that of any period of the horizon it was fitted for).
    pub fn predict(&self, h: &[f32]) -> Hurdle {
        let (_, z) = features(h, self.soft);
        let own = past_sizes(h);
        let law = self.law(&z, &own, self.size_kappa);
        Hurdle {
            p: law.p,
            size: law.size,
            phi: law.phi,
            own_weight: law.own_weight,
            own,
        }
    }

    /// Mean and whole-unit quantiles at the ascending nominal `levels` of demand in each period
    /// after history `h`: [`PooledModel::predict`] then [`PooledModel::quantiles`], without
    /// allocating for histories of up to [`STACK_HISTORY`] periods (the bulk path).
    pub fn forecast<const L: usize>(&self, h: &[f32], levels: &[f64; L]) -> (f64, [f64; L]) {
        let (_, z) = features(h, self.soft);
        let mut buf = [0f64; STACK_HISTORY];
        let heap;
        let own: &[f64] = if h.len() <= STACK_HISTORY {
            let mut n = 0;
            for &d in h {
                if d > 0.0 {
                    buf[n] = (d as f64).round().max(1.0);
                    n += 1;
                }
            }
            buf[..n].sort_unstable_by(f64::total_cmp);
            &buf[..n]
        } else {
            heap = past_sizes(h);
            &heap
        };
        let law = self.law(&z, own, self.size_kappa);
        (
            law.mean(),
            law.quantiles(&levels.map(|p| self.levels.working(p))),
        )
    }

    /// Whole-unit quantiles of `law` at the ascending nominal `levels`, each read at the level
    /// of the law that covered that share of the inner examples ([`LevelMap`]).
    pub fn quantiles<const L: usize>(&self, law: &Hurdle, levels: &[f64; L]) -> [f64; L] {
        law.as_law()
            .quantiles(&levels.map(|p| self.levels.working(p)))
    }

    fn law<'a>(&self, z: &[f64; NZ], own: &'a [f64], kappa: f64) -> Law<'a> {
        let [lo, hi] = self.occurrence_range;
        let eta = dot(&z[..NX], &self.occurrence).clamp(lo, hi);
        let p = 1.0 / (1.0 + (-eta.clamp(-40.0, 40.0)).exp());
        let [lo, hi] = self.size_range;
        let size = 1.0 + dot(z, &self.size).clamp(lo, hi).min(40.0).exp();
        let n = own.len() as f64;
        let own_weight = if kappa.is_finite() && n > 0.0 {
            n / (n + kappa)
        } else {
            0.0
        };
        Law {
            p,
            size,
            phi: self.size_phi,
            own_weight,
            own,
        }
    }

    /// κ of the own-size blend by likelihood: the κ under which the inner examples' demands
    /// are most probable (log score, a proper scoring rule). Ties keep the model's size law.
    /// κ moves only the size law, so only the examples with demand are scored.
    fn choose_kappa(&self, examples: &[Example], pasts: &[Vec<f64>]) -> f64 {
        let neg_loglik = |kappa: f64| -> f64 {
            -examples
                .par_iter()
                .filter(|e| e.demand > 0.0)
                .map(|e| {
                    let law = self.law(&e.z, &pasts[e.past], kappa);
                    law.pmf(e.demand).max(1e-300).ln()
                })
                .sum::<f64>()
        };
        let mut best = (neg_loglik(f64::INFINITY), f64::INFINITY);
        for &kappa in &KAPPAS[..KAPPAS.len() - 1] {
            let s = neg_loglik(kappa);
            if s < best.0 {
                best = (s, kappa);
            }
        }
        best.1
    }

    /// The level map from the PIT values P(D < d) of the inner examples under the fitted law.
    fn calibrate(&self, examples: &[Example], pasts: &[Vec<f64>]) -> LevelMap {
        let mut u: Vec<f64> = examples
            .par_iter()
            .map(|e| {
                self.law(&e.z, &pasts[e.past], self.size_kappa)
                    .cdf(e.demand - 1.0)
            })
            .collect();
        LevelMap::from_pit(&mut u)
    }
}

/// Smallest and largest linear predictor of `beta` over `examples` (the whole line when
/// there are none).
fn predictor_range<const K: usize>(examples: &[Example], beta: &[f64; K]) -> [f64; 2] {
    let empty = [f64::INFINITY, f64::NEG_INFINITY];
    let [lo, hi] = examples
        .par_iter()
        .map(|e| dot(&e.z[..K], beta))
        .fold(|| empty, |[lo, hi], v| [lo.min(v), hi.max(v)])
        .reduce(|| empty, |a, b| [a[0].min(b[0]), a[1].max(b[1])]);
    if lo <= hi {
        [lo, hi]
    } else {
        [f64::NEG_INFINITY, f64::INFINITY]
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[derive(Clone, Copy)]
enum Glm {
    Logistic,
    Poisson,
}

/// Maximum likelihood by Newton's method on the first `K` features of the examples: a
/// logistic regression of `target` ∈ {0, 1} or a Poisson regression of a count. A tiny ridge
/// keeps the Hessian invertible when a feature is constant; steps are halved while the
/// likelihood does not improve.
#[allow(clippy::needless_range_loop)] // matrix code reads best with indices
fn newton<const K: usize>(
    examples: &[Example],
    target: impl Fn(&Example) -> f64 + Sync,
    glm: Glm,
) -> [f64; K] {
    let mut beta = [0f64; K];
    if examples.is_empty() {
        return beta;
    }
    let n = examples.len() as f64;
    let ybar = examples.iter().map(&target).sum::<f64>() / n;
    beta[0] = match glm {
        Glm::Logistic => {
            let p = ybar.clamp(1e-6, 1.0 - 1e-6);
            (p / (1.0 - p)).ln()
        }
        Glm::Poisson => ybar.max(1e-6).ln(),
    };
    // Log-likelihood (up to constants), gradient and Hessian (negated) at beta.
    let eval = |beta: &[f64; K]| {
        examples
            .par_chunks(4096)
            .map(|chunk| {
                let mut g = [0f64; K];
                let mut h = [[0f64; K]; K];
                let mut ll = 0f64;
                for e in chunk {
                    let x = &e.z[..K];
                    let eta: f64 = x.iter().zip(beta).map(|(a, b)| a * b).sum();
                    let y = target(e);
                    let (resid, weight) = match glm {
                        Glm::Logistic => {
                            let eta = eta.clamp(-40.0, 40.0);
                            let p = 1.0 / (1.0 + (-eta).exp());
                            ll += y * eta - (1.0 + eta.exp()).ln();
                            (y - p, p * (1.0 - p))
                        }
                        Glm::Poisson => {
                            let eta = eta.min(40.0);
                            let mu = eta.exp();
                            ll += y * eta - mu;
                            (y - mu, mu)
                        }
                    };
                    for a in 0..K {
                        g[a] += x[a] * resid;
                        let wa = x[a] * weight;
                        for b in a..K {
                            h[a][b] += wa * x[b];
                        }
                    }
                }
                (ll, g, h)
            })
            .reduce(
                || (0.0, [0f64; K], [[0f64; K]; K]),
                |mut acc, part| {
                    acc.0 += part.0;
                    for a in 0..K {
                        acc.1[a] += part.1[a];
                        for b in 0..K {
                            acc.2[a][b] += part.2[a][b];
                        }
                    }
                    acc
                },
            )
    };
    let (mut ll, mut g, mut h) = eval(&beta);
    for _ in 0..40 {
        for a in 0..K {
            h[a][a] += 1e-6 * n;
            for b in 0..a {
                h[a][b] = h[b][a];
            }
        }
        let Some(step) = solve(h, g) else { break };
        let mut scale = 1.0;
        let mut accepted = false;
        for _ in 0..20 {
            let mut next = beta;
            for a in 0..K {
                next[a] += scale * step[a];
            }
            let (nll, ng, nh) = eval(&next);
            if nll.is_finite() && nll >= ll - 1e-9 * ll.abs() {
                let gain = nll - ll;
                beta = next;
                (ll, g, h) = (nll, ng, nh);
                accepted = gain.abs() > 1e-10 * ll.abs().max(1.0);
                break;
            }
            scale *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    beta
}

/// Solves h·x = g by Gaussian elimination with partial pivoting; `None` if singular.
#[allow(clippy::needless_range_loop)] // matrix code reads best with indices
fn solve<const K: usize>(mut h: [[f64; K]; K], mut g: [f64; K]) -> Option<[f64; K]> {
    for i in 0..K {
        let pivot = (i..K).max_by(|&a, &b| h[a][i].abs().total_cmp(&h[b][i].abs()))?;
        if h[pivot][i].abs() < 1e-300 {
            return None;
        }
        h.swap(i, pivot);
        g.swap(i, pivot);
        for r in i + 1..K {
            let f = h[r][i] / h[i][i];
            if f != 0.0 {
                for c in i..K {
                    h[r][c] -= f * h[i][c];
                }
                g[r] -= f * g[i];
            }
        }
    }
    let mut x = [0f64; K];
    for i in (0..K).rev() {
        let s: f64 = (i + 1..K).map(|c| h[i][c] * x[c]).sum();
        x[i] = (g[i] - s) / h[i][i];
    }
    Some(x)
}

/// One whole count y with its mean μ and ln μ.
#[derive(Clone, Copy)]
struct Count {
    y: f64,
    mu: f64,
    ln_mu: f64,
}

/// NB2 log-likelihood of whole counts y with means μ and dispersion φ = 1/r, without the
/// ln y! terms (free of μ and φ): Σ [Σ_{j<y} ln(r + j) + r ln(r/(r + μ)) + y ln(μ/(r + μ))].
/// The inner sums are read from one running table per φ: one logarithm per count.
fn nb_loglik(counts: &[Count], phi: f64) -> f64 {
    let r = 1.0 / phi;
    let top = counts.iter().map(|c| c.y).fold(0.0, f64::max) as usize;
    let mut below = Vec::with_capacity(top + 1);
    let mut acc = 0.0;
    for j in 0..=top {
        below.push(acc);
        acc += (r + j as f64).ln();
    }
    let ln_r = r.ln();
    counts
        .par_chunks(4096)
        .map(|chunk| {
            chunk
                .iter()
                .map(|c| {
                    let l = (r + c.mu).ln();
                    below[c.y as usize] + r * (ln_r - l) + c.y * (c.ln_mu - l)
                })
                .sum::<f64>()
        })
        .sum()
}

/// φ of the size law by maximum likelihood: golden-section search on ln φ ∈ [−5, 4], to a
/// width of 10⁻⁵ in ln φ.
fn fit_phi(sized: &[Example], beta: &[f64; NZ]) -> f64 {
    if sized.is_empty() {
        return 0.0;
    }
    let counts: Vec<Count> = sized
        .iter()
        .map(|e| {
            let ln_mu = dot(&e.z, beta).min(40.0).max(1e-9f64.ln());
            Count {
                y: e.demand.max(0.0).round(),
                mu: ln_mu.exp(),
                ln_mu,
            }
        })
        .collect();
    let f = |lphi: f64| nb_loglik(&counts, lphi.exp());
    let (mut a, mut b) = (-5.0f64, 4.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..30 {
        if fc > fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    ((a + b) / 2.0).exp()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hurdle_quantiles_by_hand() {
        // p = .2, size ≡ 1 (NB with mean 0): P(0) = .8, P(1) = .2.
        let h = Hurdle {
            p: 0.2,
            size: 1.0,
            phi: 1.0,
            own_weight: 0.0,
            own: vec![],
        };
        assert_eq!(h.quantile(0.5), 0.0);
        assert_eq!(h.quantile(0.8), 0.0);
        assert_eq!(h.quantile(0.81), 1.0);
        assert!((h.mean() - 0.2).abs() < 1e-12);
        // p = .5, size 1 + geometric (φ = 1, mean 1): P(size − 1 ≤ k) = 1 − .5^(k+1).
        // Level .9 → t = (.9 − .5)/.5 = .8 → k = 2 (.875) → q = 3.
        let h = Hurdle {
            p: 0.5,
            size: 2.0,
            phi: 1.0,
            own_weight: 0.0,
            own: vec![4.0],
        };
        assert_eq!(h.quantile(0.9), 3.0);
        assert_eq!(h.quantile(0.5), 0.0);
        assert_eq!(h.quantile(0.6), 1.0);
        // Half the size law from the own sizes {4, 4}: size CDF at 1, 2, 3 is
        // .5·(.5, .75, .875) = .25, .375, .4375; at 4 it jumps by .5 to .96875.
        // Level .9 → t = .8 → q = 4; level .7 → t = .4 → q = 3; mean .5·(.5·4 + .5·2) = 1.5.
        let h = Hurdle {
            own_weight: 0.5,
            own: vec![4.0, 4.0],
            ..h
        };
        assert_eq!(h.quantile(0.9), 4.0);
        assert_eq!(h.quantile(0.7), 3.0);
        assert!((h.mean() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn hurdle_cdf_by_hand() {
        // p = .5, size 1 + geometric(mean 1): P(D ≤ 0) = .5, P(D ≤ 1) = .5 + .5·.5 = .75,
        // P(D ≤ 2) = .5 + .5·.75 = .875.
        let h = Hurdle {
            p: 0.5,
            size: 2.0,
            phi: 1.0,
            own_weight: 0.0,
            own: vec![4.0, 4.0],
        };
        for (k, want) in [(-1.0, 0.0), (0.0, 0.5), (1.0, 0.75), (2.0, 0.875)] {
            assert!((h.cdf(k) - want).abs() < 1e-12, "{k}: {}", h.cdf(k));
        }
        // Half own sizes {4, 4}: size CDF .25, .375, .4375 at 1, 2, 3, then .96875 at 4, so
        // P(D ≤ 3) = .5 + .5·.4375 = .71875 and P(D ≤ 4) = .5 + .5·.96875 = .984375.
        let h = Hurdle {
            own_weight: 0.5,
            ..h
        };
        assert!((h.cdf(3.0) - 0.71875).abs() < 1e-12);
        // Moments: model size 1 + geometric(1): E[S] = 2, E[S²] = 1 + 1 + 4 = 6; own {4, 4}:
        // 4 and 16. Mixed half and half: E[S] = 3, E[S²] = 11; E[D] = .5·3 = 1.5,
        // Var = .5·11 − 1.5² = 3.25; NB φ = (3.25 − 1.5)/1.5² = .7778.
        assert!((h.mean() - 1.5).abs() < 1e-12);
        assert!((h.variance() - 3.25).abs() < 1e-12);
        assert!((h.nb_dispersion() - 1.75 / 2.25).abs() < 1e-12);
        assert!((h.cdf(4.0) - 0.984375).abs() < 1e-12);
        // P(D = 0) = .5; P(D = 4) = .5·(.96875 − .4375) = .265625.
        assert!((h.as_law().pmf(0.0) - 0.5).abs() < 1e-12);
        assert!((h.as_law().pmf(4.0) - 0.265625).abs() < 1e-12);
        // One walk for several levels gives what one walk per level gives.
        let levels = [0.3, 0.6, 0.7, 0.9, 0.99];
        assert_eq!(h.quantiles(&levels), levels.map(|l| h.quantile(l)));
        assert_eq!(h.quantiles(&levels), [0.0, 1.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn level_map_by_hand() {
        // 1,000 examples under one law P(0) = .6, P(1) = .3, P(2) = .07, P(3) = .03, with
        // demands in exactly those shares: u = P(D < d) is 0 (600×), .6 (300×), .9 (70×),
        // .97 (30×). Whole-unit quantiles can only cover 60, 90, 97 or 100 % of them.
        let mut u: Vec<f64> = [(0.0, 600), (0.6, 300), (0.9, 70), (0.97, 30)]
            .iter()
            .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
            .collect();
        let map = LevelMap::from_pit(&mut u);
        // p = .9: 900 covered by any level in (.6, .9] → the midpoint .75, exact.
        // p = .8: 800 lies between 600 and 900, nearer 900 → again .75.
        // p = .95: 950 between 900 and 970, nearer 970 → midpoint of .9 and .97 = .935.
        // p = .65: 650 nearer 600 → midpoint of 0 and .6 = .3 (quantile 0, 60 % covered).
        for (p, want) in [(0.9, 0.75), (0.8, 0.75), (0.95, 0.935), (0.65, 0.3)] {
            assert!(
                (map.working(p) - want).abs() < 1e-12,
                "{p}: {}",
                map.working(p)
            );
        }
        // The law reads those levels back as the right whole units.
        let law = Hurdle {
            p: 0.4,
            size: 1.0,
            phi: 0.0,
            own_weight: 1.0,
            own: vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        };
        assert_eq!(law.quantile(map.working(0.9)), 1.0);
        // Fewer than 20 examples above .99 (10 expected of 1,000): not tabulated; the tail
        // keeps the exceedance ratio of the last tabulated level, p = .98 (980 between 970 and
        // 1,000, nearer 970 → (.9 + .97)/2 = .935): 1 − (1 − .995)·(1 − .935)/(1 − .98) = .98375.
        assert_eq!(map.nominal.last(), Some(&0.98));
        assert!((map.working(0.98) - 0.935).abs() < 1e-12);
        assert!((map.working(0.995) - 0.98375).abs() < 1e-12);
        // Between grid levels: linear (.96 → 960 nearer 970 → .935; .97 → 970 → .935;
        // .94 → 940 nearer 970 → .935; .93 → 930 nearer 900 → .75): .935 − .5·.185 = .8425.
        assert!((map.working(0.935) - 0.8425).abs() < 1e-12);
        // No examples: the identity.
        assert_eq!(LevelMap::from_pit(&mut []).working(0.9), 0.9);
    }

    #[test]
    fn features_by_hand() {
        // h = 0, 2, 0, 4 with soft 0: last-3 mean 2, all mean 1.5, since 0, 2 demands of
        // mean size 3, largest 4, demand share .5.
        let (x, z) = features(&[0.0, 2.0, 0.0, 4.0], 0.0);
        assert_eq!(x[0], 1.0);
        assert!((x[1] - 2f64.ln()).abs() < 1e-12);
        assert!((x[3] - 1.5f64.ln()).abs() < 1e-12);
        assert_eq!(x[5], 0.0);
        assert!((x[6] - 0.5).abs() < 1e-12);
        assert!((x[9] - 0.5).abs() < 1e-12);
        assert!((z[NX] - 3f64.ln()).abs() < 1e-12);
        assert!((z[NX + 1] - 4f64.ln()).abs() < 1e-12);
        assert!((z[NX + 2] - 3f64.ln()).abs() < 1e-12);
        assert_eq!(x[10], 0.0);
        // No demand at all: the silence reads 0 and the indicator 1.
        let (x, _) = features(&[0.0; 30], 0.05);
        assert_eq!((x[5], x[10]), (0.0, 1.0));
        // Degenerate histories stay finite.
        for h in [&[][..], &[0.0; 5][..], &[7.0][..]] {
            let (x, z) = features(h, 0.05);
            assert!(x.iter().chain(&z).all(|v| v.is_finite()), "{h:?}");
        }
    }

    #[test]
    fn newton_recovers_known_coefficients() {
        // Logistic: one binary feature; P = .2 without it, .6 with it (exact frequencies),
        // so γ0 = ln(.2/.8) = −1.386, γ0 + γ1 = ln(.6/.4) = .405.
        let mut ex = Vec::new();
        for (f, ones, n) in [(0.0, 2, 10), (1.0, 6, 10)] {
            for i in 0..n {
                let mut z = [0f64; NZ];
                z[0] = 1.0;
                z[1] = f;
                ex.push(Example {
                    z,
                    demand: if i < ones { 3.0 } else { 0.0 },
                    past: 0,
                });
            }
        }
        let g = newton::<2>(
            &ex,
            |e| if e.demand > 0.0 { 1.0 } else { 0.0 },
            Glm::Logistic,
        );
        assert!((g[0] - (0.25f64).ln()).abs() < 1e-5, "{g:?}");
        assert!((g[0] + g[1] - 1.5f64.ln()).abs() < 1e-5, "{g:?}");
        // Poisson: the group means are .6 and 1.8 → δ0 = ln .6, δ1 = ln 3.
        let p = newton::<2>(&ex, |e| e.demand, Glm::Poisson);
        assert!((p[0] - 0.6f64.ln()).abs() < 1e-5, "{p:?}");
        assert!((p[1] - 3f64.ln()).abs() < 1e-5, "{p:?}");
    }

    #[test]
    fn phi_fit_recovers_a_geometric_law() {
        // Counts with the exact frequencies of a geometric law of mean 1 (φ = 1):
        // 512 zeros, 256 ones, 128 twos, … → ML dispersion near 1.
        let mut ex = Vec::new();
        let mut n = 512;
        let mut k = 0.0;
        while n > 0 {
            for _ in 0..n {
                let mut z = [0f64; NZ];
                z[0] = 1.0;
                ex.push(Example {
                    z,
                    demand: k,
                    past: 0,
                });
            }
            n /= 2;
            k += 1.0;
        }
        let mean = ex.iter().map(|e| e.demand).sum::<f64>() / ex.len() as f64;
        let mut beta = [0f64; NZ];
        beta[0] = mean.ln();
        let phi = fit_phi(&ex, &beta);
        assert!((phi - 1.0).abs() < 0.1, "{phi}");
    }

    #[test]
    fn the_bulk_forecast_is_predict_then_quantiles() {
        // 300 series × 40 periods of demand every k-th period of size k (k = 1..=5, so every
        // series has mean demand 1), the rest zero, and 20 silent ones; fit, then compare the
        // allocation-free path with the law's own on histories of every kind, including one
        // longer than the stack buffer.
        let mut rows: Vec<Vec<f32>> = (0..300)
            .map(|s| {
                let k = 1 + s % 5;
                (0..40)
                    .map(|t| if (t + s) % k == 0 { k as f32 } else { 0.0 })
                    .collect()
            })
            .collect();
        rows.extend((0..20).map(|_| vec![0f32; 40]));
        let refs: Vec<&[f32]> = rows.iter().map(|r| &r[..]).collect();
        let model = PooledModel::fit(&refs, 12).unwrap();
        assert!(model.levels.working(0.9) > 0.0 && model.levels.working(0.9) < 1.0);
        let long: Vec<f32> = (0..300).map(|t| (t % 7) as f32).collect();
        let levels = [0.5, 0.9, 0.95, 0.99];
        for h in [
            &rows[0][..],
            &rows[3][..20],
            &rows[310][..],
            &[][..],
            &long[..],
        ] {
            let law = model.predict(h);
            let (mean, q) = model.forecast(h, &levels);
            assert!((mean - law.mean()).abs() < 1e-12);
            assert_eq!(q, model.quantiles(&law, &levels));
        }
    }

    #[test]
    fn too_short_or_silent_histories_give_no_model() {
        let n = MIN_SERIES;
        let short = [1.0f32; 10];
        assert!(PooledModel::fit(&vec![&short[..]; n], 3).is_none());
        let silent = [0.0f32; 40];
        assert!(PooledModel::fit(&vec![&silent[..]; n], 12).is_none());
        assert!(PooledModel::fit(&[], 12).is_none());
        // Enough history and demand, but one series too few to pool.
        let busy: Vec<f32> = (0..40).map(|t| (t % 3) as f32).collect();
        assert!(PooledModel::fit(&vec![&busy[..]; n - 1], 12).is_none());
        assert!(PooledModel::fit(&vec![&busy[..]; n], 12).is_some());
        // 24 periods forecast 12 ahead leave one inner origin (12): too few.
        assert!(PooledModel::fit(&vec![&busy[..24]; n], 12).is_none());
        assert!(PooledModel::fit(&vec![&busy[..30]; n], 12).is_some());
    }
}
