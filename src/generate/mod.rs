//! A deterministic generator of realistic after-sales networks (DESIGN §10): locations,
//! lanes, suppliers, parts, prices, fits, opening stock, installed base, fault history, peak
//! seasons and credit lines, in the CSV formats of DESIGN §9; plus the ground truth of the
//! demand process the faults were drawn from, for testing forecasts.
//!
//! Every random choice comes from a ChaCha8 stream keyed by the seed and by what it is for
//! (and, for per-station work, by the station's index), so the output does not depend on the
//! order work is done in or on the number of threads.

mod calendar;
mod catalog;
mod demand;
mod fleet;
mod geography;
mod stock;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub use calendar::{BadMonth, YearMonth};
pub use demand::{age_factor, TrueDemandRow, TrueRateRow};

use crate::catalog::PriceKind;
use crate::interchange::rows::{
    EquipmentRow, FaultRow, FitRow, LaneRow, LocationRow, PartRow, PeakSeasonRow, PriceRow,
    SupplierRow,
};
use crate::network::LocationKind;
use crate::units::{Amount, UnitError};
use catalog::Catalog;
use demand::World;
use fleet::Machine;
use geography::{Station, CENTRAL_CITY, CENTRAL_CODE, REGIONS};
use writer::{Chunk, CsvRow, Table};

/// What to generate and where.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    pub stations: usize,
    pub parts: usize,
    /// Years of fault history.
    pub years: u32,
    pub seed: u64,
    /// First month of the history.
    pub start: YearMonth,
    /// Months after the history the truth covers.
    pub future_months: u32,
    pub out_dir: PathBuf,
    /// Where the ground truth goes; never inside `out_dir`. `None` = no truth (at 500
    /// stations × 20,000 parts it would be hundreds of millions of rows).
    pub truth_dir: Option<PathBuf>,
}

impl GenerateConfig {
    pub fn history_months(&self) -> u32 {
        self.years * 12
    }

    /// The last month of the history.
    pub fn history_end(&self) -> YearMonth {
        self.start.plus(self.history_months() as i32 - 1)
    }

    fn check(&self) -> Result<(), GenerateError> {
        if self.stations == 0 || self.stations > 100_000 {
            return Err(GenerateError::Stations(self.stations));
        }
        if !(MIN_PARTS..=MAX_PARTS).contains(&self.parts) {
            return Err(GenerateError::Parts(self.parts));
        }
        if self.years == 0 || self.years > 30 {
            return Err(GenerateError::Years(self.years));
        }
        Ok(())
    }
}

const MIN_PARTS: usize = 10;
const MAX_PARTS: usize = 200_000;

/// `spareplan generate`: a synthetic network of a given size, deterministic by seed.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Service stations (besides 1 central and 9 regional centres).
    #[arg(long, default_value_t = 60)]
    pub stations: usize,
    /// Part codes, including the ~3 % that supersede another.
    #[arg(long, default_value_t = 800)]
    pub parts: usize,
    /// Years of fault history.
    #[arg(long, default_value_t = 3)]
    pub years: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First month of the history (YYYY-MM).
    #[arg(long, default_value = "2023-11")]
    pub start: YearMonth,
    /// Months after the history covered by the truth files.
    #[arg(long, default_value_t = 12)]
    pub future_months: u32,
    /// Directory for the import CSVs.
    #[arg(long)]
    pub out: PathBuf,
    /// Directory for true_rates.csv and true_demand.csv (not inside --out); none if absent.
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

