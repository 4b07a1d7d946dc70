//! Station credit (DESIGN §7): per-station limit, exposure (unpaid advanced stock at dealer
//! price), ageing of what is owed, payments, and limit change requests decided by finance.
//!
//! An advance is written when a transfer with a credit impact is released to a station;
//! payments settle the oldest advances first, so what remains unpaid ages by its advance
//! date.

use chrono::{NaiveDate, Utc};
use serde::Serialize;

use crate::audit::{self, Change};
use crate::db::{Conn, Db, Tx};
use crate::service::{location_id, ServiceError};
use crate::{sql_fetch_all, sql_fetch_optional, sql_scalar};

/// Unpaid amounts by age in days since the advance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Ageing {
    pub d0_30_minor: i64,
    pub d31_60_minor: i64,
    pub d61_90_minor: i64,
    pub over_90_minor: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreditAccount {
    pub station_code: String,
    pub limit_minor: i64,
    pub currency: String,
    /// Advanced stock not yet paid for, at dealer price.
    pub exposure_minor: i64,
    /// Credit impact of transfers approved (or awaiting finance) but not yet released.
    pub committed_minor: i64,
    /// limit − exposure − committed (negative when over).
    pub headroom_minor: i64,
    pub paid_minor: i64,
    pub ageing: Ageing,
}

/// Applies payments to the oldest advances first and buckets what is left by age.
pub fn age(advances: &[(NaiveDate, i64)], paid: i64, today: NaiveDate) -> (i64, Ageing) {
    let mut sorted = advances.to_vec();
    sorted.sort();
    let mut left_to_settle = paid.max(0);
    let mut ageing = Ageing::default();
    let mut exposure = 0;
    for (on, amount) in sorted {
        let settled = left_to_settle.min(amount);
        left_to_settle -= settled;
        let open = amount - settled;
        if open == 0 {
            continue;
        }
        exposure += open;
        let days = (today - on).num_days();
        let bucket = match days {
            ..=30 => &mut ageing.d0_30_minor,
            31..=60 => &mut ageing.d31_60_minor,
            61..=90 => &mut ageing.d61_90_minor,
            _ => &mut ageing.over_90_minor,
        };
        *bucket += open;
    }
    (exposure, ageing)
}

async fn account_in(
    conn: &mut Conn<'_>,
    station_id: i64,
    station_code: &str,
    today: NaiveDate,
) -> Result<Option<CreditAccount>, ServiceError> {
    let Some((limit_minor, currency)) = sql_fetch_optional!(
        (i64, String),
        conn.reborrow(),
        "select limit_minor, currency from credit_accounts where station_id = $1",
        station_id
    )?
    else {
        return Ok(None);
    };
    let advances = sql_fetch_all!(
        (NaiveDate, i64),
        conn.reborrow(),
        "select advanced_on, amount_minor from credit_advances where station_id = $1",
        station_id
    )?;
    let paid_minor = sql_scalar!(
        i64,
        conn.reborrow(),
        "select cast(coalesce(sum(amount_minor), 0) as bigint) from credit_payments where station_id = $1",
        station_id
    )?;
    let committed_minor = sql_scalar!(
        i64,
        conn.reborrow(),
        "select cast(coalesce(sum(credit_impact_minor), 0) as bigint) from proposals
         where to_id = $1 and kind = 'transfer' and status in ('approved', 'awaiting_finance')",
        station_id
    )?;
    let (exposure_minor, ageing) = age(&advances, paid_minor, today);
    Ok(Some(CreditAccount {
        station_code: station_code.to_owned(),
        limit_minor,
        currency,
        exposure_minor,
        committed_minor,
        headroom_minor: limit_minor - exposure_minor - committed_minor,
        paid_minor,
        ageing,
    }))
}

/// A station's account; `Ok(None)` when the station has no credit account.
pub(crate) async fn account_by_id(
    tx: &mut Tx,
    station_id: i64,
    today: NaiveDate,
) -> Result<Option<CreditAccount>, ServiceError> {
    let code = sql_scalar!(
        String,
        tx.conn(),
        "select code from locations where id = $1",
        station_id
    )?;
    let mut conn = tx.conn();
    account_in(&mut conn, station_id, &code, today).await
}

pub async fn account(db: &Db, station_code: &str) -> Result<CreditAccount, ServiceError> {
    let mut pooled = db.acquire().await?;
    let (id, _) = location_id(pooled.conn(), "station", station_code)
        .await
        .map_err(|_| ServiceError::not_found(format!("station '{station_code}'")))?;
    let mut conn = pooled.conn();
    account_in(&mut conn, id, station_code, Utc::now().date_naive())
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("credit account of '{station_code}'")))
}

