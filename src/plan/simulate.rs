//! Replays realised demand against a plan and against the min/max baseline.
//!
//! Fairness: both policies see the same realised demand, opening stock, pipeline, lanes and
//! stocking sets, and both react to it period by period. The plan is applied as a
//! time-varying order-up-to policy: in period t each location orders up to the inventory
//! position the plan projects after its period-t decisions (on hand − shipments out +
//! everything ordered so far), so where demand ran above the forecast it orders more and
//! where it ran below, less. The baseline is what Odoo/ERPNext users run: per part ×
//! location a reorder point `min = mean demand over the lead time + safety stock` (same
//! gamma method and service target as the plan) and `max = min + EOQ`; when the position
//! drops to `min` it orders up to `max`. Both order from the parent, top down within a
//! period (the receiving central from the supplier first, stations last), so what a parent
//! receives can ship on the same period; parents ship what they have; unmet demand is
//! lost. Lateral moves are not replayed (the baseline has none).

use serde::Serialize;

use crate::units::Amount;

use super::instance::{Instance, LocId, PartId};
use super::lp::Flows;
use super::model::{PlanModel, Tier};
use super::prepare::{self, Block};
use super::result::TierFill;
use super::stochastic::safety_stock;
use super::Solution;

/// Realised demand of one part at one station, per period.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Realised {
    pub part: PartId,
    pub station: LocId,
    pub qty: Vec<f64>,
}

/// Which ordering rule to replay.
pub enum Policy<'a> {
    /// The plan as an order-up-to policy (see the module docs).
    Plan(&'a Solution),
    /// Min/max reorder points at every stocked pair.
    MinMax,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub policy: &'static str,
    pub periods: usize,
    pub fill_rate: f64,
    pub fill_rate_by_tier: Vec<TierFill>,
    /// Station-periods with unmet demand.
    pub stockouts: usize,
    /// Mean end-of-period stock value at unit cost, all locations.
    pub average_stock_value: Amount,
    pub purchase: Amount,
    pub holding: Amount,
    pub transport: Amount,
    pub shortage_penalty: Amount,
    pub total_cost: Amount,
}

/// Replays `realised` (per part × station × period, periods ≤ the model's horizon).
pub fn simulate(
    model: &PlanModel,
    inst: &Instance,
    realised: &[Realised],
    policy: &Policy,
) -> SimReport {
    let owned;
    let blocks: &[Block] = match policy {
        Policy::Plan(s) => &s.blocks,
        Policy::MinMax => {
            owned = prepare::blocks(model, inst);
            &owned
        }
    };
    let mut by_part: Vec<Vec<&Realised>> = vec![Vec::new(); inst.parts.len()];
    for r in realised {
        if let Some(v) = by_part.get_mut(r.part.ix()) {
            v.push(r);
        }
    }
    let mut acc = Acc::default();
    for (i, b) in blocks.iter().enumerate() {
        let demand = local_demand(inst, b, &by_part[b.part.ix()], model.periods);
        let rule = match policy {
            Policy::Plan(s) => match s.flows.get(i) {
                Some(f) => Rule::UpTo(up_to_levels(b, f)),
                None => Rule::UpTo(vec![vec![0.0; b.periods()]; b.locs.len()]),
            },
            Policy::MinMax => Rule::MinMax(min_max(model, inst, b)),
        };
        replay(b, &demand, &rule, &mut acc);
    }
    acc.report(
        match policy {
            Policy::Plan(_) => "plan",
            Policy::MinMax => "min_max",
        },
        model.periods,
    )
}

enum Rule {
    UpTo(Vec<Vec<f64>>),
    MinMax(Vec<(f64, f64)>),
}

/// Realised demand per [local loc][t]; a station without stock is served where its
/// nearest stocking ancestor is.
fn local_demand(inst: &Instance, b: &Block, rows: &[&Realised], t_n: usize) -> Vec<Vec<f64>> {
    let mut d = vec![vec![0.0; t_n]; b.locs.len()];
    for r in rows {
        let Some(l) = inst
            .ancestry(r.station)
            .into_iter()
            .find_map(|a| b.local(a))
        else {
            continue;
        };
        for (t, q) in r.qty.iter().take(t_n).enumerate() {
            d[l][t] += q;
        }
    }
    d
}

