//! CSV import: all-or-nothing, every bad row reported as `file:line: column: why`.
//!
//! A file is read whole (master data is small) or streamed (faults), each row parsed into
//! its row struct and checked against the coding rule, the rows before it and what the
//! database already holds. Rows are written only while no bad row has been seen; reading
//! goes on to the end so that every bad row is reported, and then the transaction is
//! dropped, which rolls it back.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::bulk::{stream_into, Batch, BulkInsert, Val};
use super::kind::Kind;
use super::rows::SampleRow;
use super::rows::*;
use crate::catalog::CodingRule;
use crate::db::{Backend, Conn, Db, DbError, Tx};
use crate::network::LocationKind;
use crate::stock::{self, Movement, MovementKind, StockError};
use crate::units::{Currency, Qty};
use crate::{sql_execute, sql_fetch_all, sql_fetch_optional, sql_scalar};

/// One bad cell (or row, or file) with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub column: String,
    pub why: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.column, self.why
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} bad row(s); nothing was imported:\n{}", .0.len(), list(.0))]
    BadRows(Vec<RowError>),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a directory of interchange files", .0.display())]
    NotADirectory(PathBuf),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Stock(#[from] StockError),
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        ImportError::Db(DbError::Sqlx(e))
    }
}

fn list(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many rows of which file went in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub kind: Kind,
    pub rows: u64,
    pub elapsed: std::time::Duration,
}

/// Imports one file in its own transaction.
pub async fn import_file(
    db: &Db,
    kind: Kind,
    path: &Path,
    rule: &CodingRule,
) -> Result<ImportSummary, ImportError> {
    let started = std::time::Instant::now();
    let mut tx = db.begin().await?;
    let rows = import_in(&mut tx, kind, path, rule).await?;
    tx.commit().await?;
    Ok(ImportSummary {
        kind,
        rows,
        elapsed: started.elapsed(),
    })
}

/// Imports every interchange file present in `dir`, in dependency order, in one
/// transaction: the whole set goes in or nothing does. Stops at the first file with bad
/// rows (later files would only repeat its consequences).
pub async fn import_dir(
    db: &Db,
    dir: &Path,
    rule: &CodingRule,
) -> Result<Vec<ImportSummary>, ImportError> {
    if !dir.is_dir() {
        return Err(ImportError::NotADirectory(dir.to_owned()));
    }
    let mut tx = db.begin().await?;
    let mut done = Vec::new();
    for kind in Kind::IN_DEPENDENCY_ORDER {
        let path = dir.join(kind.file_name());
        if path.exists() {
            let started = std::time::Instant::now();
            let rows = import_in(&mut tx, kind, &path, rule).await?;
            done.push(ImportSummary {
                kind,
                rows,
                elapsed: started.elapsed(),
            });
        }
    }
    tx.commit().await?;
    Ok(done)
}

/// Imports one file inside the caller's transaction.
pub async fn import_in(
    tx: &mut Tx,
    kind: Kind,
    path: &Path,
    rule: &CodingRule,
) -> Result<u64, ImportError> {
    let mut file = Source::open(kind, path)?;
    let refs = Refs::load(tx.conn(), kind).await?;
    let existing = existing_keys(tx.conn(), kind).await?;
    let mut ctx = Checker {
        rule,
        refs,
        seen: existing,
        errors: Vec::new(),
    };
    let (f, c) = (&mut file, &mut ctx);
    let written = match kind {
        Kind::Faults => import_faults(tx, f, c).await?,
        Kind::Stock => import_stock(tx, f, c).await?,
        Kind::Locations => {
            write_small(tx, kind, LOCATION_COLUMNS, check_locations(f, c), c).await?
        }
        Kind::Lanes => write_small(tx, kind, LANE_COLUMNS, check_all(f, c, check_lane), c).await?,
        Kind::Suppliers => {
            write_small(
                tx,
                kind,
                SUPPLIER_COLUMNS,
                check_all(f, c, check_supplier),
                c,
            )
            .await?
        }
        Kind::Parts => write_small(tx, kind, PART_COLUMNS, check_parts(f, c), c).await?,
        Kind::Prices => {
            write_small(tx, kind, PRICE_COLUMNS, check_all(f, c, check_price), c).await?
        }
        Kind::Fits => write_small(tx, kind, FIT_COLUMNS, check_all(f, c, check_fit), c).await?,
        Kind::Equipment => {
            write_small(
                tx,
                kind,
                EQUIPMENT_COLUMNS,
                check_all(f, c, check_equipment),
                c,
            )
            .await?
        }
        Kind::PeakSeason => {
            write_small(tx, kind, PEAK_COLUMNS, check_all(f, c, check_peak), c).await?
        }
        Kind::Credit => {
            write_small(tx, kind, CREDIT_COLUMNS, check_all(f, c, check_credit), c).await?
        }
    };
    if !ctx.errors.is_empty() {
        return Err(ImportError::BadRows(ctx.errors));
    }
    Ok(written)
}

/// An open CSV file whose header has been checked.
struct Source {
    name: String,
    reader: csv::Reader<BufReader<File>>,
    header: csv::StringRecord,
    /// Reused for every row, so reading allocates nothing per row.
    record: csv::StringRecord,
}

