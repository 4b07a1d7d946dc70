//! Dantzig–Wolfe decomposition over parts (DESIGN §6, "Scale").
//!
//! The LP is block-diagonal by part; only the budget, capacity and credit rows link parts.
//! The master holds one convexity row per part, the linking rows that its plans would break
//! (entered lazily, see [`Master`]), and as columns whole per-part plans; each round prices
//! every part touching a row with a positive dual at the master's duals (blocks solved in
//! parallel with rayon), adds the improving plans, and stops when the Lagrangian bound
//! certifies the relative gap `solver.dw_gap`. A round keeps only the most improving plans,
//! [`PLANS_PER_ROW`] per linking row in the master. The first round offers each part two plans:
//! its unpriced optimum and its plan at the slack penalties (the least use of the rows).
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
//! HiGHS instance for the whole run ([`super::highs_lp`]): new plans are added as columns
//! and HiGHS re-solves from its last basis instead of rebuilding the LP every round. A plan
//! left out of the master's solution for [`RETIRE_AFTER`] rounds in a row is deleted from
//! it, so the simplex and the memory carry only the plans in use.

use std::time::Instant;

use rayon::prelude::*;

use super::blockflow;
use super::highs_lp::{HighsLp, NewRow};
use super::lp::{self, Fail, Family, Finish, Flows, LinkRows, Prices};
use super::model::PlanModel;
use super::netsimplex::Basis;
use super::prepare::Block;

/// Weight of the stability centre in the pricing duals.
const SMOOTHING: f64 = 0.7;

/// Rounds a plan may stay out of the master's solution before it is retired. Measured at
/// 60 × 800 (`cargo bench --bench plan`): 5 rounds 21.7 s, 3 rounds 13.3 s, 2 rounds 10.1 s
/// to a 0.1 % gap; 1 round drops plans the master still needs and stalls at 3 %.
const RETIRE_AFTER: usize = 2;

/// Improving plans the master takes per round, per active linking row; the most improving
/// (lowest reduced cost) first. The convexity rows fix one basic plan per part, so only the
/// linking rows leave room for new plans in the master's basis: offering a plan from every
/// part each round mostly buys simplex pivots. Measured (`cargo bench --bench plan`): at
/// 60 × 800, every improving plan 9.3 s to a 0.1 % gap, a third of the rows 5.3 s; at
/// 200 × 5000, gap after 60 s 25 % against 3.1 %. A tenth of the parts or a quarter did
/// about as well at one size and worse at the other; the row count carried over.
const PLANS_PER_ROW: f64 = 1.0 / 3.0;