impl From<GenerateArgs> for GenerateConfig {
    fn from(a: GenerateArgs) -> Self {
        GenerateConfig {
            stations: a.stations,
            parts: a.parts,
            years: a.years,
            seed: a.seed,
            start: a.start,
            future_months: a.future_months,
            out_dir: a.out,
            truth_dir: a.truth,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("--stations must be 1 to 100000, not {0}")]
    Stations(usize),
    #[error("--parts must be {MIN_PARTS} to {MAX_PARTS}, not {0}")]
    Parts(usize),
    #[error("--years must be 1 to 30, not {0}")]
    Years(u32),
    #[error("the truth directory {truth} is inside the output directory {out}; the truth must stay out of the import set")]
    TruthInsideOutput { truth: PathBuf, out: PathBuf },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("generated an invalid value: {0}")]
    Unit(#[from] UnitError),
}

/// Rows written per file (header excluded), in writing order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub files: Vec<(&'static str, u64)>,
    pub truth: Vec<(&'static str, u64)>,
}

impl GenerateSummary {
    pub fn rows(&self, file: &str) -> Option<u64> {
        self.files
            .iter()
            .chain(&self.truth)
            .find(|(f, _)| *f == file)
            .map(|(_, n)| *n)
    }
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (file, rows) in &self.files {
            writeln!(f, "{file:<18} {rows:>10} rows")?;
        }
        for (file, rows) in &self.truth {
            writeln!(f, "{file:<18} {rows:>10} rows (truth)")?;
        }
        Ok(())
    }
}

/// What a random stream is for; with the seed and an index it keys a ChaCha8 stream.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Stations = 1,
    Seasons = 2,
    Lanes = 3,
    Catalog = 4,
    Fleet = 5,
    Faults = 6,
    Stock = 7,
    Credit = 8,
    Locations = 9,
    /// Machines delivered after the history (continued sales).
    FutureFleet = 10,
    /// The realised future's failures.
    FutureFaults = 11,
}

fn stream(seed: u64, purpose: Stream, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((purpose as u64) << 40) | index);
    rng
}

/// Generates the whole network into `config.out_dir` (and the truth into `truth_dir`).
pub fn generate(config: &GenerateConfig) -> Result<GenerateSummary, GenerateError> {
    config.check()?;
    let out = prepare_dir(&config.out_dir)?;
    let truth = match &config.truth_dir {
        Some(dir) => Some(prepare_dir(dir)?),
        None => None,
    };
    if let Some(truth) = &truth {
        if truth.starts_with(&out) {
            return Err(GenerateError::TruthInsideOutput {
                truth: truth.clone(),
                out,
            });
        }
    }
    let catalog = catalog::build(config);
    let stations = geography::build_stations(config);
    let seasons = geography::Seasons::build(config, &catalog);
    let fleets: Vec<Vec<Machine>> = (0..stations.len())
        .into_par_iter()
        .map(|i| fleet::build_station(config, &catalog, &stations[i], i))
        .collect();
    let world = World {
        config,
        catalog: &catalog,
        seasons: &seasons,
        stations: &stations,
        fleets: &fleets,
    };
    let mut summary = GenerateSummary::default();
    write_network(&world, &out, &mut summary)?;
    write_catalog(&world, &out, &mut summary)?;
    write_installed_base(&world, &out, &mut summary)?;
    let stock = stock::stock_rows(config, &catalog, &stations, &fleets)?;
    summary.files.push(write_all(&out, &stock)?);
    summary
        .files
        .push(write_all(&out, &stock::credit_rows(config, &stations))?);
    summary.files.push(per_station::<FaultRow>(
        &world,
        &out,
        demand::station_faults,
    )?);
    if let Some(truth) = truth {
        summary
            .truth
            .push(write_all(&truth, &demand::true_rates(&catalog))?);
        summary.truth.push(per_station::<TrueDemandRow>(
            &world,
            &truth,
            demand::station_truth,
        )?);
        summary.truth.push(per_station::<demand::FutureDemandRow>(
            &world,
            &truth,
            demand::station_future,
        )?);
    }
    Ok(summary)
}

