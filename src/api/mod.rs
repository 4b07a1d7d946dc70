//! The HTTP API (DESIGN §8): axum under `/api/v1`, JSON in and out, problem+json errors,
//! bearer tokens with roles, an OpenAPI document generated from the endpoint table.
//!
//! Every endpoint is one row of [`endpoints`]: its method, path, the roles it admits, its
//! documentation and its handler. The router, the role gate and the OpenAPI document are
//! all built from that table, so no endpoint can escape the gate or the document.

mod error;
mod extract;
mod handlers;
mod openapi;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::{ApiError, Problem};
pub use openapi::document as openapi_document;

use crate::auth::{self, Role};
use crate::catalog::CodingRule;
use crate::db::Db;
use crate::jobs::JobRunner;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub rule: Arc<CodingRule>,
    pub jobs: JobRunner,
    /// Part-code resolutions and stations for availability look-ups.
    pub lookups: Arc<crate::availability::Lookups>,
    /// Forecast and history aggregates of the dashboard and the exceptions board.
    pub insight: Arc<crate::kpi::Cache>,
    metrics: PrometheusHandle,
}

/// Settings of one server instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where planning models `<name>.toml` live.
    pub models_dir: PathBuf,
    /// Largest CSV upload, in bytes.
    pub upload_limit: usize,
    /// Largest JSON body, in bytes.
    pub json_limit: usize,
    /// Time limit of one forecast or plan job (the solver's own limit is capped by it).
    pub job_time_limit: Duration,
    /// How long a known token is remembered (a revocation takes effect within this).
    pub token_cache_ttl: Duration,
    /// How long availability look-ups remember a code's resolution and a station (an
    /// import's supersessions and station moves show within this).
    pub lookup_cache_ttl: Duration,
    /// How long availability look-ups may keep a part's holders. Commits of this instance,
    /// and on PostgreSQL of every instance, end an entry at once; the time bounds only what
    /// no notice reaches (on SQLite, a write by another process such as a CLI import).
    pub stock_cache_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            models_dir: PathBuf::from("models"),
            upload_limit: 64 << 20,
            json_limit: 256 << 10,
            job_time_limit: Duration::from_secs(600),
            token_cache_ttl: Duration::from_secs(30),
            lookup_cache_ttl: Duration::from_secs(30),
            stock_cache_ttl: Duration::from_secs(5),
        }
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (probes, metrics, the OpenAPI document).
    Public,
    /// A bearer token of one of these roles.
    Roles(&'static [Role]),
}

