//! Stations' view of stock (DESIGN §3): availability of a part across the network, the
//! station's own stock and expected arrivals, and recording issues and receipts.
//!
//! Availability is the hot path: the code resolves through its supersession chain (one
//! indexed lookup per link), the station and the lanes into it are two indexed reads, and
//! the holders of the part are one indexed scan of `stock_balance` by part joined to their
//! location. [`Lookups`] remembers all three; a part's holders only until a commit moves
//! its stock, so a repeated look-up reads nothing and never shows stock a commit has
//! changed (on PostgreSQL, a commit of another instance arrives within milliseconds by
//! notification).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;

use crate::audit::{self, Change};
use crate::catalog::{self, CodingRule};
use crate::db::{Db, StockVersion};
use crate::service::{location_id, page_limit, Page, ServiceError};
use crate::stock::{self, Applied, Movement, MovementKind};
use crate::units::Qty;
use crate::{sql_fetch_all, sql_fetch_optional};

/// Road speed assumed for an ETA where no lane exists, in km per day, and the handling days
/// added to it (an emergency transfer still has to be picked and packed).
const KM_PER_DAY: f64 = 500.0;
const HANDLING_DAYS: i64 = 1;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Availability {
    /// The code asked for.
    pub requested_code: String,
    /// The part in force for it (the end of its supersession chain).
    pub part_code: String,
    pub part_name: String,
    pub superseded: bool,
    pub station_code: String,
    pub own: OwnStock,
    /// Open lines (released, not fully received) to this station, soonest first.
    pub arriving: Vec<Incoming>,
    /// Other locations holding it, nearest (by ETA) first.
    pub sources: Vec<Source>,
    /// Available in the station's region (its regional centre and stations), own included.
    pub regional_total: i64,
    /// Available anywhere, own included.
    pub national_total: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct OwnStock {
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub in_transit: i64,
}

/// What is on its way to the station on one open line.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Incoming {
    pub proposal_id: i64,
    /// Still to arrive on the line.
    pub qty: i64,
    pub arrive_on: chrono::NaiveDate,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Source {
    pub location_code: String,
    /// central, regional or station.
    pub kind: String,
    pub region: Option<String>,
    pub available: i64,
    pub eta_days: i64,
    /// "lane" when a lane to the station gives the lead time, "distance" otherwise.
    pub eta_basis: String,
}

/// A location holding a part: (location id, code, kind, region, lat, lon, on hand, reserved,
/// in transit).
type Holder = (i64, String, String, Option<String>, f64, f64, i64, i64, i64);

/// A map whose entries expire after a fixed time.
struct Expiring<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

/// Beyond this many entries a map starts over (a bound, not an eviction policy: the key
/// space is the catalogue and the stations).
const EXPIRING_MAX: usize = 100_000;

impl<K: Hash + Eq, V: Clone> Expiring<K, V> {
    fn new(ttl: Duration) -> Self {
        Expiring {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value, if younger than the time to live and `fresh` holds for it.
    fn get_if<Q>(&self, key: &Q, fresh: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, v)| at.elapsed() < self.ttl && fresh(v))
            .map(|(_, v)| v.clone())
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_if(key, |_| true)
    }

    fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= EXPIRING_MAX {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), value));
        }
    }
}

/// A station as a look-up needs it, with the lanes that lead to it.
struct Station {
    id: i64,
    region: Option<String>,
    lat: f64,
    lon: f64,
    /// Lead time in days of the lane from each location that has one to this station.
    lanes_in: HashMap<i64, i64>,
}

/// Where a part is and what of it is on the way, as read at a stock version. Releases and
/// receipts move stock, so the version also tells when the open lines changed.
struct PartStock {
    holders: Vec<Holder>,
    /// Open lines of the part: (destination id, proposal id, open quantity, expected on).
    arriving: Vec<(i64, i64, i64, chrono::NaiveDate)>,
}
type Holders = (StockVersion, Arc<PartStock>);

/// What availability look-ups remember. Code resolutions and stations (with their lanes)
/// are reference data that change only by import: kept for `reference_ttl`, so an import
/// that supersedes a code or moves a station shows within that time. Unknown codes and
/// stations are never remembered, so a new one is found at once. A part's holders are kept
/// until a commit moves that part's stock (see [`crate::db::StockVersions`]) or
/// `stock_ttl` passes, whichever comes first; so a repeated look-up reads nothing.
pub struct Lookups {
    parts: Expiring<String, catalog::PartRef>,
    stations: Expiring<String, Arc<Station>>,
    holders: Expiring<i64, Holders>,
}