impl Source {
    fn open(kind: Kind, path: &Path) -> Result<Source, ImportError> {
        let io = |source| ImportError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(BufReader::with_capacity(1 << 16, file));
        let name = path.display().to_string();
        let header = reader.headers().cloned().map_err(|e| {
            ImportError::BadRows(vec![RowError {
                file: name.clone(),
                line: 1,
                column: "(header)".into(),
                why: e.to_string(),
            }])
        })?;
        let expected = kind.header();
        if header.iter().ne(expected.iter().copied()) {
            return Err(ImportError::BadRows(vec![RowError {
                file: name,
                line: 1,
                column: "(header)".into(),
                why: format!(
                    "columns must be exactly `{}`, found `{}`",
                    expected.join(","),
                    header.iter().collect::<Vec<_>>().join(",")
                ),
            }]));
        }
        Ok(Source {
            name,
            reader,
            header,
            record: csv::StringRecord::new(),
        })
    }

    /// The next row parsed as `R`, with its line; a row that does not parse is recorded in
    /// `errors`, one error per bad cell, and yields `Some((line, None))`.
    fn next_row<R: DeserializeOwned + SampleRow>(
        &mut self,
        errors: &mut Vec<RowError>,
    ) -> Option<(u64, Option<R>)> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                match self.record.deserialize::<R>(Some(&self.header)) {
                    Ok(row) => Some((line, Some(row))),
                    Err(e) => {
                        errors.extend(self.bad_cells::<R>(line, &self.record, &e));
                        Some((line, None))
                    }
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    file: self.name.clone(),
                    line,
                    column: "(row)".into(),
                    why: csv_why(&e),
                });
                // A malformed record (e.g. wrong field count) does not stop the reader.
                Some((line, None))
            }
        }
    }

    /// Finds the cells that make `record` fail: each cell is tried in place of the same
    /// cell of a valid sample row. (serde's custom errors do not say which field failed.)
    fn bad_cells<R: DeserializeOwned + SampleRow>(
        &self,
        line: u64,
        record: &csv::StringRecord,
        whole: &csv::Error,
    ) -> Vec<RowError> {
        let sample = sample_record::<R>();
        let mut found = Vec::new();
        for (i, value) in record.iter().enumerate() {
            let probe: csv::StringRecord = sample
                .iter()
                .enumerate()
                .map(|(j, cell)| if i == j { value } else { cell })
                .collect();
            if let Err(e) = probe.deserialize::<R>(Some(&self.header)) {
                found.push(RowError {
                    file: self.name.clone(),
                    line,
                    column: self.header.get(i).unwrap_or("(row)").to_owned(),
                    why: cell_why(value, &e),
                });
            }
        }
        if found.is_empty() {
            found.push(RowError {
                file: self.name.clone(),
                line,
                column: "(row)".into(),
                why: csv_why(whole),
            });
        }
        found
    }
}

/// The sample row of `R` as the CSV record it would be written as.
fn sample_record<R: SampleRow>() -> csv::StringRecord {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let bytes = out
        .serialize(R::sample())
        .ok()
        .and_then(|()| out.into_inner().ok())
        .unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    let mut record = csv::StringRecord::new();
    let _ = reader.read_record(&mut record);
    record
}

/// Why one cell does not parse, in words a spreadsheet user can act on.
fn cell_why(value: &str, e: &csv::Error) -> String {
    let detail = match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => err.kind().to_string(),
        _ => e.to_string(),
    };
    let looks_like_date = value.len() == 10 && value.as_bytes().get(4) == Some(&b'-');
    if detail.starts_with("input ") || detail.starts_with("premature end") || looks_like_date {
        return format!("'{value}' is not a valid date YYYY-MM-DD ({detail})");
    }
    if detail.contains(&format!("'{value}'")) || value.is_empty() {
        detail
    } else {
        format!("'{value}': {detail}")
    }
}

fn csv_why(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".into(),
        _ => e.to_string(),
    }
}

/// What a file may refer to, loaded once per file from the transaction.
#[derive(Default)]
struct Refs {
    locations: HashMap<String, LocationRef>,
    regions: HashSet<String>,
    suppliers: HashMap<String, i64>,
    parts: HashMap<String, i64>,
    equipment: HashMap<String, i64>,
    next_id: i64,
}

#[derive(Clone)]
struct LocationRef {
    id: i64,
    kind: LocationKind,
}

impl Refs {
    async fn load(mut conn: Conn<'_>, kind: Kind) -> Result<Refs, DbError> {
        let mut refs = Refs::default();
        let needs_locations = !matches!(
            kind,
            Kind::Suppliers | Kind::Parts | Kind::Prices | Kind::Fits
        );
        if needs_locations {
            let rows = sql_fetch_all!(
                (i64, String, String, Option<String>),
                conn.reborrow(),
                "select id, code, kind, region from locations"
            )?;
            for (id, code, kind, region) in rows {
                let kind = match kind.as_str() {
                    "central" => LocationKind::Central,
                    "regional" => LocationKind::Regional,
                    _ => LocationKind::Station,
                };
                refs.regions.extend(region);
                refs.locations.insert(code, LocationRef { id, kind });
            }
        }
        if kind == Kind::Parts {
            refs.suppliers = code_ids(conn.reborrow(), "select code, id from suppliers").await?;
        }
        if matches!(
            kind,
            Kind::Parts | Kind::Prices | Kind::Fits | Kind::Faults | Kind::Stock
        ) {
            refs.parts = code_ids(conn.reborrow(), "select code, id from parts").await?;
        }
        if kind == Kind::Faults {
            refs.equipment = code_ids(conn.reborrow(), "select serial, id from equipment").await?;
        }
        if let Some(table) = explicit_id_table(kind) {
            let max = sql_scalar!(
                i64,
                conn.reborrow(),
                &format!("select cast(coalesce(max(id), 0) as bigint) from {table}")
            )?;
            refs.next_id = max + 1;
        }
        Ok(refs)
    }
}

