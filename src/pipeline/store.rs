//! The pipeline's SQL: receipts against released lines, the arriving list, and the open
//! lines a plan run reads.
//!
//! A receipt is one transaction: a guarded update claims the quantity on the line (only a
//! released line, at its own destination, with that much still open; on SQLite it takes the
//! write lock, on PostgreSQL the row lock, so two receipts of one line queue and the second
//! sees what the first took), then the ledger moves on-order or in-transit to on-hand, then
//! the audit entry. Any refusal rolls everything back.

use chrono::NaiveDate;
use serde::Serialize;

use super::{LineKind, LineQty, OpenLine};
use crate::audit::{self, Change};
use crate::db::{Conn, Db, Tx};
use crate::service::{page_limit, Page, ServiceError};
use crate::stock::{self, Applied, Movement};
use crate::units::Qty;
use crate::{sql_fetch_all, sql_fetch_optional};

/// A receipt against one line: `qty` units of proposal `proposal_id` arrived at
/// `location_code`. A retry carries the same `idempotency_key` and moves nothing twice.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub proposal_id: i64,
    pub location_code: String,
    pub qty: Qty,
    pub idempotency_key: String,
    /// When given (a scanned label), it must be the line's part.
    pub part_code: Option<String>,
}

/// What a receipt did, and the line and the shelf as they are now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Received {
    pub proposal_id: i64,
    pub kind: LineKind,
    pub part_code: String,
    pub location_code: String,
    /// false when this idempotency key had booked this very receipt already.
    pub moved: bool,
    pub line: LineQty,
    /// released while something is open, received once nothing is.
    pub status: String,
    pub on_hand: i64,
    pub in_transit: i64,
    pub on_order: i64,
}

/// A line as the arriving list shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LineView {
    pub proposal_id: i64,
    pub plan_run_id: i64,
    pub kind: LineKind,
    pub part_code: String,
    pub part_name: String,
    /// The sender of a transfer; the supplier of a purchase.
    pub from_code: Option<String>,
    pub to_code: String,
    pub line: LineQty,
    pub order_by: NaiveDate,
    pub arrive_on: NaiveDate,
    pub released_on: Option<NaiveDate>,
    /// Expected before the list's date and not yet (fully) received.
    pub overdue: bool,
}

/// The longest idempotency key a caller may send.
const MAX_KEY_LEN: usize = 200;

/// The claim's answer: the line after the guarded update.
#[derive(sqlx::FromRow)]
struct Claimed {
    kind: String,
    part_id: i64,
    to_id: i64,
    qty: i64,
    received_qty: i64,
    status: String,
}

/// Books one receipt in its own transaction.
pub async fn receive(db: &Db, actor: &str, receipt: &Receipt) -> Result<Received, ServiceError> {
    let mut tx = db.begin().await?;
    match receive_in(&mut tx, actor, receipt).await? {
        Some(done) => {
            tx.commit().await?;
            Ok(done)
        }
        None => {
            drop(tx);
            replayed(db, receipt).await
        }
    }
}

