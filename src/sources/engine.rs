//! Engine glue: one pool type over SQLite, PostgreSQL and MySQL/MariaDB, chosen at run time
//! from a database URL.
//!
//! Queries are written once, with `?` placeholders, and run on every engine through
//! [`Database::fetch_all`] and [`Database::execute`]. The few places where the SQL dialects
//! differ are the small helpers on [`Engine`]; everything else is portable SQL.
//! Every statement is counted per source when the request carries a [`SqlTrace`].

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{FromRow, Row};

use super::DbName;
use super::health::Health;
use crate::config::{BreakerConfig, DatabaseConfig};
use crate::error::Refused;

/// A request statement that takes longer is logged as a warning (database and duration).
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// How an `in` list of placeholders starts ([`in_list`] writes them).
const IN_LIST: &str = "in (";
/// Lists longer than this are not padded (the engines bound placeholders per statement).
const MAX_PADDED_LIST: usize = 1024;
/// Statements with more arguments than this (the bulk writes of the seeder, the resolver
/// and the insight fit: thousands of placeholders) are prepared for their one use and not
/// kept in the connection's statement cache, where each would hold megabytes for as long
/// as its connection lives. Request statements (padded lists included) stay well below.
const MAX_CACHED_ARGS: usize = 4096;

/// The number of placeholders of an `in` list (`?, ?, ?)`), and the length of its text
/// with the closing bracket; `None` for anything else (`(select ..)`, tuples, literals).
fn list_len(sql: &str) -> Option<(usize, usize)> {
    let bytes = sql.as_bytes();
    let (mut n, mut i) = (0, 0);
    loop {
        if bytes.get(i) != Some(&b'?') {
            return None;
        }
        n += 1;
        i += 1;
        match bytes.get(i..i + 2) {
            Some(b", ") => i += 2,
            _ if bytes.get(i) == Some(&b')') => return Some((n, i + 1)),
            _ => return None,
        }
    }
}

/// The three supported database engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumIter)]
#[strum(serialize_all = "lowercase")]
pub enum Engine {
    Sqlite,
    Postgres,
    Mysql,
}

impl Engine {
    /// Reads the engine from a database URL's scheme.
    pub(crate) fn from_url(url: &str) -> Result<Self, EngineError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Engine::Sqlite),
            "postgres" | "postgresql" => Ok(Engine::Postgres),
            "mysql" | "mariadb" => Ok(Engine::Mysql),
            _ => Err(EngineError::UnsupportedScheme(scheme.to_owned())),
        }
    }

    /// The statement as this engine runs it, with the arguments to bind in order:
    /// `?` placeholders in the engine's own form (`$1, $2, ..` on PostgreSQL), and every
    /// `in (?, ?, ..)` list padded to the next power of two by repeating its last value.
    ///
    /// Padding bounds the number of distinct statements: a loader's batch of 37 keys and
    /// one of 50 run the same 64-placeholder statement, so they share one prepared
    /// statement in each connection's cache (sqlx keeps 100 per connection). Without it,
    /// each batch size was a statement of its own, prepared again (a round trip on
    /// PostgreSQL and MySQL) as the cache turned over, and held in memory per connection.
    /// A repeated value does not change what `in` matches.
    ///
    /// Our SQL never contains `?` inside string literals, so a plain scan is enough.
    pub(crate) fn statement<'a>(self, sql: &'a str, args: &'a [Arg]) -> (Cow<'a, str>, Vec<&'a Arg>) {
        let numbered = self == Engine::Postgres && sql.contains('?');
        if !numbered && !sql.contains(IN_LIST) {
            return (Cow::Borrowed(sql), args.iter().collect());
        }
        let mut out = String::with_capacity(sql.len() + 64);
        let mut bound = Vec::with_capacity(args.len() + 8);
        let mut emitted = 0;
        let mut placeholder = |out: &mut String, bound: &mut Vec<&'a Arg>, arg: usize| {
            // A statement with fewer arguments than placeholders fails in the driver, as before.
            if let Some(a) = args.get(arg) {
                bound.push(a);
            }
            emitted += 1;
            if numbered {
                out.push('$');
                out.push_str(&emitted.to_string());
            } else {
                out.push('?');
            }
        };
        let mut arg = 0;
        let mut rest = sql;
        while let Some(at) = rest.find(['?', 'i']) {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            if rest.starts_with('?') {
                placeholder(&mut out, &mut bound, arg);
                arg += 1;
                rest = &rest[1..];
                continue;
            }
            let word_start = out.is_empty() || out.ends_with(|c: char| c.is_ascii_whitespace());
            let listed = if word_start && rest.starts_with(IN_LIST) { list_len(&rest[IN_LIST.len()..]) } else { None };
            let Some((n, len)) = listed else {
                out.push('i');
                rest = &rest[1..];
                continue;
            };
            out.push_str(IN_LIST);
            let padded = if n.next_power_of_two() <= MAX_PADDED_LIST { n.next_power_of_two() } else { n };
            for i in 0..padded {
                if i > 0 {
                    out.push_str(", ");
                }
                placeholder(&mut out, &mut bound, arg + i.min(n - 1));
            }
            out.push(')');
            arg += n;
            rest = &rest[IN_LIST.len() + len..];
        }
        out.push_str(rest);
        (Cow::Owned(out), bound)
    }

    /// `sum(expr)` as a 64-bit integer: PostgreSQL and MySQL widen integer sums to
    /// NUMERIC/DECIMAL, which would not decode as `i64`.
    pub(crate) fn sum_int(self, expr: &str) -> String {
        match self {
            Engine::Sqlite => format!("sum({expr})"),
            Engine::Postgres => format!("cast(sum({expr}) as bigint)"),
            Engine::Mysql => format!("cast(sum({expr}) as signed)"),
        }
    }

    /// The calendar day (UTC) of a timestamp column, as a `date`.
    pub(crate) fn day(self, column: &str) -> String {
        match self {
            // sqlx keeps SQLite timestamps as RFC 3339 text in UTC: the day is its head.
            Engine::Sqlite => format!("substr({column}, 1, 10)"),
            Engine::Postgres => format!("cast({column} at time zone 'UTC' as date)"),
            Engine::Mysql => format!("date({column})"),
        }
    }

    /// The tail of an upsert that overwrites `columns` when the primary key exists.
    pub(crate) fn upsert(self, key: &str, columns: &[&str]) -> String {
        match self {
            Engine::Mysql => {
                let sets: Vec<String> = columns.iter().map(|c| format!("{c} = values({c})")).collect();
                format!(" on duplicate key update {}", sets.join(", "))
            }
            Engine::Sqlite | Engine::Postgres => {
                let sets: Vec<String> = columns.iter().map(|c| format!("{c} = excluded.{c}")).collect();
                format!(" on conflict ({key}) do update set {}", sets.join(", "))
            }
        }
    }

    /// `insert` that skips rows whose key already exists: (statement head, statement tail).
    pub(crate) fn insert_ignore(self) -> (&'static str, &'static str) {
        match self {
            Engine::Mysql => ("insert ignore into", ""),
            Engine::Sqlite | Engine::Postgres => ("insert into", " on conflict do nothing"),
        }
    }

    /// How many bind parameters one statement may carry (SQLite's limit is the lowest).
    pub(crate) fn max_params(self) -> usize {
        match self {
            Engine::Sqlite => 32_000,
            Engine::Postgres | Engine::Mysql => 65_000,
        }
    }
}

