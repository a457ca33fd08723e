//! One typed configuration, read from an optional TOML file and then `C360_*` environment
//! variables (nested keys with `__`, e.g. `C360_SOURCES__CRM=postgres://..`).
//! With nothing configured, every database is an embedded SQLite file under `data_dir`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

use crate::names::{DbName, SourceName};

/// The whole configuration. Unknown keys are rejected, so a typo fails at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP server listens (`--listen`, `C360_LISTEN`).
    pub listen: SocketAddr,
    /// The names the hub is reached by besides its listen address: `c360.example.com`
    /// (any port) or `c360.example.com:8443` (that port only). The development endpoints
    /// answer only requests addressed (`Host`) to the listen address or one of these, and
    /// a browser's websocket must come from one of them (`Origin`), so that a page on a
    /// name that merely resolves to the hub (DNS rebinding) reaches neither.
    pub allowed_hosts: Vec<String>,
    /// On SIGTERM or SIGINT, how long requests and websocket operations in flight may
    /// take to finish before they are cut off.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Directory for the embedded SQLite databases of the default deployment.
    pub data_dir: PathBuf,
    /// Database URL of each source (`sources.crm = "postgres://…"`); a missing one is an
    /// SQLite file in `data_dir`. Secrets: they may hold passwords, so they never print
    /// (`Debug` shows `[REDACTED]`). An unknown source name is an error.
    pub sources: BTreeMap<SourceName, SecretString>,
    /// Database URL of the hub's own store (identity links); SQLite in `data_dir` by default.
    /// A secret: it may hold a password, and never prints.
    pub hub: Option<SecretString>,
    /// Connection pool settings shared by every database.
    pub database: DatabaseConfig,
    /// Demo data written on first start.
    pub seed: SeedConfig,
    /// Identity resolution.
    pub identity: IdentityConfig,
    /// The insight models' refresh.
    pub insights: InsightsConfig,
    /// GraphQL limits.
    pub graphql: GraphqlConfig,
    /// Per-token rate limits, by role and by partner.
    pub rate_limits: RateLimitsConfig,
    /// The bus between replicas.
    pub bus: BusConfig,
    /// Service alerts: what is detected in the sources, and how often.
    pub alerts: AlertsConfig,
    /// Safelists: the only documents some roles or partners may run.
    pub safelists: SafelistsConfig,
    /// `development` (default) or `production`; production refuses the development key.
    pub environment: Environment,
    /// Token verification.
    pub auth: AuthConfig,
    /// The keys ids and cursors are sealed with.
    pub ids: IdsConfig,
    /// How long a client may take to send what the hub must read before it can answer.
    pub http: HttpConfig,
    /// The partner firms the company shares data with, by id (`acme-insurance`): the
    /// only ids a partner token or a consent may name. The demo's two by default.
    pub partners: Vec<String>,
    /// The privacy policy file; the shipped `policy.toml` when unset.
    pub policy: Option<PathBuf>,
    /// The audit log's writer.
    pub audit: AuditConfig,
    /// Log format (the level is `C360_LOG`) and trace export.
    pub telemetry: TelemetryConfig,
    /// Count SQL statements per request and report them in `extensions.sqlStatements`
    /// (`C360_TRACE_SQL=1`). For development and tests; costs an atomic add per statement.
    #[serde(deserialize_with = "flag")]
    pub trace_sql: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connections per database and replica.
    pub max_connections: u32,
    /// How long opening a database connection may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long a statement may wait for a connection (the pool's queue, or opening one)
    /// before it fails with `SOURCE_UNAVAILABLE`.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// The bulkhead: statements that may wait for a connection of one database beyond
    /// those running (`max_connections`); more fail at once with `SOURCE_UNAVAILABLE`, so
    /// that a slow source holds no more than its own share of the requests.
    pub max_waiting: u32,
    /// Each source's circuit breaker.
    pub breaker: BreakerConfig,
    /// How often every database is pinged in the background (`/readyz`,
    /// `c360_source_up`); 0 turns the pings off.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// How long one statement may take (the wait for a connection included) before it
    /// fails with `SOURCE_TIMEOUT`; the jobs' streaming reads of whole tables are exempt.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// A source's own statement timeout, in place of `statement_timeout`
    /// (`statement_timeouts.shop = "2s"`).
    pub(crate) statement_timeouts: BTreeMap<SourceName, humantime_serde::Serde<Duration>>,
    /// Whether a loader's statement that finds another of its kind running waits for it
    /// and runs merged with the others that arrived meanwhile (one statement for many
    /// requests' keys; each request gets only its own keys' rows).
    pub merge_statements: bool,
}

