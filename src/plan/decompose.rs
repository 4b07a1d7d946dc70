//! Dantzig–Wolfe decomposition over parts (DESIGN §6, "Scale").
//!
//! The LP is block-diagonal by part; only the budget, capacity and credit rows link parts.
//! The master holds the linking rows, one convexity row per part, and as columns whole
//! per-part plans; each round prices every part touching a row with a positive dual at the
//! master's duals (blocks solved in parallel with rayon), adds the improving plans, and
//! stops when the Lagrangian bound certifies the relative gap `solver.dw_gap`.
//! Every linking row has an elastic slack with a large penalty, so the master is always
//! feasible; a slack left positive at the end names the infeasible family.
//!
//! Work per round is linear in parts (no part × part structure anywhere): the master has
//! one row per part and one column per kept plan, and only parts with a priced term are
//! re-solved. Parts untouched by any priced row keep their first plan: their subproblem
//! cannot change.
//!
//! Each part's block is a min-cost flow ([`super::blockflow`]), priced by the network
//! simplex from the basis of its previous round (only arc costs change between rounds, so
//! that basis stays feasible and a few pivots re-optimise it). The master lives in one
//! HiGHS instance for the whole run: new plans are added as columns and HiGHS re-solves
//! from its last basis instead of rebuilding the LP every round. A plan left out of the
//! master's solution for [`RETIRE_AFTER`] rounds in a row is retired (fixed at zero, its
//! flows dropped) so memory stays bounded by the plans in use.

use std::time::Instant;

use highs::{Col, ColProblem, HighsModelStatus, Model, Row, Sense};
use rayon::prelude::*;

use super::blockflow;
use super::lp::{self, Fail, Family, Finish, Flows, LinkRows, Prices};
use super::model::PlanModel;
use super::netsimplex::Basis;
use super::prepare::Block;

/// Weight of the stability centre in the pricing duals.
const SMOOTHING: f64 = 0.7;

/// Rounds a plan may stay out of the master's solution before it is retired.
const RETIRE_AFTER: usize = 5;

/// A per-part plan offered to the master.
struct Column {
    cost: f64,
    usage: Vec<(usize, f64)>,
    /// `None` once retired.
    flows: Option<Flows>,
    /// Index of the plan's column in the master.
    col: usize,
    idle: usize,
}

/// Where the decomposition's time went, milliseconds: wall time of the master solves and
/// of the pricing rounds, and summed over all part solves (CPU time, across threads) the
/// time spent building each part's network and inside the network simplex.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Profile {
    pub master_ms: f64,
    pub pricing_wall_ms: f64,
    pub part_build_cpu_ms: f64,
    pub part_solve_cpu_ms: f64,
    pub part_solves: usize,
    /// Plans added to the master over the run, and retired again.
    pub columns: usize,
    pub retired: usize,
}

impl Profile {
    fn add(&mut self, t: lp::BlockTiming) {
        self.part_build_cpu_ms += t.build_ms;
        self.part_solve_cpu_ms += t.solve_ms;
        self.part_solves += 1;
    }
}

/// Result of a decomposition solve.
pub struct Decomposed {
    pub flows: Vec<Flows>,
    pub shadow: Vec<f64>,
    pub finish: Finish,
    /// Relative gap between the master's value and the Lagrangian bound.
    pub gap: f64,
    pub lower_bound: f64,
    pub iterations: usize,
    pub build_ms: f64,
    pub solve_ms: f64,
    pub profile: Profile,
}

/// Why the decomposition found no plan.
pub enum DwFail {
    Infeasible(Vec<Family>),
    Other(Fail),
}

/// A priced part: its plan, the priced value, the basis to start from next time.
struct Priced {
    column: Column,
    value: f64,
    basis: Basis,
    timing: lp::BlockTiming,
}

