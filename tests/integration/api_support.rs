//! Driving the real router in-process: requests, tokens and small fixtures.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use spareplan::api::{self, Config};
use spareplan::auth::{self, Role};
use spareplan::catalog::CodingRule;
use spareplan::db::Db;
use spareplan::{interchange, sql_fetch_optional, sql_scalar};

use crate::support::{fresh_db, repo_path, tiny, TestDb};

pub struct Api {
    pub app: Router,
    pub t: TestDb,
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a problem document with this status naming this field.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, field: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        assert_eq!(
            self.content_type,
            "application/problem+json",
            "{}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["status"], status, "{p}");
        if field.is_empty() {
            assert!(p.get("field").is_none(), "{p}");
        } else {
            assert_eq!(p["field"], field, "{p}");
        }
        assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()), "{p}");
    }
}

pub fn config() -> Config {
    Config {
        models_dir: repo_path("models"),
        upload_limit: 256 << 10,
        ..Config::default()
    }
}

impl Api {
    pub async fn new() -> Api {
        Api::with_config(&config()).await
    }

    pub async fn with_config(config: &Config) -> Api {
        let t = fresh_db().await;
        let app = api::router(t.db.clone(), CodingRule::default(), config);
        Api { app, t }
    }

    /// A fresh database with the tiny fixture loaded.
    pub async fn tiny() -> Api {
        let api = Api::new().await;
        interchange::import_dir(&api.t.db, &tiny(), &CodingRule::default())
            .await
            .expect("tiny fixture imports");
        api
    }

    pub fn db(&self) -> &Db {
        &self.t.db
    }

    pub async fn token(&self, role: Role, station: Option<&str>) -> String {
        auth::create_token(self.db(), role, station, "test")
            .await
            .expect("token")
            .0
    }

    /// Another instance of the service on the same database: its own pool and caches.
    pub async fn other_instance(&self, config: &Config) -> Router {
        let db = Db::connect(&self.t.url).await.expect("second pool");
        api::router(db, CodingRule::default(), config)
    }

    /// A GET answered by `app` (another instance) instead of this one.
    pub async fn get_on(&self, app: &Router, path: &str, token: &str) -> Reply {
        send(app, Method::GET, path, Some(token), None, Vec::new()).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        send(&self.app, method, path, token, content_type, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.raw(Method::GET, path, Some(token), None, Vec::new())
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.raw(
            Method::POST,
            path,
            Some(token),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Rows of a table: to prove that a refused request wrote nothing.
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = self.db().acquire().await.expect("conn");
        sql_scalar!(
            i64,
            conn.conn(),
            &format!("select cast(count(*) as bigint) from {table}")
        )
        .expect("count")
    }

    /// A solved plan run with hand-made proposals on the tiny network, so tests of the
    /// workflow do not need the solver: (purchase of PT-MEC-000010 to C01, transfer of
    /// PT-MEC-000010 C01 → S002 with a credit impact of `impact_minor`). Returns their ids.
    pub async fn seed_proposals(&self, impact_minor: i64) -> (i64, i64) {
        let mut conn = self.db().acquire().await.expect("conn");
        let (run,) = sql_fetch_optional!(
            (i64,),
            conn.conn(),
            "insert into plan_runs (model_name, model_toml, status, created_at)
             values ('test', '', 'solved', $1) returning id",
            chrono::Utc::now()
        )
        .expect("plan run")
        .expect("id");
        let id = |code: &'static str, table: &'static str| {
            format!("(select id from {table} where code = '{code}')")
        };
        let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 15).expect("date");
        let purchase = format!(
            "insert into proposals (plan_run_id, kind, part_id, supplier_id, from_id, to_id, qty, order_by,
                 arrive_on, unit_cost_minor, currency, credit_impact_minor, status, version, reason_json)
             values ($1, 'purchase', {}, {}, null, {}, 10, $2, $2, 1500, 'CNY', 0, 'proposed', 1, '{{}}') returning id",
            id("PT-MEC-000010", "parts"),
            id("SUP1", "suppliers"),
            id("C01", "locations")
        );
        let (p,) = sql_fetch_optional!((i64,), conn.conn(), &purchase, run, date)
            .expect("purchase")
            .expect("id");
        let transfer = format!(
            "insert into proposals (plan_run_id, kind, part_id, supplier_id, from_id, to_id, qty, order_by,
                 arrive_on, unit_cost_minor, currency, credit_impact_minor, status, version, reason_json)
             values ($1, 'transfer', {}, null, {}, {}, 4, $2, $2, 1500, 'CNY', $3, 'proposed', 1,
                 '{{\"covers\": []}}') returning id",
            id("PT-MEC-000010", "parts"),
            id("C01", "locations"),
            id("S002", "locations")
        );
        let (t,) = sql_fetch_optional!((i64,), conn.conn(), &transfer, run, date, impact_minor)
            .expect("transfer")
            .expect("id");
        (p, t)
    }
}

async fn send(
    app: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let req = req.body(Body::from(body)).expect("request");
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .expect("body")
        .to_vec();
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}