async fn code_ids(conn: Conn<'_>, sql: &str) -> Result<HashMap<String, i64>, DbError> {
    Ok(sql_fetch_all!((String, i64), conn, sql)?
        .into_iter()
        .collect())
}

/// Tables whose rows refer to rows of the same file get their ids assigned here, so a
/// reference can be resolved before the row it points to is written.
fn explicit_id_table(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Locations => Some("locations"),
        Kind::Parts => Some("parts"),
        _ => None,
    }
}

/// Natural keys already present, in the same text form `Checker` builds for file rows.
async fn existing_keys(conn: Conn<'_>, kind: Kind) -> Result<HashSet<String>, DbError> {
    let sql = match kind {
        Kind::Locations => "select code from locations",
        Kind::Suppliers => "select code from suppliers",
        Kind::Parts => "select code from parts",
        Kind::Equipment => "select serial from equipment",
        Kind::Lanes => {
            "select f.code || '|' || t.code from lanes l
             join locations f on f.id = l.from_id join locations t on t.id = l.to_id"
        }
        Kind::Prices => {
            "select p.code || '|' || x.kind || '|' || cast(x.effective_from as text)
             from prices x join parts p on p.id = x.part_id"
        }
        Kind::Fits => {
            "select p.code || '|' || f.equipment_model from fits f join parts p on p.id = f.part_id"
        }
        Kind::PeakSeason => {
            "select region || '|' || equipment_model || '|' || cast(month as text) from peak_season"
        }
        Kind::Credit => {
            "select l.code from credit_accounts c join locations l on l.id = c.station_id"
        }
        Kind::Stock => {
            "select idempotency_key from stock_ledger where idempotency_key like 'opening:%'"
        }
        // Fault lines are many; their key is enforced by the database (faults_line_key).
        Kind::Faults => return Ok(HashSet::new()),
    };
    Ok(sql_fetch_all!((String,), conn, sql)?
        .into_iter()
        .map(|(key,)| key)
        .collect())
}

/// Row checks for one file.
struct Checker<'r> {
    rule: &'r CodingRule,
    refs: Refs,
    /// Natural keys already in the database or earlier in this file.
    seen: HashSet<String>,
    errors: Vec<RowError>,
}

/// The checks of one row: collects every problem it has.
struct RowCheck<'c> {
    file: &'c str,
    line: u64,
    errors: &'c mut Vec<RowError>,
    bad: bool,
}

impl RowCheck<'_> {
    fn bad(&mut self, column: &str, why: impl fmt::Display) {
        self.bad = true;
        self.errors.push(RowError {
            file: self.file.to_owned(),
            line: self.line,
            column: column.to_owned(),
            why: why.to_string(),
        });
    }

    fn non_empty(&mut self, column: &str, value: &str) {
        if value.trim().is_empty() {
            self.bad(column, "must not be empty");
        }
    }

    fn finite_non_negative(&mut self, column: &str, value: f64) {
        if !value.is_finite() || value < 0.0 {
            self.bad(column, format!("{value} must be a number ≥ 0"));
        }
    }

    fn currency(&mut self, column: &str, value: &str) {
        if let Err(e) = value.parse::<Currency>() {
            self.bad(column, e);
        }
    }
}

impl Checker<'_> {
    fn row<'c>(
        &'c mut self,
        file: &'c str,
        line: u64,
    ) -> (
        RowCheck<'c>,
        &'c mut Refs,
        &'c mut HashSet<String>,
        &'c CodingRule,
    ) {
        (
            RowCheck {
                file,
                line,
                errors: &mut self.errors,
                bad: false,
            },
            &mut self.refs,
            &mut self.seen,
            self.rule,
        )
    }
}

fn unique(
    check: &mut RowCheck<'_>,
    seen: &mut HashSet<String>,
    column: &str,
    key: String,
    what: &str,
) {
    if !seen.insert(key.clone()) {
        check.bad(
            column,
            format!("{what} '{key}' already exists (in the database or earlier in this file)"),
        );
    }
}

fn location<'a>(
    check: &mut RowCheck<'_>,
    refs: &'a Refs,
    column: &str,
    code: &str,
) -> Option<&'a LocationRef> {
    let found = refs.locations.get(code);
    if found.is_none() {
        check.bad(column, format!("location '{code}' does not exist"));
    }
    found
}

fn station(check: &mut RowCheck<'_>, refs: &Refs, column: &str, code: &str) -> Option<i64> {
    let loc = location(check, refs, column, code)?;
    if loc.kind != LocationKind::Station {
        check.bad(
            column,
            format!(
                "'{code}' is a {} location, not a station",
                loc.kind.as_str()
            ),
        );
        return None;
    }
    Some(loc.id)
}

fn part(check: &mut RowCheck<'_>, refs: &Refs, column: &str, code: &str) -> Option<i64> {
    let found = refs.parts.get(code).copied();
    if found.is_none() {
        check.bad(column, format!("part '{code}' does not exist"));
    }
    found
}

/// The table each master-data kind is written to.
fn table_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Locations => "locations",
        Kind::Lanes => "lanes",
        Kind::Suppliers => "suppliers",
        Kind::Parts => "parts",
        Kind::Prices => "prices",
        Kind::Fits => "fits",
        Kind::Equipment => "equipment",
        Kind::Faults => "faults",
        Kind::PeakSeason => "peak_season",
        Kind::Stock => "stock_balance",
        Kind::Credit => "credit_accounts",
    }
}