/// A per-part plan offered to the master.
struct Column {
    cost: f64,
    usage: Vec<(usize, f64)>,
    flows: Flows,
    /// Position of the plan's column in the master.
    col: usize,
    /// Its weight in the last master solution (zero until it has been in one).
    weight: f64,
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
    /// The mix uses linking-row slack (only when stopped at a limit): `flows` break those
    /// rows until repaired.
    pub breaks_links: bool,
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
    let mut master = Master::new(blocks.len(), links, penalty.clone());
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
    let broken = master.broken_rows(&columns, None);
    let touching = touching_rows(blocks, links);
    // A second first plan per part, priced at the slack penalties: the plan using least of
    // the linking rows. Together they usually make the first master feasible without its
    // slacks, so its duals are prices of the rows rather than echoes of the penalties (an
    // infeasible first master costs a long second solve and several wasted rounds).
    let frugal_started = Instant::now();
    let frugal: Vec<(usize, Priced)> = (0..blocks.len())
        .into_par_iter()
        .filter(|&p| !touching[p].is_empty())
        .map(|p| {
            let prices = Prices::for_block(links, &blocks[p], &penalty);
            price(links, &blocks[p], Some(&prices), Some(&bases[p])).map(|c| (p, c))
        })
        .collect::<Result<_, _>>()
        .map_err(DwFail::Other)?;
    profile.pricing_wall_ms += lp::ms(frugal_started);
    for (p, priced) in frugal {
        profile.add(priced.timing);
        let mut col = priced.column;
        col.col = master.add(p, col.cost, &col.usage);
        columns[p].push(col);
    }
    master.activate(&broken, &columns);
    profile.columns = columns.iter().map(Vec::len).sum();
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
        let duals = master
            .solve_with_rows(&mut columns)
            .map_err(DwFail::Other)?;
        profile.master_ms += lp::ms(master_started);
        profile.retired += retire_idle(&mut columns, &mut master);
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
        let mut improving: Vec<(f64, usize, Column)> = Vec::new();
        for (p, priced) in new {
            profile.add(priced.timing);
            bound += priced.value - base_value[p];
            bases[p] = priced.basis;
            let col = priced.column;
            // Reduced cost at the master's duals (the column was priced at `sep`).
            let rc = col.cost + col.usage.iter().map(|&(r, u)| duals.pi[r] * u).sum::<f64>()
                - duals.sigma[p];
            if rc < -1e-7 * (1.0 + col.cost.abs()) {
                improving.push((rc, p, col));
            }
        }
        let keep = ((master.active_rows() as f64 * PLANS_PER_ROW).ceil() as usize).max(1);
        if improving.len() > keep {
            improving.sort_by(|a, b| a.0.total_cmp(&b.0));
            improving.truncate(keep);
        }
        for (_, p, mut col) in improving {
            col.col = master.add(p, col.cost, &col.usage);
            columns[p].push(col);
            added += 1;
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
            rows = master.active_rows(),
            slacks_in_use = duals.slack.iter().filter(|s| **s > 1e-9).count(),
            elapsed_s = started.elapsed().as_secs_f64(),
            "decomposition round"
        );
        let timed_out = started.elapsed().as_secs_f64() > model.solver.time_limit_s;
        let mispriced = added == 0 && alpha > 0.0 && gap > model.solver.dw_gap;
        let done = gap <= model.solver.dw_gap || (added == 0 && !mispriced);
        // The master's solution before this round's columns: its weights are the plan's.
        out = Some((duals, gap, best_bound));
        if done || timed_out {
            if timed_out && !done {
                finish = Finish::TimeLimit;
            }
            break;
        }
        if iterations == model.solver.dw_max_iterations {
            finish = Finish::RoundLimit;
        }
        alpha = if mispriced { 0.0 } else { SMOOTHING };
    }
    let Some((duals, gap, bound)) = out else {
        return Err(DwFail::Other(Fail::Solver(
            "no decomposition round ran".into(),
        )));
    };
    let infeasible = infeasible_families(links, &duals.slack);
    // Slack still in use at a limit says only that no feasible mix was found yet (a row
    // that entered last round has no plans fitting it): the caller repairs the mix.
    let breaks_links = !infeasible.is_empty();
    if breaks_links && finish == Finish::Optimal {
        return Err(DwFail::Infeasible(infeasible));
    }
    let flows = columns
        .iter()
        .map(|cols| {
            // Plans added after the last master solve have no weight yet.
            let mix: Vec<(f64, &Flows)> = cols
                .iter()
                .filter(|c| c.weight > 1e-9)
                .map(|c| (c.weight, &c.flows))
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
        breaks_links,
        iterations,
        // Each part's network is written inside every pricing round: see `profile`.
        build_ms: 0.0,
        solve_ms: lp::ms(started),
        profile,
    })
}