/// Books a receipt inside `tx`; `None` when the idempotency key had booked this very
/// receipt before (the caller rolls back and reports the line as it is).
async fn receive_in(
    tx: &mut Tx,
    actor: &str,
    r: &Receipt,
) -> Result<Option<Received>, ServiceError> {
    check_key(&r.idempotency_key)?;
    if r.qty == Qty::ZERO {
        return Err(ServiceError::invalid(
            "qty",
            "must be a positive whole number",
        ));
    }
    let key = ledger_key(r);
    if earlier_receipt(tx.conn(), &key, r).await? {
        return Ok(None);
    }
    let (location_id, _) = crate::service::location_id(tx.conn(), "location", &r.location_code)
        .await
        .map_err(|_| ServiceError::not_found(format!("location '{}'", r.location_code)))?;
    let claimed = sql_fetch_optional!(
        Claimed,
        tx.conn(),
        "update proposals set received_qty = received_qty + $2,
             status = case when received_qty + $2 = qty then 'received' else status end,
             version = version + 1
         where id = $1 and status = 'released' and to_id = $3 and received_qty + $2 <= qty
         returning kind, part_id, to_id, qty, received_qty, status",
        r.proposal_id,
        r.qty.get(),
        location_id
    )?;
    let Some(line) = claimed else {
        return Err(refusal(tx.conn(), r, location_id).await);
    };
    let kind = LineKind::parse(&line.kind)
        .ok_or_else(|| ServiceError::Internal(format!("line kind '{}'", line.kind)))?;
    let part_code = part_code_of(tx.conn(), line.part_id).await?;
    if let Some(scanned) = &r.part_code {
        if *scanned != part_code {
            return Err(ServiceError::invalid(
                "part_code",
                format!(
                    "proposal {} is a line of {part_code}, not {scanned}",
                    r.proposal_id
                ),
            ));
        }
    }
    let movement = Movement {
        kind: kind.arrival(),
        part_id: line.part_id,
        location_id: line.to_id,
        qty: r.qty,
        idempotency_key: key,
        reference: Some(format!("proposal:{}", r.proposal_id)),
        reason: None,
        actor: actor.to_owned(),
    };
    let balance = match stock::append(tx, &movement).await {
        Ok(Applied::Moved(b)) => b,
        // A concurrent retry of this very receipt committed first.
        Ok(Applied::Replayed) => return Ok(None),
        Err(stock::StockError::WouldGoNegative { bucket, .. }) => {
            return Err(ServiceError::conflict(
                "qty",
                format!(
                    "proposal {}: {} has less {bucket} of {part_code} than the receipt of {}; \
                     the ledger and the line disagree",
                    r.proposal_id,
                    r.location_code,
                    r.qty.get()
                ),
            ))
        }
        Err(stock::StockError::KeyReused(_)) => return Err(key_reused()),
        Err(e) => return Err(e.into()),
    };
    let done = Received {
        proposal_id: r.proposal_id,
        kind,
        part_code,
        location_code: r.location_code.clone(),
        moved: true,
        line: LineQty::new(line.qty, line.received_qty),
        status: line.status,
        on_hand: balance.on_hand,
        in_transit: balance.in_transit,
        on_order: balance.on_order,
    };
    audit::record(
        tx,
        Change {
            actor,
            action: "proposal.receive",
            entity: "proposal",
            entity_id: r.proposal_id.to_string(),
            before: Some(serde_json::json!({
                "received": line.received_qty - r.qty.get(), "open": line.qty - line.received_qty + r.qty.get()})),
            after: serde_json::to_value(&done).ok().map(|mut v| {
                v["idempotency_key"] = r.idempotency_key.clone().into();
                v
            }),
        },
    )
    .await?;
    Ok(Some(done))
}

