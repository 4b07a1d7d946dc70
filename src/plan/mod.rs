//! Replenishment and prepositioning planner (DESIGN §6): plain synchronous code.
//!
//! ```text
//! let model = PlanModel::from_toml(&std::fs::read_to_string("models/monthly-replenishment.toml")?)?;
//! let instance = Instance { parts, locations, lanes, stock, demand };   // glue fills it
//! let result: PlanResult = plan::solve(&model, &instance);               // never panics on input
//! let report = plan::simulate(&model, &instance, &realised, &Policy::Plan(&result_flows));
//! ```
//!
//! Layers: [`stochastic`] turns forecast-error spread and service targets into safety-stock
//! targets; [`prepare`] makes the stocking decision and per-part blocks; [`lp`] writes the
//! LP; [`decompose`] solves large instances by Dantzig–Wolfe over parts; [`repair`] rounds
//! and checks; [`result`] writes proposals with reasons; [`simulate`] replays realised
//! demand against the plan and against a min/max baseline.

pub mod blockflow;
pub mod compare;
pub mod decompose;
mod highs_lp;
pub mod instance;
pub mod lp;
pub mod model;
pub mod netsimplex;
pub mod prepare;
pub mod repair;
pub mod result;
pub mod simulate;
pub mod stochastic;
pub mod synthetic;

#[cfg(test)]
mod tests;

use std::time::Instant;

use rayon::prelude::*;

pub use compare::{compare, Comparison, Outcome, Point};
pub use instance::{Demand, Instance, Lane, LaneId, LocId, Location, Part, PartId, Stock};
pub use lp::{Costs, Family, Flows};
pub use model::{Method, ModelError, PlanModel, Tier};
pub use result::{Binding, Kpis, PlanResult, PlanStatus, Purchase, Reason, Transfer};
pub use simulate::{simulate, Policy, Realised, SimReport};

use lp::{Fail, Finish, LinkRows, Mode};
use prepare::Block;

/// Errors of the planner's input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("bad instance: {0}")]
    BadInstance(String),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A solved plan in the planner's own terms, for [`simulate`] and the tests.
pub struct Solution {
    pub result: PlanResult,
    pub blocks: Vec<Block>,
    pub links: LinkRows,
    /// Per-part flows as written out (empty when there is no plan).
    pub flows: Vec<Flows>,
}

/// Plans `inst` under `model`. Infeasible or failed runs come back as data, with no
/// proposals and a reason naming the constraint family.
pub fn solve(model: &PlanModel, inst: &Instance) -> PlanResult {
    solve_full(model, inst).result
}

/// Like [`solve`], also returning the per-part plan.
pub fn solve_full(model: &PlanModel, inst: &Instance) -> Solution {
    let started = Instant::now();
    let empty = |result| Solution {
        result,
        blocks: Vec::new(),
        links: LinkRows::default(),
        flows: Vec::new(),
    };
    if let Err(e) = inst.validate(model.periods) {
        return empty(PlanResult::without_plan(
            model,
            PlanStatus::Failed,
            e.to_string(),
        ));
    }
    let blocks = prepare::blocks(model, inst);
    let links = LinkRows::new(model, inst, &[]);
    let columns: usize = blocks.iter().map(Block::columns).sum();
    let prep_ms = lp::ms(started);
    let use_dw = match model.solver.method {
        Method::Monolith => false,
        Method::DantzigWolfe => true,
        Method::Auto => columns > model.solver.monolith_max_columns,
    };
    let outcome = if use_dw {
        dantzig_wolfe(model, &blocks, &links)
    } else {
        monolith(model, &blocks, &links)
    };
    let mut result = match outcome {
        Ok(raw) => finish(model, inst, &blocks, &links, raw),
        Err(no_plan) => {
            let mut r = PlanResult::without_plan(model, no_plan.status, no_plan.reason);
            r.infeasible_families = no_plan.families;
            (r, Vec::new())
        }
    };
    result.0.method = if use_dw { "dantzig_wolfe" } else { "monolith" };
    result.0.columns = columns;
    result.0.build_ms += prep_ms;
    Solution {
        result: result.0,
        blocks,
        links,
        flows: result.1,
    }
}

/// A plan before rounding.
struct Raw {
    flows: Vec<Flows>,
    shadow: Vec<f64>,
    finish: Finish,
    relaxation: f64,
    lower_bound: f64,
    integral: bool,
    duals_from: &'static str,
    build_ms: f64,
    solve_ms: f64,
    iterations: usize,
    profile: Option<decompose::Profile>,
}

