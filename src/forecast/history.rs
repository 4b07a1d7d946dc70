//! The demand matrix and the causal model, built from the interchange rows (DESIGN §4, §5.1,
//! §5.3).
//!
//! Demand: fault rows with a part, summed per (current part code, station) and month;
//! superseded codes follow the replacement chain (links effective by the forecast origin) so a
//! part keeps its history across a renumbering.
//!
//! Causal model: demand for part p on equipment model m is Poisson with mean
//! rate(p, m) × exposure, exposure = machine-months × usage index(region, m, month of year) ×
//! age factor. Rates are pooled over the whole network and shrunk towards the product-line
//! mean with a gamma prior (Poisson–gamma empirical Bayes, prior fitted by moments), so a
//! pair with little data borrows from its product line. The age factor is a pooled profile
//! over age buckets, estimated the same way and shrunk towards 1.

use std::collections::{HashMap, HashSet};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::period::{Month, PeriodLength};
use super::ForecastError;
use crate::interchange::rows::{
    EquipmentRow, FaultRow, FitRow, LocationRow, PartRow, PeakSeasonRow,
};

/// Identifies a series: a part (current code) at a station.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub part: String,
    pub station: String,
}

/// The interchange tables the history is built from.
#[derive(Debug, Clone, Copy)]
pub struct HistoryRows<'a> {
    pub locations: &'a [LocationRow],
    pub parts: &'a [PartRow],
    pub fits: &'a [FitRow],
    pub equipment: &'a [EquipmentRow],
    pub faults: &'a [FaultRow],
    pub peak: &'a [PeakSeasonRow],
}

/// Settings of the causal model and its combination with the series forecast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CausalConfig {
    /// Units of demand at which a station's own history gets half the weight (§5.4).
    pub prior_weight: f32,
}

impl Default for CausalConfig {
    fn default() -> Self {
        CausalConfig { prior_weight: 4.0 }
    }
}

/// Demand series (rows) × periods (columns, oldest first), with the causal model when the
/// history was built from the installed base.
#[derive(Debug, Clone)]
pub struct History {
    pub keys: Vec<SeriesKey>,
    pub demand: Array2<f32>,
    pub period: PeriodLength,
    /// Calendar month of column 0, when periods are months.
    pub first: Option<Month>,
    causal: Option<Causal>,
}

/// Age buckets (months since delivery, lower bounds) of the pooled age profile: early-life
/// failures concentrate in the first months (DESIGN §4).
const AGE_BUCKETS: [i32; 5] = [0, 3, 6, 12, 24];
/// Pseudo-demand that pulls each age factor towards 1.
const AGE_PRIOR: f64 = 5.0;

fn age_bucket(age: i32) -> usize {
    AGE_BUCKETS.iter().rposition(|&lo| age >= lo).unwrap_or(0)
}

/// Per (station, model): delivery months, sorted.
type Fleet = HashMap<(u32, u32), Vec<Month>>;

#[derive(Debug, Clone)]
struct Causal {
    /// Usage index per (region, model) by month of year; missing = 1.
    usage: HashMap<(u32, u32), [f32; 12]>,
    station_region: Vec<Option<u32>>,
    fleet: Fleet,
    age: [f32; AGE_BUCKETS.len()],
    /// Per series: its station and its (model, rate) terms.
    series_station: Vec<u32>,
    terms: Vec<Vec<(u32, f32)>>,
}

impl Causal {
    fn usage(&self, station: u32, model: u32, month: Month) -> f32 {
        let region = self.station_region[station as usize];
        region
            .and_then(|r| self.usage.get(&(r, model)))
            .map_or(1.0, |u| u[month.month() as usize - 1])
    }

    /// Age-weighted machines of `model` in service at `station` during `month`.
    fn machines(&self, station: u32, model: u32, month: Month) -> f32 {
        self.fleet.get(&(station, model)).map_or(0.0, |deliveries| {
            deliveries
                .iter()
                .take_while(|d| **d <= month)
                .map(|d| self.age[age_bucket(month.since(*d))])
                .sum()
        })
    }