fn check_key(key: &str) -> Result<(), ServiceError> {
    if key.trim().is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ServiceError::invalid(
            "idempotency_key",
            format!("must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    Ok(())
}

/// Keys are scoped to their line, so one scanner's counter can serve every line.
fn ledger_key(r: &Receipt) -> String {
    format!("receipt:{}:{}", r.proposal_id, r.idempotency_key)
}

fn key_reused() -> ServiceError {
    ServiceError::conflict(
        "idempotency_key",
        "this key was already used for a different receipt of this line",
    )
}

/// Whether `key` booked this very receipt before (same line, same quantity); a key used
/// for a different quantity is refused.
async fn earlier_receipt(conn: Conn<'_>, key: &str, r: &Receipt) -> Result<bool, ServiceError> {
    let earlier = sql_fetch_optional!(
        (i64, Option<String>),
        conn,
        "select d_on_hand, reference from stock_ledger where idempotency_key = $1",
        key
    )?;
    match earlier {
        None => Ok(false),
        Some((qty, reference))
            if qty == r.qty.get()
                && reference.as_deref() == Some(&format!("proposal:{}", r.proposal_id)) =>
        {
            Ok(true)
        }
        Some(_) => Err(key_reused()),
    }
}

/// Why the guarded update claimed nothing, read after the fact.
async fn refusal(conn: Conn<'_>, r: &Receipt, location_id: i64) -> ServiceError {
    let found = sql_fetch_optional!(
        (String, i64, i64, i64, String),
        conn,
        "select p.status, p.to_id, p.qty, p.received_qty, t.code
         from proposals p join locations t on t.id = p.to_id where p.id = $1",
        r.proposal_id
    );
    let id = r.proposal_id;
    match found {
        Err(e) => e.into(),
        Ok(None) => ServiceError::not_found(format!("proposal {id}")),
        Ok(Some((_, to_id, _, _, to_code))) if to_id != location_id => ServiceError::invalid(
            "location",
            format!("proposal {id} goes to {to_code}, not {}", r.location_code),
        ),
        Ok(Some((status, _, qty, _, _))) if status == "received" => ServiceError::conflict(
            "proposal_id",
            format!("proposal {id} is closed: all {qty} received"),
        ),
        Ok(Some((status, ..))) if status != "released" => ServiceError::conflict(
            "proposal_id",
            format!("proposal {id} is {status}: only released lines can be received"),
        ),
        Ok(Some((_, _, qty, received, _))) => ServiceError::conflict(
            "qty",
            format!(
                "proposal {id} has {} open of {qty} ordered: a receipt of {} is too many",
                qty - received,
                r.qty.get()
            ),
        ),
    }
}

async fn part_code_of(conn: Conn<'_>, part_id: i64) -> Result<String, ServiceError> {
    let (code,) = sql_fetch_optional!(
        (String,),
        conn,
        "select code from parts where id = $1",
        part_id
    )?
    .ok_or_else(|| ServiceError::Internal(format!("part id {part_id} of a line")))?;
    Ok(code)
}

/// The line and shelf after an earlier, identical receipt: nothing moved now.
async fn replayed(db: &Db, r: &Receipt) -> Result<Received, ServiceError> {
    let mut conn = db.acquire().await?;
    let (kind, part_id, to_id, qty, received, status, part_code) = sql_fetch_optional!(
        (String, i64, i64, i64, i64, String, String),
        conn.conn(),
        "select p.kind, p.part_id, p.to_id, p.qty, p.received_qty, p.status, pt.code
         from proposals p join parts pt on pt.id = p.part_id where p.id = $1",
        r.proposal_id
    )?
    .ok_or_else(|| ServiceError::not_found(format!("proposal {}", r.proposal_id)))?;
    drop(conn);
    let balance = stock::balance(db, part_id, to_id).await?;
    Ok(Received {
        proposal_id: r.proposal_id,
        kind: LineKind::parse(&kind).unwrap_or(LineKind::Purchase),
        part_code,
        location_code: r.location_code.clone(),
        moved: false,
        line: LineQty::new(qty, received),
        status,
        on_hand: balance.on_hand,
        in_transit: balance.in_transit,
        on_order: balance.on_order,
    })
}

/// The header of the bulk receipt file a warehouse uploads.
pub const RECEIPTS_CSV_HEADER: &str = "proposal_id,location_code,qty,idempotency_key";

#[derive(Debug, serde::Deserialize)]
struct ReceiptRow {
    proposal_id: i64,
    location_code: String,
    qty: i64,
    idempotency_key: String,
}

/// Books every receipt of a CSV file (`proposal_id,location_code,qty,idempotency_key`) in
/// one transaction: any bad row and none is booked. Errors name the row as an editor
/// counts lines (the header is line 1) and the field.
pub async fn receive_csv(db: &Db, actor: &str, text: &str) -> Result<Vec<Received>, ServiceError> {
    receive_batch(db, actor, &parse_receipts(text)?).await
}

/// Books many receipts in one transaction, all or nothing (the rolling replay books each
/// month's arrivals this way). Errors name the item's position from 1.
pub async fn receive_all(
    db: &Db,
    actor: &str,
    receipts: Vec<Receipt>,
) -> Result<Vec<Received>, ServiceError> {
    let numbered: Vec<(u64, Receipt)> = receipts
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i as u64 + 1, r))
        .collect();
    receive_batch(db, actor, &numbered).await
}

async fn receive_batch(
    db: &Db,
    actor: &str,
    receipts: &[(u64, Receipt)],
) -> Result<Vec<Received>, ServiceError> {
    let mut tx = db.begin().await?;
    let mut done = Vec::with_capacity(receipts.len());
    let mut replays = Vec::new();
    for (line, r) in receipts {
        match receive_in(&mut tx, actor, r).await {
            Ok(Some(d)) => done.push(d),
            Ok(None) => replays.push(r),
            Err(e) => return Err(at_line(e, *line)),
        }
    }
    tx.commit().await?;
    for r in replays {
        done.push(replayed(db, r).await?);
    }
    Ok(done)
}

fn parse_receipts(text: &str) -> Result<Vec<(u64, Receipt)>, ServiceError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| ServiceError::invalid("file", e.to_string()))?
        .iter()
        .collect::<Vec<_>>()
        .join(",");
    if header != RECEIPTS_CSV_HEADER {
        return Err(ServiceError::invalid(
            "header",
            format!("expected '{RECEIPTS_CSV_HEADER}', found '{header}'"),
        ));
    }
    let mut out = Vec::new();
    for row in reader.deserialize::<ReceiptRow>() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ServiceError::invalid(&format!("line {line}"), e.to_string())
        })?;
        let line = out.len() as u64 + 2;
        let qty = Qty::new(row.qty)
            .ok()
            .filter(|q| *q != Qty::ZERO)
            .ok_or_else(|| {
                ServiceError::invalid(
                    &format!("line {line}: qty"),
                    "must be a positive whole number",
                )
            })?;
        out.push((
            line,
            Receipt {
                proposal_id: row.proposal_id,
                location_code: row.location_code,
                qty,
                idempotency_key: row.idempotency_key,
                part_code: None,
            },
        ));
    }
    if out.is_empty() {
        return Err(ServiceError::invalid("file", "no receipts in the file"));
    }
    Ok(out)
}