/// Multi-row inserts of `rows` into `table`, in statements of power-of-two lengths, the
/// longest first, each under the engine's bind limit (1,000 rows of nine columns: 512,
/// 256, 128, 64, 32, 8). A statement is prepared and kept per connection by its text: a
/// tail of each batch's own length kept a new text for every length, up to the cache's
/// bound on each connection (11 of 33 MiB of the hub's heap under q1, from the audit's
/// inserts); now a table has at most a few lengths.
pub(crate) fn insert_rows(
    db: &Database,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Arg>>,
) -> Vec<(String, Vec<Arg>)> {
    let most = (db.engine.max_params() / columns.len().max(1)).max(1);
    let tuple = format!("({})", in_list(columns.len()));
    let mut out = Vec::new();
    let mut rows = rows.into_iter();
    for n in chunk_lengths(rows.len(), most) {
        let chunk: Vec<Vec<Arg>> = rows.by_ref().take(n).collect();
        let values = vec![tuple.as_str(); n].join(", ");
        let sql = format!("insert into {table} ({}) values {values}", columns.join(", "));
        out.push((sql, chunk.into_iter().flatten().collect()));
    }
    out
}

/// `rows` split into powers of two, the longest first, none over `most` (rounded down to
/// a power of two).
fn chunk_lengths(mut rows: usize, most: usize) -> Vec<usize> {
    let most = 1 << most.max(1).ilog2();
    let mut lengths = Vec::new();
    while rows > 0 {
        let n = 1 << rows.min(most).ilog2();
        lengths.push(n);
        rows -= n;
    }
    lengths
}

/// A bind parameter. Queries take a slice of these so one code path serves all engines.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    OptDate(Option<NaiveDate>),
    OptInt(Option<i64>),
    Float(f64),
    OptFloat(Option<f64>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<DateTime<Utc>> for Arg {
    fn from(v: DateTime<Utc>) -> Self {
        Arg::Time(v)
    }
}
impl From<Option<DateTime<Utc>>> for Arg {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::OptTime(v)
    }
}
impl From<Option<NaiveDate>> for Arg {
    fn from(v: Option<NaiveDate>) -> Self {
        Arg::OptDate(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Float(v)
    }
}
impl From<Option<f64>> for Arg {
    fn from(v: Option<f64>) -> Self {
        Arg::OptFloat(v)
    }
}
impl From<NaiveDate> for Arg {
    fn from(v: NaiveDate) -> Self {
        Arg::OptDate(Some(v))
    }
}

/// Binds a slice of [`Arg`]s onto a sqlx query of any engine.
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let args = $args;
        let mut q = $q.persistent(args.len() <= MAX_CACHED_ARGS);
        for a in args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
                Arg::OptText(v) => q.bind(v.as_deref()),
                Arg::Bool(v) => q.bind(*v),
                Arg::Time(v) => q.bind(*v),
                Arg::OptTime(v) => q.bind(*v),
                Arg::OptDate(v) => q.bind(*v),
                Arg::OptInt(v) => q.bind(*v),
                Arg::Float(v) => q.bind(*v),
                Arg::OptFloat(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// Declares a struct and implements `FromRow` for it on every engine, reading each field
/// from the column of the same name. (sqlx's derive would compile a second copy of all
/// three drivers for the proc-macro host; this is all we need of it.)
#[macro_export]
macro_rules! row {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])* $vis struct $name { $($(#[$fm])* $fvis $field: $ty),* }

        impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for $name
        where
            &'static str: sqlx::ColumnIndex<R>,
            $($ty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
        {
            fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
                Ok($name { $($field: sqlx::Row::try_get(row, stringify!($field))?),* })
            }
        }
    };
}

/// A row type readable from every engine.
pub trait AnyRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, MySqlRow> + Send + Unpin
{
}
impl<T> AnyRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, MySqlRow> + Send + Unpin
{
}

/// One request's statements: counted per source when tracing is on (`C360_TRACE_SQL`),
/// and, when a limit is set, run at most so many at once, so that one request can never
/// take every connection of a pool. The default does neither (background jobs).
#[derive(Clone, Default)]
pub struct SqlTrace {
    counts: Option<Arc<[AtomicU32; DbName::COUNT]>>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for SqlTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlTrace").field("counting", &self.counts.is_some()).finish_non_exhaustive()
    }
}

impl SqlTrace {
    /// A trace that counts.
    pub(crate) fn enabled() -> Self {
        SqlTrace { counts: Some(Arc::new(Default::default())), gate: None, metrics: None }
    }

