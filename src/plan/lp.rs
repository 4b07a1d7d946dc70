//! The time-phased LP of DESIGN §6, written block by block: one part's variables and rows
//! never refer to another part, and the few linking rows (budget, capacity, credit) are
//! built from each block's terms. The monolith and the decomposition share this code.

use std::time::Instant;

use good_lp::solvers::highs::highs;
use good_lp::{
    variable, Constraint, DualValues, Expression, ProblemVariables, ResolutionError, Solution,
    SolutionStatus, SolutionWithDual, SolverModel, Variable,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::network::LocationKind;

use super::instance::{Instance, LocId};
use super::model::{BudgetScope, PlanModel};
use super::prepare::Block;

/// A switchable family of constraints; infeasibility reports name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Budget,
    Capacity,
    Credit,
    HardService,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Budget => "budget",
            Family::Capacity => "capacity",
            Family::Credit => "credit",
            Family::HardService => "hard_service",
        }
    }
}

/// One linking row: Σ_p coefficient · variable ≤ rhs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkRow {
    pub family: Family,
    pub location: Option<LocId>,
    /// `None` for a horizon budget.
    pub period: Option<usize>,
    /// Major units (budget, credit) or m³ (capacity).
    pub rhs: f64,
}

/// The linking rows of a model and instance, with O(1) lookup per (family, loc, t).
#[derive(Debug, Clone, Default)]
pub struct LinkRows {
    pub rows: Vec<LinkRow>,
    budget: Vec<usize>,
    capacity: Vec<Option<usize>>,
    credit: Vec<Option<usize>>,
    periods: usize,
}

