//! The four source systems and the hub store: connecting, migrating, and the SQL each
//! system answers. One module per source; none of them knows anything of GraphQL.

pub(crate) mod bus;
pub mod contract;
pub(crate) mod crm;
pub(crate) mod engine;
pub(crate) mod health;
pub(crate) mod helpdesk;
pub mod lease;
pub(crate) mod marketing;
pub(crate) mod shop;

use secrecy::ExposeSecret;

use crate::config::Config;
pub use crate::names::{DbName, SourceName};
pub use engine::{Arg, Database, Engine, EngineError, PoolSettings, SqlTrace};

/// What the hub knows of one source system, declared in the source's own module
/// (`crm::SOURCE`, …): adding a source is its module plus one line in [`def`].
pub(crate) struct SourceDef {
    /// The tables and columns c360 reads (`c360 check`, README).
    pub(crate) contract: &'static [contract::Table],
    /// How the identity resolver reads its records: the table and a select list giving
    /// `id, email, phone, first_name, last_name, country, updated_at`.
    pub(crate) identity: (&'static str, &'static str),
    /// Its schema per engine (development and `c360 migrate --sources` only).
    pub(crate) migrations: [(Engine, MigrationSet); 3],
    /// Everything it holds about the records with these keys, as JSON (the right of
    /// access; `exportCustomer`).
    pub(crate) export: ExportFn,
    /// What erasing the records with these keys takes (`eraseCustomer`).
    pub(crate) erasure: fn(&[i64]) -> Erasure,
}

/// A source's export: its rows about some records, by table, as JSON.
pub(crate) type ExportFn = for<'a> fn(
    &'a Database,
    &'a SqlTrace,
    &'a [i64],
) -> futures::future::BoxFuture<'a, Result<serde_json::Value, sqlx::Error>>;

/// One SQL statement and its arguments.
pub(crate) type Statement = (String, Vec<Arg>);

/// Erasing a person from one source: statements that keep rows but take the person out
/// of them (run first, counted as anonymized), and statements that delete.
pub(crate) struct Erasure {
    pub(crate) anonymize: Vec<Statement>,
    pub(crate) delete: Vec<Statement>,
}

/// The text left where free text about an erased person was.
pub(crate) const ERASED_TEXT: &str = "[erased]";

/// Deletes the rows of `table` whose `column` is one of `ids`.
pub(crate) fn delete_in(table: &str, column: &str, ids: &[i64]) -> Statement {
    (format!("delete from {table} where {column} in ({})", engine::in_list(ids.len())), engine::ints(ids))
}

/// Rows of `table` whose `column` is one of `ids` (none, without a statement, for no ids).
pub(crate) async fn rows_in<T: engine::AnyRow>(
    db: &Database,
    trace: &SqlTrace,
    columns: &str,
    table: &str,
    column: &str,
    ids: &[i64],
) -> Result<Vec<T>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!("select {columns} from {table} where {column} in ({}) order by 1", engine::in_list(ids.len()));
    db.fetch_all(trace, &sql, &engine::ints(ids)).await
}

/// The one list of sources.
pub(crate) fn def(source: SourceName) -> &'static SourceDef {
    match source {
        SourceName::Crm => &crm::SOURCE,
        SourceName::Shop => &shop::SOURCE,
        SourceName::Helpdesk => &helpdesk::SOURCE,
        SourceName::Marketing => &marketing::SOURCE,
    }
}

/// The tables and columns c360 needs of `source`.
pub fn contract(source: SourceName) -> &'static [contract::Table] {
    def(source).contract
}

/// The embedded migrations of one database.
pub(crate) type MigrationSet = &'static [(i64, &'static str, &'static str)];