    /// The same, running at most `statements` at once.
    pub(crate) fn limited(self, statements: usize) -> Self {
        SqlTrace { gate: Some(Arc::new(tokio::sync::Semaphore::new(statements.max(1)))), ..self }
    }

    /// The same, timing each statement into `metrics`.
    pub(crate) fn measured(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        SqlTrace { metrics: Some(metrics), ..self }
    }

    /// A connection of `pool` (of database `db`) within `within` (else `PoolTimedOut`),
    /// the wait for it timed into the metrics.
    async fn acquire<DB: sqlx::Database>(
        &self,
        db: DbName,
        pool: &sqlx::Pool<DB>,
        within: Duration,
    ) -> Result<sqlx::pool::PoolConnection<DB>, sqlx::Error> {
        let started = std::time::Instant::now();
        let connection =
            tokio::time::timeout(within, pool.acquire()).await.unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
        if let Some(metrics) = &self.metrics {
            metrics.pool_wait(db.into(), started.elapsed().as_secs_f64());
        }
        connection
    }

    /// A loader's batch of `keys` keys, into the metrics.
    pub(crate) fn batched(&self, loader: &'static str, keys: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.batch(loader, keys);
        }
    }

    /// Links a loader found kept in memory (`memory`) and read from the hub store
    /// (`store`), into the metrics.
    pub(crate) fn link_lookups(&self, memory: usize, store: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.link_lookups(memory, store);
        }
    }

    /// A statement on `source` done, started at `started`: into the metrics, and logged as
    /// a warning with its database and duration when over [`SLOW_STATEMENT`], never its
    /// text (sqlx's own slow-statement log, which prints the whole statement, is off in the
    /// default filter: a bulk insert's text is megabytes of placeholders).
    fn finish<T, E>(&self, source: DbName, started: std::time::Instant, result: &Result<T, E>) {
        let elapsed = started.elapsed();
        if let Some(metrics) = &self.metrics {
            metrics.statement(source.into(), elapsed.as_secs_f64(), result.is_err());
        }
        if elapsed >= SLOW_STATEMENT {
            tracing::warn!(db = %source, ms = elapsed.as_millis() as u64, failed = result.is_err(), "slow statement");
        }
    }

    /// A statement on `source` refused before it reached the database, into the metrics.
    fn refused(&self, source: DbName, why: Refused) {
        if let Some(metrics) = &self.metrics {
            metrics.refused(source.into(), why.label());
        }
    }

    /// Counts a statement on `source` that another request's trace ran (merged).
    pub(crate) fn count(&self, source: DbName) {
        if let Some(counts) = &self.counts {
            counts[source as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a statement on `source` and waits for the request's turn to run it.
    async fn start(&self, source: DbName) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.count(source);
        match &self.gate {
            // The semaphore is never closed.
            Some(gate) => gate.acquire().await.ok(),
            None => None,
        }
    }

    /// Statements so far, by source name; `None` when tracing is off.
    pub(crate) fn snapshot(&self) -> Option<Vec<(DbName, u32)>> {
        let counts = self.counts.as_ref()?;
        Some(DbName::ALL.iter().map(|s| (*s, counts[*s as usize].load(Ordering::Relaxed))).collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unsupported database URL scheme `{0}` (use sqlite:, postgres: or mysql:)")]
    UnsupportedScheme(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    Mysql(MySqlPool),
}

/// One source database (or the hub store): its name, engine and pool.
#[derive(Clone, Debug)]
pub struct Database {
    /// Which system this is; statement traces are counted under this name.
    pub name: DbName,
    /// The engine, for the few dialect differences.
    pub(crate) engine: Engine,
    pool: Pool,
    /// How long one statement of [`Database::fetch_all`] or [`Database::execute`] may take.
    statement_timeout: Duration,
    /// How long a statement may wait for a connection.
    acquire_timeout: Duration,
    /// Its breaker, bulkhead and last ping, shared by the clones.
    pub(crate) health: Arc<Health>,
    /// A node of a Galera cluster (`@@wsrep_on`), whose reads may be stale.
    galera: bool,
    /// Every read waits until the node has applied the cluster's earlier writes
    /// ([`Database::synced`]).
    sync_reads: bool,
}

/// What a read of [`Database::synced`] on a Galera node begins with: MariaDB's
/// per-statement setting, so the pooled connection's own setting stays as it was.
const SYNC_WAIT: &str = "set statement wsrep_sync_wait = 1 for ";

/// How long a pooled connection may have been idle and still be handed out without a
/// ping. sqlx pings every connection when it returns to the pool, and by default again
/// when it is taken out: a second round trip per statement, a seventh of a profile
/// request's CPU (BENCHMARKS.md, the ladder). A connection idle for longer (one a server
/// or a proxy may have closed meanwhile) is still pinged first.
const FRESH_FOR: Duration = Duration::from_secs(10);

/// sqlx's `before_acquire`: pings a connection only when it has been idle for longer
/// than [`FRESH_FOR`]; a connection that fails the ping is dropped and another taken.
async fn ping_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for > FRESH_FOR {
        conn.ping().await?;
    }
    Ok(true)
}

/// Pool settings of one database.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub(crate) max_connections: u32,
    /// How long opening a connection may take.
    pub(crate) connect_timeout: Duration,
    /// How long a statement may wait for a connection (the pool's queue, or opening one).
    pub(crate) acquire_timeout: Duration,
    /// Statements that may wait for a connection beyond those running; more are refused.
    pub(crate) max_waiting: u32,
    pub(crate) statement_timeout: Duration,
    pub(crate) breaker: BreakerConfig,
}

impl PoolSettings {
    /// The settings of database `db` in `config`.
    pub(crate) fn of(config: &DatabaseConfig, db: DbName) -> Self {
        PoolSettings {
            max_connections: config.max_connections,
            connect_timeout: config.connect_timeout,
            acquire_timeout: config.acquire_timeout,
            max_waiting: config.max_waiting,
            statement_timeout: config.statement_timeout_of(db),
            breaker: config.breaker.clone(),
        }
    }
}

/// How many times a write MySQL/MariaDB rolled back for a conflict is run again.
const CONFLICT_RETRIES: u32 = 3;

/// MySQL/MariaDB's `ER_LOCK_DEADLOCK` (1213): a deadlock, or on a Galera cluster a write
/// set that lost certification to another node's at commit. The transaction was rolled
/// back.
fn is_conflict(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else { return false };
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|m| m.number() == 1213)
}

/// The error of a statement that ran past its database's statement timeout (the API
/// answers it with `SOURCE_TIMEOUT`).
pub(crate) fn statement_timed_out() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "statement timeout"))
}