    /// Exposure of one (station, model) in one month: machines × usage.
    fn exposure(&self, station: u32, model: u32, month: Month) -> f32 {
        self.machines(station, model, month) * self.usage(station, model, month)
    }

    fn mean(&self, series: usize, month: Month) -> f32 {
        let s = self.series_station[series];
        self.terms[series]
            .iter()
            .map(|&(m, rate)| rate * self.exposure(s, m, month))
            .sum()
    }
}

/// Interns strings to dense indices.
#[derive(Default)]
struct Names(HashMap<String, u32>);

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        let next = self.0.len() as u32;
        *self.0.entry(name.to_owned()).or_insert(next)
    }
    fn get(&self, name: &str) -> Option<u32> {
        self.0.get(name).copied()
    }
}

impl History {
    /// A history of plain series with no causal model.
    pub fn from_series(
        keys: Vec<SeriesKey>,
        demand: Array2<f32>,
        period: PeriodLength,
        first: Option<Month>,
    ) -> Result<Self, ForecastError> {
        if keys.len() != demand.nrows() {
            return Err(ForecastError::ShapeMismatch {
                keys: keys.len(),
                rows: demand.nrows(),
            });
        }
        Ok(History {
            keys,
            demand,
            period,
            first,
            causal: None,
        })
    }