impl LinkRows {
    /// `off` families are left out (used to find which family makes a model infeasible).
    pub fn new(model: &PlanModel, inst: &Instance, off: &[Family]) -> Self {
        let t_n = model.periods;
        let mut rows = Vec::new();
        let mut budget = Vec::new();
        if let (Some(b), false) = (model.budget, off.contains(&Family::Budget)) {
            let per_row = match b.scope {
                BudgetScope::Period => (0..t_n).map(Some).collect::<Vec<_>>(),
                BudgetScope::Horizon => vec![None],
            };
            for period in per_row {
                budget.push(rows.len());
                rows.push(LinkRow {
                    family: Family::Budget,
                    location: None,
                    period,
                    rhs: b.amount.as_major_f64(),
                });
            }
        }
        let mut per_loc = |family: Family, on: bool, rhs: &dyn Fn(usize) -> Option<f64>| {
            (0..inst.locations.len())
                .map(|l| {
                    let value = rhs(l).filter(|_| on && !off.contains(&family))?;
                    let base = rows.len();
                    for t in 0..t_n {
                        rows.push(LinkRow {
                            family,
                            location: Some(LocId(l as u32)),
                            period: Some(t),
                            rhs: value,
                        });
                    }
                    Some(base)
                })
                .collect::<Vec<_>>()
        };
        let capacity = per_loc(Family::Capacity, model.active.capacity, &|l| {
            inst.locations[l].capacity_m3
        });
        let credit = per_loc(Family::Credit, model.active.credit, &|l| {
            let loc = &inst.locations[l];
            (loc.kind == LocationKind::Station)
                .then_some(loc.credit_headroom)
                .flatten()
                .map(|a| a.as_major_f64())
        });
        LinkRows {
            rows,
            budget,
            capacity,
            credit,
            periods: t_n,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn budget_row(&self, t: usize) -> Option<usize> {
        match self.budget.len() {
            0 => None,
            1 => Some(self.budget[0]),
            _ => self.budget.get(t).copied(),
        }
    }

    /// The block's terms in the linking rows: (row, coefficient, which quantity).
    pub fn terms(&self, block: &Block) -> Vec<(usize, f64, Term)> {
        let mut out = self.buy_terms(block);
        for l in 0..block.locs.len() {
            out.extend(self.stock_terms(block, l));
        }
        out
    }

    /// The block's purchases in the budget rows.
    pub fn buy_terms(&self, block: &Block) -> Vec<(usize, f64, Term)> {
        (block.lead..self.periods)
            .filter_map(|t| {
                self.budget_row(t)
                    .map(|r| (r, block.unit_cost, Term::Buy(t)))
            })
            .collect()
    }

    /// The stock of the block's local `l` in its location's capacity rows, then its credit
    /// rows, each period in order.
    pub fn stock_terms(&self, block: &Block, l: usize) -> Vec<(usize, f64, Term)> {
        let loc = block.locs[l].ix();
        let rows = [
            self.capacity[loc].map(|base| (base, block.volume)),
            self.credit[loc].map(|base| (base, block.dealer)),
        ];
        rows.into_iter()
            .flatten()
            .flat_map(|(base, c)| (0..self.periods).map(move |t| (base + t, c, Term::Inv(l, t))))
            .collect()
    }

    /// What all blocks together use of each row under their flows. Summed in parallel over
    /// fixed chunks of blocks, then in chunk order, so the sums do not depend on scheduling.
    pub fn total_usage(&self, blocks: &[Block], flows: &[Flows]) -> Vec<f64> {
        const CHUNK: usize = 256;
        let partial: Vec<Vec<f64>> = blocks
            .par_chunks(CHUNK)
            .zip(flows.par_chunks(CHUNK))
            .map(|(bs, fs)| {
                let mut used = vec![0.0; self.len()];
                for (b, f) in bs.iter().zip(fs) {
                    for (r, u) in self.usage(b, f) {
                        used[r] += u;
                    }
                }
                used
            })
            .collect();
        let mut total = vec![0.0; self.len()];
        for used in partial {
            total.iter_mut().zip(used).for_each(|(t, u)| *t += u);
        }
        total
    }

    /// The block's use of each linking row under `flows` (sparse).
    pub fn usage(&self, block: &Block, flows: &Flows) -> Vec<(usize, f64)> {
        self.terms(block)
            .into_iter()
            .map(|(r, c, term)| (r, c * flows.get(term)))
            .collect()
    }
}

/// A quantity of one block that can appear in a linking row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    Buy(usize),
    Inv(usize, usize),
}

/// One part's plan, indexed like its block: [t], [lane][t], [loc][t].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Flows {
    pub buy: Vec<f64>,
    pub moves: Vec<Vec<f64>>,
    pub inv: Vec<Vec<f64>>,
    pub short: Vec<Vec<f64>>,
    pub gap: Vec<Vec<f64>>,
}

impl Flows {
    pub fn get(&self, term: Term) -> f64 {
        match term {
            Term::Buy(t) => self.buy[t],
            Term::Inv(l, t) => self.inv[l][t],
        }
    }

    /// `Σ w_k · flows_k` (a Dantzig–Wolfe convex combination).
    pub fn combine(parts: &[(f64, &Flows)]) -> Flows {
        let Some((_, first)) = parts.first() else {
            return Flows::default();
        };
        let scale = |v: &[f64]| vec![0.0; v.len()];
        let mut out = Flows {
            buy: scale(&first.buy),
            moves: first.moves.iter().map(|m| scale(m)).collect(),
            inv: first.inv.iter().map(|m| scale(m)).collect(),
            short: first.short.iter().map(|m| scale(m)).collect(),
            gap: first.gap.iter().map(|m| scale(m)).collect(),
        };
        for (w, f) in parts {
            let add = |o: &mut [f64], s: &[f64]| o.iter_mut().zip(s).for_each(|(o, s)| *o += w * s);
            add(&mut out.buy, &f.buy);
            for (o, s) in [
                (&mut out.moves, &f.moves),
                (&mut out.inv, &f.inv),
                (&mut out.short, &f.short),
                (&mut out.gap, &f.gap),
            ] {
                o.iter_mut().zip(s).for_each(|(o, s)| add(o, s));
            }
        }
        out
    }
}

