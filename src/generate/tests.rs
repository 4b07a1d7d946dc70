//! End-to-end checks on generated networks: determinism, the import rules of DESIGN §9
//! checked by reading the files back with the row structs, and the realism the forecasts
//! rely on (seasons, and faults matching the truth).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;

use super::*;
use crate::catalog::CodingRule;
use crate::history::FaultCategory;
use crate::interchange::rows::{CreditRow, StockRow};

fn config(dir: &Path, stations: usize, parts: usize, years: u32, seed: u64) -> GenerateConfig {
    GenerateConfig {
        stations,
        parts,
        years,
        seed,
        start: "2023-11".parse().expect("valid month"),
        future_months: 12,
        out_dir: dir.join("out"),
        truth_dir: Some(dir.join("truth")),
    }
}

/// Reads a whole file back with its row struct; the header must be exactly the struct's
/// fields in order (checked by writing the first row back with serde's header).
fn read<T: CsvRow + DeserializeOwned>(dir: &Path) -> Vec<T> {
    let path = dir.join(T::FILE);
    let mut reader = csv::Reader::from_path(&path).expect("file exists");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header, T::HEADER, "{}", T::FILE);
    let rows: Vec<T> = reader
        .deserialize()
        .enumerate()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("{}:{}: {e}", T::FILE, i + 2)))
        .collect();
    if let Some(first) = rows.first() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(first).expect("serializes");
        let text = String::from_utf8(w.into_inner().expect("flush")).expect("utf-8");
        assert_eq!(
            text.lines().next(),
            Some(T::HEADER.join(",").as_str()),
            "{}",
            T::FILE
        );
    }
    rows
}

fn unique<K: Ord + std::fmt::Debug>(what: &str, keys: impl IntoIterator<Item = K>) -> BTreeSet<K> {
    let mut seen = BTreeSet::new();
    for key in keys {
        assert!(!seen.contains(&key), "{what}: duplicate key {key:?}");
        seen.insert(key);
    }
    seen
}

fn files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

#[test]
fn the_same_seed_gives_identical_files_and_another_seed_different_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = |name: &str, seed| {
        let dir = tmp.path().join(name);
        generate(&config(&dir, 14, 150, 2, seed)).expect("generates");
        (files_of(&dir.join("out")), files_of(&dir.join("truth")))
    };
    let (a, a_truth) = run("a", 7);
    let (b, b_truth) = run("b", 7);
    let (c, _) = run("c", 8);
    assert_eq!(a.len(), 11);
    assert_eq!(a_truth.len(), 3);
    assert!(a == b, "same seed, different import files");
    assert!(a_truth == b_truth, "same seed, different truth");
    for file in ["faults.csv", "parts.csv", "equipment.csv", "locations.csv"] {
        assert_ne!(a[file], c[file], "{file} ignores the seed");
    }
}

#[test]
fn the_truth_may_not_sit_inside_the_import_set() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(tmp.path(), 3, 20, 1, 1);
    cfg.truth_dir = Some(cfg.out_dir.join("truth"));
    assert!(matches!(
        generate(&cfg),
        Err(GenerateError::TruthInsideOutput { .. })
    ));
    cfg.parts = 5;
    assert!(matches!(generate(&cfg), Err(GenerateError::Parts(5))));
}

