//! What the rolling replay reports, for the plan and for each point of the baseline's
//! curve: fill (own shelf and 24 hours, overall and per tier × criticality), average
//! inventory value, order lines, costs, and month by month the realised fill beside the
//! fill the plan projected for that month.

use std::fmt::Write as _;

use serde::Serialize;

use super::world::{Net, World};
use super::Calendar;
use crate::catalog::Criticality;
use crate::plan::Tier;

#[derive(Debug, Clone, Serialize)]
pub struct CellFill {
    pub tier: Tier,
    pub criticality: Criticality,
    pub target: f64,
    pub demand: i64,
    pub shelf_fill: f64,
    pub fill_24h: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthRow {
    pub month: String,
    pub demand: i64,
    pub shelf_fill: f64,
    pub fill_24h: f64,
    /// The fill the plan run of this month projected for it (the plan only).
    pub projected_fill: Option<f64>,
    pub inventory_value: f64,
    pub order_lines: usize,
    pub refused_lines: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// "plan", "min_max" or "released file".
    pub policy: String,
    /// The baseline's safety factor.
    pub z: Option<f64>,
    pub demand: i64,
    pub shelf_fill: f64,
    pub fill_24h: f64,
    pub cells: Vec<CellFill>,
    pub average_inventory_value: f64,
    pub order_lines: usize,
    pub refused_lines: usize,
    pub purchase_spend: f64,
    pub holding_cost: f64,
    pub order_cost: f64,
    pub transport_cost: f64,
    /// Holding + order lines × cost per line + transport (purchases are the goods
    /// themselves; they are reported apart, with the inventory left at the end).
    pub total_cost: f64,
    pub end_inventory_value: f64,
    pub months: Vec<MonthRow>,
}

impl PolicyReport {
    pub fn of(
        policy: &str,
        z: Option<f64>,
        net: &Net,
        world: &World,
        calendar: &Calendar,
        projected: &[Option<f64>],
    ) -> PolicyReport {
        let fill = world.total_fill();
        let model = net.model;
        let mut cells: Vec<CellFill> = world
            .cells
            .iter()
            .map(|(&(tier, criticality), f)| CellFill {
                tier,
                criticality,
                target: model.target(tier, criticality).fill_rate,
                demand: f.demand,
                shelf_fill: f.shelf_rate(),
                fill_24h: f.rate_24h(),
            })
            .collect();
        cells.sort_by_key(|c| (c.tier, c.criticality));
        let n = world.months.len().max(1) as f64;
        let values: Vec<f64> = world.months.iter().map(|m| m.inventory_value).collect();
        let holding = values.iter().sum::<f64>() * model.holding_rate_per_year / 12.0;
        let order_lines: usize = world.months.iter().map(|m| m.order_lines).sum();
        let transport: f64 = world.months.iter().map(|m| m.transport).sum();
        let order_cost = order_lines as f64 * model.order_cost;
        let months = world
            .months
            .iter()
            .enumerate()
            .map(|(m, b)| MonthRow {
                month: calendar.month(m).to_string(),
                demand: b.fill.demand,
                shelf_fill: b.fill.shelf_rate(),
                fill_24h: b.fill.rate_24h(),
                projected_fill: projected.get(m).copied().flatten(),
                inventory_value: b.inventory_value,
                order_lines: b.order_lines,
                refused_lines: b.refused_lines,
            })
            .collect();
        PolicyReport {
            policy: policy.to_owned(),
            z,
            demand: fill.demand,
            shelf_fill: fill.shelf_rate(),
            fill_24h: fill.rate_24h(),
            cells,
            average_inventory_value: values.iter().sum::<f64>() / n,
            order_lines,
            refused_lines: world.months.iter().map(|m| m.refused_lines).sum(),
            purchase_spend: world.months.iter().map(|m| m.purchase_spend).sum(),
            holding_cost: holding,
            order_cost,
            transport_cost: transport,
            total_cost: holding + order_cost + transport,
            end_inventory_value: values.last().copied().unwrap_or(0.0),
            months,
        }
    }

