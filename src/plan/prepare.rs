//! From an [`Instance`] and a [`PlanModel`] to per-part blocks: the stocking decision,
//! lead times in periods, inherited demand and safety-stock targets.
//!
//! Work here is linear in (parts + demand rows + stock rows + lanes of stocked locations):
//! nothing is done per part × location unless that pair is active.

use rayon::prelude::*;

use crate::network::LocationKind;

use super::instance::{Instance, LaneId, LocId, PartId};
use super::model::{PlanModel, Tier};
use super::stochastic::{stock_level, window};

/// A lane between two stocked locations of one part.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockLane {
    pub lane: LaneId,
    /// Local indices into [`Block::locs`].
    pub from: usize,
    pub to: usize,
    /// Lead time in whole periods: shipped in t, arrives in t + offset.
    pub offset: usize,
    /// Cost per unit, major units.
    pub cost: f64,
}

/// One part's slice of the plan: the locations that stock it and everything priced.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub part: PartId,
    pub tier: Tier,
    /// Local location index → global location.
    pub locs: Vec<LocId>,
    /// Local index of the location the supplier delivers to.
    pub receive: usize,
    /// Supplier lead time in periods: a buy may arrive from this period on.
    pub lead: usize,
    pub lanes: Vec<BlockLane>,
    /// Per loc: index in `lanes` of the lane from its tree parent, if the parent stocks too.
    pub parent_lane: Vec<Option<usize>>,
    /// Mean demand per [loc][t], own plus that inherited from non-stocked children.
    pub demand: Vec<Vec<f64>>,
    /// Safety-stock target per [loc][t] (zero when the family is off).
    pub ss: Vec<Vec<f64>>,
    /// Forecast-error variance per [loc][t] (own plus inherited).
    pub var: Vec<Vec<f64>>,
    /// Stations whose demand is served here although they do not stock the part.
    pub served_for: Vec<Vec<LocId>>,
    pub on_hand: Vec<f64>,
    pub pipeline: Vec<Vec<f64>>,
    /// Per loc: hard cap on total shortage over the horizon (hard service family).
    pub max_short: Vec<Option<f64>>,
    /// Money in major units per unit of the part.
    pub unit_cost: f64,
    pub dealer: f64,
    pub hold: f64,
    pub short_pen: f64,
    pub gap_pen: f64,
    pub end_value: f64,
    pub volume: f64,
    pub pack: u32,
    pub moq: u32,
}

impl Block {
    pub fn periods(&self) -> usize {
        self.demand.first().map_or(0, Vec::len)
    }

    /// Number of LP columns this block creates (for the monolith/decomposition choice).
    pub fn columns(&self) -> usize {
        let t = self.periods();
        let moves: usize = self.lanes.iter().map(|l| t.saturating_sub(l.offset)).sum();
        let short = self.demand.iter().flatten().filter(|d| **d > 0.0).count();
        let gap = self.ss.iter().flatten().filter(|s| **s > 0.0).count();
        t.saturating_sub(self.lead) + moves + self.locs.len() * t + short + gap
    }

    pub fn local(&self, loc: LocId) -> Option<usize> {
        self.locs.iter().position(|l| *l == loc)
    }
}

/// Rows of the instance grouped by part, built once in O(rows).
struct ByPart {
    demand: Vec<Vec<usize>>,
    stock: Vec<Vec<usize>>,
    lanes_out: Vec<Vec<usize>>,
}

fn group(inst: &Instance) -> ByPart {
    let mut demand = vec![Vec::new(); inst.parts.len()];
    for (i, d) in inst.demand.iter().enumerate() {
        demand[d.part.ix()].push(i);
    }
    let mut stock = vec![Vec::new(); inst.parts.len()];
    for (i, s) in inst.stock.iter().enumerate() {
        stock[s.part.ix()].push(i);
    }
    let mut lanes_out = vec![Vec::new(); inst.locations.len()];
    for (i, l) in inst.lanes.iter().enumerate() {
        lanes_out[l.from.ix()].push(i);
    }
    ByPart {
        demand,
        stock,
        lanes_out,
    }
}

