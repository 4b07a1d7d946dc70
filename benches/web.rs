//! Server time to render each page of the web interface on the demo data (issue 6's goal:
//! under 100 ms at the median). Requests go through the whole router in-process (session
//! lookup, role gate, queries, rendering), so the figure is the server's, without the
//! network or the browser.
//!
//! `cargo bench --bench web` builds a fresh SQLite database from data/demo and runs the
//! forecast and the monthly plan first (about a minute). `SPAREPLAN_BENCH_DB=<url>` uses an
//! existing database instead (e.g. the one `./dev demo` leaves, `sqlite://spareplan-demo.db`,
//! or a PostgreSQL one). `SPAREPLAN_BENCH_ROUNDS=N` sets the timed requests per page (50).

use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request};
use tower::ServiceExt;

use spareplan::api::{self, Config};
use spareplan::auth::{self, Role};
use spareplan::catalog::CodingRule;
use spareplan::db::Db;
use spareplan::forecast_runs::{self, RunOptions};
use spareplan::web::session;
use spareplan::{interchange, plan_runs, proposals, sql_fetch_optional};

async fn demo_db(dir: &Path) -> Db {
    if let Ok(url) = std::env::var("SPAREPLAN_BENCH_DB") {
        return Db::connect(&url).await.expect("bench database");
    }
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let db = Db::connect(&url).await.expect("fresh database");
    let rule = CodingRule::default();
    interchange::import_dir(&db, Path::new("data/demo"), &rule)
        .await
        .expect("demo imports");
    let stored = forecast_runs::run_and_store(&db, &RunOptions::default())
        .await
        .expect("forecast");
    let (model, text) =
        plan_runs::read_model(Path::new("models/monthly-replenishment.toml")).expect("model");
    plan_runs::run_and_store(&db, model, &text, Some(&stored))
        .await
        .expect("plan");
    db
}

/// A page that shows real data: the station and part of the largest proposal.
async fn sample(db: &Db) -> (i64, String, String) {
    let mut conn = db.acquire().await.expect("conn");
    sql_fetch_optional!(
        (i64, String, String),
        conn.conn(),
        "select p.id, l.code, pt.code from proposals p join locations l on l.id = p.to_id
         join parts pt on pt.id = p.part_id where l.kind = 'station'
         order by p.qty * p.unit_cost_minor desc limit 1"
    )
    .expect("query")
    .expect("the plan proposes something for a station")
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let setup = Instant::now();
    let db = demo_db(dir.path()).await;
    eprintln!("setup {:.1} s", setup.elapsed().as_secs_f64());
    let rounds: usize = std::env::var("SPAREPLAN_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let config = Config::default();
    let app = api::router(db.clone(), CodingRule::default(), &config);
    let (key, _) = auth::create_token(&db, Role::Admin, None, "bench")
        .await
        .expect("token");
    let id = session::sign_in(&db, &key)
        .await
        .expect("sign in")
        .expect("session");
    let cookie = format!("{}={id}", session::COOKIE);
    let (proposal, station, part) = sample(&db).await;
    let run = proposals::latest_plan_run(&db)
        .await
        .expect("run")
        .unwrap_or(0);
    let pages = [
        "/ui/dashboard".to_owned(),
        "/ui/runs".to_owned(),
        format!("/ui/proposals?plan_run={run}"),
        format!("/ui/proposals?plan_run={run}&kind=transfer&sort=order_by"),
        format!("/ui/proposals/{proposal}"),
        "/ui/exceptions".to_owned(),
        format!("/ui/stock?station={station}&part={part}"),
        "/ui/credit".to_owned(),
    ];
    println!(
        "{:<60} {:>10} {:>10} {:>9}",
        "page", "median ms", "p90 ms", "KiB"
    );
    for path in &pages {
        let mut times = Vec::with_capacity(rounds);
        let mut size = 0;
        for i in 0..rounds + 3 {
            let req = Request::get(path.as_str())
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .expect("request");
            let started = Instant::now();
            let res = app.clone().oneshot(req).await.expect("infallible");
            assert!(res.status().is_success(), "{path}: {}", res.status());
            let body = axum::body::to_bytes(res.into_body(), 64 << 20)
                .await
                .expect("body");
            // The first requests warm the caches and are not counted.
            if i >= 3 {
                times.push(started.elapsed());
            }
            size = body.len();
        }
        let (med, p90) = median(times);
        println!(
            "{path:<60} {:>10.2} {:>10.2} {:>9.1}",
            med.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3,
            size as f64 / 1024.0
        );
    }
    db.close().await;
}