    /// Mean over months of (projected − realised 24-hour fill), where a projection exists.
    pub fn projection_gap(&self) -> Option<f64> {
        let gaps: Vec<f64> = self
            .months
            .iter()
            .filter_map(|m| m.projected_fill.map(|p| p - m.fill_24h))
            .collect();
        (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RollingReport {
    pub model: String,
    pub first_month: String,
    pub months: usize,
    /// The purchase budget both sides lived under, per month (major units), if any.
    pub monthly_budget: Option<f64>,
    pub order_cost_per_line: f64,
    pub holding_rate_per_year: f64,
    pub plan: PolicyReport,
    pub baseline: Vec<PolicyReport>,
    /// The baseline's average inventory value at the plan's 24-hour fill, read off its
    /// curve by linear interpolation (none outside the curve).
    pub baseline_inventory_at_plan_fill: Option<f64>,
    pub unmatched_truth_rows: usize,
    pub unmatched_truth_units: i64,
    pub elapsed_s: f64,
}

/// Linear interpolation of inventory at `fill` along the curve's (fill, inventory) points.
pub fn inventory_at(curve: &[PolicyReport], fill: f64) -> Option<f64> {
    let mut points: Vec<(f64, f64)> = curve
        .iter()
        .map(|p| (p.fill_24h, p.average_inventory_value))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.windows(2).find_map(|w| {
        let ((f0, v0), (f1, v1)) = (w[0], w[1]);
        (f0 <= fill && fill <= f1 && f1 > f0).then(|| v0 + (v1 - v0) * (fill - f0) / (f1 - f0))
    })
}

fn pct(x: f64) -> String {
    format!("{:5.1} %", 100.0 * x)
}

impl RollingReport {
    /// The table a planner reads.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Rolling replay of {} months from {} with model '{}' (DESIGN §11), both sides under the same terms:",
            self.months, self.first_month, self.model
        );
        let _ = writeln!(
            s,
            "  purchase budget {} a month; {:.2} per order line; holding {:.0} % a year of value at cost",
            self.monthly_budget
                .map_or_else(|| "none".to_owned(), |b| format!("{b:.0}")),
            self.order_cost_per_line,
            100.0 * self.holding_rate_per_year
        );
        if self.unmatched_truth_rows > 0 {
            let _ = writeln!(
                s,
                "  ({} truth rows, {} units, name parts or stations the network does not know: left out)",
                self.unmatched_truth_rows, self.unmatched_truth_units
            );
        }
        let _ = writeln!(
            s,
            "\n  policy          shelf fill  24-h fill  avg inventory  order lines  refused  total cost"
        );
        for p in std::iter::once(&self.plan).chain(&self.baseline) {
            let name = match p.z {
                Some(z) => format!("min/max z={z:.2}"),
                None => p.policy.clone(),
            };
            let _ = writeln!(
                s,
                "  {name:<15} {}    {}   {:>13.0}  {:>11}  {:>7}  {:>10.0}",
                pct(p.shelf_fill),
                pct(p.fill_24h),
                p.average_inventory_value,
                p.order_lines,
                p.refused_lines,
                p.total_cost
            );
        }
        match self.baseline_inventory_at_plan_fill {
            Some(v) => {
                let _ = writeln!(
                    s,
                    "\n  at the plan's 24-h fill ({}) min/max holds {v:.0} on average: the plan holds {:.2}× that",
                    pct(self.plan.fill_24h).trim(),
                    self.plan.average_inventory_value / v.max(1e-9)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "\n  the plan's 24-h fill ({}) lies outside the baseline's curve",
                    pct(self.plan.fill_24h).trim()
                );
            }
        }
        let _ = writeln!(s, "\n  plan per tier × criticality: target, shelf, 24 h");
        for c in &self.plan.cells {
            let _ = writeln!(
                s,
                "    {:<7} {}  {}  {}  {}   ({} units)",
                c.tier.as_str(),
                c.criticality.as_str(),
                pct(c.target),
                pct(c.shelf_fill),
                pct(c.fill_24h),
                c.demand
            );
        }
        let _ = writeln!(
            s,
            "\n  plan month by month: projected vs realised 24-h fill"
        );
        for m in &self.plan.months {
            let _ = writeln!(
                s,
                "    {}  projected {}  realised {}  shelf {}  inventory {:>12.0}  lines {:>5}",
                m.month,
                m.projected_fill.map_or_else(|| "   –   ".to_owned(), pct),
                pct(m.fill_24h),
                pct(m.shelf_fill),
                m.inventory_value,
                m.order_lines
            );
        }
        if let Some(gap) = self.plan.projection_gap() {
            let _ = writeln!(
                s,
                "    mean projected − realised: {:+.1} points",
                100.0 * gap
            );
        }
        let _ = writeln!(s, "\n  replayed in {:.0} s", self.elapsed_s);
        s
    }
}
