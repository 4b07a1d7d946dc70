//! Stock per location, changed only by appending to the stock ledger.
//!
//! A balance row is the running sum of its ledger entries' deltas; [`append`] writes the
//! entry and moves the balance in the caller's transaction, so the two never disagree. The
//! idempotency key is unique: a retried request finds its entry and moves nothing twice.
//! Non-negativity is a named CHECK constraint, so it holds under any concurrency.

use chrono::Utc;
use serde::Serialize;

use crate::db::{Conn, Db, DbError, Tx};
use crate::sql_fetch_optional;
use crate::units::Qty;

/// What a ledger entry does; each kind moves fixed buckets in a fixed direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Goods received without a purchase order (e.g. opening balance).
    Receipt,
    /// Goods consumed by a repair work order.
    Issue,
    /// A stock count correction upwards; needs a reason.
    AdjustUp,
    /// A stock count correction downwards; needs a reason.
    AdjustDown,
    Reserve,
    Release,
    /// A purchase order placed, to arrive at this location.
    Order,
    /// Goods of a purchase order arrived.
    OrderReceipt,
    /// Goods leaving this location on a transfer.
    TransferOut,
    /// A transfer shipped towards this location (in transit).
    TransferShip,
    /// A shipped transfer arrived at this location.
    TransferIn,
}

/// Changes to the four buckets of a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Deltas {
    pub on_hand: i64,
    pub reserved: i64,
    pub in_transit: i64,
    pub on_order: i64,
}

impl MovementKind {
    /// The name stored in the ledger (adjustments in either direction are 'adjustment').
    pub fn ledger_kind(self) -> &'static str {
        match self {
            MovementKind::Receipt => "receipt",
            MovementKind::Issue => "issue",
            MovementKind::AdjustUp | MovementKind::AdjustDown => "adjustment",
            MovementKind::Reserve => "reserve",
            MovementKind::Release => "release",
            MovementKind::Order => "order",
            MovementKind::OrderReceipt => "order_receipt",
            MovementKind::TransferOut => "transfer_out",
            MovementKind::TransferShip => "transfer_ship",
            MovementKind::TransferIn => "transfer_in",
        }
    }

    pub fn deltas(self, qty: Qty) -> Deltas {
        let q = qty.get();
        let zero = Deltas::default();
        match self {
            MovementKind::Receipt | MovementKind::AdjustUp => Deltas { on_hand: q, ..zero },
            MovementKind::Issue | MovementKind::AdjustDown | MovementKind::TransferOut => Deltas {
                on_hand: -q,
                ..zero
            },
            MovementKind::Reserve => Deltas {
                reserved: q,
                ..zero
            },
            MovementKind::Release => Deltas {
                reserved: -q,
                ..zero
            },
            MovementKind::Order => Deltas {
                on_order: q,
                ..zero
            },
            MovementKind::OrderReceipt => Deltas {
                on_hand: q,
                on_order: -q,
                ..zero
            },
            MovementKind::TransferShip => Deltas {
                in_transit: q,
                ..zero
            },
            MovementKind::TransferIn => Deltas {
                on_hand: q,
                in_transit: -q,
                ..zero
            },
        }
    }
}

/// A request to move stock of one part at one location.
#[derive(Debug, Clone)]
pub struct Movement {
    pub kind: MovementKind,
    pub part_id: i64,
    pub location_id: i64,
    pub qty: Qty,
    /// Unique per intended movement; a retry carries the same key.
    pub idempotency_key: String,
    /// E.g. the work order or proposal the movement belongs to.
    pub reference: Option<String>,
    pub reason: Option<String>,
    pub actor: String,
}

/// The four buckets of one part at one location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, sqlx::FromRow)]
pub struct Balance {
    pub on_hand: i64,
    pub reserved: i64,
    pub in_transit: i64,
    pub on_order: i64,
}