#[test]
fn every_reference_resolves_and_every_key_is_unique() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = config(tmp.path(), 25, 300, 2, 3);
    let summary = generate(&cfg).expect("generates");
    let dir = &cfg.out_dir;
    let history = (cfg.start.first_day(), cfg.history_end().plus(1).first_day());
    let future_end = cfg
        .history_end()
        .plus(cfg.future_months as i32 + 1)
        .first_day();

    let locations: Vec<LocationRow> = read(dir);
    assert_eq!(summary.rows("locations.csv"), Some(locations.len() as u64));
    let by_code: BTreeMap<&str, &LocationRow> =
        locations.iter().map(|l| (l.code.as_str(), l)).collect();
    unique("location", locations.iter().map(|l| &l.code));
    let central: Vec<_> = locations
        .iter()
        .filter(|l| l.kind == LocationKind::Central)
        .collect();
    assert_eq!(central.len(), 1);
    assert_eq!(central[0].parent_code, None);
    for l in &locations {
        match l.kind {
            LocationKind::Central => {}
            LocationKind::Regional => {
                assert_eq!(l.parent_code.as_deref(), Some(central[0].code.as_str()));
                assert!(l.region.is_some());
            }
            LocationKind::Station => {
                let parent = by_code[l.parent_code.as_deref().expect("station has a parent")];
                assert_eq!(parent.kind, LocationKind::Regional, "{}", l.code);
                assert_eq!(parent.region, l.region, "{}", l.code);
                assert!(l.city.is_some() && l.region.is_some());
            }
        }
    }
    let regions: BTreeSet<&str> = locations
        .iter()
        .filter_map(|l| l.region.as_deref())
        .collect();
    assert_eq!(regions.len(), 9);

    let lanes: Vec<LaneRow> = read(dir);
    unique("lane", lanes.iter().map(|l| (&l.from_code, &l.to_code)));
    for lane in &lanes {
        assert!(
            by_code.contains_key(lane.from_code.as_str())
                && by_code.contains_key(lane.to_code.as_str())
        );
        assert!(
            lane.lead_time_days >= 1 && lane.cost_per_unit.minor() > 0 && lane.currency == "CNY"
        );
    }
    let lateral = lanes
        .iter()
        .filter(|l| by_code[l.from_code.as_str()].kind == LocationKind::Station);
    assert!(lateral.count() > 0, "some station ↔ station lanes");

    let suppliers: Vec<SupplierRow> = read(dir);
    let supplier_codes = unique("supplier", suppliers.iter().map(|s| s.code.clone()));
    let parts: Vec<PartRow> = read(dir);
    assert_eq!(parts.len(), 300);
    let part_by_code: BTreeMap<&str, &PartRow> =
        parts.iter().map(|p| (p.code.as_str(), p)).collect();
    unique("part", parts.iter().map(|p| &p.code));
    let rule = CodingRule::default();
    for p in &parts {
        rule.parse(&p.code).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.code.starts_with(&format!("{}-", p.product_line)));
        assert!(supplier_codes.contains(&p.supplier_code));
        assert!(p.pack_size >= 1 && p.moq >= 1 && p.lead_time_days >= 1);
        assert_eq!(
            p.replaced_by.is_some(),
            p.replaced_on.is_some(),
            "{}",
            p.code
        );
        if let (Some(next), Some(on)) = (&p.replaced_by, p.replaced_on) {
            assert!(part_by_code.contains_key(next.as_str()), "{next}");
            assert!(
                on > history.0 && on < history.1,
                "replaced_on {on} inside the history"
            );
        }
        // Follow the chain: it must end within as many steps as there are parts.
        let mut code = p.code.as_str();
        for _ in 0..=parts.len() {
            match &part_by_code[code].replaced_by {
                Some(next) => code = next,
                None => break,
            }
        }
        assert!(
            part_by_code[code].replaced_by.is_none(),
            "cycle through {}",
            p.code
        );
    }
    assert!(
        parts.iter().any(|p| p.replaced_by.is_some()),
        "some supersession"
    );

    let prices: Vec<PriceRow> = read(dir);
    unique(
        "price",
        prices
            .iter()
            .map(|p| (&p.part_code, p.kind.as_str(), p.effective_from)),
    );
    for p in &prices {
        assert!(
            part_by_code.contains_key(p.part_code.as_str())
                && p.currency == "CNY"
                && p.amount.minor() > 0
        );
    }
    let fits: Vec<FitRow> = read(dir);
    let fit_set = unique(
        "fit",
        fits.iter()
            .map(|f| (f.part_code.clone(), f.equipment_model.clone())),
    );
    let peaks: Vec<PeakSeasonRow> = read(dir);
    unique(
        "peak",
        peaks
            .iter()
            .map(|p| (&p.region, &p.equipment_model, p.month)),
    );
    let models: BTreeSet<&str> = peaks.iter().map(|p| p.equipment_model.as_str()).collect();
    for p in &peaks {
        assert!(
            regions.contains(p.region.as_str())
                && (1..=12).contains(&p.month)
                && p.usage_index > 0.0
        );
    }
    for f in &fits {
        assert!(
            part_by_code.contains_key(f.part_code.as_str())
                && models.contains(f.equipment_model.as_str())
        );
    }
    let stock: Vec<StockRow> = read(dir);
    unique(
        "stock",
        stock.iter().map(|s| (&s.part_code, &s.location_code)),
    );
    for s in &stock {
        assert!(
            part_by_code.contains_key(s.part_code.as_str())
                && by_code.contains_key(s.location_code.as_str())
        );
        assert!(s.on_hand.get() > 0);
    }
    let credit: Vec<CreditRow> = read(dir);
    unique("credit", credit.iter().map(|c| &c.station_code));
    for c in &credit {
        assert_eq!(by_code[c.station_code.as_str()].kind, LocationKind::Station);
        assert!(c.currency == "CNY" && c.limit.minor() > 0);
    }
    for l in locations.iter().filter(|l| l.remote) {
        assert!(
            credit.iter().any(|c| c.station_code == l.code),
            "remote {} has credit",
            l.code
        );
    }

    let equipment: Vec<EquipmentRow> = read(dir);
    let machines: BTreeMap<&str, &EquipmentRow> =
        equipment.iter().map(|e| (e.serial.as_str(), e)).collect();
    unique("serial", equipment.iter().map(|e| &e.serial));
    for e in &equipment {
        assert_eq!(by_code[e.station_code.as_str()].kind, LocationKind::Station);
        assert!(models.contains(e.model.as_str()) && e.model.starts_with(&e.product_line));
        assert!(e.delivered_on < future_end && e.warranty_until > e.delivered_on);
    }
    // Sales go on after the history: the installed base lists machines delivered in the
    // future window (the opening stock and the history know nothing of them).
    assert!(
        equipment.iter().any(|e| e.delivered_on >= history.1),
        "no future deliveries"
    );
    check_faults(dir, &machines, &part_by_code, &fit_set, history);
}