pub fn solve(model: &PlanModel, blocks: &[Block], links: &LinkRows) -> Result<Decomposed, DwFail> {
    let started = Instant::now();
    let mut profile = Profile::default();
    let first: Vec<Priced> = blocks
        .par_iter()
        .map(|b| price(links, b, None, None))
        .collect::<Result<_, _>>()
        .map_err(DwFail::Other)?;
    profile.pricing_wall_ms += lp::ms(started);
    let penalty = slack_penalty(blocks, links);
    let mut master = Master::new(blocks.len(), links, &penalty);
    let base_value: Vec<f64> = first.iter().map(|p| p.value).collect();
    let mut bases: Vec<Basis> = Vec::with_capacity(blocks.len());
    let mut columns: Vec<Vec<Column>> = Vec::with_capacity(blocks.len());
    for (p, priced) in first.into_iter().enumerate() {
        profile.add(priced.timing);
        let mut col = priced.column;
        col.col = master.add(p, col.cost, &col.usage);
        columns.push(vec![col]);
        bases.push(priced.basis);
    }
    profile.columns = blocks.len();
    let touching = touching_rows(blocks, links);
    let mut out = None;
    let mut iterations = 0;
    let mut finish = Finish::Optimal;
    // Wentges smoothing: price at a mix of the best-bound duals (the stability centre) and
    // the master's duals; plain column generation oscillates and tails off badly with
    // hundreds of linking rows. A round whose smoothed prices find no column improving the
    // master (mis-pricing) retries at the master's own duals.
    // The first centre is zero prices, whose Lagrangian bound is the sum of the unpriced
    // plans' values; starting from the first master's duals instead would centre on the
    // slack penalties that an infeasible first master prices its rows at.
    let mut best_bound: f64 = base_value.iter().sum();
    let mut centre: Vec<f64> = vec![0.0; links.len()];
    let mut alpha = SMOOTHING;
    while iterations < model.solver.dw_max_iterations {
        iterations += 1;
        let master_started = Instant::now();
        let duals = master.solve().map_err(DwFail::Other)?;
        profile.master_ms += lp::ms(master_started);
        profile.retired += retire_idle(&mut columns, &mut master, &duals.lambda);
        let sep: Vec<f64> = centre
            .iter()
            .zip(&duals.pi)
            .map(|(c, m)| alpha * c + (1.0 - alpha) * m)
            .collect();
        let priced: Vec<usize> = (0..blocks.len())
            .filter(|&p| touching[p].iter().any(|&r| sep[r] > 1e-12))
            .collect();
        let pricing_started = Instant::now();
        let new: Vec<(usize, Priced)> = priced
            .par_iter()
            .map(|&p| {
                let prices = Prices::for_block(links, &blocks[p], &sep);
                price(links, &blocks[p], Some(&prices), Some(&bases[p])).map(|c| (p, c))
            })
            .collect::<Result<_, _>>()
            .map_err(DwFail::Other)?;
        profile.pricing_wall_ms += lp::ms(pricing_started);
        // Lagrangian bound at the pricing duals: Σ_p min_x (c + π·a)(x) − π·b; unpriced
        // parts keep their base value (their prices are zero).
        let mut bound: f64 = base_value.iter().sum();
        let mut added = 0;
        for (p, priced) in new {
            profile.add(priced.timing);
            bound += priced.value - base_value[p];
            bases[p] = priced.basis;
            let mut col = priced.column;
            // Reduced cost at the master's duals (the column was priced at `sep`).
            let rc = col.cost + col.usage.iter().map(|&(r, u)| duals.pi[r] * u).sum::<f64>()
                - duals.sigma[p];
            if rc < -1e-7 * (1.0 + col.cost.abs()) {
                col.col = master.add(p, col.cost, &col.usage);
                columns[p].push(col);
                added += 1;
            }
        }
        profile.columns += added;
        bound -= links
            .rows
            .iter()
            .zip(&sep)
            .map(|(r, pi)| r.rhs * pi)
            .sum::<f64>();
        if bound > best_bound {
            best_bound = bound;
            centre = sep;
        }
        let gap = (duals.value - best_bound).max(0.0) / duals.value.abs().max(1.0);
        tracing::debug!(
            round = iterations,
            master = duals.value,
            bound = best_bound,
            gap,
            priced = priced.len(),
            added,
            binding = duals.pi.iter().filter(|p| **p > 1e-9).count(),
            elapsed_s = started.elapsed().as_secs_f64(),
            "decomposition round"
        );
        let timed_out = started.elapsed().as_secs_f64() > model.solver.time_limit_s;
        let mispriced = added == 0 && alpha > 0.0 && gap > model.solver.dw_gap;
        let done = gap <= model.solver.dw_gap || (added == 0 && !mispriced);
        // The master's solution before this round's columns: its λ are the plan's weights.
        out = Some((duals, gap, best_bound));
        if done || timed_out {
            if timed_out && !done {
                finish = Finish::TimeLimit;
            }
            break;
        }
        alpha = if mispriced { 0.0 } else { SMOOTHING };
    }
    let Some((duals, gap, bound)) = out else {
        return Err(DwFail::Other(Fail::Solver(
            "no decomposition round ran".into(),
        )));
    };
    let infeasible = infeasible_families(links, &duals.slack);
    if !infeasible.is_empty() && finish == Finish::TimeLimit {
        // Slack still in use when time ran out says only that no feasible mix was found yet.
        return Err(DwFail::Other(Fail::TimeLimitNoSolution));
    }
    if !infeasible.is_empty() {
        return Err(DwFail::Infeasible(infeasible));
    }
    let flows = columns
        .iter()
        .map(|cols| {
            let mix: Vec<(f64, &Flows)> = cols
                .iter()
                .filter_map(|c| {
                    // Plans added after the last master solve have no weight yet.
                    let w = duals.lambda.get(c.col).copied().unwrap_or(0.0);
                    c.flows.as_ref().filter(|_| w > 1e-9).map(|f| (w, f))
                })
                .collect();
            Flows::combine(&mix)
        })
        .collect();
    Ok(Decomposed {
        flows,
        shadow: duals.pi,
        finish,
        gap,
        lower_bound: bound,
        iterations,
        // Each part's network is written inside every pricing round: see `profile`.
        build_ms: 0.0,
        solve_ms: lp::ms(started),
        profile,
    })
}

