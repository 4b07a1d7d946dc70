//! The operating loop (issue 25) through the HTTP API: released lines are received in full
//! or in part at any location, never beyond what is open; a new plan run supersedes the
//! older runs' open proposals; plan runs run one at a time; and the next plan's pipeline
//! is the open lines, exactly.

use std::collections::HashMap;

use serde_json::{json, Value};

use spareplan::auth::Role;
use spareplan::catalog::CodingRule;
use spareplan::forecast_runs::{self, RunOptions};
use spareplan::generate::{self, GenerateConfig};
use spareplan::interchange;
use spareplan::plan::PlanModel;
use spareplan::plan_runs::{self, PlanRunError};
use spareplan::{proposals, sql_execute, sql_fetch_all};

use crate::api_support::Api;
use crate::support::repo_path;

const PART: &str = "PT-MEC-000010";

fn model() -> (PlanModel, String) {
    let text = std::fs::read_to_string(repo_path("models/monthly-replenishment.toml"))
        .expect("model file");
    (PlanModel::from_toml(&text).expect("model"), text)
}

/// Approves and releases both seeded proposals through the API.
async fn release_seeded(api: &Api, planner: &str, ids: [i64; 2]) {
    for id in ids {
        let r = api
            .post(
                &format!("/api/v1/proposals/{id}/approve"),
                planner,
                json!({"version": 1}),
            )
            .await;
        assert_eq!(r.json()["status"], "approved", "{}", r.text());
    }
    let items: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "version": 2}))
        .collect();
    let r = api
        .post(
            "/api/v1/proposals/release",
            planner,
            json!({"proposals": items}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn stock_of(api: &Api, location: &str, token: &str) -> Value {
    let page = api
        .get(
            &format!("/api/v1/stations/{location}/stock?limit=500"),
            token,
        )
        .await
        .json();
    page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|l| l["part_code"] == PART).cloned())
        .unwrap_or(Value::Null)
}

fn receipt(id: i64, location: &str, qty: i64, key: &str) -> Value {
    json!({"proposal_id": id, "location": location, "qty": qty, "idempotency_key": key})
}

