//! The failure process and its two outputs: faults drawn from it (faults.csv) and its
//! expectation (the truth files).
//!
//! A machine in month t contributes `exposure = active share of the month × usage index of
//! its region and model in t × age factor`. Failure events of slot p on model m arrive as
//! Poisson(exposure × rate[p, m]); each replaces `1 + Poisson(lot_mean − 1)` units. So the
//! expected units of the part issued for p at a station in t are
//! `Σ_machines exposure × rate[p, m] × lot_mean`, which is what true_demand.csv holds.

use std::collections::BTreeMap;
use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};

use super::calendar::YearMonth;
use super::catalog::{Catalog, System};
use super::fleet::{first_service_day, Machine};
use super::geography::{Seasons, Station};
use super::writer::{Chunk, ChunkWriter, CsvRow};
use super::{stream, GenerateConfig, GenerateError, Stream};
use crate::catalog::Criticality;
use crate::interchange::rows::FaultRow;
use crate::units::Qty;

/// Work orders without a part (inspections, adjustments) per usage-unit machine-month.
const NO_PART_RATE: f64 = 0.12;

/// Relative failure intensity by whole months since delivery: early-life peaks at months
/// 1, 3, 6 and 12, then a slow wear-out drift of 4 % a year (capped after 8 years).
pub fn age_factor(age_months: i32) -> f64 {
    match age_months {
        0 => 1.5,
        1 => 2.2,
        3 => 1.7,
        6 => 1.5,
        12 => 1.4,
        a if a < 12 => 1.0,
        a => 1.0 + 0.04 * f64::from((a / 12).min(8)),
    }
}

/// Usage-weighted machine-months `machine` contributes in `month` (0 before delivery).
pub fn exposure(machine: &Machine, month: YearMonth, usage: f64) -> f64 {
    let delivered = machine.delivered_month();
    let age = month.months_since(delivered);
    if age < 0 {
        return 0.0;
    }
    let days = month.days();
    let active = f64::from(days + 1 - first_service_day(machine, month)) / f64::from(days);
    active * usage * age_factor(age)
}

/// Everything the per-station work reads.
pub struct World<'a> {
    pub config: &'a GenerateConfig,
    pub catalog: &'a Catalog,
    pub seasons: &'a Seasons,
    pub stations: &'a [Station],
    pub fleets: &'a [Vec<Machine>],
}

/// Poisson draws by inversion for small means (the usual case here, and cheap), the
/// library's sampler for large ones.
fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean >= 30.0 {
        return Poisson::new(mean).map_or(0, |d| d.sample(rng) as u32);
    }
    let limit = (-mean).exp();
    let mut product: f64 = rng.gen();
    let mut k = 0;
    while product > limit {
        product *= rng.gen::<f64>();
        k += 1;
    }
    k
}

/// One work order before it gets its number: the parts merged per slot.
struct Order {
    day: u32,
    machine: usize,
    system: System,
    level: String,
    lines: BTreeMap<usize, u32>,
}

fn fault_level(criticality: Criticality, rng: &mut ChaCha8Rng) -> String {
    let digit = match rng.gen_range(0..10) {
        0..=4 => 1,
        5..=7 => 2,
        _ => 3,
    };
    format!("{}{}", criticality.as_str(), digit)
}

/// One machine's work orders in one month. Failure events of the same system on the same
/// machine in the same month are one work order (dated at the first), one line per part.
fn machine_orders(
    world: &World,
    machine_index: usize,
    machine: &Machine,
    month: YearMonth,
    exposure: f64,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Order>,
) {
    let catalog = world.catalog;
    let first_day = first_service_day(machine, month);
    let model = &catalog.per_model[machine.model];
    let mut by_system: BTreeMap<System, (u32, Criticality, BTreeMap<usize, u32>)> = BTreeMap::new();
    if let Some(picker) = &model.picker {
        for _ in 0..poisson(rng, exposure * model.total) {
            let slot_index = model.slots[picker.sample(rng)];
            let slot = &catalog.slots[slot_index];
            let day = rng.gen_range(first_day..=month.days());
            let qty = 1 + poisson(rng, slot.lot_mean - 1.0);
            let entry =
                by_system
                    .entry(slot.system)
                    .or_insert((day, slot.criticality, BTreeMap::new()));
            entry.0 = entry.0.min(day);
            entry.1 = entry.1.min(slot.criticality);
            *entry.2.entry(slot_index).or_insert(0) += qty;
        }
    }
    for (system, (day, criticality, lines)) in by_system {
        let level = fault_level(criticality, rng);
        out.push(Order {
            day,
            machine: machine_index,
            system,
            level,
            lines,
        });
    }
    for _ in 0..poisson(rng, exposure * NO_PART_RATE) {
        let system = System::ALL[rng.gen_range(0..4)];
        let criticality = if rng.gen_bool(0.2) {
            Criticality::B
        } else {
            Criticality::C
        };
        let level = fault_level(criticality, rng);
        let day = rng.gen_range(first_day..=month.days());
        out.push(Order {
            day,
            machine: machine_index,
            system,
            level,
            lines: BTreeMap::new(),
        });
    }
}