    /// Builds the monthly demand matrix over the `n_history` months before `origin` (the first
    /// month to forecast) and the causal model. Series are the (part, station) pairs with
    /// demand in the window, plus the pairs where the part fits a model the station services,
    /// so a station with no history but new equipment still gets a forecast.
    pub fn from_rows(
        rows: &HistoryRows,
        origin: Month,
        n_history: usize,
    ) -> Result<Self, ForecastError> {
        let first = origin.plus(-(n_history as i32));
        let current = current_codes(rows.parts, origin);
        let mut stations = Names::default();
        let mut models = Names::default();
        let mut regions = Names::default();
        for loc in rows.locations {
            stations.id(&loc.code);
        }
        let serial_model: HashMap<&str, u32> = rows
            .equipment
            .iter()
            .map(|e| (e.serial.as_str(), models.id(&e.model)))
            .collect();
        let mut fleet: Fleet = HashMap::new();
        let mut serial_delivery: HashMap<&str, Month> = HashMap::new();
        for e in rows.equipment {
            let key = (stations.id(&e.station_code), models.id(&e.model));
            let month = Month::of_date(e.delivered_on);
            fleet.entry(key).or_default().push(month);
            serial_delivery.insert(e.serial.as_str(), month);
        }
        fleet.values_mut().for_each(|v| v.sort_unstable());

        // Demand per (part, station) and month; demand per (part, model) for the rates.
        let mut cells: HashMap<(String, u32), Vec<f32>> = HashMap::new();
        let mut part_model: HashMap<(String, u32), f64> = HashMap::new();
        let mut age_demand = [0f64; AGE_BUCKETS.len()];
        for f in rows.faults {
            let (Some(code), qty) = (f.part_code.as_deref(), f.qty.get()) else {
                continue;
            };
            let t = Month::of_date(f.opened_on).since(first);
            if qty == 0 || t < 0 || t >= n_history as i32 {
                continue;
            }
            let part = current
                .get(code)
                .cloned()
                .unwrap_or_else(|| code.to_owned());
            let station = stations.id(&f.station_code);
            let row = cells
                .entry((part.clone(), station))
                .or_insert_with(|| vec![0.0; n_history]);
            row[t as usize] += qty as f32;
            if let Some(&m) = serial_model.get(f.serial.as_str()) {
                *part_model.entry((part, m)).or_default() += qty as f64;
                if let Some(d) = serial_delivery.get(f.serial.as_str()) {
                    age_demand[age_bucket(Month::of_date(f.opened_on).since(*d))] += qty as f64;
                }
            }
        }

        let mut station_region = vec![None; stations.0.len()];
        for loc in rows.locations {
            if let (Some(s), Some(r)) = (stations.get(&loc.code), loc.region.as_deref()) {
                station_region[s as usize] = Some(regions.id(r));
            }
        }
        let mut usage: HashMap<(u32, u32), [f32; 12]> = HashMap::new();
        for p in rows.peak {
            if !(1..=12).contains(&p.month) {
                continue;
            }
            let key = (regions.id(&p.region), models.id(&p.equipment_model));
            usage.entry(key).or_insert([1.0; 12])[p.month as usize - 1] = p.usage_index as f32;
        }
        let mut causal = Causal {
            usage,
            station_region,
            fleet,
            age: [1.0; AGE_BUCKETS.len()],
            series_station: Vec::new(),
            terms: Vec::new(),
        };
        causal.age = fit_age_profile(&causal, &age_demand, first, n_history);
        let exposure = model_exposure(&causal, models.0.len(), first, n_history);

        // Every (part, model) pair the catalogue or the history knows.
        for fit in rows.fits {
            let part = current
                .get(fit.part_code.as_str())
                .cloned()
                .unwrap_or_else(|| fit.part_code.clone());
            let m = models.id(&fit.equipment_model);
            part_model.entry((part, m)).or_default();
        }
        let line: HashMap<&str, &str> = rows
            .parts
            .iter()
            .map(|p| (p.code.as_str(), p.product_line.as_str()))
            .collect();
        let rates = shrunk_rates(&part_model, &exposure, &line);

        // Series: observed pairs, then pairs implied by fits × fleet.
        let mut part_terms: HashMap<&str, Vec<(u32, f32)>> = HashMap::new();
        for ((part, m), rate) in &rates {
            part_terms
                .entry(part.as_str())
                .or_default()
                .push((*m, *rate));
        }
        let mut keys: HashSet<(String, u32)> = cells.keys().cloned().collect();
        let station_models: HashSet<(u32, u32)> = causal.fleet.keys().copied().collect();
        for (part, terms) in &part_terms {
            for &(s, m) in &station_models {
                if terms.iter().any(|(tm, _)| *tm == m) {
                    keys.insert(((*part).to_owned(), s));
                }
            }
        }
        let mut keys: Vec<(String, u32)> = keys.into_iter().collect();
        let station_name: HashMap<u32, &str> =
            stations.0.iter().map(|(n, i)| (*i, n.as_str())).collect();
        keys.sort_by(|a, b| (&a.0, station_name[&a.1]).cmp(&(&b.0, station_name[&b.1])));

        let mut demand = Array2::zeros((keys.len(), n_history));
        for (i, key) in keys.iter().enumerate() {
            if let Some(row) = cells.get(key) {
                demand
                    .row_mut(i)
                    .assign(&ndarray::ArrayView1::from(row.as_slice()));
            }
            let s = key.1;
            let fleet_models: Vec<(u32, f32)> = part_terms
                .get(key.0.as_str())
                .map(|t| {
                    t.iter()
                        .copied()
                        .filter(|(m, _)| station_models.contains(&(s, *m)))
                        .collect()
                })
                .unwrap_or_default();
            causal.series_station.push(s);
            causal.terms.push(fleet_models);
        }
        let keys = keys
            .into_iter()
            .map(|(part, s)| SeriesKey {
                part,
                station: station_name[&s].to_owned(),
            })
            .collect();
        Ok(History {
            keys,
            demand,
            period: PeriodLength::Month,
            first: Some(first),
            causal: Some(causal),
        })
    }

    /// Number of history periods.
    pub fn periods(&self) -> usize {
        self.demand.ncols()
    }

    /// Each series' history as its own vector, oldest first (in the order of `keys`).
    pub fn series_rows(&self) -> Vec<Vec<f32>> {
        self.demand.rows().into_iter().map(|r| r.to_vec()).collect()
    }

