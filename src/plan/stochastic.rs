//! The stochastic layer: a fill-rate target and the forecast-error spread over the
//! protection interval (lead time + review period) give a safety stock.
//!
//! Demand over the interval is modelled as a gamma distribution with the forecast's mean and
//! the forecast-error variance. The gamma is never negative and is right-skewed, so on lumpy
//! demand it asks for more stock than the normal approximation, which is known to
//! under-deliver service there. The order-up-to level S of a periodic-review policy meets
//! fill rate β when the expected shortage per review cycle is
//! `E[(X − S)⁺] = (1 − β) · μ_R`, with X the demand over lead time + review period and μ_R
//! the mean demand of one review period. Safety stock is `S − E[X]`, floored at zero.

/// Mean and variance of demand over a window of (possibly fractional) periods starting at
/// period `t`; periods past the end of `mean` repeat the last one.
pub fn window(mean: &[f64], sd: &[f64], t: usize, length: f64) -> (f64, f64) {
    let mut mu = 0.0;
    let mut var = 0.0;
    let mut left = length;
    let mut k = t;
    while left > 1e-12 {
        let w = left.min(1.0);
        let i = k.min(mean.len().saturating_sub(1));
        let (m, s) = (
            mean.get(i).copied().unwrap_or(0.0),
            sd.get(i).copied().unwrap_or(0.0),
        );
        mu += w * m;
        var += w * s * s;
        left -= w;
        k += 1;
    }
    (mu, var)
}

/// Safety stock for demand over the protection interval with mean `mu` and variance `var`,
/// fill-rate target `fill_rate`, and mean demand per review cycle `mu_review`.
pub fn safety_stock(mu: f64, var: f64, mu_review: f64, fill_rate: f64) -> f64 {
    (stock_level(mu, var, mu_review, fill_rate, 0.0) - mu).max(0.0)
}

/// The stock level S (safety stock plus `mu`) whose expected shortage per cycle leaves the
/// fill rate, or 0 when none is needed; Newton from `guess` (any S ≥ 0: a neighbouring
/// period's level makes it a step or two).
pub fn stock_level(mu: f64, var: f64, mu_review: f64, fill_rate: f64, guess: f64) -> f64 {
    if mu <= 0.0 || var <= 0.0 || mu_review <= 0.0 {
        return 0.0;
    }
    let allowed = (1.0 - fill_rate) * mu_review;
    let shape = mu * mu / var;
    let scale = var / mu;
    if mu <= allowed {
        return 0.0;
    }
    // Newton on the loss L(S) = E[(X − S)⁺], convex and decreasing with L'(S) = −P(X > S).
    // Left of the root each tangent step lands at or below it, so the iterates rise
    // monotonically and converge quadratically; right of it one step lands left of it
    // (clamped at 0, where L(0) = μ > allowed). The build computes this for every
    // location × period of every part, so a start near the root matters.
    // ln Γ(k) is the same at every step: computed once, not twice per step.
    let ln_gamma_shape = ln_gamma(shape);
    let mut s = guess.max(0.0);
    for _ in 0..200 {
        let (loss, tail) = gamma_loss_and_tail(shape, scale, s, ln_gamma_shape);
        if tail <= 1e-300 {
            if loss < allowed && s > 0.0 {
                // So far right that the tail underflows: start again from 0.
                s = 0.0;
                continue;
            }
            break;
        }
        let next = (s + (loss - allowed) / tail).max(0.0);
        let moved = (next - s).abs();
        s = next;
        // Convergence is quadratic: after a step of δ the error left is about δ² times the
        // hazard rate, so a step of 1e-8 leaves ~1e-16 and another evaluation would only
        // confirm it (one in four or five of them, at ~1 µs each, over every location ×
        // period of every part).
        if moved <= 1e-8 * (1.0 + s) {
            break;
        }
    }
    s
}

/// E[(X − s)⁺] and P(X > s) for X ~ Gamma(shape k, scale θ), s ≥ 0, from one incomplete
/// gamma: Q(k+1, x) = Q(k, x) + x^k e^(−x) / Γ(k+1), with Γ(k+1) = k·Γ(k).
fn gamma_loss_and_tail(shape: f64, scale: f64, s: f64, ln_gamma_shape: f64) -> (f64, f64) {
    if s <= 0.0 {
        return (shape * scale - s, 1.0);
    }
    let x = s / scale;
    let q = 1.0 - regularized_gamma_p(shape, x, ln_gamma_shape);
    let q1 = (q + (shape * x.ln() - x - ln_gamma_shape - shape.ln()).exp()).min(1.0);
    ((shape * scale * q1 - s * q).max(0.0), q)
}

