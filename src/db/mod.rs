//! Storage on SQLite (embedded default) or PostgreSQL (multi-instance), chosen by URL.
//!
//! Both backends run the same SQL text: statements stay in the subset both accept (`$1`
//! placeholders, `on conflict`, `returning`). The `sql_*!` macros dispatch one statement to
//! whichever backend a connection belongs to, so each query is written once, next to the
//! domain that owns its table. Bulk paths that differ (COPY on PostgreSQL) match on
//! [`Conn`] themselves.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    #[error("a database task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
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

/// A connection pool on one of the two backends, with what every user of that database in
/// this process shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
    shared: Arc<Shared>,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, Default)]
struct Shared {
    /// SQLite has one writer at a time. Writers of this process queue here, in order and
    /// woken at once, instead of in SQLite's busy handler, which polls with sleeps of up to
    /// 100 ms (measured: p99 81 ms under 5 % concurrent receipts). Other processes still
    /// meet the busy timeout.
    sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    stock: StockVersions,
}

/// A version of every part's stock, advanced after each commit that moved it, so a cache
/// of stock can tell it is stale without reading the database. Commits of this process
/// advance it directly; on PostgreSQL, commits of other instances arrive by
/// `LISTEN spareplan_stock` (see [`Db::follow_other_instances`]).
#[derive(Debug, Default)]
pub struct StockVersions {
    /// Advanced when anything may have moved (a lost notification channel).
    everything: AtomicU64,
    parts: Mutex<HashMap<i64, u64>>,
}

/// What [`StockVersions::of`] returns: equal values mean no commit moved the part between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockVersion(u64, u64);

impl StockVersions {
    pub fn of(&self, part_id: i64) -> StockVersion {
        let part = self.parts().get(&part_id).copied().unwrap_or(0);
        StockVersion(self.everything.load(Ordering::Acquire), part)
    }

    pub fn moved(&self, part_ids: &[i64]) {
        let mut parts = self.parts();
        for id in part_ids {
            *parts.entry(*id).or_insert(0) += 1;
        }
    }

    /// The map stays consistent whatever panicked while holding it (each change is one
    /// increment), so a poisoned lock is simply taken over.
    fn parts(&self) -> std::sync::MutexGuard<'_, HashMap<i64, u64>> {
        self.parts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn moved_everything(&self) {
        self.everything.fetch_add(1, Ordering::AcqRel);
    }
}

/// A transaction; dropped without `commit` it rolls back.
pub struct Tx {
    inner: TxInner,
    /// Parts whose stock this transaction moved: their versions advance on commit.
    stock_moved: Vec<i64>,
    shared: Arc<Shared>,
    /// Held until commit or rollback on SQLite.
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

enum TxInner {
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
                .pragma("cache_size", "-32768")
                // Checkpoints run from a task of their own (see `checkpoint_in_background`),
                // not inside whichever commit crosses the threshold: there they stalled the
                // queue of writers behind it (the p99 of the load benchmark).
                .pragma("wal_autocheckpoint", "0");
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            Ok(Db::new(Pool::Sqlite(pool)))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?;
            Ok(Db::new(Pool::Postgres(pool)))
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }

    fn new(pool: Pool) -> Db {
        let db = Db {
            pool,
            shared: Arc::default(),
        };
        db.checkpoint_in_background();
        db
    }

    /// Whether some `Db` handle besides a background task's is still alive.
    fn in_use(shared: &Arc<Shared>) -> bool {
        Arc::strong_count(shared) > 1
    }

