//! Dantzig–Wolfe decomposition over parts (DESIGN §6, "Scale").
//!
//! The LP is block-diagonal by part; only the budget, capacity and credit rows link parts.
//! The master holds the linking rows that its plans would break (entered lazily), and as
//! columns whole per-part plans, written as differences from each part's first plan so that
//! convexity needs a row only for parts with two more (see [`Master`]); each round prices
//! every part touching a row with a positive dual at the master's duals (blocks solved in
//! parallel with rayon), adds the improving plans, and stops when the Lagrangian bound
//! certifies the relative gap `solver.dw_gap`. A round keeps only the most improving plans,
//! [`PLANS_PER_ROW`] per linking row in the master (more while pricing takes longer than
//! the master). The first round offers each part two plans: its optimum at the starting
//! prices (zero, or for a large decomposition a sample's: [`sample_prices`]) and its plan
//! at the slack penalties (the least use of the rows).
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

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::blockflow;
use super::highs_lp::{HighsLp, LpSolution, NewRow};
use super::lp::{self, Fail, Family, Finish, Flows, LinkRows, Prices, Term};
use super::model::PlanModel;
use super::netsimplex::Basis;
use super::prepare::Block;

/// Weight of the stability centre in the pricing duals. Tried: moving it after every full
/// round (down 0.1 while the Lagrangian's supergradient at the pricing point rises towards
/// the master's duals, else up a tenth of the rest; Pessoa et al. 2018). At 500 × 20,000
/// (default 60 s limit) 45.3 % and 47.3 % against 52.4 % and 43.4 % fixed, two runs each;
/// 60 × 800 and 200 × 5,000 alike round by round. Within the noise, so not kept.
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

/// Rounds from one full pricing to the next when pricing every part takes longer than the
/// master. The rounds in between price only the parts whose plans improved most at the
/// last full one, [`CANDIDATES`] times as many as a round keeps: at 500 × 20,000 a round
/// keeps about 450 plans of 20,000 priced, and pricing them all took two thirds of it.
/// Measured (`--time-limit 42`): 10 rounds and a 44.5 % gap against 8 rounds and 46.1 %,
/// the same master values round by round. Where the master takes longer (60 × 800,
/// 200 × 5,000) every round is full: partial rounds there only delay the bound, and
/// 60 × 800 took 5.1 s to its 0.1 % gap against 3.8 s.
const FULL_EVERY: usize = 3;

/// Parts priced in a partial round, per plan the round keeps.
const CANDIDATES: usize = 4;

/// A decomposition of at least `solver.dw_sample_from` parts first solves a sample of them
/// for its starting prices ([`sample_prices`]): [`SAMPLE_SHARE`] of the parts, to the gap
/// [`SAMPLE_GAP`] within [`SAMPLE_TIME`] of the time left. Measured at 200 × 5,000
/// (`cargo bench --bench plan -- 200x5000 --time-limit 40`): the sample's 1 % gap took
/// 12.6 s and ended at 1.5 %, its 3 % gap 8.8 s and 1.2–1.4 %.
const SAMPLE_SHARE: f64 = 0.1;
const SAMPLE_GAP: f64 = 0.03;
const SAMPLE_TIME: f64 = 0.3;

