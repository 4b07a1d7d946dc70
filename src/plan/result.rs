//! The planner's output: status, KPIs and proposals, each with its reason.

use chrono::{Duration, NaiveDate};
use rayon::prelude::*;
use serde::Serialize;

use crate::catalog::PartCode;
use crate::units::Amount;

use super::instance::Instance;
use super::lp::{Costs, Family, Flows, LinkRows};
use super::model::{PlanModel, Tier};
use super::prepare::Block;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Optimal,
    /// Stopped at the time limit; the plan is the best found.
    TimeLimit,
    /// The decomposition stopped at its round limit (`solver.dw_max_iterations`) before
    /// certifying its gap; the plan is the best found and the run records the gap.
    RoundLimit,
    Infeasible,
    Failed,
}

/// A linking row with its use and its shadow price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binding {
    pub family: Family,
    pub location: Option<String>,
    pub period: Option<usize>,
    pub usage: f64,
    pub limit: f64,
    /// Objective saved by one more unit of the limit (currency unit of budget or credit,
    /// m³ of capacity), major units.
    pub shadow_price: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierFill {
    pub tier: Tier,
    pub demand: f64,
    pub served: f64,
    pub fill_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpis {
    pub fill_rate_by_tier: Vec<TierFill>,
    /// Projected fill per period, all tiers: mean demand served in the period over mean
    /// demand (what the rolling replay sets beside the realised fill).
    pub fill_rate_by_period: Vec<f64>,
    /// Spend on purchases over the horizon.
    pub investment: Amount,
    /// Mean end-of-period stock value at unit cost, all locations.
    pub average_stock_value: Amount,
    pub costs: Costs,
}

/// Demand a proposal serves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cover {
    pub location: String,
    pub period: usize,
    pub qty: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// Mean demand met by this quantity: at the destination (and the stations it serves)
    /// from arrival until the next arrival there.
    pub covers: Vec<Cover>,
    /// Stations that do not stock the part and are served from the destination; their
    /// demand is part of `covers` there.
    pub also_serves: Vec<String>,
    /// Projected end-of-period stock at the destination, periods 0..T.
    pub stock_line: Vec<f64>,
    /// Linking rows this proposal uses that bind, with their shadow prices.
    pub binding: Vec<Binding>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Purchase {
    pub part: PartCode,
    pub supplier: String,
    pub receive_at: String,
    pub lead_time_days: u32,
    pub qty: i64,
    pub order_period: i64,
    pub order_by: NaiveDate,
    pub arrival_period: usize,
    pub arrive_on: NaiveDate,
    pub unit_cost: Amount,
    pub cost: Amount,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    pub part: PartCode,
    pub from: String,
    pub to: String,
    pub qty: i64,
    pub ship_period: usize,
    pub ship_by: NaiveDate,
    pub arrival_period: usize,
    pub arrive_on: NaiveDate,
    pub cost: Amount,
    /// Dealer-price value added to the receiving station's credit exposure.
    pub credit_impact: Option<Amount>,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanResult {
    pub model: String,
    pub status: PlanStatus,
    /// Why a plan is missing (infeasible / failed), naming the constraint family.
    pub reason: Option<String>,
    pub infeasible_families: Vec<Family>,
    pub method: &'static str,
    /// Objective of the plan written out (after rounding), major units.
    pub objective: Option<f64>,
    /// Objective of the continuous relaxation (LP bound), major units.
    pub relaxation: Option<f64>,
    /// Integer mode: relative gap of `objective` over the LP bound. LP mode: relative gap
    /// of `relaxation` over its certified lower bound (0 for the monolith).
    pub gap: Option<f64>,
    /// How duals were obtained (LP, LP at fixed integers, decomposition prices).
    pub duals_from: &'static str,
    pub build_ms: f64,
    pub solve_ms: f64,
    pub iterations: usize,
    pub columns: usize,
    /// Where the decomposition's time went (decomposition runs only).
    pub dw_profile: Option<super::decompose::Profile>,
    pub kpis: Option<Kpis>,
    pub binding: Vec<Binding>,
    pub purchases: Vec<Purchase>,
    pub transfers: Vec<Transfer>,
}

impl PlanResult {
    pub fn without_plan(model: &PlanModel, status: PlanStatus, reason: String) -> Self {
        PlanResult {
            model: model.name.clone(),
            status,
            reason: Some(reason),
            infeasible_families: Vec::new(),
            method: "none",
            objective: None,
            relaxation: None,
            gap: None,
            duals_from: "none",
            build_ms: 0.0,
            solve_ms: 0.0,
            iterations: 0,
            columns: 0,
            dw_profile: None,
            kpis: None,
            binding: Vec::new(),
            purchases: Vec::new(),
            transfers: Vec::new(),
        }
    }
}

/// Everything needed to write proposals out.
pub struct Writer<'a> {
    pub model: &'a PlanModel,
    pub inst: &'a Instance,
    pub blocks: &'a [Block],
    pub links: &'a LinkRows,
    pub flows: &'a [Flows],
    pub shadow: &'a [f64],
}

impl Writer<'_> {
    pub fn bindings(&self) -> Vec<Binding> {
        let usage = self.links.total_usage(self.blocks, self.flows);
        (0..self.links.len())
            .filter(|&r| self.shadow[r] > 1e-9)
            .map(|r| self.binding(r, usage[r]))
            .collect()
    }

    fn binding(&self, r: usize, usage: f64) -> Binding {
        let row = &self.links.rows[r];
        Binding {
            family: row.family,
            location: row
                .location
                .map(|l| self.inst.locations[l.ix()].code.clone()),
            period: row.period,
            usage,
            limit: row.rhs,
            shadow_price: self.shadow[r],
        }
    }

    pub fn kpis(&self) -> Kpis {
        let mut costs = Costs::default();
        let mut by_tier: Vec<TierFill> = Tier::ALL
            .iter()
            .map(|&tier| TierFill {
                tier,
                demand: 0.0,
                served: 0.0,
                fill_rate: 1.0,
            })
            .collect();
        let mut stock_value = 0.0;
        let periods = self.model.periods;
        let (mut demand_t, mut short_t) = (vec![0.0; periods], vec![0.0; periods]);
        for (b, f) in self.blocks.iter().zip(self.flows) {
            for (row, short_row) in b.demand.iter().zip(&f.short) {
                for t in 0..periods.min(row.len()).min(short_row.len()) {
                    demand_t[t] += row[t];
                    short_t[t] += short_row[t];
                }
            }
            costs.add(&super::lp::costs(b, f));
            let demand: f64 = b.demand.iter().flatten().sum();
            let short: f64 = f.short.iter().flatten().sum();
            if let Some(cell) = by_tier.iter_mut().find(|c| c.tier == b.tier) {
                cell.demand += demand;
                cell.served += demand - short;
            }
            stock_value += b.unit_cost * f.inv.iter().flatten().sum::<f64>();
        }
        for c in &mut by_tier {
            c.fill_rate = if c.demand > 0.0 {
                c.served / c.demand
            } else {
                1.0
            };
        }
        Kpis {
            fill_rate_by_tier: by_tier,
            fill_rate_by_period: demand_t
                .iter()
                .zip(&short_t)
                .map(|(d, s)| if *d > 0.0 { 1.0 - s / d } else { 1.0 })
                .collect(),
            investment: Amount::from_major_f64(costs.purchase),
            average_stock_value: Amount::from_major_f64(stock_value / self.model.periods as f64),
            costs,
        }
    }

    fn codes(&self, locs: &[super::instance::LocId]) -> Vec<String> {
        locs.iter()
            .map(|l| self.inst.locations[l.ix()].code.clone())
            .collect()
    }

    fn date(&self, t: i64) -> NaiveDate {
        self.model.period.start_of(self.model.start, t)
    }

    /// Demand at local `l` (and the stations it serves) in [from, until).
    fn covers(&self, b: &Block, l: usize, from: usize, until: usize) -> Vec<Cover> {
        let code = &self.inst.locations[b.locs[l].ix()].code;
        (from..until.min(b.periods()))
            .filter(|&t| b.demand[l][t] > 0.0)
            .map(|t| Cover {
                location: code.clone(),
                period: t,
                qty: b.demand[l][t],
            })
            .collect()
    }

    /// Binding rows a quantity arriving at local `l` in `t` uses from then on: the stock
    /// rows of `l` from `t`, and for a purchase the budget row of `t`.
    fn binding_for(&self, b: &Block, f: &Flows, l: usize, t: usize, buy: bool) -> Vec<Binding> {
        let budget = if buy {
            self.links.buy_terms(b)
        } else {
            Vec::new()
        };
        budget
            .into_iter()
            .chain(self.links.stock_terms(b, l))
            .filter(|(r, _, term)| {
                self.shadow[*r] > 1e-9
                    && match term {
                        super::lp::Term::Buy(s) => *s == t,
                        super::lp::Term::Inv(_, s) => *s >= t,
                    }
            })
            .map(|(r, c, term)| self.binding(r, c * f.get(term)))
            .collect()
    }

    /// Every part's purchases, in part order (parts written in parallel).
    pub fn purchases(&self) -> Vec<Purchase> {
        self.blocks
            .par_iter()
            .zip(self.flows)
            .flat_map_iter(|(b, f)| self.block_purchases(b, f))
            .collect()
    }

    fn block_purchases(&self, b: &Block, f: &Flows) -> Vec<Purchase> {
        let part = &self.inst.parts[b.part.ix()];
        let arrivals: Vec<usize> = (0..f.buy.len()).filter(|&t| f.buy[t] > 0.5).collect();
        let mut out = Vec::with_capacity(arrivals.len());
        for (i, &t) in arrivals.iter().enumerate() {
            let next = arrivals.get(i + 1).copied().unwrap_or(b.periods());
            let qty = f.buy[t].round() as i64;
            let arrive_on = self.date(t as i64);
            let mut covers = Vec::new();
            for l in 0..b.locs.len() {
                covers.extend(self.covers(b, l, t, next));
            }
            out.push(Purchase {
                part: part.code.clone(),
                supplier: part.supplier_code.clone(),
                receive_at: self.inst.locations[part.receive_at.ix()].code.clone(),
                lead_time_days: part.lead_time_days,
                qty,
                order_period: t as i64 - b.lead as i64,
                order_by: arrive_on - Duration::days(i64::from(part.lead_time_days)),
                arrival_period: t,
                arrive_on,
                unit_cost: part.unit_cost,
                cost: part.unit_cost.checked_mul(qty).unwrap_or(Amount::ZERO),
                reason: Reason {
                    covers,
                    also_serves: Vec::new(),
                    stock_line: f.inv[b.receive].clone(),
                    binding: self.binding_for(b, f, b.receive, t, true),
                },
            });
        }
        out
    }

    /// Every part's transfers, in part order (parts written in parallel).
    pub fn transfers(&self) -> Vec<Transfer> {
        self.blocks
            .par_iter()
            .zip(self.flows)
            .flat_map_iter(|(b, f)| self.block_transfers(b, f))
            .collect()
    }

    fn block_transfers(&self, b: &Block, f: &Flows) -> Vec<Transfer> {
        let part = &self.inst.parts[b.part.ix()];
        let arrivals = arrivals(b, f);
        let mut out = Vec::new();
        for (k, lane) in b.lanes.iter().enumerate() {
            let to = &self.inst.locations[b.locs[lane.to].ix()];
            let full = &self.inst.lanes[lane.lane.ix()];
            for (t, &q) in f.moves[k].iter().enumerate().filter(|(_, q)| **q > 0.5) {
                let qty = q.round() as i64;
                let arrival = t + lane.offset;
                let next = (arrival + 1..b.periods())
                    .find(|&s| arrivals[lane.to][s])
                    .unwrap_or(b.periods());
                let ship_by = self.date(t as i64);
                out.push(Transfer {
                    part: part.code.clone(),
                    from: self.inst.locations[b.locs[lane.from].ix()].code.clone(),
                    to: to.code.clone(),
                    qty,
                    ship_period: t,
                    ship_by,
                    arrival_period: arrival,
                    arrive_on: ship_by + Duration::days(i64::from(full.lead_time_days)),
                    cost: full.cost_per_unit.checked_mul(qty).unwrap_or(Amount::ZERO),
                    credit_impact: to
                        .credit_headroom
                        .and_then(|_| part.dealer_price.checked_mul(qty)),
                    reason: Reason {
                        covers: self.covers(b, lane.to, arrival, next),
                        also_serves: self.codes(&b.served_for[lane.to]),
                        stock_line: f.inv[lane.to].clone(),
                        binding: self.binding_for(b, f, lane.to, arrival, false),
                    },
                });
            }
        }
        out
    }
}

/// Per local and period: whether a transfer arrives there then.
fn arrivals(b: &Block, f: &Flows) -> Vec<Vec<bool>> {
    let mut at = vec![vec![false; b.periods()]; b.locs.len()];
    for (k, lane) in b.lanes.iter().enumerate() {
        for (t, q) in f.moves[k].iter().enumerate() {
            if *q > 0.5 && t + lane.offset < b.periods() {
                at[lane.to][t + lane.offset] = true;
            }
        }
    }
    at
}
