//! The min/max baseline (what Odoo and ERPNext users run), recomputed every month from the
//! last 12 months of demand, echelon by echelon (DESIGN §11).
//!
//! Per part × location: the location's demand is what it feeds (a station its own; a
//! regional centre its stations'; the central everything), `μ` and `σ` its monthly mean and
//! standard deviation over the last 12 months. With lead time `L` (lane from the parent, or
//! the supplier's for the central) and a one-month review, the protection window is
//! `W = L + 1` months and
//!
//! ```text
//! min = μ · s · W + z · σ · √W        max = min + max(EOQ, μ),   EOQ = √(2 · 12μ · K / (h · c))
//! ```
//!
//! where `s` is the region's seasonal index over the window (its demand in those calendar
//! months last year over its monthly mean: the baseline is not blind to peak seasons), `K`
//! the model's cost per order line, `h` its holding rate and `c` the unit cost. When the
//! inventory position (on hand + open lines) is at or below `min`, the location orders up to
//! `max`: the central buys (rounded to MOQ and pack size; within the month's budget, the
//! reorder points first, most urgent first, then the lot sizes), the others ask their
//! parent, which ships what it holds, top down.

use std::collections::HashMap;

use super::world::{Line, Net, World};
use super::Calendar;
use crate::network::LocationKind;
use crate::plan::model::BudgetScope;
use crate::plan::{LocId, PartId};

/// One month's demand per (part, station).
pub type MonthDemand = HashMap<(PartId, LocId), i64>;

/// Months of demand the baseline looks back on.
pub const WINDOW: usize = 12;

/// The baseline at one safety factor.
#[derive(Debug, Clone)]
pub struct MinMax {
    pub z: f64,
    /// Demand per (part, station) of the last months, oldest first; each month a map.
    recent: Vec<MonthDemand>,
    /// Calendar month (1–12) of each entry of `recent`.
    recent_month: Vec<u32>,
}

/// Where each location sits: its parent, its region's root (a regional centre, or itself),
/// and the lead time of the lane that feeds it, in months.
struct Shape {
    parent: Vec<Option<LocId>>,
    lead_days: Vec<f64>,
    /// The regional centre each location belongs to (itself when there is none above it).
    root: Vec<LocId>,
    /// Top down: central first, stations last.
    order: Vec<LocId>,
}

impl MinMax {
    /// `history`: per month before the replay, oldest first, the demand per (part, station),
    /// with the calendar month of each.
    pub fn new(z: f64, history: Vec<(u32, MonthDemand)>) -> MinMax {
        let skip = history.len().saturating_sub(WINDOW);
        let (recent_month, recent) = history.into_iter().skip(skip).unzip();
        MinMax {
            z,
            recent,
            recent_month,
        }
    }

    /// Records a month's demand (served and lost alike: demand is what came).
    pub fn observe(&mut self, calendar_month: u32, demand: &[(PartId, LocId, i64)]) {
        let mut month = HashMap::new();
        for &(p, s, q) in demand {
            *month.entry((p, s)).or_insert(0) += q;
        }
        self.recent.push(month);
        self.recent_month.push(calendar_month);
        if self.recent.len() > WINDOW {
            self.recent.remove(0);
            self.recent_month.remove(0);
        }
    }