/// A per-part plan offered to the master.
struct Column {
    cost: f64,
    usage: Vec<(usize, f64)>,
    flows: Flows,
    /// Position of the plan's column in the master; `None` for the part's base plan, which
    /// has none (see [`Master`]).
    col: Option<usize>,
    /// Its weight in the last master solution (zero until it has been in one; the base
    /// plan's starts at one).
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
    /// The sample solved first for starting prices ([`sample_prices`]): its parts and
    /// wall time, zero when none was.
    pub sample_parts: usize,
    pub sample_ms: f64,
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
    /// The linking rows' prices at which that bound was found (the stability centre).
    pub bound_prices: Vec<f64>,
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
    let penalty = slack_penalty(blocks, links);
    let touching = touching_rows(blocks, links);
    // Every part's first plan is its optimum at the starting prices: a sample's prices for
    // a large decomposition, zero otherwise (the unpriced optimum). The Lagrangian bound
    // Σ_p min_x (c + π·a)(x) − π·b holds at any prices π ≥ 0, so they are the first
    // stability centre too.
    let first_prices = sample_prices(model, blocks, links, &touching, started, &mut profile)
        .unwrap_or_else(|| vec![0.0; links.len()]);
    // Parts that touch a row priced at the start (none without a sample).
    let first_priced: Vec<bool> = touching
        .iter()
        .map(|rows| rows.iter().any(|&r| first_prices[r] > 0.0))
        .collect();
    // A second first plan per part, priced at the slack penalties: the plan using least of
    // the linking rows. Together they usually make the first master feasible without its
    // slacks, so its duals are prices of the rows rather than echoes of the penalties (an
    // infeasible first master costs a long second solve and several wasted rounds).
    let frugal_started = Instant::now();
    let mut frugal: Vec<Option<Priced>> = (0..blocks.len())
        .into_par_iter()
        .map(|p| {
            if touching[p].is_empty() {
                return Ok(None);
            }
            let prices = Prices::for_block(links, &blocks[p], &penalty);
            price(links, &blocks[p], Some(&prices), Start::Shortage).map(Some)
        })
        .collect::<Result<_, _>>()
        .map_err(DwFail::Other)?;
    profile.pricing_wall_ms += lp::ms(frugal_started);
    tracing::debug!(
        wall_s = frugal_started.elapsed().as_secs_f64(),
        "decomposition: frugal plans priced"
    );
    // The first plans start from the frugal plan's basis: only costs differ.
    let pricing_started = Instant::now();
    let first: Vec<Priced> = (0..blocks.len())
        .into_par_iter()
        .map(|p| {
            let prices =
                first_priced[p].then(|| Prices::for_block(links, &blocks[p], &first_prices));
            let start = frugal[p]
                .as_ref()
                .map_or(Start::Artificial, |f| Start::From(&f.basis));
            price(links, &blocks[p], prices.as_ref(), start)
        })
        .collect::<Result<_, _>>()
        .map_err(DwFail::Other)?;
    profile.pricing_wall_ms += lp::ms(pricing_started);
    tracing::debug!(
        parts = blocks.len(),
        wall_s = pricing_started.elapsed().as_secs_f64(),
        "decomposition: first plans at the starting prices"
    );
    // A part that no round prices keeps its first value: its unpriced value, because every
    // part that touches a row priced at the start is priced in every full round.
    let first_value: Vec<f64> = first.iter().map(|p| p.value).collect();
    let mut best_bound = first_value.iter().sum::<f64>() - rhs_value(links, &first_prices);
    let mut centre = first_prices.clone();
    let mut bases: Vec<Basis> = Vec::with_capacity(blocks.len());
    let mut columns: Vec<Vec<Column>> = Vec::with_capacity(blocks.len());
    for priced in first {
        profile.add(priced.timing);
        let mut base = priced.column;
        base.weight = 1.0;
        columns.push(vec![base]);
        bases.push(priced.basis);
    }
    let mut master = Master::new(&columns, links, penalty.clone());
    // Only the budget rows enter before the first solve. They link every part, and the mix
    // that meets them breaks far fewer capacity and credit rows than the base plans do;
    // those enter when the master's mix breaks them. Measured at 500 × 20,000: 1,297
    // rows in the first master instead of 5,307 and a master 2.5 × faster per round
    // (`--time-limit 42`: 8 rounds, gap 46 %, against 4 rounds, 52 %); 60 × 800 to the
    // 0.1 % gap 3.9 s against 4.1 s; 200 × 5,000 alike after 20 s.
    let broken: Vec<usize> = master
        .broken_rows(&columns)
        .into_iter()
        .filter(|&r| links.rows[r].family == Family::Budget)
        .collect();
    for (p, plan) in frugal.iter_mut().enumerate() {
        if let Some(priced) = plan.take() {
            profile.add(priced.timing);
            add_plan(&mut master, &mut columns[p], p, priced.column);
        }
    }
    master.activate(&broken, &columns);
    profile.columns = columns.iter().map(Vec::len).sum();
    tracing::debug!(
        parts = blocks.len(),
        frugal = profile.part_solves - blocks.len(),
        rows = master.active_rows(),
        elapsed_s = started.elapsed().as_secs_f64(),
        "decomposition: first plans priced"
    );
    let mut out = None;
    let mut iterations = 0;
    // Plans the master takes per round, as a multiple of [`PLANS_PER_ROW`] per active row:
    // doubled after a full round whose pricing took more than twice the master's solve,
    // halved (not below one) after one where the master took longer, so that neither
    // waits on the other. Tried: updating after every round, partial ones too; at
    // 500 × 20,000 it reached thousands of plans a round by round 7 instead of 10 and then
    // overshot (a 26 s master solve): gap 43.1 % / 27.8 % at `--time-limit 42` / `100`
    // against 43.4 % / 27.3 %.
    let mut keep_scale: f64 = 1.0;
    let mut finish = Finish::Optimal;
    // Wentges smoothing: price at a mix of the best-bound duals (the stability centre) and
    // the master's duals; plain column generation oscillates and tails off badly with
    // hundreds of linking rows. A round whose smoothed prices find no column improving the
    // master (mis-pricing) retries at the master's own duals.
    // Starting from the first master's duals instead of zero prices would centre on the
    // slack penalties that an infeasible first master prices its rows at.
    let mut alpha = SMOOTHING;
    // Parts to price in the next partial round, most improving first; empty: price all.
    let mut candidates: Vec<usize> = Vec::new();
    let mut since_full = 0;
    let mut full_pricing_ms = 0.0;
    while iterations < model.solver.dw_max_iterations {
        iterations += 1;
        let master_started = Instant::now();
        let duals = master
            .solve_with_rows(&mut columns)
            .map_err(DwFail::Other)?;
        let master_ms = lp::ms(master_started);
        profile.master_ms += master_ms;
        profile.retired += retire_idle(&mut columns, &mut master);
        // Past the time limit, the mix just solved is the plan (it has used the plans
        // priced in the round that ran out of time): pricing again would only move the
        // bound. At 500 × 20,000 a full pricing round takes several master solves.
        if started.elapsed().as_secs_f64() > model.solver.time_limit_s {
            let gap = relative_gap(duals.value, best_bound);
            if gap > model.solver.dw_gap {
                finish = Finish::TimeLimit;
            }
            tracing::debug!(
                round = iterations,
                master = duals.value,
                gap,
                "decomposition: time limit"
            );
            out = Some((duals, gap, best_bound));
            break;
        }
        let sep: Vec<f64> = centre
            .iter()
            .zip(&duals.pi)
            .map(|(c, m)| alpha * c + (1.0 - alpha) * m)
            .collect();
        let full =
            candidates.is_empty() || since_full + 1 >= FULL_EVERY || full_pricing_ms < master_ms;
        // A part priced at the start is priced in every full round even where `sep` leaves
        // its rows at zero (after a mis-priced round): its first value is no unpriced value.
        let touched = |p: &usize| first_priced[*p] || touching[*p].iter().any(|&r| sep[r] > 1e-12);
        let priced: Vec<usize> = if full {
            (0..blocks.len()).filter(touched).collect()
        } else {
            candidates.iter().copied().filter(touched).collect()
        };
        let pricing_started = Instant::now();
        let new: Vec<(usize, Priced)> = priced
            .par_iter()
            .map(|&p| {
                let prices = Prices::for_block(links, &blocks[p], &sep);
                price(links, &blocks[p], Some(&prices), Start::From(&bases[p])).map(|c| (p, c))
            })
            .collect::<Result<_, _>>()
            .map_err(DwFail::Other)?;
        profile.pricing_wall_ms += lp::ms(pricing_started);
        if full {
            full_pricing_ms = lp::ms(pricing_started);
        }
        // Lagrangian bound at the pricing duals; unpriced parts keep their first value.
        let mut bound: f64 = first_value.iter().sum();
        let mut added = 0;
        let mut improving: Vec<(f64, usize, Column)> = Vec::new();
        if full {
            keep_scale = if full_pricing_ms > 2.0 * master_ms {
                (keep_scale * 2.0).min(blocks.len() as f64)
            } else if master_ms > full_pricing_ms {
                (keep_scale / 2.0).max(1.0)
            } else {
                keep_scale
            };
        }
        let keep =
            ((master.active_rows() as f64 * PLANS_PER_ROW * keep_scale).ceil() as usize).max(1);
        for (p, priced) in new {
            profile.add(priced.timing);
            bound += priced.value - first_value[p];
            bases[p] = priced.basis;
            let col = priced.column;
            // Reduced cost at the master's duals (the column was priced at `sep`).
            let rc = col.cost + col.usage.iter().map(|&(r, u)| duals.pi[r] * u).sum::<f64>()
                - duals.sigma[p];
            if rc < -1e-7 * (1.0 + col.cost.abs()) {
                improving.push((rc, p, col));
            }
        }
        improving.sort_by(|a, b| a.0.total_cmp(&b.0));
        candidates = improving
            .iter()
            .take(CANDIDATES * keep)
            .map(|&(_, p, _)| p)
            .collect();
        improving.truncate(keep);
        for (_, p, col) in improving {
            add_plan(&mut master, &mut columns[p], p, col);
            added += 1;
        }
        profile.columns += added;
        bound -= rhs_value(links, &sep);
        // Only a full round's values make a Lagrangian bound.
        if full && bound > best_bound {
            best_bound = bound;
            centre = sep;
        }
        let gap = relative_gap(duals.value, best_bound);
        tracing::debug!(
            round = iterations,
            master = duals.value,
            bound = best_bound,
            gap,
            priced = priced.len(),
            full,
            added,
            binding = duals.pi.iter().filter(|p| **p > 1e-9).count(),
            rows = master.active_rows(),
            slacks_in_use = duals.slack.iter().filter(|s| **s > 1e-9).count(),
            elapsed_s = started.elapsed().as_secs_f64(),
            "decomposition round"
        );
        // Only a full round can find that no plan improves; a partial one that finds none
        // is followed by a full one (its candidates are then empty).
        let mispriced = full && added == 0 && alpha > 0.0 && gap > model.solver.dw_gap;
        let done = gap <= model.solver.dw_gap || (full && added == 0 && !mispriced);
        since_full = if full { 0 } else { since_full + 1 };
        // The master's solution before this round's columns: its weights are the plan's.
        out = Some((duals, gap, best_bound));
        if done {
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
        .par_iter()
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
        bound_prices: centre,
        breaks_links,
        iterations,
        // Each part's network is written inside every pricing round: see `profile`.
        build_ms: 0.0,
        solve_ms: lp::ms(started),
        profile,
    })
}

