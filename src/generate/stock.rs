//! Opening balances and advance-stock credit. Stock is sized on the demand each location
//! expects per month at the history's end (installed base then, average usage): a few
//! months at the central, about one at the regional centres, and only the parts a station
//! uses at least every few months at the station.

use rand::Rng;

use super::calendar::YearMonth;
use super::catalog::Catalog;
use super::fleet::Machine;
use super::geography::{regional_code, Station, CENTRAL_CODE, REGIONS};
use super::{stream, GenerateConfig, Stream};
use crate::catalog::Criticality;
use crate::interchange::rows::{CreditRow, StockRow};
use crate::units::{Amount, Qty};

/// Expected units per slot per month at a station, at average usage, for machines
/// delivered by the history's end and past their early life.
fn monthly_demand(catalog: &Catalog, fleet: &[Machine], end: YearMonth) -> Vec<f64> {
    let mut per_model = vec![0.0; catalog.models.len()];
    // Machines sold after the history are not known when the opening stock was set.
    for machine in fleet.iter().filter(|m| m.delivered_month() <= end) {
        per_model[machine.model] += 1.0;
    }
    catalog
        .slots
        .iter()
        .map(|slot| {
            slot.rates
                .iter()
                .map(|&(m, r)| r * per_model[m])
                .sum::<f64>()
                * slot.lot_mean
        })
        .collect()
}

/// Stations keep a part only when they expect at least this many units a month.
const STATION_STOCKING_THRESHOLD: f64 = 0.25;

pub fn stock_rows(
    config: &GenerateConfig,
    catalog: &Catalog,
    stations: &[Station],
    fleets: &[Vec<Machine>],
) -> Result<Vec<StockRow>, crate::units::UnitError> {
    let mut rng = stream(config.seed, Stream::Stock, 0);
    let end = config.history_end();
    let current = |slot: usize| catalog.slots[slot].part_at(end);
    let mut regional = vec![vec![0.0; catalog.slots.len()]; REGIONS.len()];
    let mut station_rows = Vec::new();
    for (station, fleet) in stations.iter().zip(fleets) {
        let demand = monthly_demand(catalog, fleet, end);
        for (slot, &d) in demand.iter().enumerate() {
            regional[station.region][slot] += d;
            if d >= STATION_STOCKING_THRESHOLD {
                let on_hand = (d * rng.gen_range(0.5..2.0)).round() as i64;
                if on_hand > 0 {
                    station_rows.push((current(slot), station.code.clone(), on_hand));
                }
            }
        }
    }
    let mut rows = Vec::new();
    for slot in 0..catalog.slots.len() {
        let national: f64 = regional.iter().map(|r| r[slot]).sum();
        let mut on_hand = (national * rng.gen_range(0.5..3.0)).round() as i64;
        // Insurance stock of critical slow movers.
        if on_hand == 0 && catalog.slots[slot].criticality == Criticality::A && rng.gen_bool(0.6) {
            on_hand = rng.gen_range(1..=2);
        }
        if on_hand > 0 {
            rows.push((current(slot), CENTRAL_CODE.to_owned(), on_hand));
        }
        // Leftovers of a superseded code still on the shelf.
        if let Some((_, from)) = catalog.slots[slot].successor {
            if from <= end && rng.gen_bool(0.5) {
                rows.push((
                    catalog.slots[slot].part,
                    CENTRAL_CODE.to_owned(),
                    rng.gen_range(1..=3),
                ));
            }
        }
    }
    for (r, demand) in regional.iter().enumerate() {
        for (slot, &d) in demand.iter().enumerate() {
            let on_hand = (d * rng.gen_range(0.3..1.5)).round() as i64;
            if on_hand > 0 {
                rows.push((current(slot), regional_code(r), on_hand));
            }
        }
    }
    rows.extend(station_rows);
    rows.into_iter()
        .map(|(part, location_code, on_hand)| {
            Ok(StockRow {
                part_code: catalog.parts[part].code.clone(),
                location_code,
                on_hand: Qty::new(on_hand)?,
            })
        })
        .collect()
}

/// Every remote station and about a fifth of the others get an advance-stock credit line,
/// in whole thousands of CNY.
pub fn credit_rows(config: &GenerateConfig, stations: &[Station]) -> Vec<CreditRow> {
    let mut rng = stream(config.seed, Stream::Credit, 0);
    stations
        .iter()
        .filter_map(|s| {
            let (has, range) = if s.remote {
                (true, 100..=300)
            } else {
                (rng.gen_bool(0.2), 50..=500)
            };
            has.then(|| CreditRow {
                station_code: s.code.clone(),
                limit: Amount::from_minor(rng.gen_range(range) * 1000 * 100),
                currency: "CNY".to_owned(),
            })
        })
        .collect()
}
