//! The planner's exceptions board: where the network needs a person's attention now —
//! stations about to run out of a part the forecast says they will need, stations whose
//! advance-stock credit is over its limit, and stock far beyond what the forecast needs.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde::Serialize;

use crate::catalog;
use crate::credit::{self, CreditAccount};
use crate::db::Db;
use crate::kpi::{self, RunTotals};
use crate::service::ServiceError;
use crate::{proposals, sql_fetch_all, sql_fetch_optional};

#[derive(Debug, Clone, Serialize)]
pub struct Stockout {
    pub station: String,
    pub part: String,
    /// Available (on hand − reserved) plus in transit.
    pub available: i64,
    /// Forecast mean demand of the first forecast period.
    pub forecast: f64,
    pub criticality: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Excess {
    pub location: String,
    pub part: String,
    pub on_hand: i64,
    /// Forecast demand over the whole horizon of the stations this location serves.
    pub horizon_demand: f64,
    /// The stock beyond that demand, at cost.
    pub excess_value_minor: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub forecast_run: Option<i64>,
    pub stockouts: Vec<Stockout>,
    pub over_limit: Vec<CreditAccount>,
    pub excess: Vec<Excess>,
}

/// What both stock lists read, read once per board.
struct Snapshot {
    /// (part, location) → (on hand, available + in transit).
    stock: HashMap<(i64, i64), (i64, i64)>,
    /// location id → (code, kind, parent).
    locations: HashMap<i64, (String, String, Option<i64>)>,
    /// part id → (code, criticality).
    parts: HashMap<i64, (String, String)>,
}

async fn snapshot(db: &Db) -> Result<Snapshot, ServiceError> {
    let mut conn = db.acquire().await?;
    let stock = sql_fetch_all!(
        (i64, i64, i64, i64),
        conn.conn(),
        "select part_id, location_id, on_hand, on_hand - reserved + in_transit from stock_balance"
    )?
    .into_iter()
    .map(|(p, l, on_hand, usable)| ((p, l), (on_hand, usable)))
    .collect();
    let locations = sql_fetch_all!(
        (i64, String, String, Option<i64>),
        conn.conn(),
        "select id, code, kind, parent_id from locations"
    )?
    .into_iter()
    .map(|(id, code, kind, parent)| (id, (code, kind, parent)))
    .collect();
    let parts = sql_fetch_all!(
        (i64, String, String),
        conn.conn(),
        "select id, code, criticality from parts"
    )?
    .into_iter()
    .map(|(id, code, crit)| (id, (code, crit)))
    .collect();
    Ok(Snapshot {
        stock,
        locations,
        parts,
    })
}

/// The board, each list cut to its `limit` most important rows.
pub async fn board(db: &Db, cache: &kpi::Cache, limit: i64) -> Result<Board, ServiceError> {
    let forecast_run = latest_forecast(db).await?;
    let mut over_limit: Vec<CreditAccount> = credit::accounts(db)
        .await?
        .into_iter()
        .filter(|a| a.headroom_minor < 0)
        .collect();
    over_limit.sort_by_key(|a| a.headroom_minor);
    over_limit.truncate(limit.max(0) as usize);
    let (stockouts, excess) = match forecast_run {
        Some(run) => {
            let totals = cache.run_totals(db, run).await?;
            let snap = snapshot(db).await?;
            let coming = coming(db).await?;
            let cost = catalog::cost_prices(db, Utc::now().date_naive()).await?;
            (
                stockouts(&totals, &snap, &coming, limit),
                excess(&totals, &snap, &cost, limit),
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(Board {
        forecast_run,
        stockouts,
        over_limit,
        excess,
    })
}

async fn latest_forecast(db: &Db) -> Result<Option<i64>, ServiceError> {
    let mut conn = db.acquire().await?;
    Ok(sql_fetch_optional!(
        (i64,),
        conn.conn(),
        "select id from forecast_runs order by id desc limit 1"
    )?
    .map(|(id,)| id))
}

/// (part, destination) of the newest plan's live proposals.
async fn coming(db: &Db) -> Result<HashSet<(i64, i64)>, ServiceError> {
    let plan = proposals::latest_plan_run(db).await?.unwrap_or(0);
    let mut conn = db.acquire().await?;
    Ok(sql_fetch_all!(
        (i64, i64),
        conn.conn(),
        "select distinct part_id, to_id from proposals where plan_run_id = $1 and status <> 'rejected'",
        plan
    )?
    .into_iter()
    .collect())
}

/// Station × part pairs whose available stock and goods in transit fall short of the first
/// period's forecast mean, with nothing of the newest plan on its way: most critical first.
fn stockouts(
    totals: &RunTotals,
    snap: &Snapshot,
    coming: &HashSet<(i64, i64)>,
    limit: i64,
) -> Vec<Stockout> {
    let mut rows: Vec<Stockout> = totals
        .first
        .iter()
        .filter_map(|&(part, station, mean)| {
            let available = snap.stock.get(&(part, station)).map_or(0, |s| s.1);
            let short = (available as f64) < mean && !coming.contains(&(part, station));
            let (code, criticality) = snap.parts.get(&part)?;
            let (station, kind, _) = snap.locations.get(&station)?;
            (short && kind == "station").then(|| Stockout {
                station: station.clone(),
                part: code.clone(),
                available,
                forecast: mean,
                criticality: criticality.clone(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        a.criticality
            .cmp(&b.criticality)
            .then(b.forecast.total_cmp(&a.forecast))
            .then_with(|| a.station.cmp(&b.station))
            .then_with(|| a.part.cmp(&b.part))
    });
    rows.truncate(limit.max(0) as usize);
    rows
}

/// Stock on hand beyond the horizon's forecast demand of everything a location serves
/// (a station itself; a regional centre its stations; the central warehouse all), at cost.
fn excess(
    totals: &RunTotals,
    snap: &Snapshot,
    cost: &HashMap<i64, i64>,
    limit: i64,
) -> Vec<Excess> {
    let parents: HashMap<i64, Option<i64>> =
        snap.locations.iter().map(|(&id, l)| (id, l.2)).collect();
    let served = demand_served(&totals.horizon, &parents);
    let mut rows: Vec<Excess> = snap
        .stock
        .iter()
        .filter_map(|(&(part, location), &(on_hand, _))| {
            let need = served.get(&(part, location)).copied().unwrap_or(0.0);
            let extra = on_hand as f64 - need.ceil();
            let unit = cost.get(&part).copied().unwrap_or(0);
            (extra >= 1.0 && unit > 0).then(|| Excess {
                location: snap
                    .locations
                    .get(&location)
                    .map_or_else(String::new, |l| l.0.clone()),
                part: snap
                    .parts
                    .get(&part)
                    .map_or_else(String::new, |p| p.0.clone()),
                on_hand,
                horizon_demand: need,
                excess_value_minor: extra as i64 * unit,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        b.excess_value_minor
            .cmp(&a.excess_value_minor)
            .then_with(|| a.location.cmp(&b.location))
            .then_with(|| a.part.cmp(&b.part))
    });
    rows.truncate(limit.max(0) as usize);
    rows
}

/// Each station's forecast, added to the station and every location above it.
fn demand_served(
    demand: &HashMap<(i64, i64), f64>,
    parents: &HashMap<i64, Option<i64>>,
) -> HashMap<(i64, i64), f64> {
    let mut served = HashMap::new();
    for (&(part, station), &mean) in demand {
        let mut at = Some(station);
        // Bounded walk: the hierarchy is central → regional → station.
        for _ in 0..8 {
            let Some(loc) = at else { break };
            *served.entry((part, loc)).or_insert(0.0) += mean;
            at = parents.get(&loc).copied().flatten();
        }
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_demand_rolls_up_to_its_region_and_the_centre() {
        // 1 centre, 2 its region, 3 and 4 the region's stations.
        let parents: HashMap<i64, Option<i64>> =
            [(1, None), (2, Some(1)), (3, Some(2)), (4, Some(2))]
                .into_iter()
                .collect();
        let demand: HashMap<(i64, i64), f64> = [((7, 3), 2.0), ((7, 4), 3.5)].into_iter().collect();
        let served = demand_served(&demand, &parents);
        assert_eq!(served[&(7, 3)], 2.0);
        assert_eq!(served[&(7, 2)], 5.5);
        assert_eq!(served[&(7, 1)], 5.5);
        assert!(!served.contains_key(&(8, 1)));
    }
}
