//! The plan against the min/max baseline on a generated network, replayed against draws of
//! the generator's true future demand (issue 3): same forecast, same targets, same lead
//! times and opening stock for both.

use spareplan::catalog::CodingRule;
use spareplan::forecast_runs::{self, RunOptions};
use spareplan::generate::{generate, GenerateConfig};
use spareplan::interchange;
use spareplan::plan::PlanModel;
use spareplan::simulate_runs::{self, SimulateOptions};

use crate::support::{fresh_db, repo_path};

#[tokio::test]
async fn the_plan_holds_less_stock_than_min_max_at_the_same_fill_rate() {
    let t = fresh_db().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, truth) = (dir.path().join("net"), dir.path().join("truth"));
    generate(&GenerateConfig {
        stations: SIM_STATIONS,
        parts: SIM_PARTS,
        years: 3,
        seed: 11,
        start: "2023-11".parse().expect("month"),
        future_months: 12,
        out_dir: out.clone(),
        truth_dir: Some(truth.clone()),
    })
    .expect("generate");
    interchange::import_dir(&t.db, &out, &CodingRule::default())
        .await
        .expect("import");
    forecast_runs::run_and_store(&t.db, &RunOptions::default())
        .await
        .expect("forecast");
    let text = std::fs::read_to_string(repo_path("models/monthly-replenishment.toml"))
        .expect("model file");
    let model = PlanModel::from_toml(&text).expect("model");
    let (cmp, _) = simulate_runs::run(
        &t.db,
        model,
        &SimulateOptions {
            truth_dir: &truth,
            targets: vec![0.85, 0.92, 0.97],
            draws: 3,
            seed: 1,
        },
    )
    .await
    .expect("simulate");
    println!("{}", cmp.table());
    assert_eq!(cmp.points.len(), 3);
    for w in cmp.points.windows(2) {
        let (lo, hi) = (&w[0], &w[1]);
        // A higher target buys more protection under both policies: more stock, and (same
        // demand draws) a fill rate at least as high up to noise.
        assert!(
            hi.baseline.average_stock_value > lo.baseline.average_stock_value,
            "min/max stock must grow with the target: {lo:?} / {hi:?}"
        );
        assert!(
            hi.plan.average_stock_value > lo.plan.average_stock_value,
            "plan stock must grow with the target: {lo:?} / {hi:?}"
        );
        assert!(hi.baseline.fill_rate >= lo.baseline.fill_rate - 0.005);
        assert!(hi.plan.fill_rate >= lo.plan.fill_rate - 0.005);
    }
    for p in &cmp.points {
        assert_eq!(p.plan_status, spareplan::plan::PlanStatus::Optimal);
        assert!(
            p.plan.fill_rate > 0.5 && p.baseline.fill_rate > 0.5,
            "{p:?}"
        );
    }
    // The baseline's frontier is monotone; the trade-off is read along it both ways.
    assert!(cmp.baseline_curve.windows(2).all(|w| w[0].1 <= w[1].1));
    // Where it is read, the plan holds clearly less stock than min/max at the same fill.
    for p in &cmp.points {
        if let Some(saving) = p.saving_at_equal_fill {
            assert!(
                saving > 0.20,
                "saving at equal fill only {saving:.3}: {p:?}"
            );
        }
    }
    // With the same stock value the plan serves clearly more. Measured on this network
    // (3 draws): plan 0.872 / 0.918 / 0.950 at targets 0.85 / 0.92 / 0.97, with less stock
    // than min/max at the same target, whose fill there is 0.740 / 0.805 / 0.844.
    for p in &cmp.points {
        let baseline = p
            .baseline_fill_at_plan_value
            .expect("the baseline's curve spans the plan's stock value");
        assert!(
            p.plan.fill_rate > baseline + 0.05,
            "plan fill {:.3} against min/max {baseline:.3} at the same stock value: {p:?}",
            p.plan.fill_rate
        );
        assert!(
            p.plan.average_stock_value < p.baseline.average_stock_value
                && p.plan.fill_rate > p.baseline.fill_rate,
            "the plan must dominate min/max at the same target: {p:?}"
        );
    }
    // The replayed plan comes within reach of its targets (0.85 is met; the higher ones
    // miss by 0–2 points on 3 draws).
    for p in &cmp.points {
        assert!(p.plan.fill_rate > p.target - 0.04, "{p:?}");
    }
}

const SIM_STATIONS: usize = 12;
const SIM_PARTS: usize = 150;