impl Lookups {
    pub fn new(reference_ttl: Duration, stock_ttl: Duration) -> Self {
        Lookups {
            parts: Expiring::new(reference_ttl),
            stations: Expiring::new(reference_ttl),
            holders: Expiring::new(stock_ttl),
        }
    }

    async fn part(
        &self,
        db: &Db,
        rule: &CodingRule,
        code: &str,
    ) -> Result<catalog::PartRef, ServiceError> {
        if let Some(p) = self.parts.get(code) {
            return Ok(p);
        }
        let part = catalog::resolve_current(db, rule, code, Utc::now().date_naive())
            .await
            .map_err(|e| ServiceError::part_lookup("part", e))?;
        self.parts.put(code.to_owned(), part.clone());
        Ok(part)
    }

    async fn station(&self, db: &Db, code: &str) -> Result<Arc<Station>, ServiceError> {
        if let Some(s) = self.stations.get(code) {
            return Ok(s);
        }
        let mut conn = db.acquire().await?;
        let (id, kind, region, lat, lon) = sql_fetch_optional!(
            (i64, String, Option<String>, f64, f64),
            conn.conn(),
            "select id, kind, region, lat, lon from locations where code = $1",
            code
        )?
        .ok_or_else(|| ServiceError::not_found(format!("station '{code}'")))?;
        if kind != "station" {
            return Err(ServiceError::invalid(
                "station",
                format!("'{code}' is a {kind}, not a station"),
            ));
        }
        let lanes_in = sql_fetch_all!(
            (i64, i64),
            conn.conn(),
            "select from_id, lead_time_days from lanes where to_id = $1",
            id
        )?;
        let station = Arc::new(Station {
            id,
            region,
            lat,
            lon,
            lanes_in: lanes_in.into_iter().collect(),
        });
        self.stations.put(code.to_owned(), station.clone());
        Ok(station)
    }

    /// Every location with stock of the part on hand or in transit, and its open lines.
    async fn holders(&self, db: &Db, part_id: i64) -> Result<Arc<PartStock>, ServiceError> {
        let versions = db.stock_versions();
        let now = versions.of(part_id);
        if let Some((_, holders)) = self
            .holders
            .get_if(&part_id, |(read_at, _)| *read_at == now)
        {
            return Ok(holders);
        }
        // The version is read before the stock: a commit in between leaves the entry
        // marked with the older version, so the next look-up reads again.
        let mut conn = db.acquire().await?;
        let holders = sql_fetch_all!(
            Holder,
            conn.conn(),
            "select l.id, l.code, l.kind, l.region, l.lat, l.lon, b.on_hand, b.reserved, b.in_transit
             from stock_balance b join locations l on l.id = b.location_id
             where b.part_id = $1 and (b.on_hand > 0 or b.in_transit > 0)",
            part_id
        )?;
        let arriving = sql_fetch_all!(
            (i64, i64, i64, chrono::NaiveDate),
            conn.conn(),
            "select to_id, id, qty - received_qty, arrive_on from proposals
             where part_id = $1 and status = 'released' and received_qty < qty
             order by arrive_on, id",
            part_id
        )?;
        let holders = Arc::new(PartStock { holders, arriving });
        self.holders.put(part_id, (now, holders.clone()));
        Ok(holders)
    }
}

/// Great-circle distance in km.
fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

pub async fn availability(
    db: &Db,
    rule: &CodingRule,
    lookups: &Lookups,
    part_code: &str,
    station_code: &str,
) -> Result<Availability, ServiceError> {
    let part = lookups.part(db, rule, part_code).await?;
    let station = lookups.station(db, station_code).await?;
    let holders = lookups.holders(db, part.id).await?;
    let mut own = OwnStock::default();
    let mut sources = Vec::new();
    let (mut regional_total, mut national_total) = (0, 0);
    let arriving: Vec<Incoming> = holders
        .arriving
        .iter()
        .filter(|(to, ..)| *to == station.id)
        .map(|&(_, proposal_id, qty, arrive_on)| Incoming {
            proposal_id,
            qty,
            arrive_on,
        })
        .collect();
    for (id, code, kind, loc_region, llat, llon, on_hand, reserved, in_transit) in
        holders.holders.iter()
    {
        let available = on_hand - reserved;
        national_total += available;
        if station.region.is_some() && *loc_region == station.region {
            regional_total += available;
        }
        if *id == station.id {
            own = OwnStock {
                on_hand: *on_hand,
                reserved: *reserved,
                available,
                in_transit: *in_transit,
            };
            continue;
        }
        if available <= 0 {
            continue;
        }
        let (eta_days, eta_basis) = match station.lanes_in.get(id) {
            Some(days) => (*days, "lane"),
            None => {
                let km = haversine_km((*llat, *llon), (station.lat, station.lon));
                ((km / KM_PER_DAY).ceil() as i64 + HANDLING_DAYS, "distance")
            }
        };
        sources.push(Source {
            location_code: code.clone(),
            kind: kind.clone(),
            region: loc_region.clone(),
            available,
            eta_days,
            eta_basis: eta_basis.into(),
        });
    }
    sources.sort_by(|a, b| {
        a.eta_days
            .cmp(&b.eta_days)
            .then(b.available.cmp(&a.available))
            .then(a.location_code.cmp(&b.location_code))
    });
    Ok(Availability {
        requested_code: part_code.to_owned(),
        superseded: part.code != part_code,
        part_code: part.code,
        part_name: part.name,
        station_code: station_code.to_owned(),
        own,
        arriving,
        sources,
        regional_total,
        national_total,
    })
}

