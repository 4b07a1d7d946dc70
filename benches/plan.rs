//! Planner benchmark over a size grid (stations × parts, 12 monthly periods) on synthetic
//! networks where each station sees 5–15 % of the parts.
//!
//! `cargo bench --bench plan -- 60x800 200x5000 500x20000` (default: 60x800). Prints, per
//! size: active pairs, LP columns, instance generation, model build (stocking decision,
//! per-part blocks, safety stock, linking rows) and solve times apart, method, rounds, gap,
//! status, where the decomposition's time went, and the process's peak memory (VmHWM).
//! Each size should run in its own process for a clean peak-memory figure. `--monolith`
//! also solves the same instance as one HiGHS LP and prints how far the decomposition's
//! relaxation is from it (the 1 % check); `--time-limit S` overrides the model's limit.
//! `RUST_LOG=spareplan::plan::decompose=debug` prints every decomposition round (master
//! value, Lagrangian bound, gap, plans added) on stderr.

use std::time::Instant;

use spareplan::plan::{self, synthetic, PlanModel, PlanStatus, Policy};
use spareplan::units::Amount;

fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check_monolith = args.iter().any(|a| a == "--monolith");
    let time_limit: Option<f64> = args
        .iter()
        .position(|a| a == "--time-limit")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    let sizes: Vec<(usize, usize)> = args
        .iter()
        .filter_map(|a| {
            let (s, p) = a.split_once('x')?;
            Some((s.parse().ok()?, p.parse().ok()?))
        })
        .collect();
    let sizes = if sizes.is_empty() {
        vec![(60, 800)]
    } else {
        sizes
    };
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/monthly-replenishment.toml"
    ))
    .expect("model file");
    for (stations, parts) in sizes {
        let mut model = PlanModel::from_toml(&text).expect("model");
        if let Some(limit) = time_limit {
            model.solver.time_limit_s = limit;
        }
        let gen = Instant::now();
        let syn = synthetic::generate(stations, parts, model.periods, 7);
        let gen_ms = gen.elapsed().as_secs_f64() * 1e3;
        // A budget at 80 % of mean monthly consumption, so the budget rows bind.
        if let Some(b) = model.budget.as_mut() {
            b.amount = Amount::from_major_f64(0.8 * syn.monthly_consumption_value);
        }
        let total = Instant::now();
        let sol = plan::solve_full(&model, &syn.instance);
        let r = &sol.result;
        println!(
            "{stations}x{parts}: pairs {} columns {} | generate {:.0} ms | build {:.0} ms | solve {:.0} ms | total {:.0} ms | {} rounds {} gap {:.4} | status {:?} | purchases {} transfers {} | peak {:.0} MB",
            syn.instance.demand.len(),
            r.columns,
            gen_ms,
            r.build_ms,
            r.solve_ms,
            total.elapsed().as_secs_f64() * 1e3,
            r.method,
            r.iterations,
            r.gap.unwrap_or(f64::NAN),
            r.status,
            r.purchases.len(),
            r.transfers.len(),
            peak_memory_mb(),
        );
        if let Some(p) = &r.dw_profile {
            println!(
                "  decomposition: sample of {} parts {:.0} ms | master {:.0} ms | pricing wall {:.0} ms | {} part solves: building networks {:.0} ms cpu, network simplex {:.0} ms cpu | plans {} added, {} retired",
                p.sample_parts, p.sample_ms, p.master_ms, p.pricing_wall_ms, p.part_solves, p.part_build_cpu_ms, p.part_solve_cpu_ms, p.columns, p.retired
            );
        }
        if check_monolith {
            let mut mono = model.clone();
            mono.solver.method = spareplan::plan::Method::Monolith;
            let started = Instant::now();
            let m = plan::solve(&mono, &syn.instance);
            let (a, b) = (m.relaxation, r.relaxation);
            println!(
                "  monolith: status {:?} build {:.0} ms solve {:.0} ms (wall {:.0} ms) | relaxation {:?} vs {} {:?} | difference {}",
                m.status,
                m.build_ms,
                m.solve_ms,
                started.elapsed().as_secs_f64() * 1e3,
                a,
                r.method,
                b,
                match (a, b) {
                    (Some(a), Some(b)) => format!("{:.4} %", 100.0 * (b - a) / a.abs().max(1.0)),
                    _ => "n/a".into(),
                }
            );
        }
        if r.status == PlanStatus::Optimal && parts <= 5_000 {
            let planned = plan::simulate(&model, &syn.instance, &syn.realised, &Policy::Plan(&sol));
            let baseline = plan::simulate(&model, &syn.instance, &syn.realised, &Policy::MinMax);
            for s in [planned, baseline] {
                println!(
                    "  replay {:8}: fill {:.3} stock-outs {} avg stock value {} total cost {}",
                    s.policy, s.fill_rate, s.stockouts, s.average_stock_value, s.total_cost
                );
            }
        }
    }
}
