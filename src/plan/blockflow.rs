//! One part's block as a min-cost flow on its time-expanded network (DESIGN §6, "Scale"),
//! solved exactly by the network simplex instead of a general LP.
//!
//! Nodes: one per (location, period), one "outside" node O that supplies buys and
//! shortages and takes the stock left at the horizon's end, and, for locations under the
//! hard-service cap, a hub that all their shortage passes through. Arcs:
//! - buy t: O → (receive, t), cost c + price; from the lead time on;
//! - move k, t: (from, t) → (to, t + L_k), lane cost;
//! - stock l, t: (l, t) → (l, t + 1), or → O after the last period. The gap penalty
//!   g · max(0, ss − inv) makes stock's cost convex piecewise linear: a first arc capped at
//!   ss costs h + price − g, a parallel uncapped one h + price (plus the constant g · ss);
//!   the last period's arcs also carry the end-of-horizon credit −e;
//! - short l, t: O (or l's hub) → (l, t), capped at the demand, cost π; O → hub capped at
//!   the hard-service allowance.
//!
//! Supplies: opening stock and pipeline minus mean demand at each node, O balancing. The
//! LP of [`super::lp`] and this network have the same optimum (the tests compare them).

use super::lp::{Fail, Flows, Prices};
use super::netsimplex::{self, Basis, FlowError, Network};
use super::prepare::Block;

/// What a network arc stands for, to read flows back into the block's variables.
#[derive(Debug, Clone, Copy)]
enum Role {
    Buy(usize),
    Move(usize, usize),
    /// The capped first piece of stock (counts toward covering the safety stock).
    StockLow(usize, usize),
    StockHigh(usize, usize),
    Short(usize, usize),
    Hub,
}

/// A block's network, with arc roles; costs are refreshed per set of prices.
pub struct BlockNet {
    net: Network,
    roles: Vec<Role>,
}

impl BlockNet {
    pub fn new(block: &Block) -> BlockNet {
        let t_n = block.periods();
        let n = block.locs.len();
        let node = |l: usize, t: usize| l * t_n + t;
        let outside = n * t_n;
        let hubs: Vec<Option<usize>> = {
            let mut next = outside + 1;
            block
                .max_short
                .iter()
                .map(|m| {
                    m.map(|_| {
                        next += 1;
                        next - 1
                    })
                })
                .collect()
        };
        let nodes = outside + 1 + hubs.iter().flatten().count();
        let mut net = Network::with_nodes(nodes);
        let mut roles = Vec::new();
        let mut arc = |net: &mut Network, from, to, cap, role| {
            net.arc(from, to, cap, 0.0);
            roles.push(role);
        };
        for t in block.lead..t_n {
            arc(
                &mut net,
                outside,
                node(block.receive, t),
                f64::INFINITY,
                Role::Buy(t),
            );
        }
        for (k, lane) in block.lanes.iter().enumerate() {
            for t in 0..t_n.saturating_sub(lane.offset) {
                let (a, b) = (node(lane.from, t), node(lane.to, t + lane.offset));
                arc(&mut net, a, b, f64::INFINITY, Role::Move(k, t));
            }
        }
        for (l, hub) in hubs.iter().enumerate() {
            for t in 0..t_n {
                let next = if t + 1 < t_n { node(l, t + 1) } else { outside };
                let ss = block.ss[l][t];
                if ss > 0.0 {
                    arc(&mut net, node(l, t), next, ss, Role::StockLow(l, t));
                }
                arc(
                    &mut net,
                    node(l, t),
                    next,
                    f64::INFINITY,
                    Role::StockHigh(l, t),
                );
                let d = block.demand[l][t];
                if d > 0.0 {
                    let from = hub.unwrap_or(outside);
                    arc(&mut net, from, node(l, t), d, Role::Short(l, t));
                }
                let opening = if t == 0 { block.on_hand[l] } else { 0.0 };
                net.supply[node(l, t)] = opening + block.pipeline[l][t] - d;
            }
            if let (Some(h), Some(cap)) = (*hub, block.max_short[l]) {
                arc(&mut net, outside, h, cap, Role::Hub);
            }
        }
        net.supply[outside] = -net.supply[..outside].iter().sum::<f64>();
        BlockNet { net, roles }
    }