    pub fn has_causal(&self) -> bool {
        self.causal.is_some()
    }

    /// Causal expected demand of series `series` in period `t` (0 = first history column; may
    /// run past the history into the horizon). `None` without a causal model.
    pub fn causal_mean(&self, series: usize, t: usize) -> Option<f32> {
        let (c, first) = (self.causal.as_ref()?, self.first?);
        Some(c.mean(series, first.plus(t as i32)))
    }
}

/// Maps every part code to the code that replaces it at `origin`, following the chain of
/// replacements already in effect; cycles stop where they close.
fn current_codes(parts: &[PartRow], origin: Month) -> HashMap<&str, String> {
    let next: HashMap<&str, &str> = parts
        .iter()
        .filter(|p| p.replaced_on.is_none_or(|d| Month::of_date(d) <= origin))
        .filter_map(|p| Some((p.code.as_str(), p.replaced_by.as_deref()?)))
        .collect();
    parts
        .iter()
        .map(|p| {
            let mut code = p.code.as_str();
            for _ in 0..parts.len() {
                match next.get(code) {
                    Some(n) if *n != p.code => code = n,
                    _ => break,
                }
            }
            (p.code.as_str(), code.to_owned())
        })
        .collect()
}

/// Age factors: demand per unit of age-bucket exposure relative to the overall rate, with
/// AGE_PRIOR units of pseudo-demand at the overall rate in every bucket.
fn fit_age_profile(
    c: &Causal,
    demand: &[f64; AGE_BUCKETS.len()],
    first: Month,
    n: usize,
) -> [f32; AGE_BUCKETS.len()] {
    let mut exposure = [0f64; AGE_BUCKETS.len()];
    for (&(s, m), deliveries) in &c.fleet {
        for t in 0..n {
            let month = first.plus(t as i32);
            let u = c.usage(s, m, month) as f64;
            for d in deliveries.iter().take_while(|d| **d <= month) {
                exposure[age_bucket(month.since(*d))] += u;
            }
        }
    }
    let (d, e): (f64, f64) = (demand.iter().sum(), exposure.iter().sum());
    if d <= 0.0 || e <= 0.0 {
        return [1.0; AGE_BUCKETS.len()];
    }
    let rate = d / e;
    std::array::from_fn(|b| ((demand[b] + AGE_PRIOR) / (exposure[b] * rate + AGE_PRIOR)) as f32)
}

/// Network-wide exposure per model over the history window.
fn model_exposure(c: &Causal, n_models: usize, first: Month, n: usize) -> Vec<f64> {
    let mut e = vec![0f64; n_models];
    for &(s, m) in c.fleet.keys() {
        e[m as usize] += (0..n)
            .map(|t| c.exposure(s, m, first.plus(t as i32)) as f64)
            .sum::<f64>();
    }
    e
}