pub async fn accounts(db: &Db) -> Result<Vec<CreditAccount>, ServiceError> {
    let mut pooled = db.acquire().await?;
    let stations = sql_fetch_all!(
        (i64, String),
        pooled.conn(),
        "select l.id, l.code from credit_accounts c join locations l on l.id = c.station_id order by l.code"
    )?;
    let today = Utc::now().date_naive();
    let mut out = Vec::with_capacity(stations.len());
    let mut conn = pooled.conn();
    for (id, code) in stations {
        if let Some(a) = account_in(&mut conn, id, &code, today).await? {
            out.push(a);
        }
    }
    Ok(out)
}

/// Records a payment by a station; returns the account after it.
pub async fn record_payment(
    db: &Db,
    actor: &str,
    station_code: &str,
    amount_minor: i64,
    paid_on: NaiveDate,
    reference: Option<&str>,
) -> Result<CreditAccount, ServiceError> {
    if amount_minor <= 0 {
        return Err(ServiceError::invalid("amount_minor", "must be positive"));
    }
    let mut tx = db.begin().await?;
    let (station_id, _) = location_id(tx.conn(), "station", station_code)
        .await
        .map_err(|_| ServiceError::not_found(format!("station '{station_code}'")))?;
    let today = Utc::now().date_naive();
    let before = account_by_id(&mut tx, station_id, today)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("credit account of '{station_code}'")))?;
    let (id,) = sql_fetch_optional!(
        (i64,),
        tx.conn(),
        "insert into credit_payments (station_id, amount_minor, currency, paid_on, reference, actor, created_at)
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
        station_id,
        amount_minor,
        &before.currency,
        paid_on,
        reference,
        actor,
        Utc::now()
    )?
    .ok_or_else(|| ServiceError::Internal("payment insert returned nothing".into()))?;
    let after = account_by_id(&mut tx, station_id, today)
        .await?
        .ok_or_else(|| ServiceError::Internal("credit account vanished".into()))?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "credit.payment",
            entity: "credit_account",
            entity_id: station_code.to_owned(),
            before: serde_json::to_value(&before).ok(),
            after: Some(
                serde_json::json!({"payment_id": id, "amount_minor": amount_minor,
                "paid_on": paid_on, "account": after}),
            ),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Writes the advance for a released transfer (inside the release transaction).
pub(crate) async fn advance(
    tx: &mut Tx,
    station_id: i64,
    proposal_id: i64,
    amount_minor: i64,
    currency: &str,
    on: NaiveDate,
) -> Result<(), ServiceError> {
    if amount_minor <= 0 {
        return Ok(());
    }
    crate::sql_execute!(
        tx.conn(),
        "insert into credit_advances (station_id, proposal_id, amount_minor, currency, advanced_on)
         values ($1, $2, $3, $4, $5)",
        station_id,
        proposal_id,
        amount_minor,
        currency,
        on
    )?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LimitRequest {
    pub id: i64,
    pub station_code: String,
    pub new_limit_minor: i64,
    pub currency: String,
    pub reason: String,
    /// pending, approved or rejected.
    pub status: String,
    pub version: i64,
    pub requested_by: String,
    pub decided_by: Option<String>,
}

type LimitRow = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
);

const LIMIT_SELECT: &str =
    "select r.id, l.code, r.new_limit_minor, r.currency, r.reason, r.status, r.version,
        r.requested_by, r.decided_by
     from credit_limit_requests r join locations l on l.id = r.station_id";

fn limit_request(r: LimitRow) -> LimitRequest {
    LimitRequest {
        id: r.0,
        station_code: r.1,
        new_limit_minor: r.2,
        currency: r.3,
        reason: r.4,
        status: r.5,
        version: r.6,
        requested_by: r.7,
        decided_by: r.8,
    }
}

/// Raises a limit change request (planners and admins); finance decides it.
pub async fn request_limit(
    db: &Db,
    actor: &str,
    station_code: &str,
    new_limit_minor: i64,
    reason: &str,
) -> Result<LimitRequest, ServiceError> {
    if new_limit_minor < 0 {
        return Err(ServiceError::invalid(
            "new_limit_minor",
            "must not be negative",
        ));
    }
    if reason.trim().is_empty() {
        return Err(ServiceError::invalid(
            "reason",
            "a limit change needs a reason",
        ));
    }
    let mut tx = db.begin().await?;
    let (station_id, kind) = location_id(tx.conn(), "station", station_code).await?;
    if kind != "station" {
        return Err(ServiceError::invalid(
            "station",
            format!("'{station_code}' is not a station"),
        ));
    }
    let currency = sql_fetch_optional!(
        (String,),
        tx.conn(),
        "select currency from credit_accounts where station_id = $1",
        station_id
    )?
    .map_or_else(|| "CNY".to_owned(), |(c,)| c);
    let (id,) = sql_fetch_optional!(
        (i64,),
        tx.conn(),
        "insert into credit_limit_requests (station_id, new_limit_minor, currency, reason, status, version,
             requested_by, created_at)
         values ($1, $2, $3, $4, 'pending', 1, $5, $6) returning id",
        station_id,
        new_limit_minor,
        &currency,
        reason,
        actor,
        Utc::now()
    )?
    .ok_or_else(|| ServiceError::Internal("request insert returned nothing".into()))?;
    let request = limit_request_in(&mut tx, id).await?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: "credit.limit_request",
            entity: "credit_limit_request",
            entity_id: id.to_string(),
            before: None,
            after: serde_json::to_value(&request).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(request)
}

