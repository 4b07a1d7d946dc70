//! Storage on SQLite (embedded default) or PostgreSQL (multi-instance), chosen by URL.
//!
//! Both backends run the same SQL text: statements stay in the subset both accept (`$1`
//! placeholders, `on conflict`, `returning`). The `sql_*!` macros dispatch one statement to
//! whichever backend a connection belongs to, so each query is written once, next to the
//! domain that owns its table. Bulk paths that differ (COPY on PostgreSQL) match on
//! [`Conn`] themselves.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

/// The URL used when `DATABASE_URL` is not set: a SQLite file created on first run.
pub const DEFAULT_URL: &str = "sqlite://spareplan.db";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL '{0}' is neither sqlite:… nor postgres:…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// The name of the constraint a statement violated, if that is why it failed.
    /// SQLite names only CHECK constraints, in its message ("CHECK constraint failed: x").
    pub fn constraint(&self) -> Option<&str> {
        let DbError::Sqlx(sqlx::Error::Database(e)) = self else {
            return None;
        };
        e.constraint()
            .or_else(|| e.message().strip_prefix("CHECK constraint failed: "))
    }
}

/// Which backend a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool on one of the two backends. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction; dropped without `commit` it rolls back.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A connection taken from the pool outside any explicit transaction.
pub enum PooledConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// A borrowed connection: what the `sql_*!` macros run statements on.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl Db {
    /// Connects and applies pending migrations. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        let db = Self::connect_without_migrating(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    pub async fn connect_without_migrating(url: &str) -> Result<Db, DbError> {
        if url.starts_with("sqlite:") {
            // WAL lets readers run beside the one writer; a writer waits for the lock
            // (busy timeout) instead of failing, so concurrent appends queue up.
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30))
                // 32 MB of page cache per connection (SQLite's default is 2 MB): a bulk
                // import's foreign-key look-ups and index builds otherwise re-read pages
                // from the file for every row (measured: a fifth of a 2 M-line import).
                .pragma("cache_size", "-32768");
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn begin(&self) -> Result<Tx, DbError> {
        Ok(match self {
            // IMMEDIATE takes the write lock up front, so a second writer waits its busy
            // timeout for it. A deferred transaction that reads first and then writes fails
            // with SQLITE_BUSY(_SNAPSHOT) at once when another writer got in between — seen as
            // 500s under the load benchmark's concurrent stock writes.
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("begin immediate").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub async fn acquire(&self) -> Result<PooledConn, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => PooledConn::Sqlite(pool.acquire().await?),
            Db::Postgres(pool) => PooledConn::Postgres(pool.acquire().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    pub async fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// A shorter-lived handle on the same connection, to pass on and use again after.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

impl PooledConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            PooledConn::Sqlite(c) => Conn::Sqlite(c),
            PooledConn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs a statement on a [`Conn`]; evaluates to `Result<u64 rows affected, sqlx::Error>`.
#[macro_export]
macro_rules! sql_execute {
    ($conn:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => sqlx::query($sql)$(.bind($arg))*.execute(c).await.map(|r| r.rows_affected()),
            $crate::db::Conn::Postgres(c) => sqlx::query($sql)$(.bind($arg))*.execute(c).await.map(|r| r.rows_affected()),
        }
    };
}

/// Fetches all rows as `$ty` (a `sqlx::FromRow` struct or a tuple).
#[macro_export]
macro_rules! sql_fetch_all {
    ($ty:ty, $conn:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => sqlx::query_as::<_, $ty>($sql)$(.bind($arg))*.fetch_all(c).await,
            $crate::db::Conn::Postgres(c) => sqlx::query_as::<_, $ty>($sql)$(.bind($arg))*.fetch_all(c).await,
        }
    };
}

/// Fetches at most one row as `$ty`.
#[macro_export]
macro_rules! sql_fetch_optional {
    ($ty:ty, $conn:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => sqlx::query_as::<_, $ty>($sql)$(.bind($arg))*.fetch_optional(c).await,
            $crate::db::Conn::Postgres(c) => sqlx::query_as::<_, $ty>($sql)$(.bind($arg))*.fetch_optional(c).await,
        }
    };
}

/// Fetches exactly one single-column value as `$ty`.
#[macro_export]
macro_rules! sql_scalar {
    ($ty:ty, $conn:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => sqlx::query_scalar::<_, $ty>($sql)$(.bind($arg))*.fetch_one(c).await,
            $crate::db::Conn::Postgres(c) => sqlx::query_scalar::<_, $ty>($sql)$(.bind($arg))*.fetch_one(c).await,
        }
    };
}
