//! Browser sessions: signing in with an access key (an API token of DESIGN §7) opens a
//! server-side session; the browser holds only a random session id in an HttpOnly,
//! SameSite=Lax cookie. Each session has its own form token, which every form posts back
//! (CSRF). Sessions live in the database, so any instance of a multi-instance deployment
//! can serve any request, and revoking the key ends its sessions at once.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::auth::{self, Principal, Role};
use crate::db::Db;
use crate::service::ServiceError;
use crate::{sql_execute, sql_fetch_optional};

/// The cookie that carries the session id.
pub const COOKIE: &str = "sp_session";
/// How long a session lasts without signing in again.
pub const LIFETIME_HOURS: i64 = 12;

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// The form token every POST of this session must carry.
    pub csrf: String,
}

impl Session {
    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// The station a station user is bound to.
    pub fn station_code(&self) -> Option<&str> {
        self.principal.station.as_ref().map(|(_, c)| c.as_str())
    }

    /// Whether `posted` is this session's form token (compared in constant time).
    pub fn csrf_matches(&self, posted: &str) -> bool {
        !posted.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(posted.as_bytes()))
    }
}

/// 32 random bytes as hex: session ids and form tokens.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Opens a session for an access key; `None` if the key is unknown or revoked.
/// Returns the session id for the cookie (stored only as its hash).
pub async fn sign_in(db: &Db, access_key: &str) -> Result<Option<String>, ServiceError> {
    let Some(principal) = auth::authenticate(db, access_key.trim()).await? else {
        return Ok(None);
    };
    let id = random_secret();
    let now = Utc::now();
    let mut conn = db.acquire().await?;
    sql_execute!(
        conn.conn(),
        "insert into web_sessions (session_hash, token_id, csrf, created_at, expires_at)
         values ($1, $2, $3, $4, $5)",
        auth::hash_token(&id),
        principal.token_id,
        random_secret(),
        now,
        now + Duration::hours(LIFETIME_HOURS)
    )?;
    // Expired sessions are swept on sign-in, so the table stays small without a timer.
    sql_execute!(
        conn.conn(),
        "delete from web_sessions where expires_at < $1",
        now
    )?;
    Ok(Some(id))
}

/// The live session behind a cookie value, if any.
pub async fn lookup(db: &Db, session_id: &str) -> Result<Option<Session>, ServiceError> {
    let mut conn = db.acquire().await?;
    let row = sql_fetch_optional!(
        (
            i64,
            String,
            String,
            Option<i64>,
            Option<String>,
            String,
            DateTime<Utc>
        ),
        conn.conn(),
        "select t.id, t.role, t.label, t.station_id, l.code, s.csrf, s.expires_at
         from web_sessions s join api_tokens t on t.id = s.token_id
         left join locations l on l.id = t.station_id
         where s.session_hash = $1 and t.revoked_at is null",
        auth::hash_token(session_id)
    )?;
    let Some((token_id, role, label, station_id, station_code, csrf, expires_at)) = row else {
        return Ok(None);
    };
    if expires_at < Utc::now() {
        return Ok(None);
    }
    let role = role.parse::<Role>().map_err(ServiceError::Internal)?;
    Ok(Some(Session {
        principal: Principal {
            token_id,
            role,
            label,
            station: station_id.zip(station_code),
        },
        csrf,
    }))
}

/// Ends a session.
pub async fn sign_out(db: &Db, session_id: &str) -> Result<(), ServiceError> {
    let mut conn = db.acquire().await?;
    sql_execute!(
        conn.conn(),
        "delete from web_sessions where session_hash = $1",
        auth::hash_token(session_id)
    )?;
    Ok(())
}