impl DatabaseConfig {
    /// The statement timeout of `db`.
    pub(crate) fn statement_timeout_of(&self, db: DbName) -> Duration {
        db.source().and_then(|s| self.statement_timeouts.get(&s)).map_or(self.statement_timeout, |t| **t)
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(2),
            max_waiting: 32,
            breaker: BreakerConfig::default(),
            health_interval: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(10),
            statement_timeouts: BTreeMap::new(),
            merge_statements: true,
        }
    }
}

/// When a source's breaker opens, and for how long.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Statements the window must hold before the breaker may open.
    pub requests: u32,
    /// The share of failed statements (connection errors and timeouts, never a statement
    /// the database refused) at which it opens.
    pub error_rate: f64,
    /// The sliding window the rate is taken over (moving average); also how long after a
    /// start or a recovery before the breaker may open again.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long an open breaker refuses every statement before one is let through to try.
    #[serde(with = "humantime_serde")]
    pub open: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        // Cosmo Router's defaults: 20 requests, 50% errors, 30 s open.
        BreakerConfig { requests: 20, error_rate: 0.5, window: Duration::from_secs(5), open: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedConfig {
    /// Seed demo data when the CRM database is empty on start (embedded default only
    /// makes sense with this on; turn it off for real deployments).
    #[serde(deserialize_with = "flag")]
    pub(crate) on_empty: bool,
    /// How many demo people to create.
    pub(crate) customers: u64,
    /// Random seed: the same seed gives the same data.
    pub(crate) seed: u64,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig { on_empty: true, customers: 10_000, seed: 360 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Region for phone numbers written without a country code and without a country on
    /// the record (ISO 3166-1 alpha-2).
    pub default_region: String,
    /// How often the background resolver picks up new and changed source records;
    /// `0s` turns the background job off (`c360 resolve` still works).
    #[serde(with = "humantime_serde")]
    pub resolve_interval: Duration,
    /// Source records read and resolved per batch.
    pub(crate) batch_size: usize,
    /// How long the resolution's lease lasts from its take and from each batch it
    /// commits: how soon another replica takes over from one that died mid-run.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Customers whose identity links `serve` keeps in memory between requests, so that
    /// reading a customer by id takes one statement fewer; `0` turns it off. Another
    /// process's merge or erasure reaches them within a second.
    pub link_cache_entries: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            default_region: "DE".into(),
            resolve_interval: Duration::from_secs(30),
            batch_size: 5_000,
            lease: Duration::from_secs(60),
            link_cache_entries: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightsConfig {
    /// How often `serve` fits the models again on the purchases up to today, and on
    /// start when the current model is older than this or missing; `0s` turns the
    /// background fit off (`c360 fit` and the `refreshInsights` mutation still work).
    #[serde(with = "humantime_serde")]
    pub(crate) refresh_interval: Duration,
    /// How often `serve` scores again, between full fits, the customers whose orders,
    /// tickets or identity links changed (against the current model's parameters and
    /// cut points); `0s` turns it off.
    #[serde(with = "humantime_serde")]
    pub(crate) update_interval: Duration,
    /// k of k-anonymity: every aggregate a viewer without identity access receives
    /// (segments, lifecycle distribution) covers at least this many customers; smaller
    /// groups are withheld and marked `suppressed`.
    pub min_group_size: i64,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        InsightsConfig {
            refresh_interval: Duration::from_secs(24 * 60 * 60),
            update_interval: Duration::from_secs(10 * 60),
            min_group_size: 10,
        }
    }
}

/// What one GraphQL request may ask for. Documents over a limit are refused before they
/// run, with `LIMIT_EXCEEDED` (see `graphql::document::limits` for how each is counted).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlConfig {
    /// The largest `first` any connection accepts.
    pub(crate) max_page_size: i32,
    /// Nesting of fields, fragment spreads and inline fragments.
    pub(crate) max_depth: usize,
    /// Aliased fields, counted where fragments are spread.
    pub max_aliases: usize,
    /// Fields at the operation's root.
    pub max_root_fields: usize,
    /// Directives anywhere in the operation.
    pub(crate) max_directives: usize,
    /// Fields counted times the page sizes of the lists around them.
    pub(crate) max_cost: u64,
    /// A cost budget per role (`admin`, `agent`, `frontend`, `analyst`, `partner`) in
    /// place of `max_cost`.
    pub cost_by_role: BTreeMap<String, u64>,
    /// Statements one request runs at once, on all databases together; the others wait.
    pub(crate) max_concurrent_statements: usize,
    /// How long a request may run before it is answered with `TIMEOUT`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The roles whose tokens may introspect the schema (`__schema`, `__type`); each
    /// sees only what its policy shows. Partners are not among them by default.
    pub introspection_roles: Vec<String>,
    /// The roles whose unknown-field errors suggest close names ("Did you mean …?"),
    /// drawn from the fields each viewer may see only.
    pub(crate) suggestion_roles: Vec<String>,
    /// Lexical tokens in a document, counted before it is parsed.
    pub max_tokens: usize,
    /// The largest request body (document and variables); larger ones get HTTP 413.
    pub(crate) max_body_bytes: usize,
    /// Operations in one batched POST (a JSON array); 0 turns batching off.
    pub max_batch: usize,
    /// Subscriptions one token may hold open at once (over websockets and event streams,
    /// on this replica); more are refused with `LIMIT_EXCEEDED`.
    pub max_subscriptions_per_token: usize,
    /// Automatic persisted queries: a client may name a document it sent before by its
    /// SHA-256 (`extensions.persistedQuery`).
    pub(crate) automatic_persisted_queries: bool,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        GraphqlConfig {
            max_page_size: 100,
            max_depth: 15,
            max_aliases: 30,
            max_root_fields: 20,
            max_directives: 50,
            max_cost: 50_000,
            cost_by_role: BTreeMap::from([("partner".to_owned(), 10_000)]),
            max_concurrent_statements: 4,
            timeout: Duration::from_secs(15),
            introspection_roles: ["admin", "agent", "frontend", "analyst"].map(str::to_owned).to_vec(),
            suggestion_roles: ["admin", "agent", "frontend", "analyst"].map(str::to_owned).to_vec(),
            max_tokens: 15_000,
            max_body_bytes: 1024 * 1024,
            max_batch: 0,
            max_subscriptions_per_token: 20,
            automatic_persisted_queries: true,
        }
    }
}