/// Master-data files (small, read whole and checked first): bulk-written if all is well.
async fn write_small(
    tx: &mut Tx,
    kind: Kind,
    columns: &'static [&'static str],
    rows: Vec<Vec<Val>>,
    ctx: &Checker<'_>,
) -> Result<u64, ImportError> {
    if !ctx.errors.is_empty() {
        return Ok(0);
    }
    let table = table_of(kind);
    let mut bulk = BulkInsert::new(table, columns);
    for row in rows {
        bulk.push(tx.conn(), row).await?;
    }
    let written = bulk.finish(tx.conn()).await?;
    if let (Some(table), Conn::Postgres(c)) = (explicit_id_table(kind), tx.conn()) {
        // Ids were assigned here; move the identity sequence past them.
        sqlx::query(&format!(
            "select setval(pg_get_serial_sequence('{table}', 'id'), (select max(id) from {table}))"
        ))
        .execute(c)
        .await?;
    }
    Ok(written)
}

/// Reads every row of `file` and checks it with `check`.
fn check_all<R: DeserializeOwned + SampleRow>(
    file: &mut Source,
    ctx: &mut Checker<'_>,
    check: fn(R, &mut RowCheck<'_>, &mut Refs, &mut HashSet<String>, &CodingRule) -> Vec<Val>,
) -> Vec<Vec<Val>> {
    let mut out = Vec::new();
    let name = file.name.clone();
    while let Some((line, row)) = file.next_row::<R>(&mut ctx.errors) {
        let Some(row) = row else { continue };
        let (mut rc, refs, seen, rule) = ctx.row(&name, line);
        let values = check(row, &mut rc, refs, seen, rule);
        if !rc.bad {
            out.push(values);
        }
    }
    out
}

const LOCATION_COLUMNS: &[&str] = &[
    "id",
    "code",
    "name",
    "kind",
    "parent_id",
    "region",
    "city",
    "key_city",
    "remote",
    "lat",
    "lon",
    "capacity_m3",
];

/// Locations may name a parent further down the file, so ids are assigned in a first pass.
fn check_locations(file: &mut Source, ctx: &mut Checker<'_>) -> Vec<Vec<Val>> {
    let mut rows = Vec::new();
    while let Some((line, row)) = file.next_row::<LocationRow>(&mut ctx.errors) {
        if let Some(row) = row {
            rows.push((line, row));
        }
    }
    for (_, row) in &rows {
        if !ctx.refs.locations.contains_key(&row.code) {
            let id = ctx.refs.next_id;
            ctx.refs.next_id += 1;
            ctx.refs
                .locations
                .insert(row.code.clone(), LocationRef { id, kind: row.kind });
        }
    }
    let name = file.name.clone();
    let mut out = Vec::new();
    for (line, row) in rows {
        let (mut rc, refs, seen, _) = ctx.row(&name, line);
        rc.non_empty("code", &row.code);
        rc.non_empty("name", &row.name);
        unique(&mut rc, seen, "code", row.code.clone(), "location");
        let parent_id = match (&row.parent_code, row.kind) {
            (None, LocationKind::Central) => None,
            (Some(_), LocationKind::Central) => {
                rc.bad("parent_code", "a central warehouse has no parent");
                None
            }
            (None, _) => {
                rc.bad(
                    "parent_code",
                    format!("a {} location needs a parent", row.kind.as_str()),
                );
                None
            }
            (Some(parent), _) => {
                let found = location(&mut rc, refs, "parent_code", parent).cloned();
                if let Some(p) = &found {
                    if p.kind == LocationKind::Station {
                        rc.bad(
                            "parent_code",
                            format!("'{parent}' is a station; stations have no children"),
                        );
                    }
                }
                found.map(|p| p.id)
            }
        };
        if row.kind == LocationKind::Station {
            if row.region.as_deref().is_none_or(|r| r.trim().is_empty()) {
                rc.bad("region", "a station needs a region");
            }
            if row.city.as_deref().is_none_or(|c| c.trim().is_empty()) {
                rc.bad("city", "a station needs a city");
            }
        }
        if !(-90.0..=90.0).contains(&row.lat) {
            rc.bad("lat", format!("{} is not a latitude", row.lat));
        }
        if !(-180.0..=180.0).contains(&row.lon) {
            rc.bad("lon", format!("{} is not a longitude", row.lon));
        }
        rc.finite_non_negative("capacity_m3", row.capacity_m3);
        if rc.bad {
            continue;
        }
        let id = refs.locations.get(&row.code).map_or(0, |l| l.id);
        out.push(vec![
            Val::Int(id),
            Val::Text(row.code),
            Val::Text(row.name),
            Val::Text(row.kind.as_str().into()),
            Val::OptInt(parent_id),
            Val::OptText(row.region),
            Val::OptText(row.city),
            Val::Bool(row.key_city),
            Val::Bool(row.remote),
            Val::Float(row.lat),
            Val::Float(row.lon),
            Val::Float(row.capacity_m3),
        ]);
    }
    out
}

const LANE_COLUMNS: &[&str] = &[
    "from_id",
    "to_id",
    "lead_time_days",
    "cost_per_unit_minor",
    "currency",
];

fn check_lane(
    row: LaneRow,
    rc: &mut RowCheck<'_>,
    refs: &mut Refs,
    seen: &mut HashSet<String>,
    _: &CodingRule,
) -> Vec<Val> {
    let from = location(rc, refs, "from_code", &row.from_code).map(|l| l.id);
    let to = location(rc, refs, "to_code", &row.to_code).map(|l| l.id);
    if row.from_code == row.to_code {
        rc.bad("to_code", "a lane must join two different locations");
    }
    if row.cost_per_unit.minor() < 0 {
        rc.bad("cost_per_unit", "must not be negative");
    }
    rc.currency("currency", &row.currency);
    unique(
        rc,
        seen,
        "to_code",
        format!("{}|{}", row.from_code, row.to_code),
        "lane",
    );
    vec![
        Val::Int(from.unwrap_or(0)),
        Val::Int(to.unwrap_or(0)),
        Val::Int(row.lead_time_days.into()),
        Val::Int(row.cost_per_unit.minor()),
        Val::Text(row.currency),
    ]
}

const SUPPLIER_COLUMNS: &[&str] = &["code", "name"];

fn check_supplier(
    row: SupplierRow,
    rc: &mut RowCheck<'_>,
    _: &mut Refs,
    seen: &mut HashSet<String>,
    _: &CodingRule,
) -> Vec<Val> {
    rc.non_empty("code", &row.code);
    rc.non_empty("name", &row.name);
    unique(rc, seen, "code", row.code.clone(), "supplier");
    vec![Val::Text(row.code), Val::Text(row.name)]
}

const PART_COLUMNS: &[&str] = &[
    "id",
    "code",
    "name",
    "uom",
    "product_line",
    "criticality",
    "wear_part",
    "volume_l",
    "weight_kg",
    "supplier_id",
    "lead_time_days",
    "moq",
    "pack_size",
    "replaced_by_id",
    "replaced_on",
];

/// Parts may be replaced by parts further down the file: ids first, then the checks,
/// then a walk of every supersession chain to refuse cycles.
fn check_parts(file: &mut Source, ctx: &mut Checker<'_>) -> Vec<Vec<Val>> {
    let mut rows = Vec::new();
    while let Some((line, row)) = file.next_row::<PartRow>(&mut ctx.errors) {
        if let Some(row) = row {
            rows.push((line, row));
        }
    }
    for (_, row) in &rows {
        if !ctx.refs.parts.contains_key(&row.code) {
            let id = ctx.refs.next_id;
            ctx.refs.next_id += 1;
            ctx.refs.parts.insert(row.code.clone(), id);
        }
    }
    let successor: HashMap<&str, &str> = rows
        .iter()
        .filter_map(|(_, r)| Some((r.code.as_str(), r.replaced_by.as_deref()?)))
        .collect();
    let name = file.name.clone();
    let mut out = Vec::new();
    for (line, row) in &rows {
        let (mut rc, refs, seen, rule) = ctx.row(&name, *line);
        if let Err(e) = rule.parse(&row.code) {
            rc.bad("code", e);
        }
        unique(&mut rc, seen, "code", row.code.clone(), "part");
        rc.non_empty("name", &row.name);
        rc.non_empty("uom", &row.uom);
        rc.non_empty("product_line", &row.product_line);
        rc.finite_non_negative("volume_l", row.volume_l);
        rc.finite_non_negative("weight_kg", row.weight_kg);
        let supplier = refs.suppliers.get(&row.supplier_code).copied();
        if supplier.is_none() {
            rc.bad(
                "supplier_code",
                format!("supplier '{}' does not exist", row.supplier_code),
            );
        }
        if row.pack_size == 0 {
            rc.bad("pack_size", "must be at least 1");
        }
        let replaced_by = match (&row.replaced_by, row.replaced_on) {
            (None, None) => None,
            (Some(_), None) => {
                rc.bad(
                    "replaced_on",
                    "a replaced part needs the date of its replacement",
                );
                None
            }
            (None, Some(_)) => {
                rc.bad("replaced_by", "replaced_on is set but replaced_by is empty");
                None
            }
            (Some(next), Some(_)) => {
                if next == &row.code {
                    rc.bad("replaced_by", "a part cannot replace itself");
                } else if chain_loops(&successor, &row.code) {
                    rc.bad(
                        "replaced_by",
                        format!("the supersession chain from '{}' loops", row.code),
                    );
                }
                part(&mut rc, refs, "replaced_by", next)
            }
        };
        if rc.bad {
            continue;
        }
        out.push(vec![
            Val::Int(refs.parts.get(&row.code).copied().unwrap_or(0)),
            Val::Text(row.code.clone()),
            Val::Text(row.name.clone()),
            Val::Text(row.uom.clone()),
            Val::Text(row.product_line.clone()),
            Val::Text(row.criticality.as_str().into()),
            Val::Bool(row.wear_part),
            Val::Float(row.volume_l),
            Val::Float(row.weight_kg),
            Val::Int(supplier.unwrap_or(0)),
            Val::Int(row.lead_time_days.into()),
            Val::Int(row.moq.into()),
            Val::Int(row.pack_size.into()),
            Val::OptInt(replaced_by),
            Val::OptDate(row.replaced_on),
        ]);
    }
    out
}

/// True when following replaced_by from `start` comes back to a part already visited.
fn chain_loops(successor: &HashMap<&str, &str>, start: &str) -> bool {
    let mut visited = HashSet::from([start]);
    let mut at = start;
    while let Some(&next) = successor.get(at) {
        if !visited.insert(next) {
            return true;
        }
        at = next;
    }
    false
}

const PRICE_COLUMNS: &[&str] = &[
    "part_id",
    "kind",
    "amount_minor",
    "currency",
    "effective_from",
];

fn check_price(
    row: PriceRow,
    rc: &mut RowCheck<'_>,
    refs: &mut Refs,
    seen: &mut HashSet<String>,
    _: &CodingRule,
) -> Vec<Val> {
    let part_id = part(rc, refs, "part_code", &row.part_code);
    if row.amount.minor() < 0 {
        rc.bad("amount", "must not be negative");
    }
    rc.currency("currency", &row.currency);
    let key = format!(
        "{}|{}|{}",
        row.part_code,
        row.kind.as_str(),
        row.effective_from
    );
    unique(rc, seen, "effective_from", key, "price");
    vec![
        Val::Int(part_id.unwrap_or(0)),
        Val::Text(row.kind.as_str().into()),
        Val::Int(row.amount.minor()),
        Val::Text(row.currency),
        Val::Date(row.effective_from),
    ]
}

const FIT_COLUMNS: &[&str] = &["part_id", "equipment_model"];

fn check_fit(
    row: FitRow,
    rc: &mut RowCheck<'_>,
    refs: &mut Refs,
    seen: &mut HashSet<String>,
    _: &CodingRule,
) -> Vec<Val> {
    let part_id = part(rc, refs, "part_code", &row.part_code);
    rc.non_empty("equipment_model", &row.equipment_model);
    unique(
        rc,
        seen,
        "equipment_model",
        format!("{}|{}", row.part_code, row.equipment_model),
        "fit",
    );
    vec![
        Val::Int(part_id.unwrap_or(0)),
        Val::Text(row.equipment_model),
    ]
}

const EQUIPMENT_COLUMNS: &[&str] = &[
    "serial",
    "model",
    "product_line",
    "station_id",
    "delivered_on",
    "warranty_until",
];

fn check_equipment(
    row: EquipmentRow,
    rc: &mut RowCheck<'_>,
    refs: &mut Refs,
    seen: &mut HashSet<String>,
    _: &CodingRule,
) -> Vec<Val> {
    rc.non_empty("serial", &row.serial);
    rc.non_empty("model", &row.model);
    rc.non_empty("product_line", &row.product_line);
    unique(rc, seen, "serial", row.serial.clone(), "equipment serial");
    let station_id = station(rc, refs, "station_code", &row.station_code);
    if row.warranty_until < row.delivered_on {
        rc.bad("warranty_until", "is before delivered_on");
    }
    vec![
        Val::Text(row.serial),
        Val::Text(row.model),
        Val::Text(row.product_line),
        Val::Int(station_id.unwrap_or(0)),
        Val::Date(row.delivered_on),
        Val::Date(row.warranty_until),
    ]
}

const PEAK_COLUMNS: &[&str] = &["region", "equipment_model", "month", "usage_index"];

fn check_peak(
    row: PeakSeasonRow,
    rc: &mut RowCheck<'_>,
    refs: &mut Refs,
    seen: &mut HashSet<String>,
    _: &CodingRule,
) -> Vec<Val> {
    if !refs.regions.contains(&row.region) {
        rc.bad(
            "region",
            format!("no location is in region '{}'", row.region),
        );
    }
    rc.non_empty("equipment_model", &row.equipment_model);
    if !(1..=12).contains(&row.month) {
        rc.bad("month", format!("{} is not a month 1–12", row.month));
    }
    rc.finite_non_negative("usage_index", row.usage_index);
    let key = format!("{}|{}|{}", row.region, row.equipment_model, row.month);
    unique(rc, seen, "month", key, "peak-season index");
    vec![
        Val::Text(row.region),
        Val::Text(row.equipment_model),
        Val::Int(row.month.into()),
        Val::Float(row.usage_index),
    ]
}

const CREDIT_COLUMNS: &[&str] = &["station_id", "limit_minor", "currency"];

fn check_credit(
    row: CreditRow,
    rc: &mut RowCheck<'_>,
    refs: &mut Refs,
    seen: &mut HashSet<String>,
    _: &CodingRule,
) -> Vec<Val> {
    let station_id = station(rc, refs, "station_code", &row.station_code);
    if row.limit.minor() < 0 {
        rc.bad("limit", "must not be negative");
    }
    rc.currency("currency", &row.currency);
    unique(
        rc,
        seen,
        "station_code",
        row.station_code.clone(),
        "credit account",
    );
    vec![
        Val::Int(station_id.unwrap_or(0)),
        Val::Int(row.limit.minor()),
        Val::Text(row.currency),
    ]
}

/// The faults table's columns as the bulk paths write them (import, the rolling replay).
pub const FAULT_COLUMNS: &[&str] = &[
    "work_order",
    "opened_on",
    "equipment_id",
    "station_id",
    "category",
    "fault_level",
    "part_id",
    "qty",
    "warranty",
];

/// Faults are streamed: checked and written row by row, so memory does not grow with the
/// file. Duplicate lines are caught by the database's `faults_line_key`; when that fires,
/// the writes are undone to a savepoint and the file is scanned again to name the lines.
async fn import_faults(
    tx: &mut Tx,
    file: &mut Source,
    ctx: &mut Checker<'_>,
) -> Result<u64, ImportError> {
    sql_execute!(tx.conn(), "savepoint faults_import")?;
    let rebuild = rebuild_indexes_for(tx, file).await?;
    if rebuild {
        for (name, _) in FAULT_INDEXES {
            sql_execute!(tx.conn(), &format!("drop index {name}"))?;
        }
        if tx.backend() == Backend::Postgres {
            // Deferred checks from the files loaded before must fire before an ALTER TABLE.
            sql_execute!(tx.conn(), "set constraints all immediate")?;
            for (name, _) in FAULT_FOREIGN_KEYS {
                sql_execute!(
                    tx.conn(),
                    &format!("alter table faults drop constraint {name}")
                )?;
            }
        }
    }
    let name = file.name.clone();
    let fill = |batch: &mut Batch| {
        while let Some((line, row)) = file.next_row::<FaultRow>(&mut ctx.errors) {
            let Some(row) = row else { continue };
            let (mut rc, refs, _, _) = ctx.row(&name, line);
            let values = check_fault(row, &mut rc, refs);
            // After the first bad row nothing will be written: only look for more.
            if rc.bad || !ctx.errors.is_empty() {
                continue;
            }
            batch.push(values);
            if batch.is_full() {
                return true;
            }
        }
        false
    };
    let mut outcome = stream_into(tx.conn(), "faults", FAULT_COLUMNS, fill).await;
    if !ctx.errors.is_empty() {
        return Ok(0);
    }
    if rebuild && outcome.is_ok() {
        if let Err(e) = restore_fault_constraints(tx).await {
            outcome = Err(e);
        }
    }
    match outcome {
        Ok(written) => Ok(written),
        Err(e) if e.constraint() == Some("faults_line_key") || is_unique_violation(&e) => {
            sql_execute!(tx.conn(), "rollback to savepoint faults_import")?;
            ctx.errors.extend(duplicate_fault_lines(tx, &name).await?);
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}

/// The faults table's indexes as the migrations create them.
const FAULT_INDEXES: [(&str, &str); 2] = [
    (
        "faults_line_key",
        "create unique index faults_line_key on faults (work_order, part_id)",
    ),
    (
        "faults_part_station_idx",
        "create index faults_part_station_idx on faults (part_id, station_id)",
    ),
];

/// The faults table's foreign keys on PostgreSQL. Checked row by row they cost three
/// trigger queries per line (measured: 2 M lines at 20 k rows/s even with COPY); re-adding
/// them after the load validates all lines in one join each. The importer has already
/// checked every reference, so this is a second line of defence, not the first.
const FAULT_FOREIGN_KEYS: [(&str, &str); 3] = [
    (
        "faults_equipment_fkey",
        "foreign key (equipment_id) references equipment (id)",
    ),
    (
        "faults_station_fkey",
        "foreign key (station_id) references locations (id)",
    ),
    (
        "faults_part_fkey",
        "foreign key (part_id) references parts (id)",
    ),
];

/// Recreates what a bulk load dropped: the indexes everywhere, the foreign keys on PostgreSQL.
async fn restore_fault_constraints(tx: &mut Tx) -> Result<(), DbError> {
    for (_, create) in FAULT_INDEXES {
        sql_execute!(tx.conn(), create)?;
    }
    if tx.backend() == Backend::Postgres {
        for (name, definition) in FAULT_FOREIGN_KEYS {
            let sql = format!("alter table faults add constraint {name} {definition}");
            sql_execute!(tx.conn(), &sql)?;
        }
    }
    Ok(())
}

/// Whether to drop the faults indexes for this load and rebuild them after: worth it when
/// the file adds more rows than the table holds. Rows arriving in random key order
/// otherwise update each index at a random page, and once the indexes outgrow the cache
/// every row costs page misses (measured: 2 M lines at 18 k rows/s on SQLite that way).
async fn rebuild_indexes_for(tx: &mut Tx, file: &Source) -> Result<bool, DbError> {
    /// Bytes of a typical fault line; only the order of magnitude matters here.
    const BYTES_PER_LINE: u64 = 90;
    let incoming = std::fs::metadata(&file.name).map_or(0, |m| m.len()) / BYTES_PER_LINE;
    let (existing,) =
        sql_fetch_optional!((i64,), tx.conn(), "select count(*) from faults")?.unwrap_or((0,));
    Ok(incoming > 100_000 && incoming > u64::try_from(existing).unwrap_or(0))
}

fn is_unique_violation(e: &DbError) -> bool {
    matches!(e, DbError::Sqlx(sqlx::Error::Database(d)) if d.is_unique_violation())
}

fn check_fault(row: FaultRow, rc: &mut RowCheck<'_>, refs: &mut Refs) -> Vec<Val> {
    rc.non_empty("work_order", &row.work_order);
    let equipment_id = refs.equipment.get(&row.serial).copied();
    if equipment_id.is_none() {
        rc.bad(
            "serial",
            format!("equipment '{}' does not exist", row.serial),
        );
    }
    let station_id = station(rc, refs, "station_code", &row.station_code);
    if !is_fault_level(&row.fault_level) {
        rc.bad(
            "fault_level",
            format!("'{}' is not a fault level like A1 or C3", row.fault_level),
        );
    }
    let part_id = match &row.part_code {
        Some(code) => {
            if row.qty == Qty::ZERO {
                rc.bad("qty", "a replaced part needs a quantity of at least 1");
            }
            part(rc, refs, "part_code", code)
        }
        None => {
            if row.qty != Qty::ZERO {
                rc.bad("qty", "a line with no part must have qty 0");
            }
            None
        }
    };
    vec![
        Val::Text(row.work_order),
        Val::Date(row.opened_on),
        Val::Int(equipment_id.unwrap_or(0)),
        Val::Int(station_id.unwrap_or(0)),
        Val::Text(row.category.as_str().into()),
        Val::Text(row.fault_level),
        Val::OptInt(part_id),
        Val::Int(row.qty.get()),
        Val::Bool(row.warranty),
    ]
}

/// A fault level is a capital letter, optionally followed by one digit (A, B2, C3).
fn is_fault_level(level: &str) -> bool {
    let bytes = level.as_bytes();
    match bytes {
        [letter] => letter.is_ascii_uppercase(),
        [letter, digit] => letter.is_ascii_uppercase() && digit.is_ascii_digit(),
        _ => false,
    }
}

/// Names the lines of a faults file that repeat a (work order, part) imported before or
/// earlier in the file. Runs only after the database refused a duplicate, so the map it
/// keeps costs memory only on that error path.
async fn duplicate_fault_lines(tx: &mut Tx, path: &str) -> Result<Vec<RowError>, ImportError> {
    let mut file = Source::open(Kind::Faults, Path::new(path))?;
    let mut first_line: HashMap<(String, String), u64> = HashMap::new();
    let mut errors = Vec::new();
    let mut ignored = Vec::new();
    let bad = |line, why| RowError {
        file: path.to_owned(),
        line,
        column: "part_code".into(),
        why,
    };
    while let Some((line, row)) = file.next_row::<FaultRow>(&mut ignored) {
        let Some(FaultRow {
            work_order,
            part_code: Some(part),
            ..
        }) = row
        else {
            continue;
        };
        match first_line.get(&(work_order.clone(), part.clone())) {
            Some(first) => errors.push(bad(
                line,
                format!("work order '{work_order}' already lists part '{part}' (line {first})"),
            )),
            None => {
                first_line.insert((work_order, part), line);
            }
        }
    }
    let work_orders: Vec<&str> = first_line
        .keys()
        .map(|(w, _)| w.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for chunk in work_orders.chunks(500) {
        for (work_order, part) in imported_lines(tx.conn(), chunk).await? {
            if let Some(&line) = first_line.get(&(work_order.clone(), part.clone())) {
                errors.push(bad(line, format!("work order '{work_order}' already lists part '{part}' from an earlier import")));
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    Ok(errors)
}

/// The (work order, part code) lines already stored for these work orders.
async fn imported_lines(
    conn: Conn<'_>,
    work_orders: &[&str],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let marks: Vec<String> = (1..=work_orders.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "select f.work_order, p.code from faults f join parts p on p.id = f.part_id where f.work_order in ({})",
        marks.join(", ")
    );
    match conn {
        Conn::Sqlite(c) => {
            let mut q = sqlx::query_as::<_, (String, String)>(&sql);
            for w in work_orders {
                q = q.bind(*w);
            }
            q.fetch_all(c).await
        }
        Conn::Postgres(c) => {
            let mut q = sqlx::query_as::<_, (String, String)>(&sql);
            for w in work_orders {
                q = q.bind(*w);
            }
            q.fetch_all(c).await
        }
    }
}

/// Opening balances: each row becomes a ledger receipt with a key naming the part and
/// location, so the same opening cannot be booked twice.
async fn import_stock(
    tx: &mut Tx,
    file: &mut Source,
    ctx: &mut Checker<'_>,
) -> Result<u64, ImportError> {
    let name = file.name.clone();
    let mut movements = Vec::new();
    while let Some((line, row)) = file.next_row::<StockRow>(&mut ctx.errors) {
        let Some(row) = row else { continue };
        let (mut rc, refs, seen, _) = ctx.row(&name, line);
        let part_id = part(&mut rc, refs, "part_code", &row.part_code);
        let location_id =
            location(&mut rc, refs, "location_code", &row.location_code).map(|l| l.id);
        let key = opening_key(&row.part_code, &row.location_code);
        unique(
            &mut rc,
            seen,
            "location_code",
            key.clone(),
            "opening balance",
        );
        if let (false, Some(part_id), Some(location_id)) = (rc.bad, part_id, location_id) {
            if row.on_hand > Qty::ZERO {
                movements.push(Movement {
                    kind: MovementKind::Receipt,
                    part_id,
                    location_id,
                    qty: row.on_hand,
                    idempotency_key: key,
                    reference: Some("opening balance".into()),
                    reason: None,
                    actor: "import".into(),
                });
            }
        }
    }
    if !ctx.errors.is_empty() {
        return Ok(0);
    }
    for movement in &movements {
        stock::append(tx, movement).await?;
    }
    Ok(movements.len() as u64)
}

pub(crate) fn opening_key(part_code: &str, location_code: &str) -> String {
    format!("opening:{part_code}@{location_code}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_levels_are_a_letter_and_an_optional_digit() {
        for ok in ["A", "A1", "C3", "B9"] {
            assert!(is_fault_level(ok), "{ok}");
        }
        for bad in ["", "a1", "A12", "1A", "AB"] {
            assert!(!is_fault_level(bad), "{bad}");
        }
    }

    #[test]
    fn supersession_loops_are_found_however_long() {
        let chain = HashMap::from([("A", "B"), ("B", "C"), ("C", "A"), ("X", "Y")]);
        assert!(chain_loops(&chain, "A"));
        assert!(chain_loops(&chain, "B"));
        assert!(!chain_loops(&chain, "X"));
        assert!(!chain_loops(&chain, "Y"));
    }
}
