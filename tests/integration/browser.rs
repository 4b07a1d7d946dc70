//! The web interface in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), against the real server on a loopback port and a fresh database.
//!
//! A planner signs in, runs a forecast and a plan, filters the queue, opens a proposal (its
//! chart and reason), edits and approves it; a transfer over its station's credit limit is
//! held and finance approves it; a station looks a part up, records a receipt and sees its
//! availability change. Every page visited is kept as a screenshot under
//! `<target dir>/browser-screenshots/<backend>/`.
//!
//! `./dev test` installs Debian's `chromium` and `chromium-driver` when they are missing;
//! `CHROMEDRIVER` names another driver binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use spareplan::api::{self, Config};
use spareplan::auth::{self, Role};
use spareplan::catalog::CodingRule;
use spareplan::generate::{self, GenerateConfig};
use spareplan::{credit, interchange, proposals};

use crate::api_support::config;
use crate::support::{fresh_db, TestDb};

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_driver() -> Driver {
    let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = free_port();
    let child = Command::new(&binary)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {binary} ({e}): run ./dev test, which installs chromium and chromium-driver")
        });
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    driver
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=zh-CN"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The app on a loopback port; the server task ends with the test's runtime.
async fn serve(t: &TestDb) -> String {
    let config = Config {
        upload_limit: 64 << 20,
        ..config()
    };
    let app = api::router(t.db.clone(), CodingRule::default(), &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let backend = if std::env::var("SPAREPLAN_TEST_DB").is_ok_and(|v| v == "postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let dir = PathBuf::from(target)
        .join("browser-screenshots")
        .join(backend);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn css(c: &Client, selector: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(selector))
        .await
    {
        Ok(e) => e,
        Err(e) => panic!(
            "no {selector} on {:?}: {e}\n{}",
            c.current_url().await.ok(),
            c.source().await.unwrap_or_default()
        ),
    }
}

async fn text(c: &Client, selector: &str) -> String {
    css(c, selector).await.text().await.expect("text")
}

async fn fill(c: &Client, selector: &str, value: &str) {
    let e = css(c, selector).await;
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

/// Clicks something that loads a new page and waits until the old one is gone.
async fn click_and_wait(c: &Client, selector: &str) {
    let old = c.find(Locator::Css("html")).await.expect("a page");
    css(c, selector).await.click().await.expect("click");
    let started = Instant::now();
    while old.attr("lang").await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{selector} did not load a page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    css(c, "body").await;
}

async fn sign_in(c: &Client, base: &str, key: &str) {
    c.delete_all_cookies().await.expect("cookies");
    c.goto(&format!("{base}/ui/login"))
        .await
        .expect("login page");
    fill(c, "#key", key).await;
    click_and_wait(c, "main.login button[type=submit]").await;
    css(c, "header.top").await;
}

/// Waits until the runs page shows the newest job finished, reloading as a person would.
async fn wait_for_newest_job(c: &Client) {
    let started = Instant::now();
    loop {
        // The page also reloads itself while a job runs: a stale read just tries again.
        let status = css(c, "tr[data-job-status]")
            .await
            .attr("data-job-status")
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        match status.as_str() {
            "solved" => return,
            "failed" => panic!("job failed: {}", c.source().await.unwrap_or_default()),
            _ => {}
        }
        assert!(started.elapsed() < Duration::from_secs(240), "job too slow");
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.refresh().await.expect("reload");
    }
}

async fn load_network(t: &TestDb) {
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
    interchange::import_dir(&t.db, &config.out_dir, &CodingRule::default())
        .await
        .expect("import");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_station_and_finance_in_a_browser() {
    let t = fresh_db().await;
    load_network(&t).await;
    let base = serve(&t).await;
    let (planner, _) = auth::create_token(&t.db, Role::Planner, None, "王计划")
        .await
        .expect("token");
    let (finance, _) = auth::create_token(&t.db, Role::Finance, None, "李财务")
        .await
        .expect("token");
    let driver = start_driver().await;
    let c = browser(&driver).await;

    // The planner signs in and runs a forecast, then a plan, from the runs page.
    sign_in(&c, &base, &planner).await;
    shot(&c, "01-dashboard-empty").await;
    c.goto(&format!("{base}/ui/runs")).await.expect("runs");
    fill(&c, "#horizon", "6").await;
    click_and_wait(&c, "form input[value=forecast] ~ button").await;
    wait_for_newest_job(&c).await;
    click_and_wait(&c, "form input[value=plan] ~ button").await;
    wait_for_newest_job(&c).await;
    shot(&c, "02-runs").await;

    // The queue, filtered to purchases.
    c.goto(&format!("{base}/ui/proposals"))
        .await
        .expect("queue");
    css(&c, "#f-kind")
        .await
        .select_by_value("purchase")
        .await
        .expect("kind");
    click_and_wait(&c, "form.filters button").await;
    css(&c, "#queue").await;
    let kinds = c
        .find_all(Locator::Css("#queue tbody tr td:nth-child(3)"))
        .await
        .expect("rows");
    assert!(!kinds.is_empty(), "no purchase proposals");
    for k in &kinds {
        assert_eq!(k.text().await.expect("kind"), "采购");
    }
    shot(&c, "03-queue-purchases").await;

    // One proposal: chart and reason; edit the quantity, then approve.
    click_and_wait(&c, "#queue tbody tr td:nth-child(2) a").await;
    css(&c, "svg[data-chart=proposal] polyline.mean").await;
    let reason = text(&c, "#reason").await;
    assert!(reason.contains("覆盖预计需求"), "{reason}");
    shot(&c, "04-proposal").await;
    let qty: i64 = text(&c, "#proposal-qty")
        .await
        .split_whitespace()
        .next()
        .and_then(|q| q.parse().ok())
        .expect("qty");
    fill(&c, "#qty", &(qty + 2).to_string()).await;
    fill(&c, "#edit-reason", "下月有促销活动").await;
    click_and_wait(&c, "#edit-reason ~ button").await;
    assert_eq!(text(&c, "#proposal-status").await, "已修改");
    assert!(text(&c, "#proposal-qty")
        .await
        .starts_with(&(qty + 2).to_string()));
    click_and_wait(&c, "#approve").await;
    assert_eq!(text(&c, "#proposal-status").await, "已批准");

    // A transfer to a station whose credit limit finance has cut to zero waits for finance.
    let run = proposals::latest_plan_run(&t.db)
        .await
        .expect("run")
        .expect("a plan");
    let accounts = credit::accounts(&t.db).await.expect("accounts");
    let held = proposals::queue(
        &t.db,
        &proposals::QueueFilter {
            plan_run: Some(run),
            kind: Some("transfer".into()),
            ..Default::default()
        },
        500,
    )
    .await
    .expect("transfers")
    .rows
    .into_iter()
    .find(|r| r.credit_impact_minor > 0 && accounts.iter().any(|a| a.station_code == r.to_code))
    .expect("a transfer with a credit impact to a station with an account");
    let request = credit::request_limit(&t.db, "test", &held.to_code, 0, "逾期未付")
        .await
        .expect("request");
    credit::decide_limit(&t.db, "test", request.id, request.version, true)
        .await
        .expect("limit cut");
    c.goto(&format!("{base}/ui/proposals/{}", held.id))
        .await
        .expect("transfer");
    click_and_wait(&c, "#approve").await;
    assert_eq!(text(&c, "#proposal-status").await, "待财务审批");

    // Finance approves it from the credit board.
    sign_in(&c, &base, &finance).await;
    c.goto(&format!("{base}/ui/credit")).await.expect("credit");
    shot(&c, "05-credit-board").await;
    click_and_wait(
        &c,
        &format!(
            "#held tr[data-proposal='{}'] button[value=approve]",
            held.id
        ),
    )
    .await;
    assert!(c
        .find(Locator::Css(&format!(
            "#held tr[data-proposal='{}']",
            held.id
        )))
        .await
        .is_err());
    c.goto(&format!("{base}/ui/proposals/{}", held.id))
        .await
        .expect("transfer");
    assert_eq!(text(&c, "#proposal-status").await, "已批准");

    // The station: type-ahead, look-up, a receipt, and availability follows.
    let (station_key, _) = auth::create_token(&t.db, Role::Station, Some(&held.to_code), "张站长")
        .await
        .expect("token");
    sign_in(&c, &base, &station_key).await;
    let part = held.part_code.clone();
    css(&c, "#s-part")
        .await
        .send_keys(&part[..part.len() - 2])
        .await
        .expect("type");
    let started = Instant::now();
    while c
        .find_all(Locator::Css("#part-suggestions option"))
        .await
        .expect("options")
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no type-ahead suggestions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fill(&c, "#s-part", &part).await;
    click_and_wait(&c, "form.filters button").await;
    let before: i64 = text(&c, "#own-available").await.parse().expect("available");
    shot(&c, "06-availability").await;
    css(&c, "input[name=what][value=receipt]")
        .await
        .click()
        .await
        .expect("receipt");
    fill(&c, "#m-qty", "3").await;
    click_and_wait(&c, "#record button").await;
    assert!(text(&c, "p.notice").await.contains("已记录"));
    let after: i64 = text(&c, "#own-available").await.parse().expect("available");
    assert_eq!(after, before + 3);
    shot(&c, "07-after-receipt").await;
    // A tablet held upright.
    c.set_window_size(820, 1180).await.expect("tablet size");
    c.refresh().await.expect("reload");
    css(&c, "#own-available").await;
    shot(&c, "08-tablet-availability").await;
    c.set_window_size(1280, 1000).await.expect("desktop size");

    // English works too, and a station user is refused the planner's queue.
    c.goto(&format!("{base}/ui/lang/en"))
        .await
        .expect("english");
    c.goto(&format!("{base}/ui/stock")).await.expect("stock");
    assert_eq!(text(&c, "main h1").await, "Availability");
    c.goto(&format!("{base}/ui/proposals"))
        .await
        .expect("queue");
    assert_eq!(
        text(&c, "p.error").await,
        "Your role may not open this page."
    );
    shot(&c, "09-station-refused").await;

    c.close().await.expect("close browser");
    drop(driver);
    drop(t);
}