/// Builds every part's block (in parallel; each block only reads the instance).
pub fn blocks(model: &PlanModel, inst: &Instance) -> Vec<Block> {
    let by = group(inst);
    (0..inst.parts.len())
        .into_par_iter()
        .map(|p| block(model, inst, &by, PartId(p as u32)))
        .collect()
}

fn lead_days_into(inst: &Instance, by: &ByPart, loc: LocId) -> Option<u32> {
    let parent = inst.locations[loc.ix()].parent?;
    by.lanes_out[parent.ix()]
        .iter()
        .map(|&i| &inst.lanes[i])
        .find(|l| l.to == loc)
        .map(|l| l.lead_time_days)
}

fn block(model: &PlanModel, inst: &Instance, by: &ByPart, p: PartId) -> Block {
    let part = &inst.parts[p.ix()];
    let t_n = model.periods;
    let tier = model.tier_of(&part.product_line);
    let target = model.target(tier, part.criticality);
    let has_stock = |loc: LocId| {
        by.stock[p.ix()].iter().any(|&i| {
            let s = &inst.stock[i];
            s.location == loc && (s.on_hand > 0.0 || s.pipeline.iter().any(|q| *q > 0.0))
        })
    };
    // Stocking decision per station with demand; a station that does not stock passes its
    // demand (mean and error variance) to its parent.
    let mut locs: Vec<LocId> = Vec::new();
    let mut own: Vec<(LocId, LocId, usize)> = Vec::new(); // (served at, origin, demand row)
    for &i in &by.demand[p.ix()] {
        let d = &inst.demand[i];
        let yearly = d.mean[..t_n].iter().sum::<f64>() * model.period.per_year() / t_n as f64;
        let far = lead_days_into(inst, by, d.station)
            .is_some_and(|days| f64::from(days) > target.max_supply_days);
        let stocked = yearly >= model.min_units_per_year
            || (yearly > 0.0 && far)
            || has_stock(d.station)
            || inst.locations[d.station.ix()].parent.is_none();
        let at = if stocked {
            d.station
        } else {
            inst.locations[d.station.ix()].parent.unwrap_or(d.station)
        };
        own.push((at, d.station, i));
        for a in inst.ancestry(at) {
            if !locs.contains(&a) {
                locs.push(a);
            }
        }
    }
    for &i in &by.stock[p.ix()] {
        for a in inst.ancestry(inst.stock[i].location) {
            if !locs.contains(&a) {
                locs.push(a);
            }
        }
    }
    if !locs.contains(&part.receive_at) {
        locs.push(part.receive_at);
    }
    let n = locs.len();
    let index = |loc: LocId| locs.iter().position(|l| *l == loc);
    let mut demand = vec![vec![0.0; t_n]; n];
    let mut var = vec![vec![0.0; t_n]; n];
    let mut served_for = vec![Vec::new(); n];
    for &(at, origin, i) in &own {
        let Some(l) = index(at) else { continue };
        let d = &inst.demand[i];
        for t in 0..t_n {
            demand[l][t] += d.mean[t];
            var[l][t] += d.error_sd[t] * d.error_sd[t];
        }
        if at != origin {
            served_for[l].push(origin);
        }
    }
    let mut on_hand = vec![0.0; n];
    let mut pipeline = vec![vec![0.0; t_n]; n];
    for &i in &by.stock[p.ix()] {
        let s = &inst.stock[i];
        let Some(l) = index(s.location) else { continue };
        on_hand[l] += s.on_hand;
        for (t, q) in s.pipeline.iter().take(t_n).enumerate() {
            pipeline[l][t] += q;
        }
    }
    let lanes = block_lanes(model, inst, by, &locs);
    let parent_lane = (0..n)
        .map(|l| {
            let parent = inst.locations[locs[l].ix()].parent;
            lanes
                .iter()
                .position(|x| x.to == l && Some(locs[x.from]) == parent)
        })
        .collect();
    let ss = targets(
        model,
        inst,
        by,
        &locs,
        part.receive_at,
        part.lead_time_days,
        &demand,
        &var,
        target.fill_rate,
    );
    let max_short = demand
        .iter()
        .map(|d| {
            let total: f64 = d.iter().sum();
            (model.active.hard_service && total > 0.0).then_some((1.0 - target.fill_rate) * total)
        })
        .collect();
    let unit_cost = part.unit_cost.as_major_f64();
    Block {
        part: p,
        tier,
        receive: index(part.receive_at).unwrap_or(0),
        lead: model.periods_for_days(part.lead_time_days),
        lanes,
        parent_lane,
        demand,
        ss,
        var,
        served_for,
        on_hand,
        pipeline,
        max_short,
        unit_cost,
        dealer: part.dealer_price.as_major_f64(),
        hold: unit_cost * model.holding_per_period(),
        short_pen: unit_cost * target.shortage_factor,
        gap_pen: unit_cost * model.gap_factor,
        end_value: unit_cost * model.end_stock_value,
        volume: part.volume_m3,
        pack: part.pack_size.max(1),
        moq: part.moq,
        locs,
    }
}