/// The embedded migrations of `migrations/<db>/<engine>/`, each given as its version,
/// file and name.
macro_rules! migrations {
    ($db:literal $(, $version:literal $file:literal $name:literal)+) => {
        [
            ($crate::sources::Engine::Sqlite, &[$(($version, $name, include_str!(concat!("../../migrations/", $db, "/sqlite/", $file)))),+]),
            ($crate::sources::Engine::Postgres, &[$(($version, $name, include_str!(concat!("../../migrations/", $db, "/postgres/", $file)))),+]),
            ($crate::sources::Engine::Mysql, &[$(($version, $name, include_str!(concat!("../../migrations/", $db, "/mysql/", $file)))),+]),
        ]
    };
}
pub(crate) use migrations;

/// Midnight (UTC) at the start of `day`.
pub fn midnight(day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Midnight (UTC) at the end of `day`: a timestamp before it is on `day` or earlier.
pub(crate) fn end_of(day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    midnight(day.succ_opt().unwrap_or(day))
}

crate::row! {
    struct Newest {
        at: Option<chrono::DateTime<chrono::Utc>>,
    }
}

/// The newest value of a timestamp column (`updated_at`: the newest change a table
/// holds), `None` when the table is empty. `table` and `column` are the caller's own
/// names, never input.
pub(crate) async fn newest(
    db: &Database,
    table: &str,
    column: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    let rows: Vec<Newest> =
        db.fetch_all(&SqlTrace::default(), &format!("select max({column}) as at from {table}"), &[]).await?;
    Ok(rows.into_iter().next().and_then(|r| r.at))
}

crate::row! {
    struct ChangedKey {
        changed: i64,
    }
}

/// The values of the integer `column` of `table`'s rows changed (`updated_at`) after
/// `since`, each once. Not `distinct` in SQL: SQLite would then scan an index on the
/// column (a second for the orders of a million customers) instead of seeking the one on
/// `updated_at`. `table` and `column` are the caller's own names, never input.
pub(crate) async fn changed_keys(
    db: &Database,
    table: &str,
    column: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<i64>, sqlx::Error> {
    // (`key` would be a reserved word in MySQL.)
    let sql = format!("select {column} as changed from {table} where updated_at > ?");
    let rows: Vec<ChangedKey> = db.fetch_all(&SqlTrace::default(), &sql, &[since.into()]).await?;
    let mut keys: Vec<i64> = rows.into_iter().map(|r| r.changed).collect();
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// Rows of `table` (with an `id` and an `updated_at`) changed after the position
/// (`since`, `after_id`), in (`updated_at`, `id`) order, at most `limit`: change detection
/// pages through a source's changes with it. `updated_at` is read with `columns`.
pub(crate) async fn changes<T: engine::AnyRow>(
    db: &Database,
    table: &str,
    columns: &str,
    (since, after_id): (chrono::DateTime<chrono::Utc>, i64),
    limit: i64,
) -> Result<Vec<T>, sqlx::Error> {
    // The first condition alone is what the `updated_at` index serves.
    let sql = format!(
        "select {columns}, updated_at from {table} where updated_at >= ? and (updated_at > ? or id > ?)
         order by updated_at, id limit {limit}"
    );
    db.fetch_all(&SqlTrace::default(), &sql, &[since.into(), since.into(), after_id.into()]).await
}

/// The hub store's migrations.
const HUB_MIGRATIONS: [(Engine, MigrationSet); 3] = migrations!("hub", 1 "0001_init.sql" "init", 2 "0002_audit.sql" "audit", 3 "0003_insights.sql" "insights", 4 "0004_insight_pareto.sql" "insight pareto",
    5 "0005_insight_satisfaction.sql" "insight satisfaction", 6 "0006_insight_affinities.sql" "insight affinities",
    7 "0007_insight_groups.sql" "insight groups", 8 "0008_contact_quality.sql" "contact quality",
    9 "0009_insight_updates.sql" "insight updates", 10 "0010_revocations.sql" "revocations",
    11 "0011_job_leases.sql" "job leases", 12 "0012_audit_revocations.sql" "audit revocations",
    13 "0013_link_generation.sql" "link generation", 14 "0014_audit_reads.sql" "audit reads",
    15 "0015_lease_tokens.sql" "lease tokens", 16 "0016_watermark_nanos.sql" "watermark nanos",
    17 "0017_alerts.sql" "alerts");

fn migrations_for(db: DbName, engine: Engine) -> MigrationSet {
    let sets = match db.source() {
        Some(source) => &def(source).migrations,
        None => &HUB_MIGRATIONS,
    };
    sets.iter().find(|(e, _)| *e == engine).map(|(_, m)| *m).unwrap_or(&[])
}

/// A database that could not be reached or migrated; names which one.
#[derive(Debug, thiserror::Error)]
#[error("{db} database ({engine_hint}): {source}")]
pub struct ConnectError {
    pub(crate) db: DbName,
    /// The URL's scheme and host, never its password.
    pub(crate) engine_hint: String,
    #[source]
    pub(crate) source: EngineError,
}

/// Which database schemas [`Sources::connect`] brings up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrate {
    /// None: connect only (`c360 check`).
    Nothing,
    /// The hub store, which c360 owns; the sources are the company's and left alone
    /// (production).
    Hub,
    /// The hub store and the sources (development, or `c360 migrate --sources`).
    All,
}

/// All databases of one deployment, in the order of [`DbName::ALL`]. Cheap to clone
/// (pools are shared). Code that works on every database iterates [`Sources::all`];
/// code of one source names it.
#[derive(Clone, Debug)]
pub struct Sources {
    dbs: std::sync::Arc<[Database]>,
}

impl Sources {
    /// Connects to every database in the config and brings the schemas `migrate` names up
    /// to date. Fails with the name of the first database that is unreachable.
    pub async fn connect(config: &Config, migrate: Migrate) -> Result<Self, ConnectError> {
        let urls = config.database_urls();
        let mut dbs = Vec::with_capacity(DbName::COUNT);
        for db in DbName::ALL {
            let settings = PoolSettings::of(&config.database, db);
            let url = urls[&db].expose_secret();
            let fail = |source| ConnectError { db, engine_hint: redact_url(url), source };
            let database = Database::connect(db, url, &settings).await.map_err(fail)?;
            let wanted = match migrate {
                Migrate::Nothing => false,
                Migrate::Hub => db == DbName::Hub,
                Migrate::All => true,
            };
            if wanted {
                database.migrate(migrations_for(db, database.engine)).await.map_err(fail)?;
            }
            dbs.push(database);
        }
        Ok(Sources { dbs: dbs.into() })
    }

    /// One database.
    pub(crate) fn get(&self, db: DbName) -> &Database {
        &self.dbs[db as usize]
    }

    /// The database of one source.
    pub fn source(&self, name: SourceName) -> &Database {
        self.get(name.db())
    }

    /// Every database, the hub store last.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Database> {
        self.dbs.iter()
    }

    pub fn crm(&self) -> &Database {
        self.get(DbName::Crm)
    }

    pub fn shop(&self) -> &Database {
        self.get(DbName::Shop)
    }

    pub fn helpdesk(&self) -> &Database {
        self.get(DbName::Helpdesk)
    }

    pub fn marketing(&self) -> &Database {
        self.get(DbName::Marketing)
    }

    /// The hub's own store.
    pub fn hub(&self) -> &Database {
        self.get(DbName::Hub)
    }

    pub(crate) async fn close(&self) {
        for db in self.all() {
            db.close().await;
        }
    }

    /// Checks every database every `every` until `stop` turns true, keeping each one's
    /// health: what `/readyz` and `c360_source_up` report without asking a database. A
    /// database whose statements got answers within `every` counts as answering; the
    /// others are pinged (each given at most a second, or `every` when shorter).
    pub(crate) async fn watch(self, every: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        let within = every.min(std::time::Duration::from_secs(1));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            futures::future::join_all(self.all().map(|db| db.check(within, every))).await;
        }
    }
}