    /// The lines to release in month `m`, given the world after this month's arrivals.
    pub fn decide(&self, net: &Net, world: &World, calendar: &Calendar, m: usize) -> Vec<Line> {
        let shape = shape(net);
        let season = self.seasonal_index(&shape);
        let mut by_loc: Vec<Vec<(PartId, Stats)>> =
            (0..net.inst.locations.len()).map(|_| Vec::new()).collect();
        for ((part, l), stats) in self.echelon_series(&shape) {
            by_loc[l.ix()].push((part, stats));
        }
        // Parents share their shelf among children: a fixed order keeps runs repeatable.
        by_loc.iter_mut().for_each(|v| v.sort_by_key(|(p, _)| *p));
        let mut position = inventory_position(world);
        let mut shelf: HashMap<(PartId, LocId), i64> = HashMap::new();
        let mut purchases = Vec::new();
        let mut transfers = Vec::new();
        let calendar_month = calendar.calendar_month(m);
        for &l in &shape.order {
            for (part, demand) in &by_loc[l.ix()] {
                let part = *part;
                // The central waits on the part's supplier; the others on the lane from their parent.
                let lead_days = match shape.parent[l.ix()] {
                    None => f64::from(net.inst.parts[part.ix()].lead_time_days),
                    Some(_) => shape.lead_days[l.ix()],
                };
                let window = lead_days / 30.44 + 1.0;
                let s = season_over(&season, net, &shape, l, calendar_month, window);
                let (min, max) = self.levels(net, part, demand, window, s);
                let ip = position.get(&(part, l)).copied().unwrap_or(0) as f64;
                if max <= 0.0 || ip > min {
                    continue;
                }
                let need = (max - ip).ceil() as i64;
                match shape.parent[l.ix()] {
                    None => purchases.push(Want {
                        part,
                        at: l,
                        to_min: (min - ip).ceil().max(0.0) as i64,
                        to_max: need,
                        urgency: (ip - min) / demand.mean.max(1e-9),
                    }),
                    Some(parent) => {
                        let held = shelf
                            .entry((part, parent))
                            .or_insert_with(|| world.on_hand(part, parent));
                        let qty = need.min(*held);
                        if qty > 0 {
                            *held -= qty;
                            *position.entry((part, l)).or_insert(0) += qty;
                            let sent = line(
                                calendar,
                                m,
                                part,
                                Some(parent),
                                l,
                                qty,
                                shape.lead_days[l.ix()],
                            );
                            // Goods that land this month can move on this month, as the
                            // plan's can (the world releases the lines in this order).
                            if sent.arrives == m {
                                *shelf
                                    .entry((part, l))
                                    .or_insert_with(|| world.on_hand(part, l)) += qty;
                            }
                            transfers.push(sent);
                        }
                    }
                }
            }
        }
        let mut lines = self.buy(net, calendar, m, purchases);
        lines.extend(transfers);
        lines
    }

    fn levels(&self, net: &Net, part: PartId, d: &Stats, window: f64, season: f64) -> (f64, f64) {
        let min = d.mean * season * window + self.z * d.sd * window.sqrt();
        let cost = net.unit_cost(part).max(0.01);
        let h = net.model.holding_rate_per_year.max(1e-6);
        let eoq = (2.0 * 12.0 * d.mean * net.model.order_cost / (h * cost)).sqrt();
        (min, min + eoq.max(d.mean))
    }

    /// Purchases within the month's budget. When the budget does not cover every line, the
    /// money goes first to bringing each position up to its reorder point (most urgent, in
    /// months of demand below it, first), then to topping the lines up towards max: a
    /// planner trimming a purchase list protects the reorder points before the lot sizes.
    fn buy(&self, net: &Net, calendar: &Calendar, m: usize, mut wanted: Vec<Want>) -> Vec<Line> {
        wanted.sort_by(|a, b| a.urgency.total_cmp(&b.urgency).then(a.part.cmp(&b.part)));
        let mut budget = monthly_budget(net.model);
        let rounded = |part: PartId, units: i64| {
            let p = &net.inst.parts[part.ix()];
            let pack = i64::from(p.pack_size.max(1));
            (units.max(i64::from(p.moq)) + pack - 1) / pack * pack
        };
        let mut qty: Vec<i64> = vec![0; wanted.len()];
        // Without a budget every line goes up to max at once.
        let passes: &[bool] = if budget.is_some() {
            &[false, true]
        } else {
            &[true]
        };
        for &to_max in passes {
            for (i, w) in wanted.iter().enumerate() {
                let target = if to_max { w.to_max } else { w.to_min };
                if target <= qty[i] {
                    continue;
                }
                let next = rounded(w.part, target);
                let spend = (next - qty[i]) as f64 * net.unit_cost(w.part);
                if let Some(left) = budget.as_mut() {
                    if spend > *left {
                        continue;
                    }
                    *left -= spend;
                }
                qty[i] = next;
            }
        }
        wanted
            .iter()
            .zip(qty)
            .filter(|(_, q)| *q > 0)
            .map(|(w, q)| {
                let lead = f64::from(net.inst.parts[w.part.ix()].lead_time_days);
                line(calendar, m, w.part, None, w.at, q, lead)
            })
            .collect()
    }

