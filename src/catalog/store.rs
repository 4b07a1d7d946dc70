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