struct NoPlan {
    status: PlanStatus,
    reason: String,
    families: Vec<Family>,
}

fn total(blocks: &[Block], flows: &[Flows]) -> f64 {
    blocks
        .iter()
        .zip(flows)
        .map(|(b, f)| lp::costs(b, f).total())
        .sum()
}

fn monolith(model: &PlanModel, blocks: &[Block], links: &LinkRows) -> Result<Raw, NoPlan> {
    let lp_modes = vec![Mode::Lp; blocks.len()];
    let relaxed = lp::monolith(model, blocks, links, &lp_modes)
        .map_err(|f| no_plan(model, blocks, links, f))?;
    let relaxation = total(blocks, &relaxed.flows);
    if !model.solver.integer {
        return Ok(Raw {
            relaxation,
            lower_bound: relaxation,
            integral: false,
            duals_from: "LP",
            build_ms: relaxed.build_ms,
            solve_ms: relaxed.solve_ms,
            iterations: 1,
            profile: None,
            finish: relaxed.finish,
            shadow: relaxed.shadow,
            flows: relaxed.flows,
        });
    }
    let int_modes = vec![Mode::Integer; blocks.len()];
    let mip = lp::monolith(model, blocks, links, &int_modes)
        .map_err(|f| no_plan(model, blocks, links, f))?;
    let rounded: Vec<Flows> = blocks
        .iter()
        .zip(&mip.flows)
        .map(|(b, f)| repair::round(b, f, true))
        .collect();
    // Duals of the LP with every integer decision fixed at the MIP's values.
    let fixed: Vec<Mode> = rounded.iter().map(Mode::Fixed).collect();
    let shadow = lp::monolith(model, blocks, links, &fixed)
        .map_or_else(|_| vec![0.0; links.len()], |s| s.shadow);
    Ok(Raw {
        relaxation,
        lower_bound: relaxation,
        integral: true,
        duals_from: "LP at fixed integer decisions",
        build_ms: relaxed.build_ms + mip.build_ms,
        solve_ms: relaxed.solve_ms + mip.solve_ms,
        iterations: 1,
        profile: None,
        finish: mip.finish,
        shadow,
        flows: rounded,
    })
}

fn dantzig_wolfe(model: &PlanModel, blocks: &[Block], links: &LinkRows) -> Result<Raw, NoPlan> {
    let mut dw = decompose::solve(model, blocks, links).map_err(|e| match e {
        decompose::DwFail::Infeasible(families) => infeasible(families),
        decompose::DwFail::Other(f) => no_plan(model, blocks, links, f),
    })?;
    if dw.breaks_links {
        // Stopped at a limit in a round whose mix still leans on slack: cut stock until
        // the rows hold, so the relaxation below (and the gap against the bound) is that
        // of a plan that keeps every constraint.
        tracing::info!(finish = ?dw.finish, "decomposition stopped on linking-row slack: repairing the mix");
        repair::restore_links(blocks, links, &mut dw.flows, false);
    }
    let relaxation = total(blocks, &dw.flows);
    let (flows, integral, duals_from) = if model.solver.integer {
        // The integer layer per part at the decomposition's prices (DESIGN §6).
        let flows: Vec<Flows> = blocks
            .par_iter()
            .zip(&dw.flows)
            .map(|(b, lp_flows)| {
                let prices = lp::Prices::for_block(links, b, &dw.shadow);
                lp::solve_block(model, b, Some(&prices), Mode::Integer)
                    .map_or_else(|_| lp_flows.clone(), |(f, _)| f)
            })
            .collect();
        (flows, true, "decomposition prices (LP relaxation)")
    } else {
        (dw.flows, false, "decomposition prices (master LP duals)")
    };
    Ok(Raw {
        flows,
        shadow: dw.shadow,
        finish: dw.finish,
        relaxation,
        lower_bound: dw.lower_bound,
        integral,
        duals_from,
        build_ms: dw.build_ms,
        solve_ms: dw.solve_ms,
        iterations: dw.iterations,
        profile: Some(dw.profile),
    })
}

fn infeasible(families: Vec<Family>) -> NoPlan {
    let names: Vec<&str> = families.iter().map(|f| f.as_str()).collect();
    NoPlan {
        status: PlanStatus::Infeasible,
        reason: format!(
            "infeasible: the {} constraints cannot all hold",
            names.join(" + ")
        ),
        families,
    }
}