/// What a station records: consumption against a work order, or goods received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationMove {
    /// Consumption against a repair work order.
    Issue,
    /// Goods received outside any transfer (e.g. a local purchase).
    Receipt,
    /// A released transfer arrived (moves in-transit to on-hand).
    TransferArrival,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recorded {
    pub part_code: String,
    pub station_code: String,
    /// false when the idempotency key had been used by this very movement already.
    pub moved: bool,
    pub on_hand: i64,
    pub reserved: i64,
    pub in_transit: i64,
}

/// Records a station's movement. The part code is taken as written (stock sits on shelves
/// under the code it was received with); `reference` is the work order for issues and the
/// proposal (`proposal:<id>`) for transfer arrivals.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    db: &Db,
    rule: &CodingRule,
    actor: &str,
    station_code: &str,
    what: StationMove,
    part_code: &str,
    qty: i64,
    idempotency_key: &str,
    reference: Option<String>,
) -> Result<Recorded, ServiceError> {
    let qty = Qty::new(qty)
        .ok()
        .filter(|q| *q != Qty::ZERO)
        .ok_or_else(|| ServiceError::invalid("qty", "must be a positive whole number"))?;
    if idempotency_key.trim().is_empty() || idempotency_key.len() > 200 {
        return Err(ServiceError::invalid(
            "idempotency_key",
            "must be 1 to 200 characters",
        ));
    }
    let code = rule
        .parse(part_code)
        .map_err(|e| ServiceError::invalid("part_code", e.to_string()))?;
    let mut tx = db.begin().await?;
    let part = sql_fetch_optional!(
        (i64,),
        tx.conn(),
        "select id from parts where code = $1",
        code.as_str()
    )?
    .ok_or_else(|| {
        ServiceError::invalid("part_code", format!("part '{part_code}' does not exist"))
    })?;
    let (station_id, kind) = location_id(tx.conn(), "station", station_code)
        .await
        .map_err(|_| ServiceError::not_found(format!("station '{station_code}'")))?;
    if kind != "station" {
        return Err(ServiceError::invalid(
            "station",
            format!("'{station_code}' is not a station"),
        ));
    }
    let kind = match what {
        StationMove::Issue => MovementKind::Issue,
        StationMove::Receipt => MovementKind::Receipt,
        StationMove::TransferArrival => MovementKind::TransferIn,
    };
    if what == StationMove::TransferArrival {
        drop(tx);
        let proposal_id = reference
            .as_deref()
            .and_then(|r| r.strip_prefix("proposal:"))
            .ok_or_else(|| {
                ServiceError::invalid("proposal_id", "a transfer arrival names its proposal")
            })?
            .parse::<i64>()
            .map_err(|_| ServiceError::invalid("proposal_id", "not a number"))?;
        let receipt = crate::pipeline::Receipt {
            proposal_id,
            location_code: station_code.to_owned(),
            qty,
            idempotency_key: idempotency_key.to_owned(),
            part_code: Some(code.as_str().to_owned()),
        };
        let done = crate::pipeline::receive(db, actor, &receipt).await?;
        let balance = stock::balance(db, part.0, station_id).await?;
        return Ok(recorded(part_code, station_code, done.moved, balance));
    }
    let movement = Movement {
        kind,
        part_id: part.0,
        location_id: station_id,
        qty,
        idempotency_key: format!("station:{station_code}:{idempotency_key}"),
        reference,
        reason: None,
        actor: actor.to_owned(),
    };
    let applied = stock::append(&mut tx, &movement).await;
    let applied = match applied {
        Ok(a) => a,
        Err(stock::StockError::WouldGoNegative { bucket, .. }) => {
            drop(tx);
            let now = stock::balance(db, part.0, station_id).await?;
            let have = if bucket == "in transit" {
                now.in_transit
            } else {
                now.available()
            };
            return Err(ServiceError::conflict(
                "qty",
                format!(
                    "{} {} refused: only {have} {bucket} at {station_code}",
                    kind.ledger_kind(),
                    qty.get()
                ),
            ));
        }
        Err(stock::StockError::KeyReused(_)) => {
            return Err(ServiceError::conflict(
                "idempotency_key",
                "this key was already used for a different movement",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let (moved, balance) = match applied {
        Applied::Moved(b) => (true, b),
        Applied::Replayed => {
            drop(tx);
            return Ok(recorded(
                part_code,
                station_code,
                false,
                stock::balance(db, part.0, station_id).await?,
            ));
        }
    };
    let d = kind.deltas(qty);
    audit::record(
        &mut tx,
        Change {
            actor,
            action: match what {
                StationMove::Issue => "stock.issue",
                StationMove::Receipt => "stock.receipt",
                StationMove::TransferArrival => "stock.transfer_in",
            },
            entity: "stock_balance",
            entity_id: format!("{}@{station_code}", code.as_str()),
            before: Some(serde_json::json!({
                "on_hand": balance.on_hand - d.on_hand, "reserved": balance.reserved - d.reserved,
                "in_transit": balance.in_transit - d.in_transit, "on_order": balance.on_order - d.on_order})),
            after: Some(serde_json::json!({
                "on_hand": balance.on_hand, "reserved": balance.reserved,
                "in_transit": balance.in_transit, "on_order": balance.on_order,
                "idempotency_key": idempotency_key, "reference": movement.reference})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(recorded(part_code, station_code, moved, balance))
}

fn recorded(part_code: &str, station_code: &str, moved: bool, b: stock::Balance) -> Recorded {
    Recorded {
        part_code: part_code.to_owned(),
        station_code: station_code.to_owned(),
        moved,
        on_hand: b.on_hand,
        reserved: b.reserved,
        in_transit: b.in_transit,
    }
}

/// One line of a station's stock.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StockLine {
    pub part_id: i64,
    pub part_code: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub in_transit: i64,
    pub on_order: i64,
}

/// The stock of a location, by part id (keyset); `in_transit_only` keeps lines with goods
/// on the way.
pub async fn station_stock(
    db: &Db,
    station_code: &str,
    in_transit_only: bool,
    after: Option<i64>,
    limit: Option<i64>,
) -> Result<Page<StockLine>, ServiceError> {
    let limit = page_limit(limit)?;
    let mut conn = db.acquire().await?;
    let (station_id, _) = location_id(conn.conn(), "station", station_code)
        .await
        .map_err(|_| ServiceError::not_found(format!("station '{station_code}'")))?;
    let rows = sql_fetch_all!(
        StockLine,
        conn.conn(),
        "select b.part_id, p.code as part_code, b.on_hand, b.reserved, b.in_transit, b.on_order
         from stock_balance b join parts p on p.id = b.part_id
         where b.location_id = $1 and b.part_id > $2 and ($3 = 0 or b.in_transit > 0)
         order by b.part_id limit $4",
        station_id,
        after.unwrap_or(0),
        i64::from(in_transit_only),
        (limit + 1) as i64
    )?;
    Ok(Page::cut(rows, limit, |l| l.part_id))
}

/// A released line on its way to a location with something still open.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Arrival {
    pub proposal_id: i64,
    pub kind: String,
    pub part_code: String,
    pub from_code: Option<String>,
    /// Still to arrive (ordered − received).
    pub qty: i64,
    pub ordered: i64,
    pub arrive_on: chrono::NaiveDate,
}

/// The open lines to a station, soonest first: what the availability look-up expects.
pub async fn expected_arrivals(db: &Db, station_code: &str) -> Result<Vec<Arrival>, ServiceError> {
    let mut conn = db.acquire().await?;
    let (station_id, _) = location_id(conn.conn(), "station", station_code)
        .await
        .map_err(|_| ServiceError::not_found(format!("station '{station_code}'")))?;
    Ok(sql_fetch_all!(
        Arrival,
        conn.conn(),
        "select p.id as proposal_id, p.kind, pt.code as part_code, f.code as from_code,
                p.qty - p.received_qty as qty, p.qty as ordered, p.arrive_on
         from proposals p join parts pt on pt.id = p.part_id left join locations f on f.id = p.from_id
         where p.to_id = $1 and p.status = 'released' and p.received_qty < p.qty
         order by p.arrive_on, p.id",
        station_id
    )?)
}