async fn limit_request_in(tx: &mut Tx, id: i64) -> Result<LimitRequest, ServiceError> {
    let sql = format!("{LIMIT_SELECT} where r.id = $1");
    sql_fetch_optional!(LimitRow, tx.conn(), &sql, id)?
        .map(limit_request)
        .ok_or_else(|| ServiceError::not_found(format!("limit request {id}")))
}

pub async fn limit_requests(
    db: &Db,
    status: Option<&str>,
) -> Result<Vec<LimitRequest>, ServiceError> {
    let mut conn = db.acquire().await?;
    let sql =
        format!("{LIMIT_SELECT} where (cast($1 as text) is null or r.status = $1) order by r.id");
    Ok(sql_fetch_all!(LimitRow, conn.conn(), &sql, status)?
        .into_iter()
        .map(limit_request)
        .collect())
}

/// Finance approves (the limit changes) or rejects a pending request.
pub async fn decide_limit(
    db: &Db,
    actor: &str,
    id: i64,
    version: i64,
    approve: bool,
) -> Result<LimitRequest, ServiceError> {
    let mut tx = db.begin().await?;
    let status = if approve { "approved" } else { "rejected" };
    // The conditional write comes first: it takes the row (and SQLite's write lock).
    let claimed = sql_fetch_optional!(
        (i64, i64, String),
        tx.conn(),
        "update credit_limit_requests set status = $3, version = version + 1, decided_by = $4, decided_at = $5
         where id = $1 and version = $2 and status = 'pending'
         returning station_id, new_limit_minor, currency",
        id,
        version,
        status,
        actor,
        Utc::now()
    )?;
    let Some((station_id, new_limit, currency)) = claimed else {
        let current = limit_request_in(&mut tx, id).await?;
        return Err(if current.version != version {
            ServiceError::conflict(
                "version",
                format!(
                    "version {version} is stale; the request is at {}",
                    current.version
                ),
            )
        } else {
            ServiceError::conflict(
                "status",
                format!("the request is already {}", current.status),
            )
        });
    };
    let old_limit = sql_fetch_optional!(
        (i64,),
        tx.conn(),
        "select limit_minor from credit_accounts where station_id = $1",
        station_id
    )?;
    if approve {
        crate::sql_execute!(
            tx.conn(),
            "insert into credit_accounts (station_id, limit_minor, currency) values ($1, $2, $3)
             on conflict (station_id) do update set limit_minor = excluded.limit_minor",
            station_id,
            new_limit,
            &currency
        )?;
    }
    let request = limit_request_in(&mut tx, id).await?;
    audit::record(
        &mut tx,
        Change {
            actor,
            action: if approve {
                "credit.limit_approve"
            } else {
                "credit.limit_reject"
            },
            entity: "credit_limit_request",
            entity_id: id.to_string(),
            before: Some(serde_json::json!({"status": "pending", "version": version,
                "limit_minor": old_limit.map(|(l,)| l)})),
            after: Some(serde_json::json!({"request": request,
                "limit_minor": if approve { Some(new_limit) } else { old_limit.map(|(l,)| l) }})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn payments_settle_the_oldest_advances_first() {
        let today = d("2026-06-30");
        let advances = [
            (d("2026-01-10"), 500),
            (d("2026-05-20"), 300),
            (d("2026-06-25"), 200),
        ];
        let (exposure, ageing) = age(&advances, 600, today);
        assert_eq!(exposure, 400);
        // The January advance is fully paid; 200 of May's remains (41 days) and June's 200.
        assert_eq!(ageing.over_90_minor, 0);
        assert_eq!(ageing.d31_60_minor, 200);
        assert_eq!(ageing.d0_30_minor, 200);
    }

    #[test]
    fn nothing_paid_ages_everything() {
        let (exposure, ageing) = age(&[(d("2026-01-01"), 100)], 0, d("2026-06-01"));
        assert_eq!(exposure, 100);
        assert_eq!(ageing.over_90_minor, 100);
    }
}