/// All fault rows of station `index` over the history, from the station's own stream.
pub fn station_faults(world: &World, index: usize, dir: &Path) -> Result<Chunk, GenerateError> {
    let config = world.config;
    let station = &world.stations[index];
    let fleet = &world.fleets[index];
    let mut rng = stream(config.seed, Stream::Faults, index as u64);
    let mut writer = ChunkWriter::<FaultRow>::new();
    let mut orders = Vec::new();
    for t in 0..config.history_months() as i32 {
        let month = config.start.plus(t);
        orders.clear();
        for (i, machine) in fleet.iter().enumerate() {
            let usage = world.seasons.usage(station.region, machine.model, month);
            let e = exposure(machine, month, usage);
            if e > 0.0 {
                machine_orders(world, i, machine, month, e, &mut rng, &mut orders);
            }
        }
        orders.sort_by_key(|o| (o.day, o.machine, o.system));
        for (seq, order) in orders.iter().enumerate() {
            let work_order = format!(
                "WO-{}-{:04}{:02}-{:04}",
                station.code,
                month.year(),
                month.month(),
                seq + 1
            );
            write_order(
                world,
                station,
                &fleet[order.machine],
                month,
                order,
                work_order,
                &mut writer,
                dir,
            )?;
        }
    }
    writer.finish(dir)
}

#[allow(clippy::too_many_arguments)]
fn write_order(
    world: &World,
    station: &Station,
    machine: &Machine,
    month: YearMonth,
    order: &Order,
    work_order: String,
    writer: &mut ChunkWriter<FaultRow>,
    dir: &Path,
) -> Result<(), GenerateError> {
    let opened_on = month.day(order.day);
    let mut row = FaultRow {
        work_order,
        opened_on,
        serial: machine.serial.clone(),
        station_code: station.code.clone(),
        category: order.system.category(),
        fault_level: order.level.clone(),
        part_code: None,
        qty: Qty::ZERO,
        warranty: opened_on <= machine.warranty_until,
    };
    if order.lines.is_empty() {
        return writer.write(&row, dir);
    }
    for (&slot, &qty) in &order.lines {
        let part = world.catalog.slots[slot].part_at(month);
        row.part_code = Some(world.catalog.parts[part].code.clone());
        row.qty = Qty::new(i64::from(qty))?;
        writer.write(&row, dir)?;
    }
    Ok(())
}

/// true_rates.csv: expected units of the part per usage-unit machine-month of the model
/// (event rate × mean lot size), for every code while it is the one issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrueRateRow {
    pub part_code: String,
    pub equipment_model: String,
    pub rate: f64,
    /// Mean units replaced per failure event (`1 + Poisson(lot_mean − 1)`), so demand can
    /// be drawn from true_demand.csv as the generator draws it.
    pub lot_mean: f64,
}

/// true_demand.csv: expected units of the part at the station in the month (`YYYY-MM`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrueDemandRow {
    pub part_code: String,
    pub station_code: String,
    pub month: String,
    pub expected_demand: f64,
}

impl CsvRow for TrueRateRow {
    const FILE: &'static str = "true_rates.csv";
    const HEADER: &'static [&'static str] = &["part_code", "equipment_model", "rate", "lot_mean"];
}

impl CsvRow for TrueDemandRow {
    const FILE: &'static str = "true_demand.csv";
    const HEADER: &'static [&'static str] =
        &["part_code", "station_code", "month", "expected_demand"];
}

/// future_demand.csv: the realised future, drawn the way the history was (DESIGN §11's
/// truth format): units of the part demanded at the station in the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FutureDemandRow {
    pub part_code: String,
    pub station_code: String,
    pub month: String,
    pub demand: i64,
}

impl CsvRow for FutureDemandRow {
    const FILE: &'static str = "future_demand.csv";
    const HEADER: &'static [&'static str] = &["part_code", "station_code", "month", "demand"];
}