impl Database {
    /// Connects to `url`. SQLite files are created when missing, in WAL mode.
    pub(crate) async fn connect(name: DbName, url: &str, settings: &PoolSettings) -> Result<Self, EngineError> {
        let engine = Engine::from_url(url)?;
        let pool = match engine {
            Engine::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    // Deleted content is overwritten, not left in free pages for a copy
                    // of the file to give back (erasure).
                    .pragma("secure_delete", "on")
                    .foreign_keys(false);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.connect_timeout)
                        .test_before_acquire(false)
                        .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
                        .connect_with(opts)
                        .await?,
                )
            }
            Engine::Postgres => {
                let opts = PgConnectOptions::from_str(url)?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.connect_timeout)
                        .test_before_acquire(false)
                        .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
                        .connect_with(opts)
                        .await?,
                )
            }
            Engine::Mysql => {
                let url = url.replacen("mariadb:", "mysql:", 1);
                let opts = MySqlConnectOptions::from_str(&url)?.charset("utf8mb4");
                Pool::Mysql(
                    MySqlPoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.connect_timeout)
                        .test_before_acquire(false)
                        .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
                        // Store and read DATETIME values as UTC whatever the server's zone.
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                sqlx::query("set time_zone = '+00:00'").execute(conn).await?;
                                Ok(())
                            })
                        })
                        .connect_with(opts)
                        .await?,
                )
            }
        };
        let galera = match &pool {
            // MySQL has no such variable (an error), MariaDB without Galera says 0.
            Pool::Mysql(p) => sqlx::query_scalar::<_, i64>("select cast(@@wsrep_on as signed)")
                .fetch_one(p)
                .await
                .is_ok_and(|on| on == 1),
            _ => false,
        };
        if galera {
            tracing::info!(db = %name, "a Galera node: reads that must see the other nodes' writes wait for them (wsrep_sync_wait)");
        }
        let health = Arc::new(Health::new(name, &settings.breaker, settings.max_connections, settings.max_waiting));
        Ok(Database {
            name,
            engine,
            pool,
            statement_timeout: settings.statement_timeout,
            acquire_timeout: settings.acquire_timeout,
            health,
            galera,
            sync_reads: false,
        })
    }

    /// This database for reads that must see every write committed before them on any
    /// node: on a Galera cluster, where a node may not yet have applied what another
    /// committed, each read waits until it has (`wsrep_sync_wait = 1`, a round trip
    /// within the cluster); elsewhere a committed write is visible anyway. For the hub
    /// store's reads that follow another replica's write: the revocations a bus message
    /// announced, the audit log, the identity links and positions a job takes over.
    pub(crate) fn synced(&self) -> Database {
        Database { sync_reads: self.galera, ..self.clone() }
    }

    /// `sql`, made to wait for the cluster's earlier writes when this is [`Database::synced`].
    fn read_sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        match self.sync_reads {
            true => Cow::Owned(format!("{SYNC_WAIT}{sql}")),
            false => Cow::Borrowed(sql),
        }
    }

    /// `run` under the statement timeout. The database may go on with a statement given
    /// up on until it ends; its connection serves again after that.
    /// Each statement runs in a span naming its database (never its arguments).
    async fn bounded<T>(&self, run: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, sqlx::Error> {
        let span = tracing::debug_span!("sql", db = %self.name, engine = ?self.engine);
        let run = tracing::Instrument::instrument(tokio::time::timeout(self.statement_timeout, run), span.clone());
        let result = run.await.unwrap_or_else(|_| Err(statement_timed_out()));
        span.in_scope(|| tracing::trace!(failed = result.is_err(), "statement"));
        result
    }

    /// `run` if the source's health admits it (its breaker is not open and its bulkhead
    /// has room), its outcome told to the breaker; else the refusal, at once.
    async fn guarded<T>(
        &self,
        trace: &SqlTrace,
        run: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let pass = match self.health.admit() {
            Ok(pass) => pass,
            Err(why) => {
                trace.refused(self.name, why);
                return Err(why.into_sql());
            }
        };
        let result = run.await;
        pass.record(&result);
        result
    }

    /// Runs `sql` and maps every row to `T`.
    pub async fn fetch_all<T: AnyRow>(&self, trace: &SqlTrace, sql: &str, args: &[Arg]) -> Result<Vec<T>, sqlx::Error> {
        let _turn = trace.start(self.name).await;
        let started = std::time::Instant::now();
        let read = self.read_sql(sql);
        let (sql, args) = self.engine.statement(&read, args);
        let within = self.acquire_timeout;
        let result = self
            .guarded(
                trace,
                self.bounded(async {
                    match &self.pool {
                        Pool::Sqlite(p) => {
                            let mut c = trace.acquire(self.name, p, within).await?;
                            bind_all!(sqlx::query_as::<_, T>(&sql), args).fetch_all(&mut *c).await
                        }
                        Pool::Postgres(p) => {
                            let mut c = trace.acquire(self.name, p, within).await?;
                            bind_all!(sqlx::query_as::<_, T>(&sql), args).fetch_all(&mut *c).await
                        }
                        Pool::Mysql(p) => {
                            let mut c = trace.acquire(self.name, p, within).await?;
                            bind_all!(sqlx::query_as::<_, T>(&sql), args).fetch_all(&mut *c).await
                        }
                    }
                }),
            )
            .await;
        trace.finish(self.name, started, &result);
        result
    }

    /// Runs `sql` and hands each row to `each` as it arrives, without holding the result:
    /// for the jobs that read a whole table (insights), in bounded memory.
    pub(crate) async fn for_each<T: AnyRow>(
        &self,
        sql: &str,
        args: &[Arg],
        mut each: impl FnMut(T) + Send,
    ) -> Result<(), sqlx::Error> {
        use futures::TryStreamExt as _;
        let read = self.read_sql(sql);
        let (sql, args) = self.engine.statement(&read, args);
        macro_rules! stream {
            ($p:expr) => {{
                let mut rows = bind_all!(sqlx::query_as::<_, T>(&sql), args).fetch($p);
                while let Some(row) = rows.try_next().await? {
                    each(row);
                }
            }};
        }
        self.guarded(&SqlTrace::default(), async {
            match &self.pool {
                Pool::Sqlite(p) => stream!(p),
                Pool::Postgres(p) => stream!(p),
                Pool::Mysql(p) => stream!(p),
            }
            Ok(())
        })
        .await
    }

    /// Runs a statement that returns no rows; returns the number of rows affected.
    pub async fn execute(&self, trace: &SqlTrace, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
        let _turn = trace.start(self.name).await;
        let started = std::time::Instant::now();
        let (sql, args) = self.engine.statement(sql, args);
        let within = self.acquire_timeout;
        let (sql, args) = (&sql, &args);
        let result = self
            .retrying(|| {
                self.guarded(
                    trace,
                    self.bounded(async move {
                        match &self.pool {
                            Pool::Sqlite(p) => {
                                let mut c = trace.acquire(self.name, p, within).await?;
                                bind_all!(sqlx::query(sql), args).execute(&mut *c).await.map(|r| r.rows_affected())
                            }
                            Pool::Postgres(p) => {
                                let mut c = trace.acquire(self.name, p, within).await?;
                                bind_all!(sqlx::query(sql), args).execute(&mut *c).await.map(|r| r.rows_affected())
                            }
                            Pool::Mysql(p) => {
                                let mut c = trace.acquire(self.name, p, within).await?;
                                bind_all!(sqlx::query(sql), args).execute(&mut *c).await.map(|r| r.rows_affected())
                            }
                        }
                    }),
                )
            })
            .await;
        trace.finish(self.name, started, &result);
        result
    }

    /// `run`, run again (at most [`CONFLICT_RETRIES`] times, after 10, 40 and 160 ms and
    /// a jitter) while MySQL/MariaDB rolls it back for a conflict: a deadlock, or a
    /// Galera cluster's certification failure at commit (both error 1213). Rolled back,
    /// it had no effect: running it again is safe. Other engines' errors, and other
    /// errors, are returned at once.
    async fn retrying<T, F, Fut>(&self, mut run: F) -> Result<T, sqlx::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut backoff = Duration::from_millis(10);
        let mut tries = 0;
        loop {
            match run().await {
                Err(e) if self.engine == Engine::Mysql && tries < CONFLICT_RETRIES && is_conflict(&e) => {
                    tries += 1;
                    tracing::debug!(db = %self.name, tries, "write conflict (1213): running it again");
                    let jitter = Duration::from_micros(u64::from(rand::random::<u16>()) % 10_000);
                    tokio::time::sleep(backoff + jitter).await;
                    backoff *= 4;
                }
                other => return other,
            }
        }
    }

    /// Connections of the pool: (idle, busy).
    pub(crate) fn connections(&self) -> (i64, i64) {
        let (size, idle) = match &self.pool {
            Pool::Sqlite(p) => (p.size(), p.num_idle()),
            Pool::Postgres(p) => (p.size(), p.num_idle()),
            Pool::Mysql(p) => (p.size(), p.num_idle()),
        };
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        (idle, (i64::from(size) - idle).max(0))
    }

    /// Runs several statements in one transaction (all or nothing); returns the rows each
    /// affected.
    pub(crate) async fn transaction(&self, statements: &[(String, Vec<Arg>)]) -> Result<Vec<u64>, sqlx::Error> {
        self.transaction_after(None, statements).await
    }

    /// [`Database::transaction`] under a job's lease: `fence` ([`super::lease::Lease::fence`])
    /// runs first and must touch its row, else nothing is committed and the error is
    /// `RowNotFound` (the lease is another take's now).
    pub(crate) async fn fenced(
        &self,
        fence: &(String, Vec<Arg>),
        statements: &[(String, Vec<Arg>)],
    ) -> Result<Vec<u64>, sqlx::Error> {
        self.transaction_after(Some(fence), statements).await
    }

    async fn transaction_after(
        &self,
        fence: Option<&(String, Vec<Arg>)>,
        statements: &[(String, Vec<Arg>)],
    ) -> Result<Vec<u64>, sqlx::Error> {
        macro_rules! run {
            ($p:expr) => {{
                let mut tx = $p.begin().await?;
                if let Some((sql, args)) = fence {
                    let (sql, args) = self.engine.statement(sql, args);
                    if bind_all!(sqlx::query(&sql), args).execute(&mut *tx).await?.rows_affected() != 1 {
                        // Dropped uncommitted: rolled back.
                        return Err(sqlx::Error::RowNotFound);
                    }
                }
                let mut affected = Vec::with_capacity(statements.len());
                for (sql, args) in statements {
                    let (sql, args) = self.engine.statement(sql, args);
                    affected.push(bind_all!(sqlx::query(&sql), args).execute(&mut *tx).await?.rows_affected());
                }
                tx.commit().await?;
                Ok(affected)
            }};
        }
        let trace = SqlTrace::default();
        self.retrying(|| {
            self.guarded(&trace, async {
                match &self.pool {
                    Pool::Sqlite(p) => run!(p),
                    Pool::Postgres(p) => run!(p),
                    Pool::Mysql(p) => run!(p),
                }
            })
        })
        .await
    }

    /// Counts rows of a single-column `count(*)` query.
    pub async fn fetch_count(&self, trace: &SqlTrace, sql: &str, args: &[Arg]) -> Result<i64, sqlx::Error> {
        let rows: Vec<Count> = self.fetch_all(trace, sql, args).await?;
        Ok(rows.first().map(|c| c.n).unwrap_or(0))
    }

    /// Applies the embedded migrations for this engine.
    pub(crate) async fn migrate(&self, migrations: &[(i64, &'static str, &'static str)]) -> Result<(), EngineError> {
        let migrator = Migrator {
            migrations: Cow::Owned(
                migrations
                    .iter()
                    .map(|(version, description, sql)| {
                        Migration::new(
                            *version,
                            Cow::Borrowed(*description),
                            MigrationType::Simple,
                            Cow::Borrowed(*sql),
                            false,
                        )
                    })
                    .collect(),
            ),
            ..Migrator::DEFAULT
        };
        match &self.pool {
            Pool::Sqlite(p) => migrator.run(p).await?,
            Pool::Postgres(p) => migrator.run(p).await?,
            Pool::Mysql(p) => migrator.run(p).await?,
        }
        Ok(())
    }

    /// Refreshes the planner's statistics of `tables`, after writes that grew them a lot:
    /// a table the planner still believes empty gets plans for an empty table (on a
    /// PostgreSQL without autovacuum, the first resolution of 100,000 customers took
    /// minutes instead of seconds, each lookup of a thousand keys 1.5 s).
    pub async fn analyze(&self, tables: &[&str]) -> Result<(), sqlx::Error> {
        let statements: Vec<(String, Vec<Arg>)> = match self.engine {
            // One table per statement: a bare `analyze` would also scan the audit log.
            Engine::Sqlite => tables.iter().map(|t| (format!("analyze {t}"), vec![])).collect(),
            Engine::Postgres => vec![(format!("analyze {}", tables.join(", ")), vec![])],
            Engine::Mysql => vec![(format!("analyze table {}", tables.join(", ")), vec![])],
        };
        self.transaction(&statements).await.map(|_| ())
    }

    /// After an erasure: the planner's statistics of `tables` gathered again (SQLite's
    /// `sqlite_stat4` and PostgreSQL's `pg_stats` keep samples of values, erased keys
    /// among them), and on SQLite the write-ahead log checkpointed and truncated (its
    /// frames held the pages as they were before the deletion). The deleted rows themselves
    /// are overwritten where they stood: SQLite databases run with `secure_delete`.
    pub(crate) async fn scrub(&self, tables: &[&str]) -> Result<(), sqlx::Error> {
        if !tables.is_empty() {
            self.analyze(tables).await?;
        }
        if self.engine == Engine::Sqlite {
            self.execute(&SqlTrace::default(), "pragma wal_checkpoint(truncate)", &[]).await?;
        }
        Ok(())
    }

    /// Whether the database answers: a statement got an answer within `recently`, or it
    /// answers `select 1` within `within`, past its breaker and bulkhead (the background
    /// health check, which must see a source come back); the outcome goes into its
    /// health.
    pub(crate) async fn check(&self, within: Duration, recently: Duration) -> bool {
        if self.health.answered_within(recently) {
            self.health.pinged(self.name, true);
            return true;
        }
        let ping = async {
            match &self.pool {
                Pool::Sqlite(p) => sqlx::query("select 1").execute(p).await.map(|_| ()),
                Pool::Postgres(p) => sqlx::query("select 1").execute(p).await.map(|_| ()),
                Pool::Mysql(p) => sqlx::query("select 1").execute(p).await.map(|_| ()),
            }
        };
        let answered = matches!(tokio::time::timeout(within, ping).await, Ok(Ok(())));
        self.health.pinged(self.name, answered);
        answered
    }

    /// A connection that listens for PostgreSQL's notifications (`LISTEN`), out of the
    /// pool; an error over the other engines.
    pub(crate) async fn listener(&self) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
        match &self.pool {
            Pool::Postgres(p) => sqlx::postgres::PgListener::connect_with(p).await,
            _ => Err(sqlx::Error::Configuration("LISTEN needs PostgreSQL".into())),
        }
    }

    /// Closes the pool, waiting for connections in use.
    pub(crate) async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
            Pool::Mysql(p) => p.close().await,
        }
    }
}

