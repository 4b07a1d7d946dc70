//! The planner's queue (DESIGN §7): proposals of plan runs, listed and filtered, edited,
//! approved, rejected, held for finance and released as orders and shipments.
//!
//! Every change is optimistic: the caller sends the version it read, the first statement of
//! the transaction claims the row only at that version (taking SQLite's write lock or the
//! PostgreSQL row lock), so of two concurrent changes exactly one goes through and the other
//! gets a conflict. The audit entry is written in the same transaction.

use std::fmt::Write as _;

use chrono::{NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Change};
use crate::credit;
use crate::db::{Db, Tx};
use crate::service::{page_limit, Page, ServiceError};
use crate::stock::{self, Movement, MovementKind};
use crate::units::{Amount, Qty};
use crate::{sql_execute, sql_fetch_all, sql_fetch_optional};

/// A proposal as planners see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ProposalView {
    pub id: i64,
    pub plan_run_id: i64,
    /// purchase or transfer.
    pub kind: String,
    pub part_code: String,
    pub supplier_code: Option<String>,
    pub from_code: Option<String>,
    pub to_code: String,
    pub qty: i64,
    /// The planner's quantity before an edit.
    pub original_qty: Option<i64>,
    pub order_by: NaiveDate,
    pub arrive_on: NaiveDate,
    pub unit_cost_minor: i64,
    pub currency: String,
    pub credit_impact_minor: i64,
    /// proposed, edited, approved, awaiting_finance, rejected, released, received (nothing
    /// open any more) or superseded (a newer plan run replaced it before release).
    pub status: String,
    /// Units received against a released line so far.
    pub received_qty: i64,
    pub version: i64,
    pub edit_reason: Option<String>,
}

const SELECT: &str =
    "select p.id, p.plan_run_id, p.kind, pt.code as part_code, s.code as supplier_code,
        f.code as from_code, t.code as to_code, p.qty, p.original_qty, p.order_by, p.arrive_on,
        p.unit_cost_minor, p.currency, p.credit_impact_minor, p.status, p.received_qty, p.version, p.edit_reason
     from proposals p join parts pt on pt.id = p.part_id
     left join suppliers s on s.id = p.supplier_id
     left join locations f on f.id = p.from_id
     join locations t on t.id = p.to_id";

/// Filters of the queue; all optional.
/// Also the query string of the list endpoint, hence unknown fields are refused.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub plan_run: Option<i64>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub part: Option<String>,
    /// The receiving location (station) code.
    pub station: Option<String>,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

pub const KINDS: [&str; 2] = ["purchase", "transfer"];
pub const STATUSES: [&str; 8] = [
    "proposed",
    "edited",
    "approved",
    "awaiting_finance",
    "rejected",
    "released",
    "received",
    "superseded",
];

pub async fn list(db: &Db, filter: &Filter) -> Result<Page<ProposalView>, ServiceError> {
    let limit = page_limit(filter.limit)?;
    check_kind_status(filter.kind.as_deref(), filter.status.as_deref())?;
    let sql = format!(
        "{SELECT} where p.id > $1 and (cast($2 as bigint) is null or p.plan_run_id = $2)
           and (cast($3 as text) is null or p.kind = $3)
           and (cast($4 as text) is null or p.status = $4)
           and (cast($5 as text) is null or pt.code = $5)
           and (cast($6 as text) is null or t.code = $6)
         order by p.id limit $7"
    );
    let mut conn = db.acquire().await?;
    let rows = sql_fetch_all!(
        ProposalView,
        conn.conn(),
        &sql,
        filter.after.unwrap_or(0),
        filter.plan_run,
        &filter.kind,
        &filter.status,
        &filter.part,
        &filter.station,
        (limit + 1) as i64
    )?;
    Ok(Page::cut(rows, limit, |p| p.id))
}

/// How the planner's queue is sorted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueSort {
    /// Largest money first: where a planner's attention pays most.
    #[default]
    ValueDesc,
    ValueAsc,
    /// Soonest order-by date first.
    OrderBy,
    Part,
    Station,
}