    /// Per region root: demand in each calendar month of the window over the monthly mean.
    fn seasonal_index(&self, shape: &Shape) -> HashMap<(LocId, u32), f64> {
        let mut by_month: HashMap<(LocId, u32), f64> = HashMap::new();
        let mut total: HashMap<LocId, f64> = HashMap::new();
        for (month, cells) in self.recent_month.iter().zip(&self.recent) {
            for (&(_, s), &q) in cells {
                let root = shape.root[s.ix()];
                *by_month.entry((root, *month)).or_default() += q as f64;
                *total.entry(root).or_default() += q as f64;
            }
        }
        let months = self.recent.len().max(1) as f64;
        by_month
            .into_iter()
            .map(|((root, month), q)| {
                let mean = total.get(&root).copied().unwrap_or(0.0) / months;
                ((root, month), if mean > 0.0 { q / mean } else { 1.0 })
            })
            .collect()
    }

    /// Monthly demand statistics per (part, location), each location fed by what is below.
    fn echelon_series(&self, shape: &Shape) -> HashMap<(PartId, LocId), Stats> {
        let n = self.recent.len();
        let mut series: HashMap<(PartId, LocId), Vec<f64>> = HashMap::new();
        for (t, cells) in self.recent.iter().enumerate() {
            for (&(part, station), &q) in cells {
                let mut at = Some(station);
                while let Some(l) = at {
                    series.entry((part, l)).or_insert_with(|| vec![0.0; n])[t] += q as f64;
                    at = shape.parent[l.ix()];
                }
            }
        }
        series
            .into_iter()
            .map(|(k, v)| (k, Stats::of(&v)))
            .collect()
    }
}

/// A purchase the baseline wants: units to reach min and to reach max.
struct Want {
    part: PartId,
    at: LocId,
    to_min: i64,
    to_max: i64,
    /// Months of demand the position is below min (more negative: more urgent).
    urgency: f64,
}

struct Stats {
    mean: f64,
    sd: f64,
}

impl Stats {
    fn of(v: &[f64]) -> Stats {
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Stats {
            mean,
            sd: var.sqrt(),
        }
    }
}

fn shape(net: &Net) -> Shape {
    let inst = net.inst;
    let parent: Vec<Option<LocId>> = inst.locations.iter().map(|l| l.parent).collect();
    let lead_days = inst
        .locations
        .iter()
        .enumerate()
        .map(|(i, l)| match l.parent {
            Some(p) => inst
                .lanes
                .iter()
                .find(|lane| lane.from == p && lane.to.ix() == i)
                .map_or(0.0, |lane| f64::from(lane.lead_time_days)),
            None => 0.0,
        })
        .collect();
    let depth = |i: usize| inst.ancestry(LocId(i as u32)).len();
    let mut order: Vec<LocId> = (0..inst.locations.len()).map(|i| LocId(i as u32)).collect();
    order.sort_by_key(|l| (depth(l.ix()), l.0));
    let root = (0..inst.locations.len())
        .map(|i| {
            inst.ancestry(LocId(i as u32))
                .into_iter()
                .find(|l| inst.locations[l.ix()].kind == LocationKind::Regional)
                .unwrap_or(LocId(i as u32))
        })
        .collect();
    Shape {
        parent,
        lead_days,
        root,
        order,
    }
}

/// Mean seasonal index over the `window` months from `calendar_month` (the central and
/// regions without history: 1).
fn season_over(
    season: &HashMap<(LocId, u32), f64>,
    net: &Net,
    shape: &Shape,
    loc: LocId,
    calendar_month: u32,
    window: f64,
) -> f64 {
    if net.inst.locations[loc.ix()].kind == LocationKind::Central {
        return 1.0;
    }
    let root = shape.root[loc.ix()];
    let months = window.ceil().max(1.0) as u32;
    let sum: f64 = (0..months)
        .map(|k| {
            let cm = (calendar_month - 1 + k) % 12 + 1;
            season.get(&(root, cm)).copied().unwrap_or(1.0)
        })
        .sum();
    sum / f64::from(months)
}

