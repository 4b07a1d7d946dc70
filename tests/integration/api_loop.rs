//! The whole loop through the HTTP API on a small generated network: import (uploads),
//! forecast and plan as jobs, approve some, reject one, edit one, a transfer held for
//! finance and approved by finance, release, the station receives, availability follows.

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{json, Value};

use spareplan::auth::Role;
use spareplan::generate::{self, GenerateConfig};
use spareplan::interchange::Kind;

use crate::api_support::Api;

async fn wait_for_job(api: &Api, token: &str, job: &Value) -> Value {
    let id = job["id"].as_i64().expect("job id");
    let started = Instant::now();
    loop {
        let now = api.get(&format!("/api/v1/jobs/{id}"), token).await.json();
        match now["status"].as_str() {
            Some("solved") => return now,
            Some("failed") => panic!("job {id} failed: {now}"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "job {id} too slow: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_proposals(api: &Api, token: &str, run: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = api
            .get(
                &format!("/api/v1/proposals?plan_run={run}&limit=200&after={after}"),
                token,
            )
            .await
            .json();
        out.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_i64() {
            Some(n) => after = n,
            None => return out,
        }
    }
}

fn own(availability: &Value) -> (i64, i64) {
    (
        availability["own"]["available"].as_i64().unwrap_or(-1),
        availability["own"]["in_transit"].as_i64().unwrap_or(-1),
    )
}

#[tokio::test]
async fn the_whole_loop_through_the_api() {
    let api = Api::with_config(&spareplan::api::Config {
        upload_limit: 64 << 20,
        ..crate::api_support::config()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GenerateConfig {
        stations: 8,
        parts: 40,
        years: 2,
        seed: 5,
        start: "2023-11".parse().expect("month"),
        future_months: 6,
        out_dir: dir.path().join("net"),
        truth_dir: None,
    };
    generate::generate(&config).expect("generate");
    let admin = api.token(Role::Admin, None).await;
    let planner = api.token(Role::Planner, None).await;
    let finance = api.token(Role::Finance, None).await;

    // 1. Import every file through the upload endpoint, in dependency order.
    for kind in Kind::IN_DEPENDENCY_ORDER {
        let path = config.out_dir.join(kind.file_name());
        let Ok(body) = std::fs::read(&path) else {
            continue;
        };
        let name = kind.file_name().trim_end_matches(".csv").replace('_', "-");
        let reply = api
            .raw(
                Method::POST,
                &format!("/api/v1/imports/{name}"),
                Some(&planner),
                Some("text/csv"),
                body,
            )
            .await;
        assert_eq!(reply.status, 201, "{name}: {}", reply.text());
    }

    // 2. Forecast and plan as background jobs.
    let job = api
        .post("/api/v1/forecast-runs", &planner, json!({"horizon": 6}))
        .await;
    assert_eq!(job.status, 202, "{}", job.text());
    wait_for_job(&api, &planner, &job.json()).await;
    let job = api
        .post(
            "/api/v1/plan-runs",
            &planner,
            json!({"model": "monthly-replenishment"}),
        )
        .await;
    assert_eq!(job.status, 202, "{}", job.text());
    let done = wait_for_job(&api, &planner, &job.json()).await;
    let run = done["result_id"].as_i64().expect("plan run id");
    let proposals = all_proposals(&api, &planner, run).await;
    let credit = api.get("/api/v1/credit", &finance).await.json();
    let credit_stations: Vec<String> = credit
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["station_code"].as_str().map(str::to_owned))
        .collect();
    let held = proposals
        .iter()
        .find(|p| {
            p["kind"] == "transfer"
                && p["credit_impact_minor"].as_i64().unwrap_or(0) > 0
                && credit_stations.iter().any(|s| p["to_code"] == s.as_str())
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no transfer to a credit station among {} proposals",
                proposals.len()
            )
        });
    let purchases: Vec<&Value> = proposals
        .iter()
        .filter(|p| p["kind"] == "purchase")
        .collect();
    assert!(purchases.len() >= 4, "{} purchases", purchases.len());
    let id = |p: &Value| p["id"].as_i64().expect("id");

    // 3. Approve two, reject one, edit one (then approve it).
    for p in &purchases[..2] {
        let r = api
            .post(
                &format!("/api/v1/proposals/{}/approve", id(p)),
                &planner,
                json!({"version": 1}),
            )
            .await;
        assert_eq!(r.json()["status"], "approved", "{}", r.text());
    }
    let r = api
        .post(
            &format!("/api/v1/proposals/{}/reject", id(purchases[2])),
            &planner,
            json!({"version": 1, "reason": "covered by a local deal"}),
        )
        .await;
    assert_eq!(r.json()["status"], "rejected", "{}", r.text());
    let edited = purchases[3];
    let edited_version = 1;
    let new_qty = edited["qty"].as_i64().unwrap_or(1) + 1;
    let r = api
        .post(
            &format!("/api/v1/proposals/{}/edit", id(edited)),
            &planner,
            json!({"version": edited_version, "qty": new_qty, "reason": "campaign next month"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "edited");
    assert_eq!(r.json()["qty"], new_qty);
    assert_eq!(r.json()["original_qty"], edited["qty"]);
    let r = api
        .post(
            &format!("/api/v1/proposals/{}/approve", id(edited)),
            &planner,
            json!({"version": edited_version + 1}),
        )
        .await;
    assert_eq!(r.json()["status"], "approved", "{}", r.text());

    // 4. The transfer: the station's limit is lowered (requested by the planner, decided
    //    by finance), so approving it holds it for finance; finance approves.
    let station = held["to_code"].as_str().expect("station").to_owned();
    let limit = api
        .post(
            &format!("/api/v1/credit/{station}/limit-requests"),
            &planner,
            json!({"new_limit_minor": 0, "reason": "overdue payments"}),
        )
        .await;
    assert_eq!(limit.status, 201, "{}", limit.text());
    let decided = api
        .post(
            &format!("/api/v1/limit-requests/{}/decision", limit.json()["id"]),
            &finance,
            json!({"version": 1, "approve": true}),
        )
        .await;
    assert_eq!(decided.json()["status"], "approved", "{}", decided.text());
    let r = api
        .post(
            &format!("/api/v1/proposals/{}/approve", id(&held)),
            &planner,
            json!({"version": 1}),
        )
        .await;
    assert_eq!(r.json()["status"], "awaiting_finance", "{}", r.text());
    let r = api
        .post(
            &format!("/api/v1/proposals/{}/finance-decision", id(&held)),
            &finance,
            json!({"version": 2, "approve": true}),
        )
        .await;
    assert_eq!(r.json()["status"], "approved", "{}", r.text());

    // 5. Availability before, then release everything approved.
    let part = held["part_code"].as_str().expect("part").to_owned();
    let qty = held["qty"].as_i64().expect("qty");
    let st = api.token(Role::Station, Some(station.as_str())).await;
    let before = api
        .get(
            &format!("/api/v1/availability?part={part}&station={station}"),
            &st,
        )
        .await
        .json();
    let approved: Vec<Value> = all_proposals(&api, &planner, run)
        .await
        .into_iter()
        .filter(|p| p["status"] == "approved")
        .collect();
    assert_eq!(approved.len(), 4);
    let items: Vec<Value> = approved
        .iter()
        .map(|p| json!({"id": p["id"], "version": p["version"]}))
        .collect();
    let csv = api
        .post(
            "/api/v1/proposals/release",
            &planner,
            json!({"proposals": items}),
        )
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text());
    assert!(csv.content_type.starts_with("text/csv"));
    let text = csv.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(spareplan::proposals::RELEASE_HEADER));
    assert_eq!(lines.count(), 4);
    let shipped = api
        .get(
            &format!("/api/v1/availability?part={part}&station={station}"),
            &st,
        )
        .await
        .json();
    assert_eq!(
        own(&shipped).1,
        own(&before).1 + qty,
        "in transit after release: {shipped}"
    );
    assert_eq!(
        shipped["national_total"].as_i64(),
        before["national_total"].as_i64().map(|t| t - qty)
    );
    let arrivals = api
        .get(&format!("/api/v1/stations/{station}/arrivals"), &st)
        .await
        .json();
    assert!(
        arrivals
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["proposal_id"] == held["id"])),
        "{arrivals}"
    );
    let account = api
        .get(&format!("/api/v1/credit/{station}"), &finance)
        .await
        .json();
    assert_eq!(account["exposure_minor"], held["credit_impact_minor"]);
    assert_eq!(
        account["ageing"]["d0_30_minor"],
        held["credit_impact_minor"]
    );

    // 6. The station records the receipt; availability follows; a retry moves nothing.
    let receipt = json!({"part_code": part, "qty": qty, "idempotency_key": format!("arrival-{}", held["id"]), "proposal_id": held["id"]});
    let r = api
        .post(
            &format!("/api/v1/stations/{station}/receipts"),
            &st,
            receipt.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api
        .post(
            &format!("/api/v1/stations/{station}/receipts"),
            &st,
            receipt,
        )
        .await;
    assert_eq!(r.json()["moved"], false);
    let after = api
        .get(
            &format!("/api/v1/availability?part={part}&station={station}"),
            &st,
        )
        .await
        .json();
    assert_eq!(
        own(&after),
        (own(&before).0 + qty, own(&before).1),
        "{after}"
    );
    assert_eq!(after["national_total"], before["national_total"]);
    let arrivals = api
        .get(&format!("/api/v1/stations/{station}/arrivals"), &st)
        .await
        .json();
    assert!(!arrivals
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["proposal_id"] == held["id"])));

    // 7. Finance records a payment: exposure falls.
    let paid = api
        .post(
            &format!("/api/v1/credit/{station}/payments"),
            &finance,
            json!({"amount_minor": 100, "paid_on": "2026-11-01"}),
        )
        .await;
    assert_eq!(
        paid.json()["exposure_minor"].as_i64(),
        held["credit_impact_minor"].as_i64().map(|e| e - 100),
        "{}",
        paid.text()
    );

    // 8. The audit log has each step once.
    let audit = api.get("/api/v1/audit?limit=500", &admin).await.json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for (action, n) in [
        ("proposal.approve", 4),
        ("proposal.reject", 1),
        ("proposal.edit", 1),
        ("proposal.finance_approve", 1),
        ("proposal.release", 4),
        ("credit.limit_approve", 1),
        ("proposal.receive", 1),
        ("credit.payment", 1),
    ] {
        assert_eq!(
            actions.iter().filter(|a| **a == action).count(),
            n,
            "{action} in {actions:?}"
        );
    }
    let detail = api
        .get(&format!("/api/v1/proposals/{}", id(&held)), &planner)
        .await
        .json();
    assert!(detail["reason"].is_object(), "{detail}");
    assert!(
        detail["forecast"].as_array().is_some_and(|f| !f.is_empty()),
        "{detail}"
    );
}
