//! Plan runs against the database: build the planner's instance from stock, prices, lanes,
//! credit and a stored forecast run; solve off the async runtime; write the run record and
//! its proposals all at once.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{NaiveDate, Utc};

use crate::catalog::{Criticality, PartCode};
use crate::db::{Db, DbError};
use crate::forecast_runs::{self, ForecastRunError, StoredForecast};
use crate::interchange::bulk::{BulkInsert, Val};
use crate::network::LocationKind;
use crate::plan::{
    self, Demand, Instance, Lane, LocId, Location, Part, PartId, PlanModel, PlanResult, PlanStatus,
    Stock,
};
use crate::units::Amount;
use crate::{sql_execute, sql_fetch_all, sql_fetch_optional};

#[derive(Debug, thiserror::Error)]
pub enum PlanRunError {
    #[error("cannot read planning model {path}: {source}")]
    ModelFile {
        path: String,
        source: std::io::Error,
    },
    #[error("planning model {path}: {source}")]
    Model {
        path: String,
        source: plan::ModelError,
    },
    #[error("no forecast run stored yet: run `spareplan forecast` first")]
    NoForecast,
    #[error("the network has no central warehouse to receive purchases")]
    NoCentral,
    #[error(transparent)]
    Forecast(#[from] ForecastRunError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the planner task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("plan run {run} is running (since {since}): one plan run at a time; try again when it has finished")]
    Busy {
        run: i64,
        since: chrono::DateTime<Utc>,
    },
    #[error("plan run {0} was marked failed while it ran (no heartbeat reached the database); its plan is not stored")]
    TakenOver(i64),
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
}

impl From<sqlx::Error> for PlanRunError {
    fn from(e: sqlx::Error) -> Self {
        PlanRunError::Db(DbError::Sqlx(e))
    }
}

/// Reads and checks a planning model file.
pub fn read_model(path: &Path) -> Result<(PlanModel, String), PlanRunError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| PlanRunError::ModelFile {
        path: shown.clone(),
        source,
    })?;
    let model = PlanModel::from_toml(&text).map_err(|source| PlanRunError::Model {
        path: shown,
        source,
    })?;
    Ok((model, text))
}

/// A finished run: its id and what the planner returned.
pub struct StoredPlan {
    pub id: i64,
    pub result: PlanResult,
    pub proposals: usize,
}

/// Plans against `forecast` (the newest stored run when `None`): the model's horizon starts
/// at the forecast's first month. The run record is written first (running), then the
/// outcome and every proposal in one transaction; a failed or infeasible run writes no
/// proposals and keeps why.
pub async fn run_and_store(
    db: &Db,
    model: PlanModel,
    model_text: &str,
    forecast: Option<&StoredForecast>,
) -> Result<StoredPlan, PlanRunError> {
    let loaded;
    let forecast = match forecast {
        Some(f) => f,
        None => {
            loaded = newest_forecast(db).await?;
            &loaded
        }
    };
    let (model, instance, snapshot) = prepare(db, model, forecast).await?;
    let run_id = start_run(db, &model, model_text, forecast.id).await?;
    let heartbeat = tokio::spawn(beat(db.clone(), run_id));
    let solved = tokio::task::spawn_blocking(move || plan::solve(&model, &instance)).await;
    heartbeat.abort();
    let stored = match solved {
        Ok(result) => finish_run(db, run_id, &result, &snapshot)
            .await
            .map(|proposals| (result, proposals)),
        Err(e) => Err(PlanRunError::Task(e)),
    };
    match stored {
        Ok((result, proposals)) => Ok(StoredPlan {
            id: run_id,
            result,
            proposals,
        }),
        Err(e) => {
            // The run row must not stay 'running': that would hold the one-run lock.
            fail_run(db, run_id, &e.to_string()).await;
            Err(e)
        }
    }
}

/// How often a running plan run shows it is alive, and how long a silent one is trusted.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);
const STALE_AFTER_S: i64 = 60;

async fn beat(db: Db, run_id: i64) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        if let Ok(mut conn) = db.acquire().await {
            let _ = sql_execute!(
                conn.conn(),
                "update plan_runs set heartbeat_at = $2 where id = $1 and status = 'running'",
                run_id,
                Utc::now()
            );
        }
    }
}