#[tokio::test]
async fn lines_are_received_in_parts_and_never_beyond_what_is_open() {
    let api = Api::tiny().await;
    let planner = api.token(Role::Planner, None).await;
    let station = api.token(Role::Station, Some("S002")).await;
    let (purchase, transfer) = api.seed_proposals(0).await;
    release_seeded(&api, &planner, [purchase, transfer]).await;
    let central = stock_of(&api, "C01", &planner).await;
    assert_eq!(
        (central["on_hand"].as_i64(), central["on_order"].as_i64()),
        (Some(36), Some(10))
    );

    // The arriving list shows both lines open in full, the purchase at the central.
    let arriving = api
        .get("/api/v1/arriving?location=C01", &planner)
        .await
        .json();
    let line = &arriving["items"][0];
    assert_eq!(line["proposal_id"], purchase, "{arriving}");
    assert_eq!(
        line["line"],
        json!({"ordered": 10, "received": 0, "open": 10})
    );

    // The purchase arrives in two parts at the central (a planner books it).
    let r = api
        .post(
            "/api/v1/receipts",
            &planner,
            receipt(purchase, "C01", 6, "scan-1"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["line"],
        json!({"ordered": 10, "received": 6, "open": 4})
    );
    assert_eq!(r.json()["status"], "released");
    let r = api
        .post(
            "/api/v1/receipts",
            &planner,
            receipt(purchase, "C01", 4, "scan-2"),
        )
        .await;
    assert_eq!(r.json()["status"], "received", "{}", r.text());
    let central = stock_of(&api, "C01", &planner).await;
    assert_eq!(
        (central["on_hand"].as_i64(), central["on_order"].as_i64()),
        (Some(46), Some(0))
    );

    // A retry of the first receipt moves nothing; a third receipt of the closed line, an
    // over-receipt, a receipt at the wrong place and a station at another's door are refused
    // with nothing written.
    let r = api
        .post(
            "/api/v1/receipts",
            &planner,
            receipt(purchase, "C01", 6, "scan-1"),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["moved"].clone()),
        (200, json!(false)),
        "{}",
        r.text()
    );
    let ledger = api.count("stock_ledger").await;
    let audit = api.count("audit_log").await;
    api.post(
        "/api/v1/receipts",
        &planner,
        receipt(purchase, "C01", 1, "scan-3"),
    )
    .await
    .assert_problem(409, "proposal_id");
    api.post(
        "/api/v1/receipts",
        &station,
        receipt(transfer, "S002", 5, "t-1"),
    )
    .await
    .assert_problem(409, "qty");
    api.post(
        "/api/v1/receipts",
        &planner,
        receipt(transfer, "S001", 1, "t-1"),
    )
    .await
    .assert_problem(422, "location");
    let r = api
        .post(
            "/api/v1/receipts",
            &station,
            receipt(purchase, "C01", 1, "x"),
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "{}", r.text());
    assert_eq!(
        (
            api.count("stock_ledger").await,
            api.count("audit_log").await
        ),
        (ledger, audit)
    );

    // The transfer arrives at the station in two parts: one through the receipts endpoint,
    // the rest through the station's own receipt form (which names its proposal).
    let before = api
        .get(
            &format!("/api/v1/availability?part={PART}&station=S002"),
            &station,
        )
        .await
        .json();
    assert_eq!(before["own"]["in_transit"], 4, "{before}");
    assert_eq!(before["arriving"][0]["qty"], 4, "{before}");
    let r = api
        .post(
            "/api/v1/receipts",
            &station,
            receipt(transfer, "S002", 1, "t-1"),
        )
        .await;
    assert_eq!(r.json()["line"]["open"], 3, "{}", r.text());
    let r = api
        .post(
            "/api/v1/stations/S002/receipts",
            &station,
            json!({"part_code": PART, "qty": 3, "idempotency_key": "t-2", "proposal_id": transfer}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let after = api
        .get(
            &format!("/api/v1/availability?part={PART}&station=S002"),
            &station,
        )
        .await
        .json();
    assert_eq!(after["own"]["on_hand"], 4, "{after}");
    assert_eq!(after["own"]["in_transit"], 0, "{after}");
    assert_eq!(after["arriving"], json!([]), "{after}");
    let open = api.get("/api/v1/arriving", &planner).await.json();
    assert_eq!(open["items"], json!([]), "nothing is open: {open}");
    let audit = api
        .get(
            "/api/v1/audit?action=proposal.receive&limit=50",
            &api.token(Role::Admin, None).await,
        )
        .await
        .json();
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(4), "{audit}");
}

#[tokio::test]
async fn a_bulk_receipt_file_books_all_or_nothing_and_names_the_bad_line() {
    let api = Api::tiny().await;
    let planner = api.token(Role::Planner, None).await;
    let (purchase, transfer) = api.seed_proposals(0).await;
    release_seeded(&api, &planner, [purchase, transfer]).await;
    let upload = |text: String| {
        let api = &api;
        let planner = planner.clone();
        async move {
            api.raw(
                axum::http::Method::POST,
                "/api/v1/receipts/bulk",
                Some(&planner),
                Some("text/csv"),
                text.into_bytes(),
            )
            .await
        }
    };
    let ledger = api.count("stock_ledger").await;
    // Line 3 (the header is line 1) receives more than is open: nothing is booked.
    let bad = format!(
        "proposal_id,location_code,qty,idempotency_key\n{purchase},C01,4,b1\n{transfer},S002,9,b2\n"
    );
    let r = upload(bad).await;
    r.assert_problem(409, "line 3: qty");
    assert_eq!(api.count("stock_ledger").await, ledger);
    let good = format!(
        "proposal_id,location_code,qty,idempotency_key\n{purchase},C01,4,b1\n{transfer},S002,4,b2\n"
    );
    let r = upload(good).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().map(Vec::len), Some(2));
    assert_eq!(api.count("stock_ledger").await, ledger + 2);
}