/// Creates `dir` and returns its canonical path (so that nesting can be checked).
fn prepare_dir(dir: &Path) -> Result<PathBuf, GenerateError> {
    let io = |source| GenerateError::Io {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    dir.canonicalize().map_err(io)
}

fn write_all<T: CsvRow>(dir: &Path, rows: &[T]) -> Result<(&'static str, u64), GenerateError> {
    let mut table = Table::<T>::create(dir)?;
    for row in rows {
        table.write(row)?;
    }
    table.finish()
}

/// Runs `work` for every station in parallel, a few stations at a time so that memory stays
/// bounded, and appends the chunks in station order.
fn per_station<T: CsvRow>(
    world: &World,
    dir: &Path,
    work: fn(&World, usize, &Path) -> Result<Chunk, GenerateError>,
) -> Result<(&'static str, u64), GenerateError> {
    let mut table = Table::<T>::create(dir)?;
    let batch = 2 * rayon::current_num_threads().max(1);
    let indices: Vec<usize> = (0..world.stations.len()).collect();
    for group in indices.chunks(batch) {
        let chunks: Vec<Chunk> = group
            .par_iter()
            .map(|&i| work(world, i, dir))
            .collect::<Result<_, _>>()?;
        for chunk in chunks {
            table.append(chunk)?;
        }
    }
    table.finish()
}

fn cny() -> String {
    "CNY".to_owned()
}

fn write_network(
    world: &World,
    dir: &Path,
    summary: &mut GenerateSummary,
) -> Result<(), GenerateError> {
    let config = world.config;
    summary
        .files
        .push(write_all(dir, &location_rows(config, world.stations))?);
    let lanes: Vec<LaneRow> = geography::build_lanes(config, world.stations)
        .into_iter()
        .map(|l| LaneRow {
            from_code: l.from,
            to_code: l.to,
            lead_time_days: l.days,
            cost_per_unit: Amount::from_minor(l.cost_fen),
            currency: cny(),
        })
        .collect();
    summary.files.push(write_all(dir, &lanes)?);
    let mut peaks = Vec::with_capacity(REGIONS.len() * world.catalog.models.len() * 12);
    for (r, region) in REGIONS.iter().enumerate() {
        for (m, model) in world.catalog.models.iter().enumerate() {
            for month in 1..=12 {
                peaks.push(PeakSeasonRow {
                    region: region.name.to_owned(),
                    equipment_model: model.code.to_owned(),
                    month,
                    usage_index: world.seasons.index_of(r, m, month),
                });
            }
        }
    }
    summary.files.push(write_all(dir, &peaks)?);
    Ok(())
}

fn location_rows(config: &GenerateConfig, stations: &[Station]) -> Vec<LocationRow> {
    use rand::Rng;
    let mut rng = stream(config.seed, Stream::Locations, 0);
    let mut rows = vec![LocationRow {
        code: CENTRAL_CODE.to_owned(),
        name: format!("{}中心库", CENTRAL_CITY.name),
        kind: LocationKind::Central,
        parent_code: None,
        region: None,
        city: Some(CENTRAL_CITY.name.to_owned()),
        key_city: true,
        remote: false,
        lat: CENTRAL_CITY.lat,
        lon: CENTRAL_CITY.lon,
        capacity_m3: 20_000.0,
    }];
    for (r, region) in REGIONS.iter().enumerate() {
        let hub = region.cities[0];
        rows.push(LocationRow {
            code: geography::regional_code(r),
            name: format!("{}区域中心库", region.name),
            kind: LocationKind::Regional,
            parent_code: Some(CENTRAL_CODE.to_owned()),
            region: Some(region.name.to_owned()),
            city: Some(hub.name.to_owned()),
            key_city: hub.key,
            remote: false,
            lat: hub.lat,
            lon: hub.lon,
            capacity_m3: f64::from(rng.gen_range(25..=40u32)) * 100.0,
        });
    }
    for s in stations {
        let capacity = if s.key_city {
            rng.gen_range(150..=300u32)
        } else {
            rng.gen_range(40..=150u32)
        };
        rows.push(LocationRow {
            code: s.code.clone(),
            name: s.name.clone(),
            kind: LocationKind::Station,
            parent_code: Some(geography::regional_code(s.region)),
            region: Some(REGIONS[s.region].name.to_owned()),
            city: Some(s.city.to_owned()),
            key_city: s.key_city,
            remote: s.remote,
            lat: s.lat,
            lon: s.lon,
            capacity_m3: f64::from(capacity),
        });
    }
    rows
}

fn write_catalog(
    world: &World,
    dir: &Path,
    summary: &mut GenerateSummary,
) -> Result<(), GenerateError> {
    let catalog = world.catalog;
    let suppliers: Vec<SupplierRow> = catalog
        .suppliers
        .iter()
        .map(|s| SupplierRow {
            code: s.code.clone(),
            name: s.name.clone(),
        })
        .collect();
    summary.files.push(write_all(dir, &suppliers)?);
    summary.files.push(write_all(dir, &part_rows(catalog))?);
    summary.files.push(write_all(dir, &price_rows(catalog))?);
    let fits: Vec<FitRow> = catalog
        .parts
        .iter()
        .flat_map(|p| {
            catalog.slots[p.slot].rates.iter().map(|&(m, _)| FitRow {
                part_code: p.code.clone(),
                equipment_model: catalog.models[m].code.to_owned(),
            })
        })
        .collect();
    summary.files.push(write_all(dir, &fits)?);
    Ok(())
}

fn part_rows(catalog: &Catalog) -> Vec<PartRow> {
    catalog
        .parts
        .iter()
        .map(|p| {
            let slot = &catalog.slots[p.slot];
            PartRow {
                code: p.code.clone(),
                name: p.name.clone(),
                uom: p.uom.to_owned(),
                product_line: catalog.lines[slot.line].code.to_owned(),
                criticality: slot.criticality,
                wear_part: p.wear,
                volume_l: p.volume_l,
                weight_kg: p.weight_kg,
                supplier_code: catalog.suppliers[p.supplier].code.clone(),
                lead_time_days: p.lead_time_days,
                moq: p.moq,
                pack_size: p.pack_size,
                replaced_by: p.replaced.map(|(next, _)| catalog.parts[next].code.clone()),
                replaced_on: p.replaced.map(|(_, from)| from.first_day()),
            }
        })
        .collect()
}

/// Cost, dealer (cost × 1.2–1.4) and retail (dealer × 1.15–1.35) from a date before the
/// history, and for some parts all three raised again later.
fn price_rows(catalog: &Catalog) -> Vec<PriceRow> {
    let mut rows = Vec::new();
    for p in &catalog.parts {
        let mut dated = vec![(p.prices_from, 1.0)];
        dated.extend(p.price_change);
        for (from, factor) in dated {
            let cost = p.cost_fen as f64 * factor;
            let dealer = cost * p.dealer_markup;
            let retail = dealer * p.retail_markup;
            for (kind, fen) in [
                (PriceKind::Cost, cost),
                (PriceKind::Dealer, dealer),
                (PriceKind::Retail, retail),
            ] {
                rows.push(PriceRow {
                    part_code: p.code.clone(),
                    kind,
                    amount: Amount::from_minor(fen.round() as i64),
                    currency: cny(),
                    effective_from: from.first_day(),
                });
            }
        }
    }
    rows
}

fn write_installed_base(
    world: &World,
    dir: &Path,
    summary: &mut GenerateSummary,
) -> Result<(), GenerateError> {
    let mut table = Table::<EquipmentRow>::create(dir)?;
    for (station, fleet) in world.stations.iter().zip(world.fleets) {
        for machine in fleet {
            let model = &world.catalog.models[machine.model];
            table.write(&EquipmentRow {
                serial: machine.serial.clone(),
                model: model.code.to_owned(),
                product_line: world.catalog.lines[model.line].code.to_owned(),
                station_code: station.code.clone(),
                delivered_on: machine.delivered,
                warranty_until: machine.warranty_until,
            })?;
        }
    }
    summary.files.push(table.finish()?);
    Ok(())
}