    /// On SQLite, copies the WAL back into the database ten times a second, until the last
    /// handle is dropped (the last connection to close checkpoints what is left). The
    /// checkpoint takes the writers' turn: with no commit landing meanwhile it reaches the
    /// end of the WAL, so the next writer starts the WAL over and it stays small (without
    /// the turn it never caught up under steady writes: 177 MB after a minute of load).
    /// A short turn often, rather than SQLite's own checkpoint of 1,000 pages inside a
    /// commit, keeps the stall behind it to about a millisecond.
    fn checkpoint_in_background(&self) {
        let Pool::Sqlite(pool) = &self.pool else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let (pool, shared) = (pool.clone(), self.shared.clone());
        tokio::spawn(async move {
            while Db::in_use(&shared) && !pool.is_closed() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _turn = shared.sqlite_writer.lock().await;
                if let Err(e) = sqlx::query("pragma wal_checkpoint(passive)")
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %e, "WAL checkpoint skipped");
                }
            }
        });
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The PostgreSQL pool, for the few administrative statements outside the domain
    /// modules (creating and dropping test databases).
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    /// Stock versions of this database, as this process knows them.
    pub fn stock_versions(&self) -> &StockVersions {
        &self.shared.stock
    }

    pub async fn begin(&self) -> Result<Tx, DbError> {
        let (inner, writer) = match &self.pool {
            // IMMEDIATE takes the write lock up front, so a second writer waits for it. A
            // deferred transaction that reads first and then writes fails with
            // SQLITE_BUSY(_SNAPSHOT) at once when another writer got in between — seen as
            // 500s under the load benchmark's concurrent stock writes.
            //
            // The begin runs as a task of its own: sqlx's `begin_with` is not cancel-safe
            // (dropped between its BEGIN and its check of the connection, it returns the
            // connection to the pool inside a transaction that nobody ends, and every later
            // writer waits on that lock — seen when wrk dropped connections mid-request). A
            // task runs to its end; if the caller has gone, the transaction it made is
            // dropped there and rolls back, and only then is the writer's turn released.
            Pool::Sqlite(pool) => {
                let (pool, gate) = (pool.clone(), self.shared.sqlite_writer.clone());
                let (tx, writer) = tokio::spawn(async move {
                    let writer = gate.lock_owned().await;
                    pool.begin_with("begin immediate")
                        .await
                        .map(|tx| (tx, writer))
                })
                .await??;
                (TxInner::Sqlite(tx), Some(writer))
            }
            Pool::Postgres(pool) => (TxInner::Postgres(pool.begin().await?), None),
        };
        Ok(Tx {
            inner,
            stock_moved: Vec::new(),
            shared: self.shared.clone(),
            _writer: writer,
        })
    }

    pub async fn acquire(&self) -> Result<PooledConn, DbError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => PooledConn::Sqlite(pool.acquire().await?),
            Pool::Postgres(pool) => PooledConn::Postgres(pool.acquire().await?),
        })
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    /// On PostgreSQL, where several instances share one database, follows the stock
    /// commits of the others (a trigger on `stock_balance` notifies `spareplan_stock` with
    /// the part id; delivered at commit) until the pool closes. A broken channel may have
    /// lost notifications, so every part counts as moved when it comes back. On SQLite,
    /// the embedded single-instance store, there is nothing to follow: writes by another
    /// process (a CLI import beside `serve`) show when a cache entry expires.
    pub fn follow_other_instances(&self) {
        let Pool::Postgres(pool) = &self.pool else {
            return;
        };
        let (pool, shared) = (pool.clone(), self.shared.clone());
        tokio::spawn(async move {
            while Db::in_use(&shared) && !pool.is_closed() {
                if let Err(e) = listen_for_stock(&pool, &shared).await {
                    tracing::warn!(error = %e, "stock notifications interrupted; retrying");
                }
                shared.stock.moved_everything();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Applies `spareplan_stock` notifications until the channel breaks or the last `Db`
/// handle is dropped.
async fn listen_for_stock(pool: &PgPool, shared: &Arc<Shared>) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen("spareplan_stock").await?;
    // Anything committed before the channel was open is unknown to the caches.
    shared.stock.moved_everything();
    while Db::in_use(shared) {
        let wait = tokio::time::timeout(Duration::from_secs(1), listener.try_recv());
        let Ok(received) = wait.await else {
            continue; // nothing for a second: look again whether anyone still listens
        };
        // None: the connection was lost (the next call reconnects; what was sent in
        // between is lost, so the caller counts everything as moved).
        let Some(note) = received? else {
            return Ok(());
        };
        match note.payload().parse::<i64>() {
            Ok(part_id) => shared.stock.moved(&[part_id]),
            Err(_) => shared.stock.moved_everything(),
        }
    }
    Ok(())
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => Conn::Sqlite(tx),
            TxInner::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    /// Notes that this transaction moved a part's stock (its version advances on commit).
    pub fn stock_moved(&mut self, part_id: i64) {
        if self.stock_moved.last() != Some(&part_id) {
            self.stock_moved.push(part_id);
        }
    }

    pub async fn commit(self) -> Result<(), DbError> {
        match self.inner {
            TxInner::Sqlite(tx) => tx.commit().await?,
            TxInner::Postgres(tx) => tx.commit().await?,
        }
        self.shared.stock.moved(&self.stock_moved);
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