/// Points an error at the file line it came from.
fn at_line(e: ServiceError, line: u64) -> ServiceError {
    match e {
        ServiceError::Invalid { field, why } => ServiceError::Invalid {
            field: format!("line {line}: {field}"),
            why,
        },
        ServiceError::Conflict { field, why } => ServiceError::Conflict {
            field: format!("line {line}: {field}"),
            why: format!("line {line}: {why}"),
        },
        ServiceError::NotFound { what } => ServiceError::invalid(
            &format!("line {line}: proposal_id"),
            format!("{what} not found"),
        ),
        other => other,
    }
}

/// Which lines the arriving list shows.
#[derive(Debug, Clone, Default)]
pub struct ArrivingFilter {
    /// Lines to this location only.
    pub location: Option<String>,
    /// Only lines expected before `as_of`.
    pub overdue_only: bool,
    /// The day overdue is measured against.
    pub as_of: NaiveDate,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    proposal_id: i64,
    plan_run_id: i64,
    kind: String,
    part_code: String,
    part_name: String,
    from_code: Option<String>,
    to_code: String,
    qty: i64,
    received_qty: i64,
    order_by: NaiveDate,
    arrive_on: NaiveDate,
    released_on: Option<NaiveDate>,
}

/// Open lines, soonest proposal id first (keyset on the id), with what is open on each.
pub async fn arriving(db: &Db, filter: &ArrivingFilter) -> Result<Page<LineView>, ServiceError> {
    let limit = page_limit(filter.limit)?;
    let mut conn = db.acquire().await?;
    if let Some(code) = &filter.location {
        crate::service::location_id(conn.conn(), "location", code).await?;
    }
    let rows = sql_fetch_all!(
        LineRow,
        conn.conn(),
        "select p.id as proposal_id, p.plan_run_id, p.kind, pt.code as part_code, pt.name as part_name,
                coalesce(f.code, s.code) as from_code, t.code as to_code, p.qty, p.received_qty,
                p.order_by, p.arrive_on, p.released_on
         from proposals p join parts pt on pt.id = p.part_id join locations t on t.id = p.to_id
         left join locations f on f.id = p.from_id left join suppliers s on s.id = p.supplier_id
         where p.status = 'released' and p.id > $1
           and (cast($2 as text) is null or t.code = $2)
           and ($3 = 0 or p.arrive_on < $4)
         order by p.id limit $5",
        filter.after.unwrap_or(0),
        &filter.location,
        i64::from(filter.overdue_only),
        filter.as_of,
        (limit + 1) as i64
    )?;
    let as_of = filter.as_of;
    let views = rows
        .into_iter()
        .map(|r| LineView {
            proposal_id: r.proposal_id,
            plan_run_id: r.plan_run_id,
            kind: LineKind::parse(&r.kind).unwrap_or(LineKind::Purchase),
            part_code: r.part_code,
            part_name: r.part_name,
            from_code: r.from_code,
            to_code: r.to_code,
            line: LineQty::new(r.qty, r.received_qty),
            order_by: r.order_by,
            arrive_on: r.arrive_on,
            released_on: r.released_on,
            overdue: r.arrive_on < as_of,
        })
        .collect();
    Ok(Page::cut(views, limit, |l| l.proposal_id))
}

/// Every open line, for a plan run's snapshot.
pub async fn open_lines(conn: Conn<'_>) -> Result<Vec<OpenLine>, sqlx::Error> {
    let rows = sql_fetch_all!(
        (i64, String, i64, Option<i64>, i64, i64, NaiveDate),
        conn,
        "select id, kind, part_id, from_id, to_id, qty - received_qty, arrive_on from proposals
         where status = 'released' and received_qty < qty order by id"
    )?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(proposal_id, kind, part_id, from_id, to_id, open, arrive_on)| {
                Some(OpenLine {
                    proposal_id,
                    kind: LineKind::parse(&kind)?,
                    part_id,
                    from_id,
                    to_id,
                    open,
                    arrive_on,
                })
            },
        )
        .collect())
}