/// How the process logs and traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `text` (default) or `json`: one JSON object per line, with the span's fields.
    pub(crate) log_format: LogFormat,
    /// An OpenTelemetry collector's OTLP/HTTP traces endpoint
    /// (`http://collector:4318/v1/traces`): the spans are exported there. Needs a build
    /// with the `otel` feature.
    pub(crate) otlp_endpoint: Option<String>,
    /// Which spans are exported (an `EnvFilter` directive): by default the hub's own,
    /// down to each loader batch and statement.
    pub(crate) otlp_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { log_format: LogFormat::Text, otlp_endpoint: None, otlp_filter: "c360=debug".into() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Safelists by role and by partner (a partner's own list in place of its role's).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafelistsConfig {
    /// Manifest file per role (`partner = "safelists/partners.json"`).
    pub(crate) roles: BTreeMap<String, PathBuf>,
    /// Manifest file per partner id.
    pub partners: BTreeMap<String, PathBuf>,
}

/// Rate limits per role (`roles.partner`) and per partner (`partners.<id>`, in place of
/// the role's for that partner's tokens). Roles without an entry are not limited.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    pub roles: BTreeMap<String, RateLimit>,
    pub partners: BTreeMap<String, RateLimit>,
    /// A Redis (or Valkey) URL: the replicas share each token's allowance there (one
    /// script call per limited request). Unset, each replica keeps its own.
    pub redis: Option<SecretString>,
    /// How long a request waits for Redis before this replica's own allowance decides.
    #[serde(with = "humantime_serde")]
    pub redis_timeout: Duration,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        let partner = RateLimit { operations_per_second: 50, burst: 200, cost_per_second: 20_000, cost_burst: 100_000 };
        RateLimitsConfig {
            roles: BTreeMap::from([("partner".to_owned(), partner)]),
            partners: BTreeMap::new(),
            redis: None,
            redis_timeout: Duration::from_millis(100),
        }
    }
}