/// How a block's order quantities are modelled.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    Lp,
    /// Buys in pack multiples with MOQ binaries; moves integral.
    Integer,
    /// Buys and moves fixed to these values (LP at fixed integers, for duals).
    Fixed(&'a Flows),
}

/// A block's variables in one problem.
pub struct BlockVars {
    buy: Vec<Option<Variable>>,
    integer_rows: Vec<Constraint>,
    moves: Vec<Vec<Option<Variable>>>,
    inv: Vec<Vec<Variable>>,
    short: Vec<Vec<Option<Variable>>>,
    gap: Vec<Vec<Option<Variable>>>,
}

impl BlockVars {
    pub fn var(&self, term: Term) -> Option<Variable> {
        match term {
            Term::Buy(t) => self.buy[t],
            Term::Inv(l, t) => Some(self.inv[l][t]),
        }
    }
}

/// An upper bound on any sensible quantity of the block (for MOQ big-M and move bounds).
fn big_m(block: &Block) -> f64 {
    let demand: f64 = block.demand.iter().flatten().sum();
    let ss: f64 = block
        .ss
        .iter()
        .map(|s| s.iter().cloned().fold(0.0, f64::max))
        .sum();
    let stock: f64 =
        block.on_hand.iter().sum::<f64>() + block.pipeline.iter().flatten().sum::<f64>();
    demand + ss + stock + f64::from(block.moq) + f64::from(block.pack) + 1.0
}

pub fn add_vars(vars: &mut ProblemVariables, block: &Block, mode: Mode) -> BlockVars {
    let t_n = block.periods();
    let n = block.locs.len();
    let fixed = |v: f64| variable().min(v).max(v);
    let mut integer_rows = Vec::new();
    let buy = (0..t_n)
        .map(|t| {
            (t >= block.lead).then(|| match mode {
                Mode::Lp => vars.add(variable().min(0.0)),
                Mode::Fixed(f) => vars.add(fixed(f.buy[t])),
                Mode::Integer => {
                    let m = big_m(block);
                    let pack = f64::from(block.pack);
                    let buy = vars.add(variable().min(0.0));
                    let packs = vars.add(variable().integer().min(0.0).max((m / pack).ceil()));
                    integer_rows.push(good_lp::constraint::eq(buy, pack * packs));
                    if block.moq > 1 {
                        let open = vars.add(variable().binary());
                        let moq = f64::from(block.moq);
                        integer_rows.push(good_lp::constraint::geq(buy, moq * open));
                        integer_rows
                            .push(good_lp::constraint::leq(buy, (m.max(moq) + pack) * open));
                    }
                    buy
                }
            })
        })
        .collect();
    let moves = block
        .lanes
        .iter()
        .enumerate()
        .map(|(k, lane)| {
            (0..t_n)
                .map(|t| {
                    (t + lane.offset < t_n).then(|| match mode {
                        Mode::Lp => vars.add(variable().min(0.0)),
                        Mode::Integer => vars.add(variable().integer().min(0.0).max(big_m(block))),
                        Mode::Fixed(f) => vars.add(fixed(f.moves[k][t])),
                    })
                })
                .collect()
        })
        .collect();
    let inv = (0..n)
        .map(|_| (0..t_n).map(|_| vars.add(variable().min(0.0))).collect())
        .collect();
    let bounded = |vars: &mut ProblemVariables, m: &[Vec<f64>]| -> Vec<Vec<Option<Variable>>> {
        m.iter()
            .map(|row| {
                row.iter()
                    .map(|&ub| (ub > 0.0).then(|| vars.add(variable().min(0.0).max(ub))))
                    .collect()
            })
            .collect()
    };
    let short = bounded(vars, &block.demand);
    let gap = bounded(vars, &block.ss);
    BlockVars {
        buy,
        integer_rows,
        moves,
        inv,
        short,
        gap,
    }
}

/// Extra cost per unit of the block's linking terms (Lagrangian prices); zero = plain LP.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    pub buy: Vec<f64>,
    pub inv: Vec<Vec<f64>>,
}