/// Marks a run failed with why (best effort: the error that got here is reported anyway).
async fn fail_run(db: &Db, run_id: i64, why: &str) {
    let Ok(mut conn) = db.acquire().await else {
        return;
    };
    let outcome = sql_execute!(
        conn.conn(),
        "update plan_runs set status = 'failed', failure = $2, finished_at = $3
         where id = $1 and status = 'running'",
        run_id,
        why,
        Utc::now()
    );
    if let Err(e) = outcome {
        tracing::error!(run_id, error = %e, "could not mark the plan run failed");
    }
}

async fn newest_forecast(db: &Db) -> Result<StoredForecast, PlanRunError> {
    let id = forecast_runs::latest_id(db)
        .await?
        .ok_or(PlanRunError::NoForecast)?;
    Ok(forecast_runs::load(db, id).await?)
}

/// The planner's instance for `forecast` (the newest stored run when `None`), with the
/// model's horizon moved to start at the forecast's first month and cut to its horizon.
pub async fn instance_for(
    db: &Db,
    model: PlanModel,
    forecast: Option<&StoredForecast>,
) -> Result<(PlanModel, Instance), PlanRunError> {
    let loaded;
    let forecast = match forecast {
        Some(f) => f,
        None => {
            loaded = newest_forecast(db).await?;
            &loaded
        }
    };
    let (model, instance, _) = prepare(db, model, forecast).await?;
    Ok((model, instance))
}

async fn prepare(
    db: &Db,
    mut model: PlanModel,
    forecast: &StoredForecast,
) -> Result<(PlanModel, Instance, Snapshot), PlanRunError> {
    let origin = forecast.origin;
    model.start = NaiveDate::from_ymd_opt(origin.year(), origin.month(), 1).unwrap_or(model.start);
    model.periods = model.periods.min(forecast.run.horizon);
    let horizon = Horizon {
        start: model.start,
        period: model.period,
        periods: model.periods,
    };
    let snapshot = Snapshot::load(db, horizon, false).await?;
    let instance = snapshot.instance(&model, forecast)?;
    Ok((model, instance, snapshot))
}

/// The plan's periods, to place the pipeline's arrivals in.
#[derive(Debug, Clone, Copy)]
struct Horizon {
    start: NaiveDate,
    period: plan::model::PeriodLength,
    periods: usize,
}

/// Stock per (part, location): on hand less reserved from the balances, and the pipeline
/// from the open lines alone, each at the period its expected arrival falls in (an overdue
/// line in the first). Balances' on-order and in-transit buckets are not read: they are
/// the same lines summed, without dates.
async fn stock_rows(
    mut conn: crate::db::Conn<'_>,
    part_index: &HashMap<i64, PartId>,
    loc_index: &HashMap<i64, LocId>,
    horizon: Horizon,
) -> Result<Vec<Stock>, PlanRunError> {
    let mut by_pair: HashMap<(PartId, LocId), Stock> = HashMap::new();
    let balances = sql_fetch_all!(
        (i64, i64, i64, i64),
        conn.reborrow(),
        "select part_id, location_id, on_hand, reserved from stock_balance where on_hand > 0"
    )?;
    for (part, loc, on_hand, reserved) in balances {
        let (Some(&part), Some(&location)) = (part_index.get(&part), loc_index.get(&loc)) else {
            continue;
        };
        by_pair.insert(
            (part, location),
            Stock {
                part,
                location,
                on_hand: (on_hand - reserved).max(0) as f64,
                pipeline: Vec::new(),
            },
        );
    }
    for line in crate::pipeline::open_lines(conn).await? {
        let (Some(&part), Some(&location)) =
            (part_index.get(&line.part_id), loc_index.get(&line.to_id))
        else {
            continue;
        };
        let Some(t) = crate::pipeline::arrival_period(
            line.arrive_on,
            horizon.start,
            horizon.period,
            horizon.periods,
        ) else {
            continue;
        };
        let stock = by_pair.entry((part, location)).or_insert(Stock {
            part,
            location,
            on_hand: 0.0,
            pipeline: Vec::new(),
        });
        if stock.pipeline.len() <= t {
            stock.pipeline.resize(t + 1, 0.0);
        }
        stock.pipeline[t] += line.open as f64;
    }
    let mut stock: Vec<Stock> = by_pair.into_values().collect();
    stock.sort_by_key(|s| (s.part, s.location));
    Ok(stock)
}

