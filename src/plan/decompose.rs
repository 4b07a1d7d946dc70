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
//! re-solved. Parts untouched by any priced row keep their first plan — that is the warm
//! start: their subproblem cannot change.

use std::time::Instant;

use good_lp::solvers::highs::highs;
use good_lp::{
    variable, DualValues, Expression, ProblemVariables, Solution, SolutionWithDual, SolverModel,
};
use rayon::prelude::*;

use super::lp::{self, Fail, Family, Finish, Flows, LinkRows, Mode, Prices};
use super::model::PlanModel;
use super::prepare::Block;

/// Weight of the stability centre in the pricing duals.
const SMOOTHING: f64 = 0.7;

/// A per-part plan offered to the master.
struct Column {
    cost: f64,
    usage: Vec<(usize, f64)>,
    flows: Flows,
    timing: lp::BlockTiming,
}

/// Where the decomposition's time went, milliseconds: wall time of the master solves and
/// of the pricing rounds, and summed over all part solves (CPU time, across threads) the
/// time spent writing each part's LP and inside HiGHS.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Profile {
    pub master_ms: f64,
    pub pricing_wall_ms: f64,
    pub part_build_cpu_ms: f64,
    pub part_highs_cpu_ms: f64,
    pub part_solves: usize,
}

impl Profile {
    fn add(&mut self, t: lp::BlockTiming) {
        self.part_build_cpu_ms += t.build_ms;
        self.part_highs_cpu_ms += t.solve_ms;
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

pub fn solve(model: &PlanModel, blocks: &[Block], links: &LinkRows) -> Result<Decomposed, DwFail> {
    let started = Instant::now();
    let mut profile = Profile::default();
    let first: Vec<(Column, f64)> = blocks
        .par_iter()
        .map(|b| price(model, links, b, None))
        .collect::<Result<_, _>>()
        .map_err(DwFail::Other)?;
    first.iter().for_each(|(c, _)| profile.add(c.timing));
    profile.pricing_wall_ms += lp::ms(started);
    let base_value: Vec<f64> = first.iter().map(|(_, v)| *v).collect();
    let mut columns: Vec<Vec<Column>> = first.into_iter().map(|(c, _)| vec![c]).collect();
    let penalty = slack_penalty(blocks, links);
    let touching = touching_rows(blocks, links);
    let mut out = None;
    let mut iterations = 0;
    let mut finish = Finish::Optimal;
    // Wentges smoothing: price at a mix of the best-bound duals (the stability centre) and
    // the master's duals; plain column generation oscillates and tails off badly with
    // hundreds of linking rows. A round whose smoothed prices find no column improving the
    // master (mis-pricing) retries at the master's own duals.
    let mut best_bound = f64::NEG_INFINITY;
    let mut centre: Vec<f64> = vec![0.0; links.len()];
    let mut alpha = SMOOTHING;
    while iterations < model.solver.dw_max_iterations {
        iterations += 1;
        let master_started = Instant::now();
        let master = solve_master(&columns, links, &penalty).map_err(DwFail::Other)?;
        profile.master_ms += lp::ms(master_started);
        let sep: Vec<f64> = if best_bound.is_finite() {
            centre
                .iter()
                .zip(&master.pi)
                .map(|(c, m)| alpha * c + (1.0 - alpha) * m)
                .collect()
        } else {
            master.pi.clone()
        };
        let priced: Vec<usize> = (0..blocks.len())
            .filter(|&p| touching[p].iter().any(|&r| sep[r] > 1e-12))
            .collect();
        let pricing_started = Instant::now();
        let new: Vec<(usize, Column, f64)> = priced
            .par_iter()
            .map(|&p| {
                let prices = Prices::for_block(links, &blocks[p], &sep);
                price(model, links, &blocks[p], Some(&prices)).map(|(c, v)| (p, c, v))
            })
            .collect::<Result<_, _>>()
            .map_err(DwFail::Other)?;
        // Lagrangian bound at the pricing duals: Σ_p min_x (c + π·a)(x) − π·b; unpriced
        // parts keep their base value (their prices are zero).
        profile.pricing_wall_ms += lp::ms(pricing_started);
        let mut bound: f64 = base_value.iter().sum();
        let mut added = 0;
        for (p, col, v) in new {
            profile.add(col.timing);
            bound += v - base_value[p];
            // Reduced cost at the master's duals (the column was priced at `sep`).
            let rc = col.cost
                + col
                    .usage
                    .iter()
                    .map(|&(r, u)| master.pi[r] * u)
                    .sum::<f64>()
                - master.sigma[p];
            if rc < -1e-7 * (1.0 + col.cost.abs()) {
                columns[p].push(col);
                added += 1;
            }
        }
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
        let gap = (master.value - best_bound).max(0.0) / master.value.abs().max(1.0);
        let timed_out = started.elapsed().as_secs_f64() > model.solver.time_limit_s;
        let mispriced = added == 0 && alpha > 0.0 && gap > model.solver.dw_gap;
        let done = gap <= model.solver.dw_gap || (added == 0 && !mispriced);
        out = Some((master, gap, best_bound));
        if done || timed_out {
            if timed_out && !done {
                finish = Finish::TimeLimit;
            }
            break;
        }
        alpha = if mispriced { 0.0 } else { SMOOTHING };
    }
    let Some((master, gap, bound)) = out else {
        return Err(DwFail::Other(Fail::Solver(
            "no decomposition round ran".into(),
        )));
    };
    let infeasible = infeasible_families(links, &master.slack);
    if !infeasible.is_empty() {
        return Err(DwFail::Infeasible(infeasible));
    }
    let flows = columns
        .iter()
        .zip(&master.lambda)
        .map(|(cols, w)| {
            let mix: Vec<(f64, &Flows)> = cols
                .iter()
                .zip(w)
                .filter(|(_, w)| **w > 1e-9)
                .map(|(c, w)| (*w, &c.flows))
                .collect();
            Flows::combine(&mix)
        })
        .collect();
    Ok(Decomposed {
        flows,
        shadow: master.pi,
        finish,
        gap,
        lower_bound: bound,
        iterations,
        // Each part's LP is written inside every pricing round: see `profile` for the split.
        build_ms: 0.0,
        solve_ms: lp::ms(started),
        profile,
    })
}

/// Solves one part at `prices`: its column (true cost, row use) and its priced value.
fn price(
    model: &PlanModel,
    links: &LinkRows,
    block: &Block,
    prices: Option<&Prices>,
) -> Result<(Column, f64), Fail> {
    let (flows, value, timing) = lp::solve_block_timed(model, block, prices, Mode::Lp)?;
    let cost = lp::costs(block, &flows).total();
    let usage = links
        .usage(block, &flows)
        .into_iter()
        .filter(|(_, u)| u.abs() > 1e-12)
        .collect();
    Ok((
        Column {
            cost,
            usage,
            flows,
            timing,
        },
        value,
    ))
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

struct Master {
    value: f64,
    lambda: Vec<Vec<f64>>,
    slack: Vec<f64>,
    /// Price of each linking row (≥ 0).
    pi: Vec<f64>,
    /// Dual of each convexity row.
    sigma: Vec<f64>,
}

fn solve_master(
    columns: &[Vec<Column>],
    links: &LinkRows,
    penalty: &[f64],
) -> Result<Master, Fail> {
    let mut vars = ProblemVariables::new();
    let lambda: Vec<Vec<_>> = columns
        .iter()
        .map(|cols| cols.iter().map(|_| vars.add(variable().min(0.0))).collect())
        .collect();
    let slack: Vec<_> = (0..links.len())
        .map(|_| vars.add(variable().min(0.0)))
        .collect();
    let mut obj = Expression::with_capacity(vars.len());
    for (cols, ls) in columns.iter().zip(&lambda) {
        for (c, l) in cols.iter().zip(ls) {
            obj.add_mul(c.cost, *l);
        }
    }
    for (s, pen) in slack.iter().zip(penalty) {
        obj.add_mul(*pen, *s);
    }
    let mut problem = vars.minimise(obj.clone()).using(highs);
    let mut rows: Vec<Expression> = slack.iter().map(|s| -1.0 * *s).collect();
    let mut convexity = Vec::with_capacity(columns.len());
    for (cols, ls) in columns.iter().zip(&lambda) {
        let mut e = Expression::with_capacity(ls.len());
        for (c, l) in cols.iter().zip(ls) {
            e.add_mul(1.0, *l);
            for &(r, u) in &c.usage {
                rows[r].add_mul(u, *l);
            }
        }
        convexity.push(problem.add_constraint(e.eq(1.0)));
    }
    let link_refs: Vec<_> = rows
        .into_iter()
        .zip(&links.rows)
        .map(|(e, row)| problem.add_constraint(e.leq(row.rhs)))
        .collect();
    let mut sol = problem
        .solve()
        .map_err(|e| Fail::Solver(format!("master: {e}")))?;
    let value = sol.eval(&obj);
    let lambda_v = lambda
        .iter()
        .map(|ls| ls.iter().map(|l| sol.value(*l)).collect())
        .collect();
    let slack_v = slack.iter().map(|s| sol.value(*s)).collect();
    let duals = sol.compute_dual();
    let pi = link_refs
        .iter()
        .map(|r| (-duals.dual(r.clone())).max(0.0))
        .collect();
    let sigma = convexity.iter().map(|r| duals.dual(r.clone())).collect();
    Ok(Master {
        value,
        lambda: lambda_v,
        slack: slack_v,
        pi,
        sigma,
    })
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