/// How far the master's value lies above the Lagrangian bound, relative to the value.
fn relative_gap(value: f64, bound: f64) -> f64 {
    (value - bound).max(0.0) / value.abs().max(1.0)
}

/// Σ_r rhs_r · π_r: what the rows' right-hand sides are worth at `prices`.
fn rhs_value(links: &LinkRows, prices: &[f64]) -> f64 {
    links
        .rows
        .iter()
        .zip(prices)
        .map(|(r, pi)| r.rhs * pi)
        .sum()
}

/// Starting prices for a large decomposition, from a random sample of its parts.
///
/// A linking row's price is a rate (what one more unit of budget, m³ or credit saves), set
/// by the parts competing for the row at the margin; a random share of the parts, given
/// the same share of each row, meets much the same margin. The sample — [`SAMPLE_SHARE`]
/// of the parts, each row's right-hand side scaled by the sample's share of what all parts
/// may be expected to use of it ([`scale_rows`]) — is a small decomposition of its own,
/// and its best-bound prices start the whole one: every part's first plan is its optimum
/// there, and those plans are the master's base. Column generation from zero prices
/// otherwise spends most of its rounds finding prices for hundreds of binding rows, a few
/// hundred plans a round. The sample is solved by the same code (and sampled again if
/// still large), within [`SAMPLE_TIME`] of the time left, to the gap [`SAMPLE_GAP`].
fn sample_prices(
    model: &PlanModel,
    blocks: &[Block],
    links: &LinkRows,
    touching: &[Vec<usize>],
    started: Instant,
    profile: &mut Profile,
) -> Option<Vec<f64>> {
    let from = model.solver.dw_sample_from;
    let size = ((blocks.len() as f64 * SAMPLE_SHARE).ceil() as usize).max(1);
    if from == 0 || blocks.len() < from || size >= blocks.len() || links.is_empty() {
        return None;
    }
    let sampling = Instant::now();
    // Seeded by the size, so that a run is reproducible.
    let mut rng = ChaCha8Rng::seed_from_u64(blocks.len() as u64);
    let mut picked = rand::seq::index::sample(&mut rng, blocks.len(), size).into_vec();
    picked.sort_unstable();
    let mut sub_links = links.clone();
    scale_rows(&mut sub_links, blocks, touching, &picked);
    let sub_blocks: Vec<Block> = picked.iter().map(|&p| blocks[p].clone()).collect();
    let mut sub_model = model.clone();
    let left = model.solver.time_limit_s - started.elapsed().as_secs_f64();
    sub_model.solver.time_limit_s = (left * SAMPLE_TIME).max(0.0);
    sub_model.solver.dw_gap = model.solver.dw_gap.max(SAMPLE_GAP);
    let solved = solve(&sub_model, &sub_blocks, &sub_links);
    profile.sample_parts = size;
    profile.sample_ms = lp::ms(sampling);
    let sub = solved.ok()?;
    tracing::debug!(
        parts = size,
        rounds = sub.iterations,
        gap = sub.gap,
        elapsed_s = profile.sample_ms / 1e3,
        "decomposition: sample solved"
    );
    Some(sub.bound_prices)
}

