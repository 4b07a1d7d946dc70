//! Thin handlers: parse, call the service layer, shape the answer.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{body_bytes, ApiJson, ApiPath, ApiQuery, Caller};
use super::AppState;
use crate::auth::Role;
use crate::availability::{self, StationMove};
use crate::interchange::{self, ImportError, Kind};
use crate::jobs::{self, JobSpec};
use crate::units::Qty;
use crate::{audit, credit, proposals};

type ApiResult<T> = Result<Json<T>, ApiError>;

// ---- probes ------------------------------------------------------------------------

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(s): State<AppState>) -> Result<&'static str, ApiError> {
    let mut conn = s.db.acquire().await.map_err(|_| ApiError::Unavailable)?;
    crate::sql_scalar!(i64, conn.conn(), "select cast(1 as bigint)")
        .map_err(|_| ApiError::Unavailable)?;
    Ok("ready")
}

pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

pub async fn openapi() -> impl IntoResponse {
    Json(super::openapi::document())
}

// ---- runs --------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// Months to forecast (default 12).
    pub horizon: Option<usize>,
    /// Months of history to use (default all).
    pub history_months: Option<usize>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Planning model name: `models/<model>.toml` (default monthly-replenishment).
    pub model: Option<String>,
}

pub async fn start_forecast(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiJson(b): ApiJson<ForecastRequest>,
) -> Result<(StatusCode, Json<jobs::JobView>), ApiError> {
    let spec = JobSpec::Forecast {
        horizon: b.horizon.unwrap_or(12),
        history_months: b.history_months,
    };
    let job = s.jobs.submit(&p.actor(), spec).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

pub async fn start_plan(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiJson(b): ApiJson<PlanRequest>,
) -> Result<(StatusCode, Json<jobs::JobView>), ApiError> {
    let spec = JobSpec::Plan {
        model: b.model.unwrap_or_else(|| "monthly-replenishment".into()),
    };
    let job = s.jobs.submit(&p.actor(), spec).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

pub async fn list_jobs(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<crate::service::Page<jobs::JobView>> {
    Ok(Json(jobs::list(&s.db, q.after, q.limit).await?))
}

pub async fn get_job(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<jobs::JobView> {
    Ok(Json(jobs::get(&s.db, id).await?))
}

// ---- proposals ---------------------------------------------------------------------

pub async fn list_proposals(
    State(s): State<AppState>,
    ApiQuery(filter): ApiQuery<proposals::Filter>,
) -> ApiResult<crate::service::Page<proposals::ProposalView>> {
    Ok(Json(proposals::list(&s.db, &filter).await?))
}

pub async fn get_proposal(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<proposals::ProposalDetail> {
    Ok(Json(proposals::detail(&s.db, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// The version read; a stale one is refused with 409.
    pub version: i64,
    pub qty: i64,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRequest {
    pub version: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub version: i64,
    pub approve: bool,
}

fn qty(value: i64) -> Result<Qty, ApiError> {
    Qty::new(value)
        .ok()
        .filter(|q| *q != Qty::ZERO)
        .ok_or_else(|| ApiError::invalid("qty", "must be a positive whole number"))
}

pub async fn edit_proposal(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<EditRequest>,
) -> ApiResult<proposals::ProposalView> {
    let q = qty(b.qty)?;
    Ok(Json(
        proposals::edit(&s.db, &p.actor(), id, b.version, q, &b.reason).await?,
    ))
}

pub async fn approve_proposal(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<VersionRequest>,
) -> ApiResult<proposals::ProposalView> {
    Ok(Json(
        proposals::approve(&s.db, &p.actor(), id, b.version).await?,
    ))
}

pub async fn reject_proposal(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<VersionRequest>,
) -> ApiResult<proposals::ProposalView> {
    Ok(Json(
        proposals::reject(&s.db, &p.actor(), id, b.version, b.reason.as_deref()).await?,
    ))
}

pub async fn finance_decide_proposal(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<DecisionRequest>,
) -> ApiResult<proposals::ProposalView> {
    Ok(Json(
        proposals::finance_decide(&s.db, &p.actor(), id, b.version, b.approve).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseItem {
    pub id: i64,
    pub version: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    pub proposals: Vec<ReleaseItem>,
}

pub async fn release_proposals(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiJson(b): ApiJson<ReleaseRequest>,
) -> Result<Response, ApiError> {
    let items: Vec<(i64, i64)> = b.proposals.iter().map(|i| (i.id, i.version)).collect();
    let csv = proposals::release(&s.db, &p.actor(), &items).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"proposals.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

// ---- stations ----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityQuery {
    pub part: String,
    pub station: String,
}

pub async fn availability(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<AvailabilityQuery>,
) -> ApiResult<availability::Availability> {
    Ok(Json(
        availability::availability(&s.db, &s.rule, &s.lookups, &q.part, &q.station).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub part_code: String,
    pub qty: i64,
    /// The repair work order the part was used on.
    pub work_order: String,
    /// Unique per intended movement; a retry carries the same key and moves nothing twice.
    pub idempotency_key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    pub part_code: String,
    pub qty: i64,
    pub idempotency_key: String,
    /// The released transfer this receipt completes (moves in-transit to on-hand).
    pub proposal_id: Option<i64>,
}

fn own_station(p: &crate::auth::Principal, station: &str) -> Result<(), ApiError> {
    if p.may_write_station(station) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this token may not write the stock of station '{station}'"
        )))
    }
}

pub async fn record_issue(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(station): ApiPath<String>,
    ApiJson(b): ApiJson<IssueRequest>,
) -> ApiResult<availability::Recorded> {
    own_station(&p, &station)?;
    if b.work_order.trim().is_empty() {
        return Err(ApiError::invalid("work_order", "must not be empty"));
    }
    Ok(Json(
        availability::record(
            &s.db,
            &s.rule,
            &p.actor(),
            &station,
            StationMove::Issue,
            &b.part_code,
            b.qty,
            &b.idempotency_key,
            Some(b.work_order),
        )
        .await?,
    ))
}

pub async fn record_receipt(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(station): ApiPath<String>,
    ApiJson(b): ApiJson<ReceiptRequest>,
) -> ApiResult<availability::Recorded> {
    own_station(&p, &station)?;
    let (what, reference) = match b.proposal_id {
        Some(id) => (StationMove::TransferArrival, Some(format!("proposal:{id}"))),
        None => (StationMove::Receipt, None),
    };
    Ok(Json(
        availability::record(
            &s.db,
            &s.rule,
            &p.actor(),
            &station,
            what,
            &b.part_code,
            b.qty,
            &b.idempotency_key,
            reference,
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockQuery {
    #[serde(default)]
    pub in_transit: bool,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

pub async fn station_stock(
    State(s): State<AppState>,
    ApiPath(station): ApiPath<String>,
    ApiQuery(q): ApiQuery<StockQuery>,
) -> ApiResult<crate::service::Page<availability::StockLine>> {
    Ok(Json(
        availability::station_stock(&s.db, &station, q.in_transit, q.after, q.limit).await?,
    ))
}

pub async fn station_arrivals(
    State(s): State<AppState>,
    ApiPath(station): ApiPath<String>,
) -> ApiResult<Vec<availability::Arrival>> {
    Ok(Json(
        availability::expected_arrivals(&s.db, &station).await?,
    ))
}

// ---- receiving ---------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineReceiptRequest {
    /// The released line (proposal) the goods arrived on.
    pub proposal_id: i64,
    /// Where they arrived: the line's destination.
    pub location: String,
    /// Units arrived now (part of the open quantity, or all of it).
    pub qty: i64,
    /// Unique per intended receipt; a retry carries the same key and books nothing twice.
    pub idempotency_key: String,
    /// The part code on the label, checked against the line when given.
    pub part_code: Option<String>,
}

fn may_receive_at(p: &crate::auth::Principal, location: &str) -> Result<(), ApiError> {
    match p.role {
        Role::Admin | Role::Planner => Ok(()),
        Role::Station if p.may_write_station(location) => Ok(()),
        _ => Err(ApiError::Forbidden(format!(
            "this token may not book receipts at '{location}'"
        ))),
    }
}

pub async fn receive_line(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiJson(b): ApiJson<LineReceiptRequest>,
) -> ApiResult<crate::pipeline::Received> {
    may_receive_at(&p, &b.location)?;
    let qty = Qty::new(b.qty)
        .ok()
        .filter(|q| *q != Qty::ZERO)
        .ok_or_else(|| ApiError::invalid("qty", "must be a positive whole number"))?;
    let receipt = crate::pipeline::Receipt {
        proposal_id: b.proposal_id,
        location_code: b.location,
        qty,
        idempotency_key: b.idempotency_key,
        part_code: b.part_code,
    };
    Ok(Json(
        crate::pipeline::receive(&s.db, &p.actor(), &receipt).await?,
    ))
}

/// A warehouse's bulk receipts: a CSV of `proposal_id,location_code,qty,idempotency_key`,
/// booked all or nothing.
pub async fn receive_lines_csv(
    State(s): State<AppState>,
    Caller(p): Caller,
    req: Request,
) -> ApiResult<Vec<crate::pipeline::Received>> {
    let body = body_bytes(req, &s).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("file", "the receipts file is not UTF-8"))?;
    Ok(Json(
        crate::pipeline::receive_csv(&s.db, &p.actor(), text).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivingQuery {
    pub location: Option<String>,
    #[serde(default)]
    pub overdue: bool,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

pub async fn arriving(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ArrivingQuery>,
) -> ApiResult<crate::service::Page<crate::pipeline::LineView>> {
    let filter = crate::pipeline::ArrivingFilter {
        location: q.location,
        overdue_only: q.overdue,
        as_of: chrono::Utc::now().date_naive(),
        after: q.after,
        limit: q.limit,
    };
    Ok(Json(crate::pipeline::arriving(&s.db, &filter).await?))
}

// ---- finance -----------------------------------------------------------------------

pub async fn credit_accounts(State(s): State<AppState>) -> ApiResult<Vec<credit::CreditAccount>> {
    Ok(Json(credit::accounts(&s.db).await?))
}

pub async fn credit_account(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(station): ApiPath<String>,
) -> ApiResult<credit::CreditAccount> {
    if p.role == Role::Station && !p.may_write_station(&station) {
        return Err(ApiError::Forbidden(
            "a station reads only its own credit account".into(),
        ));
    }
    Ok(Json(credit::account(&s.db, &station).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub amount_minor: i64,
    pub paid_on: NaiveDate,
    pub reference: Option<String>,
}

pub async fn record_payment(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(station): ApiPath<String>,
    ApiJson(b): ApiJson<PaymentRequest>,
) -> ApiResult<credit::CreditAccount> {
    Ok(Json(
        credit::record_payment(
            &s.db,
            &p.actor(),
            &station,
            b.amount_minor,
            b.paid_on,
            b.reference.as_deref(),
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitChangeRequest {
    pub new_limit_minor: i64,
    pub reason: String,
}

pub async fn request_limit(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(station): ApiPath<String>,
    ApiJson(b): ApiJson<LimitChangeRequest>,
) -> Result<(StatusCode, Json<credit::LimitRequest>), ApiError> {
    let r =
        credit::request_limit(&s.db, &p.actor(), &station, b.new_limit_minor, &b.reason).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    pub status: Option<String>,
}

pub async fn limit_requests(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> ApiResult<Vec<credit::LimitRequest>> {
    Ok(Json(
        credit::limit_requests(&s.db, q.status.as_deref()).await?,
    ))
}

pub async fn decide_limit(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<DecisionRequest>,
) -> ApiResult<credit::LimitRequest> {
    Ok(Json(
        credit::decide_limit(&s.db, &p.actor(), id, b.version, b.approve).await?,
    ))
}

// ---- admin -------------------------------------------------------------------------

pub async fn audit_log(
    State(s): State<AppState>,
    ApiQuery(filter): ApiQuery<audit::Filter>,
) -> ApiResult<crate::service::Page<audit::AuditEntry>> {
    Ok(Json(audit::list(&s.db, &filter).await?))
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ImportResult {
    pub kind: String,
    pub rows: u64,
}

/// A CSV upload: the same all-or-nothing import as the CLI; bad rows come back in the
/// problem's `errors`, nothing written.
pub async fn import_csv(
    State(s): State<AppState>,
    Caller(p): Caller,
    ApiPath(kind): ApiPath<String>,
    req: Request,
) -> Result<(StatusCode, Json<ImportResult>), ApiError> {
    use clap::ValueEnum;
    let kind = Kind::from_str(&kind, true)
        .map_err(|_| ApiError::invalid("kind", format!("'{kind}' is not an import kind")))?;
    let is_csv = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType {
            expected: "text/csv",
        });
    }
    let body = body_bytes(req, &s).await?;
    let dir = std::env::temp_dir().join(format!("spareplan-upload-{}", uuid::Uuid::new_v4()));
    let path = dir.join(kind.file_name());
    let write = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &body));
    if let Err(e) = write {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(ApiError::Internal(format!("cannot spool the upload: {e}")));
    }
    let outcome = import_and_audit(&s, &p.actor(), kind, &path, body.len()).await;
    let _ = std::fs::remove_dir_all(&dir);
    match outcome {
        Ok(rows) => Ok((
            StatusCode::CREATED,
            Json(ImportResult {
                kind: kind.file_name().to_owned(),
                rows,
            }),
        )),
        Err(ImportError::BadRows(mut rows)) => {
            for r in &mut rows {
                r.file = kind.file_name().to_owned();
            }
            Err(ApiError::BadRows(rows))
        }
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

/// The import and its audit entry in one transaction.
async fn import_and_audit(
    s: &AppState,
    actor: &str,
    kind: Kind,
    path: &std::path::Path,
    bytes: usize,
) -> Result<u64, ImportError> {
    let mut tx = s.db.begin().await?;
    let rows = interchange::import_in(&mut tx, kind, path, &s.rule).await?;
    audit::record(
        &mut tx,
        audit::Change {
            actor,
            action: "import",
            entity: "import",
            entity_id: kind.file_name().to_owned(),
            before: None,
            after: Some(serde_json::json!({"rows": rows, "bytes": bytes})),
        },
    )
    .await
    .map_err(|e| match e {
        crate::service::ServiceError::Db(e) => ImportError::Db(e),
        other => ImportError::Db(crate::db::DbError::Sqlx(sqlx::Error::Protocol(
            other.to_string(),
        ))),
    })?;
    tx.commit().await?;
    Ok(rows)
}
