//! The request engine: runs one GraphQL request for one viewer, under the policy, with
//! per-request loaders and batching, and hands what the response revealed to the audit
//! log. HTTP, the websocket and the benchmarks all call [`Hub::execute`].

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ErrorExtensions, Name, ServerError, Value};
use quick_cache::sync::Cache;

use crate::audit::AuditLog;
use crate::auth::Viewer;
use crate::config::Config;
use crate::error::ApiError;
use crate::graphql::privacy::{PolicyGuard, PrivacyTable};
use crate::graphql::{self, C360Schema, RequestContext, Shared};
use crate::loaders::batch::{self, BatchQueue};
use crate::policy::Policy;
use crate::sources::{Sources, SqlTrace};

/// Runs GraphQL requests for viewers: the schema under the policy, with the audit log.
/// The HTTP handler is this plus authentication; benchmarks use it directly.
pub struct Hub {
    schema: C360Schema,
    sources: Sources,
    /// `None` only in [`Hub::unguarded`].
    audit: Option<AuditLog>,
    policy: Policy,
    trace_sql: bool,
    /// Parsed documents by their text: clients send the same few documents over and over,
    /// and parsing was a twentieth of a profile request's CPU. Every request is still
    /// validated and checked against its viewer's policy (both run after parsing).
    documents: Cache<String, ExecutableDocument>,
}

/// Documents kept parsed, and the longest one kept (longer ones are parsed each time).
const DOCUMENTS: usize = 512;
const LONGEST_CACHED: usize = 16 * 1024;

/// Whether a document may be kept parsed. Not with string literals: a literal can be
/// personal data (`customerByEmail(email: "..")`), and a faster answer to the same text
/// would tell another viewer that someone asked for it. Clients that pass values in
/// variables, as clients do, get the cache.
fn cacheable(query: &str) -> bool {
    query.len() <= LONGEST_CACHED && !query.contains('"')
}

impl Hub {
    /// The hub as served: the policy file's decisions enforced by the guard, personal data
    /// reads audited.
    pub fn new(config: Config, sources: Sources) -> anyhow::Result<Self> {
        let table = PrivacyTable::from_sdl(&graphql::sdl()).map_err(anyhow::Error::msg)?;
        let policy = Policy::load(config.policy.as_deref(), &table.value_fields())?;
        let trace_sql = config.trace_sql;
        let audit = AuditLog::start(sources.hub().clone(), &config.audit);
        let shared = Shared { config };
        let schema = graphql::build(Some(shared), Some(PolicyGuard::new(Arc::new(table))));
        Ok(Hub { schema, sources, audit: Some(audit), policy, trace_sql, documents: Cache::new(DOCUMENTS) })
    }

    /// The same schema with no policy guard (everything shown) and no audit log: the
    /// baseline that benchmarks compare the policy's cost against. Never served.
    pub fn unguarded(config: Config, sources: Sources) -> Self {
        let trace_sql = config.trace_sql;
        let schema = graphql::build(Some(Shared { config }), None);
        Hub { schema, sources, audit: None, policy: Policy::show_all(), trace_sql, documents: Cache::new(DOCUMENTS) }
    }

    /// Runs one request for `viewer`. Returns the response and the request's id. A
    /// response revealing personal data is withheld (`AUDIT_UNAVAILABLE`) unless its
    /// audit entries were queued.
    pub async fn execute(&self, viewer: Viewer, request: async_graphql::Request) -> (async_graphql::Response, String) {
        let trace = if self.trace_sql { SqlTrace::enabled() } else { SqlTrace::default() };
        let queue = BatchQueue::default();
        let access = self.policy.access(viewer.clone());
        let context = RequestContext::new(&self.sources, viewer.clone(), access.rows.clone(), trace.clone(), &queue);
        let (request_id, reveals) = (context.request_id.clone(), context.reveals.clone());
        let mut request = request.data(access).data(context);
        if let Some(document) = self.parsed(&request.query) {
            request.set_parsed_query(document);
        }
        let mut response = batch::drive(queue, self.schema.execute(request)).await;
        if let Some(audit) = &self.audit
            && audit.submit(reveals.entries(&viewer, &request_id)).await.is_err()
        {
            let mut error = ServerError::new(ApiError::AuditUnavailable.message(), None);
            error.extensions = ApiError::AuditUnavailable.extend().extensions;
            response = async_graphql::Response::from_errors(vec![error]);
        }
        if let Some(counts) = trace.snapshot() {
            let by_source = counts.into_iter().map(|(db, n)| (Name::new(db.to_string()), Value::from(n))).collect();
            response.extensions.insert("sqlStatements".into(), Value::Object(by_source));
        }
        (response, request_id)
    }

    /// `query` parsed, from the cache or parsed now and kept; `None` when it does not
    /// parse (async-graphql then reports the syntax error as usual) or is not
    /// [`cacheable`] (async-graphql parses it as usual).
    fn parsed(&self, query: &str) -> Option<ExecutableDocument> {
        if !cacheable(query) {
            return None;
        }
        if let Some(document) = self.documents.get(query) {
            return Some(document);
        }
        let document = async_graphql::parser::parse_query(query).ok()?;
        self.documents.insert(query.to_owned(), document.clone());
        Some(document)
    }

    /// Stops the audit writer once every entry taken is written.
    pub async fn close(&self) {
        if let Some(audit) = &self.audit {
            audit.close().await;
        }
    }
}

impl Hub {
    /// Ready when the audit log is written and every database answers; else why not.
    pub async fn ready(&self) -> Result<(), String> {
        if self.audit.as_ref().is_some_and(|a| !a.available()) {
            return Err("audit log unavailable".to_owned());
        }
        for db in self.sources.all() {
            if db.ping().await.is_err() {
                return Err(format!("{} unavailable", db.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_with_literal_values_are_never_kept() {
        assert!(cacheable("query($e: String!) { customerByEmail(email: $e) { id } }"));
        assert!(!cacheable(r#"{ customerByEmail(email: "jane@example.com") { id } }"#));
        assert!(!cacheable(r#"{ customers(first: 1) { edges { node { id } } } } # """block""""#));
        assert!(!cacheable(&format!("{{ {} }}", "customers(first: 1) { totalCount } ".repeat(1_000))));
    }
}