/// How replicas tell each other that something changed (small messages; the hub store
/// stays the log). Without NATS, a PostgreSQL hub store carries them (`LISTEN`/`NOTIFY`);
/// over the other engines each replica hears only its own and reads the store on its
/// intervals.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// A NATS URL (`nats://host:4222`): the bus goes through NATS, whatever the hub
    /// store's engine. A secret: it may hold a password.
    pub nats: Option<SecretString>,
    /// The NATS subject the replicas of one deployment share.
    pub subject: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig { nats: None, subject: "c360.bus".to_owned() }
    }
}

/// Service alerts ([`crate::alerts`]): the replica holding the `alerts` lease polls the
/// sources' changes and appends what crosses a threshold to the hub store's log.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// How often the sources' changes are read; `0s` turns detection off (the inbox and
    /// subscriptions still serve the log).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How far before its position each poll reads again: a row stamped before a row
    /// already read may commit after it. Deduplication keeps what is read twice to one
    /// alert.
    #[serde(with = "humantime_serde")]
    pub overlap: Duration,
    /// How long a changed record whose customer identity resolution has not linked yet
    /// holds the position back, waiting for it; after that it is skipped (and logged).
    #[serde(with = "humantime_serde")]
    pub resolve_wait: Duration,
    /// How long the detection's lease lasts from its take and from each poll it commits.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// `COMPLAINT`: the value tiers (`TOP`, `CORE`, `TAIL`) whose complaints alert.
    pub complaint_tiers: Vec<String>,
    /// `LOW_SATISFACTION`: a CSAT answer at or below this (1 to 5).
    pub low_satisfaction: i32,
    /// `HIGH_VALUE_ORDER`: an order total at or above this, in whole units of the order's
    /// currency.
    pub high_value_order: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            poll_interval: Duration::from_secs(1),
            overlap: Duration::from_secs(10),
            resolve_wait: Duration::from_secs(60),
            lease: Duration::from_secs(10),
            complaint_tiers: vec!["TOP".to_owned(), "CORE".to_owned()],
            low_satisfaction: 2,
            high_value_order: 500,
        }
    }
}

/// What one token may do: operations and cost (as the operation limits count it) per
/// second, each with a burst; 0 leaves that measure unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    pub operations_per_second: u32,
    /// Operations allowed at once after a quiet spell (at least `operations_per_second`).
    pub burst: u32,
    pub cost_per_second: u32,
    pub cost_burst: u32,
}

/// What the audit writer does with its queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// How many entries (one per customer a response revealed) may wait to be written;
    /// beyond, requests wait.
    pub(crate) queue: usize,
    /// How long a response that reveals personal data waits for its entries to be
    /// stored (room in the queue, and the write) before it is withheld.
    #[serde(with = "humantime_serde", alias = "enqueue_timeout")]
    pub write_timeout: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { queue: 20_000, write_timeout: Duration::from_secs(2) }
    }
}