impl QueueSort {
    pub const ALL: [QueueSort; 5] = [
        QueueSort::ValueDesc,
        QueueSort::ValueAsc,
        QueueSort::OrderBy,
        QueueSort::Part,
        QueueSort::Station,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueSort::ValueDesc => "value_desc",
            QueueSort::ValueAsc => "value_asc",
            QueueSort::OrderBy => "order_by",
            QueueSort::Part => "part",
            QueueSort::Station => "station",
        }
    }

    /// The SQL order (a fixed string per variant: no input reaches it).
    fn order_sql(self) -> &'static str {
        match self {
            QueueSort::ValueDesc => "p.qty * p.unit_cost_minor desc, p.id",
            QueueSort::ValueAsc => "p.qty * p.unit_cost_minor, p.id",
            QueueSort::OrderBy => "p.order_by, p.id",
            QueueSort::Part => "pt.code, p.id",
            QueueSort::Station => "t.code, p.id",
        }
    }
}

/// The queue as the web interface filters it; all optional. `plan_run` defaults to the
/// newest solved run; `part` matches a code prefix; `min_value` is in major units.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct QueueFilter {
    pub plan_run: Option<i64>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub part: Option<String>,
    pub station: Option<String>,
    pub region: Option<String>,
    pub min_value: Option<i64>,
    #[serde(default)]
    pub sort: QueueSort,
    #[serde(default)]
    pub page: u32,
}

/// One line of the queue.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct QueueRow {
    pub id: i64,
    pub kind: String,
    pub part_code: String,
    pub part_name: String,
    pub from_code: Option<String>,
    pub to_code: String,
    pub region: Option<String>,
    pub qty: i64,
    pub unit_cost_minor: i64,
    pub value_minor: i64,
    pub currency: String,
    pub order_by: NaiveDate,
    pub arrive_on: NaiveDate,
    pub status: String,
    pub version: i64,
    pub credit_impact_minor: i64,
}

/// A page of the queue with the totals of everything the filter matches.
#[derive(Debug, Clone, Serialize)]
pub struct QueuePage {
    pub plan_run: Option<i64>,
    pub rows: Vec<QueueRow>,
    pub total: i64,
    pub total_value_minor: i64,
}

const QUEUE_WHERE: &str = "from proposals p join parts pt on pt.id = p.part_id
     left join locations f on f.id = p.from_id
     join locations t on t.id = p.to_id
     where p.plan_run_id = $1
       and (cast($2 as text) is null or p.kind = $2)
       and (cast($3 as text) is null or p.status = $3)
       and (cast($4 as text) is null or substr(pt.code, 1, length($4)) = $4)
       and (cast($5 as text) is null or t.code = $5)
       and (cast($6 as text) is null or t.region = $6)
       and p.qty * p.unit_cost_minor >= $7";

/// The newest solved plan run, if any.
pub async fn latest_plan_run(db: &Db) -> Result<Option<i64>, ServiceError> {
    let mut conn = db.acquire().await?;
    Ok(sql_fetch_optional!(
        (i64,),
        conn.conn(),
        "select id from plan_runs where status = 'solved' order by id desc limit 1"
    )?
    .map(|(id,)| id))
}