/// The whole network as the rolling replay books it: every part with a cost price
/// (superseded ones too), the locations and lanes, the database ids behind the dense
/// indices, and what is available (on hand − reserved) per part and location.
pub struct NetworkSnapshot {
    pub instance: Instance,
    pub part_ids: Vec<i64>,
    pub location_ids: Vec<i64>,
    pub available: Vec<(PartId, LocId, i64)>,
}

pub async fn network_snapshot(db: &Db, as_of: NaiveDate) -> Result<NetworkSnapshot, PlanRunError> {
    let horizon = Horizon {
        start: as_of,
        period: plan::model::PeriodLength::Month,
        periods: 1,
    };
    let snapshot = Snapshot::load(db, horizon, true).await?;
    let available = snapshot
        .stock
        .iter()
        .filter(|s| s.on_hand > 0.0)
        .map(|s| (s.part, s.location, s.on_hand.round() as i64))
        .collect();
    Ok(NetworkSnapshot {
        part_ids: snapshot.parts.iter().map(|(id, _)| *id).collect(),
        location_ids: snapshot.locations.iter().map(|(id, _)| *id).collect(),
        instance: Instance {
            parts: snapshot.parts.into_iter().map(|(_, p)| p).collect(),
            locations: snapshot.locations.into_iter().map(|(_, l)| l).collect(),
            lanes: snapshot.lanes,
            stock: Vec::new(),
            demand: Vec::new(),
        },
        available,
    })
}

/// Database ids behind the planner's dense indices.
struct Snapshot {
    parts: Vec<(i64, Part)>,
    locations: Vec<(i64, Location)>,
    lanes: Vec<Lane>,
    stock: Vec<Stock>,
    suppliers: HashMap<String, i64>,
}

type PartRaw = (
    i64,
    String,
    String,
    String,
    f64,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);
type LocationRaw = (i64, String, String, Option<i64>, f64, Option<i64>);