/// Scales every row's right-hand side to the `picked` parts' share of what all parts may
/// be expected to use of it ([`expected_usage`]); to their share of the parts touching it
/// where that is zero.
fn scale_rows(links: &mut LinkRows, blocks: &[Block], touching: &[Vec<usize>], picked: &[usize]) {
    let expected: Vec<Vec<(usize, f64)>> = blocks
        .par_iter()
        .map(|b| expected_usage(links, b))
        .collect();
    let mut all = vec![(0.0, 0usize); links.len()];
    let mut sampled = vec![(0.0, 0usize); links.len()];
    for (p, usage) in expected.iter().enumerate() {
        for &(r, u) in usage {
            all[r].0 += u;
        }
        for &r in &touching[p] {
            all[r].1 += 1;
        }
    }
    for &p in picked {
        for &(r, u) in &expected[p] {
            sampled[r].0 += u;
        }
        for &r in &touching[p] {
            sampled[r].1 += 1;
        }
    }
    for (r, row) in links.rows.iter_mut().enumerate() {
        let share = if all[r].0 > 1e-12 {
            sampled[r].0 / all[r].0
        } else {
            sampled[r].1 as f64 / all[r].1.max(1) as f64
        };
        row.rhs *= share;
    }
}

/// What a part's plan may be expected to use of each linking row before any price: its
/// whole demand bought in the period (budget), its safety stock and a period's demand
/// held at the location (capacity, credit). Tried: counting the opening stock too (a
/// sample's rows then fit its own opening stock better); at 500 × 20,000 the sample still
/// used slack and the run ended at a 51 % gap against 43 % (`--time-limit 42`, one run
/// each).
fn expected_usage(links: &LinkRows, block: &Block) -> Vec<(usize, f64)> {
    links
        .terms(block)
        .into_iter()
        .map(|(r, c, term)| {
            let units = match term {
                Term::Buy(t) => block.demand.iter().map(|d| d[t]).sum::<f64>(),
                Term::Inv(l, t) => block.ss[l][t] + block.demand[l][t],
            };
            (r, c * units)
        })
        .collect()
}