/// Poisson–gamma empirical Bayes per product line: prior mean μ = ΣD/ΣE, between-pair
/// variance τ² by moments (Σ E(r − μ)² ≈ (k − 1)μ + τ²(ΣE − ΣE²/ΣE)), posterior mean
/// (D + μb)/(E + b) with b = μ/τ². Pairs with no exposure get no rate.
fn shrunk_rates(
    demand: &HashMap<(String, u32), f64>,
    exposure: &[f64],
    line: &HashMap<&str, &str>,
) -> HashMap<(String, u32), f32> {
    // Per product line: (pair, demand, exposure).
    type Pair<'a> = (&'a (String, u32), f64, f64);
    let mut groups: HashMap<&str, Vec<Pair>> = HashMap::new();
    for (key, &d) in demand {
        let e = exposure.get(key.1 as usize).copied().unwrap_or(0.0);
        if e > 0.0 {
            let l = line.get(key.0.as_str()).copied().unwrap_or("");
            groups.entry(l).or_default().push((key, d, e));
        }
    }
    let mut rates = HashMap::new();
    for pairs in groups.values() {
        let (sd, se): (f64, f64) = pairs.iter().fold((0.0, 0.0), |a, p| (a.0 + p.1, a.1 + p.2));
        let mu = sd / se;
        let se2: f64 = pairs.iter().map(|p| p.2 * p.2).sum();
        let q: f64 = pairs.iter().map(|p| p.2 * (p.1 / p.2 - mu).powi(2)).sum();
        let k = pairs.len() as f64;
        let denom = se - se2 / se;
        let tau2 = if denom > 0.0 {
            ((q - (k - 1.0) * mu) / denom).max(0.0)
        } else {
            0.0
        };
        for &(key, d, e) in pairs {
            let rate = if tau2 > 0.0 {
                let b = mu / tau2;
                (d + mu * b) / (e + b)
            } else {
                mu
            };
            rates.insert(key.clone(), rate as f32);
        }
    }
    rates
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::catalog::Criticality;
    use crate::forecast::run::{run, ForecastConfig};
    use crate::history::FaultCategory;
    use crate::network::LocationKind;
    use crate::units::Qty;
    use chrono::NaiveDate;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn station(code: &str) -> LocationRow {
        LocationRow {
            code: code.into(),
            name: code.into(),
            kind: LocationKind::Station,
            parent_code: None,
            region: Some("north".into()),
            city: None,
            key_city: false,
            remote: false,
            lat: 0.0,
            lon: 0.0,
            capacity_m3: 10.0,
        }
    }

    fn part(code: &str, replaced_by: Option<&str>) -> PartRow {
        PartRow {
            code: code.into(),
            name: code.into(),
            uom: "pc".into(),
            product_line: "PL".into(),
            criticality: Criticality::B,
            wear_part: false,
            volume_l: 1.0,
            weight_kg: 1.0,
            supplier_code: "SUP".into(),
            lead_time_days: 30,
            moq: 1,
            pack_size: 1,
            replaced_by: replaced_by.map(Into::into),
            replaced_on: replaced_by.map(|_| date(2022, 6, 1)),
        }
    }

    fn machine(serial: String, station: &str, delivered: NaiveDate) -> EquipmentRow {
        EquipmentRow {
            serial,
            model: "M".into(),
            product_line: "PL".into(),
            station_code: station.into(),
            delivered_on: delivered,
            warranty_until: delivered,
        }
    }

    type Tables = (
        Vec<LocationRow>,
        Vec<PartRow>,
        Vec<FitRow>,
        Vec<EquipmentRow>,
        Vec<FaultRow>,
        Vec<PeakSeasonRow>,
    );

    /// Two stations in region `north`, whose usage index for model M is 3 in July and 1
    /// otherwise. S1 has serviced 10 machines since 2020 and used 1 unit of part P a month,
    /// 3 in July (24 months: 22·1 + 2·3 = 28 units; the first five months under the old code
    /// P0, superseded by P on 2022-06-01). S2 gets 10 new machines in January 2024, the first
    /// forecast month, and has no history at all.
    ///
    /// Pooled rate: 28 units / (10 machines × (22·1 + 2·3) usage-months) = 0.1; the age
    /// profile is flat here (all history falls in one age bucket; the others keep their prior
    /// factor 1). The truth at S2 is therefore 10 × 0.1 = 1 a month, 3 in July.
    fn network() -> Tables {
        let locations = vec![station("S1"), station("S2")];
        let parts = vec![part("P0", Some("P")), part("P", None)];
        let fits = vec![FitRow {
            part_code: "P".into(),
            equipment_model: "M".into(),
        }];
        let mut equipment: Vec<EquipmentRow> = (0..10)
            .map(|i| machine(format!("E{i}"), "S1", date(2020, 1, 1)))
            .collect();
        equipment.extend((0..10).map(|i| machine(format!("F{i}"), "S2", date(2024, 1, 10))));
        let peak = (1..=12)
            .map(|month| PeakSeasonRow {
                region: "north".into(),
                equipment_model: "M".into(),
                month,
                usage_index: if month == 7 { 3.0 } else { 1.0 },
            })
            .collect();
        let faults = (0..24)
            .map(|t| {
                let m = Month::new(2022, 1).unwrap().plus(t);
                let opened = date(m.year(), m.month(), 15);
                FaultRow {
                    work_order: format!("W{t}"),
                    opened_on: opened,
                    serial: "E0".into(),
                    station_code: "S1".into(),
                    category: FaultCategory::Mechanical,
                    fault_level: "B2".into(),
                    part_code: Some(if t < 5 { "P0" } else { "P" }.into()),
                    qty: Qty::new(if m.month() == 7 { 3 } else { 1 }).unwrap(),
                    warranty: false,
                }
            })
            .collect();
        (locations, parts, fits, equipment, faults, peak)
    }

    fn history() -> History {
        let (locations, parts, fits, equipment, faults, peak) = network();
        let rows = HistoryRows {
            locations: &locations,
            parts: &parts,
            fits: &fits,
            equipment: &equipment,
            faults: &faults,
            peak: &peak,
        };
        History::from_rows(&rows, Month::new(2024, 1).unwrap(), 24).unwrap()
    }

    #[test]
    fn demand_follows_supersession_and_fits_add_new_stations() {
        let h = history();
        let keys: Vec<(&str, &str)> = h
            .keys
            .iter()
            .map(|k| (k.part.as_str(), k.station.as_str()))
            .collect();
        assert_eq!(keys, [("P", "S1"), ("P", "S2")]);
        assert!((h.demand.row(0).sum() - 28.0).abs() < 1e-6);
        assert_eq!(h.demand.row(1).sum(), 0.0);
        // Causal mean at S1 in a July of the history (t = 6): 10 × 3 × 0.1 = 3.
        assert!((h.causal_mean(0, 6).unwrap() - 3.0).abs() < 1e-4);
        // S2 has no machines before 2024.
        assert_eq!(h.causal_mean(1, 23).unwrap(), 0.0);
    }

    #[test]
    fn new_equipment_and_the_peak_are_predicted_where_the_series_cannot() {
        let h = history();
        let r = run(&h, &ForecastConfig::default(), 12).unwrap();
        let s2 = &r.series[1];
        assert_eq!(s2.key.station, "S2");
        // No history: the series forecast is zero and flat, the weight on it 0.
        assert_eq!(s2.series_level, 0.0);
        assert_eq!(s2.series_weight, 0.0);
        // Combined = causal: 1 in January (step 0), 3 in July (step 6).
        assert!((s2.means[0] - 1.0).abs() < 0.05, "{:?}", s2.means);
        assert!((s2.means[6] - 3.0).abs() < 0.1, "{:?}", s2.means);
        assert!(s2.means[6] >= 1.5 * s2.means[0]);
        assert!(s2.quantile(6, 0.9) > s2.quantile(0, 0.9));

        // S1: the series level (≈ 1.17, its mean) is carried along the causal profile, so its
        // July forecast is ≈ 3 too, while the pure series forecast stays flat.
        let s1 = &r.series[0];
        assert!(s1.series_weight > 0.8);
        assert!(s1.means[6] >= 1.5 * s1.means[0], "{:?}", s1.means);
        assert!((s1.means[6] - 3.0).abs() < 0.5, "{:?}", s1.means);
    }

    #[test]
    fn supersession_respects_the_effective_date() {
        let mut parts = vec![
            part("P0", Some("P")),
            part("P", Some("P2")),
            part("P2", None),
        ];
        parts[1].replaced_on = Some(date(2030, 1, 1));
        let map = current_codes(&parts, Month::new(2024, 1).unwrap());
        assert_eq!(map["P0"], "P");
        assert_eq!(map["P"], "P");
        // A cycle stops instead of looping.
        let cyc = vec![part("A", Some("B")), part("B", Some("A"))];
        let map = current_codes(&cyc, Month::new(2024, 1).unwrap());
        assert!(map["A"] == "A" || map["A"] == "B");
    }
}