impl Prices {
    /// Prices of the block's terms from row duals `pi` (cost per unit of row use, ≥ 0).
    pub fn for_block(rows: &LinkRows, block: &Block, pi: &[f64]) -> Prices {
        let t_n = block.periods();
        let mut p = Prices {
            buy: vec![0.0; t_n],
            inv: vec![vec![0.0; t_n]; block.locs.len()],
        };
        for (r, c, term) in rows.terms(block) {
            match term {
                Term::Buy(t) => p.buy[t] += pi[r] * c,
                Term::Inv(l, t) => p.inv[l][t] += pi[r] * c,
            }
        }
        p
    }

    /// What `flows` pays at these prices (the priced part of a block's objective).
    pub fn cost_of(&self, flows: &Flows) -> f64 {
        let buy: f64 = self.buy.iter().zip(&flows.buy).map(|(p, q)| p * q).sum();
        let inv: f64 = self
            .inv
            .iter()
            .zip(&flows.inv)
            .flat_map(|(p, q)| p.iter().zip(q))
            .map(|(p, q)| p * q)
            .sum();
        buy + inv
    }
}

/// Objective of one block, major units.
pub fn objective(block: &Block, bv: &BlockVars, prices: Option<&Prices>) -> Expression {
    let t_n = block.periods();
    let mut e = Expression::with_capacity(block.columns());
    for (t, b) in bv.buy.iter().enumerate() {
        if let Some(v) = b {
            let extra = prices.map_or(0.0, |p| p.buy[t]);
            e.add_mul(block.unit_cost + extra, *v);
        }
    }
    for (k, lane) in block.lanes.iter().enumerate() {
        for v in bv.moves[k].iter().flatten() {
            e.add_mul(lane.cost, *v);
        }
    }
    for l in 0..block.locs.len() {
        for t in 0..t_n {
            let extra = prices.map_or(0.0, |p| p.inv[l][t]);
            let end = if t + 1 == t_n { block.end_value } else { 0.0 };
            e.add_mul(block.hold + extra - end, bv.inv[l][t]);
            if let Some(v) = bv.short[l][t] {
                e.add_mul(block.short_pen, v);
            }
            if let Some(v) = bv.gap[l][t] {
                e.add_mul(block.gap_pen, v);
            }
        }
    }
    e
}

/// Balance, soft safety stock, hard service and the integer links of one block.
pub fn rows(block: &Block, bv: &mut BlockVars) -> Vec<Constraint> {
    let t_n = block.periods();
    let mut out = std::mem::take(&mut bv.integer_rows);
    for l in 0..block.locs.len() {
        for t in 0..t_n {
            // inv[t] − inv[t−1] − arrivals + moves out − short = on_hand·[t=0] + pipeline − d
            let mut e = Expression::with_capacity(8);
            e.add_mul(1.0, bv.inv[l][t]);
            if t > 0 {
                e.add_mul(-1.0, bv.inv[l][t - 1]);
            }
            if l == block.receive {
                if let Some(b) = bv.buy[t] {
                    e.add_mul(-1.0, b);
                }
            }
            for (k, lane) in block.lanes.iter().enumerate() {
                if lane.to == l && t >= lane.offset {
                    if let Some(m) = bv.moves[k][t - lane.offset] {
                        e.add_mul(-1.0, m);
                    }
                }
                if lane.from == l {
                    if let Some(m) = bv.moves[k][t] {
                        e.add_mul(1.0, m);
                    }
                }
            }
            if let Some(s) = bv.short[l][t] {
                e.add_mul(-1.0, s);
            }
            let opening = if t == 0 { block.on_hand[l] } else { 0.0 };
            out.push(e.eq(opening + block.pipeline[l][t] - block.demand[l][t]));
            if let Some(g) = bv.gap[l][t] {
                out.push((bv.inv[l][t] + g).geq(block.ss[l][t]));
            }
        }
        if let Some(cap) = block.max_short[l] {
            let total: Expression = bv.short[l]
                .iter()
                .flatten()
                .map(|v| Expression::from(*v))
                .sum();
            out.push(total.leq(cap));
        }
    }
    out
}