fn check_faults(
    dir: &Path,
    machines: &BTreeMap<&str, &EquipmentRow>,
    parts: &BTreeMap<&str, &PartRow>,
    fits: &BTreeSet<(String, String)>,
    history: (NaiveDate, NaiveDate),
) {
    let faults: Vec<FaultRow> = read(dir);
    assert!(faults.len() > 1000, "{} fault rows", faults.len());
    unique(
        "fault line",
        faults.iter().map(|f| (&f.work_order, &f.part_code)),
    );
    let mut empty_orders = 0;
    for f in &faults {
        let machine = machines[f.serial.as_str()];
        assert_eq!(machine.station_code, f.station_code, "{}", f.work_order);
        assert!(
            f.opened_on >= machine.delivered_on
                && f.opened_on >= history.0
                && f.opened_on < history.1
        );
        assert_eq!(f.warranty, f.opened_on <= machine.warranty_until);
        let level = f.fault_level.as_bytes();
        assert!(level.len() == 2 && b"ABC".contains(&level[0]) && b"123".contains(&level[1]));
        let Some(code) = &f.part_code else {
            assert_eq!(f.qty.get(), 0);
            empty_orders += 1;
            continue;
        };
        assert!(f.qty.get() >= 1);
        let part = parts[code.as_str()];
        assert!(
            fits.contains(&(code.clone(), machine.model.clone())),
            "{code} does not fit {}",
            machine.model
        );
        let system = code.split('-').nth(1).expect("system segment");
        let category = match system {
            "ELE" => FaultCategory::Electrical,
            "HYD" => FaultCategory::Hydraulic,
            "MEC" => FaultCategory::Mechanical,
            _ => FaultCategory::Other,
        };
        assert_eq!(f.category, category, "{}", f.work_order);
        assert!(f.fault_level.as_bytes()[0] <= part.criticality.as_str().as_bytes()[0]);
        if let Some(on) = part.replaced_on {
            assert!(f.opened_on < on, "{code} issued after it was replaced");
        }
        if let Some(old) = parts
            .values()
            .find(|p| p.replaced_by.as_deref() == Some(code.as_str()))
        {
            assert!(
                Some(f.opened_on) >= old.replaced_on,
                "{code} issued before it existed"
            );
        }
    }
    assert!(empty_orders > 0, "some work orders have no part");
}

/// The demo's parameters (DESIGN §10).
fn demo(dir: &Path) -> GenerateConfig {
    config(dir, 60, 800, 3, 42)
}

