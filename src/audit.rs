//! The audit log: every state change, who made it, when, and the object before and after.
//! Written in the same transaction as the change, so neither exists without the other.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::db::{Db, Tx};
use crate::service::{page_limit, Page, ServiceError};
use crate::{sql_execute, sql_fetch_all};

/// One change to record.
pub struct Change<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub async fn record(tx: &mut Tx, change: Change<'_>) -> Result<(), ServiceError> {
    sql_execute!(
        tx.conn(),
        "insert into audit_log (at, actor, action, entity, entity_id, before_json, after_json)
         values ($1, $2, $3, $4, $5, $6, $7)",
        Utc::now(),
        change.actor,
        change.action,
        change.entity,
        &change.entity_id,
        change.before.map(|v| v.to_string()),
        change.after.map(|v| v.to_string())
    )?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// Which entries to list.
/// Also the query string of the list endpoint, hence unknown fields are refused.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub action: Option<String>,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

type Row = (
    i64,
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

pub async fn list(db: &Db, filter: &Filter) -> Result<Page<AuditEntry>, ServiceError> {
    let limit = page_limit(filter.limit)?;
    let mut conn = db.acquire().await?;
    let rows = sql_fetch_all!(
        Row,
        conn.conn(),
        "select id, at, actor, action, entity, entity_id, before_json, after_json from audit_log
         where id > $1 and (cast($2 as text) is null or entity = $2)
           and (cast($3 as text) is null or entity_id = $3)
           and (cast($4 as text) is null or action = $4)
         order by id limit $5",
        filter.after.unwrap_or(0),
        &filter.entity,
        &filter.entity_id,
        &filter.action,
        (limit + 1) as i64
    )?;
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    let items = rows
        .into_iter()
        .map(
            |(id, at, actor, action, entity, entity_id, before, after)| AuditEntry {
                id,
                at,
                actor,
                action,
                entity,
                entity_id,
                before: parse(before),
                after: parse(after),
            },
        )
        .collect();
    Ok(Page::cut(items, limit, |e| e.id))
}