impl Snapshot {
    /// `every_part`: superseded parts too (the replay books stock under any code).
    async fn load(db: &Db, horizon: Horizon, every_part: bool) -> Result<Snapshot, PlanRunError> {
        let as_of = horizon.start;
        let mut conn = db.acquire().await?;
        // Parts in force on `as_of` (not yet superseded) with the prices then in force.
        let part_rows = sql_fetch_all!(
            PartRaw,
            conn.conn(),
            "select p.id, p.code, p.product_line, p.criticality, p.volume_l, s.code, p.lead_time_days, p.moq, p.pack_size,
                (select x.amount_minor from prices x where x.part_id = p.id and x.kind = 'cost'
                  and x.effective_from <= $1 order by x.effective_from desc limit 1),
                (select x.amount_minor from prices x where x.part_id = p.id and x.kind = 'dealer'
                  and x.effective_from <= $1 order by x.effective_from desc limit 1)
             from parts p join suppliers s on s.id = p.supplier_id
             where $2 = 1 or p.replaced_by_id is null or p.replaced_on > $1
             order by p.id",
            as_of,
            i64::from(every_part)
        )?;
        let location_rows = sql_fetch_all!(
            LocationRaw,
            conn.conn(),
            "select l.id, l.code, l.kind, l.parent_id, l.capacity_m3, c.limit_minor
             from locations l left join credit_accounts c on c.station_id = l.id order by l.id"
        )?;
        let loc_index: HashMap<i64, LocId> = location_rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0, LocId(i as u32)))
            .collect();
        let central = location_rows
            .iter()
            .position(|r| r.2 == "central")
            .map(|i| LocId(i as u32))
            .ok_or(PlanRunError::NoCentral)?;
        let locations = location_rows
            .into_iter()
            .map(|(id, code, kind, parent, capacity, limit)| {
                let kind = match kind.as_str() {
                    "central" => LocationKind::Central,
                    "regional" => LocationKind::Regional,
                    _ => LocationKind::Station,
                };
                let location = Location {
                    code,
                    kind,
                    parent: parent.and_then(|p| loc_index.get(&p).copied()),
                    capacity_m3: Some(capacity),
                    // Exposure from earlier advances is not tracked yet: the headroom is the limit.
                    credit_headroom: limit.map(Amount::from_minor),
                };
                (id, location)
            })
            .collect();
        let parts: Vec<(i64, Part)> = part_rows
            .into_iter()
            .filter_map(
                |(id, code, line, crit, volume_l, supplier, lead, moq, pack, cost, dealer)| {
                    let criticality = match crit.as_str() {
                        "A" => Criticality::A,
                        "B" => Criticality::B,
                        _ => Criticality::C,
                    };
                    // A part without a cost price cannot be bought by the plan.
                    let cost = Amount::from_minor(cost?);
                    Some((
                        id,
                        Part {
                            code: PartCode::from_trusted(code),
                            product_line: line,
                            criticality,
                            unit_cost: cost,
                            dealer_price: dealer.map_or(cost, Amount::from_minor),
                            volume_m3: volume_l / 1000.0,
                            supplier_code: supplier,
                            lead_time_days: u32::try_from(lead).unwrap_or(0),
                            moq: u32::try_from(moq).unwrap_or(0),
                            pack_size: u32::try_from(pack).unwrap_or(1).max(1),
                            receive_at: central,
                        },
                    ))
                },
            )
            .collect();
        let lanes = sql_fetch_all!(
            (i64, i64, i64, i64),
            conn.conn(),
            "select from_id, to_id, lead_time_days, cost_per_unit_minor from lanes order by id"
        )?
        .into_iter()
        .filter_map(|(from, to, days, cost)| {
            Some(Lane {
                from: *loc_index.get(&from)?,
                to: *loc_index.get(&to)?,
                lead_time_days: u32::try_from(days).ok()?,
                cost_per_unit: Amount::from_minor(cost),
            })
        })
        .collect();
        let part_index: HashMap<i64, PartId> = parts
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, PartId(i as u32)))
            .collect();
        let stock = stock_rows(conn.conn(), &part_index, &loc_index, horizon).await?;
        let suppliers =
            sql_fetch_all!((String, i64), conn.conn(), "select code, id from suppliers")?
                .into_iter()
                .collect();
        Ok(Snapshot {
            parts,
            locations,
            lanes,
            stock,
            suppliers,
        })
    }

    /// The planner's instance, with the forecast's mean and spread per period. The
    /// forecast error of a period is taken as the negative binomial's standard deviation
    /// around its mean (variance μ + φμ²), which is how the forecast was calibrated.
    fn instance(
        &self,
        model: &PlanModel,
        forecast: &StoredForecast,
    ) -> Result<Instance, PlanRunError> {
        let part_ix: HashMap<&str, PartId> = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, (_, p))| (p.code.as_str(), PartId(i as u32)))
            .collect();
        let loc_ix: HashMap<&str, LocId> = self
            .locations
            .iter()
            .enumerate()
            .map(|(i, (_, l))| (l.code.as_str(), LocId(i as u32)))
            .collect();
        let periods = model.periods;
        let demand = forecast
            .run
            .series
            .iter()
            .filter_map(|s| {
                let part = *part_ix.get(s.key.part.as_str())?;
                let station = *loc_ix.get(s.key.station.as_str())?;
                let mean: Vec<f64> = (0..periods)
                    .map(|t| f64::from(s.mean(t)).max(0.0))
                    .collect();
                if mean.iter().all(|m| *m <= 0.0) {
                    return None;
                }
                let phi = f64::from(s.spread.phi).max(0.0);
                let error_sd = mean.iter().map(|m| (m + phi * m * m).sqrt()).collect();
                Some(Demand {
                    part,
                    station,
                    mean,
                    error_sd,
                })
            })
            .collect();
        Ok(Instance {
            parts: self.parts.iter().map(|(_, p)| p.clone()).collect(),
            locations: self.locations.iter().map(|(_, l)| l.clone()).collect(),
            lanes: self.lanes.clone(),
            stock: self.stock.clone(),
            demand,
        })
    }
}