pub fn read(block: &Block, bv: &BlockVars, sol: &impl Solution) -> Flows {
    let val = |v: &Option<Variable>| v.map_or(0.0, |v| sol.value(v).max(0.0));
    let grid = |m: &[Vec<Option<Variable>>]| -> Vec<Vec<f64>> {
        m.iter().map(|r| r.iter().map(val).collect()).collect()
    };
    let _ = block;
    Flows {
        buy: bv.buy.iter().map(val).collect(),
        moves: grid(&bv.moves),
        inv: bv
            .inv
            .iter()
            .map(|r| r.iter().map(|v| sol.value(*v).max(0.0)).collect())
            .collect(),
        short: grid(&bv.short),
        gap: grid(&bv.gap),
    }
}

/// How a solve ended when it produced a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    Optimal,
    /// Stopped at the time limit with the best solution found.
    TimeLimit,
    /// Stopped at the decomposition's round limit with the best solution found.
    RoundLimit,
}

/// Why a solve produced no plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail {
    Infeasible,
    TimeLimitNoSolution,
    Solver(String),
}

/// A monolith solve: flows per block, duals per linking row, timings.
#[derive(Debug, Clone)]
pub struct Solved {
    pub flows: Vec<Flows>,
    /// Value of one more unit of each linking row's right-hand side (≥ 0).
    pub shadow: Vec<f64>,
    pub finish: Finish,
    pub build_ms: f64,
    pub solve_ms: f64,
}

/// Solves all blocks and the linking rows as one HiGHS problem.
pub fn monolith(
    model: &PlanModel,
    blocks: &[Block],
    links: &LinkRows,
    mode: &[Mode],
) -> Result<Solved, Fail> {
    let started = Instant::now();
    let mut vars = ProblemVariables::new();
    let mut bvs: Vec<BlockVars> = blocks
        .iter()
        .zip(mode)
        .map(|(b, m)| add_vars(&mut vars, b, *m))
        .collect();
    let mut obj = Expression::with_capacity(vars.len());
    for (b, bv) in blocks.iter().zip(&bvs) {
        obj += objective(b, bv, None);
    }
    let integer = mode.iter().any(|m| matches!(m, Mode::Integer));
    let mut problem = vars
        .minimise(obj)
        .using(highs)
        .set_time_limit(model.solver.time_limit_s);
    if integer {
        problem = problem.set_option("mip_rel_gap", model.solver.mip_gap);
    }
    let mut link_exprs: Vec<Expression> = vec![Expression::with_capacity(0); links.len()];
    for (b, bv) in blocks.iter().zip(bvs.iter_mut()) {
        for c in rows(b, bv) {
            problem.add_constraint(c);
        }
        for (r, coef, term) in links.terms(b) {
            if let Some(v) = bv.var(term) {
                link_exprs[r].add_mul(coef, v);
            }
        }
    }
    let refs: Vec<_> = link_exprs
        .into_iter()
        .zip(&links.rows)
        .map(|(e, row)| problem.add_constraint(e.leq(row.rhs)))
        .collect();
    let build_ms = ms(started);
    let solving = Instant::now();
    let mut solution = problem.solve().map_err(|e| match e {
        ResolutionError::Infeasible => Fail::Infeasible,
        ResolutionError::Other("NoSolutionFound") => Fail::TimeLimitNoSolution,
        other => Fail::Solver(other.to_string()),
    })?;
    let solve_ms = ms(solving);
    let finish = finish_of(solution.status());
    let flows: Vec<Flows> = blocks
        .iter()
        .zip(&bvs)
        .map(|(b, bv)| read(b, bv, &solution))
        .collect();
    // HiGHS gives row duals of a minimisation; a ≤ row's dual is ≤ 0 and one more unit of
    // right-hand side lowers the cost by −dual. MIP solutions carry no duals.
    let shadow = if integer {
        vec![0.0; refs.len()]
    } else {
        let duals = solution.compute_dual();
        refs.iter()
            .map(|r| (-duals.dual(r.clone())).max(0.0))
            .collect()
    };
    Ok(Solved {
        flows,
        shadow,
        finish,
        build_ms,
        solve_ms,
    })
}

