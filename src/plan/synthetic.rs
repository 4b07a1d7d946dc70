//! A synthetic network for benchmarks and tests, deterministic by seed: one central, up to
//! nine regional centres, `stations` service stations, `parts` parts. Each station sees
//! 5–15 % of the parts (so work grows with active pairs, not stations × parts); demand is
//! seasonal by region with over-dispersed realisations.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, LogNormal, Poisson};

use crate::catalog::{Criticality, PartCode};
use crate::network::LocationKind;
use crate::units::Amount;

use super::instance::{Demand, Instance, Lane, LocId, Location, Part, PartId, Stock};
use super::simulate::Realised;

const LINES: [&str; 7] = ["PT", "CP", "TC", "RR", "PV", "ML", "HD"];

/// A generated instance with the realised demand behind its forecast.
pub struct Synthetic {
    pub instance: Instance,
    pub realised: Vec<Realised>,
    /// Mean purchase value per period if every forecast unit were bought (major units).
    pub monthly_consumption_value: f64,
}

fn money(rng: &mut ChaCha8Rng, dist: &LogNormal<f64>) -> Amount {
    Amount::from_major_f64((dist.sample(rng) * 100.0).round() / 100.0)
}

pub fn generate(stations: usize, parts: usize, periods: usize, seed: u64) -> Synthetic {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let regions = (stations / 6).clamp(1, 9);
    let mut inst = Instance::default();
    inst.locations.push(Location {
        code: "C0".into(),
        kind: LocationKind::Central,
        parent: None,
        capacity_m3: None,
        credit_headroom: None,
    });
    for r in 0..regions {
        inst.locations.push(Location {
            code: format!("R{r}"),
            kind: LocationKind::Regional,
            parent: Some(LocId(0)),
            capacity_m3: None,
            credit_headroom: None,
        });
        let days = rng.gen_range(3..=12);
        inst.lanes
            .push(lane(0, 1 + r, days, rng.gen_range(1.0..4.0)));
    }
    let first_station = 1 + regions;
    for s in 0..stations {
        let region = 1 + s % regions;
        inst.locations.push(Location {
            code: format!("S{s:03}"),
            kind: LocationKind::Station,
            parent: Some(LocId(region as u32)),
            capacity_m3: None,
            credit_headroom: None,
        });
        let days = rng.gen_range(1..=5);
        inst.lanes.push(lane(
            region,
            first_station + s,
            days,
            rng.gen_range(0.5..3.0),
        ));
    }
    // Lateral lanes between neighbouring stations of a region (emergency transfers).
    for s in 0..stations.saturating_sub(regions) {
        if rng.gen_bool(0.15) {
            let (a, b) = (first_station + s, first_station + s + regions);
            inst.lanes.push(lane(a, b, 1, 6.0));
            inst.lanes.push(lane(b, a, 1, 6.0));
        }
    }
    let cost = LogNormal::new(5.0, 1.2).expect("valid lognormal");
    let vol = LogNormal::new(-5.0, 1.0).expect("valid lognormal");
    let rate = LogNormal::new(-0.9, 1.0).expect("valid lognormal");
    for p in 0..parts {
        let line = LINES[p % LINES.len()];
        let crit = match rng.gen_range(0..20) {
            0..=2 => Criticality::A,
            3..=9 => Criticality::B,
            _ => Criticality::C,
        };
        let unit_cost = money(&mut rng, &cost).max(Amount::from_minor(100));
        let pack = [1, 1, 1, 2, 5, 10][rng.gen_range(0..6)];
        inst.parts.push(Part {
            code: PartCode::from_trusted(format!("{line}-HYD-{p:06}")),
            product_line: line.into(),
            criticality: crit,
            unit_cost,
            dealer_price: Amount::from_minor(unit_cost.minor() * 13 / 10),
            volume_m3: vol.sample(&mut rng),
            supplier_code: format!("SUP{}", p % 40),
            lead_time_days: rng.gen_range(15..=90),
            moq: pack * rng.gen_range(1..=3),
            pack_size: pack,
            receive_at: LocId(0),
        });
    }
    let mut realised = Vec::new();
    let mut consumption = 0.0;
    let mut volume_at = vec![0.0; inst.locations.len()];
    let mut value_at = vec![0.0; inst.locations.len()];
    let mut central_stock = vec![0.0; parts];
    let mut onhand_volume = vec![0.0; inst.locations.len()];
    let mut onhand_value = vec![0.0; inst.locations.len()];
    let spread = Gamma::new(2.0, 0.5).expect("valid gamma");
    for s in 0..stations {
        let loc = first_station + s;
        let region = s % regions;
        let peak = (region * 4 % 12) as f64;
        let share = rng.gen_range(0.05..0.15);
        let count = ((parts as f64 * share).round() as usize).clamp(1, parts.max(1));
        for p in sample(&mut rng, parts, count).into_iter() {
            let base = rate.sample(&mut rng);
            let mean: Vec<f64> = (0..periods)
                .map(|t| {
                    let phase = 2.0 * std::f64::consts::PI * (t as f64 - peak) / 12.0;
                    base * (1.0 + 0.6 * phase.cos())
                })
                .collect();
            let error_sd = mean.iter().map(|m| (1.5 * m).sqrt()).collect();
            let qty = mean
                .iter()
                .map(|&m| {
                    let lambda = m * spread.sample(&mut rng);
                    if lambda > 0.0 {
                        Poisson::new(lambda).map_or(0.0, |d| d.sample(&mut rng))
                    } else {
                        0.0
                    }
                })
                .collect();
            let part = &inst.parts[p];
            let avg = mean.iter().sum::<f64>() / periods.max(1) as f64;
            consumption += avg * part.unit_cost.as_major_f64();
            volume_at[loc] += 2.0 * avg * part.volume_m3;
            value_at[loc] += 2.0 * avg * part.dealer_price.as_major_f64();
            central_stock[p] += 2.0 * avg;
            if rng.gen_bool(0.5) {
                onhand_volume[loc] += avg.round() * part.volume_m3;
                onhand_value[loc] += avg.round() * part.dealer_price.as_major_f64();
                inst.stock.push(Stock {
                    part: PartId(p as u32),
                    location: LocId(loc as u32),
                    on_hand: avg.round(),
                    pipeline: Vec::new(),
                });
            }
            inst.demand.push(Demand {
                part: PartId(p as u32),
                station: LocId(loc as u32),
                mean,
                error_sd,
            });
            realised.push(Realised {
                part: PartId(p as u32),
                station: LocId(loc as u32),
                qty,
            });
        }
    }
    for (p, q) in central_stock.iter().enumerate() {
        if *q > 0.0 && rng.gen_bool(0.5) {
            inst.stock.push(Stock {
                part: PartId(p as u32),
                location: LocId(0),
                on_hand: q.round(),
                pipeline: Vec::new(),
            });
        }
    }
    // Station capacity: the opening stock plus 0.3–1.5 × twice the mean demand's volume,
    // so it binds at some stations but the opening stock always fits; one station in five
    // is remote and holds advance stock on credit, sized the same way at dealer price.
    for s in 0..stations {
        let loc = first_station + s;
        let room = volume_at[loc] * rng.gen_range(0.3..1.5);
        inst.locations[loc].capacity_m3 = Some(onhand_volume[loc] + room.max(0.01));
        if rng.gen_bool(0.2) {
            let credit = onhand_value[loc] + value_at[loc] * rng.gen_range(0.3..1.5);
            inst.locations[loc].credit_headroom = Some(Amount::from_major_f64(credit));
        }
    }
    Synthetic {
        instance: inst,
        realised,
        monthly_consumption_value: consumption,
    }
}

fn lane(from: usize, to: usize, days: u32, cost: f64) -> Lane {
    Lane {
        from: LocId(from as u32),
        to: LocId(to as u32),
        lead_time_days: days,
        cost_per_unit: Amount::from_major_f64(cost),
    }
}