/// The row of a `select count(*) as n` query.
#[derive(Debug)]
pub(crate) struct Count {
    pub(crate) n: i64,
}

// Hand-written so `n` decodes whatever integer width the engine returns for count(*).
macro_rules! count_from_row {
    ($row:ty) => {
        impl<'r> FromRow<'r, $row> for Count {
            fn from_row(row: &'r $row) -> Result<Self, sqlx::Error> {
                let n: i64 = match row.try_get::<i64, _>("n") {
                    Ok(v) => v,
                    Err(_) => i64::from(row.try_get::<i32, _>("n")?),
                };
                Ok(Count { n })
            }
        }
    };
}
count_from_row!(SqliteRow);
count_from_row!(PgRow);
count_from_row!(MySqlRow);

/// Integer keys as bind parameters, for `in (..)` lists.
pub(crate) fn ints(ids: &[i64]) -> Vec<Arg> {
    ids.iter().map(|id| Arg::Int(*id)).collect()
}

/// `?, ?, ?` for an `in (..)` list of `n` values.
pub(crate) fn in_list(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test MySQL/MariaDB server's URL, and a hub database on it.
    async fn mysql() -> (String, Database) {
        let url = std::env::var("C360_TEST_MYSQL_URL").expect("C360_TEST_MYSQL_URL");
        let settings = PoolSettings::of(&DatabaseConfig::default(), DbName::Hub);
        let db = Database::connect(DbName::Hub, &url, &settings).await.expect("connect");
        (url, db)
    }

    /// A deadlock (as a Galera cluster's certification failure, error 1213) rolls our
    /// transaction back; it is run again and goes through once the other commits.
    #[tokio::test]
    #[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
    async fn a_write_rolled_back_for_a_conflict_is_run_again() {
        use sqlx::Connection as _;
        let (url, db) = mysql().await;
        let table = format!("c360_conflict_{}", uuid::Uuid::new_v4().simple());
        let trace = SqlTrace::default();
        db.execute(&trace, &format!("create table {table} (id int primary key, v int) engine = innodb"), &[])
            .await
            .expect("create");
        db.execute(&trace, &format!("insert into {table} values (1, 0), (2, 0)"), &[]).await.expect("rows");
        // Another session changes row 2 and keeps it locked: the heavier transaction.
        let mut other = sqlx::MySqlConnection::connect(&url).await.expect("other");
        sqlx::query("begin").execute(&mut other).await.expect("begin");
        sqlx::query(&format!("update {table} set v = 5 where id = 2")).execute(&mut other).await.expect("row 2");
        // Ours locks row 1 without changing it, then waits for row 2.
        let ours = {
            let (db, table) = (db.clone(), table.clone());
            tokio::spawn(async move {
                db.transaction(&[
                    (format!("update {table} set v = v where id = 1"), vec![]),
                    (format!("update {table} set v = 1 where id = 2"), vec![]),
                ])
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The other now wants row 1: a deadlock, and ours (which changed nothing) is rolled back.
        sqlx::query(&format!("update {table} set v = 5 where id = 1"))
            .execute(&mut other)
            .await
            .expect("the other wins");
        tokio::time::sleep(Duration::from_millis(100)).await;
        sqlx::query("commit").execute(&mut other).await.expect("commit");
        let done = ours.await.expect("task");
        let rows: Vec<(i32, i32)> = sqlx::query_as(&format!("select id, v from {table} order by id"))
            .fetch_all(&mut other)
            .await
            .expect("rows");
        let _ = sqlx::query(&format!("drop table {table}")).execute(&mut other).await;
        assert!(done.is_ok(), "ran again after the conflict: {done:?}");
        assert_eq!(rows, [(1, 5), (2, 1)]);
    }

    /// A synced read on a Galera node carries MariaDB's per-statement `wsrep_sync_wait`,
    /// which the server takes as a prepared statement with arguments; elsewhere a read is
    /// sent as it is. (Debian's MariaDB knows the variable with Galera off; the chaos
    /// test in `bench/` runs it on a cluster.)
    #[tokio::test]
    #[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
    async fn a_synced_read_on_galera_waits_for_the_cluster() {
        let (_, db) = mysql().await;
        assert!(!db.galera, "the test server is a standalone MariaDB");
        assert_eq!(db.synced().read_sql("select 1"), "select 1");
        let node = Database { galera: true, ..db };
        let synced = node.synced();
        assert!(synced.read_sql("select 1").starts_with(SYNC_WAIT));
        assert_eq!(node.read_sql("select 1"), "select 1", "only the synced clone waits");
        let sql = "select cast(? as signed) + 1 as n";
        let rows: Vec<Count> = synced.fetch_all(&SqlTrace::default(), sql, &[Arg::Int(41)]).await.expect("synced read");
        assert_eq!(rows.first().map(|c| c.n), Some(42));
    }

    #[tokio::test]
    async fn a_statement_past_its_timeout_fails_and_the_pool_serves_on() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite:{}", dir.path().join("slow.db").display());
        let settings = PoolSettings {
            max_connections: 2,
            statement_timeout: Duration::from_millis(100),
            ..PoolSettings::of(&DatabaseConfig::default(), DbName::Shop)
        };
        let db = Database::connect(DbName::Shop, &url, &settings).await.expect("connect");
        // Counting to a billion takes SQLite far longer than the timeout.
        let slow = "with recursive c(x) as (select 1 union all select x + 1 from c where x < 1000000000)
                    select count(*) as n from c";
        let started = std::time::Instant::now();
        let error = db.fetch_count(&SqlTrace::default(), slow, &[]).await.expect_err("timed out");
        assert!(matches!(&error, sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "given up on at the timeout: {:?}", started.elapsed());
        assert_eq!(db.fetch_count(&SqlTrace::default(), "select 7 as n", &[]).await.expect("serves"), 7);
    }

    #[tokio::test]
    async fn a_limited_trace_runs_so_many_statements_at_once() {
        let trace = SqlTrace::enabled().limited(2);
        let (first, second) = (trace.start(DbName::Hub).await, trace.start(DbName::Shop).await);
        assert!(first.is_some() && second.is_some());
        let wait = Duration::from_millis(50);
        assert!(tokio::time::timeout(wait, trace.start(DbName::Crm)).await.is_err(), "a third statement waits");
        drop(first);
        assert!(tokio::time::timeout(wait, trace.start(DbName::Crm)).await.is_ok(), "and runs once one is done");
        // Counted all the same, each where it ran.
        let counts = trace.snapshot().expect("counting");
        assert_eq!(counts.iter().find(|(db, _)| *db == DbName::Crm).map(|(_, n)| *n), Some(2));
        // Background jobs are not limited.
        assert!(SqlTrace::default().start(DbName::Hub).await.is_none());
    }

    fn statement(engine: Engine, sql: &str, args: &[i64]) -> (String, Vec<i64>) {
        let args = ints(args);
        let (sql, bound) = engine.statement(sql, &args);
        let bound = bound.iter().map(|a| match a {
            Arg::Int(v) => *v,
            other => panic!("not an int: {other:?}"),
        });
        (sql.into_owned(), bound.collect())
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        assert_eq!(statement(Engine::Postgres, "a = ? and b > ?", &[1, 2]), ("a = $1 and b > $2".into(), vec![1, 2]));
        assert_eq!(statement(Engine::Mysql, "a = ?", &[1]), ("a = ?".into(), vec![1]));
    }

    #[test]
    fn rows_are_inserted_in_few_lengths() {
        assert_eq!(chunk_lengths(0, 7_000), Vec::<usize>::new());
        assert_eq!(chunk_lengths(7, 7_000), [4, 2, 1]);
        assert_eq!(chunk_lengths(1_000, 7_000), [512, 256, 128, 64, 32, 8]);
        assert_eq!(chunk_lengths(10_000, 7_000), [4_096, 4_096, 1_024, 512, 256, 16]);
        // Whatever the batch, a table's statements have one of a few lengths.
        let all: std::collections::BTreeSet<usize> = (0..=2_000).flat_map(|n| chunk_lengths(n, 7_000)).collect();
        assert_eq!(all.len(), 11);
    }

    #[test]
    fn in_lists_are_padded_to_a_power_of_two_with_their_last_value() {
        let sql = format!(
            "select x from t where a = ? and b in ({}) and c = ? and d in ({}) order by 1",
            in_list(3),
            in_list(5)
        );
        let (pg, bound) = statement(Engine::Postgres, &sql, &[7, 1, 2, 3, 8, 4, 5, 6, 7, 9]);
        assert_eq!(
            pg,
            "select x from t where a = $1 and b in ($2, $3, $4, $5) and c = $6 and d in ($7, $8, $9, $10, $11, $12, $13, $14) order by 1"
        );
        assert_eq!(bound, vec![7, 1, 2, 3, 3, 8, 4, 5, 6, 7, 9, 9, 9, 9]);
        let (sqlite, bound) = statement(Engine::Sqlite, &sql, &[7, 1, 2, 3, 8, 4, 5, 6, 7, 9]);
        assert_eq!(sqlite.matches('?').count(), 14);
        assert_eq!(bound.len(), 14);
        // Batches of different sizes share a statement; one key and powers of two stay as they are.
        let of = |n: usize| {
            statement(Engine::Sqlite, &format!("select x from t where id in ({})", in_list(n)), &vec![1; n]).0
        };
        assert_eq!(of(37), of(50));
        assert_eq!(of(1), "select x from t where id in (?)");
        assert_eq!(of(4).matches('?').count(), 4);
        assert_eq!(of(2000).matches('?').count(), 2000);
    }

    #[test]
    fn only_lists_of_placeholders_are_padded() {
        // `in` must start a word and open a list of placeholders alone: `join (?, ?)` and
        // `min(?)` are not `in` lists, nor are subqueries and tuples.
        for sql in [
            "select x from t where a in (select b from u where c = ?) and d = ?",
            "select x from t where (a, b) in ((?, ?), (?, ?))",
            "insert into t (a, b) values (?, ?)",
            "select min(?) from t join (?, ?)",
        ] {
            let n = sql.matches('?').count() as i64;
            let (out, bound) = statement(Engine::Sqlite, sql, &(1..=n).collect::<Vec<_>>());
            assert_eq!((out.as_str(), bound.len() as i64), (sql, n), "{sql}");
        }
    }

    #[test]
    fn engine_follows_the_url_scheme() {
        assert_eq!(Engine::from_url("sqlite:data/crm.db").ok(), Some(Engine::Sqlite));
        assert_eq!(Engine::from_url("postgresql://root@h/db").ok(), Some(Engine::Postgres));
        assert_eq!(Engine::from_url("mariadb://root@h/db").ok(), Some(Engine::Mysql));
        assert!(Engine::from_url("oracle://x").is_err());
    }
}