/// Writes the run record as running. Only one plan run of the network runs at a time (a
/// partial unique index on the running status, so this holds across instances): a second
/// start is refused naming the running one, unless that one has not shown a heartbeat for
/// a minute, in which case its instance is taken for dead, it is marked failed, and this
/// run starts.
async fn start_run(
    db: &Db,
    model: &PlanModel,
    model_text: &str,
    forecast_id: i64,
) -> Result<i64, PlanRunError> {
    for _ in 0..2 {
        let mut conn = db.acquire().await?;
        let inserted = sql_fetch_optional!(
            (i64,),
            conn.conn(),
            "insert into plan_runs (model_name, model_toml, forecast_run_id, status, created_at, heartbeat_at)
             values ($1, $2, $3, 'running', $4, $4) returning id",
            &model.name,
            model_text,
            forecast_id,
            Utc::now()
        );
        match inserted {
            Ok(Some((id,))) => return Ok(id),
            Ok(None) => return Err(DbError::Sqlx(sqlx::Error::RowNotFound).into()),
            Err(sqlx::Error::Database(e))
                if e.kind() == sqlx::error::ErrorKind::UniqueViolation => {}
            Err(e) => return Err(e.into()),
        }
        let running = sql_fetch_optional!(
            (i64, chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>),
            conn.conn(),
            "select id, created_at, heartbeat_at from plan_runs where status = 'running'"
        )?;
        let Some((id, since, heartbeat)) = running else {
            continue; // it finished meanwhile
        };
        let last_sign = heartbeat.unwrap_or(since);
        if (Utc::now() - last_sign).num_seconds() < STALE_AFTER_S {
            return Err(PlanRunError::Busy { run: id, since });
        }
        let why = format!("abandoned: no heartbeat since {last_sign} (its instance stopped)");
        sql_execute!(
            conn.conn(),
            "update plan_runs set status = 'failed', failure = $2, finished_at = $3
             where id = $1 and status = 'running'",
            id,
            &why,
            Utc::now()
        )?;
        tracing::warn!(run_id = id, "took over the plan-run lock from a silent run");
    }
    let (id, since) = sql_fetch_optional!(
        (i64, chrono::DateTime<Utc>),
        db.acquire().await?.conn(),
        "select id, created_at from plan_runs where status = 'running'"
    )?
    .unwrap_or((0, Utc::now()));
    Err(PlanRunError::Busy { run: id, since })
}

/// Marks the open proposals of every older run superseded by `run_id` (inside the
/// transaction that stores its proposals), with one audit entry listing them. Released
/// lines stay: they are the pipeline the new run planned around.
async fn supersede_older(tx: &mut crate::db::Tx, run_id: i64) -> Result<usize, PlanRunError> {
    let ids: Vec<i64> = sql_fetch_all!(
        (i64,),
        tx.conn(),
        "update proposals set status = 'superseded', superseded_by = $1, version = version + 1
         where plan_run_id <> $1 and status in ('proposed', 'edited', 'approved', 'awaiting_finance')
         returning id",
        run_id
    )?
    .into_iter()
    .map(|(id,)| id)
    .collect();
    if !ids.is_empty() {
        let actor = format!("plan-run:{run_id}");
        crate::audit::record(
            tx,
            crate::audit::Change {
                actor: &actor,
                action: "plan_run.supersede",
                entity: "plan_run",
                entity_id: run_id.to_string(),
                before: None,
                after: Some(serde_json::json!({"superseded": ids.len(), "proposal_ids": ids})),
            },
        )
        .await?;
    }
    Ok(ids.len())
}

const PROPOSAL_COLUMNS: &[&str] = &[
    "plan_run_id",
    "kind",
    "part_id",
    "supplier_id",
    "from_id",
    "to_id",
    "qty",
    "order_by",
    "arrive_on",
    "unit_cost_minor",
    "currency",
    "credit_impact_minor",
    "status",
    "version",
    "reason_json",
];