/// A URL fit for logs and errors: scheme, host and path, never the user or password.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
            format!("{scheme}://{}", host.split('?').next().unwrap_or(host))
        }
        None => url.split('?').next().unwrap_or(url).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_carry_no_credentials() {
        assert_eq!(redact_url("postgres://root:secret@127.0.0.1:5432/crm"), "postgres://127.0.0.1:5432/crm");
        assert_eq!(redact_url("sqlite:data/crm.db?mode=rwc"), "sqlite:data/crm.db");
    }

    #[test]
    fn every_database_has_migrations_on_every_engine() {
        for db in DbName::ALL {
            for engine in [Engine::Sqlite, Engine::Postgres, Engine::Mysql] {
                assert!(!migrations_for(db, engine).is_empty(), "{db} on {engine}");
            }
        }
    }
}

/// A page of a "newest first" list under each of many parents: at most `limit` rows per
/// parent, optionally only those strictly older than the `before` cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Page {
    /// Rows to read per parent (callers ask for one more than they show, to know
    /// whether there is a next page).
    pub(crate) limit: i64,
    /// Only rows older than this (time, id), newest first.
    pub(crate) before: Option<(chrono::DateTime<chrono::Utc>, i64)>,
}

/// The SQL and arguments of one windowed page query over `table`: the newest
/// `page.limit` rows of every parent in `parents`, ordered by `(time_col, id)` descending.
/// One statement for any number of parents; `row_number()` works on all three engines
/// (SQLite 3.25+, PostgreSQL, MariaDB 10.2+/MySQL 8).
pub(crate) fn newest_first(
    columns: &str,
    table: &str,
    parent_col: &str,
    time_col: &str,
    parents: &[i64],
    page: &Page,
) -> (String, Vec<Arg>) {
    let mut args = engine::ints(parents);
    let cursor = match page.before {
        Some((time, id)) => {
            args.extend([Arg::Time(time), Arg::Time(time), Arg::Int(id)]);
            format!(" and ({time_col} < ? or ({time_col} = ? and id < ?))")
        }
        None => String::new(),
    };
    args.push(Arg::Int(page.limit));
    let sql = format!(
        "select {columns} from (
            select {columns}, row_number() over (partition by {parent_col} order by {time_col} desc, id desc) as rn
            from {table}
            where {parent_col} in ({list}){cursor}
         ) ranked
         where rn <= ?
         order by {parent_col}, {time_col} desc, id desc",
        list = engine::in_list(parents.len()),
    );
    (sql, args)
}