/// The keys global ids and pagination cursors are sealed with (AES-256-GCM-SIV, a key
/// derived from each file's bytes): clients read nothing in them, and one that was
/// altered, or sealed by another deployment, is refused. Every replica needs the same.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdsConfig {
    /// A file of at least 32 random bytes: ids and cursors are sealed with it. In
    /// development, without it, `data_dir/ids.key` (made on first use); production
    /// requires it.
    pub key_file: Option<PathBuf>,
    /// Files of earlier keys (rotation): ids and cursors they sealed are still read, and
    /// handed out sealed with `key_file` from then on.
    pub(crate) previous_key_files: Vec<PathBuf>,
}

/// Time bounds on what clients send: a client that trickles its request in holds a
/// connection (and memory) for as long as the hub waits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// From a connection's opening (or its previous response) to the end of a request's
    /// headers; then the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// For the whole body of a request, once its headers are in: HTTP 408 after it.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// From a websocket's opening to its `connection_init`: closed with 4408 after it
    /// (pings do not count).
    #[serde(with = "humantime_serde")]
    pub websocket_init_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            websocket_init_timeout: Duration::from_secs(10),
        }
    }
}

/// Where the hub runs; production forbids development conveniences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

/// How bearer tokens are verified. Keys are files, re-read when they change (key rotation
/// without restart).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Accepted signature algorithms (`HS256`, `RS256`, `ES256`, ...); a token with any
    /// other `alg` is rejected before its key is looked up.
    pub(crate) algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Clock skew tolerated for `exp`, `nbf` and `iat`; a subject's or partner's
    /// revocation also covers tokens issued up to this long after it.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// The longest a token may be valid, from its `iat` to its `exp`: a token valid for
    /// longer, or without `iat`, is refused. Bounds what a leaked token is worth, and how
    /// long an issuer's mistake lasts.
    #[serde(with = "humantime_serde")]
    pub(crate) max_token_lifetime: Duration,
    /// Accept tokens signed with the development key (`data_dir/dev-signing.key`, made on
    /// first use, kid `dev`). `c360 token` mints such tokens. Refused in production.
    #[serde(deserialize_with = "flag")]
    pub development_key: bool,
    /// Shared HS256/384/512 secrets, one file each (the file's bytes are the secret).
    pub hmac_keys: Vec<KeyFile>,
    /// RSA or EC public keys in PEM files.
    pub public_keys: Vec<KeyFile>,
    /// A JWKS document (`{"keys": [...]}`) with public keys selected by `kid`.
    pub jwks_file: Option<PathBuf>,
    /// How often key files are checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

/// One verification key in a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The `kid` tokens signed with this key carry.
    pub kid: String,
    /// The one algorithm this key verifies (a token naming another is rejected).
    pub algorithm: jsonwebtoken::Algorithm,
    pub file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "c360".into(),
            audience: "c360".into(),
            algorithms: vec![
                jsonwebtoken::Algorithm::HS256,
                jsonwebtoken::Algorithm::RS256,
                jsonwebtoken::Algorithm::ES256,
            ],
            leeway: Duration::from_secs(30),
            max_token_lifetime: Duration::from_secs(24 * 60 * 60),
            development_key: true,
            hmac_keys: Vec::new(),
            public_keys: Vec::new(),
            jwks_file: None,
            reload_interval: Duration::from_secs(10),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8360)),
            allowed_hosts: Vec::new(),
            shutdown_timeout: Duration::from_secs(20),
            data_dir: PathBuf::from("data"),
            sources: BTreeMap::new(),
            hub: None,
            database: DatabaseConfig::default(),
            seed: SeedConfig::default(),
            identity: IdentityConfig::default(),
            insights: InsightsConfig::default(),
            graphql: GraphqlConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            bus: BusConfig::default(),
            alerts: AlertsConfig::default(),
            safelists: SafelistsConfig::default(),
            telemetry: TelemetryConfig::default(),
            environment: Environment::Development,
            auth: AuthConfig::default(),
            ids: IdsConfig::default(),
            http: HttpConfig::default(),
            partners: vec!["acme-insurance".to_owned(), "northwind-travel".to_owned()],
            policy: None,
            audit: AuditConfig::default(),
            trace_sql: false,
        }
    }
}

/// Environment variables with the `C360_` prefix that are not configuration keys.
const NOT_CONFIG: &[&str] = &["config", "log", "update_schema"];

