//! A fresh database per test, on the backend CI asks for.
//!
//! `SPAREPLAN_TEST_DB=postgres` runs the suite on PostgreSQL (`SPAREPLAN_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`): each test gets its own database,
//! dropped when the test ends, pass or fail. Otherwise each test gets a SQLite file in a
//! temporary directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use spareplan::db::Db;

pub struct TestDb {
    pub db: Db,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

fn on_postgres() -> bool {
    std::env::var("SPAREPLAN_TEST_DB").is_ok_and(|v| v == "postgres")
}

fn pg_admin_url() -> String {
    std::env::var("SPAREPLAN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A migrated, empty database of its own.
pub async fn fresh_db() -> TestDb {
    if on_postgres() {
        let admin_url = pg_admin_url();
        let name = format!(
            "sp_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        let admin = Db::connect_without_migrating(&admin_url)
            .await
            .expect("PostgreSQL reachable");
        if let Some(pool) = admin.postgres_pool() {
            sqlx::query(&format!("create database {name}"))
                .execute(pool)
                .await
                .expect("create test database");
        }
        admin.close().await;
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("URL with a database name");
        let url = format!("{base}/{name}");
        let db = Db::connect(&url).await.expect("connect and migrate");
        TestDb {
            db,
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        }
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let db = Db::connect(&url).await.expect("connect and migrate");
        TestDb {
            db,
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop may run inside a runtime; do the async cleanup on a thread of its own.
            // The pool is not closed first: closing waits for connections to come back,
            // which needs the very runtime this drop blocks. `with (force)` ends them.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        let admin = Db::connect_without_migrating(&admin_url).await;
                        if let Some(pool) = admin.as_ref().ok().and_then(Db::postgres_pool) {
                            let _ = sqlx::query(&format!(
                                "drop database if exists {name} with (force)"
                            ))
                            .execute(pool)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub fn tiny() -> PathBuf {
    repo_path("tests/fixtures/tiny")
}

/// Runs the CLI binary against `url`; returns (success, stdout, stderr).
pub fn cli(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spareplan"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("run the spareplan binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines of a CSV file, header first, the rest sorted: content regardless of order.
pub fn csv_content(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.len() > 1 {
        lines[1..].sort();
    }
    lines
}