impl Balance {
    /// What can be issued or shipped now.
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Applied {
    /// The entry was written and the balance moved to this.
    Moved(Balance),
    /// The key had been used by an identical movement before: nothing moved.
    Replayed,
}

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("{kind} of {qty} refused: it would take {bucket} below zero (part id {part_id}, location id {location_id}; available {available})")]
    WouldGoNegative {
        kind: &'static str,
        qty: i64,
        bucket: &'static str,
        part_id: i64,
        location_id: i64,
        available: i64,
    },
    #[error("idempotency key '{0}' was already used for a different movement")]
    KeyReused(String),
    #[error("quantity must be positive")]
    ZeroQty,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for StockError {
    fn from(e: sqlx::Error) -> Self {
        StockError::Db(DbError::Sqlx(e))
    }
}

#[derive(sqlx::FromRow)]
struct LedgerKey {
    kind: String,
    part_id: i64,
    location_id: i64,
    d_on_hand: i64,
    d_reserved: i64,
    d_in_transit: i64,
    d_on_order: i64,
}

/// Appends `movement` to the ledger and moves its balance, inside the caller's transaction.
///
/// The ledger insert comes first: on SQLite it takes the write lock before anything is
/// read, and on PostgreSQL a concurrent insert with the same key waits for the first to
/// commit and then finds it. On a `WouldGoNegative` error the caller must roll back.
pub async fn append(tx: &mut Tx, movement: &Movement) -> Result<Applied, StockError> {
    if movement.qty == Qty::ZERO {
        return Err(StockError::ZeroQty);
    }
    let d = movement.kind.deltas(movement.qty);
    let kind = movement.kind.ledger_kind();
    let inserted = sql_fetch_optional!(
        (i64,),
        tx.conn(),
        "insert into stock_ledger (idempotency_key, kind, part_id, location_id, d_on_hand, d_reserved,
             d_in_transit, d_on_order, reference, reason, actor, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         on conflict (idempotency_key) do nothing
         returning id",
        &movement.idempotency_key,
        kind,
        movement.part_id,
        movement.location_id,
        d.on_hand,
        d.reserved,
        d.in_transit,
        d.on_order,
        &movement.reference,
        &movement.reason,
        &movement.actor,
        Utc::now()
    )?;
    if inserted.is_none() {
        return replayed(tx.conn(), movement, kind, d).await;
    }
    match move_balance(tx, movement.part_id, movement.location_id, d).await {
        Ok(balance) => {
            tx.stock_moved(movement.part_id);
            Ok(Applied::Moved(balance))
        }
        Err(e) => Err(negative_or_db(e, movement, kind)),
    }
}

/// Adds `d` to the balance row, creating it on first use. An update comes first because
/// SQLite checks CHECK constraints on an upsert's would-be-inserted row before resolving
/// the conflict, so an issue could never go through an `insert … on conflict` alone.
async fn move_balance(
    tx: &mut Tx,
    part_id: i64,
    location_id: i64,
    d: Deltas,
) -> Result<Balance, sqlx::Error> {
    for _ in 0..2 {
        let updated = sql_fetch_optional!(
            Balance,
            tx.conn(),
            "update stock_balance set on_hand = on_hand + $3, reserved = reserved + $4,
                 in_transit = in_transit + $5, on_order = on_order + $6
             where part_id = $1 and location_id = $2
             returning on_hand, reserved, in_transit, on_order",
            part_id,
            location_id,
            d.on_hand,
            d.reserved,
            d.in_transit,
            d.on_order
        )?;
        if let Some(balance) = updated {
            return Ok(balance);
        }
        // First movement here; a concurrent first movement may win the insert, then the
        // update above is tried once more.
        let inserted = sql_fetch_optional!(
            Balance,
            tx.conn(),
            "insert into stock_balance (part_id, location_id, on_hand, reserved, in_transit, on_order)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (part_id, location_id) do nothing
             returning on_hand, reserved, in_transit, on_order",
            part_id,
            location_id,
            d.on_hand,
            d.reserved,
            d.in_transit,
            d.on_order
        )?;
        if let Some(balance) = inserted {
            return Ok(balance);
        }
    }
    Err(sqlx::Error::RowNotFound)
}

