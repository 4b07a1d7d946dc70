//! The dashboard's figures: how ready the network is (fill by service tier and region,
//! 24-hour reach of critical parts), what its stock is worth and how fast it turns, and how
//! the newest forecast is doing against what has happened since.
//!
//! Reads are gathered with a few flat queries and combined in plain functions below, which
//! the unit tests check by hand.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{Datelike, Months, NaiveDate, Utc};
use serde::Serialize;

use crate::catalog;
use crate::db::Db;
use crate::plan::model::PlanModel;
use crate::service::ServiceError;
use crate::{sql_fetch_all, sql_fetch_optional};

/// Demand met from the stock on the shelf, for a group (a tier or a region).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    pub group: String,
    /// Forecast mean demand of the next period.
    pub demand: f64,
    /// The part of it the station's available stock covers.
    pub covered: f64,
}

impl Readiness {
    pub fn share(&self) -> f64 {
        if self.demand > 0.0 {
            self.covered / self.demand
        } else {
            1.0
        }
    }
}

/// Stock value and a year's consumption at cost, for a region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionStock {
    pub region: String,
    pub value_minor: i64,
    pub consumption_minor: i64,
}

impl RegionStock {
    /// Inventory turns per year: consumption at cost over stock value.
    pub fn turns(&self) -> Option<f64> {
        (self.value_minor > 0).then(|| self.consumption_minor as f64 / self.value_minor as f64)
    }
}

/// Share of the installed base whose critical (class A) parts can arrive within 24 hours.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reach {
    pub group: String,
    /// Machines with at least one class A part fitting their model.
    pub units: i64,
    /// Of those, machines all of whose class A parts are within 24 hours.
    pub units_reached: i64,
    /// Machine × class A part pairs, and those within 24 hours.
    pub pairs: i64,
    pub pairs_reached: i64,
}

impl Reach {
    /// Share of machines with all their class A parts within 24 hours.
    pub fn unit_share(&self) -> f64 {
        share(self.units_reached, self.units)
    }

    /// Share of machine × class A part pairs within 24 hours.
    pub fn pair_share(&self) -> f64 {
        share(self.pairs_reached, self.pairs)
    }
}

fn share(part: i64, whole: i64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

/// The newest forecast against the months recorded since it was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    pub months: usize,
    pub actual: f64,
    /// Weighted absolute percentage error: Σ|actual − mean| / Σ actual.
    pub wape: f64,
    /// Σ(mean − actual) / Σ actual.
    pub bias: f64,
    /// Share of series-months at or under the 80 % quantile.
    pub p80_coverage: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// The last day with a recorded work order.
    pub as_of: Option<NaiveDate>,
    pub plan_run: Option<i64>,
    /// The newest solved plan's projected fill rate per tier.
    pub plan_fill: Vec<(String, f64)>,
    pub forecast_run: Option<(i64, NaiveDate)>,
    pub ready_by_tier: Vec<Readiness>,
    pub ready_by_region: Vec<Readiness>,
    pub stock: Vec<RegionStock>,
    pub accuracy: Option<Accuracy>,
    /// The whole network first, then each region.
    pub reach: Vec<Reach>,
}

/// Locations: id → (kind, region).
type Places = HashMap<i64, (String, Option<String>)>;

/// What the dashboard and the exceptions board read from a forecast run: each series'
/// first-period mean and its mean demand over the whole horizon.
#[derive(Debug, Default)]
pub struct RunTotals {
    pub run: i64,
    /// (part, station, mean of the first period).
    pub first: Vec<(i64, i64, f64)>,
    /// (part, station) → mean demand summed over the horizon.
    pub horizon: HashMap<(i64, i64), f64>,
}

/// What they read from the fault history: its last day and a year's consumption.
#[derive(Debug, Default)]
pub struct HistoryTotals {
    pub as_of: Option<NaiveDate>,
    /// (part, station, units) issued in the year up to `as_of`.
    pub year: Vec<(i64, i64, i64)>,
}

/// Aggregates that are expensive to read (a forecast run has a row per series and period,
/// the history a row per work-order line) but change rarely, remembered per instance.
/// A forecast run never changes once written, so its totals are kept by run id; faults are
/// only ever appended (imports insert, nothing updates or deletes them), so the largest
/// fault id tells whether the history moved. Both keys are read fresh on every request, so
/// a cached value is never stale.
#[derive(Default)]
pub struct Cache {
    run: Mutex<Option<Arc<RunTotals>>>,
    history: Mutex<Option<(Option<i64>, Arc<HistoryTotals>)>>,
}

