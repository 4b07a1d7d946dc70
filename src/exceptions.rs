//! The planner's exceptions board: where the network needs a person's attention now —
//! stations about to run out of a part the forecast says they will need, stations whose
//! advance-stock credit is over its limit, and stock far beyond what the forecast needs.

use std::collections::HashMap;

use chrono::Utc;
use serde::Serialize;

use crate::catalog;
use crate::credit::{self, CreditAccount};
use crate::db::Db;
use crate::service::ServiceError;
use crate::{proposals, sql_fetch_all, sql_fetch_optional};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
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

/// The board, each list cut to its `limit` most important rows.
pub async fn board(db: &Db, limit: i64) -> Result<Board, ServiceError> {
    let forecast_run = latest_forecast(db).await?;
    let stockouts = match forecast_run {
        Some(run) => stockouts(db, run, limit).await?,
        None => Vec::new(),
    };
    let mut over_limit: Vec<CreditAccount> = credit::accounts(db)
        .await?
        .into_iter()
        .filter(|a| a.headroom_minor < 0)
        .collect();
    over_limit.sort_by_key(|a| a.headroom_minor);
    over_limit.truncate(limit.max(0) as usize);
    let excess = match forecast_run {
        Some(run) => excess(db, run, limit).await?,
        None => Vec::new(),
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

/// Station × part pairs whose available stock and goods in transit fall short of the first
/// period's forecast mean, with nothing of the newest plan on its way: most critical first.
async fn stockouts(db: &Db, run: i64, limit: i64) -> Result<Vec<Stockout>, ServiceError> {
    let plan = proposals::latest_plan_run(db).await?.unwrap_or(0);
    let mut conn = db.acquire().await?;
    Ok(sql_fetch_all!(
        Stockout,
        conn.conn(),
        "select l.code as station, pt.code as part,
             cast(coalesce(b.on_hand - b.reserved + b.in_transit, 0) as bigint) as available,
             v.mean as forecast, pt.criticality
         from forecast_values v
         join locations l on l.id = v.station_id
         join parts pt on pt.id = v.part_id
         left join stock_balance b on b.part_id = v.part_id and b.location_id = v.station_id
         where v.run_id = $1
           and v.step = (select min(step) from forecast_values where run_id = $1)
           and l.kind = 'station'
           and coalesce(b.on_hand - b.reserved + b.in_transit, 0) < v.mean
           and not exists (select 1 from proposals p where p.plan_run_id = $2
                 and p.part_id = v.part_id and p.to_id = v.station_id and p.status <> 'rejected')
         order by pt.criticality, v.mean desc, l.code, pt.code
         limit $3",
        run,
        plan,
        limit
    )?)
}

/// Stock on hand beyond the horizon's forecast demand of everything a location serves
/// (a station itself; a regional centre its stations; the central warehouse all), at cost.
async fn excess(db: &Db, run: i64, limit: i64) -> Result<Vec<Excess>, ServiceError> {
    let mut conn = db.acquire().await?;
    let demand = sql_fetch_all!(
        (i64, i64, f64),
        conn.conn(),
        "select part_id, station_id, sum(mean) from forecast_values where run_id = $1
         group by part_id, station_id",
        run
    )?;
    let parents: HashMap<i64, (String, Option<i64>)> = sql_fetch_all!(
        (i64, String, Option<i64>),
        conn.conn(),
        "select id, code, parent_id from locations"
    )?
    .into_iter()
    .map(|(id, code, parent)| (id, (code, parent)))
    .collect();
    let stock = sql_fetch_all!(
        (i64, i64, String, i64),
        conn.conn(),
        "select b.part_id, b.location_id, pt.code, b.on_hand from stock_balance b
         join parts pt on pt.id = b.part_id where b.on_hand > 0"
    )?;
    drop(conn);
    let served = demand_served(&demand, &parents);
    let cost = catalog::cost_prices(db, Utc::now().date_naive()).await?;
    let mut rows: Vec<Excess> = stock
        .into_iter()
        .filter_map(|(part, location, code, on_hand)| {
            let need = served.get(&(part, location)).copied().unwrap_or(0.0);
            let extra = on_hand as f64 - need.ceil();
            let unit = cost.get(&part).copied().unwrap_or(0);
            (extra >= 1.0 && unit > 0).then(|| Excess {
                location: parents
                    .get(&location)
                    .map_or_else(String::new, |p| p.0.clone()),
                part: code,
                on_hand,
                horizon_demand: need,
                excess_value_minor: extra as i64 * unit,
            })
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.excess_value_minor));
    rows.truncate(limit.max(0) as usize);
    Ok(rows)
}

/// Each station's forecast, added to the station and every location above it.
fn demand_served(
    demand: &[(i64, i64, f64)],
    parents: &HashMap<i64, (String, Option<i64>)>,
) -> HashMap<(i64, i64), f64> {
    let mut served = HashMap::new();
    for &(part, station, mean) in demand {
        let mut at = Some(station);
        // Bounded walk: the hierarchy is central → regional → station.
        for _ in 0..8 {
            let Some(loc) = at else { break };
            *served.entry((part, loc)).or_insert(0.0) += mean;
            at = parents.get(&loc).and_then(|p| p.1);
        }
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_demand_rolls_up_to_its_region_and_the_centre() {
        let parents: HashMap<i64, (String, Option<i64>)> = [
            (1, ("C".into(), None)),
            (2, ("R".into(), Some(1))),
            (3, ("S1".into(), Some(2))),
            (4, ("S2".into(), Some(2))),
        ]
        .into_iter()
        .collect();
        let served = demand_served(&[(7, 3, 2.0), (7, 4, 3.5)], &parents);
        assert_eq!(served[&(7, 3)], 2.0);
        assert_eq!(served[&(7, 2)], 5.5);
        assert_eq!(served[&(7, 1)], 5.5);
        assert!(!served.contains_key(&(8, 1)));
    }
}