/// Filters, sorts and pages the queue (`limit` rows from page `filter.page`).
pub async fn queue(db: &Db, filter: &QueueFilter, limit: u32) -> Result<QueuePage, ServiceError> {
    check_kind_status(filter.kind.as_deref(), filter.status.as_deref())?;
    let plan_run = match filter.plan_run {
        Some(run) => Some(run),
        None => latest_plan_run(db).await?,
    };
    let Some(run) = plan_run else {
        return Ok(QueuePage {
            plan_run: None,
            rows: Vec::new(),
            total: 0,
            total_value_minor: 0,
        });
    };
    let min_value_minor = filter.min_value.unwrap_or(0).saturating_mul(100);
    let mut conn = db.acquire().await?;
    let (total, total_value_minor) = sql_fetch_optional!(
        (i64, Option<i64>),
        conn.conn(),
        &format!("select cast(count(*) as bigint), cast(sum(p.qty * p.unit_cost_minor) as bigint) {QUEUE_WHERE}"),
        run,
        &filter.kind,
        &filter.status,
        &filter.part,
        &filter.station,
        &filter.region,
        min_value_minor
    )?
    .unwrap_or((0, None));
    let sql = format!(
        "select p.id, p.kind, pt.code as part_code, pt.name as part_name, f.code as from_code,
             t.code as to_code, t.region, p.qty, p.unit_cost_minor,
             p.qty * p.unit_cost_minor as value_minor, p.currency, p.order_by, p.arrive_on,
             p.status, p.version, p.credit_impact_minor
         {QUEUE_WHERE} order by {} limit $8 offset $9",
        filter.sort.order_sql()
    );
    let rows = sql_fetch_all!(
        QueueRow,
        conn.conn(),
        &sql,
        run,
        &filter.kind,
        &filter.status,
        &filter.part,
        &filter.station,
        &filter.region,
        min_value_minor,
        i64::from(limit),
        i64::from(filter.page) * i64::from(limit)
    )?;
    Ok(QueuePage {
        plan_run,
        rows,
        total,
        total_value_minor: total_value_minor.unwrap_or(0),
    })
}