impl Cache {
    pub async fn run_totals(&self, db: &Db, run: i64) -> Result<Arc<RunTotals>, ServiceError> {
        if let Some(t) = self
            .run
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|t| t.run == run)
        {
            return Ok(t);
        }
        let mut conn = db.acquire().await?;
        let rows = sql_fetch_all!(
            (i64, i64, i64, f64),
            conn.conn(),
            "select part_id, station_id, step, mean from forecast_values where run_id = $1",
            run
        )?;
        let totals = Arc::new(run_totals(run, &rows));
        if let Ok(mut c) = self.run.lock() {
            *c = Some(totals.clone());
        }
        Ok(totals)
    }

    pub async fn history(&self, db: &Db) -> Result<Arc<HistoryTotals>, ServiceError> {
        let mut conn = db.acquire().await?;
        let (last_id,) =
            sql_fetch_optional!((Option<i64>,), conn.conn(), "select max(id) from faults")?
                .unwrap_or((None,));
        if let Some((key, t)) = self.history.lock().ok().and_then(|c| c.clone()) {
            if key == last_id {
                return Ok(t);
            }
        }
        let as_of = sql_fetch_optional!(
            (Option<NaiveDate>,),
            conn.conn(),
            "select max(opened_on) from faults"
        )?
        .and_then(|(d,)| d);
        drop(conn);
        let year = match as_of {
            Some(day) => year_consumption(db, day).await?,
            None => Vec::new(),
        };
        let totals = Arc::new(HistoryTotals { as_of, year });
        if let Ok(mut c) = self.history.lock() {
            *c = Some((last_id, totals.clone()));
        }
        Ok(totals)
    }
}

/// First-period means and horizon sums from a run's (part, station, step, mean) rows.
fn run_totals(run: i64, rows: &[(i64, i64, i64, f64)]) -> RunTotals {
    let first_step = rows.iter().map(|r| r.2).min().unwrap_or(0);
    let mut totals = RunTotals {
        run,
        ..RunTotals::default()
    };
    for &(part, station, step, mean) in rows {
        if step == first_step {
            totals.first.push((part, station, mean));
        }
        *totals.horizon.entry((part, station)).or_insert(0.0) += mean;
    }
    totals
}

pub async fn dashboard(db: &Db, cache: &Cache) -> Result<Dashboard, ServiceError> {
    let history = cache.history(db).await?;
    let as_of = history.as_of;
    let mut conn = db.acquire().await?;
    let places: Places = sql_fetch_all!(
        (i64, String, Option<String>),
        conn.conn(),
        "select id, kind, region from locations"
    )?
    .into_iter()
    .map(|(id, kind, region)| (id, (kind, region)))
    .collect();
    let parts: HashMap<i64, (String, String)> = sql_fetch_all!(
        (i64, String, String),
        conn.conn(),
        "select id, product_line, criticality from parts"
    )?
    .into_iter()
    .map(|(id, line, crit)| (id, (line, crit)))
    .collect();
    let stock = sql_fetch_all!(
        (i64, i64, i64, i64),
        conn.conn(),
        "select part_id, location_id, on_hand - reserved, on_hand from stock_balance where on_hand > 0"
    )?;
    let plan = sql_fetch_optional!(
        (i64, String, Option<String>),
        conn.conn(),
        "select id, model_toml, kpis_json from plan_runs where status = 'solved' order by id desc limit 1"
    )?;
    // The first period is stored as its month, YYYY-MM.
    let forecast_run = sql_fetch_optional!(
        (i64, String),
        conn.conn(),
        "select id, first_period from forecast_runs order by id desc limit 1"
    )?
    .and_then(|(id, month)| {
        NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .ok()
            .map(|first| (id, first))
    });
    drop(conn);

    let available: HashMap<(i64, i64), i64> = stock
        .iter()
        .map(|&(p, l, avail, _)| ((p, l), avail))
        .collect();
    let model = plan
        .as_ref()
        .and_then(|(_, toml, _)| PlanModel::from_toml(toml).ok());
    let (ready_by_tier, ready_by_region) = match forecast_run {
        Some((run, _)) => {
            let totals = cache.run_totals(db, run).await?;
            readiness(&totals.first, &available, &places, &parts, model.as_ref())
        }
        None => (Vec::new(), Vec::new()),
    };
    let cost = catalog::cost_prices(db, Utc::now().date_naive()).await?;
    let accuracy = match (forecast_run, as_of) {
        (Some((run, first)), Some(day)) => realised_accuracy(db, run, first, day).await?,
        _ => None,
    };
    let reach = reach_of(db, &available, &places).await?;
    Ok(Dashboard {
        as_of,
        plan_run: plan.as_ref().map(|p| p.0),
        plan_fill: plan_fill(plan.as_ref().and_then(|p| p.2.as_deref())),
        forecast_run,
        ready_by_tier,
        ready_by_region,
        stock: stock_by_region(&stock, &history.year, &cost, &places),
        accuracy,
        reach,
    })
}