/// Writes the outcome and all proposals in one transaction.
async fn finish_run(
    db: &Db,
    run_id: i64,
    result: &PlanResult,
    snapshot: &Snapshot,
) -> Result<usize, PlanRunError> {
    let part_id: HashMap<&str, (i64, Amount)> = snapshot
        .parts
        .iter()
        .map(|(id, p)| (p.code.as_str(), (*id, p.unit_cost)))
        .collect();
    let loc_id: HashMap<&str, i64> = snapshot
        .locations
        .iter()
        .map(|(id, l)| (l.code.as_str(), *id))
        .collect();
    let solved = matches!(
        result.status,
        PlanStatus::Optimal | PlanStatus::TimeLimit | PlanStatus::RoundLimit
    );
    let mut tx = db.begin().await?;
    let mut rows = BulkInsert::new("proposals", PROPOSAL_COLUMNS);
    let mut written = 0;
    if solved {
        for p in &result.purchases {
            let (Some(&(part, _)), Some(&to)) = (
                part_id.get(p.part.as_str()),
                loc_id.get(p.receive_at.as_str()),
            ) else {
                continue;
            };
            let reason = serde_json::to_string(&p.reason).unwrap_or_default();
            let row = proposal_row(
                run_id,
                "purchase",
                part,
                snapshot.suppliers.get(&p.supplier).copied(),
                None,
                to,
                p.qty,
                p.order_by,
                p.arrive_on,
                p.unit_cost,
                Amount::ZERO,
                reason,
            );
            rows.push(tx.conn(), row).await?;
            written += 1;
        }
        for t in &result.transfers {
            let (Some(&(part, unit_cost)), Some(&from), Some(&to)) = (
                part_id.get(t.part.as_str()),
                loc_id.get(t.from.as_str()),
                loc_id.get(t.to.as_str()),
            ) else {
                continue;
            };
            let reason = serde_json::to_string(&t.reason).unwrap_or_default();
            let credit = t.credit_impact.unwrap_or(Amount::ZERO);
            let row = proposal_row(
                run_id,
                "transfer",
                part,
                None,
                Some(from),
                to,
                t.qty,
                t.ship_by,
                t.arrive_on,
                unit_cost,
                credit,
                reason,
            );
            rows.push(tx.conn(), row).await?;
            written += 1;
        }
    }
    rows.finish(tx.conn()).await?;
    if solved {
        supersede_older(&mut tx, run_id).await?;
    }
    let status = if solved { "solved" } else { "failed" };
    let solver_status = serde_json::to_value(result.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    let kpis = result
        .kpis
        .as_ref()
        .and_then(|k| serde_json::to_string(k).ok());
    let finalised = sql_execute!(
        tx.conn(),
        "update plan_runs set status = $2, solver_status = $3, failure = $4, objective = $5, build_ms = $6,
             solve_ms = $7, mip_gap = $8, kpis_json = $9, finished_at = $10
         where id = $1 and status = 'running'",
        run_id,
        status,
        solver_status,
        result.reason.clone(),
        result.objective,
        result.build_ms.round() as i64,
        result.solve_ms.round() as i64,
        result.gap,
        kpis,
        Utc::now()
    )?;
    if finalised == 0 {
        // Another instance took this run for dead and failed it: its outcome is not ours
        // to write any more, and nothing of it is kept.
        return Err(PlanRunError::TakenOver(run_id));
    }
    tx.commit().await?;
    Ok(written)
}

#[allow(clippy::too_many_arguments)]
fn proposal_row(
    run_id: i64,
    kind: &str,
    part: i64,
    supplier: Option<i64>,
    from: Option<i64>,
    to: i64,
    qty: i64,
    order_by: NaiveDate,
    arrive_on: NaiveDate,
    unit_cost: Amount,
    credit: Amount,
    reason: String,
) -> Vec<Val> {
    vec![
        Val::Int(run_id),
        Val::Text(kind.into()),
        Val::Int(part),
        Val::OptInt(supplier),
        Val::OptInt(from),
        Val::Int(to),
        Val::Int(qty),
        Val::Date(order_by),
        Val::Date(arrive_on),
        Val::Int(unit_cost.minor()),
        Val::Text("CNY".into()),
        Val::Int(credit.minor()),
        Val::Text("proposed".into()),
        Val::Int(1),
        Val::Text(reason),
    ]
}

/// What a planner reads first: the outcome, the KPIs and the largest proposals with why.
pub fn summary(stored: &StoredPlan, top: usize) -> String {
    let r = &stored.result;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan run {} ({}): {:?} by {}, objective {}, build {:.0} ms, solve {:.0} ms, gap {}",
        stored.id,
        r.model,
        r.status,
        r.method,
        r.objective.map_or("-".into(), |o| format!("{o:.0} CNY")),
        r.build_ms,
        r.solve_ms,
        r.gap.map_or("-".into(), |g| format!("{:.3} %", g * 100.0))
    );
    if let Some(why) = &r.reason {
        let _ = writeln!(out, "  why: {why}");
    }
    if let Some(k) = &r.kpis {
        let fills: Vec<String> = k
            .fill_rate_by_tier
            .iter()
            .map(|f| format!("{:?} {:.1} %", f.tier, f.fill_rate * 100.0))
            .collect();
        let _ = writeln!(
            out,
            "  projected fill rate: {}; investment {} CNY; average stock value {} CNY",
            fills.join(", "),
            k.investment,
            k.average_stock_value
        );
    }
    let _ = writeln!(
        out,
        "  {} purchase and {} transfer proposals written",
        r.purchases.len(),
        r.transfers.len()
    );
    for b in r.binding.iter().take(5) {
        let _ = writeln!(
            out,
            "  binding {} {} period {}: uses {:.0} of {:.0}; one more unit is worth {:.4} CNY",
            b.family.as_str(),
            b.location.as_deref().unwrap_or("network"),
            b.period.map_or("all".into(), |p| p.to_string()),
            b.usage,
            b.limit,
            b.shadow_price
        );
    }
    let mut purchases: Vec<_> = r.purchases.iter().collect();
    purchases.sort_by_key(|p| std::cmp::Reverse(p.cost));
    let _ = writeln!(out, "\nLargest purchase proposals:");
    for p in purchases.into_iter().take(top) {
        let _ = writeln!(
            out,
            "  buy {:>4} × {:<16} from {:<6} order by {} arrive {} at {}: {} CNY",
            p.qty,
            p.part.as_str(),
            p.supplier,
            p.order_by,
            p.arrive_on,
            p.receive_at,
            p.cost
        );
        let _ = writeln!(out, "      why: {}", reason_text(&p.reason));
    }
    let mut transfers: Vec<_> = r.transfers.iter().collect();
    transfers.sort_by_key(|t| std::cmp::Reverse(t.qty));
    let _ = writeln!(out, "\nLargest transfer proposals (prepositioning):");
    for t in transfers.into_iter().take(top) {
        let _ = writeln!(
            out,
            "  move {:>4} × {:<16} {} → {} ship by {} arrive {}{}",
            t.qty,
            t.part.as_str(),
            t.from,
            t.to,
            t.ship_by,
            t.arrive_on,
            t.credit_impact
                .map_or(String::new(), |c| format!(", credit +{c} CNY"))
        );
        let _ = writeln!(out, "      why: {}", reason_text(&t.reason));
    }
    out
}