impl Access {
    pub fn admits(self, role: Role) -> bool {
        match self {
            Access::Public => true,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

/// What an endpoint reads or answers, for the OpenAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// JSON of the named schema component.
    Json(&'static str),
    /// A CSV file (DESIGN §9).
    Csv,
    Text,
}

/// One row of the endpoint table.
pub struct Endpoint {
    pub method: Method,
    /// The full path, axum syntax (`/api/v1/proposals/{id}`).
    pub path: &'static str,
    pub access: Access,
    pub tag: &'static str,
    pub summary: &'static str,
    pub request: Body,
    pub response: Body,
    /// The success status.
    pub status: u16,
    route: fn() -> MethodRouter<AppState>,
}

const ALL: &[Role] = &Role::ALL;
const PLANNING: &[Role] = &[Role::Admin, Role::Planner];
const READ_PLANS: &[Role] = &[Role::Admin, Role::Planner, Role::Finance, Role::Viewer];
const FINANCE: &[Role] = &[Role::Finance];
const STATION_WRITE: &[Role] = &[Role::Admin, Role::Station];
const RECEIVE: &[Role] = &[Role::Admin, Role::Planner, Role::Station];
const ADMIN: &[Role] = &[Role::Admin];

/// Every endpoint of the service.
pub fn endpoints() -> Vec<Endpoint> {
    use handlers as h;
    use Body::{Csv, Json, None as NoBody, Text};
    let e = |method: Method,
             path: &'static str,
             access: Access,
             tag: &'static str,
             summary: &'static str,
             request: Body,
             response: Body,
             status: u16,
             route: fn() -> MethodRouter<AppState>| Endpoint {
        method,
        path,
        access,
        tag,
        summary,
        request,
        response,
        status,
        route,
    };
    vec![
        e(
            Method::GET,
            "/healthz",
            Access::Public,
            "ops",
            "Liveness",
            NoBody,
            Text,
            200,
            || get(h::healthz),
        ),
        e(
            Method::GET,
            "/readyz",
            Access::Public,
            "ops",
            "Readiness: the database answers",
            NoBody,
            Text,
            200,
            || get(h::readyz),
        ),
        e(
            Method::GET,
            "/metrics",
            Access::Public,
            "ops",
            "Prometheus metrics",
            NoBody,
            Text,
            200,
            || get(h::metrics),
        ),
        e(
            Method::GET,
            "/api/v1/openapi.json",
            Access::Public,
            "ops",
            "This document",
            NoBody,
            Json("Object"),
            200,
            || get(h::openapi),
        ),
        // Planners: runs and the proposal queue.
        e(
            Method::POST,
            "/api/v1/forecast-runs",
            Access::Roles(PLANNING),
            "planning",
            "Start a forecast run (background job)",
            Json("ForecastRequest"),
            Json("JobView"),
            202,
            || post(h::start_forecast),
        ),
        e(
            Method::POST,
            "/api/v1/plan-runs",
            Access::Roles(PLANNING),
            "planning",
            "Start a plan run (background job)",
            Json("PlanRequest"),
            Json("JobView"),
            202,
            || post(h::start_plan),
        ),
        e(
            Method::GET,
            "/api/v1/jobs",
            Access::Roles(READ_PLANS),
            "planning",
            "List jobs",
            NoBody,
            Json("Page_JobView"),
            200,
            || get(h::list_jobs),
        ),
        e(
            Method::GET,
            "/api/v1/jobs/{id}",
            Access::Roles(READ_PLANS),
            "planning",
            "A job's status",
            NoBody,
            Json("JobView"),
            200,
            || get(h::get_job),
        ),
        e(
            Method::GET,
            "/api/v1/proposals",
            Access::Roles(READ_PLANS),
            "planning",
            "List proposals (filters: plan_run, kind, status, part, station; keyset: after, limit)",
            NoBody,
            Json("Page_ProposalView"),
            200,
            || get(h::list_proposals),
        ),
        e(
            Method::GET,
            "/api/v1/proposals/{id}",
            Access::Roles(READ_PLANS),
            "planning",
            "One proposal with its reason, history, forecast and projected stock",
            NoBody,
            Json("ProposalDetail"),
            200,
            || get(h::get_proposal),
        ),
        e(
            Method::POST,
            "/api/v1/proposals/{id}/edit",
            Access::Roles(PLANNING),
            "planning",
            "Change the quantity, with a reason",
            Json("EditRequest"),
            Json("ProposalView"),
            200,
            || post(h::edit_proposal),
        ),
        e(
            Method::POST,
            "/api/v1/proposals/{id}/approve",
            Access::Roles(PLANNING),
            "planning",
            "Approve (a transfer over its station's credit waits for finance)",
            Json("VersionRequest"),
            Json("ProposalView"),
            200,
            || post(h::approve_proposal),
        ),
        e(
            Method::POST,
            "/api/v1/proposals/{id}/reject",
            Access::Roles(PLANNING),
            "planning",
            "Reject",
            Json("VersionRequest"),
            Json("ProposalView"),
            200,
            || post(h::reject_proposal),
        ),
        e(
            Method::POST,
            "/api/v1/proposals/release",
            Access::Roles(PLANNING),
            "planning",
            "Release approved proposals; answers proposals.csv",
            Json("ReleaseRequest"),
            Csv,
            200,
            || post(h::release_proposals),
        ),
        e(
            Method::POST,
            "/api/v1/proposals/{id}/finance-decision",
            Access::Roles(FINANCE),
            "finance",
            "Approve or reject a transfer awaiting finance",
            Json("DecisionRequest"),
            Json("ProposalView"),
            200,
            || post(h::finance_decide_proposal),
        ),
        // Stations.
        e(
            Method::GET,
            "/api/v1/availability",
            Access::Roles(ALL),
            "stations",
            "Availability of a part for a station (query: part, station)",
            NoBody,
            Json("Availability"),
            200,
            || get(h::availability),
        ),
        e(
            Method::POST,
            "/api/v1/stations/{code}/issues",
            Access::Roles(STATION_WRITE),
            "stations",
            "Record an issue against a work order",
            Json("IssueRequest"),
            Json("Recorded"),
            200,
            || post(h::record_issue),
        ),
        e(
            Method::POST,
            "/api/v1/stations/{code}/receipts",
            Access::Roles(STATION_WRITE),
            "stations",
            "Record a receipt (of a released transfer with proposal_id)",
            Json("ReceiptRequest"),
            Json("Recorded"),
            200,
            || post(h::record_receipt),
        ),
        e(
            Method::GET,
            "/api/v1/stations/{code}/stock",
            Access::Roles(ALL),
            "stations",
            "A station's stock (in_transit=true: goods on the way)",
            NoBody,
            Json("Page_StockLine"),
            200,
            || get(h::station_stock),
        ),
        e(
            Method::GET,
            "/api/v1/stations/{code}/arrivals",
            Access::Roles(ALL),
            "stations",
            "Released transfers and orders not yet received",
            NoBody,
            Json("Arrival"),
            200,
            || get(h::station_arrivals),
        ),
        // Receiving: any location books arrivals against released lines.
        e(
            Method::POST,
            "/api/v1/receipts",
            Access::Roles(RECEIVE),
            "receiving",
            "Book the arrival of a released line, in full or in part (a station only at itself)",
            Json("LineReceiptRequest"),
            Json("Received"),
            200,
            || post(h::receive_line),
        ),
        e(
            Method::POST,
            "/api/v1/receipts/bulk",
            Access::Roles(PLANNING),
            "receiving",
            "Book a CSV of receipts (proposal_id,location_code,qty,idempotency_key), all or nothing",
            Csv,
            Json("Received"),
            200,
            || post(h::receive_lines_csv),
        ),
        e(
            Method::GET,
            "/api/v1/arriving",
            Access::Roles(ALL),
            "receiving",
            "Open lines with ordered, received and open quantity (query: location, overdue, after, limit)",
            NoBody,
            Json("Page_LineView"),
            200,
            || get(h::arriving),
        ),
        // Finance.
        e(
            Method::GET,
            "/api/v1/credit",
            Access::Roles(READ_PLANS),
            "finance",
            "Every station's credit account",
            NoBody,
            Json("CreditAccount"),
            200,
            || get(h::credit_accounts),
        ),
        e(
            Method::GET,
            "/api/v1/credit/{code}",
            Access::Roles(ALL),
            "finance",
            "One station's credit account (a station reads its own)",
            NoBody,
            Json("CreditAccount"),
            200,
            || get(h::credit_account),
        ),
        e(
            Method::POST,
            "/api/v1/credit/{code}/payments",
            Access::Roles(FINANCE),
            "finance",
            "Record a station's payment",
            Json("PaymentRequest"),
            Json("CreditAccount"),
            200,
            || post(h::record_payment),
        ),
        e(
            Method::POST,
            "/api/v1/credit/{code}/limit-requests",
            Access::Roles(PLANNING),
            "finance",
            "Request a credit limit change",
            Json("LimitChangeRequest"),
            Json("LimitRequest"),
            201,
            || post(h::request_limit),
        ),
        e(
            Method::GET,
            "/api/v1/limit-requests",
            Access::Roles(READ_PLANS),
            "finance",
            "Limit change requests (query: status)",
            NoBody,
            Json("LimitRequest"),
            200,
            || get(h::limit_requests),
        ),
        e(
            Method::POST,
            "/api/v1/limit-requests/{id}/decision",
            Access::Roles(FINANCE),
            "finance",
            "Approve or reject a limit change",
            Json("DecisionRequest"),
            Json("LimitRequest"),
            200,
            || post(h::decide_limit),
        ),
        // Admin.
        e(
            Method::GET,
            "/api/v1/audit",
            Access::Roles(ADMIN),
            "admin",
            "The audit log (filters: entity, entity_id, action; keyset)",
            NoBody,
            Json("Page_AuditEntry"),
            200,
            || get(h::audit_log),
        ),
        e(
            Method::POST,
            "/api/v1/imports/{kind}",
            Access::Roles(PLANNING),
            "admin",
            "Import one CSV file (all or nothing; bad rows in the problem)",
            Csv,
            Json("ImportResult"),
            201,
            || post(h::import_csv),
        ),
    ]
}

/// The metrics recorder is process-wide; tests build many routers in one process.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[derive(Clone)]
struct Gate {
    db: Db,
    tokens: Arc<auth::TokenCache>,
    roles: &'static [Role],
}

/// Authenticates the bearer token and admits only the endpoint's roles.
async fn gate(State(g): State<Gate>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return ApiError::Unauthenticated.into_response();
    };
    let principal = match g.tokens.authenticate(&g.db, token).await {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::Unauthenticated.into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !g.roles.contains(&principal.role) {
        return ApiError::Forbidden(format!(
            "role {} may not call this endpoint",
            principal.role
        ))
        .into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Counts requests and their latency by route and status.
async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The application: every endpoint of the table behind its gate, with request ids,
/// tracing, metrics and body limits.
pub fn router(db: Db, rule: CodingRule, config: &Config) -> Router {
    router_with(state(db, rule, config), config)
}

/// The shared state of one instance.
pub fn state(db: Db, rule: CodingRule, config: &Config) -> AppState {
    if tokio::runtime::Handle::try_current().is_ok() {
        db.follow_other_instances();
    }
    AppState {
        jobs: JobRunner::new(db.clone(), config.models_dir.clone(), config.job_time_limit),
        db,
        rule: Arc::new(rule),
        lookups: Arc::new(crate::availability::Lookups::new(
            config.lookup_cache_ttl,
            config.stock_cache_ttl,
        )),
        insight: Arc::new(crate::kpi::Cache::default()),
        metrics: metrics_handle(),
    }
}

fn router_with(state: AppState, config: &Config) -> Router {
    let tokens = Arc::new(auth::TokenCache::new(config.token_cache_ttl));
    let mut app: Router<AppState> = Router::new();
    for e in endpoints() {
        let mut route = (e.route)();
        if let Access::Roles(roles) = e.access {
            route = route.route_layer(middleware::from_fn_with_state(
                Gate {
                    db: state.db.clone(),
                    tokens: tokens.clone(),
                    roles,
                },
                gate,
            ));
        }
        if e.request == Body::Csv {
            route = route.layer(DefaultBodyLimit::max(config.upload_limit));
        }
        app = app.route(e.path, route);
    }
    let app = app.merge(crate::web::router(&state.db));
    let request_id = HeaderName::from_static("x-request-id");
    app.fallback(|| async { ApiError::NotFound("this path".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(track))
        .layer(DefaultBodyLimit::max(config.json_limit))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), uri = %req.uri())
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Serves until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub async fn serve(
    db: Db,
    rule: CodingRule,
    config: Config,
    addr: SocketAddr,
) -> std::io::Result<()> {
    let state = state(db, rule, &config);
    if let Err(e) = state.jobs.recover().await {
        tracing::error!(error = %e, "could not recover jobs");
    }
    let app = router_with(state, &config);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /api/v1 and the web interface at /ui");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
