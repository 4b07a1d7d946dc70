//! Throughput of the per-series forecasting core: synthetic intermittent series × 48 months,
//! classification + method choice + parameter grid fit + spread fit + quantiles (one-period
//! p90 and lead-time p95 over 3 periods), rayon on 2 threads; then the cross-series hurdle
//! model the backtest uses (fitted on inner origins of all series, at most 400,000 examples)
//! and its one-period p90 for every series.
//!
//! `cargo bench --bench forecast` (1,000,000 series; `SPAREPLAN_BENCH_SERIES=N` to change).
//! Peak memory is read from /proc/self/status (VmHWM).

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use spareplan::forecast::{fit_series, PooledModel, SeriesConfig};

const PERIODS: usize = 48;

/// Intermittent demand: per series a demand probability in [0.05, 0.7] and a mean size in
/// [1, 6]; sizes 1 + Poisson-ish spread. Generated in parallel, deterministic per chunk.
fn generate(series: usize) -> Vec<f32> {
    let mut data = vec![0f32; series * PERIODS];
    data.par_chunks_mut(PERIODS * 1024)
        .enumerate()
        .for_each(|(chunk, block)| {
            let mut rng = ChaCha8Rng::seed_from_u64(chunk as u64);
            for y in block.chunks_mut(PERIODS) {
                let p: f32 = rng.gen_range(0.05..0.7);
                let size: f32 = rng.gen_range(1.0..6.0);
                for v in y.iter_mut() {
                    if rng.gen::<f32>() < p {
                        *v = (1.0 + rng.gen::<f32>() * 2.0 * (size - 1.0)).round();
                    }
                }
            }
        });
    data
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let series: usize = std::env::var("SPAREPLAN_BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a rayon pool of 2 threads");
    let cfg = SeriesConfig::default();
    pool.install(|| {
        let t0 = Instant::now();
        let data = generate(series);
        let gen = t0.elapsed();
        let t1 = Instant::now();
        let out: Vec<(spareplan::forecast::SeriesFit, f32, f32)> = data
            .par_chunks(PERIODS)
            .map(|y| {
                let fit = fit_series(y, &cfg, None);
                let level = fit.level as f64;
                let q90 = fit.spread.quantile(level, 1, 0.90) as f32;
                let lt95 = fit.spread.quantile(3.0 * level, 3, 0.95) as f32;
                (fit, q90, lt95)
            })
            .collect();
        let secs = t1.elapsed().as_secs_f64();
        let mean_q90 = out.iter().map(|o| o.1 as f64).sum::<f64>() / out.len().max(1) as f64;
        drop(out);
        let t2 = Instant::now();
        let rows: Vec<&[f32]> = data.chunks(PERIODS).collect();
        let model = PooledModel::fit(&rows, 12);
        let fit_secs = t2.elapsed().as_secs_f64();
        let pooled_q90: f64 = match &model {
            Some(m) => rows
                .par_iter()
                .map(|y| m.forecast(y, &[0.90]).1[0])
                .sum::<f64>(),
            None => f64::NAN,
        } / rows.len().max(1) as f64;
        let pooled_secs = t2.elapsed().as_secs_f64();
        println!(
            "pooled hurdle: fit {fit_secs:.2} s ({} examples, κ {}), predict all {:.2} s; \
             mean p90 {pooled_q90:.3}; total with the series fits {:.2} s",
            model.as_ref().map_or(0, |m| m.examples),
            model.as_ref().map_or(f64::NAN, |m| m.size_kappa),
            pooled_secs - fit_secs,
            secs + pooled_secs
        );
        println!(
            "forecast: {series} series x {PERIODS} periods on 2 threads: {secs:.2} s, \
             {:.0} series/s (generation {:.2} s apart); mean p90 {mean_q90:.3}; peak RSS {:.0} MB",
            series as f64 / secs,
            gen.as_secs_f64(),
            peak_rss_mb()
        );
    });
}
