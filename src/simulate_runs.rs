//! `simulate`: the plan against the min/max baseline, replayed against the generator's
//! ground truth (issue 3).
//!
//! The truth directory written by `generate --truth` holds the expected demand per part ×
//! station × month (`true_demand.csv`) and, per part, the mean lot size of a failure event
//! (`true_rates.csv`). Realised demand is drawn the way the generator draws faults: events
//! per (part, station, month) are Poisson(expected / lot) — a sum of the per-machine
//! Poisson events — and each event takes `1 + Poisson(lot − 1)` units. Several seeded draws
//! are replayed so the figures do not hang on one year's luck.

use std::collections::HashMap;
use std::path::Path;

use chrono::Datelike;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use serde::Deserialize;

use crate::db::Db;
use crate::plan::{self, Comparison, Instance, LocId, PartId, PlanModel, Realised};
use crate::plan_runs::{self, PlanRunError};

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("cannot read {path}: {why}")]
    Truth { path: String, why: String },
    #[error("{path}:{line}: {why}")]
    BadRow {
        path: String,
        line: u64,
        why: String,
    },
    #[error("the truth has no demand in the plan's horizon ({from} on): generate it with --future-months")]
    NoFuture { from: String },
    #[error("service targets must lie strictly between 0 and 1 (got {0})")]
    BadTarget(f64),
    #[error(transparent)]
    Plan(#[from] PlanRunError),
    #[error("the simulation task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Deserialize)]
struct DemandRow {
    part_code: String,
    station_code: String,
    month: String,
    expected_demand: f64,
}

#[derive(Deserialize)]
struct RateRow {
    part_code: String,
    lot_mean: Option<f64>,
}

/// Expected demand per (part, station) over the model's periods, and each part's lot size.
pub struct Truth {
    pub expected: Vec<(PartId, LocId, Vec<f64>)>,
    pub lot: Vec<f64>,
    /// Truth rows for parts or stations the instance does not know (e.g. superseded codes).
    pub unmatched_rows: usize,
}

fn truth_err(path: &Path, why: impl ToString) -> SimulateError {
    SimulateError::Truth {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// Reads the truth for `inst` over `model`'s horizon.
pub fn read_truth(dir: &Path, model: &PlanModel, inst: &Instance) -> Result<Truth, SimulateError> {
    let part_ix: HashMap<&str, PartId> = inst
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.code.as_str(), PartId(i as u32)))
        .collect();
    let loc_ix: HashMap<&str, LocId> = inst
        .locations
        .iter()
        .enumerate()
        .map(|(i, l)| (l.code.as_str(), LocId(i as u32)))
        .collect();
    let mut lot = vec![1.0; inst.parts.len()];
    let rates = dir.join("true_rates.csv");
    if rates.exists() {
        let mut reader = csv::Reader::from_path(&rates).map_err(|e| truth_err(&rates, e))?;
        for (i, row) in reader.deserialize::<RateRow>().enumerate() {
            let row = row.map_err(|e| SimulateError::BadRow {
                path: rates.display().to_string(),
                line: i as u64 + 2,
                why: e.to_string(),
            })?;
            if let (Some(p), Some(l)) = (part_ix.get(row.part_code.as_str()), row.lot_mean) {
                if l.is_finite() && l >= 1.0 {
                    lot[p.ix()] = l;
                }
            }
        }
    }
    let path = dir.join("true_demand.csv");
    let mut reader = csv::Reader::from_path(&path).map_err(|e| truth_err(&path, e))?;
    let start = (model.start.year(), model.start.month());
    let mut cells: HashMap<(PartId, LocId), Vec<f64>> = HashMap::new();
    let mut unmatched_rows = 0;
    for (i, row) in reader.deserialize::<DemandRow>().enumerate() {
        let line = i as u64 + 2;
        let bad = |why: String| SimulateError::BadRow {
            path: path.display().to_string(),
            line,
            why,
        };
        let row = row.map_err(|e| bad(e.to_string()))?;
        let (y, m) = row
            .month
            .split_once('-')
            .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)))
            .ok_or_else(|| bad(format!("month `{}` is not YYYY-MM", row.month)))?;
        let t = (y - start.0) * 12 + m as i32 - start.1 as i32;
        let Ok(t) = usize::try_from(t) else { continue };
        if t >= model.periods {
            continue;
        }
        if !(row.expected_demand.is_finite() && row.expected_demand >= 0.0) {
            return Err(bad("expected_demand must be a non-negative number".into()));
        }
        let (Some(&p), Some(&s)) = (
            part_ix.get(row.part_code.as_str()),
            loc_ix.get(row.station_code.as_str()),
        ) else {
            unmatched_rows += 1;
            continue;
        };
        cells
            .entry((p, s))
            .or_insert_with(|| vec![0.0; model.periods])[t] += row.expected_demand;
    }
    if cells.is_empty() {
        return Err(SimulateError::NoFuture {
            from: model.start.format("%Y-%m").to_string(),
        });
    }
    let mut expected: Vec<(PartId, LocId, Vec<f64>)> =
        cells.into_iter().map(|((p, s), v)| (p, s, v)).collect();
    expected.sort_by_key(|(p, s, _)| (*p, *s));
    Ok(Truth {
        expected,
        lot,
        unmatched_rows,
    })
}

/// `draws` independent realisations of the truth, deterministic by `seed`.
pub fn draw(truth: &Truth, draws: usize, seed: u64) -> Vec<Vec<Realised>> {
    (0..draws)
        .map(|k| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(k as u64));
            truth
                .expected
                .iter()
                .map(|(p, s, mean)| {
                    let lot = truth.lot[p.ix()];
                    let qty = mean
                        .iter()
                        .map(|&m| {
                            let events = poisson(&mut rng, m / lot);
                            (0..events)
                                .map(|_| 1.0 + poisson(&mut rng, lot - 1.0) as f64)
                                .sum()
                        })
                        .collect();
                    Realised {
                        part: *p,
                        station: *s,
                        qty,
                    }
                })
                .collect()
        })
        .collect()
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |d| d.sample(rng) as u64)
}

/// What `simulate` asks for.
pub struct SimulateOptions<'a> {
    pub truth_dir: &'a Path,
    pub targets: Vec<f64>,
    pub draws: usize,
    pub seed: u64,
}

/// Plans at each target against the newest forecast run and replays plan and baseline
/// against draws of the truth.
pub async fn run(
    db: &Db,
    model: PlanModel,
    options: &SimulateOptions<'_>,
) -> Result<(Comparison, Truth), SimulateError> {
    if let Some(&bad) = options.targets.iter().find(|t| !(**t > 0.0 && **t < 1.0)) {
        return Err(SimulateError::BadTarget(bad));
    }
    let (model, instance) = plan_runs::instance_for(db, model, None).await?;
    let truth = read_truth(options.truth_dir, &model, &instance)?;
    let draws = draw(&truth, options.draws.max(1), options.seed);
    let targets = options.targets.clone();
    let comparison =
        tokio::task::spawn_blocking(move || plan::compare(&model, &instance, &draws, &targets))
            .await?;
    Ok((comparison, truth))
}
