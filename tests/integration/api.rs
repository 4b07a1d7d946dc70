//! The HTTP API through the real router on a fresh database: authorization from the
//! endpoint table, optimistic concurrency, bad input, the probes and the whole planning loop.

use axum::http::Method;
use serde_json::{json, Value};

use spareplan::api::{endpoints, Access};
use spareplan::auth::Role;

use crate::api_support::Api;

/// Fills path parameters with plausible values.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{code}", "S001")
        .replace("{kind}", "stock")
}

#[tokio::test]
async fn every_endpoint_admits_exactly_its_roles() {
    let api = Api::tiny().await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let station = (role == Role::Station).then_some("S001");
        tokens.push((role, api.token(role, station).await));
    }
    let table = endpoints();
    assert!(table.len() >= 25, "the table lists every endpoint");
    for e in &table {
        let path = concrete(e.path);
        // A member no request type knows: every JSON body is refused after the gate, so
        // the matrix starts no job and writes nothing.
        let body = if e.method == Method::GET {
            None
        } else {
            Some("{\"__probe\": 1}")
        };
        // No token at all.
        let anonymous = api
            .raw(
                e.method.clone(),
                &path,
                None,
                body.map(|_| "application/json"),
                body.unwrap_or("").into(),
            )
            .await;
        match e.access {
            Access::Public => assert!(
                anonymous.status.is_success(),
                "{} {}: {}",
                e.method,
                e.path,
                anonymous.status
            ),
            Access::Roles(_) => anonymous.assert_problem(401, "authorization"),
        }
        for (role, token) in &tokens {
            let reply = api
                .raw(
                    e.method.clone(),
                    &path,
                    Some(token),
                    body.map(|_| "application/json"),
                    body.unwrap_or("").into(),
                )
                .await;
            if e.access.admits(*role) {
                assert!(
                    reply.status != 401 && reply.status != 403,
                    "{} {} should admit {role}: {} {}",
                    e.method,
                    e.path,
                    reply.status,
                    reply.text()
                );
            } else {
                assert_eq!(
                    reply.status,
                    403,
                    "{} {} should deny {role}: {}",
                    e.method,
                    e.path,
                    reply.text()
                );
                reply.assert_problem(403, "");
            }
        }
    }
}

#[tokio::test]
async fn a_station_token_writes_only_its_own_station() {
    let api = Api::tiny().await;
    let s1 = api.token(Role::Station, Some("S001")).await;
    let issue = |key: &str| json!({"part_code": "PT-MEC-000010", "qty": 1, "work_order": "WO-9", "idempotency_key": key});
    let own = api
        .post("/api/v1/stations/S001/issues", &s1, issue("a"))
        .await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json()["on_hand"], 3);
    let before = api.count("stock_ledger").await;
    let other = api
        .post(
            "/api/v1/stations/S002/receipts",
            &s1,
            json!({"part_code": "PT-MEC-000010", "qty": 5, "idempotency_key": "b"}),
        )
        .await;
    assert_eq!(other.status, 403, "{}", other.text());
    assert_eq!(other.content_type, "application/problem+json");
    assert_eq!(api.count("stock_ledger").await, before, "nothing written");
    // A replayed key moves nothing twice.
    let again = api
        .post("/api/v1/stations/S001/issues", &s1, issue("a"))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["moved"], false);
    assert_eq!(again.json()["on_hand"], 3);
    // Its own credit account only.
    let credit = api.get("/api/v1/credit/S002", &s1).await;
    assert_eq!(credit.status, 403);
}