    /// Sets arc costs for `prices` (none = the plain block cost).
    pub fn price(&mut self, block: &Block, prices: Option<&Prices>) {
        let t_n = block.periods();
        for (cost, role) in self.net.cost.iter_mut().zip(&self.roles) {
            let stock = |l: usize, t: usize| {
                let extra = prices.map_or(0.0, |p| p.inv[l][t]);
                let end = if t + 1 == t_n { block.end_value } else { 0.0 };
                block.hold + extra - end
            };
            *cost = match *role {
                Role::Buy(t) => block.unit_cost + prices.map_or(0.0, |p| p.buy[t]),
                Role::Move(k, _) => block.lanes[k].cost,
                Role::StockLow(l, t) => stock(l, t) - block.gap_pen,
                Role::StockHigh(l, t) => stock(l, t),
                Role::Short(..) => block.short_pen,
                Role::Hub => 0.0,
            };
        }
    }

    /// The basis of the plan that buys and moves nothing: every demand short, all stock
    /// carried along its location's chain to the horizon's end. It is feasible at any
    /// prices, and the plan at the slack penalties (which uses the linking rows least) is
    /// a few pivots from it. The unpriced optimum is not: from here its solve is slower
    /// than from the artificial start (0.65 against 0.47 ms a part at 500 × 20,000), so
    /// that one starts cold. Locations under the hard-service cap, whose shortage is
    /// capped, start from their artificial arcs.
    pub fn shortage_start(&self, block: &Block) -> Basis {
        let t_n = block.periods();
        let capped = |l: usize| block.max_short[l].is_some();
        let carried: Vec<Vec<f64>> = (0..block.locs.len())
            .map(|l| {
                let mut stock = block.on_hand[l];
                (0..t_n)
                    .map(|t| {
                        stock += block.pipeline[l][t];
                        stock
                    })
                    .collect()
            })
            .collect();
        let (mut tree, mut upper) = (Vec::new(), Vec::new());
        for (a, role) in self.roles.iter().enumerate() {
            match *role {
                Role::Short(l, _) if !capped(l) => upper.push(a),
                Role::StockHigh(l, t) if !capped(l) && carried[l][t] > 0.0 => tree.push(a),
                _ => {}
            }
        }
        // The chains are disjoint paths into the outside node: never a cycle.
        Basis::from_forest(&self.net, &tree, &upper).unwrap_or_default()
    }

    /// Solves at the current costs from `warm` (if given) and reads the block's flows.
    pub fn solve(&self, block: &Block, warm: Option<&Basis>) -> Result<(Flows, Basis), Fail> {
        let o = netsimplex::solve(&self.net, warm).map_err(|e| match e {
            FlowError::Infeasible => Fail::Infeasible,
            other => Fail::Solver(format!("part block network: {other}")),
        })?;
        Ok((self.read(block, &o.flow), o.basis))
    }

    fn read(&self, block: &Block, flow: &[f64]) -> Flows {
        let t_n = block.periods();
        let n = block.locs.len();
        let grid = || vec![vec![0.0; t_n]; n];
        let mut f = Flows {
            buy: vec![0.0; t_n],
            moves: block.lanes.iter().map(|_| vec![0.0; t_n]).collect(),
            inv: grid(),
            short: grid(),
            gap: block.ss.clone(),
        };
        for (&x, role) in flow.iter().zip(&self.roles) {
            let x = x.max(0.0);
            match *role {
                Role::Buy(t) => f.buy[t] = x,
                Role::Move(k, t) => f.moves[k][t] = x,
                Role::StockLow(l, t) => {
                    f.inv[l][t] += x;
                    f.gap[l][t] = (block.ss[l][t] - x).max(0.0);
                }
                Role::StockHigh(l, t) => f.inv[l][t] += x,
                Role::Short(l, t) => f.short[l][t] = x,
                Role::Hub => {}
            }
        }
        f
    }
}

/// Solves one block at `prices` as a network: its flows and a basis to start from next time.
pub fn solve_block(
    block: &Block,
    prices: Option<&Prices>,
    warm: Option<&Basis>,
) -> Result<(Flows, Basis), Fail> {
    let mut net = BlockNet::new(block);
    net.price(block, prices);
    net.solve(block, warm)
}