impl Config {
    /// Reads the file at `path` (when given; it must exist), then the environment.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(Box::new(figment::Error::from(format!("config file {} not found", path.display()))));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(
            Env::prefixed("C360_")
                // Test-harness variables (C360_TEST_*) share the prefix but are not config.
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !NOT_CONFIG.contains(&key.as_str()) && !key.starts_with("test_")
                })
                .split("__"),
        );
        figment.extract().map_err(Box::new)
    }

    /// The URL of every database, with embedded SQLite defaults filled in.
    pub(crate) fn database_urls(&self) -> HashMap<DbName, SecretString> {
        DbName::ALL
            .into_iter()
            .map(|db| {
                let configured = match db.source() {
                    Some(source) => self.sources.get(&source),
                    None => self.hub.as_ref(),
                };
                let sqlite = || format!("sqlite:{}", self.data_dir.join(format!("{db}.db")).display()).into();
                (db, configured.cloned().unwrap_or_else(sqlite))
            })
            .collect()
    }

    /// True when any database is an SQLite file under `data_dir` (which must then exist).
    pub(crate) fn uses_data_dir(&self) -> bool {
        self.database_urls().values().any(|u| u.expose_secret().starts_with("sqlite:"))
    }
}

/// A boolean that also accepts `1`/`0`, `yes`/`no`, `on`/`off` (as environment variables do).
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
        Text(String),
    }
    match Flag::deserialize(d)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(i) => Ok(i != 0),
        Flag::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            other => Err(serde::de::Error::custom(format!("expected a boolean, found `{other}`"))),
        },
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own large error
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        figment::Jail::expect_with(|_| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("c360.example.toml");
            let config = Config::load(Some(&path)).map_err(|e| e.to_string())?;
            let url = |u: &Option<SecretString>| u.as_ref().map(|u| u.expose_secret().to_owned()).unwrap_or_default();
            assert!(url(&config.sources.get(&SourceName::Crm).cloned()).starts_with("postgres://"));
            assert!(url(&config.sources.get(&SourceName::Shop).cloned()).starts_with("mysql://"));
            assert!(!config.seed.on_empty);
            assert_eq!(config.environment, Environment::Production);
            assert_eq!(config.allowed_hosts, ["c360.example.com"]);
            assert!(!config.auth.development_key, "the production example turns the development key off");
            assert_eq!(config.auth.public_keys.len(), 2);
            assert!(config.policy.is_some());
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_and_unknown_keys_fail() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("C360_LISTEN", "127.0.0.1:9999");
            jail.set_env("C360_TRACE_SQL", "1");
            jail.set_env("C360_SOURCES__CRM", "postgres://root@127.0.0.1/crm");
            jail.set_env("C360_TEST_POSTGRES_URL", "postgres://ignored");
            jail.set_env("C360_ALLOWED_HOSTS", r#"["c360.example.com", "hub.internal:8443"]"#);
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.port(), 9999);
            assert_eq!(config.allowed_hosts, ["c360.example.com", "hub.internal:8443"]);
            assert!(config.trace_sql);
            assert_eq!(config.database_urls()[&DbName::Crm].expose_secret(), "postgres://root@127.0.0.1/crm");
            assert_eq!(config.database_urls()[&DbName::Hub].expose_secret(), "sqlite:data/hub.db");

            // Database URLs hold passwords: the configuration never prints them.
            jail.set_env("C360_SOURCES__SHOP", "mysql://shop:hunter2-secret@db.internal/shop");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let printed = format!("{config:?} {:?}", config.database_urls());
            assert!(!printed.contains("hunter2") && !printed.contains("root@"), "{printed}");

            jail.set_env("C360_SOURCES__LOYALTY", "postgres://root@127.0.0.1/loyalty");
            assert!(Config::load(None).is_err(), "an unknown source must fail");

            jail.set_env("C360_LISTNE", "127.0.0.1:1");
            assert!(Config::load(None).is_err(), "a misspelt key must fail");
            Ok(())
        });
    }
}
