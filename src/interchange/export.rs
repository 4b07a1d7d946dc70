//! CSV export of every table in the interchange formats: what goes out imports back as is.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

use super::kind::Kind;
use super::rows::*;
use crate::catalog::{Criticality, PriceKind};
use crate::db::{Conn, Db, DbError};
use crate::history::FaultCategory;
use crate::network::LocationKind;
use crate::sql_fetch_all;
use crate::units::{Amount, Qty};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error("stored value out of place in {table}: {why}")]
    Corrupt { table: &'static str, why: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        ExportError::Db(DbError::Sqlx(e))
    }
}

/// Writes every kind into `dir` (created if missing); returns the rows written per kind.
pub async fn export_dir(db: &Db, dir: &Path) -> Result<Vec<(Kind, u64)>, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for kind in Kind::IN_DEPENDENCY_ORDER {
        let rows = export_file(db, kind, &dir.join(kind.file_name())).await?;
        written.push((kind, rows));
    }
    Ok(written)
}

/// Writes one kind to `path`.
pub async fn export_file(db: &Db, kind: Kind, path: &Path) -> Result<u64, ExportError> {
    let mut conn = db.acquire().await?;
    let c = conn.conn();
    match kind {
        Kind::Locations => write(path, kind, locations(c).await?),
        Kind::Lanes => write(path, kind, lanes(c).await?),
        Kind::Suppliers => write(path, kind, suppliers(c).await?),
        Kind::Parts => write(path, kind, parts(c).await?),
        Kind::Prices => write(path, kind, prices(c).await?),
        Kind::Fits => write(path, kind, fits(c).await?),
        Kind::Equipment => write(path, kind, equipment(c).await?),
        Kind::Faults => export_faults(c, path).await,
        Kind::PeakSeason => write(path, kind, peak_season(c).await?),
        Kind::Stock => write(path, kind, stock(c).await?),
        Kind::Credit => write(path, kind, credit(c).await?),
    }
}

