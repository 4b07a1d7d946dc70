//! Reading parts back from storage.

use chrono::NaiveDate;
use serde::Serialize;

use super::{CodeError, CodingRule, PartCode};
use crate::db::{Db, DbError};
use crate::sql_fetch_optional;

/// A part as the rest of the system refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PartRef {
    pub id: i64,
    pub code: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    BadCode(#[from] CodeError),
    #[error("part '{0}' does not exist")]
    Unknown(PartCode),
    #[error("the supersession chain from '{0}' is longer than {MAX_CHAIN} links")]
    ChainTooLong(PartCode),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for LookupError {
    fn from(e: sqlx::Error) -> Self {
        LookupError::Db(DbError::Sqlx(e))
    }
}

/// Chains are checked acyclic on import; this bounds the walk all the same.
const MAX_CHAIN: usize = 64;

/// The part a code stands for on `as_of`: the code's own part, or the end of its
/// supersession chain where replacements have taken effect by then.
pub async fn resolve_current(
    db: &Db,
    rule: &CodingRule,
    code: &str,
    as_of: NaiveDate,
) -> Result<PartRef, LookupError> {
    let code = rule.parse(code)?;
    let mut conn = db.acquire().await?;
    let mut at = code.as_str().to_owned();
    for _ in 0..MAX_CHAIN {
        let row = sql_fetch_optional!(
            (i64, String, String, Option<String>),
            conn.conn(),
            "select p.id, p.code, p.name, case when p.replaced_on <= $2 then r.code end
             from parts p left join parts r on r.id = p.replaced_by_id
             where p.code = $1",
            &at,
            as_of
        )?;
        match row {
            None => return Err(LookupError::Unknown(PartCode::from_trusted(at))),
            Some((id, code, name, None)) => return Ok(PartRef { id, code, name }),
            Some((_, _, _, Some(next))) => at = next,
        }
    }
    Err(LookupError::ChainTooLong(code))
}

/// Each part's cost price in force on `on` (the latest effective one), minor units.
pub async fn cost_prices(
    db: &Db,
    on: NaiveDate,
) -> Result<std::collections::HashMap<i64, i64>, DbError> {
    let mut conn = db.acquire().await?;
    let rows = crate::sql_fetch_all!(
        (i64, i64),
        conn.conn(),
        "select part_id, amount_minor from prices
         where kind = 'cost' and effective_from <= $1 order by part_id, effective_from",
        on
    )?;
    // Ordered by date, so the last one written per part is the one in force.
    Ok(rows.into_iter().collect())
}

/// Part codes or names that start with / contain `text`, for type-ahead: current parts
/// first, at most `limit`.
pub async fn suggest(db: &Db, text: &str, limit: i64) -> Result<Vec<PartRef>, DbError> {
    let mut conn = db.acquire().await?;
    let upper = text.to_uppercase();
    // LIKE's wildcards in the typed text would widen the match: they are dropped.
    let words: String = text
        .chars()
        .filter(|c| !matches!(c, '%' | '_' | '\\'))
        .collect();
    Ok(crate::sql_fetch_all!(
        PartRef,
        conn.conn(),
        "select id, code, name from parts
         where substr(code, 1, length($1)) = $1 or name like '%' || $2 || '%'
         order by replaced_by_id is not null, code limit $3",
        &upper,
        &words,
        limit
    )?)
}