/// Adds `plan` to part `p`'s plans and to the master.
fn add_plan(master: &mut Master, plans: &mut Vec<Column>, p: usize, mut plan: Column) {
    plan.col = Some(master.add(p, &plan, &plans[0]));
    plans.push(plan);
}

/// Retires plans out of the master's solution for [`RETIRE_AFTER`] rounds: deleted from
/// the master and dropped, unless basic (deleting a basic column would lose the basis) or
/// the part's base plan, which has no column. Returns how many.
fn retire_idle(columns: &mut [Vec<Column>], master: &mut Master) -> usize {
    let basic = master.lp.basic_columns();
    let mut delete = vec![false; basic.len()];
    for c in columns.iter_mut().flatten() {
        let Some(col) = c.col else { continue };
        if c.weight > 1e-9 {
            c.idle = 0;
            continue;
        }
        c.idle += 1;
        if c.idle >= RETIRE_AFTER && !basic.get(col).copied().unwrap_or(true) {
            delete[col] = true;
        }
    }
    let retired = delete.iter().filter(|d| **d).count();
    if retired == 0 {
        return 0;
    }
    let moved = master.delete(&delete);
    for cols in columns.iter_mut() {
        cols.retain(|c| c.col.is_none_or(|j| !delete[j]));
        for c in cols.iter_mut() {
            c.col = c.col.and_then(|j| moved[j]);
        }
    }
    retired
}

/// Where a part's network simplex starts.
enum Start<'a> {
    /// One artificial arc per node: the unpriced optimum is far from any plan we know.
    Artificial,
    /// The plan that buys nothing ([`blockflow::BlockNet::shortage_start`]): a few pivots
    /// from the plan at the slack penalties. Measured on 3,000 parts of 500 × 20,000:
    /// 0.44 ms a part against 0.98 ms from the unpriced optimum's basis.
    Shortage,
    /// The part's basis of its last solve: only costs changed since.
    From(&'a Basis),
}