fn finish_of(status: SolutionStatus) -> Finish {
    match status {
        SolutionStatus::TimeLimit => Finish::TimeLimit,
        SolutionStatus::Optimal | SolutionStatus::GapLimit => Finish::Optimal,
    }
}

pub fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Solves one block alone with `prices` on its linking terms. Returns the flows and the
/// priced objective (true cost + prices · linking use).
pub fn solve_block(
    model: &PlanModel,
    block: &Block,
    prices: Option<&Prices>,
    mode: Mode,
) -> Result<(Flows, f64), Fail> {
    solve_block_timed(model, block, prices, mode).map(|(f, v, _)| (f, v))
}

/// Time one block solve spent writing the HiGHS model and inside HiGHS, milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockTiming {
    pub build_ms: f64,
    pub solve_ms: f64,
}

/// [`solve_block`] with the time split between writing the model and HiGHS.
pub fn solve_block_timed(
    model: &PlanModel,
    block: &Block,
    prices: Option<&Prices>,
    mode: Mode,
) -> Result<(Flows, f64, BlockTiming), Fail> {
    let started = Instant::now();
    let mut vars = ProblemVariables::new();
    let mut bv = add_vars(&mut vars, block, mode);
    let obj = objective(block, &bv, prices);
    let mut problem = vars
        .minimise(obj.clone())
        .using(highs)
        .set_time_limit(model.solver.time_limit_s);
    if matches!(mode, Mode::Integer) {
        problem = problem.set_option("mip_rel_gap", model.solver.mip_gap);
    }
    for c in rows(block, &mut bv) {
        problem.add_constraint(c);
    }
    let build_ms = ms(started);
    let solving = Instant::now();
    let solution = problem.solve().map_err(|e| match e {
        ResolutionError::Infeasible => Fail::Infeasible,
        ResolutionError::Other("NoSolutionFound") => Fail::TimeLimitNoSolution,
        other => Fail::Solver(other.to_string()),
    })?;
    let solve_ms = ms(solving);
    let value = solution.eval(&obj);
    Ok((
        read(block, &bv, &solution),
        value,
        BlockTiming { build_ms, solve_ms },
    ))
}

/// The objective of a block's plan split by term, major units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Costs {
    pub purchase: f64,
    pub holding: f64,
    pub lanes: f64,
    pub shortage: f64,
    pub gap: f64,
    /// Credit for stock left at the end of the horizon (subtracted).
    pub end_stock_credit: f64,
}

impl Costs {
    pub fn total(&self) -> f64 {
        self.purchase + self.holding + self.lanes + self.shortage + self.gap - self.end_stock_credit
    }

    pub fn add(&mut self, o: &Costs) {
        self.purchase += o.purchase;
        self.holding += o.holding;
        self.lanes += o.lanes;
        self.shortage += o.shortage;
        self.gap += o.gap;
        self.end_stock_credit += o.end_stock_credit;
    }
}

pub fn costs(block: &Block, f: &Flows) -> Costs {
    let t_n = block.periods();
    let sum2 = |m: &[Vec<f64>]| m.iter().flatten().sum::<f64>();
    let lanes = block
        .lanes
        .iter()
        .zip(&f.moves)
        .map(|(l, m)| l.cost * m.iter().sum::<f64>())
        .sum();
    let end: f64 = f
        .inv
        .iter()
        .map(|r| r.get(t_n.wrapping_sub(1)).copied().unwrap_or(0.0))
        .sum();
    Costs {
        purchase: block.unit_cost * f.buy.iter().sum::<f64>(),
        holding: block.hold * sum2(&f.inv),
        lanes,
        shortage: block.short_pen * sum2(&f.short),
        gap: block.gap_pen * sum2(&f.gap),
        end_stock_credit: block.end_value * end,
    }
}