/// Retires plans out of the master's solution for [`RETIRE_AFTER`] rounds (never a part's
/// only live plan): fixed at zero in the master, flows dropped. Returns how many.
fn retire_idle(columns: &mut [Vec<Column>], master: &mut Master, lambda: &[f64]) -> usize {
    let mut retired = 0;
    for cols in columns.iter_mut() {
        let live = cols.iter().filter(|c| c.flows.is_some()).count();
        let mut keep = live;
        for c in cols.iter_mut().filter(|c| c.flows.is_some()) {
            if lambda.get(c.col).is_none_or(|w| *w > 1e-9) {
                c.idle = 0;
                continue;
            }
            c.idle += 1;
            if c.idle >= RETIRE_AFTER && keep > 1 {
                master.retire(c.col);
                c.flows = None;
                c.usage = Vec::new();
                keep -= 1;
                retired += 1;
            }
        }
    }
    retired
}

/// Solves one part at `prices` as a network, from `warm` when given.
fn price(
    links: &LinkRows,
    block: &Block,
    prices: Option<&Prices>,
    warm: Option<&Basis>,
) -> Result<Priced, Fail> {
    let started = Instant::now();
    let mut net = blockflow::BlockNet::new(block);
    net.price(block, prices);
    let build_ms = lp::ms(started);
    let solving = Instant::now();
    let (flows, basis) = net.solve(block, warm)?;
    let solve_ms = lp::ms(solving);
    let cost = lp::costs(block, &flows).total();
    let usage: Vec<(usize, f64)> = links
        .usage(block, &flows)
        .into_iter()
        .filter(|(_, u)| u.abs() > 1e-12)
        .collect();
    let value = cost + prices.map_or(0.0, |p| p.cost_of(&flows));
    Ok(Priced {
        column: Column {
            cost,
            usage,
            flows: Some(flows),
            col: 0,
            idle: 0,
        },
        value,
        basis,
        timing: lp::BlockTiming { build_ms, solve_ms },
    })
}

fn touching_rows(blocks: &[Block], links: &LinkRows) -> Vec<Vec<usize>> {
    blocks
        .iter()
        .map(|b| {
            let mut rows: Vec<usize> = links.terms(b).into_iter().map(|(r, _, _)| r).collect();
            rows.sort_unstable();
            rows.dedup();
            rows
        })
        .collect()
}

/// Penalty per unit of linking-row violation: ten times the most one unit of the row could
/// save any part (its shortage and gap penalties per unit of the row's coefficient), so the
/// slack is used only when no plan fits.
fn slack_penalty(blocks: &[Block], links: &LinkRows) -> Vec<f64> {
    let mut pen = vec![1.0; links.len()];
    for b in blocks {
        let worth = b.short_pen + b.gap_pen * b.periods() as f64 + b.unit_cost + 1.0;
        for (r, c, _) in links.terms(b) {
            if c > 0.0 {
                pen[r] = f64::max(pen[r], 10.0 * worth / c);
            }
        }
    }
    pen
}

