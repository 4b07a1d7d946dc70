//! Forecasts on a generated network, scored against the generator's ground truth (the
//! expected demand the faults were drawn from), for the months after the history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::de::DeserializeOwned;
use spareplan::forecast::{self, ForecastConfig, History, HistoryRows, Month};
use spareplan::generate::{generate, GenerateConfig};
use spareplan::interchange::rows::{
    EquipmentRow, FaultRow, FitRow, LocationRow, PartRow, PeakSeasonRow,
};

fn read<R: DeserializeOwned>(path: &Path) -> Vec<R> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .deserialize()
        .map(|r| r.expect("generated rows parse"))
        .collect()
}

/// Absolute errors of the combined and the pure series forecast, summed.
#[derive(Default, Debug)]
struct Errors {
    combined: f64,
    series: f64,
    cells: usize,
}

impl Errors {
    fn add(&mut self, combined: f64, series: f64, truth: f64) {
        self.combined += (combined - truth).abs();
        self.series += (series - truth).abs();
        self.cells += 1;
    }
}

#[test]
fn the_combined_forecast_beats_the_pure_series_forecast_against_the_truth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out, truth_dir) = (dir.path().join("net"), dir.path().join("truth"));
    let config = GenerateConfig {
        stations: 60,
        parts: 800,
        years: 3,
        seed: 42,
        start: "2023-11".parse().expect("month"),
        future_months: 12,
        out_dir: out.clone(),
        truth_dir: Some(truth_dir.clone()),
    };
    generate(&config).expect("generate");
    let locations: Vec<LocationRow> = read(&out.join("locations.csv"));
    let parts: Vec<PartRow> = read(&out.join("parts.csv"));
    let fits: Vec<FitRow> = read(&out.join("fits.csv"));
    let equipment: Vec<EquipmentRow> = read(&out.join("equipment.csv"));
    let faults: Vec<FaultRow> = read(&out.join("faults.csv"));
    let peak: Vec<PeakSeasonRow> = read(&out.join("peak_season.csv"));
    let rows = HistoryRows {
        locations: &locations,
        parts: &parts,
        fits: &fits,
        equipment: &equipment,
        faults: &faults,
        peak: &peak,
    };
    let origin: Month = "2026-11".parse().expect("month");
    let history = History::from_rows(&rows, origin, 36).expect("history");
    let run = forecast::run(&history, &ForecastConfig::default(), 12).expect("forecast");

    // Truth for the 12 months after the history: (part, station) → expected per step.
    let mut truth: HashMap<(String, String), [f64; 12]> = HashMap::new();
    for (part, station, month, expected) in
        read::<(String, String, String, f64)>(&truth_dir.join("true_demand.csv"))
    {
        let month: Month = month.parse().expect("truth month");
        if let Ok(step @ 0..=11) = usize::try_from(month.since(origin)) {
            truth.entry((part, station)).or_default()[step] = expected;
        }
    }
    let region: HashMap<&str, &str> = locations
        .iter()
        .filter_map(|l| Some((l.code.as_str(), l.region.as_deref()?)))
        .collect();
    // Stations with less than a year of history: their first work order is in the last 12 months.
    let mut first_fault: HashMap<&str, Month> = HashMap::new();
    for f in &faults {
        let m = Month::of_date(f.opened_on);
        first_fault
            .entry(f.station_code.as_str())
            .and_modify(|x| *x = (*x).min(m))
            .or_insert(m);
    }
    let young: HashSet<&str> = first_fault
        .iter()
        .filter(|(_, m)| origin.since(**m) < 12)
        .map(|(s, _)| *s)
        .collect();
    assert!(
        !young.is_empty(),
        "the demo parameters open some stations late"
    );
    // Each region's peak month: highest mean usage index over its models.
    let mut usage: BTreeMap<(&str, u32), (f64, usize)> = BTreeMap::new();
    for p in &peak {
        let e = usage.entry((p.region.as_str(), p.month)).or_default();
        e.0 += p.usage_index;
        e.1 += 1;
    }
    let mut peak_month: HashMap<&str, u32> = HashMap::new();
    for (&(r, m), &(sum, n)) in &usage {
        let best = peak_month.entry(r).or_insert(m);
        let (bs, bn) = usage[&(r, *best)];
        if sum / n as f64 > bs / bn as f64 {
            *best = m;
        }
    }

    let (mut all, mut new_stations, mut before_peak) =
        (Errors::default(), Errors::default(), Errors::default());
    // Per region × step: (forecast, truth) network totals, for the peak/off-peak ratio.
    let mut totals: HashMap<&str, [(f64, f64); 12]> = HashMap::new();
    let forecasts: HashMap<(&str, &str), &forecast::SeriesForecast> = run
        .series
        .iter()
        .map(|s| ((s.key.part.as_str(), s.key.station.as_str()), s))
        .collect();
    let keys: HashSet<(&str, &str)> = forecasts
        .keys()
        .copied()
        .chain(truth.keys().map(|(p, s)| (p.as_str(), s.as_str())))
        .collect();
    for (part, station) in keys {
        let t = truth
            .get(&(part.to_owned(), station.to_owned()))
            .copied()
            .unwrap_or_default();
        let f = forecasts.get(&(part, station));
        let Some(reg) = region.get(station).copied() else {
            continue;
        };
        for (step, &truth) in t.iter().enumerate().take(12) {
            let combined = f.map_or(0.0, |f| f64::from(f.mean(step)));
            let series = f.map_or(0.0, |f| f64::from(f.series_level));
            all.add(combined, series, truth);
            if young.contains(station) {
                new_stations.add(combined, series, truth);
            }
            let month = origin.plus(step as i32).month();
            if peak_month.get(reg).is_some_and(|&p| month % 12 + 1 == p) {
                before_peak.add(combined, series, truth);
            }
            let cell = &mut totals.entry(reg).or_insert([(0.0, 0.0); 12])[step];
            cell.0 += combined;
            cell.1 += truth;
        }
    }
    eprintln!("MAE per cell (combined vs series): all {:.4} vs {:.4}; stations < 12 months {:.4} vs {:.4}; month before the peak {:.4} vs {:.4}",
        all.combined / all.cells as f64, all.series / all.cells as f64,
        new_stations.combined / new_stations.cells as f64, new_stations.series / new_stations.cells as f64,
        before_peak.combined / before_peak.cells as f64, before_peak.series / before_peak.cells as f64);
    assert!(all.combined < all.series, "overall: {all:?}");
    assert!(
        new_stations.combined < 0.8 * new_stations.series,
        "young stations: {new_stations:?}"
    );
    assert!(
        before_peak.combined < before_peak.series,
        "month before the peak: {before_peak:?}"
    );

    let mut checked = 0;
    for (reg, cells) in &totals {
        let (peak_step, _) = cells
            .iter()
            .enumerate()
            .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .expect("12 steps");
        let (low_step, _) = cells
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .expect("12 steps");
        let truth_ratio = cells[peak_step].1 / cells[low_step].1.max(1e-9);
        let forecast_ratio = cells[peak_step].0 / cells[low_step].0.max(1e-9);
        eprintln!("{reg}: truth peak/low {truth_ratio:.2}, forecast {forecast_ratio:.2}");
        if truth_ratio >= 2.0 {
            checked += 1;
            assert!(
                forecast_ratio >= 1.5,
                "{reg}: truth peak/low {truth_ratio:.2} but forecast {forecast_ratio:.2}"
            );
        }
    }
    assert!(checked > 0, "some region must have a marked peak season");
}
