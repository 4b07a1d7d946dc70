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
    let result = tokio::task::spawn_blocking(move || plan::solve(&model, &instance)).await?;
    let proposals = finish_run(db, run_id, &result, &snapshot).await?;
    Ok(StoredPlan {
        id: run_id,
        result,
        proposals,
    })
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
    let snapshot = Snapshot::load(db, model.start).await?;
    let instance = snapshot.instance(&model, forecast)?;
    Ok((model, instance, snapshot))
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
    async fn load(db: &Db, as_of: NaiveDate) -> Result<Snapshot, PlanRunError> {
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
             where p.replaced_by_id is null or p.replaced_on > $1
             order by p.id",
            as_of
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
        let stock = sql_fetch_all!(
            (i64, i64, i64, i64, i64, i64),
            conn.conn(),
            "select part_id, location_id, on_hand, reserved, in_transit, on_order from stock_balance
             where on_hand > 0 or in_transit > 0 or on_order > 0"
        )?
        .into_iter()
        .filter_map(|(part, loc, on_hand, reserved, in_transit, on_order)| {
            let part = *part_index.get(&part)?;
            // In transit arrives in the first period; open orders after the supplier lead time.
            let order_period = (parts[part.ix()].1.lead_time_days as usize)
                .div_ceil(30)
                .max(1);
            let mut pipeline = vec![0.0; order_period + 1];
            pipeline[0] += in_transit as f64;
            pipeline[order_period] += on_order as f64;
            Some(Stock {
                part,
                location: *loc_index.get(&loc)?,
                on_hand: (on_hand - reserved).max(0) as f64,
                pipeline,
            })
        })
        .collect();
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

async fn start_run(
    db: &Db,
    model: &PlanModel,
    model_text: &str,
    forecast_id: i64,
) -> Result<i64, PlanRunError> {
    let mut conn = db.acquire().await?;
    let (id,) = sql_fetch_optional!(
        (i64,),
        conn.conn(),
        "insert into plan_runs (model_name, model_toml, forecast_run_id, status, created_at)
         values ($1, $2, $3, 'running', $4) returning id",
        &model.name,
        model_text,
        forecast_id,
        Utc::now()
    )?
    .ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))?;
    Ok(id)
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
    let status = if solved { "solved" } else { "failed" };
    let solver_status = serde_json::to_value(result.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    let kpis = result
        .kpis
        .as_ref()
        .and_then(|k| serde_json::to_string(k).ok());
    sql_execute!(
        tx.conn(),
        "update plan_runs set status = $2, solver_status = $3, failure = $4, objective = $5, build_ms = $6,
             solve_ms = $7, mip_gap = $8, kpis_json = $9, finished_at = $10
         where id = $1",
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