crate::row! {
    /// A source record as the identity resolver sees it: its key, contact keys as typed,
    /// a name (CRM only) and a country for reading national phone numbers.
    #[derive(Debug, Clone)]
    pub(crate) struct IdentityRecord {
        pub(crate) id: i64,
        pub(crate) email: Option<String>,
        pub(crate) phone: Option<String>,
        pub(crate) first_name: Option<String>,
        pub(crate) last_name: Option<String>,
        pub(crate) country: Option<String>,
        pub(crate) updated_at: chrono::DateTime<chrono::Utc>,
    }
}

/// Reads source records changed after the watermark `(updated_at, id)`, oldest first.
pub(crate) async fn changed_records(
    sources: &Sources,
    source: SourceName,
    after: Option<(chrono::DateTime<chrono::Utc>, i64)>,
    limit: i64,
) -> Result<Vec<IdentityRecord>, sqlx::Error> {
    let (table, columns) = def(source).identity;
    let (filter, mut args) = match after {
        Some((at, id)) => {
            ("where updated_at > ? or (updated_at = ? and id > ?)", vec![Arg::Time(at), Arg::Time(at), Arg::Int(id)])
        }
        None => ("", vec![]),
    };
    args.push(Arg::Int(limit));
    let sql = format!("select {columns} from {table} {filter} order by updated_at, id limit ?");
    sources.source(source).fetch_all(&SqlTrace::default(), &sql, &args).await
}
