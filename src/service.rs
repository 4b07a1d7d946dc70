//! The error of the service layer: the domain operations behind the HTTP API and the web UI
//! (auth, audit, proposals, credit, availability, jobs). Each says which input field is at
//! fault, so any front end can point at it.

use crate::catalog::LookupError;
use crate::db::DbError;
use crate::stock::StockError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// An input value is not acceptable.
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    /// What the request names does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request was made against a state that has changed or does not allow it.
    #[error("{why}")]
    Conflict { field: String, why: String },
    /// The caller may not do this to this object.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Stock(#[from] StockError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        ServiceError::Db(DbError::Sqlx(e))
    }
}

impl ServiceError {
    pub fn invalid(field: &str, why: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.to_owned(),
            why: why.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ServiceError::NotFound { what: what.into() }
    }

    pub fn conflict(field: &str, why: impl Into<String>) -> Self {
        ServiceError::Conflict {
            field: field.to_owned(),
            why: why.into(),
        }
    }

    /// A part-code lookup failure, blamed on the request field that carried the code.
    pub fn part_lookup(field: &str, e: LookupError) -> Self {
        match e {
            LookupError::Db(e) => ServiceError::Db(e),
            other => ServiceError::invalid(field, other.to_string()),
        }
    }
}

/// One page of a keyset-paginated list: pass `next` as `after` to get the following page.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// Cuts a list fetched with `limit + 1` rows into a page; `key` gives a row's cursor.
    pub fn cut(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> i64) -> Page<T> {
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(key)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// Page sizes: the default and the most a caller may ask for.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// Checks a requested page size.
pub fn page_limit(limit: Option<i64>) -> Result<usize, ServiceError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if n >= 1 && n as usize <= MAX_LIMIT => Ok(n as usize),
        Some(_) => Err(ServiceError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// A station (or other location) by code: its id, or which field named a missing one.
pub async fn location_id(
    conn: crate::db::Conn<'_>,
    field: &str,
    code: &str,
) -> Result<(i64, String), ServiceError> {
    let row = crate::sql_fetch_optional!(
        (i64, String),
        conn,
        "select id, kind from locations where code = $1",
        code
    )?;
    row.ok_or_else(|| ServiceError::invalid(field, format!("location '{code}' does not exist")))
}
