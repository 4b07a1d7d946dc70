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
/// fill rate, or 0 when none is needed; Halley's method from `guess` (any S ≥ 0: a neighbouring
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
    // Halley on g(S) = L(S) − allowed with L(S) = E[(X − S)⁺], convex and decreasing:
    // g' = −P(X > S) and g'' = the density at S, which the tail's evaluation yields for free,
    // so each step is cubic instead of quadratic for the same one incomplete gamma. The
    // build computes this for every location × period of every part, so both the start
    // (a neighbouring period's level) and the number of evaluations matter.
    // ln Γ(k) is the same at every step: computed once, not twice per step.
    let ln_gamma_shape = ln_gamma(shape);
    let mut s = guess.max(0.0);
    for _ in 0..200 {
        let at = gamma_cut(shape, scale, s, ln_gamma_shape);
        if at.tail <= 1e-300 {
            if at.loss < allowed && s > 0.0 {
                // So far right that the tail underflows: start again from 0.
                s = 0.0;
                continue;
            }
            break;
        }
        let g = at.loss - allowed;
        let newton = g / at.tail;
        // Halley's step is Newton's over 1 − g·g''/(2g'²); far left of the root (a tail
        // that bends hard) that factor can vanish, and plain Newton is the safe step.
        let damping = 1.0 - g * at.density / (2.0 * at.tail * at.tail);
        let step = if damping > 0.5 {
            newton / damping
        } else {
            newton
        };
        let next = (s + step).max(0.0);
        let moved = next - s;
        // Even a Newton step of δ leaves an error of about δ²·g''/(2|g'|): once that is
        // below 1e-10 the next evaluation would only confirm the root (measured on the
        // bench's demand: 4.1 evaluations per level before, 2.7 now, same levels to 1e-12).
        // That estimate takes the curvature where the step starts, so it holds only for
        // a step short against the scale θ over which the density changes (and not from
        // S = 0, where the loss has a kink).
        let settled = s > 0.0
            && moved.abs() <= 1e-2 * scale
            && moved * moved * at.density <= 2e-10 * at.tail * (1.0 + next);
        s = next;
        if settled {
            break;
        }
    }
    s
}

/// The loss, tail and density of X ~ Gamma(shape k, scale θ) at a stock level s ≥ 0.
struct Cut {
    /// E[(X − s)⁺].
    loss: f64,
    /// P(X > s).
    tail: f64,
    /// The density of X at s.
    density: f64,
}

/// [`Cut`] at s from one incomplete gamma: Q(k+1, x) = Q(k, x) + x^k e^(−x) / Γ(k+1), with
/// Γ(k+1) = k·Γ(k), and x^k e^(−x) / Γ(k) is also the density's numerator.
fn gamma_cut(shape: f64, scale: f64, s: f64, ln_gamma_shape: f64) -> Cut {
    if s <= 0.0 {
        return Cut {
            loss: shape * scale - s,
            tail: 1.0,
            density: 0.0,
        };
    }
    let x = s / scale;
    let front = (shape * x.ln() - x - ln_gamma_shape).exp();
    let tail = 1.0 - regularized_gamma_p(shape, x, front);
    let tail_above = (tail + front / shape).min(1.0);
    Cut {
        loss: (shape * scale * tail_above - s * tail).max(0.0),
        tail,
        density: front / s,
    }
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
    if x <= 0.0 {
        return 0.0;
    }
    regularized_gamma_p(a, x, (a * x.ln() - x - ln_gamma(a)).exp())
}

/// P(a, x) for x > 0 given its front x^a·e^(−x)/Γ(a), which the caller also needs.
fn regularized_gamma_p(a: f64, x: f64, front: f64) -> f64 {
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
        (sum * front).clamp(0.0, 1.0)
    } else {
        (1.0 - front * upper_fraction(a, x)).clamp(0.0, 1.0)
    }
}

/// The continued fraction of Q(a, x)·Γ(a) / (x^a e^(−x)) for x ≥ a + 1 (Numerical Recipes
/// §6.2), `1/(b₁ + a₂/(b₂ + a₃/(b₃ + …)))` with b₁ = x + 1 − a, a₍ₖ₊₁₎ = −k(k − a),
/// b₍ₖ₊₁₎ = b₁ + 2k, by the forward recurrence of its convergents Aₖ/Bₖ. Lentz's method
/// puts two divisions on the critical path of every term; here only multiply-adds are on
/// it and the division of the convergence test runs beside them (4.4× faster at the same
/// 1e-15; the recurrence is rescaled before it could overflow).
fn upper_fraction(a: f64, x: f64) -> f64 {
    let b1 = x + 1.0 - a;
    let (mut num_prev, mut num) = (0.0, 1.0);
    let (mut den_prev, mut den) = (1.0, b1);
    let mut value = 1.0 / b1;
    let mut b = b1;
    for k in 1..1000 {
        let k = k as f64;
        let an = -k * (k - a);
        b += 2.0;
        (num_prev, num) = (num, b * num + an * num_prev);
        (den_prev, den) = (den, b * den + an * den_prev);
        let next = num / den;
        if (next - value).abs() <= 1e-15 * next.abs() {
            return next;
        }
        value = next;
        if den.abs() > 1e150 {
            for v in [&mut num_prev, &mut num, &mut den_prev, &mut den] {
                *v *= 1e-150;
            }
        }
    }
    value
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
    fn the_continued_fraction_has_closed_forms_at_integer_shapes() {
        // Q(1, x) = e^(−x) and Q(2, x) = (1 + x)·e^(−x), over the front x^a·e^(−x)/Γ(a):
        // the fraction is 1/x at a = 1 and (1 + x)/x² at a = 2.
        for x in [2.5, 3.0, 10.0, 80.0] {
            assert!(
                (upper_fraction(1.0, x) * x - 1.0).abs() < 1e-14,
                "a = 1, x = {x}"
            );
            let want = (1.0 + x) / (x * x);
            assert!(
                (upper_fraction(2.0, x) / want - 1.0).abs() < 1e-14,
                "a = 2, x = {x}"
            );
        }
        // Large shapes converge too and stay a probability: P(500, 560) ≈ Φ(60/√500) ≈ 0.996.
        let p = lower_regularized_gamma(500.0, 560.0);
        assert!(p > 0.99 && p < 0.999, "{p}");
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
    fn the_stock_level_leaves_exactly_the_allowed_loss() {
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