/// On hand plus open lines per (part, location).
fn inventory_position(world: &World) -> HashMap<(PartId, LocId), i64> {
    let mut ip: HashMap<(PartId, LocId), i64> = HashMap::new();
    for (p, l, q) in world.shelves() {
        *ip.entry((p, l)).or_insert(0) += q;
    }
    for line in world.open_lines() {
        *ip.entry((line.part, line.to)).or_insert(0) += line.qty;
    }
    ip
}

/// The model's purchase budget for one month, major units (`None`: no budget).
pub fn monthly_budget(model: &crate::plan::PlanModel) -> Option<f64> {
    let budget = model.budget.as_ref()?;
    let amount = budget.amount.minor() as f64 / 100.0;
    Some(match budget.scope {
        BudgetScope::Period => amount,
        BudgetScope::Horizon => amount / model.periods.max(1) as f64,
    })
}

fn line(
    calendar: &Calendar,
    m: usize,
    part: PartId,
    from: Option<LocId>,
    to: LocId,
    qty: i64,
    lead_days: f64,
) -> Line {
    let arrive_on = calendar.first_day(m) + chrono::Duration::days(lead_days.round() as i64);
    Line {
        part,
        from,
        to,
        qty,
        released: m,
        arrives: calendar.index_of(arrive_on).max(m),
        proposal_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::Month;
    use crate::replay::world::tests::small;

    #[test]
    fn a_station_below_min_asks_its_parent_which_ships_what_it_holds() {
        let (model, inst) = small();
        let net = Net::new(&inst, &model);
        let (part, r, s1) = (PartId(0), LocId(1), LocId(2));
        // S1 used 4 a month for a year; nothing on its shelf; R holds 3.
        let history = (0..12)
            .map(|k| (k % 12 + 1, HashMap::from([((part, s1), 4)])))
            .collect();
        let baseline = MinMax::new(1.0, history);
        let world = World::new(&inst, &[(part, r, 3)], Vec::new());
        let calendar = Calendar::new(Month::new(2027, 1).unwrap_or_else(|| panic!("month")));
        let lines = baseline.decide(&net, &world, &calendar, 0);
        let transfer = lines.iter().find(|l| l.to == s1).copied();
        assert_eq!(transfer.map(|l| (l.from, l.qty)), Some((Some(r), 3)));
        // The central buys for the whole network's demand (it holds nothing).
        let purchase = lines.iter().find(|l| l.from.is_none());
        assert!(purchase.is_some_and(|l| l.to == LocId(0) && l.qty >= 8));
        // R reorders from the central, which holds nothing: no line.
        assert!(!lines.iter().any(|l| l.to == r));
    }

    #[test]
    fn without_a_budget_the_central_buys_up_to_max_and_with_one_reorder_points_come_first() {
        let (mut model, inst) = small();
        let (part, s1) = (PartId(0), LocId(2));
        let history: Vec<(u32, MonthDemand)> = (0..12)
            .map(|k| (k % 12 + 1, HashMap::from([((part, s1), 4)])))
            .collect();
        let calendar = Calendar::new(Month::new(2027, 1).unwrap_or_else(|| panic!("month")));
        let world = World::new(&inst, &[], Vec::new());
        let bought = |model: &crate::plan::PlanModel| {
            let net = Net::new(&inst, model);
            let lines = MinMax::new(0.0, history.clone()).decide(&net, &world, &calendar, 0);
            lines
                .iter()
                .filter(|l| l.from.is_none())
                .map(|l| l.qty)
                .sum::<i64>()
        };
        // μ = 4 a month, 45-day lead: min = 4 · (45/30.44 + 1) ≈ 9.9, max = min + max(EOQ, μ).
        model.budget = None;
        let unlimited = bought(&model);
        assert!(unlimited >= 14, "up to max: {unlimited}");
        // A budget for 12 units at 100 a unit: the reorder point (10 units) first.
        model.budget = Some(crate::plan::model::Budget {
            scope: BudgetScope::Period,
            amount: crate::units::Amount::from_minor(120_000),
        });
        assert_eq!(bought(&model), 10);
    }
}
