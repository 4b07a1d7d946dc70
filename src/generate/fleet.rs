//! The installed base: the machines each station services. Most were delivered before the
//! history, about a third during it (new models only after their launch), and stations
//! that open late get all theirs from the opening on.

use chrono::{Datelike, Months, NaiveDate};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Gamma, LogNormal};

use super::calendar::YearMonth;
use super::catalog::Catalog;
use super::geography::{Station, REGIONS};
use super::{stream, GenerateConfig, Stream};

#[derive(Debug, Clone)]
pub struct Machine {
    pub serial: String,
    pub model: usize,
    pub delivered: NaiveDate,
    pub warranty_until: NaiveDate,
}

impl Machine {
    pub fn delivered_month(&self) -> YearMonth {
        YearMonth::of(self.delivered)
    }
}

/// Machines delivered before the history go back this many months.
const FLEET_AGE_MONTHS: i32 = 84;
/// Share of an established station's machines delivered during the history.
const NEW_DURING_HISTORY: f64 = 0.3;

/// One station's machines, sorted by delivery date; drawn from the station's own stream.
pub fn build_station(
    config: &GenerateConfig,
    catalog: &Catalog,
    station: &Station,
    index: usize,
) -> Vec<Machine> {
    let mut rng = stream(config.seed, Stream::Fleet, index as u64);
    let line_weights = station_lines(station, &mut rng);
    let size_factor = if station.key_city {
        1.4
    } else if station.remote {
        0.6
    } else {
        1.0
    };
    let median: f64 = 36.0 * size_factor;
    let size = LogNormal::new(median.ln(), 0.45).map_or(median, |d| d.sample(&mut rng));
    let size = (size.round() as usize).max(3);
    let mut deliveries: Vec<(NaiveDate, usize)> = (0..size)
        .map(|_| {
            let month = delivery_month(config, station, &mut rng);
            let day = rng.gen_range(1..=month.days());
            (
                month.day(day),
                pick_model(catalog, &line_weights, month, &mut rng),
            )
        })
        .collect();
    deliveries.sort_unstable();
    deliveries.extend(future_deliveries(
        config,
        catalog,
        &line_weights,
        size,
        index,
    ));
    deliveries
        .into_iter()
        .enumerate()
        .map(|(seq, (delivered, model))| {
            let months = [12, 18, 24][rng.gen_range(0..3)];
            let warranty_until = delivered
                .checked_add_months(Months::new(months))
                .and_then(|d| d.pred_opt())
                .unwrap_or(delivered);
            Machine {
                serial: format!(
                    "{}-{}-{:04}",
                    catalog.models[model].code,
                    station.code,
                    seq + 1
                ),
                model,
                delivered,
                warranty_until,
            }
        })
        .collect()
}

/// Sales go on after the history at the pace they had during it: the installed base lists
/// machines delivered in the future window, which the history never saw fail. Drawn from a
/// stream of their own, after the history's machines, so the history stays as it is.
fn future_deliveries(
    config: &GenerateConfig,
    catalog: &Catalog,
    line_weights: &[f64],
    size: usize,
    index: usize,
) -> Vec<(NaiveDate, usize)> {
    if config.future_months == 0 {
        return Vec::new();
    }
    let mut rng = stream(config.seed, Stream::FutureFleet, index as u64);
    let per_month = size as f64 * NEW_DURING_HISTORY / f64::from(config.history_months().max(1));
    let expected = per_month * f64::from(config.future_months);
    let count =
        rand_distr::Poisson::new(expected.max(1e-9)).map_or(0.0, |d| d.sample(&mut rng)) as usize;
    let end = config.history_end();
    let mut out: Vec<(NaiveDate, usize)> = (0..count)
        .map(|_| {
            let month = end.plus(rng.gen_range(1..=config.future_months as i32));
            let day = rng.gen_range(1..=month.days());
            (
                month.day(day),
                pick_model(catalog, line_weights, month, &mut rng),
            )
        })
        .collect();
    out.sort_unstable();
    out
}

/// A station services a few product lines: the region's weights times a station-specific
/// draw, lines below a quarter of the strongest dropped.
fn station_lines(station: &Station, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let taste = Gamma::new(0.8, 1.0).ok();
    let raw: Vec<f64> = REGIONS[station.region]
        .line_weights
        .iter()
        .map(|w| w * taste.map_or(1.0, |g| g.sample(rng)))
        .collect();
    let max = raw.iter().cloned().fold(0.0, f64::max);
    raw.into_iter()
        .map(|w| if w >= 0.25 * max { w } else { 0.0 })
        .collect()
}

fn delivery_month(config: &GenerateConfig, station: &Station, rng: &mut ChaCha8Rng) -> YearMonth {
    let end = config.history_end();
    match station.opened {
        // A new station starts with a batch at opening, then keeps selling.
        Some(opened) if rng.gen_bool(0.4) => opened,
        Some(opened) => opened.plus(rng.gen_range(0..=end.months_since(opened))),
        None if rng.gen_bool(NEW_DURING_HISTORY) => config
            .start
            .plus(rng.gen_range(0..config.history_months() as i32)),
        None => config.start.plus(-rng.gen_range(1..=FLEET_AGE_MONTHS)),
    }
}

/// Older models sell less; a model launched in the history sells best once out.
fn pick_model(
    catalog: &Catalog,
    line_weights: &[f64],
    month: YearMonth,
    rng: &mut ChaCha8Rng,
) -> usize {
    let weights: Vec<f64> = catalog
        .models
        .iter()
        .map(|model| {
            let line_models = catalog.lines[model.line].models;
            let rank = line_models
                .iter()
                .position(|&c| c == model.code)
                .unwrap_or(0);
            let appeal = match model.launch {
                Some(launch) if month < launch => 0.0,
                Some(_) => 1.5,
                None => 1.0 / (1.0 + 0.3 * rank as f64),
            };
            line_weights[model.line] * appeal
        })
        .collect();
    WeightedIndex::new(&weights).map_or(0, |w| w.sample(rng))
}

/// Day of month of the delivery when `month` is the delivery month, else 1: the first day
/// a machine can fail in `month`.
pub fn first_service_day(machine: &Machine, month: YearMonth) -> u32 {
    if machine.delivered_month() == month {
        machine.delivered.day()
    } else {
        1
    }
}