#[tokio::test]
async fn a_new_plan_run_supersedes_older_open_proposals_and_keeps_released_lines() {
    let api = Api::tiny().await;
    let planner = api.token(Role::Planner, None).await;
    let (purchase, transfer) = api.seed_proposals(0).await;
    let (old_purchase, old_transfer) = api.seed_proposals(0).await;
    release_seeded(&api, &planner, [purchase, transfer]).await;
    let r = api
        .post(
            &format!("/api/v1/proposals/{old_purchase}/approve"),
            &planner,
            json!({"version": 1}),
        )
        .await;
    assert_eq!(r.json()["status"], "approved");

    let forecast = forecast_runs::run_and_store(api.db(), &RunOptions::default())
        .await
        .expect("forecast");
    let (model, text) = model();
    let run = plan_runs::run_and_store(api.db(), model, &text, Some(&forecast))
        .await
        .expect("plan");
    for (id, status) in [
        (purchase, "released"),
        (transfer, "released"),
        (old_purchase, "superseded"),
        (old_transfer, "superseded"),
    ] {
        let p = api
            .get(&format!("/api/v1/proposals/{id}"), &planner)
            .await
            .json();
        assert_eq!(p["proposal"]["status"], status, "{id}: {p}");
    }
    let admin = api.token(Role::Admin, None).await;
    let audit = api
        .get(
            &format!("/api/v1/audit?entity=plan_run&entity_id={}", run.id),
            &admin,
        )
        .await
        .json();
    assert_eq!(audit["items"][0]["action"], "plan_run.supersede", "{audit}");
    // A superseded line cannot be approved, released or received.
    api.post(
        &format!("/api/v1/proposals/{old_purchase}/approve"),
        &planner,
        json!({"version": 3}),
    )
    .await
    .assert_problem(409, "status");
    let ledger = api.count("stock_ledger").await;
    api.post(
        "/api/v1/receipts",
        &planner,
        receipt(old_purchase, "C01", 1, "s-1"),
    )
    .await
    .assert_problem(409, "proposal_id");
    assert_eq!(api.count("stock_ledger").await, ledger);
}

#[tokio::test]
async fn plan_runs_run_one_at_a_time_and_a_silent_one_is_taken_over() {
    let api = Api::tiny().await;
    let forecast = forecast_runs::run_and_store(api.db(), &RunOptions::default())
        .await
        .expect("forecast");
    let (model, text) = model();
    // Another instance's run, alive (its heartbeat is fresh): a second run is refused.
    let mut conn = api.db().acquire().await.expect("conn");
    sql_execute!(
        conn.conn(),
        "insert into plan_runs (model_name, model_toml, status, created_at, heartbeat_at)
         values ('elsewhere', '', 'running', $1, $1)",
        chrono::Utc::now()
    )
    .expect("running run");
    let refused = plan_runs::run_and_store(api.db(), model.clone(), &text, Some(&forecast)).await;
    assert!(
        matches!(refused, Err(PlanRunError::Busy { .. })),
        "{:?}",
        refused.err()
    );
    // Its instance died: a minute without a heartbeat and the next run takes over.
    sql_execute!(
        conn.conn(),
        "update plan_runs set heartbeat_at = $1 where status = 'running'",
        chrono::Utc::now() - chrono::Duration::seconds(120)
    )
    .expect("age the heartbeat");
    drop(conn);
    let run = plan_runs::run_and_store(api.db(), model.clone(), &text, Some(&forecast))
        .await
        .expect("takes over");
    let mut conn = api.db().acquire().await.expect("conn");
    let statuses = sql_fetch_all!(
        (String, String, Option<String>),
        conn.conn(),
        "select model_name, status, failure from plan_runs order by id"
    )
    .expect("runs");
    assert_eq!(statuses[0].1, "failed");
    assert!(statuses[0]
        .2
        .as_deref()
        .is_some_and(|f| f.starts_with("abandoned")));
    assert_eq!(statuses[1].1, "solved", "run {}", run.id);
    drop(conn);
    // Two started together: never two running; each either ran or was refused as busy.
    let (a, b) = tokio::join!(
        plan_runs::run_and_store(api.db(), model.clone(), &text, Some(&forecast)),
        plan_runs::run_and_store(api.db(), model.clone(), &text, Some(&forecast)),
    );
    let ok = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert!(ok >= 1);
    for r in [a, b] {
        assert!(r.is_ok() || matches!(r, Err(PlanRunError::Busy { .. })));
    }
}