/// A CSV writer whose header row is already written: the exact header import expects,
/// even when there are no rows.
fn writer(path: &Path, kind: Kind) -> Result<csv::Writer<BufWriter<File>>, ExportError> {
    let file = File::create(path).map_err(|source| ExportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(BufWriter::new(file));
    out.write_record(kind.header())
        .map_err(|source| ExportError::Csv {
            path: path.to_owned(),
            source,
        })?;
    Ok(out)
}

fn write<R: Serialize>(path: &Path, kind: Kind, rows: Vec<R>) -> Result<u64, ExportError> {
    let csv_err = |source| ExportError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut out = writer(path, kind)?;
    for row in &rows {
        out.serialize(row).map_err(csv_err)?;
    }
    out.flush().map_err(|source| ExportError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(rows.len() as u64)
}

fn corrupt(table: &'static str, why: String) -> ExportError {
    ExportError::Corrupt { table, why }
}

fn location_kind(text: &str) -> Result<LocationKind, ExportError> {
    match text {
        "central" => Ok(LocationKind::Central),
        "regional" => Ok(LocationKind::Regional),
        "station" => Ok(LocationKind::Station),
        other => Err(corrupt("locations", format!("kind '{other}'"))),
    }
}

async fn locations(c: Conn<'_>) -> Result<Vec<LocationRow>, ExportError> {
    type Raw = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        bool,
        bool,
        f64,
        f64,
        f64,
    );
    let raw = sql_fetch_all!(
        Raw,
        c,
        "select l.code, l.name, l.kind, p.code, l.region, l.city, l.key_city, l.remote, l.lat, l.lon, l.capacity_m3
         from locations l left join locations p on p.id = l.parent_id order by l.id"
    )?;
    raw.into_iter()
        .map(
            |(
                code,
                name,
                kind,
                parent_code,
                region,
                city,
                key_city,
                remote,
                lat,
                lon,
                capacity_m3,
            )| {
                Ok(LocationRow {
                    code,
                    name,
                    kind: location_kind(&kind)?,
                    parent_code,
                    region,
                    city,
                    key_city,
                    remote,
                    lat,
                    lon,
                    capacity_m3,
                })
            },
        )
        .collect()
}

async fn lanes(c: Conn<'_>) -> Result<Vec<LaneRow>, ExportError> {
    let raw = sql_fetch_all!(
        (String, String, i64, i64, String),
        c,
        "select f.code, t.code, l.lead_time_days, l.cost_per_unit_minor, l.currency
         from lanes l join locations f on f.id = l.from_id join locations t on t.id = l.to_id order by l.id"
    )?;
    raw.into_iter()
        .map(|(from_code, to_code, days, cost, currency)| {
            Ok(LaneRow {
                from_code,
                to_code,
                lead_time_days: u32::try_from(days)
                    .map_err(|_| corrupt("lanes", format!("lead time {days}")))?,
                cost_per_unit: Amount::from_minor(cost),
                currency,
            })
        })
        .collect()
}

async fn suppliers(c: Conn<'_>) -> Result<Vec<SupplierRow>, ExportError> {
    let raw = sql_fetch_all!(
        (String, String),
        c,
        "select code, name from suppliers order by id"
    )?;
    Ok(raw
        .into_iter()
        .map(|(code, name)| SupplierRow { code, name })
        .collect())
}

fn small_u32(table: &'static str, column: &str, value: i64) -> Result<u32, ExportError> {
    u32::try_from(value).map_err(|_| corrupt(table, format!("{column} {value}")))
}

async fn parts(c: Conn<'_>) -> Result<Vec<PartRow>, ExportError> {
    type Raw = (
        String,
        String,
        String,
        String,
        String,
        bool,
        f64,
        f64,
        String,
        i64,
        i64,
        i64,
        Option<String>,
        Option<NaiveDate>,
    );
    let raw = sql_fetch_all!(
        Raw,
        c,
        "select p.code, p.name, p.uom, p.product_line, p.criticality, p.wear_part, p.volume_l, p.weight_kg,
                s.code, p.lead_time_days, p.moq, p.pack_size, r.code, p.replaced_on
         from parts p join suppliers s on s.id = p.supplier_id left join parts r on r.id = p.replaced_by_id
         order by p.id"
    )?;
    raw.into_iter()
        .map(
            |(
                code,
                name,
                uom,
                product_line,
                crit,
                wear_part,
                volume_l,
                weight_kg,
                supplier_code,
                lead,
                moq,
                pack,
                replaced_by,
                replaced_on,
            )| {
                let criticality = match crit.as_str() {
                    "A" => Criticality::A,
                    "B" => Criticality::B,
                    "C" => Criticality::C,
                    other => return Err(corrupt("parts", format!("criticality '{other}'"))),
                };
                Ok(PartRow {
                    code,
                    name,
                    uom,
                    product_line,
                    criticality,
                    wear_part,
                    volume_l,
                    weight_kg,
                    supplier_code,
                    lead_time_days: small_u32("parts", "lead_time_days", lead)?,
                    moq: small_u32("parts", "moq", moq)?,
                    pack_size: small_u32("parts", "pack_size", pack)?,
                    replaced_by,
                    replaced_on,
                })
            },
        )
        .collect()
}

async fn prices(c: Conn<'_>) -> Result<Vec<PriceRow>, ExportError> {
    let raw = sql_fetch_all!(
        (String, String, i64, String, NaiveDate),
        c,
        "select p.code, x.kind, x.amount_minor, x.currency, x.effective_from
         from prices x join parts p on p.id = x.part_id order by x.id"
    )?;
    raw.into_iter()
        .map(|(part_code, kind, amount, currency, effective_from)| {
            let kind = match kind.as_str() {
                "cost" => PriceKind::Cost,
                "dealer" => PriceKind::Dealer,
                "retail" => PriceKind::Retail,
                other => return Err(corrupt("prices", format!("kind '{other}'"))),
            };
            Ok(PriceRow {
                part_code,
                kind,
                amount: Amount::from_minor(amount),
                currency,
                effective_from,
            })
        })
        .collect()
}

async fn fits(c: Conn<'_>) -> Result<Vec<FitRow>, ExportError> {
    let raw = sql_fetch_all!(
        (String, String),
        c,
        "select p.code, f.equipment_model from fits f join parts p on p.id = f.part_id
         order by p.id, f.equipment_model"
    )?;
    Ok(raw
        .into_iter()
        .map(|(part_code, equipment_model)| FitRow {
            part_code,
            equipment_model,
        })
        .collect())
}

async fn equipment(c: Conn<'_>) -> Result<Vec<EquipmentRow>, ExportError> {
    let raw = sql_fetch_all!(
        (String, String, String, String, NaiveDate, NaiveDate),
        c,
        "select e.serial, e.model, e.product_line, l.code, e.delivered_on, e.warranty_until
         from equipment e join locations l on l.id = e.station_id order by e.id"
    )?;
    Ok(raw
        .into_iter()
        .map(
            |(serial, model, product_line, station_code, delivered_on, warranty_until)| {
                EquipmentRow {
                    serial,
                    model,
                    product_line,
                    station_code,
                    delivered_on,
                    warranty_until,
                }
            },
        )
        .collect())
}

fn fault_category(text: &str) -> Result<FaultCategory, ExportError> {
    match text {
        "electrical" => Ok(FaultCategory::Electrical),
        "mechanical" => Ok(FaultCategory::Mechanical),
        "hydraulic" => Ok(FaultCategory::Hydraulic),
        "other" => Ok(FaultCategory::Other),
        other => Err(corrupt("faults", format!("category '{other}'"))),
    }
}

type RawFault = (
    i64,
    String,
    NaiveDate,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    bool,
);

/// One page of fault lines after id `after`, in id order (keyset pagination).
async fn fault_page(
    conn: Conn<'_>,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, FaultRow)>, ExportError> {
    let page = sql_fetch_all!(
        RawFault,
        conn,
        "select f.id, f.work_order, f.opened_on, e.serial, l.code, f.category, f.fault_level, p.code, f.qty, f.warranty
         from faults f join equipment e on e.id = f.equipment_id join locations l on l.id = f.station_id
         left join parts p on p.id = f.part_id
         where f.id > $1 order by f.id limit $2",
        after,
        limit
    )?;
    page.into_iter()
        .map(
            |(
                id,
                work_order,
                opened_on,
                serial,
                station_code,
                category,
                fault_level,
                part_code,
                qty,
                warranty,
            )| {
                let row = FaultRow {
                    work_order,
                    opened_on,
                    serial,
                    station_code,
                    category: fault_category(&category)?,
                    fault_level,
                    part_code,
                    qty: Qty::new(qty).map_err(|e| corrupt("faults", e.to_string()))?,
                    warranty,
                };
                Ok((id, row))
            },
        )
        .collect()
}

const FAULT_PAGE: i64 = 50_000;

fn reborrow<'a>(conn: &'a mut Conn<'_>) -> Conn<'a> {
    match conn {
        Conn::Sqlite(c) => Conn::Sqlite(c),
        Conn::Postgres(c) => Conn::Postgres(c),
    }
}

/// Faults are written a page at a time as they are fetched, so memory stays flat however
/// long the history.
async fn export_faults(mut c: Conn<'_>, path: &Path) -> Result<u64, ExportError> {
    let csv_err = |source| ExportError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut out = writer(path, Kind::Faults)?;
    let (mut after, mut written) = (0_i64, 0_u64);
    loop {
        let page = fault_page(reborrow(&mut c), after, FAULT_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, row) in &page {
            out.serialize(row).map_err(csv_err)?;
            written += 1;
        }
    }
    out.flush().map_err(|source| ExportError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(written)
}

/// The tables forecasting reads, as interchange rows.
#[derive(Debug, Clone, Default)]
pub struct HistorySnapshot {
    pub locations: Vec<LocationRow>,
    pub parts: Vec<PartRow>,
    pub fits: Vec<FitRow>,
    pub equipment: Vec<EquipmentRow>,
    pub faults: Vec<FaultRow>,
    pub peak: Vec<PeakSeasonRow>,
}

/// Reads the history tables whole (faults a page at a time).
pub async fn history_snapshot(db: &Db) -> Result<HistorySnapshot, ExportError> {
    let mut conn = db.acquire().await?;
    let mut c = conn.conn();
    let mut snapshot = HistorySnapshot {
        locations: locations(reborrow(&mut c)).await?,
        parts: parts(reborrow(&mut c)).await?,
        fits: fits(reborrow(&mut c)).await?,
        equipment: equipment(reborrow(&mut c)).await?,
        faults: Vec::new(),
        peak: peak_season(reborrow(&mut c)).await?,
    };
    let mut after = 0_i64;
    loop {
        let page = fault_page(reborrow(&mut c), after, FAULT_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        snapshot.faults.extend(page.into_iter().map(|(_, row)| row));
    }
    Ok(snapshot)
}

async fn peak_season(c: Conn<'_>) -> Result<Vec<PeakSeasonRow>, ExportError> {
    let raw = sql_fetch_all!(
        (String, String, i64, f64),
        c,
        "select region, equipment_model, month, usage_index from peak_season
         order by region, equipment_model, month"
    )?;
    raw.into_iter()
        .map(|(region, equipment_model, month, usage_index)| {
            Ok(PeakSeasonRow {
                region,
                equipment_model,
                month: small_u32("peak_season", "month", month)?,
                usage_index,
            })
        })
        .collect()
}

/// Current on-hand balances, one row per part × location holding stock.
async fn stock(c: Conn<'_>) -> Result<Vec<StockRow>, ExportError> {
    let raw = sql_fetch_all!(
        (String, String, i64),
        c,
        "select p.code, l.code, b.on_hand from stock_balance b
         join parts p on p.id = b.part_id join locations l on l.id = b.location_id
         where b.on_hand > 0 order by p.id, l.id"
    )?;
    raw.into_iter()
        .map(|(part_code, location_code, on_hand)| {
            Ok(StockRow {
                part_code,
                location_code,
                on_hand: Qty::new(on_hand).map_err(|e| corrupt("stock_balance", e.to_string()))?,
            })
        })
        .collect()
}

async fn credit(c: Conn<'_>) -> Result<Vec<CreditRow>, ExportError> {
    let raw = sql_fetch_all!(
        (String, i64, String),
        c,
        "select l.code, a.limit_minor, a.currency from credit_accounts a
         join locations l on l.id = a.station_id order by l.id"
    )?;
    Ok(raw
        .into_iter()
        .map(|(station_code, limit, currency)| CreditRow {
            station_code,
            limit: Amount::from_minor(limit),
            currency,
        })
        .collect())
}