/// Station `index`'s realised demand in the `future_months` after the history: the same
/// failure process as its faults (machines delivered in the future window included), from
/// a stream of its own, so the history stays as it is.
pub fn station_future(world: &World, index: usize, dir: &Path) -> Result<Chunk, GenerateError> {
    let config = world.config;
    let station = &world.stations[index];
    let fleet = &world.fleets[index];
    let mut rng = stream(config.seed, Stream::FutureFaults, index as u64);
    let mut writer = ChunkWriter::<FutureDemandRow>::new();
    let mut orders = Vec::new();
    for t in 1..=config.future_months as i32 {
        let month = config.history_end().plus(t);
        orders.clear();
        for (i, machine) in fleet.iter().enumerate() {
            let usage = world.seasons.usage(station.region, machine.model, month);
            let e = exposure(machine, month, usage);
            if e > 0.0 {
                machine_orders(world, i, machine, month, e, &mut rng, &mut orders);
            }
        }
        let mut units: BTreeMap<usize, i64> = BTreeMap::new();
        for order in &orders {
            for (&slot, &qty) in &order.lines {
                *units
                    .entry(world.catalog.slots[slot].part_at(month))
                    .or_insert(0) += i64::from(qty);
            }
        }
        for (part, demand) in units {
            writer.write(
                &FutureDemandRow {
                    part_code: world.catalog.parts[part].code.clone(),
                    station_code: station.code.clone(),
                    month: month.to_string(),
                    demand,
                },
                dir,
            )?;
        }
    }
    writer.finish(dir)
}

/// The rate rows of every part code, in part order.
pub fn true_rates(catalog: &Catalog) -> Vec<TrueRateRow> {
    let mut rows = Vec::new();
    for part in &catalog.parts {
        let slot = &catalog.slots[part.slot];
        for &(m, rate) in &slot.rates {
            rows.push(TrueRateRow {
                part_code: part.code.clone(),
                equipment_model: catalog.models[m].code.to_owned(),
                rate: rate * slot.lot_mean,
                lot_mean: slot.lot_mean,
            });
        }
    }
    rows
}

/// Station `index`'s expected demand for the history and `future_months` after it, with
/// the installed base as it stands at the history's end (no deliveries after it).
pub fn station_truth(world: &World, index: usize, dir: &Path) -> Result<Chunk, GenerateError> {
    let config = world.config;
    let catalog = world.catalog;
    let station = &world.stations[index];
    let months = (config.history_months() + config.future_months) as usize;
    let mut exposure_by_model = vec![0.0; catalog.models.len() * months];
    for machine in &world.fleets[index] {
        for t in 0..months {
            let month = config.start.plus(t as i32);
            let usage = world.seasons.usage(station.region, machine.model, month);
            exposure_by_model[machine.model * months + t] += exposure(machine, month, usage);
        }
    }
    let mut relevant = vec![false; catalog.slots.len()];
    for (m, model) in catalog.per_model.iter().enumerate() {
        if exposure_by_model[m * months..(m + 1) * months]
            .iter()
            .any(|&e| e > 0.0)
        {
            for &s in &model.slots {
                relevant[s] = true;
            }
        }
    }
    let mut writer = ChunkWriter::<TrueDemandRow>::new();
    for (slot, _) in catalog.slots.iter().zip(&relevant).filter(|(_, r)| **r) {
        for t in 0..months {
            let expected: f64 = slot
                .rates
                .iter()
                .map(|&(m, rate)| rate * exposure_by_model[m * months + t])
                .sum::<f64>()
                * slot.lot_mean;
            if expected > 0.0 {
                let month = config.start.plus(t as i32);
                writer.write(
                    &TrueDemandRow {
                        part_code: catalog.parts[slot.part_at(month)].code.clone(),
                        station_code: station.code.clone(),
                        month: month.to_string(),
                        expected_demand: expected,
                    },
                    dir,
                )?;
            }
        }
    }
    writer.finish(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn early_life_months_fail_more_than_their_neighbours() {
        for peak in [1, 3, 6, 12] {
            assert!(
                age_factor(peak) > age_factor(peak + 1) + 0.2,
                "month {peak}"
            );
        }
        // Year 3 → 1 + 0.04 × 3.
        assert!((age_factor(40) - 1.12).abs() < 1e-12);
        assert!((age_factor(500) - 1.32).abs() < 1e-12);
    }

    #[test]
    fn poisson_draws_have_the_asked_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // 200k draws of mean 0.7: the sample mean's sd is sqrt(0.7/200k) ≈ 0.0019.
        let n = 200_000;
        let sum: u64 = (0..n).map(|_| u64::from(poisson(&mut rng, 0.7))).sum();
        assert!((sum as f64 / n as f64 - 0.7).abs() < 0.01);
        let sum: u64 = (0..20_000)
            .map(|_| u64::from(poisson(&mut rng, 45.0)))
            .sum();
        assert!((sum as f64 / 20_000.0 - 45.0).abs() < 0.3);
        assert_eq!(poisson(&mut rng, 0.0), 0);
    }
}
