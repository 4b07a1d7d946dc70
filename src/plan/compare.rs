//! The LP plan against the min/max baseline over several service targets (issue 3, "proof
//! it beats min/max").
//!
//! At each target every tier × criticality cell of the model gets that fill rate; the plan
//! is solved once and both policies are replayed ([`simulate`]) against the same draws of
//! realised demand. Both see the same forecast (the instance), the same targets, lead times,
//! stocking sets and opening stock. The trade-off is then read at equal achieved fill rate:
//! for each plan point, the baseline's average stock value at the plan's achieved fill rate
//! is interpolated linearly along the baseline's own curve (no extrapolation).

use serde::Serialize;

use crate::catalog::Criticality;

use super::instance::Instance;
use super::model::{PlanModel, Tier};
use super::simulate::{simulate, Policy, Realised, SimReport};
use super::{solve_full, PlanStatus};

/// One policy's outcome at one target, averaged over the demand draws.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// Units served / units demanded over all draws.
    pub fill_rate: f64,
    /// Per tier (exceed, above, meet): served / demanded over all draws.
    pub fill_rate_by_tier: [f64; 3],
    /// Station-periods with unmet demand, mean per draw.
    pub stockouts: f64,
    /// Mean end-of-period stock value at unit cost, major units, mean per draw.
    pub average_stock_value: f64,
    pub purchase: f64,
    pub holding: f64,
    pub transport: f64,
    pub shortage_penalty: f64,
    /// purchase + holding + transport + shortage penalty, mean per draw.
    pub total_cost: f64,
}

impl Outcome {
    fn mean(reports: &[SimReport]) -> Outcome {
        let n = reports.len().max(1) as f64;
        let mut demand = [0.0; 3];
        let mut served = [0.0; 3];
        for r in reports {
            for (i, t) in r.fill_rate_by_tier.iter().enumerate().take(3) {
                demand[i] += t.demand;
                served[i] += t.served;
            }
        }
        let ratio = |s: f64, d: f64| if d > 0.0 { s / d } else { 1.0 };
        let avg = |f: &dyn Fn(&SimReport) -> f64| reports.iter().map(f).sum::<f64>() / n;
        Outcome {
            fill_rate: ratio(served.iter().sum(), demand.iter().sum()),
            fill_rate_by_tier: [0, 1, 2].map(|i| ratio(served[i], demand[i])),
            stockouts: avg(&|r| r.stockouts as f64),
            average_stock_value: avg(&|r| r.average_stock_value.as_major_f64()),
            purchase: avg(&|r| r.purchase.as_major_f64()),
            holding: avg(&|r| r.holding.as_major_f64()),
            transport: avg(&|r| r.transport.as_major_f64()),
            shortage_penalty: avg(&|r| r.shortage_penalty.as_major_f64()),
            total_cost: avg(&|r| r.total_cost.as_major_f64()),
        }
    }
}

/// Both policies at one service target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub target: f64,
    /// How the plan solve ended (a plan that failed is replayed as ordering nothing).
    pub plan_status: PlanStatus,
    pub plan: Outcome,
    pub baseline: Outcome,
    /// Baseline stock value interpolated at the plan's achieved fill rate, when the
    /// baseline's curve spans it.
    pub baseline_value_at_plan_fill: Option<f64>,
    /// `1 − plan value / that baseline value`.
    pub saving_at_equal_fill: Option<f64>,
    /// Baseline fill rate interpolated at the plan's stock value, when the baseline's curve
    /// spans it: the other reading of the trade-off (equal money, whose fill is higher).
    pub baseline_fill_at_plan_value: Option<f64>,
}

/// The trade-off over several targets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub draws: usize,
    pub points: Vec<Point>,
    /// The baseline's (achieved fill rate, stock value) over a denser grid of targets,
    /// sorted by fill rate: the curve the plan is read against.
    pub baseline_curve: Vec<(f64, f64)>,
}

/// Extra targets the (cheap) baseline is run at, so its curve spans the plan's fill rates.
const CURVE_TARGETS: [f64; 12] = [
    0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995,
];

/// `model` with every tier × criticality cell at `fill_rate`.
pub fn at_target(model: &PlanModel, fill_rate: f64) -> PlanModel {
    let mut m = model.clone();
    for tier in Tier::ALL {
        for c in [Criticality::A, Criticality::B, Criticality::C] {
            m = m.with_fill_rate(tier, c, fill_rate);
        }
    }
    m
}