/// The projected fill rate per tier from a plan run's stored KPIs.
pub fn plan_fill(kpis_json: Option<&str>) -> Vec<(String, f64)> {
    let kpis: serde_json::Value = kpis_json
        .and_then(|k| serde_json::from_str(k).ok())
        .unwrap_or_default();
    kpis["fill_rate_by_tier"]
        .as_array()
        .map(|tiers| {
            tiers
                .iter()
                .map(|t| {
                    (
                        t["tier"].as_str().unwrap_or("?").to_owned(),
                        t["fill_rate"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Next period's mean demand covered by each station's available stock, grouped by the
/// service tier of the part's product line (from the newest plan's model) and by region.
fn readiness(
    next: &[(i64, i64, f64)],
    available: &HashMap<(i64, i64), i64>,
    places: &Places,
    parts: &HashMap<i64, (String, String)>,
    model: Option<&PlanModel>,
) -> (Vec<Readiness>, Vec<Readiness>) {
    let mut by_tier: HashMap<String, (f64, f64)> = HashMap::new();
    let mut by_region: HashMap<String, (f64, f64)> = HashMap::new();
    for &(part, station, mean) in next {
        let have = available.get(&(part, station)).copied().unwrap_or(0).max(0) as f64;
        let covered = have.min(mean);
        let tier = match (model, parts.get(&part)) {
            (Some(m), Some((line, _))) => m.tier_of(line).as_str().to_owned(),
            _ => "-".to_owned(),
        };
        let region = places
            .get(&station)
            .and_then(|p| p.1.clone())
            .unwrap_or_else(|| "-".into());
        for (map, key) in [(&mut by_tier, tier), (&mut by_region, region)] {
            let e = map.entry(key).or_default();
            e.0 += mean;
            e.1 += covered;
        }
    }
    let sorted = |map: HashMap<String, (f64, f64)>| {
        let mut v: Vec<Readiness> = map
            .into_iter()
            .map(|(group, (demand, covered))| Readiness {
                group,
                demand,
                covered,
            })
            .collect();
        v.sort_by(|a, b| a.group.cmp(&b.group));
        v
    };
    (sorted(by_tier), sorted(by_region))
}

/// (part, station, units) issued in the year up to `as_of`.
async fn year_consumption(db: &Db, as_of: NaiveDate) -> Result<Vec<(i64, i64, i64)>, ServiceError> {
    let since = as_of.checked_sub_months(Months::new(12)).unwrap_or(as_of);
    let mut conn = db.acquire().await?;
    Ok(sql_fetch_all!(
        (i64, i64, i64),
        conn.conn(),
        "select part_id, station_id, cast(sum(qty) as bigint) from faults
         where part_id is not null and opened_on > $1 group by part_id, station_id",
        since
    )?)
}

/// Stock value (on hand at cost) and a year's consumption at cost, per region; the
/// central warehouse is its own row, the whole network the last.
fn stock_by_region(
    stock: &[(i64, i64, i64, i64)],
    consumption: &[(i64, i64, i64)],
    cost: &HashMap<i64, i64>,
    places: &Places,
) -> Vec<RegionStock> {
    let region_of = |loc: i64| {
        places
            .get(&loc)
            .and_then(|p| p.1.clone())
            .unwrap_or_else(|| "(central)".into())
    };
    let mut rows: HashMap<String, (i64, i64)> = HashMap::new();
    for &(part, loc, _, on_hand) in stock {
        rows.entry(region_of(loc)).or_default().0 +=
            on_hand * cost.get(&part).copied().unwrap_or(0);
    }
    for &(part, station, qty) in consumption {
        rows.entry(region_of(station)).or_default().1 +=
            qty * cost.get(&part).copied().unwrap_or(0);
    }
    let total = rows
        .values()
        .fold((0, 0), |acc, v| (acc.0 + v.0, acc.1 + v.1));
    let mut out: Vec<RegionStock> = rows
        .into_iter()
        .map(|(region, (value_minor, consumption_minor))| RegionStock {
            region,
            value_minor,
            consumption_minor,
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.value_minor));
    out.push(RegionStock {
        region: "Σ".into(),
        value_minor: total.0,
        consumption_minor: total.1,
    });
    out
}

/// The forecast against recorded demand, over the whole months between its first period
/// and the last recorded day; `None` before a whole month has been recorded.
async fn realised_accuracy(
    db: &Db,
    run: i64,
    first: NaiveDate,
    as_of: NaiveDate,
) -> Result<Option<Accuracy>, ServiceError> {
    // The month of `as_of` counts only once its last day is recorded.
    let next_day = as_of.succ_opt().unwrap_or(as_of);
    let end = NaiveDate::from_ymd_opt(next_day.year(), next_day.month(), 1).unwrap_or(next_day);
    if end <= first {
        return Ok(None);
    }
    let mut conn = db.acquire().await?;
    let forecast = sql_fetch_all!(
        (i64, i64, NaiveDate, f64, f64),
        conn.conn(),
        "select part_id, station_id, period_start, mean, p80 from forecast_values
         where run_id = $1 and period_start < $2",
        run,
        end
    )?;
    let lines = sql_fetch_all!(
        (i64, i64, NaiveDate, i64),
        conn.conn(),
        "select part_id, station_id, opened_on, qty from faults
         where part_id is not null and opened_on >= $1 and opened_on < $2",
        first,
        end
    )?;
    let mut actual: HashMap<(i64, i64, (i32, u32)), f64> = HashMap::new();
    for (part, station, day, qty) in lines {
        *actual
            .entry((part, station, (day.year(), day.month())))
            .or_default() += qty as f64;
    }
    Ok(score(&forecast, &actual))
}

fn score(
    forecast: &[(i64, i64, NaiveDate, f64, f64)],
    actual: &HashMap<(i64, i64, (i32, u32)), f64>,
) -> Option<Accuracy> {
    if forecast.is_empty() {
        return None;
    }
    let (mut total, mut abs, mut signed, mut covered) = (0.0, 0.0, 0.0, 0usize);
    let mut months = HashSet::new();
    for &(part, station, start, mean, p80) in forecast {
        let month = (start.year(), start.month());
        months.insert(month);
        let a = actual.get(&(part, station, month)).copied().unwrap_or(0.0);
        total += a;
        abs += (a - mean).abs();
        signed += mean - a;
        covered += usize::from(a <= p80);
    }
    Some(Accuracy {
        months: months.len(),
        actual: total,
        wape: if total > 0.0 { abs / total } else { 0.0 },
        bias: if total > 0.0 { signed / total } else { 0.0 },
        p80_coverage: covered as f64 / forecast.len() as f64,
    })
}

/// 24-hour reach of the installed base, network-wide and per region.
async fn reach_of(
    db: &Db,
    available: &HashMap<(i64, i64), i64>,
    places: &Places,
) -> Result<Vec<Reach>, ServiceError> {
    let mut conn = db.acquire().await?;
    let critical = sql_fetch_all!(
        (String, i64),
        conn.conn(),
        "select f.equipment_model, f.part_id from fits f join parts p on p.id = f.part_id
         where p.criticality = 'A' and p.replaced_by_id is null"
    )?;
    let fleet = sql_fetch_all!(
        (i64, String, i64),
        conn.conn(),
        "select station_id, model, cast(count(*) as bigint) from equipment group by station_id, model"
    )?;
    let fast = sql_fetch_all!(
        (i64, i64),
        conn.conn(),
        "select from_id, to_id from lanes where lead_time_days <= 1"
    )?;
    Ok(reach(&critical, &fleet, &fast, available, places))
}

/// A part is within 24 hours of a station when the station or a location with a lane of at
/// most one day to it has some available.
fn reach(
    critical: &[(String, i64)],
    fleet: &[(i64, String, i64)],
    fast: &[(i64, i64)],
    available: &HashMap<(i64, i64), i64>,
    places: &Places,
) -> Vec<Reach> {
    let mut parts_of: HashMap<&str, Vec<i64>> = HashMap::new();
    for (model, part) in critical {
        parts_of.entry(model.as_str()).or_default().push(*part);
    }
    let mut sources: HashMap<i64, Vec<i64>> = HashMap::new();
    for &(from, to) in fast {
        sources.entry(to).or_default().push(from);
    }
    let near = |part: i64, station: i64| {
        std::iter::once(station)
            .chain(sources.get(&station).into_iter().flatten().copied())
            .any(|loc| available.get(&(part, loc)).is_some_and(|&a| a > 0))
    };
    let mut total = Reach {
        group: "Σ".into(),
        ..Reach::default()
    };
    let mut regions: HashMap<String, Reach> = HashMap::new();
    for (station, model, units) in fleet {
        let Some(parts) = parts_of.get(model.as_str()) else {
            continue;
        };
        let reached = parts.iter().filter(|&&p| near(p, *station)).count() as i64;
        let all = i64::from(reached == parts.len() as i64);
        let region = places
            .get(station)
            .and_then(|p| p.1.clone())
            .unwrap_or_else(|| "-".into());
        let r = regions.entry(region.clone()).or_insert_with(|| Reach {
            group: region,
            ..Reach::default()
        });
        for acc in [&mut total, r] {
            acc.units += units;
            acc.units_reached += units * all;
            acc.pairs += units * parts.len() as i64;
            acc.pairs_reached += units * reached;
        }
    }
    let mut out: Vec<Reach> = regions.into_values().collect();
    out.sort_by(|a, b| a.group.cmp(&b.group));
    out.insert(0, total);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        [
            (1, ("regional".to_owned(), Some("North".to_owned()))),
            (2, ("station".to_owned(), Some("North".to_owned()))),
            (3, ("station".to_owned(), Some("South".to_owned()))),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn reach_counts_stock_at_the_station_or_one_day_away() {
        // Model X needs parts 10 and 11. Station 2 holds 10 and its regional centre (a
        // one-day lane) holds 11: all its 4 machines are reached. Station 3 holds only 10
        // and has no fast lane: its 2 machines are not, but half their pairs are.
        let critical = [("X".to_owned(), 10), ("X".to_owned(), 11)];
        let fleet = [
            (2, "X".to_owned(), 4),
            (3, "X".to_owned(), 2),
            (3, "Y".to_owned(), 9),
        ];
        let fast = [(1, 2)];
        let available: HashMap<(i64, i64), i64> =
            [((10, 2), 1), ((11, 1), 3), ((10, 3), 2), ((11, 3), 0)]
                .into_iter()
                .collect();
        let r = reach(&critical, &fleet, &fast, &available, &places());
        assert_eq!(r[0].units, 6);
        assert_eq!(r[0].units_reached, 4);
        assert_eq!(r[0].pairs, 12);
        assert_eq!(r[0].pairs_reached, 8 + 2);
        assert_eq!(r[1].group, "North");
        assert_eq!(r[2].units_reached, 0);
    }

    #[test]
    fn readiness_caps_cover_at_the_demand() {
        let available: HashMap<(i64, i64), i64> =
            [((10, 2), 5), ((11, 3), 0)].into_iter().collect();
        let parts: HashMap<i64, (String, String)> = [
            (10, ("PT".to_owned(), "A".to_owned())),
            (11, ("PT".to_owned(), "B".to_owned())),
        ]
        .into_iter()
        .collect();
        let (tiers, regions) = readiness(
            &[(10, 2, 2.0), (11, 3, 1.0)],
            &available,
            &places(),
            &parts,
            None,
        );
        assert_eq!(tiers.len(), 1);
        assert!((tiers[0].share() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(regions[0].group, "North");
        assert_eq!(regions[0].share(), 1.0);
        assert_eq!(regions[1].share(), 0.0);
    }

    #[test]
    fn accuracy_scores_missing_actuals_as_zero_demand() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let forecast = [(1, 2, d, 2.0, 3.0), (1, 3, d, 1.0, 1.0)];
        let actual: HashMap<(i64, i64, (i32, u32)), f64> =
            [((1, 2, (2026, 1)), 4.0)].into_iter().collect();
        let a = score(&forecast, &actual).unwrap_or_else(|| panic!("scored"));
        assert_eq!(a.months, 1);
        assert!((a.wape - 3.0 / 4.0).abs() < 1e-12);
        assert!((a.bias + 1.0 / 4.0).abs() < 1e-12);
        assert_eq!(a.p80_coverage, 0.5);
    }

    #[test]
    fn run_totals_take_the_first_step_and_sum_the_horizon() {
        let rows = [
            (1, 2, 3, 1.5),
            (1, 2, 4, 2.0),
            (1, 3, 3, 0.5),
            (1, 3, 5, 1.0),
        ];
        let t = run_totals(9, &rows);
        assert_eq!(t.first, [(1, 2, 1.5), (1, 3, 0.5)]);
        assert_eq!(t.horizon[&(1, 2)], 3.5);
        assert_eq!(t.horizon[&(1, 3)], 1.5);
    }

    #[test]
    fn turns_are_consumption_over_value() {
        let cost: HashMap<i64, i64> = [(10, 100)].into_iter().collect();
        let rows = stock_by_region(&[(10, 2, 4, 5)], &[(10, 2, 20)], &cost, &places());
        assert_eq!(rows[0].region, "North");
        assert_eq!(rows[0].turns(), Some(4.0));
        assert_eq!(rows.last().map(|r| r.value_minor), Some(500));
    }
}