/// A key seen before is fine only for the very same movement (a retry).
async fn replayed(
    conn: Conn<'_>,
    movement: &Movement,
    kind: &str,
    d: Deltas,
) -> Result<Applied, StockError> {
    let earlier = sql_fetch_optional!(
        LedgerKey,
        conn,
        "select kind, part_id, location_id, d_on_hand, d_reserved, d_in_transit, d_on_order
         from stock_ledger where idempotency_key = $1",
        &movement.idempotency_key
    )?;
    let same = earlier.is_some_and(|e| {
        e.kind == kind
            && e.part_id == movement.part_id
            && e.location_id == movement.location_id
            && (e.d_on_hand, e.d_reserved, e.d_in_transit, e.d_on_order)
                == (d.on_hand, d.reserved, d.in_transit, d.on_order)
    });
    if same {
        Ok(Applied::Replayed)
    } else {
        Err(StockError::KeyReused(movement.idempotency_key.clone()))
    }
}

fn negative_or_db(e: sqlx::Error, movement: &Movement, kind: &'static str) -> StockError {
    let e = DbError::Sqlx(e);
    let bucket = match e.constraint() {
        Some("stock_balance_on_hand_check") => "on hand",
        Some("stock_balance_reserved_check") => "available (on hand − reserved)",
        Some("stock_balance_in_transit_check") => "in transit",
        Some("stock_balance_on_order_check") => "on order",
        _ => return StockError::Db(e),
    };
    StockError::WouldGoNegative {
        kind,
        qty: movement.qty.get(),
        bucket,
        part_id: movement.part_id,
        location_id: movement.location_id,
        available: -1,
    }
}

/// Records one movement in its own transaction. A refused movement writes nothing and
/// reports what is there now.
pub async fn record(db: &Db, movement: &Movement) -> Result<Applied, StockError> {
    let mut tx = db.begin().await?;
    match append(&mut tx, movement).await {
        Ok(applied) => {
            tx.commit().await?;
            Ok(applied)
        }
        Err(StockError::WouldGoNegative {
            kind,
            qty,
            bucket,
            part_id,
            location_id,
            ..
        }) => {
            drop(tx);
            let now = balance(db, part_id, location_id).await?;
            let available = match bucket {
                "on hand" => now.on_hand,
                "in transit" => now.in_transit,
                "on order" => now.on_order,
                _ => now.available(),
            };
            Err(StockError::WouldGoNegative {
                kind,
                qty,
                bucket,
                part_id,
                location_id,
                available,
            })
        }
        Err(e) => Err(e),
    }
}

/// The balance of a part at a location (all zero if it never moved).
pub async fn balance(db: &Db, part_id: i64, location_id: i64) -> Result<Balance, StockError> {
    let mut conn = db.acquire().await?;
    let found = sql_fetch_optional!(
        Balance,
        conn.conn(),
        "select on_hand, reserved, in_transit, on_order from stock_balance
         where part_id = $1 and location_id = $2",
        part_id,
        location_id
    )?;
    Ok(found.unwrap_or_default())
}

/// The ledger sum for a part at a location: what the balance must equal.
pub async fn ledger_sum(db: &Db, part_id: i64, location_id: i64) -> Result<Balance, StockError> {
    let mut conn = db.acquire().await?;
    let rest = sql_fetch_optional!(
        Balance,
        conn.conn(),
        "select cast(coalesce(sum(d_on_hand), 0) as bigint) as on_hand,
                cast(coalesce(sum(d_reserved), 0) as bigint) as reserved,
                cast(coalesce(sum(d_in_transit), 0) as bigint) as in_transit,
                cast(coalesce(sum(d_on_order), 0) as bigint) as on_order
         from stock_ledger where part_id = $1 and location_id = $2",
        part_id,
        location_id
    )?;
    Ok(rest.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_moves_its_buckets_in_its_direction() {
        let q = Qty::new(3).expect("positive");
        assert_eq!(MovementKind::Issue.deltas(q).on_hand, -3);
        let arrival = MovementKind::TransferIn.deltas(q);
        assert_eq!((arrival.on_hand, arrival.in_transit), (3, -3));
        let receipt = MovementKind::OrderReceipt.deltas(q);
        assert_eq!((receipt.on_hand, receipt.on_order), (3, -3));
        assert_eq!(MovementKind::AdjustDown.ledger_kind(), "adjustment");
    }
}