#[tokio::test]
async fn plan_release_receive_plan_leaves_no_phantom_stock() {
    let api = Api::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GenerateConfig {
        stations: 6,
        parts: 30,
        years: 2,
        seed: 9,
        start: "2023-11".parse().expect("month"),
        future_months: 6,
        out_dir: dir.path().join("net"),
        truth_dir: None,
    };
    generate::generate(&config).expect("generate");
    interchange::import_dir(api.db(), &config.out_dir, &CodingRule::default())
        .await
        .expect("import");
    let forecast = forecast_runs::run_and_store(api.db(), &RunOptions::default())
        .await
        .expect("forecast");
    let (model, text) = model();
    let first = plan_runs::run_and_store(api.db(), model.clone(), &text, Some(&forecast))
        .await
        .expect("plan");
    assert!(first.proposals >= 4, "{} proposals", first.proposals);

    // Release every proposal the sender can fill, then receive half of each line.
    let page = proposals::list(
        api.db(),
        &proposals::Filter {
            plan_run: Some(first.id),
            limit: Some(500),
            ..Default::default()
        },
    )
    .await
    .expect("proposals");
    let mut released = Vec::new();
    for p in &page.items {
        let approved = proposals::approve(api.db(), "test", p.id, p.version)
            .await
            .expect("approve");
        let version = if approved.status == "awaiting_finance" {
            proposals::finance_decide(api.db(), "test", p.id, approved.version, true)
                .await
                .expect("finance")
                .version
        } else {
            approved.version
        };
        // Released on its order-by date: the network's history ends in the past.
        if proposals::release_on(api.db(), "test", &[(p.id, version)], p.order_by)
            .await
            .is_ok()
        {
            released.push(p.clone());
        }
    }
    assert!(released.len() >= 2, "{} released", released.len());
    let mut open: HashMap<(String, String), i64> = HashMap::new();
    for p in &released {
        let half = p.qty / 2;
        if half > 0 {
            spareplan::pipeline::receive(
                api.db(),
                "test",
                &spareplan::pipeline::Receipt {
                    proposal_id: p.id,
                    location_code: p.to_code.clone(),
                    qty: spareplan::units::Qty::new(half).expect("qty"),
                    idempotency_key: format!("half-{}", p.id),
                    part_code: None,
                },
            )
            .await
            .expect("receive");
        }
        *open
            .entry((p.part_code.clone(), p.to_code.clone()))
            .or_insert(0) += p.qty - half;
    }

    // The next plan's snapshot: its pipeline per (part, location) is the open lines, exactly,
    // and its on-hand is the ledger's.
    let (planned_model, inst) = plan_runs::instance_for(api.db(), model.clone(), Some(&forecast))
        .await
        .expect("instance");
    let mut pipeline: HashMap<(String, String), i64> = HashMap::new();
    for s in &inst.stock {
        let total: f64 = s.pipeline.iter().sum();
        if total > 0.0 {
            let key = (
                inst.parts[s.part.ix()].code.as_str().to_owned(),
                inst.locations[s.location.ix()].code.clone(),
            );
            *pipeline.entry(key).or_insert(0) += total.round() as i64;
        }
    }
    open.retain(|_, q| *q > 0);
    assert_eq!(pipeline, open, "the pipeline is the open lines");
    assert!(planned_model.periods > 0);
    let mut conn = api.db().acquire().await.expect("conn");
    let balances = sql_fetch_all!(
        (i64, i64),
        conn.conn(),
        "select cast(sum(in_transit) as bigint), cast(sum(on_order) as bigint) from stock_balance"
    )
    .expect("balances");
    assert_eq!(
        balances[0].0 + balances[0].1,
        open.values().sum::<i64>(),
        "on order + in transit in the balances = open lines"
    );
    drop(conn);
    let second = plan_runs::run_and_store(api.db(), model, &text, Some(&forecast))
        .await
        .expect("second plan");
    let left = proposals::list(
        api.db(),
        &proposals::Filter {
            plan_run: Some(first.id),
            status: Some("proposed".into()),
            ..Default::default()
        },
    )
    .await
    .expect("first run");
    assert!(
        left.items.is_empty(),
        "run {} superseded the first run's open proposals",
        second.id
    );
}
