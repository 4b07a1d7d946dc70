//! Import throughput of a large faults.csv into SQLite and PostgreSQL, and the importer's
//! peak memory at two file sizes (flat memory = streaming).
//!
//! `cargo bench --bench import` — generates (once, cached under target/bench-import) a
//! network with ≥ 2,000,000 fault lines, loads its master data, then times
//! `spareplan import faults` on each backend through the release binary under
//! `/usr/bin/time` (max RSS). PostgreSQL is skipped when it is not reachable at
//! SPAREPLAN_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
//! Set SPAREPLAN_BENCH_STATIONS / _YEARS to change the size.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const MASTER_KINDS: [&str; 7] = [
    "locations",
    "lanes",
    "suppliers",
    "parts",
    "prices",
    "fits",
    "equipment",
];

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A private copy of the binary this bench was built with (a shared target dir may see
/// the file at CARGO_BIN_EXE_spareplan rebuilt from another checkout mid-run).
fn bin() -> &'static str {
    static COPY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let to = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-import/spareplan");
        std::fs::create_dir_all(to.parent().expect("parent")).expect("bench dir");
        std::fs::copy(env!("CARGO_BIN_EXE_spareplan"), &to).expect("copy the binary");
        to.display().to_string()
    })
}

fn run(url: &str, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("run spareplan");
    assert!(
        out.status.success(),
        "spareplan {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Generates the network once; later runs reuse it.
fn network(dir: &Path, stations: &str, years: &str) -> PathBuf {
    let data = dir.join(format!("s{stations}-y{years}"));
    if !data.join("faults.csv").exists() {
        eprintln!(
            "generating {stations} stations × {years} years into {} …",
            data.display()
        );
        let out = data.to_str().expect("utf-8 path");
        run(
            "sqlite::memory:",
            &[
                "generate",
                "--stations",
                stations,
                "--parts",
                "20000",
                "--years",
                years,
                "--out",
                out,
            ],
        );
    }
    data
}

/// The first `rows` fault lines as a file of their own (for the memory comparison).
fn head(faults: &Path, rows: usize, to: &Path) {
    let input = BufReader::new(std::fs::File::open(faults).expect("faults"));
    let mut out = BufWriter::new(std::fs::File::create(to).expect("create"));
    for line in input.lines().take(rows + 1) {
        writeln!(out, "{}", line.expect("line")).expect("write");
    }
}

struct Measured {
    rows: u64,
    seconds: f64,
    max_rss_mb: f64,
}

/// Imports faults into a database that holds the master data; returns rows, time, max RSS.
fn import_faults(url: &str, faults: &Path) -> Measured {
    let out = Command::new("/usr/bin/time")
        .args([
            "-f",
            "maxrss_kb=%M",
            bin(),
            "import",
            "faults",
            faults.to_str().expect("utf-8"),
        ])
        .env("DATABASE_URL", url)
        .output()
        .expect("run /usr/bin/time");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "import failed: {stderr}");
    assert!(
        stdout.contains("faults.csv"),
        "unexpected import output: {stdout}"
    );
    // "faults.csv   2001234 rows    9.87 s"
    let fields: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let rss_kb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    Measured {
        rows: fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0),
        seconds: fields
            .get(3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN),
        max_rss_mb: rss_kb / 1024.0,
    }
}

fn load_master(url: &str, data: &Path) {
    run(url, &["migrate"]);
    for kind in MASTER_KINDS {
        let file = data.join(format!("{kind}.csv"));
        run(url, &["import", kind, file.to_str().expect("utf-8")]);
    }
}

fn sqlite_db(dir: &Path, name: &str) -> String {
    let file = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    format!("sqlite://{}", file.display())
}

fn postgres_db(admin_url: &str, name: &str) -> Option<String> {
    let ok = Command::new("psql")
        .args([
            admin_url,
            "-qc",
            &format!("drop database if exists {name} with (force)"),
            "-c",
            &format!("create database {name}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    let (base, _) = admin_url.rsplit_once('/')?;
    ok.then(|| format!("{base}/{name}"))
}

fn report(backend: &str, half: &Measured, full: &Measured) {
    println!(
        "{backend:<10} {:>9} rows {:>7.2} s {:>9.0} rows/s   max RSS {:>6.1} MB (at {} rows: {:.1} MB)",
        full.rows,
        full.seconds,
        full.rows as f64 / full.seconds,
        full.max_rss_mb,
        half.rows,
        half.max_rss_mb
    );
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-import");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let data = network(
        &dir,
        &env_or("SPAREPLAN_BENCH_STATIONS", "800"),
        &env_or("SPAREPLAN_BENCH_YEARS", "4"),
    );
    let faults = data.join("faults.csv");
    let lines = BufReader::new(std::fs::File::open(&faults).expect("faults"))
        .lines()
        .count()
        - 1;
    let half_file = dir.join("faults-half.csv");
    head(&faults, lines / 2, &half_file);
    println!(
        "faults.csv: {lines} rows, {:.0} MB",
        std::fs::metadata(&faults).map_or(0.0, |m| m.len() as f64 / 1e6)
    );

    let measure = |url_for: &dyn Fn(&str) -> Option<String>| -> Option<(Measured, Measured)> {
        let half_url = url_for("sp_bench_half")?;
        load_master(&half_url, &data);
        let half = import_faults(&half_url, &half_file);
        let full_url = url_for("sp_bench_full")?;
        load_master(&full_url, &data);
        let full = import_faults(&full_url, &faults);
        Some((half, full))
    };
    if let Some((half, full)) = measure(&|name| Some(sqlite_db(&dir, &format!("{name}.db")))) {
        report("SQLite", &half, &full);
    }
    let pg_admin = env_or(
        "SPAREPLAN_BENCH_PG_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    match measure(&|name| postgres_db(&pg_admin, name)) {
        Some((half, full)) => report("PostgreSQL", &half, &full),
        None => println!("PostgreSQL   skipped: {pg_admin} not reachable"),
    }
}
