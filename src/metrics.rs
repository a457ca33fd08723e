//! What the hub counts for operators, served at `/metrics` in the Prometheus text format:
//! operations by name and outcome with their latency, statements per database with their
//! latency and errors, keys per loader batch, rejections (limits, rates, timeouts, revoked tokens), and, read
//! when scraped, pool connections, the audit queue and the insight model's age. One
//! registry per hub; no personal data and no tokens in any label.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Distinct operation names kept as labels, per role; later ones count as `other`, so
/// that clients cannot grow the metrics without bound, nor one role's clients (junk
/// names from a partner) push another's out of them.
const MAX_OPERATIONS: usize = 50;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Db {
    db: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Loader {
    loader: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LinksFrom {
    from: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Pool {
    db: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Source {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refusal {
    source: &'static str,
    reason: &'static str,
}

/// One database's gauges, read when scraped.
pub(crate) struct DbGauges {
    pub(crate) name: String,
    pub(crate) idle: i64,
    pub(crate) busy: i64,
    /// Its last ping answered and its breaker is not open.
    pub(crate) up: bool,
    /// 0 closed, 1 half-open, 2 open.
    pub(crate) breaker: i64,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn keys() -> Histogram {
    // 1 to 1,024 keys.
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

fn seconds() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

pub(crate) struct Metrics {
    registry: Registry,
    operations: Family<Operation, Counter>,
    operation_seconds: Histograms<Operation>,
    statements: Family<Db, Counter>,
    statement_seconds: Histograms<Db>,
    statement_errors: Family<Db, Counter>,
    pool_wait_seconds: Histograms<Db>,
    batch_keys: Histograms<Loader>,
    rejections: Family<Reason, Counter>,
    link_lookups: Family<LinksFrom, Counter>,
    pool: Family<Pool, Gauge>,
    source_up: Family<Source, Gauge>,
    breaker_state: Family<Source, Gauge>,
    refusals: Family<Refusal, Counter>,
    audit_queue: Gauge,
    audit_dead_letters: Counter,
    model_age: Gauge,
    /// The operation names labelled, by role.
    names: Mutex<HashMap<&'static str, HashSet<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("c360");
        let operations = Family::<Operation, Counter>::default();
        let operation_seconds = Histograms::<Operation>::new_with_constructor(seconds as fn() -> Histogram);
        let statements = Family::<Db, Counter>::default();
        let statement_seconds = Histograms::<Db>::new_with_constructor(seconds as fn() -> Histogram);
        let statement_errors = Family::<Db, Counter>::default();
        let batch_keys = Histograms::<Loader>::new_with_constructor(keys as fn() -> Histogram);
        let pool_wait_seconds = Histograms::<Db>::new_with_constructor(seconds as fn() -> Histogram);
        let rejections = Family::<Reason, Counter>::default();
        let link_lookups = Family::<LinksFrom, Counter>::default();
        let pool = Family::<Pool, Gauge>::default();
        let (source_up, breaker_state) = (Family::<Source, Gauge>::default(), Family::<Source, Gauge>::default());
        let refusals = Family::<Refusal, Counter>::default();
        let (audit_queue, model_age) = (Gauge::default(), Gauge::default());
        let audit_dead_letters = Counter::default();
        registry.register(
            "operations",
            "GraphQL operations by name and outcome (ok, partial or the error code)",
            operations.clone(),
        );
        registry.register("operation_seconds", "Time to answer an operation", operation_seconds.clone());
        registry.register("statements", "SQL statements of requests, by database", statements.clone());
        registry.register(
            "statement_seconds",
            "Time of a request's SQL statement, by database",
            statement_seconds.clone(),
        );
        registry.register(
            "statement_errors",
            "Failed SQL statements of requests, by database",
            statement_errors.clone(),
        );
        registry.register(
            "pool_wait_seconds",
            "Time a request's statement waited for a connection, by database",
            pool_wait_seconds.clone(),
        );
        registry.register("loader_batch_keys", "Keys per loader batch (one statement each)", batch_keys.clone());
        registry.register(
            "rejections",
            "Operations refused before they ran: limit, rate, timeout, revoked",
            rejections.clone(),
        );
        registry.register(
            "link_lookups",
            "Identity links looked up by requests, by where they came from (memory, store)",
            link_lookups.clone(),
        );
        registry.register("pool_connections", "Database connections by state (idle, busy)", pool.clone());
        registry.register(
            "source_up",
            "1 when the database answered its last health check and its circuit breaker is not open",
            source_up.clone(),
        );
        registry.register(
            "source_breaker_state",
            "The database's circuit breaker: 0 closed, 1 half-open (one statement tries it), 2 open",
            breaker_state.clone(),
        );
        registry.register(
            "source_refusals",
            "Statements refused without reaching their database: its breaker open, or its bulkhead full (busy)",
            refusals.clone(),
        );
        registry.register("audit_queue_depth", "Audit entries waiting to be written", audit_queue.clone());
        registry.register(
            "audit_dead_letters",
            "Audit entries the store refused while it took others: set apart in the server log (alert on any)",
            audit_dead_letters.clone(),
        );
        registry.register("insight_model_age_seconds", "Age of the insight model served", model_age.clone());
        Metrics {
            registry,
            operations,
            operation_seconds,
            statements,
            statement_seconds,
            statement_errors,
            pool_wait_seconds,
            batch_keys,
            rejections,
            link_lookups,
            pool,
            source_up,
            breaker_state,
            refusals,
            audit_queue,
            audit_dead_letters,
            model_age,
            names: Mutex::default(),
        }
    }
}

impl Metrics {
    /// An operation of a `role`'s token answered: its name (as the client sent it, when it
    /// is a GraphQL name), outcome and time. A name takes one of its role's label slots
    /// only once an operation of that name has run (`ok`, `partial`): refused documents
    /// take none.
    pub(crate) fn operation(&self, role: &'static str, name: Option<&str>, outcome: &str, seconds: f64) {
        let operation = match name {
            Some(n) if is_name(n) => {
                let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
                let names = names.entry(role).or_default();
                let ran = matches!(outcome, "ok" | "partial");
                if names.contains(n) || (ran && names.len() < MAX_OPERATIONS && names.insert(n.to_owned())) {
                    n.to_owned()
                } else {
                    "other".to_owned()
                }
            }
            Some(_) => "other".to_owned(),
            None => "anonymous".to_owned(),
        };
        let labels = Operation { operation, outcome: outcome.to_owned() };
        self.operations.get_or_create(&labels).inc();
        self.operation_seconds.get_or_create(&labels).observe(seconds);
    }

    /// A request's SQL statement on `db`.
    pub(crate) fn statement(&self, db: &'static str, seconds: f64, failed: bool) {
        let labels = Db { db };
        self.statements.get_or_create(&labels).inc();
        self.statement_seconds.get_or_create(&labels).observe(seconds);
        if failed {
            self.statement_errors.get_or_create(&labels).inc();
        }
    }

    /// A request's statement waited `seconds` for a connection of `db`.
    pub(crate) fn pool_wait(&self, db: &'static str, seconds: f64) {
        self.pool_wait_seconds.get_or_create(&Db { db }).observe(seconds);
    }

    /// A loader's batch of `keys` keys.
    pub(crate) fn batch(&self, loader: &'static str, keys: usize) {
        self.batch_keys.get_or_create(&Loader { loader }).observe(keys as f64);
    }

    /// Customers' links a loader found kept in memory, and those it read from the hub store.
    pub(crate) fn link_lookups(&self, memory: usize, store: usize) {
        self.link_lookups.get_or_create(&LinksFrom { from: "memory" }).inc_by(memory as u64);
        self.link_lookups.get_or_create(&LinksFrom { from: "store" }).inc_by(store as u64);
    }

    /// A statement on `source` refused before it reached the database (`open`, `busy`).
    pub(crate) fn refused(&self, source: &'static str, reason: &'static str) {
        self.refusals.get_or_create(&Refusal { source, reason }).inc();
    }

    /// An operation refused before it ran: `limit`, `rate`, `timeout` or `revoked`.
    pub(crate) fn rejected(&self, reason: &'static str) {
        self.rejections.get_or_create(&Reason { reason }).inc();
    }

    /// The Prometheus text, with the gauges read now: each database's, the audit queue's
    /// depth and its dead letters so far, and the model's age in seconds.
    pub(crate) fn render(
        &self,
        dbs: &[DbGauges],
        (audit_queue, dead_letters): (i64, u64),
        model_age: Option<i64>,
    ) -> String {
        for db in dbs {
            self.pool.get_or_create(&Pool { db: db.name.clone(), state: "idle" }).set(db.idle);
            self.pool.get_or_create(&Pool { db: db.name.clone(), state: "busy" }).set(db.busy);
            let source = Source { source: db.name.clone() };
            self.source_up.get_or_create(&source).set(i64::from(db.up));
            self.breaker_state.get_or_create(&source).set(db.breaker);
        }
        self.audit_queue.set(audit_queue);
        self.audit_dead_letters.inc_by(dead_letters.saturating_sub(self.audit_dead_letters.get()));
        self.model_age.set(model_age.unwrap_or(-1));
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A GraphQL name: `[_A-Za-z][_0-9A-Za-z]*`, at most 64 characters.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_counted_by_bounded_names() {
        let metrics = Metrics::default();
        metrics.operation("frontend", Some("CustomerView"), "ok", 0.002);
        metrics.operation("frontend", Some("CustomerView"), "ok", 0.004);
        metrics.operation("frontend", Some("bad name {"), "GRAPHQL_PARSE_FAILED", 0.0);
        // Names that never ran take no slot; another role's names take none of frontend's.
        for i in 0..MAX_OPERATIONS + 5 {
            metrics.operation("frontend", Some(&format!("Junk{i}")), "GRAPHQL_VALIDATION_FAILED", 0.001);
            metrics.operation("partner", Some(&format!("Op{i}")), "ok", 0.001);
        }
        metrics.operation("frontend", Some("Orders"), "ok", 0.001);
        metrics.rejected("rate");
        metrics.link_lookups(3, 1);
        metrics.refused("helpdesk", "open");
        let helpdesk = DbGauges { name: "helpdesk".into(), idle: 0, busy: 0, up: false, breaker: 2 };
        let hub = DbGauges { name: "hub".into(), idle: 3, busy: 1, up: true, breaker: 0 };
        let text = metrics.render(&[hub, helpdesk], (2, 1), Some(60));
        assert!(text.contains("c360_audit_dead_letters_total 1"), "{text}");
        assert!(text.contains(r#"c360_operations_total{operation="CustomerView",outcome="ok"} 2"#), "{text}");
        assert!(text.contains(r#"c360_operations_total{operation="other",outcome="GRAPHQL_PARSE_FAILED"} 1"#));
        assert!(text.contains(r#"c360_operations_total{operation="other",outcome="ok"} 5"#), "{text}");
        assert!(text.contains(r#"c360_operations_total{operation="Orders",outcome="ok"} 1"#), "{text}");
        assert!(text.contains(r#"c360_operations_total{operation="other",outcome="GRAPHQL_VALIDATION_FAILED"} 55"#));
        assert!(text.contains(r#"c360_rejections_total{reason="rate"} 1"#));
        assert!(text.contains(r#"c360_link_lookups_total{from="memory"} 3"#), "{text}");
        assert!(text.contains(r#"c360_link_lookups_total{from="store"} 1"#));
        assert!(text.contains(r#"c360_pool_connections{db="hub",state="busy"} 1"#));
        assert!(text.contains(r#"c360_source_up{source="helpdesk"} 0"#), "{text}");
        assert!(text.contains(r#"c360_source_up{source="hub"} 1"#));
        assert!(text.contains(r#"c360_source_breaker_state{source="helpdesk"} 2"#));
        assert!(text.contains(r#"c360_source_refusals_total{source="helpdesk",reason="open"} 1"#), "{text}");
        assert!(text.contains("c360_audit_queue_depth 2") && text.contains("c360_insight_model_age_seconds 60"));
    }
}
