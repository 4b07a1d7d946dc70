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

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::backtest::{stock_for_fill, FILL_TARGETS, LEVELS};
use super::spread::nb_quantile;

/// Occurrence features (with the intercept).
pub const NX: usize = 10;
/// Size features: the occurrence features and three of the demand sizes.
pub const NZ: usize = NX + 3;
/// Examples used for a fit at most; series are taken at a regular stride beyond that.
const MAX_EXAMPLES: usize = 400_000;
/// Spacing of the inner origins.
const ORIGIN_STEP: usize = 3;
/// Inner origins need at least this many periods of history before them.
const MIN_INNER_HISTORY: usize = 12;

/// The fitted model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PooledModel {
    /// Softening of the log mean features: a tenth of the pooled mean demand per period.
    pub soft: f64,
    pub occurrence: [f64; NX],
    pub size: [f64; NZ],
    /// NB2 dispersion of (size − 1).
    pub size_phi: f64,
    /// Prior weight, in demands, of the model's size law against the series' own sizes: the
    /// size law is own·n/(n + κ) + model·κ/(n + κ) after n demands (κ = ∞: the model alone).
    pub size_kappa: f64,
    /// Inner origins and examples the fit used.
    pub origins: usize,
    pub examples: usize,
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
    pub fn mean(&self) -> f64 {
        let own_mean = if self.own.is_empty() {
            self.size
        } else {
            self.own.iter().sum::<f64>() / self.own.len() as f64
        };
        self.p * (self.own_weight * own_mean + (1.0 - self.own_weight) * self.size)
    }

    /// Smallest whole q with P(D ≤ q) ≥ `level`.
    pub fn quantile(&self, level: f64) -> f64 {
        if level.is_nan() || level <= 1.0 - self.p || self.p <= 0.0 {
            return 0.0;
        }
        let t = ((level - (1.0 - self.p)) / self.p).min(1.0);
        let w = if self.own.is_empty() {
            0.0
        } else {
            self.own_weight
        };
        if w <= 0.0 {
            return 1.0 + nb_quantile(self.size - 1.0, self.phi, t);
        }
        // Walk the sizes 1, 2, … summing both parts of the mixture's CDF.
        let n = self.own.len() as f64;
        let mean = (self.size - 1.0).max(0.0);
        let (mut pmf, a, b) = nb_recursion(mean, self.phi);
        let mut nb_cdf = pmf;
        let mut seen = 0usize;
        let mut k = 0.0f64;
        let cap = self.own.last().copied().unwrap_or(1.0) + mean * 60.0 + 200.0;
        loop {
            while seen < self.own.len() && self.own[seen] <= k + 1.0 {
                seen += 1;
            }
            let cdf = (1.0 - w) * nb_cdf + w * seen as f64 / n;
            if cdf >= t - 1e-12 || k >= cap {
                return k + 1.0;
            }
            pmf *= (a + b * k) / (k + 1.0);
            k += 1.0;
            nb_cdf += pmf;
        }
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
/// shares (0.7, 0.9), the share over all periods; for the size the mean and the largest size
/// and the number of demands. An empty history reads as one zero period.
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
    let x = [
        1.0,
        softened_log(mean_last(3), soft),
        softened_log(mean_last(12), soft),
        softened_log(total / n as f64, soft),
        softened_log(ratio(e9, wsum9), soft),
        (1.0 + since).ln(),
        nz12,
        ratio(i7, wsum7),
        ratio(i9, wsum9),
        nonzero as f64 / n as f64,
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

/// Candidate κ for the own-size blend; infinity is the model's size law alone.
const KAPPAS: [f64; 7] = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, f64::INFINITY];

impl PooledModel {
    /// Fits the model on `rows` (every series' history, all of one length T), for forecasts
    /// `horizon` periods ahead. `None` when the history is too short for an inner origin
    /// (T < 12 + the inner horizon) or holds no demand.
    pub fn fit(rows: &[&[f32]], horizon: usize) -> Option<PooledModel> {
        let t = rows.first()?.len();
        let inner = horizon.clamp(1, t / 2);
        if t < MIN_INNER_HISTORY + inner || rows.iter().any(|r| r.len() != t) {
            return None;
        }
        let origins: Vec<usize> = (MIN_INNER_HISTORY..=t - inner)
            .rev()
            .step_by(ORIGIN_STEP)
            .collect();
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
        let mut model = PooledModel {
            soft,
            occurrence,
            size,
            size_phi,
            size_kappa: f64::INFINITY,
            origins: origins.len(),
            examples: examples.len(),
        };
        model.size_kappa = model.choose_kappa(&examples, inner, &pasts);
        Some(model)
    }

    /// The law of next-period demand after history `h`.
    pub fn predict(&self, h: &[f32]) -> Hurdle {
        let (x, z) = features(h, self.soft);
        self.law(&x, &z, past_sizes(h), self.size_kappa)
    }

    fn law(&self, x: &[f64; NX], z: &[f64; NZ], own: Vec<f64>, kappa: f64) -> Hurdle {
        let eta = dot(x, &self.occurrence);
        let p = 1.0 / (1.0 + (-eta.clamp(-40.0, 40.0)).exp());
        let size = 1.0 + dot(z, &self.size).min(40.0).exp();
        let n = own.len() as f64;
        let own_weight = if kappa.is_finite() && n > 0.0 {
            n / (n + kappa)
        } else {
            0.0
        };
        Hurdle {
            p,
            size,
            phi: self.size_phi,
            own_weight,
            own,
        }
    }

    /// κ of the own-size blend chosen on the objective the forecast serves: over the inner
    /// examples, stock every (series, origin) to its quantiles at [`LEVELS`] and take the κ
    /// that needs the least stock for the fill rates of [`FILL_TARGETS`] (summed). `examples`
    /// hold `inner` consecutive periods per (series, origin), in the order of `pasts`.
    fn choose_kappa(&self, examples: &[Example], inner: usize, pasts: &[Vec<f64>]) -> f64 {
        const NL: usize = LEVELS.len();
        let stock_needed = |kappa: f64| -> f64 {
            let (served, left, demand, periods) = examples
                .par_chunks(inner)
                .map(|group| {
                    let z = &group[0].z;
                    let mut x = [0f64; NX];
                    x.copy_from_slice(&z[..NX]);
                    let law = self.law(&x, z, pasts[group[0].past].clone(), kappa);
                    let q = LEVELS.map(|p| law.quantile(p));
                    let mut served = [0f64; NL];
                    let mut left = [0f64; NL];
                    let mut demand = 0.0;
                    for e in group {
                        demand += e.demand;
                        for i in 0..NL {
                            served[i] += e.demand.min(q[i]);
                            left[i] += (q[i] - e.demand).max(0.0);
                        }
                    }
                    (served, left, demand, group.len())
                })
                .reduce(
                    || ([0f64; NL], [0f64; NL], 0.0, 0usize),
                    |mut a, b| {
                        for i in 0..NL {
                            a.0[i] += b.0[i];
                            a.1[i] += b.1[i];
                        }
                        (a.0, a.1, a.2 + b.2, a.3 + b.3)
                    },
                );
            if demand <= 0.0 || periods == 0 {
                return 0.0;
            }
            let fill = served.map(|s| s / demand);
            let stock = left.map(|l| l / periods as f64);
            FILL_TARGETS
                .iter()
                .map(|&t| stock_for_fill(&fill, &stock, t).unwrap_or(f64::INFINITY))
                .sum()
        };
        // Ties (e.g. no demand at all) keep the model's own size law.
        let mut best = (stock_needed(f64::INFINITY), f64::INFINITY);
        for &kappa in &KAPPAS[..KAPPAS.len() - 1] {
            let s = stock_needed(kappa);
            if s < best.0 {
                best = (s, kappa);
            }
        }
        best.1
    }
}

fn dot<const K: usize>(a: &[f64; K], b: &[f64]) -> f64 {
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

/// NB2 log-likelihood of whole counts y with means μ and dispersion φ = 1/r, without the
/// ln y! terms (free of μ and φ): Σ [Σ_{j<y} ln(r + j) + r ln(r/(r + μ)) + y ln(μ/(r + μ))].
fn nb_loglik(pairs: &[(f64, f64)], phi: f64) -> f64 {
    let r = 1.0 / phi;
    pairs
        .iter()
        .map(|&(y, mu)| {
            let mut s = 0.0;
            let mut j = 0.0;
            while j < y {
                s += (r + j).ln();
                j += 1.0;
            }
            s + r * (r / (r + mu)).ln() + y * (mu / (r + mu)).ln()
        })
        .sum()
}

/// φ of the size law by maximum likelihood: golden-section search on ln φ ∈ [−5, 4].
fn fit_phi(sized: &[Example], beta: &[f64; NZ]) -> f64 {
    if sized.is_empty() {
        return 0.0;
    }
    let pairs: Vec<(f64, f64)> = sized
        .iter()
        .map(|e| (e.demand, dot(&e.z, beta).min(40.0).exp().max(1e-9)))
        .collect();
    let f = |lphi: f64| -> f64 {
        pairs
            .par_chunks(4096)
            .map(|c| nb_loglik(c, lphi.exp()))
            .sum()
    };
    let (mut a, mut b) = (-5.0f64, 4.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..40 {
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
    fn too_short_or_silent_histories_give_no_model() {
        let short = [1.0f32; 10];
        assert!(PooledModel::fit(&[&short[..]], 3).is_none());
        let silent = [0.0f32; 40];
        assert!(PooledModel::fit(&[&silent[..]], 12).is_none());
        assert!(PooledModel::fit(&[], 12).is_none());
    }
}
