//! The rolling replay (DESIGN §11) on a small generated network: the plan lives through the
//! future month by month in a scratch copy (the source database is not touched), beside the
//! min/max curve; the lines it released, replayed by the same rules from the file it wrote,
//! give the same fill and inventory.

use spareplan::catalog::CodingRule;
use spareplan::generate::{self, GenerateConfig};
use spareplan::interchange;
use spareplan::plan::PlanModel;
use spareplan::replay::{self, ReplayError, RollingOptions};

use crate::api_support::Api;
use crate::support::repo_path;

fn options(truth: std::path::PathBuf) -> RollingOptions {
    let text = std::fs::read_to_string(repo_path("models/monthly-replenishment.toml"))
        .expect("model file");
    RollingOptions {
        truth,
        model: PlanModel::from_toml(&text).expect("model"),
        model_text: text,
        z: vec![0.0, 1.0, 2.0],
        released_out: None,
        replay_released: None,
        scratch: None,
        months: Some(4),
        progress: false,
    }
}

#[tokio::test]
async fn the_plan_lives_month_by_month_and_its_released_lines_replay_the_same() {
    let api = Api::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GenerateConfig {
        stations: 6,
        parts: 30,
        years: 2,
        seed: 21,
        start: "2023-11".parse().expect("month"),
        future_months: 4,
        out_dir: dir.path().join("net"),
        truth_dir: Some(dir.path().join("truth")),
    };
    generate::generate(&config).expect("generate");
    interchange::import_dir(api.db(), &config.out_dir, &CodingRule::default())
        .await
        .expect("import");
    let truth = dir.path().join("truth/future_demand.csv");
    let (proposals, faults) = (api.count("proposals").await, api.count("faults").await);

    let released = dir.path().join("released.csv");
    let mut opts = options(truth.clone());
    opts.released_out = Some(released.clone());
    let report = replay::run(api.db(), &CodingRule::default(), &opts)
        .await
        .expect("rolling replay");
    println!("{}", report.table());
    assert_eq!(report.months, 4);
    assert_eq!(report.first_month, "2025-11");
    let plan = &report.plan;
    assert!(plan.demand > 0 && plan.order_lines > 0, "{plan:?}");
    assert!(plan.fill_24h >= plan.shelf_fill);
    assert!(plan.months.iter().all(|m| m.projected_fill.is_some()));
    // The baseline's curve: more safety stock, more inventory.
    let values: Vec<f64> = report
        .baseline
        .iter()
        .map(|b| b.average_inventory_value)
        .collect();
    assert!(values.windows(2).all(|w| w[1] >= w[0]), "{values:?}");
    // The replay lived in a copy: the source database is as it was.
    assert_eq!(
        (api.count("proposals").await, api.count("faults").await),
        (proposals, faults)
    );

    // The released file, replayed by the same rules against the same truth: the same year.
    let mut again = options(truth);
    again.replay_released = Some(released);
    let file = replay::run(api.db(), &CodingRule::default(), &again)
        .await
        .expect("replay of the released file");
    let (a, b) = (&report.plan, &file.plan);
    assert_eq!(
        (a.demand, a.order_lines, 0),
        (b.demand, b.order_lines, b.refused_lines),
        "same demand, every released line released again"
    );
    assert!(
        (a.fill_24h - b.fill_24h).abs() < 1e-12,
        "{} vs {}",
        a.fill_24h,
        b.fill_24h
    );
    assert!((a.shelf_fill - b.shelf_fill).abs() < 1e-12);
    assert!(
        (a.average_inventory_value - b.average_inventory_value).abs() < 1e-6,
        "{} vs {}",
        a.average_inventory_value,
        b.average_inventory_value
    );
}

#[tokio::test]
async fn a_truth_that_does_not_start_after_the_history_is_refused() {
    let api = Api::tiny().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let truth = dir.path().join("truth.csv");
    std::fs::write(
        &truth,
        "part_code,station_code,month,demand\nPT-MEC-000010,S001,2020-01,2\n",
    )
    .expect("write");
    let err = replay::run(api.db(), &CodingRule::default(), &options(truth))
        .await
        .err();
    assert!(
        matches!(err, Some(ReplayError::NotAfterHistory { .. })),
        "{:?}",
        err.map(|e| e.to_string())
    );
}