/// E[(X − s)⁺] for X ~ Gamma(shape k, scale θ): `kθ·Q(k+1, s/θ) − s·Q(k, s/θ)`.
pub fn gamma_loss(shape: f64, scale: f64, s: f64) -> f64 {
    if s <= 0.0 {
        return shape * scale - s;
    }
    let x = s / scale;
    let q = |a: f64| 1.0 - lower_regularized_gamma(a, x);
    (shape * scale * q(shape + 1.0) - s * q(shape)).max(0.0)
}

/// P(a, x), the regularized lower incomplete gamma function (series below a + 1, continued
/// fraction above; Numerical Recipes §6.2).
pub fn lower_regularized_gamma(a: f64, x: f64) -> f64 {
    regularized_gamma_p(a, x, ln_gamma(a))
}

/// P(a, x) given ln Γ(a).
fn regularized_gamma_p(a: f64, x: f64, ln_gamma_a: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let log_front = a * x.ln() - x - ln_gamma_a;
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (sum * log_front.exp()).clamp(0.0, 1.0)
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (1.0 - log_front.exp() * h).clamp(0.0, 1.0)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine coefficients; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        // Γ(5) = 24, Γ(0.5) = √π.
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn exponential_loss_has_a_closed_form() {
        // Gamma with shape 1 is exponential with mean θ: E[(X − s)⁺] = θ·e^(−s/θ).
        for s in [0.0, 0.5, 2.0, 7.0] {
            let want = 2.0 * (-s / 2.0f64).exp();
            assert!((gamma_loss(1.0, 2.0, s) - want).abs() < 1e-9, "s = {s}");
        }
    }

    #[test]
    fn safety_stock_meets_the_fill_rate_exactly() {
        // Exponential lead-time demand, mean 10 (var 100), review demand 5, β = 0.95:
        // 10·e^(−S/10) = 0.25 → S = 10·ln 40 = 36.89, ss = S − 10 = 26.89.
        let ss = safety_stock(10.0, 100.0, 5.0, 0.95);
        assert!((ss - (10.0 * 40f64.ln() - 10.0)).abs() < 1e-6, "{ss}");
    }

    #[test]
    fn more_spread_or_a_higher_target_asks_for_more_stock() {
        let base = safety_stock(20.0, 20.0, 10.0, 0.90);
        assert!(safety_stock(20.0, 80.0, 10.0, 0.90) > base);
        assert!(safety_stock(20.0, 20.0, 10.0, 0.98) > base);
        assert!(base > 0.0);
        assert_eq!(safety_stock(20.0, 0.0, 10.0, 0.98), 0.0);
        // Tight demand against a long review cycle: stocking the mean already leaves
        // E[(X − μ)⁺] ≈ 0.4·σ = 0.4 < the allowed 0.1·10 = 1, so no safety stock.
        assert_eq!(safety_stock(10.0, 1.0, 10.0, 0.90), 0.0);
    }

    #[test]
    fn newton_agrees_with_bisection_on_the_loss() {
        // For lumpy and smooth demand alike, the stock found leaves exactly the allowed
        // expected shortage (bisection on the plain loss function as the reference).
        for (mu, var, mu_r, beta) in [
            (0.3, 0.9, 0.2, 0.85),
            (2.0, 6.0, 1.0, 0.95),
            (40.0, 60.0, 20.0, 0.98),
            (900.0, 1400.0, 30.0, 0.98),
        ] {
            let ss = safety_stock(mu, var, mu_r, beta);
            assert!(ss > 0.0, "{mu}: the case must need safety stock");
            // Any start, left or right of the root or far out in the tail, finds it too.
            for guess in [0.5 * (ss + mu), ss + mu, 2.0 * (ss + mu), 1e6 * (ss + mu)] {
                let s = stock_level(mu, var, mu_r, beta, guess);
                assert!(
                    (s - (ss + mu)).abs() < 1e-7 * (1.0 + s),
                    "{mu} from {guess}: {s}"
                );
            }
            let loss = gamma_loss(mu * mu / var, var / mu, ss + mu);
            let allowed = (1.0 - beta) * mu_r;
            assert!(
                (loss - allowed).abs() < 1e-7 * (1.0 + allowed),
                "{mu}: {loss} vs {allowed}"
            );
        }
    }

    #[test]
    fn windows_take_fractions_of_periods() {
        // 1.5 periods from t = 1 of means [1, 2, 4]: 2 + 0.5·4 = 4; var 1·1 + 0.5·4 = 3.
        let (mu, var) = window(&[1.0, 2.0, 4.0], &[1.0, 1.0, 2.0], 1, 1.5);
        assert!((mu - 4.0).abs() < 1e-12 && (var - 3.0).abs() < 1e-12);
        // Past the end the last period repeats: 2 periods from t = 2 → 8.
        assert!((window(&[1.0, 2.0, 4.0], &[0.0; 3], 2, 2.0).0 - 8.0).abs() < 1e-12);
    }
}
