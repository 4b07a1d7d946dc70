//! The web interface through the real router, without a browser: signing in, the role gate
//! for every page of the page table, CSRF, escaping, and that refused posts write nothing.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use tower::ServiceExt;

use spareplan::api::Access;
use spareplan::auth::Role;
use spareplan::web::{self, session};
use spareplan::{sql_execute, sql_scalar};

use crate::api_support::Api;

struct Page {
    status: StatusCode,
    location: String,
    set_cookie: Vec<String>,
    body: String,
}

async fn send(
    api: &Api,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    form: Option<String>,
) -> Page {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f)
        }
        None => Body::empty(),
    };
    let res = api
        .app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = res.status();
    let header_text = |name: header::HeaderName| -> Vec<String> {
        res.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    };
    let location = header_text(header::LOCATION).pop().unwrap_or_default();
    let set_cookie = header_text(header::SET_COOKIE);
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .expect("body");
    Page {
        status,
        location,
        set_cookie,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A signed-in browser of this role: (cookie header, form token).
async fn signed_in(api: &Api, role: Role, station: Option<&str>) -> (String, String) {
    let key = api.token(role, station).await;
    let id = session::sign_in(api.db(), &key)
        .await
        .expect("sign in")
        .expect("session");
    let s = session::lookup(api.db(), &id)
        .await
        .expect("lookup")
        .expect("live");
    (format!("{}={id}", session::COOKIE), s.csrf)
}

#[tokio::test]
async fn signing_in_sets_a_session_cookie_only_with_the_form_token() {
    let api = Api::tiny().await;
    let key = api.token(Role::Planner, None).await;
    let login = send(&api, Method::GET, "/ui/login?next=/ui/runs", None, None).await;
    assert_eq!(login.status, 200);
    let pre = login
        .set_cookie
        .iter()
        .find_map(|c| c.strip_prefix("sp_pre="))
        .and_then(|c| c.split(';').next())
        .expect("pre cookie")
        .to_owned();
    assert!(login.body.contains(&format!("value=\"{pre}\"")));

    let form = |pre: &str, key: &str| format!("pre={pre}&next=%2Fui%2Fruns&key={key}");
    let no_token = send(
        &api,
        Method::POST,
        "/ui/login",
        None,
        Some(form(&pre, &key)),
    )
    .await;
    assert_eq!(no_token.status, 403, "sign-in without the form cookie");
    let cookie = format!("sp_pre={pre}");
    let wrong = send(
        &api,
        Method::POST,
        "/ui/login",
        Some(&cookie),
        Some(form(&pre, "sp_nope")),
    )
    .await;
    assert_eq!(wrong.status, 303);
    assert!(
        wrong.location.starts_with("/ui/login?failed=1"),
        "{}",
        wrong.location
    );
    assert!(wrong.set_cookie.is_empty());

    let ok = send(
        &api,
        Method::POST,
        "/ui/login",
        Some(&cookie),
        Some(form(&pre, &key)),
    )
    .await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location, "/ui/runs");
    let session = ok
        .set_cookie
        .iter()
        .find(|c| c.starts_with("sp_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    let id = session
        .trim_start_matches("sp_session=")
        .split(';')
        .next()
        .unwrap_or("");
    let runs = send(
        &api,
        Method::GET,
        "/ui/runs",
        Some(&format!("sp_session={id}")),
        None,
    )
    .await;
    assert_eq!(runs.status, 200, "{}", runs.body);

    // Revoking the key ends the session.
    let mut conn = api.db().acquire().await.expect("conn");
    sql_execute!(conn.conn(), "update api_tokens set revoked_at = created_at").expect("revoke");
    drop(conn);
    let after = send(
        &api,
        Method::GET,
        "/ui/runs",
        Some(&format!("sp_session={id}")),
        None,
    )
    .await;
    assert_eq!(after.status, 303);
    assert!(after.location.starts_with("/ui/login"));
}

/// A path of the page table with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1").replace("{code}", "en")
}

#[tokio::test]
async fn every_page_admits_exactly_its_roles() {
    let api = Api::tiny().await;
    api.seed_proposals(100).await;
    let mut sessions = Vec::new();
    for role in Role::ALL {
        let station = (role == Role::Station).then_some("S001");
        sessions.push((role, signed_in(&api, role, station).await));
    }
    let mut checked = 0;
    for page in web::pages() {
        let path = concrete(page.path);
        let Access::Roles(roles) = page.access else {
            if page.method == Method::GET {
                let p = send(&api, Method::GET, &path, None, None).await;
                assert!(
                    p.status.is_success() || p.status.is_redirection(),
                    "{path} is public"
                );
            }
            continue;
        };
        let anonymous = send(&api, page.method.clone(), &path, None, Some(String::new())).await;
        assert_eq!(
            anonymous.status, 303,
            "{} {path} without a session",
            page.method
        );
        assert!(anonymous.location.starts_with("/ui/login"));
        if page.path == "/ui/logout" {
            // Signing out would end the sessions the other pages are checked with.
            continue;
        }
        for (role, (cookie, csrf)) in &sessions {
            let form = Some(format!("csrf={csrf}"));
            let p = send(&api, page.method.clone(), &path, Some(cookie), form).await;
            if roles.contains(role) {
                assert_ne!(
                    p.status, 403,
                    "{role} should open {} {path}: {}",
                    page.method, p.body
                );
            } else {
                assert_eq!(p.status, 403, "{role} must not open {} {path}", page.method);
                assert!(p.body.contains("data-status=\"403\""));
            }
            checked += 1;
        }
    }
    let gated = web::pages()
        .iter()
        .filter(|p| matches!(p.access, Access::Roles(_)) && p.path != "/ui/logout")
        .count();
    assert!(gated >= 15, "the page table lost pages: {gated}");
    assert_eq!(checked, gated * Role::ALL.len());
}

async fn version_of(api: &Api, id: i64) -> i64 {
    let mut conn = api.db().acquire().await.expect("conn");
    sql_scalar!(
        i64,
        conn.conn(),
        "select version from proposals where id = $1",
        id
    )
    .expect("version")
}

#[tokio::test]
async fn a_form_without_its_token_is_refused_and_changes_nothing() {
    let api = Api::tiny().await;
    let (purchase, _) = api.seed_proposals(100).await;
    let (cookie, csrf) = signed_in(&api, Role::Planner, None).await;
    let (_, other_csrf) = signed_in(&api, Role::Planner, None).await;
    let path = format!("/ui/proposals/{purchase}");
    for form in [
        "version=1&action=approve".to_owned(),
        "version=1&action=approve&csrf=".to_owned(),
        format!("version=1&action=approve&csrf={other_csrf}"),
    ] {
        let p = send(&api, Method::POST, &path, Some(&cookie), Some(form.clone())).await;
        assert_eq!(p.status, 403, "{form}");
        assert_eq!(version_of(&api, purchase).await, 1, "{form} wrote");
    }
    let audit_before = api.count("audit_log").await;
    let ok = send(
        &api,
        Method::POST,
        &path,
        Some(&cookie),
        Some(format!("version=1&action=approve&csrf={csrf}")),
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(version_of(&api, purchase).await, 2);
    assert_eq!(api.count("audit_log").await, audit_before + 1);
    // The same form again is stale: 409, nothing more written.
    let stale = send(
        &api,
        Method::POST,
        &path,
        Some(&cookie),
        Some(format!("version=1&action=approve&csrf={csrf}")),
    )
    .await;
    assert_eq!(stale.status, 409);
    assert_eq!(api.count("audit_log").await, audit_before + 1);
}

#[tokio::test]
async fn user_text_is_escaped_everywhere_it_shows() {
    let api = Api::tiny().await;
    api.seed_proposals(100).await;
    let evil = "<script>alert(1)</script>";
    let mut conn = api.db().acquire().await.expect("conn");
    sql_execute!(
        conn.conn(),
        "update parts set name = $1 where code = 'PT-MEC-000010'",
        evil
    )
    .expect("name");
    drop(conn);
    let (cookie, _) = signed_in(&api, Role::Admin, None).await;
    for path in [
        "/ui/stock?station=S001&part=PT-MEC-000010",
        "/ui/parts/suggest?q=PT-MEC",
        "/ui/proposals",
        "/ui/proposals?part=%3Cscript%3E",
    ] {
        let p = send(&api, Method::GET, path, Some(&cookie), None).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        assert!(
            !p.body.contains("<script>alert"),
            "{path} renders raw user text"
        );
    }
    let p = send(
        &api,
        Method::GET,
        "/ui/parts/suggest?q=PT-MEC",
        Some(&cookie),
        None,
    )
    .await;
    assert!(
        p.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        p.body
    );
}

#[tokio::test]
async fn a_station_records_only_its_own_stock() {
    let api = Api::tiny().await;
    let (cookie, csrf) = signed_in(&api, Role::Station, Some("S001")).await;
    let on_hand = |station: &'static str| {
        let db = api.db().clone();
        async move {
            let mut conn = db.acquire().await.expect("conn");
            sql_scalar!(
                i64,
                conn.conn(),
                "select cast(coalesce(sum(b.on_hand), 0) as bigint) from stock_balance b join locations l on l.id = b.location_id
                 join parts p on p.id = b.part_id where l.code = $1 and p.code = 'PT-MEC-000010'",
                station
            )
            .expect("on hand")
        }
    };
    let (own, other) = (on_hand("S001").await, on_hand("S002").await);
    let form = format!("csrf={csrf}&key=k1&station=S002&what=receipt&part=PT-MEC-000010&qty=5");
    let p = send(
        &api,
        Method::POST,
        "/ui/stock/moves",
        Some(&cookie),
        Some(form.clone()),
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.contains("station=S001"), "{}", p.location);
    assert_eq!(on_hand("S001").await, own + 5);
    assert_eq!(
        on_hand("S002").await,
        other,
        "another station's stock moved"
    );
    // The same rendered form posted twice moves stock once.
    send(
        &api,
        Method::POST,
        "/ui/stock/moves",
        Some(&cookie),
        Some(form),
    )
    .await;
    assert_eq!(on_hand("S001").await, own + 5);
    // Bad input is named and writes nothing.
    let bad = send(
        &api,
        Method::POST,
        "/ui/stock/moves",
        Some(&cookie),
        Some(format!(
            "csrf={csrf}&key=k2&what=issue&part=PT-MEC-000010&qty=0&work_order=WO1"
        )),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("qty"), "{}", bad.body);
    assert_eq!(on_hand("S001").await, own + 5);
}

#[tokio::test]
async fn pages_render_in_both_languages() {
    let api = Api::tiny().await;
    api.seed_proposals(100).await;
    let (cookie, _) = signed_in(&api, Role::Admin, None).await;
    for path in [
        "/ui/dashboard",
        "/ui/runs",
        "/ui/proposals",
        "/ui/proposals/1",
        "/ui/exceptions",
        "/ui/stock",
        "/ui/credit",
    ] {
        let zh = send(&api, Method::GET, path, Some(&cookie), None).await;
        assert_eq!(zh.status, 200, "{path}: {}", zh.body);
        assert!(zh.body.contains("lang=\"zh-CN\""), "{path}");
        let en = send(
            &api,
            Method::GET,
            path,
            Some(&format!("{cookie}; sp_lang=en")),
            None,
        )
        .await;
        assert_eq!(en.status, 200, "{path}");
        assert!(
            en.body.contains("lang=\"en\"") && en.body.contains("Sign out"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_arriving_list_books_a_line_in_part_and_shows_what_is_open() {
    let api = Api::tiny().await;
    let (purchase, transfer) = api.seed_proposals(0).await;
    let mut conn = api.db().acquire().await.expect("conn");
    // Released lines, as the release would leave them (the ledger agrees).
    sql_execute!(
        conn.conn(),
        "update proposals set status = 'released', released_on = order_by"
    )
    .expect("release");
    drop(conn);
    for (id, kind, at) in [
        (purchase, "order", "C01"),
        (transfer, "transfer_ship", "S002"),
    ] {
        let (part, loc) = ("PT-MEC-000010", at);
        let mut conn = api.db().acquire().await.expect("conn");
        let ids: (i64, i64) = sqlx_ids(&mut conn, part, loc).await;
        let qty = if kind == "order" { 10 } else { 4 };
        let mut tx = api.db().begin().await.expect("tx");
        spareplan::stock::append(
            &mut tx,
            &spareplan::stock::Movement {
                kind: if kind == "order" {
                    spareplan::stock::MovementKind::Order
                } else {
                    spareplan::stock::MovementKind::TransferShip
                },
                part_id: ids.0,
                location_id: ids.1,
                qty: spareplan::units::Qty::new(qty).expect("qty"),
                idempotency_key: format!("seed:{id}"),
                reference: Some(format!("proposal:{id}")),
                reason: None,
                actor: "test".into(),
            },
        )
        .await
        .expect("pipeline entry");
        tx.commit().await.expect("commit");
    }
    let (cookie, csrf) = signed_in(&api, Role::Planner, None).await;
    let list = send(
        &api,
        Method::GET,
        "/ui/arriving?location=C01",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains(&format!("data-line=\"{purchase}\"")),
        "{}",
        list.body
    );
    assert!(
        !list.body.contains(&format!("data-line=\"{transfer}\"")),
        "only C01's lines"
    );
    let form = format!("csrf={csrf}&key=k1&proposal={purchase}&location=C01&qty=3");
    let done = send(
        &api,
        Method::POST,
        "/ui/arriving/receive",
        Some(&cookie),
        Some(form.clone()),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let after = send(&api, Method::GET, &done.location, Some(&cookie), None).await;
    assert!(after.body.contains("PT-MEC-000010"), "{}", after.body);
    // A double submit of the same form books nothing more.
    send(
        &api,
        Method::POST,
        "/ui/arriving/receive",
        Some(&cookie),
        Some(form),
    )
    .await;
    let mut conn = api.db().acquire().await.expect("conn");
    let received = sql_scalar!(
        i64,
        conn.conn(),
        "select received_qty from proposals where id = $1",
        purchase
    )
    .expect("received");
    assert_eq!(received, 3);
    drop(conn);
    // A station sees its own lines and may not book at the central.
    let (station, station_csrf) = signed_in(&api, Role::Station, Some("S002")).await;
    let own = send(&api, Method::GET, "/ui/arriving", Some(&station), None).await;
    assert!(
        own.body.contains(&format!("data-line=\"{transfer}\"")),
        "{}",
        own.body
    );
    assert!(!own.body.contains(&format!("data-line=\"{purchase}\"")));
    let form = format!("csrf={station_csrf}&key=k2&proposal={purchase}&location=C01&qty=1");
    let refused = send(
        &api,
        Method::POST,
        "/ui/arriving/receive",
        Some(&station),
        Some(form),
    )
    .await;
    assert_eq!(refused.status, 403);
}

async fn sqlx_ids(conn: &mut spareplan::db::PooledConn, part: &str, loc: &str) -> (i64, i64) {
    let p = sql_scalar!(
        i64,
        conn.conn(),
        "select id from parts where code = $1",
        part
    )
    .expect("part");
    let l = sql_scalar!(
        i64,
        conn.conn(),
        "select id from locations where code = $1",
        loc
    )
    .expect("loc");
    (p, l)
}