#[test]
fn demo_faults_follow_the_seasons_and_match_the_truth() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = demo(tmp.path());
    let summary = generate(&cfg).expect("generates");
    let faults: Vec<FaultRow> = read(&cfg.out_dir);
    let locations: Vec<LocationRow> = read(&cfg.out_dir);
    let north: BTreeSet<&str> = locations
        .iter()
        .filter(|l| matches!(l.region.as_deref(), Some("西北" | "东北" | "山东河北")))
        .filter(|l| l.kind == LocationKind::Station)
        .map(|l| l.code.as_str())
        .collect();
    assert!(north.len() >= 10);

    // Fault part-lines at northern stations by calendar month.
    let mut by_month = [0u64; 13];
    let mut total_qty = 0i64;
    for f in faults.iter().filter(|f| f.part_code.is_some()) {
        total_qty += f.qty.get();
        if north.contains(f.station_code.as_str()) {
            by_month[chrono::Datelike::month(&f.opened_on) as usize] += 1;
        }
    }
    let winter = (by_month[12] + by_month[1] + by_month[2]) as f64;
    let summer = (by_month[6] + by_month[7] + by_month[8]) as f64;
    assert!(winter < 0.6 * summer, "winter {winter} vs summer {summer}");
    // The same holds in the peak-season data itself.
    let peaks: Vec<PeakSeasonRow> = read(&cfg.out_dir);
    let index = |months: &[u32]| -> f64 {
        peaks
            .iter()
            .filter(|p| p.region == "东北" && months.contains(&p.month))
            .map(|p| p.usage_index)
            .sum()
    };
    assert!(index(&[12, 1, 2]) < 0.6 * index(&[6, 7, 8]));

    // The truth's expectation over the history against the drawn quantities. With ~10^5
    // lines of mean lot ≈ 1.6 the relative sd of the total is well under 1 %; allow 3 %.
    let truth_dir = cfg.truth_dir.as_deref().expect("truth");
    let end = cfg.history_end().to_string();
    let truth: Vec<TrueDemandRow> = read(truth_dir);
    let expected: f64 = truth
        .iter()
        .filter(|t| t.month <= end)
        .map(|t| t.expected_demand)
        .sum();
    let relative = (total_qty as f64 - expected).abs() / expected;
    assert!(
        relative < 0.03,
        "drawn {total_qty} vs expected {expected:.0}"
    );
    // The truth runs 12 months past the history.
    let last = cfg.history_end().plus(12).to_string();
    assert!(truth.iter().any(|t| t.month == last));
    assert!(!truth.iter().any(|t| t.month > last));

    let rows = summary.rows("faults.csv").expect("faults counted");
    assert!((50_000..=150_000).contains(&rows), "{rows} fault rows");
    assert_eq!(rows, faults.len() as u64);
    check_late_stations(&cfg, &faults);

    // data/demo is exactly this run's import set.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo");
    let mut committed = files_of(&committed);
    assert!(committed.remove("README.md").is_some());
    assert!(
        committed == files_of(&cfg.out_dir),
        "data/demo is not what the generator writes"
    );
    // data/demo-future is its realised future (the rolling replay's truth), drawn as the
    // history was, and the future machines fail in it.
    let future = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-future/future_demand.csv");
    assert!(
        std::fs::read(&future).ok() == std::fs::read(truth_dir.join("future_demand.csv")).ok(),
        "data/demo-future is not what the generator writes"
    );
    let realised: i64 = read::<crate::generate::demand::FutureDemandRow>(truth_dir)
        .iter()
        .map(|r| r.demand)
        .sum();
    let expected: f64 = truth
        .iter()
        .filter(|t| t.month > end)
        .map(|t| t.expected_demand)
        .sum();
    let relative = (realised as f64 - expected).abs() / expected;
    assert!(
        relative < 0.03,
        "future drawn {realised} vs expected {expected:.0}"
    );
}

/// A few stations open inside the last year: their first fault is < 12 months before the end.
fn check_late_stations(cfg: &GenerateConfig, faults: &[FaultRow]) {
    let mut first: BTreeMap<&str, NaiveDate> = BTreeMap::new();
    for f in faults {
        let e = first.entry(f.station_code.as_str()).or_insert(f.opened_on);
        *e = (*e).min(f.opened_on);
    }
    let cutoff = cfg.history_end().plus(-11).first_day();
    let late = first.values().filter(|&&d| d >= cutoff).count();
    assert!((2..=6).contains(&late), "{late} late stations");
}

#[test]
fn headers_are_the_contract_columns_even_for_empty_tables() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let table = Table::<CreditRow>::create(tmp.path()).expect("creates");
    assert_eq!(table.finish().expect("finishes"), ("credit.csv", 0));
    let text = std::fs::read_to_string(tmp.path().join("credit.csv")).expect("read");
    assert_eq!(text, "station_code,limit,currency\n");
}

#[test]
fn the_cli_flags_fill_the_config_with_the_demo_defaults() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenerateArgs,
    }
    let cli = Cli::try_parse_from(["x", "--stations", "5", "--out", "o", "--truth", "t"])
        .expect("parses");
    let cfg = GenerateConfig::from(cli.args);
    assert_eq!(
        (cfg.stations, cfg.parts, cfg.years, cfg.seed),
        (5, 800, 3, 42)
    );
    assert_eq!(
        (cfg.start.to_string(), cfg.future_months),
        ("2023-11".to_owned(), 12)
    );
    assert_eq!(cfg.history_end().to_string(), "2026-10");
    assert_eq!(cfg.truth_dir, Some(PathBuf::from("t")));
    assert!(Cli::try_parse_from(["x", "--out", "o", "--start", "2023-13"]).is_err());
}