fn check_kind_status(kind: Option<&str>, status: Option<&str>) -> Result<(), ServiceError> {
    if let Some(k) = kind {
        if !KINDS.contains(&k) {
            return Err(ServiceError::invalid(
                "kind",
                "must be purchase or transfer",
            ));
        }
    }
    if let Some(s) = status {
        if !STATUSES.contains(&s) {
            return Err(ServiceError::invalid(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    Ok(())
}

async fn view_in(tx: &mut Tx, id: i64) -> Result<ProposalView, ServiceError> {
    let sql = format!("{SELECT} where p.id = $1");
    sql_fetch_optional!(ProposalView, tx.conn(), &sql, id)?
        .ok_or_else(|| ServiceError::not_found(format!("proposal {id}")))
}

/// Demand history, forecast and projected stock of the proposal's part at its destination.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProposalDetail {
    pub proposal: ProposalView,
    /// Why the planner proposed it: the demand it covers and the constraints that bind.
    #[schema(value_type = Object)]
    pub reason: serde_json::Value,
    /// Consumption per month at the destination (fault records), oldest first; for a
    /// warehouse, at the stations it serves.
    pub history: Vec<MonthQty>,
    /// The forecast the plan used for the destination (a warehouse: its stations'), per
    /// period.
    pub forecast: Vec<ForecastPoint>,
    /// Available now (a warehouse: with its stations') plus arrivals of this run's live
    /// proposals minus the forecast mean, per forecast period.
    pub projected_stock: Vec<ProjectedPoint>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MonthQty {
    /// YYYY-MM.
    pub month: String,
    pub qty: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ForecastPoint {
    pub period_start: NaiveDate,
    pub mean: f64,
    pub p80: f64,
    pub p95: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProjectedPoint {
    pub period_start: NaiveDate,
    pub projected: f64,
}

pub async fn detail(db: &Db, id: i64) -> Result<ProposalDetail, ServiceError> {
    let mut tx = db.begin().await?;
    let proposal = view_in(&mut tx, id).await?;
    let (reason, part_id, to_id, forecast_run, plan_run) = sql_fetch_optional!(
        (String, i64, i64, Option<i64>, i64),
        tx.conn(),
        "select p.reason_json, p.part_id, p.to_id, r.forecast_run_id, p.plan_run_id
         from proposals p join plan_runs r on r.id = p.plan_run_id where p.id = $1",
        id
    )?
    .ok_or_else(|| ServiceError::not_found(format!("proposal {id}")))?;
    // A warehouse serves the stations below it: its lines are theirs, and its stock the
    // echelon's (its own and theirs).
    let tree = sql_fetch_all!(
        (i64, Option<i64>),
        tx.conn(),
        "select id, parent_id from locations"
    )?;
    let served = served_by(to_id, &tree);
    let lines = sql_fetch_all!(
        (i64, NaiveDate, i64),
        tx.conn(),
        "select station_id, opened_on, qty from faults where part_id = $1 and qty > 0",
        part_id
    )?;
    let mut months = std::collections::BTreeMap::<String, i64>::new();
    for (_, opened_on, qty) in lines.into_iter().filter(|l| served.contains(&l.0)) {
        *months
            .entry(opened_on.format("%Y-%m").to_string())
            .or_default() += qty;
    }
    let history = months
        .into_iter()
        .map(|(month, qty)| MonthQty { month, qty })
        .collect();
    let forecast = match forecast_run {
        Some(run) => {
            let rows = sql_fetch_all!(
                (i64, i64, NaiveDate, f64, f64, f64),
                tx.conn(),
                "select station_id, step, period_start, mean, p80, p95 from forecast_values
                 where run_id = $1 and part_id = $2 order by step",
                run,
                part_id
            )?;
            sum_forecast(rows.into_iter().filter(|r| served.contains(&r.0)))
        }
        None => Vec::new(),
    };
    let stock = sql_fetch_all!(
        (i64, i64),
        tx.conn(),
        "select location_id, on_hand - reserved from stock_balance where part_id = $1",
        part_id
    )?;
    let available: i64 = stock
        .iter()
        .filter(|s| served.contains(&s.0))
        .map(|s| s.1)
        .sum();
    let arrivals = sql_fetch_all!(
        (NaiveDate, i64),
        tx.conn(),
        "select arrive_on, qty from proposals where plan_run_id = $1 and part_id = $2 and to_id = $3
           and status <> 'rejected'",
        plan_run,
        part_id,
        to_id
    )?;
    let mut level = available as f64;
    let mut projected_stock = Vec::with_capacity(forecast.len());
    for (i, point) in forecast.iter().enumerate() {
        let next = forecast.get(i + 1).map(|p| p.period_start);
        let arriving: i64 = arrivals
            .iter()
            .filter(|(on, _)| (i == 0 || *on >= point.period_start) && next.is_none_or(|n| *on < n))
            .map(|(_, q)| *q)
            .sum();
        level += arriving as f64 - point.mean;
        projected_stock.push(ProjectedPoint {
            period_start: point.period_start,
            projected: level,
        });
    }
    Ok(ProposalDetail {
        proposal,
        reason: serde_json::from_str(&reason).unwrap_or(serde_json::Value::Null),
        history,
        forecast,
        projected_stock,
    })
}

/// A location and every location below it.
fn served_by(root: i64, tree: &[(i64, Option<i64>)]) -> std::collections::HashSet<i64> {
    let mut served = std::collections::HashSet::from([root]);
    // The hierarchy is a few levels deep; grow the set until it stops growing.
    loop {
        let before = served.len();
        for (id, parent) in tree {
            if parent.is_some_and(|p| served.contains(&p)) {
                served.insert(*id);
            }
        }
        if served.len() == before {
            return served;
        }
    }
}

/// Station forecasts added up per step: means add; each quantile's excess over the mean
/// adds as independent spreads do (root of the sum of squares), exact for one station.
fn sum_forecast(
    rows: impl Iterator<Item = (i64, i64, NaiveDate, f64, f64, f64)>,
) -> Vec<ForecastPoint> {
    // step -> (period start, mean, Σ (p80 − mean)², Σ (p95 − mean)²)
    let mut steps = std::collections::BTreeMap::<i64, (NaiveDate, f64, f64, f64)>::new();
    for (_, step, period_start, mean, p80, p95) in rows {
        let s = steps.entry(step).or_insert((period_start, 0.0, 0.0, 0.0));
        s.1 += mean;
        s.2 += (p80 - mean).max(0.0).powi(2);
        s.3 += (p95 - mean).max(0.0).powi(2);
    }
    steps
        .into_values()
        .map(|(period_start, mean, d80, d95)| ForecastPoint {
            period_start,
            mean,
            p80: mean + d80.sqrt(),
            p95: mean + d95.sqrt(),
        })
        .collect()
}

/// The row as claimed at the caller's version (the version already moved on by one).
#[derive(sqlx::FromRow)]
struct Claimed {
    kind: String,
    part_id: i64,
    from_id: Option<i64>,
    to_id: i64,
    qty: i64,
    status: String,
    credit_impact_minor: i64,
    currency: String,
}

/// Claims the proposal at `version` or explains why not (missing or stale).
async fn claim(tx: &mut Tx, id: i64, version: i64) -> Result<Claimed, ServiceError> {
    let claimed = sql_fetch_optional!(
        Claimed,
        tx.conn(),
        "update proposals set version = version + 1 where id = $1 and version = $2
         returning kind, part_id, from_id, to_id, qty, status, credit_impact_minor, currency",
        id,
        version
    )?;
    if let Some(c) = claimed {
        return Ok(c);
    }
    let current = sql_fetch_optional!(
        (i64,),
        tx.conn(),
        "select version from proposals where id = $1",
        id
    )?;
    Err(match current {
        None => ServiceError::not_found(format!("proposal {id}")),
        Some((v,)) => ServiceError::conflict(
            "version",
            format!("version {version} is stale: proposal {id} is at version {v}"),
        ),
    })
}

fn wrong_state(id: i64, status: &str, action: &str) -> ServiceError {
    ServiceError::conflict(
        "status",
        format!("proposal {id} is {status}: it cannot be {action}"),
    )
}

/// Finishes a change: the audit entry and the proposal as it is now.
async fn finish(
    mut tx: Tx,
    actor: &str,
    action: &str,
    id: i64,
    before: ProposalView,
) -> Result<ProposalView, ServiceError> {
    let after = view_in(&mut tx, id).await?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action,
            entity: "proposal",
            entity_id: id.to_string(),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(&after).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Reads the view before the claim moved the version, for the audit's before image.
fn before_image(mut view: ProposalView) -> ProposalView {
    view.version -= 1;
    view
}

/// Changes the quantity (with a reason); the proposal then needs approval again.
pub async fn edit(
    db: &Db,
    actor: &str,
    id: i64,
    version: i64,
    qty: Qty,
    reason: &str,
) -> Result<ProposalView, ServiceError> {
    if reason.trim().is_empty() {
        return Err(ServiceError::invalid("reason", "an edit needs a reason"));
    }
    let mut tx = db.begin().await?;
    let c = claim(&mut tx, id, version).await?;
    let before = before_image(view_in(&mut tx, id).await?);
    if !matches!(c.status.as_str(), "proposed" | "edited" | "approved") {
        return Err(wrong_state(id, &c.status, "edited"));
    }
    // The credit impact scales with the quantity (it is dealer price × quantity).
    let impact = if c.qty > 0 {
        (i128::from(c.credit_impact_minor) * i128::from(qty.get()) / i128::from(c.qty)) as i64
    } else {
        0
    };
    sql_execute!(
        tx.conn(),
        "update proposals set qty = $2, original_qty = coalesce(original_qty, $3), edit_reason = $4,
             credit_impact_minor = $5, status = 'edited'
         where id = $1",
        id,
        qty.get(),
        c.qty,
        reason,
        impact
    )?;
    finish(tx, actor, "proposal.edit", id, before).await
}

/// Approves a proposal. A transfer that would push its station past the credit limit waits
/// as awaiting_finance instead.
pub async fn approve(
    db: &Db,
    actor: &str,
    id: i64,
    version: i64,
) -> Result<ProposalView, ServiceError> {
    let mut tx = db.begin().await?;
    let c = claim(&mut tx, id, version).await?;
    let before = before_image(view_in(&mut tx, id).await?);
    if !matches!(c.status.as_str(), "proposed" | "edited") {
        return Err(wrong_state(id, &c.status, "approved"));
    }
    let mut status = "approved";
    if c.kind == "transfer" && c.credit_impact_minor > 0 {
        if let Some(account) =
            credit::account_by_id(&mut tx, c.to_id, Utc::now().date_naive()).await?
        {
            if account.headroom_minor < c.credit_impact_minor {
                status = "awaiting_finance";
            }
        }
    }
    sql_execute!(
        tx.conn(),
        "update proposals set status = $2 where id = $1",
        id,
        status
    )?;
    finish(tx, actor, "proposal.approve", id, before).await
}

pub async fn reject(
    db: &Db,
    actor: &str,
    id: i64,
    version: i64,
    reason: Option<&str>,
) -> Result<ProposalView, ServiceError> {
    let mut tx = db.begin().await?;
    let c = claim(&mut tx, id, version).await?;
    let before = before_image(view_in(&mut tx, id).await?);
    if !matches!(c.status.as_str(), "proposed" | "edited" | "approved") {
        return Err(wrong_state(id, &c.status, "rejected"));
    }
    sql_execute!(
        tx.conn(),
        "update proposals set status = 'rejected', edit_reason = coalesce($2, edit_reason) where id = $1",
        id,
        reason
    )?;
    finish(tx, actor, "proposal.reject", id, before).await
}

/// Finance decides a transfer held for credit: approved (it may be released) or rejected.
pub async fn finance_decide(
    db: &Db,
    actor: &str,
    id: i64,
    version: i64,
    approve: bool,
) -> Result<ProposalView, ServiceError> {
    let mut tx = db.begin().await?;
    let c = claim(&mut tx, id, version).await?;
    let before = before_image(view_in(&mut tx, id).await?);
    if c.status != "awaiting_finance" {
        return Err(wrong_state(id, &c.status, "decided by finance"));
    }
    let status = if approve { "approved" } else { "rejected" };
    sql_execute!(
        tx.conn(),
        "update proposals set status = $2 where id = $1",
        id,
        status
    )?;
    let action = if approve {
        "proposal.finance_approve"
    } else {
        "proposal.finance_reject"
    };
    finish(tx, actor, action, id, before).await
}

/// The header of proposals.csv (DESIGN §9).
pub const RELEASE_HEADER: &str =
    "plan_id,proposal_id,kind,part_code,supplier_code,from_code,to_code,qty,order_by,arrive_on,unit_cost,currency,status";

/// Releases approved proposals all together (any stale, missing or unapproved one: none
/// is released): purchases go on order at their destination, transfers leave their source
/// and travel in transit to their destination; a transfer with a credit impact becomes an
/// advance on the station's account. Returns the released proposals as proposals.csv.
pub async fn release(db: &Db, actor: &str, items: &[(i64, i64)]) -> Result<String, ServiceError> {
    release_on(db, actor, items, Utc::now().date_naive()).await
}

/// [`release`] on a given day (the rolling replay releases on simulated days). A line
/// released after its order-by date arrives that much later: its expected arrival moves by
/// the delay, so the pipeline never expects goods sooner than the lead time allows.
pub async fn release_on(
    db: &Db,
    actor: &str,
    items: &[(i64, i64)],
    today: NaiveDate,
) -> Result<String, ServiceError> {
    if items.is_empty() {
        return Err(ServiceError::invalid(
            "proposals",
            "name at least one proposal",
        ));
    }
    let mut tx = db.begin().await?;
    let mut csv = String::from(RELEASE_HEADER);
    csv.push('\n');
    for (i, &(id, version)) in items.iter().enumerate() {
        let c = claim(&mut tx, id, version)
            .await
            .map_err(|e| at_item(e, i))?;
        let before = before_image(view_in(&mut tx, id).await?);
        if c.status != "approved" {
            return Err(at_item(wrong_state(id, &c.status, "released"), i));
        }
        let qty = Qty::new(c.qty).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let reference = Some(format!("proposal:{id}"));
        let movement = |kind, location_id, suffix: &str| Movement {
            kind,
            part_id: c.part_id,
            location_id,
            qty,
            idempotency_key: format!("release:{id}:{suffix}"),
            reference: reference.clone(),
            reason: None,
            actor: actor.to_owned(),
        };
        let moves = match (c.kind.as_str(), c.from_id) {
            ("transfer", Some(from)) => vec![
                movement(MovementKind::TransferOut, from, "out"),
                movement(MovementKind::TransferShip, c.to_id, "ship"),
            ],
            _ => vec![movement(MovementKind::Order, c.to_id, "order")],
        };
        for m in &moves {
            stock::append(&mut tx, m).await.map_err(|e| match e {
                stock::StockError::WouldGoNegative { bucket, .. } => ServiceError::conflict(
                    &format!("proposals[{i}]"),
                    format!(
                        "proposal {id}: the source has too little {bucket} to ship {}",
                        c.qty
                    ),
                ),
                other => ServiceError::from(other),
            })?;
        }
        if c.kind == "transfer" {
            credit::advance(
                &mut tx,
                c.to_id,
                id,
                c.credit_impact_minor,
                &c.currency,
                today,
            )
            .await?;
        }
        sql_execute!(
            tx.conn(),
            "update proposals set status = 'released', released_on = $2, arrive_on = $3 where id = $1",
            id,
            today,
            late_arrival(before.order_by, before.arrive_on, today)
        )?;
        let after = view_in(&mut tx, id).await?;
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            after.plan_run_id,
            after.id,
            after.kind,
            after.part_code,
            after.supplier_code.as_deref().unwrap_or(""),
            after.from_code.as_deref().unwrap_or(""),
            after.to_code,
            after.qty,
            after.order_by,
            after.arrive_on,
            Amount::from_minor(after.unit_cost_minor),
            after.currency,
            after.status
        );
        audit::record(
            &mut tx,
            Change {
                actor,
                action: "proposal.release",
                entity: "proposal",
                entity_id: id.to_string(),
                before: serde_json::to_value(&before).ok(),
                after: Some(json!({"proposal": after, "movements": moves.iter()
                    .map(|m| json!({"kind": m.kind, "location_id": m.location_id, "qty": m.qty.get()}))
                    .collect::<Vec<_>>()})),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(csv)
}

/// When a line released on `released` arrives: as planned, or later by as much as the
/// release came after the order-by date.
pub fn late_arrival(order_by: NaiveDate, arrive_on: NaiveDate, released: NaiveDate) -> NaiveDate {
    if released > order_by {
        arrive_on + (released - order_by)
    } else {
        arrive_on
    }
}

/// Points an error of one item of a batch at that item.
fn at_item(e: ServiceError, i: usize) -> ServiceError {
    match e {
        ServiceError::Conflict { field, why } => ServiceError::Conflict {
            field: format!("proposals[{i}].{field}"),
            why,
        },
        ServiceError::NotFound { what } => {
            ServiceError::invalid(&format!("proposals[{i}].id"), format!("{what} not found"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warehouse_serves_everything_below_it() {
        let tree = [
            (1, None),
            (2, Some(1)),
            (3, Some(2)),
            (4, Some(2)),
            (5, Some(1)),
        ];
        let mut below_2: Vec<i64> = served_by(2, &tree).into_iter().collect();
        below_2.sort();
        assert_eq!(below_2, [2, 3, 4]);
        assert_eq!(served_by(1, &tree).len(), 5);
        assert_eq!(served_by(4, &tree).len(), 1);
    }

    #[test]
    fn a_late_release_arrives_late_and_an_early_one_as_planned() {
        let d = |m, day| NaiveDate::from_ymd_opt(2027, m, day).unwrap_or_default();
        assert_eq!(late_arrival(d(3, 1), d(4, 15), d(3, 11)), d(4, 25));
        assert_eq!(late_arrival(d(3, 20), d(4, 15), d(3, 1)), d(4, 15));
    }

    #[test]
    fn station_forecasts_add_means_and_spreads() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        // Two stations, excesses 3 and 4 over their means: the sum's excess is 5.
        let sum = sum_forecast([(1, 0, d, 1.0, 4.0, 6.0), (2, 0, d, 2.0, 6.0, 2.0)].into_iter());
        assert_eq!(sum.len(), 1);
        assert_eq!(sum[0].mean, 3.0);
        assert!((sum[0].p80 - 8.0).abs() < 1e-12);
        assert!((sum[0].p95 - 8.0).abs() < 1e-12);
    }
}