fn no_plan(model: &PlanModel, blocks: &[Block], links: &LinkRows, fail: Fail) -> NoPlan {
    match fail {
        Fail::Infeasible => infeasible(diagnose(model, blocks, links)),
        Fail::TimeLimitNoSolution => NoPlan {
            status: PlanStatus::Failed,
            reason: format!(
                "no feasible plan found within {} s",
                model.solver.time_limit_s
            ),
            families: Vec::new(),
        },
        Fail::Solver(why) => NoPlan {
            status: PlanStatus::Failed,
            reason: format!("solver failed: {why}"),
            families: Vec::new(),
        },
    }
}

/// Which families make the model infeasible: re-solve the LP with each one relaxed; those
/// whose relaxation restores feasibility are named (all present ones if none alone does).
fn diagnose(model: &PlanModel, blocks: &[Block], links: &LinkRows) -> Vec<Family> {
    let present: Vec<Family> = {
        let mut f: Vec<Family> = links.rows.iter().map(|r| r.family).collect();
        if blocks
            .iter()
            .any(|b| b.max_short.iter().any(Option::is_some))
        {
            f.push(Family::HardService);
        }
        f.sort();
        f.dedup();
        f
    };
    let feasible_without = |family: Family| {
        let mut relaxed_links = links.clone();
        let mut relaxed_blocks = blocks.to_vec();
        if family == Family::HardService {
            relaxed_blocks
                .iter_mut()
                .for_each(|b| b.max_short.iter_mut().for_each(|m| *m = None));
        } else {
            relaxed_links
                .rows
                .iter_mut()
                .filter(|r| r.family == family)
                .for_each(|r| r.rhs = f64::MAX / 4.0);
        }
        let modes = vec![Mode::Lp; blocks.len()];
        lp::monolith(model, &relaxed_blocks, &relaxed_links, &modes).is_ok()
    };
    let named: Vec<Family> = present
        .iter()
        .copied()
        .filter(|f| feasible_without(*f))
        .collect();
    if named.is_empty() {
        present
    } else {
        named
    }
}

fn finish(
    model: &PlanModel,
    inst: &Instance,
    blocks: &[Block],
    links: &LinkRows,
    raw: Raw,
) -> (PlanResult, Vec<Flows>) {
    let mut flows: Vec<Flows> = blocks
        .par_iter()
        .zip(&raw.flows)
        .map(|(b, f)| repair::round(b, f, raw.integral))
        .collect();
    repair::restore_links(blocks, links, &mut flows, raw.integral);
    let violations = repair::check(model, blocks, links, &flows, raw.integral);
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().take(3).map(|v| v.what.clone()).collect();
        let r = PlanResult::without_plan(
            model,
            PlanStatus::Failed,
            format!("rounded plan breaks constraints: {}", list.join("; ")),
        );
        return (r, Vec::new());
    }
    let writer = result::Writer {
        model,
        inst,
        blocks,
        links,
        flows: &flows,
        shadow: &raw.shadow,
    };
    let kpis = writer.kpis();
    let objective = kpis.costs.total();
    let status = match raw.finish {
        Finish::Optimal => PlanStatus::Optimal,
        Finish::TimeLimit => PlanStatus::TimeLimit,
        Finish::RoundLimit => PlanStatus::RoundLimit,
    };
    let result = PlanResult {
        model: model.name.clone(),
        status,
        reason: None,
        infeasible_families: Vec::new(),
        method: "",
        objective: Some(objective),
        relaxation: Some(raw.relaxation),
        // Integer mode: the written plan against the LP bound. LP mode: how far the
        // relaxation is from its certified bound (0 for the monolith); rounding loss is
        // `objective − relaxation`.
        gap: Some(if raw.integral {
            (objective - raw.lower_bound).max(0.0) / objective.abs().max(1.0)
        } else {
            (raw.relaxation - raw.lower_bound).max(0.0) / raw.relaxation.abs().max(1.0)
        }),
        duals_from: raw.duals_from,
        build_ms: raw.build_ms,
        solve_ms: raw.solve_ms,
        iterations: raw.iterations,
        columns: 0,
        dw_profile: raw.profile,
        binding: writer.bindings(),
        purchases: writer.purchases(),
        transfers: writer.transfers(),
        kpis: Some(kpis),
    };
    (result, flows)
}