#[tokio::test]
async fn two_concurrent_approvals_one_wins_one_conflicts_one_audit_entry() {
    let api = Api::tiny().await;
    let (purchase, _) = api.seed_proposals(0).await;
    let a = api.token(Role::Planner, None).await;
    let b = api.token(Role::Planner, None).await;
    let path = format!("/api/v1/proposals/{purchase}/approve");
    let (r1, r2) = tokio::join!(
        api.post(&path, &a, json!({"version": 1})),
        api.post(&path, &b, json!({"version": 1}))
    );
    let mut statuses = [r1.status.as_u16(), r2.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", r1.text(), r2.text());
    let loser = if r1.status == 409 { &r1 } else { &r2 };
    loser.assert_problem(409, "version");
    let admin = api.token(Role::Admin, None).await;
    let audit = api
        .get(
            &format!("/api/v1/audit?entity=proposal&entity_id={purchase}&action=proposal.approve"),
            &admin,
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text());
    let entries = audit.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["before"]["status"], "proposed");
    assert_eq!(entries[0]["after"]["status"], "approved");
    assert_eq!(entries[0]["after"]["version"], 2);
}

#[tokio::test]
async fn bad_input_is_a_problem_naming_the_field_and_writes_nothing() {
    let api = Api::tiny().await;
    let (purchase, _) = api.seed_proposals(0).await;
    let s1 = api.token(Role::Station, Some("S001")).await;
    let planner = api.token(Role::Planner, None).await;
    let tables = ["stock_ledger", "audit_log", "proposals", "parts", "jobs"];
    let mut before = Vec::new();
    for t in tables {
        before.push(api.count(t).await);
    }
    let issues = "/api/v1/stations/S001/issues";
    let ok = json!({"part_code": "PT-MEC-000010", "qty": 1, "work_order": "WO-1", "idempotency_key": "k"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    // Malformed JSON.
    api.raw(
        Method::POST,
        issues,
        Some(&s1),
        Some("application/json"),
        b"{\"part_code\": ".to_vec(),
    )
    .await
    .assert_problem(400, "body");
    // Wrong content type.
    api.raw(
        Method::POST,
        issues,
        Some(&s1),
        Some("text/plain"),
        ok.to_string().into_bytes(),
    )
    .await
    .assert_problem(415, "content-type");
    // Unknown part code, and one that breaks the coding rule.
    api.post(issues, &s1, with("part_code", json!("PT-MEC-999999")))
        .await
        .assert_problem(422, "part_code");
    api.post(issues, &s1, with("part_code", json!("nonsense")))
        .await
        .assert_problem(422, "part_code");
    // Zero and negative quantities; a quantity of the wrong type; a missing member.
    api.post(issues, &s1, with("qty", json!(0)))
        .await
        .assert_problem(422, "qty");
    api.post(issues, &s1, with("qty", json!(-3)))
        .await
        .assert_problem(422, "qty");
    api.post(issues, &s1, with("qty", json!("two")))
        .await
        .assert_problem(422, "qty");
    let mut missing = ok.clone();
    if let Some(o) = missing.as_object_mut() {
        o.remove("idempotency_key");
    }
    api.post(issues, &s1, missing)
        .await
        .assert_problem(422, "idempotency_key");
    // More than is there.
    api.post(issues, &s1, with("qty", json!(50)))
        .await
        .assert_problem(409, "qty");
    // Missing and bad tokens.
    api.raw(
        Method::POST,
        issues,
        None,
        Some("application/json"),
        ok.to_string().into_bytes(),
    )
    .await
    .assert_problem(401, "authorization");
    api.raw(
        Method::POST,
        issues,
        Some("sp_not-a-token"),
        Some("application/json"),
        ok.to_string().into_bytes(),
    )
    .await
    .assert_problem(401, "authorization");
    // Proposal edits: zero quantity, missing reason, stale version.
    let edit = format!("/api/v1/proposals/{purchase}/edit");
    api.post(
        &edit,
        &planner,
        json!({"version": 1, "qty": 0, "reason": "x"}),
    )
    .await
    .assert_problem(422, "qty");
    api.post(
        &edit,
        &planner,
        json!({"version": 1, "qty": 3, "reason": " "}),
    )
    .await
    .assert_problem(422, "reason");
    api.post(
        &edit,
        &planner,
        json!({"version": 7, "qty": 3, "reason": "x"}),
    )
    .await
    .assert_problem(409, "version");
    api.post(
        &format!("/api/v1/proposals/{}/approve", purchase + 1000),
        &planner,
        json!({"version": 1}),
    )
    .await
    .assert_problem(404, "");
    // Lists: bad filters and page sizes.
    api.get("/api/v1/proposals?status=maybe", &planner)
        .await
        .assert_problem(422, "status");
    api.get("/api/v1/proposals?limit=0", &planner)
        .await
        .assert_problem(422, "limit");
    api.get("/api/v1/proposals?after=abc", &planner)
        .await
        .assert_problem(422, "after");
    // Jobs: a model that does not exist, a horizon out of range.
    api.post(
        "/api/v1/plan-runs",
        &planner,
        json!({"model": "../etc/passwd"}),
    )
    .await
    .assert_problem(422, "model");
    api.post("/api/v1/forecast-runs", &planner, json!({"horizon": 0}))
        .await
        .assert_problem(422, "horizon");
    // A method the path does not answer is a problem document too.
    api.raw(
        Method::DELETE,
        "/api/v1/availability?part=PT-MEC-000010&station=S001",
        Some(&planner),
        None,
        Vec::new(),
    )
    .await
    .assert_problem(405, "");
    // Uploads: oversize, wrong type, bad rows (every one reported).
    let big = vec![b'x'; (256 << 10) + 1];
    api.raw(
        Method::POST,
        "/api/v1/imports/parts",
        Some(&planner),
        Some("text/csv"),
        big,
    )
    .await
    .assert_problem(413, "body");
    api.raw(
        Method::POST,
        "/api/v1/imports/parts",
        Some(&planner),
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await
    .assert_problem(415, "content-type");
    let bad = "part_code,kind,amount,currency,effective_from\n\
               PT-MEC-000010,cost,12.00,CNY,2030-01-01\n\
               PT-XXX-1,cost,12.00,CNY,2030-01-01\n\
               PT-MEC-000010,dealer,-1,CNY,2030-01-01\n";
    let reply = api
        .raw(
            Method::POST,
            "/api/v1/imports/prices",
            Some(&planner),
            Some("text/csv"),
            bad.as_bytes().to_vec(),
        )
        .await;
    reply.assert_problem(422, "body");
    let errors = reply.json()["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["file"], "prices.csv");
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(errors[1]["line"], 4);
    for (t, n) in tables.iter().zip(before) {
        assert_eq!(api.count(t).await, n, "{t} unchanged");
    }
    assert_eq!(api.count("prices").await, 10, "no price written");
}

#[tokio::test]
async fn probes_metrics_openapi_and_request_ids() {
    let api = Api::tiny().await;
    let health = api
        .raw(Method::GET, "/healthz", None, None, Vec::new())
        .await;
    assert_eq!(health.status, 200);
    assert!(
        health.headers.get("x-request-id").is_some(),
        "a request id is set"
    );
    assert_eq!(
        api.raw(Method::GET, "/readyz", None, None, Vec::new())
            .await
            .status,
        200
    );
    let doc = api
        .raw(Method::GET, "/api/v1/openapi.json", None, None, Vec::new())
        .await
        .json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for e in endpoints() {
        let m = e.method.as_str().to_lowercase();
        assert!(
            doc["paths"][e.path][&m].is_object(),
            "{m} {} documented",
            e.path
        );
    }
    assert!(doc["components"]["schemas"]["ProposalView"].is_object());
    let viewer = api.token(Role::Viewer, None).await;
    assert_eq!(api.get("/api/v1/proposals", &viewer).await.status, 200);
    let metrics = api
        .raw(Method::GET, "/metrics", None, None, Vec::new())
        .await
        .text();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/api/v1/proposals\""), "{metrics}");
    let missing = api
        .raw(Method::GET, "/api/v1/nothing-here", None, None, Vec::new())
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.content_type, "application/problem+json");
}

#[tokio::test]
async fn lists_page_by_keyset() {
    let api = Api::tiny().await;
    for _ in 0..3 {
        api.seed_proposals(0).await;
    }
    let viewer = api.token(Role::Viewer, None).await;
    let mut seen = Vec::new();
    let mut url = "/api/v1/proposals?limit=4".to_owned();
    loop {
        let page = api.get(&url, &viewer).await.json();
        for p in page["items"].as_array().cloned().unwrap_or_default() {
            seen.push(p["id"].as_i64().unwrap_or(-1));
        }
        match page["next"].as_i64() {
            Some(next) => url = format!("/api/v1/proposals?limit=4&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let transfers = api
        .get("/api/v1/proposals?kind=transfer&station=S002", &viewer)
        .await
        .json();
    assert_eq!(transfers["items"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn credit_holds_a_transfer_until_finance_decides() {
    let api = Api::tiny().await;
    // S002 has a 50,000.00 limit; this transfer alone would take 60,000.00.
    let (_, transfer) = api.seed_proposals(6_000_000).await;
    let planner = api.token(Role::Planner, None).await;
    let finance = api.token(Role::Finance, None).await;
    let approved = api
        .post(
            &format!("/api/v1/proposals/{transfer}/approve"),
            &planner,
            json!({"version": 1}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text());
    assert_eq!(approved.json()["status"], "awaiting_finance");
    // Planners cannot release or decide it.
    let release = api
        .post(
            "/api/v1/proposals/release",
            &planner,
            json!({"proposals": [{"id": transfer, "version": 2}]}),
        )
        .await;
    release.assert_problem(409, "proposals[0].status");
    let decided = api
        .post(
            &format!("/api/v1/proposals/{transfer}/finance-decision"),
            &finance,
            json!({"version": 2, "approve": true}),
        )
        .await;
    assert_eq!(decided.json()["status"], "approved", "{}", decided.text());
    let account = api.get("/api/v1/credit/S002", &finance).await.json();
    assert_eq!(account["committed_minor"], 6_000_000);
    assert_eq!(account["headroom_minor"], 5_000_000 - 6_000_000);
}

/// Availability look-ups remember a part's holders, but never past a commit that moves
/// that part's stock: on the instance that committed, at once; on another instance of the
/// same PostgreSQL database, by notification, well inside a cache lifetime made far too
/// long to explain it; on SQLite, where a second pool stands for another process, when the
/// entry's short lifetime ends.
#[tokio::test]
async fn availability_follows_stock_commits_of_this_and_other_instances() {
    let api = Api::tiny().await;
    let admin = api.token(Role::Admin, None).await;
    let path = "/api/v1/availability?part=PT-MEC-000010&station=S001";
    let own = |r: crate::api_support::Reply| r.json()["own"]["on_hand"].as_i64().unwrap_or(-1);
    let receipt =
        |key: &str| json!({"part_code": "PT-MEC-000010", "qty": 1, "idempotency_key": key});

    // This instance: looked up (and remembered), then moved, then looked up again.
    assert_eq!(own(api.get(path, &admin).await), 4);
    let r = api
        .post("/api/v1/stations/S001/receipts", &admin, receipt("here"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        own(api.get(path, &admin).await),
        5,
        "same instance sees its commit at once"
    );

    // Another instance, holding the part's holders in its cache when this one commits.
    let postgres = api.db().backend() == spareplan::db::Backend::Postgres;
    let stock_cache_ttl = if postgres {
        std::time::Duration::from_secs(600)
    } else {
        std::time::Duration::from_millis(300)
    };
    let other = api
        .other_instance(&spareplan::api::Config {
            stock_cache_ttl,
            ..crate::api_support::config()
        })
        .await;
    assert_eq!(own(api.get_on(&other, path, &admin).await), 5);
    let r = api
        .post("/api/v1/stations/S001/receipts", &admin, receipt("there"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let started = std::time::Instant::now();
    loop {
        let seen = own(api.get_on(&other, path, &admin).await);
        if seen == 6 {
            break;
        }
        assert_eq!(seen, 5);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the other instance still shows 5 after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