/// Retires plans out of the master's solution for [`RETIRE_AFTER`] rounds: deleted from
/// the master and dropped, unless basic (deleting a basic column would lose the basis) or
/// the part's last plan. Returns how many.
fn retire_idle(columns: &mut [Vec<Column>], master: &mut Master) -> usize {
    let basic = master.lp.basic_columns();
    let mut delete = vec![false; basic.len()];
    for cols in columns.iter_mut() {
        let mut keep = cols.len();
        for c in cols.iter_mut() {
            if c.weight > 1e-9 {
                c.idle = 0;
                continue;
            }
            c.idle += 1;
            if c.idle >= RETIRE_AFTER && keep > 1 && !basic.get(c.col).copied().unwrap_or(true) {
                delete[c.col] = true;
                keep -= 1;
            }
        }
    }
    let retired = delete.iter().filter(|d| **d).count();
    if retired == 0 {
        return 0;
    }
    let moved = master.delete(&delete);
    for cols in columns.iter_mut() {
        cols.retain(|c| !delete[c.col]);
        for c in cols.iter_mut() {
            c.col = moved[c.col].unwrap_or(c.col);
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
            flows,
            col: 0,
            weight: 0.0,
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

/// The restricted master, kept in one HiGHS instance across rounds: one convexity row per
/// part (= 1), the linking rows in use (≤ rhs, each with its elastic slack), and whole
/// plans as columns.
///
/// Linking rows enter lazily. Most capacity and credit rows never bind, yet every plan has
/// a coefficient in each row of every location that stocks the part, so carrying them all
/// makes the master's columns dense for nothing. A row enters when the master's mix of
/// plans breaks it and then stays. A row left out is a row priced at zero, which keeps the
/// Lagrangian bound valid; the master's value is an upper bound again once its mix breaks
/// no row, which is when [`Master::solve_with_rows`] returns.
struct Master {
    lp: HighsLp,
    /// Rows 0..parts are the convexity rows.
    parts: usize,
    /// Per linking row once active: its row and its slack column in the master.
    linking: Vec<Option<(usize, usize)>>,
    rhs: Vec<f64>,
    penalty: Vec<f64>,
    /// Rows were added since the last solve (the old basis is dual, not primal, feasible).
    rows_added: bool,
}

/// One master solution.
struct MasterSolution {
    value: f64,
    /// Slack of each linking row (zero when inactive).
    slack: Vec<f64>,
    /// Price of each linking row (≥ 0; zero when inactive).
    pi: Vec<f64>,
    /// Dual of each convexity row.
    sigma: Vec<f64>,
}

impl Master {
    fn new(parts: usize, links: &LinkRows, penalty: Vec<f64>) -> Master {
        let mut lp = HighsLp::new();
        let convexity: Vec<NewRow> = (0..parts)
            .map(|_| NewRow {
                lower: 1.0,
                upper: 1.0,
                entries: Vec::new(),
            })
            .collect();
        lp.add_rows(&convexity);
        Master {
            lp,
            parts,
            linking: vec![None; links.len()],
            rhs: links.rows.iter().map(|r| r.rhs).collect(),
            penalty,
            rows_added: false,
        }
    }

    fn active_rows(&self) -> usize {
        self.linking.iter().filter(|r| r.is_some()).count()
    }

    /// Adds a plan of part `p`; returns its position among the master's columns.
    fn add(&mut self, p: usize, cost: f64, usage: &[(usize, f64)]) -> usize {
        let mut entries = vec![(p, 1.0)];
        entries.extend(
            usage
                .iter()
                .filter_map(|&(r, u)| self.linking[r].map(|(row, _)| (row, u))),
        );
        self.lp.add_cols(&[(cost, entries)])
    }

    /// Inactive rows that the mix of plans breaks: every plan at weight 1 when `lambda` is
    /// `None` (used before the first solve, when each part has one plan), else the master's
    /// weights.
    fn broken_rows(&self, columns: &[Vec<Column>], lambda: Option<&[f64]>) -> Vec<usize> {
        let mut used = vec![0.0; self.rhs.len()];
        for c in columns.iter().flatten() {
            let w = lambda.map_or(1.0, |l| l.get(c.col).copied().unwrap_or(0.0));
            if w > 1e-12 {
                for &(r, u) in &c.usage {
                    used[r] += w * u;
                }
            }
        }
        (0..used.len())
            .filter(|&r| self.linking[r].is_none())
            .filter(|&r| used[r] > self.rhs[r] + 1e-9 * self.rhs[r].abs().max(1.0))
            .collect()
    }

    /// Adds `rows` with the coefficients of every plan, and their slacks.
    fn activate(&mut self, rows: &[usize], columns: &[Vec<Column>]) {
        let mut entries: Vec<Vec<(usize, f64)>> = vec![Vec::new(); self.rhs.len()];
        let mut wanted = vec![false; self.rhs.len()];
        for &r in rows {
            wanted[r] = true;
        }
        for c in columns.iter().flatten() {
            for &(r, u) in c.usage.iter().filter(|(r, _)| wanted[*r]) {
                entries[r].push((c.col, u));
            }
        }
        let new_rows: Vec<NewRow> = rows
            .iter()
            .map(|&r| NewRow {
                lower: f64::NEG_INFINITY,
                upper: self.rhs[r],
                entries: std::mem::take(&mut entries[r]),
            })
            .collect();
        let first_row = self.lp.add_rows(&new_rows);
        let slacks: Vec<(f64, Vec<(usize, f64)>)> = (0..rows.len())
            .map(|i| (self.penalty[rows[i]], vec![(first_row + i, -1.0)]))
            .collect();
        let first_slack = self.lp.add_cols(&slacks);
        for (i, &r) in rows.iter().enumerate() {
            self.linking[r] = Some((first_row + i, first_slack + i));
        }
        self.rows_added |= !rows.is_empty();
    }

    /// Deletes the columns marked in `delete`; returns each old column's new position.
    fn delete(&mut self, delete: &[bool]) -> Vec<Option<usize>> {
        let moved = self.lp.delete_cols(delete);
        for (_, slack) in self.linking.iter_mut().flatten() {
            *slack = moved[*slack].unwrap_or(*slack);
        }
        moved
    }

    /// Solves the master, adding every row its mix breaks and solving again until none;
    /// then records each plan's weight.
    fn solve_with_rows(&mut self, columns: &mut [Vec<Column>]) -> Result<MasterSolution, Fail> {
        loop {
            let (sol, lambda) = self.solve()?;
            let broken = self.broken_rows(columns, Some(&lambda));
            if broken.is_empty() {
                for c in columns.iter_mut().flatten() {
                    c.weight = lambda.get(c.col).copied().unwrap_or(0.0);
                }
                return Ok(sol);
            }
            self.activate(&broken, columns);
        }
    }

    /// Solves the master; also returns the weight of every master column.
    ///
    /// The first solve starts from HiGHS's logical basis. Tried and dropped: starting it
    /// from each part's unpriced plan (a dual feasible basis) halves its pivots at
    /// 60 × 800 (1,084 → 505) but not its time, and at 500 × 20,000 it had not finished
    /// after 8.5 min against 3.5 min from the logical basis (6.5 min with Devex pricing):
    /// for a basis of structurals HiGHS first computes exact steepest-edge weights.
    fn solve(&mut self) -> Result<(MasterSolution, Vec<f64>), Fail> {
        // HiGHS: 1 = dual simplex, 4 = primal simplex.
        self.lp
            .set_simplex_strategy(if self.rows_added { 1 } else { 4 });
        self.rows_added = false;
        let solved = self
            .lp
            .solve()
            .map_err(|e| Fail::Solver(format!("master: {e}")))?;
        tracing::debug!(
            columns = self.lp.num_cols(),
            rows = self.active_rows(),
            iterations = solved.iterations,
            "decomposition master solved"
        );
        let lambda = solved.columns;
        let duals = solved.row_duals;
        let mut pi = vec![0.0; self.rhs.len()];
        let mut slack = vec![0.0; self.rhs.len()];
        for (r, active) in self.linking.iter().enumerate() {
            if let Some((row, s)) = active {
                // A ≤ row's dual is ≤ 0 in a minimisation: one more unit saves −dual.
                pi[r] = (-duals[*row]).max(0.0);
                slack[r] = lambda[*s];
            }
        }
        let sol = MasterSolution {
            value: solved.objective,
            slack,
            pi,
            sigma: duals[..self.parts].to_vec(),
        };
        Ok((sol, lambda))
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