/// The plan's inventory position after its period-t decisions, per [loc][t].
fn up_to_levels(b: &Block, f: &Flows) -> Vec<Vec<f64>> {
    let t_n = b.periods();
    (0..b.locs.len())
        .map(|l| {
            (0..t_n)
                .map(|t| {
                    let mut p = if t == 0 {
                        b.on_hand[l]
                    } else {
                        f.inv[l][t - 1]
                    };
                    p += b.pipeline[l][t..].iter().sum::<f64>();
                    if l == b.receive {
                        p += (t..t_n)
                            .filter(|&s| s <= t + b.lead)
                            .map(|s| f.buy[s])
                            .sum::<f64>();
                    }
                    for (k, lane) in b.lanes.iter().enumerate() {
                        if lane.to == l {
                            // shipped at s ≤ t, arriving at s + offset ≥ t
                            p += (0..=t)
                                .filter(|&s| s + lane.offset >= t)
                                .map(|s| f.moves[k][s])
                                .sum::<f64>();
                        }
                        if lane.from == l {
                            p -= f.moves[k][t];
                        }
                    }
                    p
                })
                .collect()
        })
        .collect()
}

/// (min, max) per local location from the forecast in the block.
fn min_max(model: &PlanModel, inst: &Instance, b: &Block) -> Vec<(f64, f64)> {
    let t_n = b.periods() as f64;
    let n = b.locs.len();
    let part = &inst.parts[b.part.ix()];
    let fill = model.target(b.tier, part.criticality).fill_rate;
    // Echelon demand per period: a location supplies its own demand and its children's.
    let mut mean: Vec<f64> = b
        .demand
        .iter()
        .map(|d| d.iter().sum::<f64>() / t_n)
        .collect();
    let mut var: Vec<f64> = b.var.iter().map(|v| v.iter().sum::<f64>() / t_n).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&l| std::cmp::Reverse(depth(b, l)));
    for &l in &order {
        if let Some(k) = b.parent_lane[l] {
            let p = b.lanes[k].from;
            mean[p] += mean[l];
            var[p] += var[l];
        }
    }
    let hold_year = b.unit_cost * model.holding_rate_per_year;
    let review = model.review_periods as f64;
    (0..n)
        .map(|l| {
            let lead_days = match b.parent_lane[l] {
                Some(k) if l != b.receive => inst.lanes[b.lanes[k].lane.ix()].lead_time_days,
                _ => part.lead_time_days,
            };
            let lead = f64::from(lead_days) / model.period.days();
            let cover = lead + review;
            let ss = safety_stock(mean[l] * cover, var[l] * cover, mean[l] * review, fill);
            let min = mean[l] * lead + ss;
            let yearly = mean[l] * model.period.per_year();
            let eoq = if hold_year > 0.0 && model.order_cost > 0.0 {
                (2.0 * yearly * model.order_cost / hold_year).sqrt()
            } else {
                mean[l]
            };
            (min, min + eoq.max(1.0))
        })
        .collect()
}

#[derive(Default)]
struct Acc {
    demand: [f64; 3],
    served: [f64; 3],
    stockouts: usize,
    stock_value: f64,
    purchase: f64,
    holding: f64,
    transport: f64,
    shortage: f64,
}

impl Acc {
    fn report(self, policy: &'static str, periods: usize) -> SimReport {
        let tiers = Tier::ALL
            .iter()
            .enumerate()
            .map(|(i, &tier)| TierFill {
                tier,
                demand: self.demand[i],
                served: self.served[i],
                fill_rate: if self.demand[i] > 0.0 {
                    self.served[i] / self.demand[i]
                } else {
                    1.0
                },
            })
            .collect();
        let d: f64 = self.demand.iter().sum();
        let s: f64 = self.served.iter().sum();
        let money = Amount::from_major_f64;
        SimReport {
            policy,
            periods,
            fill_rate: if d > 0.0 { s / d } else { 1.0 },
            fill_rate_by_tier: tiers,
            stockouts: self.stockouts,
            average_stock_value: money(self.stock_value / periods.max(1) as f64),
            purchase: money(self.purchase),
            holding: money(self.holding),
            transport: money(self.transport),
            shortage_penalty: money(self.shortage),
            total_cost: money(self.purchase + self.holding + self.transport + self.shortage),
        }
    }
}