/// Runs both policies at each of `targets` against every draw in `draws`.
pub fn compare(
    model: &PlanModel,
    inst: &Instance,
    draws: &[Vec<Realised>],
    targets: &[f64],
) -> Comparison {
    let mut points: Vec<Point> = targets
        .iter()
        .map(|&target| {
            let m = at_target(model, target);
            let sol = solve_full(&m, inst);
            let run = |policy: &Policy| -> Vec<SimReport> {
                draws
                    .iter()
                    .map(|d| simulate(&m, inst, d, policy))
                    .collect()
            };
            Point {
                target,
                plan_status: sol.result.status,
                plan: Outcome::mean(&run(&Policy::Plan(&sol))),
                baseline: Outcome::mean(&run(&Policy::MinMax)),
                baseline_value_at_plan_fill: None,
                saving_at_equal_fill: None,
                baseline_fill_at_plan_value: None,
            }
        })
        .collect();
    let curve: Vec<(f64, f64)> = {
        let mut c: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.baseline.fill_rate, p.baseline.average_stock_value))
            .collect();
        for &target in CURVE_TARGETS.iter().filter(|t| !targets.contains(t)) {
            let m = at_target(model, target);
            let reports: Vec<SimReport> = draws
                .iter()
                .map(|d| simulate(&m, inst, d, &Policy::MinMax))
                .collect();
            let o = Outcome::mean(&reports);
            c.push((o.fill_rate, o.average_stock_value));
        }
        c.sort_by(|a, b| a.0.total_cmp(&b.0));
        // The baseline's efficient frontier: where a higher fill came with less stock (noise
        // of the draws), the lower value also holds for every lower fill. This favours the
        // baseline, never the plan.
        for i in (0..c.len().saturating_sub(1)).rev() {
            c[i].1 = c[i].1.min(c[i + 1].1);
        }
        c
    };
    // The frontier's values never fall as fill rises, so read by value it is sorted too.
    let by_value: Vec<(f64, f64)> = curve.iter().map(|&(fill, value)| (value, fill)).collect();
    for p in &mut points {
        p.baseline_fill_at_plan_value = interpolate(&by_value, p.plan.average_stock_value);
        p.baseline_value_at_plan_fill = interpolate(&curve, p.plan.fill_rate);
        p.saving_at_equal_fill = p
            .baseline_value_at_plan_fill
            .filter(|v| *v > 0.0)
            .map(|v| 1.0 - p.plan.average_stock_value / v);
    }
    Comparison {
        draws: draws.len(),
        points,
        baseline_curve: curve,
    }
}

/// Linear interpolation of y at x along points sorted by x; `None` outside their span.
pub fn interpolate(curve: &[(f64, f64)], x: f64) -> Option<f64> {
    let first = curve.first()?;
    let last = curve.last()?;
    if x < first.0 - 1e-12 || x > last.0 + 1e-12 {
        return None;
    }
    for w in curve.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x >= x0 - 1e-12 && x <= x1 + 1e-12 {
            if (x1 - x0).abs() < 1e-12 {
                return Some(y0.min(y1));
            }
            return Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0));
        }
    }
    Some(first.1)
}

impl Comparison {
    /// A readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Replay of {} demand draw(s); fill = units served / demanded; value = mean stock value at cost",
            self.draws
        );
        let _ = writeln!(
            s,
            "{:>6} | {:>8} {:>6} {:>6} {:>6} {:>9} {:>13} {:>13} | {:>8} {:>6} {:>6} {:>6} {:>9} {:>13} {:>13} | {:>13} {:>7} | {:>13}",
            "target",
            "plan fill", "exceed", "above", "meet", "stockouts", "stock value", "cost",
            "min/max", "exceed", "above", "meet", "stockouts", "stock value", "cost",
            "mm value@fill", "saving", "mm fill@value"
        );
        for p in &self.points {
            let o = |o: &Outcome| {
                format!(
                    "{:>8.4} {:>6.3} {:>6.3} {:>6.3} {:>9.1} {:>13.0} {:>13.0}",
                    o.fill_rate,
                    o.fill_rate_by_tier[0],
                    o.fill_rate_by_tier[1],
                    o.fill_rate_by_tier[2],
                    o.stockouts,
                    o.average_stock_value,
                    o.total_cost
                )
            };
            let _ = writeln!(
                s,
                "{:>6.3} | {} | {} | {:>13} {:>7} | {:>13}{}",
                p.target,
                o(&p.plan),
                o(&p.baseline),
                p.baseline_value_at_plan_fill
                    .map_or("outside".to_owned(), |v| format!("{v:.0}")),
                p.saving_at_equal_fill
                    .map_or("-".to_owned(), |v| format!("{:.1}%", 100.0 * v)),
                p.baseline_fill_at_plan_value
                    .map_or("outside".to_owned(), |v| format!("{v:.4}")),
                if p.plan_status == PlanStatus::Optimal {
                    String::new()
                } else {
                    format!("  (plan {:?})", p.plan_status)
                }
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::interpolate;

    #[test]
    fn interpolation_reads_between_points_and_refuses_outside() {
        let c = [(0.8, 100.0), (0.9, 200.0), (0.95, 400.0)];
        assert!((interpolate(&c, 0.85).unwrap_or(0.0) - 150.0).abs() < 1e-9);
        assert!((interpolate(&c, 0.925).unwrap_or(0.0) - 300.0).abs() < 1e-9);
        assert_eq!(interpolate(&c, 0.8), Some(100.0));
        assert_eq!(interpolate(&c, 0.79), None);
        assert_eq!(interpolate(&c, 0.96), None);
    }
}