fn block_lanes(model: &PlanModel, inst: &Instance, by: &ByPart, locs: &[LocId]) -> Vec<BlockLane> {
    let mut lanes = Vec::new();
    for (from, &a) in locs.iter().enumerate() {
        for &i in &by.lanes_out[a.ix()] {
            let lane = &inst.lanes[i];
            let Some(to) = locs.iter().position(|l| *l == lane.to) else {
                continue;
            };
            let lateral = inst.locations[a.ix()].kind == LocationKind::Station
                && inst.locations[lane.to.ix()].kind == LocationKind::Station;
            if lateral && !model.active.lateral_lanes {
                continue;
            }
            lanes.push(BlockLane {
                lane: LaneId(i as u32),
                from,
                to,
                offset: model.periods_for_days(lane.lead_time_days),
                cost: lane.cost_per_unit.as_major_f64(),
            });
        }
    }
    lanes
}

/// Safety stock per [loc][t]: protection interval = inbound lead time + review period,
/// covering demand from period t + 1 (stock at the end of t protects what follows).
#[allow(clippy::too_many_arguments)]
fn targets(
    model: &PlanModel,
    inst: &Instance,
    by: &ByPart,
    locs: &[LocId],
    receive_at: LocId,
    supplier_days: u32,
    demand: &[Vec<f64>],
    var: &[Vec<f64>],
    fill_rate: f64,
) -> Vec<Vec<f64>> {
    let t_n = model.periods;
    locs.iter()
        .enumerate()
        .map(|(l, &loc)| {
            if !model.active.safety_stock || demand[l].iter().all(|d| *d <= 0.0) {
                return vec![0.0; t_n];
            }
            let days = if loc == receive_at {
                supplier_days
            } else {
                lead_days_into(inst, by, loc).unwrap_or(supplier_days)
            };
            let review = model.review_periods as f64;
            let interval = f64::from(days) / model.period.days() + review;
            let sd: Vec<f64> = var[l].iter().map(|v| v.sqrt()).collect();
            // Each period's stock level starts Newton from the last one's, moved by the
            // change in mean.
            let (mut level, mut last_mu) = (0.0, 0.0);
            (0..t_n)
                .map(|t| {
                    let (mu, v) = window(&demand[l], &sd, t + 1, interval);
                    let (mu_r, _) = window(&demand[l], &sd, t + 1, review);
                    level = stock_level(mu, v, mu_r, fill_rate, level + mu - last_mu);
                    last_mu = mu;
                    (level - mu).max(0.0)
                })
                .collect()
        })
        .collect()
}