fn replay(b: &Block, demand: &[Vec<f64>], rule: &Rule, acc: &mut Acc) {
    let t_n = b.periods();
    let n = b.locs.len();
    let tier = Tier::ALL.iter().position(|t| *t == b.tier).unwrap_or(2);
    let mut on_hand = b.on_hand.clone();
    let mut arriving = b.pipeline.clone();
    // Top down: the supplier's customer orders first, then each location pulls from its
    // parent after the parent's own receipt, so a buy or shipment due within the period
    // can be passed on in the same period, as the LP allows (bottom-up, a station pulled
    // before its regional was restocked, and a pass-through regional starved it).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&l| (l != b.receive, depth(b, l)));
    let below = echelons(b);
    for t in 0..t_n {
        for l in 0..n {
            on_hand[l] += arriving[l][t];
        }
        for &l in &order {
            let position = on_hand[l] + arriving[l][t + 1..].iter().sum::<f64>();
            let want = match rule {
                // Echelon base stock: a parent's plan level is net of what it ships on, so
                // it is compared with the echelon — itself and everything below it — or a
                // pass-through regional would hold a level of ~0 and never order.
                Rule::UpTo(levels) => {
                    let echelon_level: f64 = below[l].iter().map(|&m| levels[m][t]).sum();
                    let echelon_position: f64 = below[l]
                        .iter()
                        .map(|&m| on_hand[m] + arriving[m][t + 1..].iter().sum::<f64>())
                        .sum();
                    // Whole units rounded up, as the baseline orders (it used to round to
                    // nearest, which left a level under half a unit at nothing); the 1e-6
                    // keeps a level the LP met exactly from ordering one unit more.
                    (echelon_level - echelon_position - 1e-6).ceil().max(0.0)
                }
                Rule::MinMax(mm) => {
                    let (min, max) = mm[l];
                    if position <= min {
                        (max - position).ceil().max(0.0)
                    } else {
                        0.0
                    }
                }
            };
            if want <= 0.0 {
                continue;
            }
            if l == b.receive {
                acc.purchase += want * b.unit_cost;
                deliver(&mut on_hand[l], &mut arriving[l], t, b.lead, want);
            } else if let Some(k) = b.parent_lane[l] {
                let lane = &b.lanes[k];
                let q = want.min(on_hand[lane.from]).max(0.0);
                on_hand[lane.from] -= q;
                acc.transport += q * lane.cost;
                deliver(&mut on_hand[l], &mut arriving[l], t, lane.offset, q);
            }
        }
        for l in 0..n {
            let d = demand[l][t];
            let served = d.min(on_hand[l]);
            on_hand[l] -= served;
            acc.demand[tier] += d;
            acc.served[tier] += served;
            if d - served > 1e-9 {
                acc.stockouts += 1;
                acc.shortage += (d - served) * b.short_pen;
            }
            acc.holding += on_hand[l] * b.hold;
            acc.stock_value += on_hand[l] * b.unit_cost;
        }
    }
}

/// Books `qty` sent in period `t` to arrive `offset` periods later. This period's arrivals
/// are already on hand when orders are placed, so a same-period delivery (a supplier or lane
/// lead time under half a period) goes straight on hand; one due after the horizon is gone.
fn deliver(on_hand: &mut f64, arriving: &mut [f64], t: usize, offset: usize, qty: f64) {
    if offset == 0 {
        *on_hand += qty;
    } else if let Some(due) = arriving.get_mut(t + offset) {
        *due += qty;
    }
}

/// Per location, itself and every location supplied through it (its echelon).
fn echelons(b: &Block) -> Vec<Vec<usize>> {
    let n = b.locs.len();
    let mut below: Vec<Vec<usize>> = (0..n).map(|l| vec![l]).collect();
    for m in 0..n {
        let mut at = m;
        let mut steps = 0;
        while let Some(k) = b.parent_lane[at] {
            at = b.lanes[k].from;
            steps += 1;
            if steps > n {
                break; // a cycle in bad data
            }
            below[at].push(m);
        }
    }
    below
}

fn depth(b: &Block, l: usize) -> usize {
    let mut d = 0;
    let mut at = l;
    while let Some(k) = b.parent_lane[at] {
        at = b.lanes[k].from;
        d += 1;
        if d > b.locs.len() {
            break; // a cycle in bad data
        }
    }
    d
}
