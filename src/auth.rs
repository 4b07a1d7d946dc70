//! Who is calling: bearer API tokens, stored as SHA-256 hashes, each with one role (and, for
//! station users, the one station it is bound to).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::Db;
use crate::service::{location_id, ServiceError};
use crate::{sql_fetch_all, sql_fetch_optional};

/// The roles of DESIGN §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Planner,
    /// Bound to one station: writes only its own receipts and issues.
    Station,
    Finance,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Planner,
        Role::Station,
        Role::Finance,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Planner => "planner",
            Role::Station => "station",
            Role::Finance => "finance",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role '{s}' (admin, planner, station, finance, viewer)"))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub token_id: i64,
    pub role: Role,
    pub label: String,
    /// (id, code) of the station a station token is bound to.
    pub station: Option<(i64, String)>,
}

impl Principal {
    /// How the caller appears in the ledger and the audit log.
    pub fn actor(&self) -> String {
        format!("{}:{}#{}", self.role, self.label, self.token_id)
    }

    /// Station users may write only their own station's stock; admins any.
    pub fn may_write_station(&self, station_code: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Station => self
                .station
                .as_ref()
                .is_some_and(|(_, code)| code == station_code),
            _ => false,
        }
    }
}

/// The hex SHA-256 of a token: what is stored and looked up.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token: 32 random bytes, hex, with a prefix that makes leaked ones easy to grep.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("sp_{}", hex::encode(bytes))
}

/// Creates a token; returns the secret (shown once, never stored) and its id.
pub async fn create_token(
    db: &Db,
    role: Role,
    station_code: Option<&str>,
    label: &str,
) -> Result<(String, i64), ServiceError> {
    let mut conn = db.acquire().await?;
    let station_id = match (role, station_code) {
        (Role::Station, Some(code)) => {
            let (id, kind) = location_id(conn.conn(), "station", code).await?;
            if kind != "station" {
                return Err(ServiceError::invalid(
                    "station",
                    format!("'{code}' is a {kind}, not a station"),
                ));
            }
            Some(id)
        }
        (Role::Station, None) => {
            return Err(ServiceError::invalid(
                "station",
                "a station token needs --station",
            ))
        }
        (_, Some(_)) => {
            return Err(ServiceError::invalid(
                "station",
                "only station tokens are bound to a station",
            ))
        }
        (_, None) => None,
    };
    let token = new_token();
    let (id,) = sql_fetch_optional!(
        (i64,),
        conn.conn(),
        "insert into api_tokens (token_hash, role, station_id, label, created_at)
         values ($1, $2, $3, $4, $5) returning id",
        hash_token(&token),
        role.as_str(),
        station_id,
        label,
        Utc::now()
    )?
    .ok_or_else(|| ServiceError::Internal("token insert returned nothing".into()))?;
    Ok((token, id))
}

/// The caller a bearer token stands for, if it is known and not revoked.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Principal>, ServiceError> {
    authenticate_hash(db, &hash_token(token)).await
}

async fn authenticate_hash(db: &Db, hash: &str) -> Result<Option<Principal>, ServiceError> {
    let mut conn = db.acquire().await?;
    let row = sql_fetch_optional!(
        (i64, String, String, Option<i64>, Option<String>),
        conn.conn(),
        "select t.id, t.role, t.label, t.station_id, l.code
         from api_tokens t left join locations l on l.id = t.station_id
         where t.token_hash = $1 and t.revoked_at is null",
        hash
    )?;
    let Some((token_id, role, label, station_id, station_code)) = row else {
        return Ok(None);
    };
    let role = Role::from_str(&role).map_err(ServiceError::Internal)?;
    Ok(Some(Principal {
        token_id,
        role,
        label,
        station: station_id.zip(station_code),
    }))
}

/// Known tokens remembered for a short while, so the hot path skips one query per request.
/// A revocation takes effect within `ttl`; unknown tokens are never remembered.
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

/// Beyond this many remembered tokens the cache starts over.
const CACHE_MAX: usize = 10_000;

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authenticate(
        &self,
        db: &Db,
        token: &str,
    ) -> Result<Option<Principal>, ServiceError> {
        let hash = hash_token(token);
        if let Ok(entries) = self.entries.lock() {
            if let Some((p, at)) = entries.get(&hash) {
                if at.elapsed() < self.ttl {
                    return Ok(Some(p.clone()));
                }
            }
        }
        let found = authenticate_hash(db, &hash).await?;
        if let (Some(p), Ok(mut entries)) = (&found, self.entries.lock()) {
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
            entries.insert(hash, (p.clone(), Instant::now()));
        }
        Ok(found)
    }
}

/// Revokes a token by id; true if it existed and was live.
pub async fn revoke_token(db: &Db, id: i64) -> Result<bool, ServiceError> {
    let mut conn = db.acquire().await?;
    let n = crate::sql_execute!(
        conn.conn(),
        "update api_tokens set revoked_at = $2 where id = $1 and revoked_at is null",
        id,
        Utc::now()
    )?;
    Ok(n == 1)
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub role: String,
    pub label: String,
    pub station: Option<String>,
    pub revoked: bool,
}

pub async fn list_tokens(db: &Db) -> Result<Vec<TokenInfo>, ServiceError> {
    let mut conn = db.acquire().await?;
    let rows = sql_fetch_all!(
        (i64, String, String, Option<String>, bool),
        conn.conn(),
        "select t.id, t.role, t.label, l.code, t.revoked_at is not null
         from api_tokens t left join locations l on l.id = t.station_id order by t.id"
    )?;
    Ok(rows
        .into_iter()
        .map(|(id, role, label, station, revoked)| TokenInfo {
            id,
            role,
            label,
            station,
            revoked,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a).len(), 64);
    }

    #[test]
    fn station_tokens_write_only_their_station() {
        let p = Principal {
            token_id: 1,
            role: Role::Station,
            label: "x".into(),
            station: Some((7, "S001".into())),
        };
        assert!(p.may_write_station("S001"));
        assert!(!p.may_write_station("S002"));
        let viewer = Principal {
            role: Role::Viewer,
            station: None,
            ..p
        };
        assert!(!viewer.may_write_station("S001"));
    }
}