/// Solves one part at `prices` as a network from `start`.
fn price(
    links: &LinkRows,
    block: &Block,
    prices: Option<&Prices>,
    start: Start,
) -> Result<Priced, Fail> {
    let started = Instant::now();
    let mut net = blockflow::BlockNet::new(block);
    net.price(block, prices);
    let shortage;
    let warm = match start {
        Start::Artificial => None,
        Start::Shortage => {
            shortage = net.shortage_start(block);
            Some(&shortage)
        }
        Start::From(basis) => Some(basis),
    };
    let build_ms = lp::ms(started);
    let solving = Instant::now();
    let (flows, basis) = net.solve(block, warm)?;
    let solve_ms = lp::ms(solving);
    let cost = lp::costs(block, &flows).total();
    let mut usage: Vec<(usize, f64)> = links
        .usage(block, &flows)
        .into_iter()
        .filter(|(_, u)| u.abs() > 1e-12)
        .collect();
    // Collected in place, the usage keeps the allocation of every term of the block (2.5 ×
    // its full length in bytes); a plan lives for many rounds, tens of thousands of them.
    usage.shrink_to_fit();
    let value = cost + prices.map_or(0.0, |p| p.cost_of(&flows));
    Ok(Priced {
        column: Column {
            cost,
            usage,
            flows,
            col: None,
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
            // The in-place collect left the terms' allocation, 5 × the bytes of every row.
            rows.shrink_to_fit();
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

/// The restricted master, kept in one HiGHS instance across rounds: the linking rows in use
/// (≤ rhs, each with its elastic slack), per-part plans as columns, and the convexity
/// constraints, written relative to each part's first plan.
///
/// Differenced against a base plan. Each part's first plan (its unpriced optimum) is its
/// base, whose weight is one minus the weights of its other plans; a column holds the
/// difference of a plan from its part's base (cost and row usage), with bounds 0 ≤ μ ≤ 1,
/// and the linking rows' right-hand sides lose what the base plans use. A part with one
/// other plan needs no convexity row: the column's bound is the constraint. Its row
/// Σ μ ≤ 1 enters before the first solve that has its second. Parts that touch no priced
/// row never get a column. With one equality row per part instead, the first master at
/// 500 × 20,000 carried 20,000 convexity rows, and its first solve took 144 s and 34,787
/// pivots (now about 1,300 pivots in a few seconds). Tried and dropped: entering a
/// part's row only once its weights break it, like the linking rows; more re-solves, and
/// 60 × 800 took 7.8–8.8 s against 5.5–6.4 s.
///
/// Linking rows enter lazily. Most capacity and credit rows never bind, yet every plan has
/// a coefficient in each row of every location that stocks the part, so carrying them all
/// makes the master's columns dense for nothing. A row enters when the master's mix of
/// plans breaks it and then stays. A row left out is a row priced at zero, which keeps the
/// Lagrangian bound valid; the master's value is an upper bound again once its mix breaks
/// no row, which is when [`Master::solve_with_rows`] returns.
struct Master {
    lp: HighsLp,
    /// What the base plans (each part's `columns[p][0]`) use of each linking row together.
    base_use: Vec<f64>,
    /// Per part once it has one: its convexity row in the master.
    convexity: Vec<Option<usize>>,
    /// The part of each master column; `None` for a slack.
    part_of_col: Vec<Option<usize>>,
    /// Per linking row once active: its row and its slack column in the master.
    linking: Vec<Option<(usize, usize)>>,
    rhs: Vec<f64>,
    penalty: Vec<f64>,
}

/// One master solution.
struct MasterSolution {
    /// Objective, base plans included.
    value: f64,
    /// Slack of each linking row (zero when inactive).
    slack: Vec<f64>,
    /// Price of each linking row (≥ 0; zero when inactive).
    pi: Vec<f64>,
    /// Dual of each part's convexity constraint, in the undifferenced form Σ λ = 1: the
    /// priced value a new plan must beat.
    sigma: Vec<f64>,
}

impl Master {
    /// A master over the parts' base plans (`columns[p][0]`, which get no column).
    fn new(columns: &[Vec<Column>], links: &LinkRows, penalty: Vec<f64>) -> Master {
        let mut base_use = vec![0.0; links.len()];
        for cols in columns {
            for &(r, u) in &cols[0].usage {
                base_use[r] += u;
            }
        }
        let mut lp = HighsLp::new();
        // Dual simplex for every solve, also after plans were added: a new plan priced
        // below zero is a boxed column, which the dual simplex flips to its upper bound and
        // then repairs the rows it breaks. Measured at 200 × 5,000 (`--time-limit 25`):
        // 18 rounds, 11 % gap, against 12 rounds and 30 % with the primal simplex for those
        // solves.
        lp.set_simplex_strategy(1);
        Master {
            lp,
            convexity: vec![None; columns.len()],
            base_use,
            part_of_col: Vec::new(),
            linking: vec![None; links.len()],
            rhs: links.rows.iter().map(|r| r.rhs).collect(),
            penalty,
        }
    }

    fn active_rows(&self) -> usize {
        self.linking.iter().filter(|r| r.is_some()).count()
    }

    /// Adds a plan of part `p`, whose base plan is `base`; returns its position among the
    /// master's columns.
    fn add(&mut self, p: usize, plan: &Column, base: &Column) -> usize {
        let mut entries: Vec<(usize, f64)> =
            difference(&plan.usage, &base.usage, |r| self.linking[r].is_some())
                .into_iter()
                .filter_map(|(r, u)| self.linking[r].map(|(row, _)| (row, u)))
                .collect();
        entries.extend(self.convexity[p].map(|row| (row, 1.0)));
        self.part_of_col.push(Some(p));
        self.lp.add_cols(&[(plan.cost - base.cost, entries)], 1.0)
    }

    /// Adds the convexity rows Σ μ ≤ 1 of `parts` over their plans in `columns`, in one call.
    fn add_convexity_rows(&mut self, parts: &[usize], columns: &[Vec<Column>]) {
        let rows: Vec<NewRow> = parts
            .iter()
            .map(|&p| NewRow {
                lower: f64::NEG_INFINITY,
                upper: 1.0,
                entries: columns[p]
                    .iter()
                    .filter_map(|c| c.col)
                    .map(|j| (j, 1.0))
                    .collect(),
            })
            .collect();
        let first = self.lp.add_rows(&rows);
        for (i, &p) in parts.iter().enumerate() {
            self.convexity[p] = Some(first + i);
        }
    }

    /// Inactive rows that the plans at their current weights break.
    fn broken_rows(&self, columns: &[Vec<Column>]) -> Vec<usize> {
        let mut used = vec![0.0; self.rhs.len()];
        for c in columns.iter().flatten().filter(|c| c.weight > 1e-12) {
            for &(r, u) in &c.usage {
                used[r] += c.weight * u;
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
        for cols in columns {
            for c in cols {
                let Some(col) = c.col else { continue };
                for (r, u) in difference(&c.usage, &cols[0].usage, |r| wanted[r]) {
                    entries[r].push((col, u));
                }
            }
        }
        let new_rows: Vec<NewRow> = rows
            .iter()
            .map(|&r| NewRow {
                lower: f64::NEG_INFINITY,
                upper: self.rhs[r] - self.base_use[r],
                entries: std::mem::take(&mut entries[r]),
            })
            .collect();
        let first_row = self.lp.add_rows(&new_rows);
        let slacks: Vec<(f64, Vec<(usize, f64)>)> = (0..rows.len())
            .map(|i| (self.penalty[rows[i]], vec![(first_row + i, -1.0)]))
            .collect();
        let first_slack = self.lp.add_cols(&slacks, f64::INFINITY);
        self.part_of_col.resize(self.lp.num_cols(), None);
        for (i, &r) in rows.iter().enumerate() {
            self.linking[r] = Some((first_row + i, first_slack + i));
        }
    }

    /// Deletes the columns marked in `delete`; returns each old column's new position.
    fn delete(&mut self, delete: &[bool]) -> Vec<Option<usize>> {
        let moved = self.lp.delete_cols(delete);
        for (_, slack) in self.linking.iter_mut().flatten() {
            *slack = moved[*slack].unwrap_or(*slack);
        }
        let mut kept = moved.iter();
        self.part_of_col
            .retain(|_| kept.next().is_some_and(Option::is_some));
        moved
    }

    /// Adds the convexity rows of parts that now have a second plan; solves the master,
    /// adding every linking row its mix breaks and solving again until none; records each
    /// plan's weight.
    fn solve_with_rows(&mut self, columns: &mut [Vec<Column>]) -> Result<MasterSolution, Fail> {
        let second_plans: Vec<usize> = (0..columns.len())
            .filter(|&p| self.convexity[p].is_none())
            .filter(|&p| columns[p].iter().filter(|c| c.col.is_some()).count() > 1)
            .collect();
        self.add_convexity_rows(&second_plans, columns);
        loop {
            let (sol, lambda) = self.solve(columns)?;
            for cols in columns.iter_mut() {
                let mut others = 0.0;
                for c in cols.iter_mut().skip(1) {
                    c.weight = c.col.and_then(|j| lambda.get(j)).copied().unwrap_or(0.0);
                    others += c.weight;
                }
                cols[0].weight = (1.0 - others).max(0.0);
            }
            let broken = self.broken_rows(columns);
            if broken.is_empty() {
                return Ok(sol);
            }
            self.activate(&broken, columns);
        }
    }

    /// Solves the master; also returns the value of every master column.
    ///
    /// The first solve starts from HiGHS's logical basis: every part at its base plan,
    /// which is dual feasible (a base plan is its part's cheapest). Tried and dropped (with
    /// one convexity row per part): starting from each part's unpriced plan as a basis of
    /// structurals halves the first solve's pivots at 60 × 800 (1,084 → 505) but not its
    /// time, and at 500 × 20,000 it had not finished after 8.5 min against 3.5 min from
    /// the logical basis: for such a basis HiGHS first computes exact steepest-edge weights.
    fn solve(&mut self, columns: &[Vec<Column>]) -> Result<(MasterSolution, Vec<f64>), Fail> {
        let solved = self
            .lp
            .solve()
            .map_err(|e| Fail::Solver(format!("master: {e}")))?;
        tracing::debug!(
            columns = self.lp.num_cols(),
            rows = self.active_rows(),
            convexity_rows = self.convexity.iter().flatten().count(),
            iterations = solved.iterations,
            "decomposition master solved"
        );
        let duals = &solved.row_duals;
        let mut pi = vec![0.0; self.rhs.len()];
        let mut slack = vec![0.0; self.rhs.len()];
        for (r, active) in self.linking.iter().enumerate() {
            if let Some((row, s)) = active {
                // A ≤ row's dual is ≤ 0 in a minimisation: one more unit saves −dual.
                pi[r] = (-duals[*row]).max(0.0);
                slack[r] = solved.columns[*s];
            }
        }
        let sigma = self.sigma(&solved, &pi, columns);
        let value = solved.objective + columns.iter().map(|cols| cols[0].cost).sum::<f64>();
        let sol = MasterSolution {
            value,
            slack,
            pi,
            sigma,
        };
        Ok((sol, solved.columns))
    }

    /// σ_p = (c + π·a)(base plan) + y_p, where y_p ≤ 0 is the dual of the part's Σ μ ≤ 1:
    /// its row's dual, or for a part with one column and no row, that column's reduced cost
    /// when it sits at its upper bound.
    fn sigma(&self, solved: &LpSolution, pi: &[f64], columns: &[Vec<Column>]) -> Vec<f64> {
        let mut y: Vec<f64> = self
            .convexity
            .iter()
            .map(|row| row.map_or(0.0, |r| solved.row_duals[r]))
            .collect();
        for (j, part) in self.part_of_col.iter().enumerate() {
            if let Some(p) = *part {
                if self.convexity[p].is_none() {
                    y[p] = y[p].min(solved.col_duals[j]);
                }
            }
        }
        columns
            .iter()
            .zip(y)
            .map(|(cols, y)| {
                let base = &cols[0];
                base.cost + base.usage.iter().map(|&(r, u)| pi[r] * u).sum::<f64>() + y
            })
            .collect()
    }
}

/// `usage − base` on the rows that `keep` selects, merged per row, nonzeros only.
fn difference(
    usage: &[(usize, f64)],
    base: &[(usize, f64)],
    keep: impl Fn(usize) -> bool,
) -> Vec<(usize, f64)> {
    let mut terms: Vec<(usize, f64)> = usage
        .iter()
        .copied()
        .chain(base.iter().map(|&(r, u)| (r, -u)))
        .filter(|&(r, _)| keep(r))
        .collect();
    terms.sort_unstable_by_key(|&(r, _)| r);
    let mut merged: Vec<(usize, f64)> = Vec::with_capacity(terms.len());
    for (r, u) in terms {
        match merged.last_mut() {
            Some((last, sum)) if *last == r => *sum += u,
            _ => merged.push((r, u)),
        }
    }
    merged.retain(|(_, u)| u.abs() > 1e-12);
    merged
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Plan (row 0: 3, row 2: 1, row 2: 1) against base (row 0: 3, row 1: 2): row 0 cancels,
    /// row 1 is −2, row 2 merges to 2; keeping rows ≥ 1 drops nothing else.
    #[test]
    fn difference_merges_rows_and_drops_zeros() {
        let plan = [(0, 3.0), (2, 1.0), (2, 1.0)];
        let base = [(0, 3.0), (1, 2.0)];
        assert_eq!(
            difference(&plan, &base, |_| true),
            vec![(1, -2.0), (2, 2.0)]
        );
        assert_eq!(difference(&plan, &base, |r| r != 1), vec![(2, 2.0)]);
    }
}
