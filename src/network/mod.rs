//! The network: locations (central warehouses, regional centres, service stations) and the
//! lanes between them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationKind {
    Central,
    Regional,
    Station,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationKind::Central => "central",
            LocationKind::Regional => "regional",
            LocationKind::Station => "station",
        }
    }
}

/// The regions of the network, sorted.
pub async fn regions(db: &crate::db::Db) -> Result<Vec<String>, crate::db::DbError> {
    let mut conn = db.acquire().await?;
    let rows = crate::sql_fetch_all!(
        (String,),
        conn.conn(),
        "select distinct region from locations where region is not null order by region"
    )?;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}