/// The reason in plain words: the demand covered and the constraints that bind.
fn reason_text(reason: &plan::Reason) -> String {
    let mut covers: Vec<_> = reason.covers.iter().collect();
    covers.sort_by(|a, b| b.qty.total_cmp(&a.qty));
    let mut text = covers
        .iter()
        .take(3)
        .map(|c| format!("{:.1} at {} in period {}", c.qty, c.location, c.period + 1))
        .collect::<Vec<_>>()
        .join(", ");
    if covers.len() > 3 {
        let rest: f64 = covers[3..].iter().map(|c| c.qty).sum();
        let _ = write!(text, " and {rest:.1} more");
    }
    if text.is_empty() {
        text = "safety stock".into();
    }
    for b in &reason.binding {
        let _ = write!(
            text,
            "; {} binds ({:.4} CNY per unit)",
            b.family.as_str(),
            b.shadow_price
        );
    }
    text
}

/// A plan run as the runs page lists it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct PlanRunRow {
    pub id: i64,
    pub model_name: String,
    pub forecast_run_id: Option<i64>,
    pub status: String,
    pub solver_status: Option<String>,
    pub failure: Option<String>,
    pub objective: Option<f64>,
    pub build_ms: Option<i64>,
    pub solve_ms: Option<i64>,
    pub mip_gap: Option<f64>,
    /// The projected KPIs ([`crate::plan::Kpis`]) as stored.
    pub kpis_json: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub proposals: i64,
}

/// The newest plan runs first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<PlanRunRow>, DbError> {
    let mut conn = db.acquire().await?;
    Ok(sql_fetch_all!(
        PlanRunRow,
        conn.conn(),
        "select r.id, r.model_name, r.forecast_run_id, r.status, r.solver_status, r.failure,
             r.objective, r.build_ms, r.solve_ms, r.mip_gap, r.kpis_json, r.created_at,
             (select cast(count(*) as bigint) from proposals p where p.plan_run_id = r.id) as proposals
         from plan_runs r order by r.id desc limit $1",
        limit
    )?)
}