/// The restricted master, kept in one HiGHS instance across rounds: rows are each part's
/// convexity row (= 1) then the linking rows (≤ rhs); columns the elastic slacks, then plans.
struct Master {
    model: Option<Model>,
    convexity: Vec<Row>,
    linking: Vec<Row>,
    slacks: usize,
    /// Every master column, slacks first.
    cols: Vec<Col>,
}

/// One master solution.
struct MasterSolution {
    value: f64,
    /// Weight of every master column (slacks first).
    lambda: Vec<f64>,
    slack: Vec<f64>,
    /// Price of each linking row (≥ 0).
    pi: Vec<f64>,
    /// Dual of each convexity row.
    sigma: Vec<f64>,
}

impl Master {
    fn new(parts: usize, links: &LinkRows, penalty: &[f64]) -> Master {
        let mut model = ColProblem::default().optimise(Sense::Minimise);
        model.make_quiet();
        // Each round only adds columns, which keeps the last basis primal feasible: primal
        // simplex from it, no presolve (which would discard the basis).
        model.set_option("presolve", "off");
        model.set_option("solver", "simplex");
        model.set_option("simplex_strategy", 4);
        let convexity = (0..parts)
            .map(|_| model.add_row(1.0..=1.0, std::iter::empty()))
            .collect();
        let linking: Vec<Row> = links
            .rows
            .iter()
            .map(|r| model.add_row(..=r.rhs, std::iter::empty()))
            .collect();
        let cols = linking
            .iter()
            .zip(penalty)
            .map(|(row, pen)| model.add_col(*pen, 0.0.., [(*row, -1.0)]))
            .collect();
        Master {
            model: Some(model),
            convexity,
            slacks: linking.len(),
            cols,
            linking,
        }
    }

    /// Adds a plan of part `p`; returns its index among the master's columns.
    fn add(&mut self, p: usize, cost: f64, usage: &[(usize, f64)]) -> usize {
        let entries = std::iter::once((self.convexity[p], 1.0))
            .chain(usage.iter().map(|&(r, u)| (self.linking[r], u)));
        if let Some(m) = self.model.as_mut() {
            self.cols.push(m.add_col(cost, 0.0.., entries));
        }
        self.cols.len() - 1
    }

    fn retire(&mut self, col: usize) {
        if let (Some(m), Some(c)) = (self.model.as_mut(), self.cols.get(col)) {
            m.change_column_bounds(*c, 0.0..=0.0);
        }
    }

    fn solve(&mut self) -> Result<MasterSolution, Fail> {
        let model = self
            .model
            .take()
            .ok_or_else(|| Fail::Solver("master: lost after a failed solve".into()))?;
        let solved = model
            .try_solve()
            .map_err(|e| Fail::Solver(format!("master: {e:?}")))?;
        if solved.status() != HighsModelStatus::Optimal {
            return Err(Fail::Solver(format!("master: {:?}", solved.status())));
        }
        let value = solved.objective_value();
        tracing::debug!(
            columns = self.cols.len(),
            iterations = solved.simplex_iteration_count(),
            "decomposition master solved"
        );
        let sol = solved.get_solution();
        self.model = Some(Model::from(solved));
        let lambda = sol.columns().to_vec();
        let rows = sol.dual_rows();
        let (conv, link) = rows.split_at(self.convexity.len());
        Ok(MasterSolution {
            value,
            slack: lambda[..self.slacks].to_vec(),
            lambda,
            // A ≤ row's dual is ≤ 0 in a minimisation: one more unit saves −dual.
            pi: link.iter().map(|d| (-d).max(0.0)).collect(),
            sigma: conv.to_vec(),
        })
    }
}

fn infeasible_families(links: &LinkRows, slack: &[f64]) -> Vec<Family> {
    let mut fams: Vec<Family> = links
        .rows
        .iter()
        .zip(slack)
        .filter(|(row, s)| **s > 1e-6 * row.rhs.abs().max(1.0))
        .map(|(row, _)| row.family)
        .collect();
    fams.sort();
    fams.dedup();
    fams
}
