//! The request engine: runs one GraphQL request for one viewer, under the policy, with
//! per-request loaders and batching, and hands what the response revealed to the audit
//! log. HTTP, the websocket and the benchmarks all call [`Engine::execute`].

pub mod persisted;
pub(crate) mod ratelimit;

use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition, OperationType};
use async_graphql::{ErrorExtensions, Name, ServerError, Value};
use quick_cache::sync::Cache;

use self::persisted::Persisted;
use self::ratelimit::RateLimits;
use crate::alerts::detect::{Detector, Rules};
use crate::audit::{AuditLog, Reveals};
use crate::auth::Viewer;
use crate::config::Config;
use crate::config::GraphqlConfig;
use crate::error::ApiError;
use crate::graphql::document::limits::{self, Limits};
use crate::graphql::ids::Ids;
use crate::graphql::privacy::PrivacyTable;
use crate::graphql::privacy::viewer::{ViewerSchema, ViewerSchemas};
use crate::graphql::{self, RequestContext, Shared, inputs};
use crate::loaders::Kept;
use crate::loaders::batch::{self, BatchQueue};
use crate::metrics::{DbGauges, Metrics};
use crate::policy::{Access, Policy};
use crate::revocations::Revocations;
use crate::sources::bus::{Bus, Topic};
use crate::sources::{Sources, SqlTrace};

/// Runs GraphQL requests for viewers: the schema under the policy, with the audit log.
/// The HTTP handler is this plus authentication; benchmarks use it directly.
pub struct Engine {
    /// Each viewer's schema, without what the policy hides from it: every document is
    /// validated and run on its viewer's. (Without extensions: each field resolves
    /// without an extension's hook; the resolvers mask and audit by themselves.)
    schemas: ViewerSchemas,
    sources: Sources,
    /// What loaders keep across requests: the current insight model, as this process
    /// last saw it, and customers' identity links.
    kept: Kept,
    /// `None` only without [`Layer::Audit`].
    audit: Option<AuditLog>,
    policy: Policy,
    trace_sql: bool,
    /// Parsed documents by their text: clients send the same few documents over and over,
    /// and parsing was a twentieth of a profile request's CPU. Every request is still
    /// validated and checked against its viewer's policy (both run after parsing).
    documents: Cache<String, Arc<ExecutableDocument>>,
    /// Documents whose own input values were found valid, by viewer schema, operation
    /// and text ([`Engine::invalid_inputs`]).
    clean_inputs: Cache<String, ()>,
    /// Operation limits, page sizes and the request timeout.
    graphql: GraphqlConfig,
    /// `None` only without [`Layer::Rates`].
    rates: Option<Arc<RateLimits>>,
    /// Documents named by hash (APQ) and the safelists.
    persisted: Persisted,
    metrics: Arc<Metrics>,
    /// The layers left out: none, but in a benchmark's ladder.
    without: Layers,
    /// How often the databases are pinged (`database.health_interval`).
    health_interval: std::time::Duration,
    /// Open subscriptions per token (its id, or its subject and issue time).
    subscriptions: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// Service alerts' detection, run every `alerts_interval` (`alerts.poll_interval`).
    detector: Detector,
    alerts_interval: std::time::Duration,
}

/// A part of the request path that a benchmark may leave out (`c360 serve-without`) to
/// measure what it costs (BENCHMARKS.md, the ladder). A served hub has every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::Display, strum::VariantArray)]
#[strum(serialize_all = "kebab-case")]
pub(crate) enum Layer {
    /// The audit log: nothing recorded, no response waits for it.
    Audit,
    /// The privacy policy: every field of every customer shown (its checks still run).
    Policy,
    /// Operation limits and cost, and the token count before parsing.
    Limits,
    /// Rate limits and revocation checks.
    Rates,
    /// Metrics of requests and statements.
    Metrics,
    /// The statement gate: a request's concurrent statements unbounded.
    Gate,
    /// Fields in selection order: the response as the executor builds it.
    Order,
    /// The request's span (`graphql`).
    Spans,
    /// The checks of input values against the viewer's schema.
    Inputs,
}

/// A set of [`Layer`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Layers(u16);

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use strum::VariantArray;
        f.debug_set().entries(Layer::VARIANTS.iter().filter(|l| self.has(**l))).finish()
    }
}

impl Layers {
    pub(crate) fn of(layers: &[Layer]) -> Self {
        Layers(layers.iter().fold(0, |set, layer| set | 1 << *layer as u16))
    }

    pub(crate) fn has(self, layer: Layer) -> bool {
        self.0 & 1 << layer as u16 != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
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

impl Engine {
    /// The hub as served: the policy file's decisions enforced by the guard, personal data
    /// reads audited.
    pub fn new(config: Config, sources: Sources) -> anyhow::Result<Self> {
        Self::without(config, sources, Layers::default())
    }

    /// The hub without the layers `without`: a benchmark's baseline, never served.
    pub(crate) fn without(config: Config, sources: Sources, without: Layers) -> anyhow::Result<Self> {
        let table = PrivacyTable::from_sdl(&graphql::sdl()).map_err(anyhow::Error::msg)?;
        // A mask must give a value of its field's own type (MONTH only on times and days).
        if let Some(error) = table.mask_type_errors().first() {
            anyhow::bail!("the schema's privacy directives: {error}");
        }
        let policy = match without.has(Layer::Policy) {
            true => Policy::show_all(),
            false => Policy::load(config.policy.as_deref(), &table.value_fields())?,
        };
        let trace_sql = config.trace_sql;
        let link_cache = config.identity.link_cache_entries;
        let merge = config.database.merge_statements;
        let audit = (!without.has(Layer::Audit)).then(|| AuditLog::start(sources.hub().clone(), &config.audit));
        let graphql = config.graphql.clone();
        for role in graphql.cost_by_role.keys() {
            role.parse::<crate::auth::Role>().map_err(|_| anyhow::anyhow!("graphql.cost_by_role: no role `{role}`"))?;
        }
        for role in graphql.introspection_roles.iter().chain(&graphql.suggestion_roles) {
            role.parse::<crate::auth::Role>()
                .map_err(|_| anyhow::anyhow!("graphql.introspection_roles, suggestion_roles: no role `{role}`"))?;
        }
        for role in config.rate_limits.roles.keys() {
            role.parse::<crate::auth::Role>().map_err(|_| anyhow::anyhow!("rate_limits.roles: no role `{role}`"))?;
        }
        let rated = !without.has(Layer::Rates);
        let rates = match rated {
            true => Some(Arc::new(RateLimits::new(&config.rate_limits)?)),
            false => None,
        };
        let revocations = rated.then(|| Revocations::new(sources.hub().clone(), config.auth.leeway));
        let persisted = match without.has(Layer::Policy) {
            true => Persisted::automatic(graphql.automatic_persisted_queries),
            false => Persisted::load(&config.safelists, graphql.automatic_persisted_queries)?,
        };
        let ids = Arc::new(Ids::load(&config)?);
        let health_interval = config.database.health_interval;
        let bus = Bus::new(sources.hub().clone(), &config.bus)?;
        let detector = Detector::new(sources.clone(), bus.clone(), Rules::new(&config.alerts)?);
        let alerts_interval = config.alerts.poll_interval;
        let hub = sources.hub().clone();
        Ok(Engine {
            subscriptions: Arc::default(),
            detector,
            alerts_interval,
            schemas: ViewerSchemas::new(Some(Shared { config, ids })),
            sources,
            kept: Kept::new(link_cache, merge, revocations, bus, hub),
            audit,
            policy,
            trace_sql,
            documents: Cache::new(DOCUMENTS),
            clean_inputs: Cache::new(DOCUMENTS),
            graphql,
            rates,
            persisted,
            metrics: Arc::default(),
            without,
            health_interval,
        })
    }

    /// The same schema with no policy guard (everything shown) and no audit log: the
    /// baseline that benchmarks compare the policy's cost against. Never served.
    pub fn unguarded(config: Config, sources: Sources) -> anyhow::Result<Self> {
        Self::without(config, sources, Layers::of(&[Layer::Policy, Layer::Audit]))
    }

    /// Runs one request for `viewer`. Returns the response and the request's id. A
    /// response revealing personal data is withheld (`AUDIT_UNAVAILABLE`) unless its
    /// audit entries were queued.
    pub async fn execute(&self, viewer: Viewer, request: async_graphql::Request) -> (async_graphql::Response, String) {
        self.execute_as(viewer, request, Operations::All).await
    }

    /// [`Engine::execute`], running only `operations`: a request that may not change data
    /// (an HTTP GET) has a mutation, also one named by a persisted hash, refused with
    /// `METHOD_NOT_ALLOWED`.
    pub(crate) async fn execute_as(
        &self,
        viewer: Viewer,
        request: async_graphql::Request,
        operations: Operations,
    ) -> (async_graphql::Response, String) {
        let started = std::time::Instant::now();
        let mut name = request.operation_name.clone();
        let role: &'static str = viewer.role.into();
        let span = match self.without.has(Layer::Spans) {
            true => tracing::Span::none(),
            false => tracing::info_span!(
                "graphql",
                request_id = tracing::field::Empty,
                operation = tracing::field::Empty,
                role,
                outcome = tracing::field::Empty,
                ms = tracing::field::Empty,
            ),
        };
        let run = self.run(viewer, request, &mut name, operations);
        let (response, request_id) = tracing::Instrument::instrument(run, span.clone()).await;
        let outcome = outcome(&response);
        let measured = !self.without.has(Layer::Metrics);
        if measured
            && let Some(reason) = match outcome {
                "LIMIT_EXCEEDED" => Some("limit"),
                "RATE_LIMITED" => Some("rate"),
                "TIMEOUT" => Some("timeout"),
                "PERSISTED_QUERY_NOT_IN_LIST" => Some("safelist"),
                _ => None,
            }
        {
            self.metrics.rejected(reason);
        }
        let elapsed = started.elapsed();
        if measured {
            self.metrics.operation(role, name.as_deref(), outcome, elapsed.as_secs_f64());
        }
        span.record("outcome", outcome).record("ms", elapsed.as_secs_f64() * 1e3);
        if let Some(name) = name.as_deref().filter(|n| crate::metrics::is_name(n)) {
            span.record("operation", name);
        }
        span.in_scope(|| tracing::debug!("answered"));
        (response, request_id)
    }

    /// [`Engine::execute`], telling `name` the operation's name once the document is parsed:
    /// admission, then execution, then what the response owes the audit log.
    async fn run(
        &self,
        viewer: Viewer,
        request: async_graphql::Request,
        name: &mut Option<String>,
        operations: Operations,
    ) -> (async_graphql::Response, String) {
        let trace = if self.trace_sql { SqlTrace::enabled() } else { SqlTrace::default() };
        let trace = match self.without.has(Layer::Gate) {
            false => trace.limited(self.graphql.max_concurrent_statements),
            true => trace,
        };
        let trace = match self.without.has(Layer::Metrics) {
            false => trace.measured(self.metrics.clone()),
            true => trace,
        };
        let request_id = uuid::Uuid::now_v7().to_string();
        tracing::Span::current().record("request_id", request_id.as_str());
        let Admission { cost, outcome } = self.admit(&viewer, request, name, operations);
        // Refused requests are charged too (a caller out of rate hears that instead).
        if let Some(cost) = cost
            && let Err(limited) = self.charge(&viewer, cost).await
        {
            return (*limited, request_id);
        }
        let admitted = match outcome {
            Ok(admitted) => admitted,
            Err(refusal) => return (*refusal, request_id),
        };
        let queue = BatchQueue::default();
        let context = RequestContext::new(
            &self.sources,
            &self.kept,
            viewer.clone(),
            admitted.access.rows.clone(),
            trace.clone(),
            &queue,
            request_id,
        );
        let reveals = context.reveals.clone();
        let request_id = context.request_id.clone();
        let response = self.answer(admitted, context, queue).await;
        (self.finish(response, &viewer, &request_id, &reveals, &trace).await, request_id)
    }

    /// Whether `request` runs a subscription (its document's selected operation): those go
    /// through [`Engine::subscribe`]. A document that does not parse is not one.
    pub(crate) fn is_subscription(&self, request: &async_graphql::Request) -> bool {
        let Ok(document) = self.parsed(&request.query) else { return false };
        operation(&document, request.operation_name.as_deref()).map(|o| o.ty) == Some(OperationType::Subscription)
    }

    /// Opens a subscription for `viewer`: admitted as any request is (limits, inputs,
    /// the viewer's schema, the rate), then run by async-graphql's subscription machinery
    /// on the viewer's schema; [`Engine::next_event`] gives its responses. A refusal is
    /// the one response.
    pub(crate) async fn subscribe(
        &self,
        viewer: Viewer,
        request: async_graphql::Request,
    ) -> Result<Subscription, Box<async_graphql::Response>> {
        let trace = if self.trace_sql { SqlTrace::enabled() } else { SqlTrace::default() };
        let trace = trace.limited(self.graphql.max_concurrent_statements);
        let request_id = uuid::Uuid::now_v7().to_string();
        let mut name = request.operation_name.clone();
        let Admission { cost, outcome } = self.admit(&viewer, request, &mut name, Operations::All);
        if let Some(cost) = cost {
            self.charge(&viewer, cost).await?;
        }
        let Admitted { request, document, access, schema, introspection, suggest } = outcome?;
        let slot = self.subscription_slot(&viewer)?;
        let queue = BatchQueue::default();
        let rows = access.rows.clone();
        let context =
            RequestContext::new(&self.sources, &self.kept, viewer.clone(), rows, trace.clone(), &queue, request_id);
        let reveals = context.reveals.clone();
        let request_id = context.request_id.clone();
        let operation_name = request.operation_name.clone();
        let mut request = request.data(access).data(context);
        request.set_parsed_query(ExecutableDocument::clone(&document));
        if !introspection {
            request = request.disable_introspection();
        }
        let stream = schema.schema.execute_stream(request);
        Ok(Subscription {
            stream,
            queue,
            reveals,
            viewer,
            request_id,
            trace,
            document,
            operation_name,
            suggest,
            schema,
            _slot: slot,
        })
    }

    /// One more open subscription for the viewer's token, or `LIMIT_EXCEEDED` at
    /// `graphql.max_subscriptions_per_token`.
    fn subscription_slot(&self, viewer: &Viewer) -> Result<Slot, Box<async_graphql::Response>> {
        let token = match &viewer.token_id {
            Some(id) => format!("jti:{id}"),
            None => format!("sub:{}:{}", viewer.subject, viewer.issued_at.unwrap_or_default()),
        };
        let max = self.graphql.max_subscriptions_per_token;
        let mut open = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(token.clone()).or_default();
        if *count >= max {
            let message =
                format!("this token holds {max} subscriptions open already (graphql.max_subscriptions_per_token)");
            let details = [("limit", Value::from("subscriptions")), ("max", Value::from(max))];
            return Err(Box::new(refused(&message, "LIMIT_EXCEEDED", details)));
        }
        *count += 1;
        Ok(Slot { open: self.subscriptions.clone(), token })
    }

    /// The subscription's next response, shaped and audited as a request's (each event's
    /// reads are entries of their own); `None` once it has ended.
    pub(crate) async fn next_event(&self, subscription: &mut Subscription) -> Option<async_graphql::Response> {
        use futures::StreamExt as _;
        let s = subscription;
        let response = batch::drive(s.queue.clone(), s.stream.next()).await?;
        let response = self.shape(response, &s.document, s.operation_name.as_deref(), s.suggest, &s.schema);
        let revealed = s.reveals.take();
        Some(self.finish(response, &s.viewer, &s.request_id, &revealed, &s.trace).await)
    }

    /// Charges an operation of `cost` to the viewer's rate: the refusal when its
    /// allowance is spent.
    async fn charge(&self, viewer: &Viewer, cost: u64) -> Result<(), Refusal> {
        let Some(rates) = &self.rates else { return Ok(()) };
        rates.charge(viewer.role.into(), viewer.partner.as_deref(), &viewer.subject, cost).await.map_err(|wait| {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let message = format!("too many operations; retry in {seconds} s");
            Box::new(refused(&message, "RATE_LIMITED", [("retryAfter", seconds.into())]))
        })
    }

    /// Whether the request may run, and if so its document, checked: parsed (or taken
    /// from the cache), its operation selected, within the role's limits and valid
    /// against the viewer's schema; with what it costs the caller's rate. Refused requests
    /// cost too: nothing (a document that does not parse, one over a limit) is free to
    /// send over and over.
    fn admit(
        &self,
        viewer: &Viewer,
        mut request: async_graphql::Request,
        name: &mut Option<String>,
        operations: Operations,
    ) -> Admission {
        let free = |refusal: Refusal| Admission { cost: None, outcome: Err(refusal) };
        if let Err(refusal) = self.persisted.resolve(viewer, &mut request) {
            return free(Box::new(refused(&refusal.to_string(), refusal.code(), [])));
        }
        let role: &'static str = viewer.role.into();
        let limits = Limits::for_role(&self.graphql, role);
        // A refusal that costs `cost`.
        let refuse = |cost: u64, errors: Vec<ServerError>| -> Admission {
            let mut response = async_graphql::Response::from_errors(errors);
            coded(&mut response.errors);
            Admission { cost: Some(cost), outcome: Err(Box::new(response)) }
        };
        let document = match self.parsed(&request.query) {
            Ok(document) => document,
            // Over the token limit, it is charged as the costliest operation allowed.
            Err(error) => return refuse(if is_limit(&error) { limits.cost } else { 1 }, vec![error]),
        };
        let document = match limits::only_selected(&document, request.operation_name.as_deref()) {
            Ok(None) => document,
            Ok(Some(selected)) => Arc::new(selected),
            Err(message) => return refuse(1, vec![ServerError::new(message, None)]),
        };
        if operations == Operations::QueriesOnly
            && operation(&document, request.operation_name.as_deref()).map(|o| o.ty) == Some(OperationType::Mutation)
        {
            return free(Box::new(refused("mutations are sent with POST", "METHOD_NOT_ALLOWED", [])));
        }
        // A named operation alone in its document is the one that runs.
        if name.is_none()
            && let DocumentOperations::Multiple(operations) = &document.operations
            && operations.len() == 1
        {
            *name = operations.keys().next().map(ToString::to_string);
        }
        let introspection = self.graphql.introspection_roles.iter().any(|r| r == role);
        if !introspection && limits::introspects(&document) {
            let message = "introspection is not available to this token";
            return refuse(1, vec![refusal(message, "GRAPHQL_VALIDATION_FAILED", [])]);
        }
        let access = self.policy.access(viewer);
        let schema = self.schemas.of(&access).clone();
        let operation_name = request.operation_name.as_deref();
        let checked = match !self.without.has(Layer::Limits) {
            true => {
                let max_page = u64::try_from(self.graphql.max_page_size).unwrap_or(0);
                limits::check(&document, operation_name, &request.variables, &schema.types, max_page, &limits)
            }
            false => Ok(0),
        };
        // Over a limit, it is charged as the costliest operation allowed.
        let cost = Some(checked.as_ref().map_or(limits.cost, |cost| *cost));
        if let Err(e) = checked {
            return Admission {
                cost,
                outcome: Err(Box::new(async_graphql::Response::from_errors(vec![exceeded(&e)]))),
            };
        }
        let invalid = match self.without.has(Layer::Inputs) {
            false => self.invalid_inputs(&request, &document, &access, &schema),
            true => Vec::new(),
        };
        if !invalid.is_empty() {
            let mut response = async_graphql::Response::from_errors(invalid);
            coded(&mut response.errors);
            return Admission { cost, outcome: Err(Box::new(response)) };
        }
        let suggest = self.graphql.suggestion_roles.iter().any(|r| r == role);
        Admission { cost, outcome: Ok(Admitted { request, document, access, schema, introspection, suggest }) }
    }

    /// The errors of the request's input values ([`inputs::check_document`], [`inputs::check_variables`]): the document's own
    /// values are walked once per document and viewer schema (a clean document is
    /// remembered, as parsed documents are: not with string literals), the variables'
    /// on every request.
    fn invalid_inputs(
        &self,
        request: &async_graphql::Request,
        document: &ExecutableDocument,
        access: &Access,
        schema: &ViewerSchema,
    ) -> Vec<ServerError> {
        let operation = request.operation_name.as_deref();
        let key = cacheable(&request.query)
            .then(|| format!("{}\n{}\n{}", access.hidden_set(), operation.unwrap_or_default(), request.query));
        let known_clean = key.as_ref().is_some_and(|key| self.clean_inputs.get(key).is_some());
        let document_errors = match known_clean {
            true => Vec::new(),
            false => inputs::check_document(&schema.types, document),
        };
        if let Some(key) = key
            && !known_clean
            && document_errors.is_empty()
        {
            self.clean_inputs.insert(key, ());
        }
        inputs::in_order(
            document_errors,
            inputs::check_variables(&schema.types, document, operation, &request.variables),
        )
    }

    /// Runs an admitted request on its viewer's schema, within the request timeout, and
    /// puts the response in the shape clients are promised: fields in selection order,
    /// errors in document order and coded, suggestions where the role may have them.
    async fn answer(&self, admitted: Admitted, context: RequestContext, queue: BatchQueue) -> async_graphql::Response {
        let Admitted { request, document, access, schema, introspection, suggest } = admitted;
        let operation_name = request.operation_name.clone();
        let mut request = request.data(access).data(context);
        request.set_parsed_query(ExecutableDocument::clone(&document));
        if !introspection {
            request = request.disable_introspection();
        }
        let run = batch::drive(queue, schema.schema.execute(request));
        let started = std::time::Instant::now();
        let answered = tokio::time::timeout(self.graphql.timeout, run).await;
        // A response finished after its time (before the timer was seen to fire) is late
        // all the same: whether a request times out does not depend on the load.
        let Some(response) = answered.ok().filter(|_| started.elapsed() <= self.graphql.timeout) else {
            // Nothing was answered, so nothing was revealed: no audit entry.
            let message = format!("the request ran longer than {:?}", self.graphql.timeout);
            return refused(&message, "TIMEOUT", []);
        };
        self.shape(response, &document, operation_name.as_deref(), suggest, &schema)
    }

    /// A response in the shape clients are promised: fields in selection order, errors in
    /// document order and coded, suggestions where the role may have them.
    fn shape(
        &self,
        mut response: async_graphql::Response,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        suggest: bool,
        schema: &ViewerSchema,
    ) -> async_graphql::Response {
        // An operation that ran without an error has an object, if an empty one: every
        // field skipped (`{ __typename @skip(if: true) }`) is `{"data": {}}`, not null.
        if response.data == Value::Null && response.errors.is_empty() {
            response.data = Value::Object(Default::default());
        }
        if !self.without.has(Layer::Order) {
            graphql::document::field_order::reorder(document, operation_name, &mut response.data);
        }
        if response.data == Value::Null {
            // Validation's errors come in the order of a hash map of the fragments: put them
            // in the document's, so the same document always gets the same answer.
            response.errors.sort_by(|a, b| (&a.locations, &a.message).cmp(&(&b.locations, &b.message)));
            // async-graphql's validation walks the document twice, and an operation type
            // the schema lacks is reported by each walk: say it once.
            response.errors.dedup_by(|a, b| (&a.message, &a.locations, &a.path) == (&b.message, &b.locations, &b.path));
        }
        coded(&mut response.errors);
        if suggest && response.errors.iter().any(|e| e.message.starts_with("Unknown field")) {
            graphql::document::suggestions::suggest(&mut response.errors, &schema.types);
        }
        response
    }

    /// What the response owes before it leaves: its audit entries queued (else it is
    /// withheld, `AUDIT_UNAVAILABLE`), and the statement counts when traced.
    async fn finish(
        &self,
        mut response: async_graphql::Response,
        viewer: &Viewer,
        request_id: &str,
        reveals: &Reveals,
        trace: &SqlTrace,
    ) -> async_graphql::Response {
        if let Some(audit) = &self.audit {
            audit.keep(reveals.noted(viewer, request_id));
            if audit.submit(reveals.entries(viewer, request_id)).await.is_err() {
                let mut error = ServerError::new(ApiError::AuditUnavailable.message(), None);
                error.extensions = ApiError::AuditUnavailable.extend().extensions;
                response = async_graphql::Response::from_errors(vec![error]);
            }
        }
        if let Some(counts) = trace.snapshot() {
            let by_source = counts.into_iter().map(|(db, n)| (Name::new(db.to_string()), Value::from(n))).collect();
            response.extensions.insert("sqlStatements".into(), Value::Object(by_source));
        }
        response
    }

    /// `query` parsed, from the cache or parsed now (and kept if [`cacheable`]); else the
    /// syntax error, coded `GRAPHQL_PARSE_FAILED`.
    fn parsed(&self, query: &str) -> Result<Arc<ExecutableDocument>, ServerError> {
        let cacheable = cacheable(query);
        if cacheable && let Some(document) = self.documents.get(query) {
            return Ok(document);
        }
        if !self.without.has(Layer::Limits)
            && let Err(e) = limits::tokens(query, self.graphql.max_tokens)
        {
            return Err(exceeded(&e));
        }
        let document = async_graphql::parser::parse_query(query).map(Arc::new).map_err(|e| {
            // The parser's own message is a source excerpt with its grammar's rule names:
            // the position is what a client can use.
            let positions: Vec<async_graphql::Pos> = e.positions().collect();
            let message = match positions.first() {
                Some(at) => format!("syntax error at line {}, column {}", at.line, at.column),
                None => "syntax error".to_owned(),
            };
            let mut error = ServerError::new(message, positions.first().copied());
            error.extensions.get_or_insert_with(Default::default).set("code", "GRAPHQL_PARSE_FAILED");
            error
        })?;
        if cacheable {
            self.documents.insert(query.to_owned(), document.clone());
        }
        Ok(document)
    }

    /// Operations one batched POST may hold; 0 when batching is off.
    pub(crate) fn max_batch(&self) -> usize {
        self.graphql.max_batch
    }

    /// Whether `viewer`'s token was revoked (checked against a snapshot read every few
    /// seconds; every token is refused until the revocations could be read once).
    pub(crate) async fn refuses(&self, viewer: &Viewer) -> bool {
        let refused = match &self.kept.revocations {
            Some(revocations) => revocations.refuses(viewer).await,
            None => false,
        };
        if refused {
            self.metrics.rejected("revoked");
        }
        refused
    }

    /// The metrics in the Prometheus text format, with the pools, the audit queue and
    /// the model's age read now.
    pub(crate) async fn metrics_text(&self) -> String {
        let dbs: Vec<DbGauges> = self
            .sources
            .all()
            .map(|db| {
                let (idle, busy) = db.connections();
                let (up, breaker) = (db.health.up(), db.health.state() as i64);
                DbGauges { name: db.name.to_string(), idle, busy, up, breaker }
            })
            .collect();
        let queued = self.audit.as_ref().map_or(0, |a| i64::try_from(a.queued()).unwrap_or(i64::MAX));
        let dead_letters = self.audit.as_ref().map_or(0, AuditLog::dead_letters);
        let model_age = self.kept.models.age_seconds(self.sources.hub()).await;
        self.metrics.render(&dbs, (queued, dead_letters), model_age)
    }

    /// The partners with consents in the CRM (the playground's sign-in offers them).
    pub(crate) async fn partners(&self) -> Result<Vec<String>, sqlx::Error> {
        crate::sources::crm::partners(self.sources.crm(), &SqlTrace::default()).await
    }

    /// Keeps every database's health (background pings every `database.health_interval`)
    /// until `stop` turns true; returns at once when the pings are off.
    pub(crate) async fn watch_sources(&self, stop: tokio::sync::watch::Receiver<bool>) {
        let every = self.health_interval;
        if !every.is_zero() {
            self.sources.clone().watch(every, stop).await;
        }
    }

    /// Follows the bus until `stop` turns true: relays the hub store's messages
    /// ([`Bus::relay`]) and reads the revocations again when another replica revoked
    /// tokens.
    pub(crate) async fn follow_bus(&self, stop: tokio::sync::watch::Receiver<bool>) {
        let bus = &self.kept.bus;
        let mut messages = bus.subscribe();
        let mut stopped = stop.clone();
        let react = async {
            loop {
                use tokio::sync::broadcast::error::RecvError;
                match messages.recv().await {
                    // Missed messages (lagged): read what they would have said.
                    Ok(Topic::Revocations) | Err(RecvError::Lagged(_)) => {
                        if let Some(revocations) = &self.kept.revocations {
                            revocations.reread().await;
                        }
                    }
                    // Subscriptions follow the bus themselves.
                    Ok(Topic::Alerts) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        };
        // (Over engines without `LISTEN` the relay returns at once: this replica's own
        // messages are still heard.)
        let relay = async {
            bus.relay(stop).await;
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = relay => {}
            () = react => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    }

    /// Detects service alerts (under the `alerts` lease: one replica at a time) until
    /// `stop` turns true; returns at once when detection is off.
    pub(crate) async fn detect_alerts(&self, stop: tokio::sync::watch::Receiver<bool>) {
        self.detector.clone().run(self.alerts_interval, stop).await;
    }

    /// Stops the audit writer once every entry taken is written.
    pub async fn close(&self) {
        if let Some(audit) = &self.audit {
            audit.close().await;
        }
    }
}

/// What `/readyz` says ([`Engine::readiness`]).
pub(crate) struct Readiness {
    /// Serving: the hub store answers and the audit log is written.
    pub(crate) ready: bool,
    /// The parts not well: `audit`, and databases by name.
    pub(crate) degraded: Vec<String>,
}

/// A request refused before it runs: the whole response.
type Refusal = Box<async_graphql::Response>;

/// What [`Engine::admit`] decided: the request let through or refused, and what it costs
/// the caller's rate (`None`: nothing, refused before it was read).
struct Admission {
    cost: Option<u64>,
    outcome: Result<Admitted, Refusal>,
}

/// A request [`Engine::admit`] let through, with what running it needs.
struct Admitted {
    request: async_graphql::Request,
    /// Parsed, with only the operation that runs (and its fragments).
    document: Arc<ExecutableDocument>,
    access: Access,
    /// The viewer's schema: what the policy hides from it is not in it.
    schema: Arc<ViewerSchema>,
    /// Whether the role may introspect, and may be told the names it misspelt.
    introspection: bool,
    suggest: bool,
}

impl Subscription {
    /// Its id, in every response's `extensions.requestId` and in its audit entries.
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }
}

/// An open subscription ([`Engine::subscribe`]): its stream of responses, with what
/// each response is shaped and audited by.
pub(crate) struct Subscription {
    stream: futures::stream::BoxStream<'static, async_graphql::Response>,
    /// The batches of its loaders, run while it waits for its next response.
    queue: BatchQueue,
    /// What its responses revealed since the last one.
    reveals: Arc<Reveals>,
    viewer: Viewer,
    request_id: String,
    trace: SqlTrace,
    document: Arc<ExecutableDocument>,
    operation_name: Option<String>,
    suggest: bool,
    schema: Arc<ViewerSchema>,
    /// Counted among its token's open subscriptions until dropped.
    _slot: Slot,
}

/// One open subscription of a token, given back when dropped.
struct Slot {
    open: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    token: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.token) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.token);
            }
        }
    }
}

/// Whether `error` is a limit's (`LIMIT_EXCEEDED`).
fn is_limit(error: &ServerError) -> bool {
    let code = error.extensions.as_ref().and_then(|e| e.get("code"));
    code.is_some_and(|c| *c == Value::from("LIMIT_EXCEEDED"))
}

/// Which operations a request may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operations {
    All,
    /// Over HTTP GET: no mutations.
    QueriesOnly,
}

/// The operation `name` selects in `document` (or its only one); `None` when that is not
/// clear, which execution then reports.
fn operation<'a>(document: &'a ExecutableDocument, name: Option<&str>) -> Option<&'a OperationDefinition> {
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => operation,
        (DocumentOperations::Single(_), Some(_)) => return None,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations.values().next()?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    Some(&operation.node)
}

/// A request refused as a whole: one error with its code and `details` in its extensions.
fn refused<const N: usize>(message: &str, code: &str, details: [(&str, Value); N]) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![refusal(message, code, details)])
}

fn refusal<const N: usize>(message: &str, code: &str, details: [(&str, Value); N]) -> ServerError {
    let mut error = ServerError::new(message, None);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("code", code);
    for (key, value) in details {
        extensions.set(key, value);
    }
    error
}

/// `LIMIT_EXCEEDED`, with the limit, its maximum and what the document reached.
fn exceeded(e: &limits::Exceeded) -> ServerError {
    let details = [("limit", Value::from(e.limit)), ("max", e.max.into()), ("found", e.found.into())];
    refusal(&e.message(), "LIMIT_EXCEEDED", details)
}

/// What became of an operation, for the metrics: `ok`, `partial` (data with errors), or
/// the code of the error that left it without data.
fn outcome(response: &async_graphql::Response) -> &'static str {
    let Some(first) = response.errors.first() else { return "ok" };
    if response.data != Value::Null {
        return "partial";
    }
    const CODES: &[&str] = &[
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "LIMIT_EXCEEDED",
        "RATE_LIMITED",
        "TIMEOUT",
        "AUDIT_UNAVAILABLE",
        "METHOD_NOT_ALLOWED",
        "PERSISTED_QUERY_NOT_FOUND",
        "PERSISTED_QUERY_NOT_IN_LIST",
        "UNAUTHENTICATED",
    ];
    let code = first.extensions.as_ref().and_then(|e| e.get("code"));
    CODES.iter().find(|c| code == Some(&Value::from(**c))).copied().unwrap_or("error")
}

/// Every error gets the code clients branch on: those of the request as a whole
/// (validation, operation selection; they have no path) `GRAPHQL_VALIDATION_FAILED`,
/// whichever schema answered; those of a field without one (async-graphql's coercion of
/// arguments and variables: an Int out of range, a date that does not parse, a variable
/// not given) `BAD_USER_INPUT`. The hub's own errors carry their codes already.
fn coded(errors: &mut [ServerError]) {
    for e in errors.iter_mut() {
        let whole = e.path.is_empty();
        let extensions = e.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", if whole { "GRAPHQL_VALIDATION_FAILED" } else { "BAD_USER_INPUT" });
        }
    }
}

impl Engine {
    /// Whether this replica can serve, and what is degraded: `audit` when the audit log
    /// is not written, and each database that did not answer its last background ping or
    /// whose breaker is open. Only the hub's own store and audit log make it unready: a
    /// source that is down is down for every replica, and taking them all out of a load
    /// balancer would turn one source's fields failing (`SOURCE_UNAVAILABLE`, the others
    /// served) into every request failing. Asks no database: it answers at once.
    pub(crate) fn readiness(&self) -> Readiness {
        let mut degraded: Vec<String> =
            self.sources.all().filter(|db| !db.health.up()).map(|db| db.name.to_string()).collect();
        let mut ready = self.sources.hub().health.up();
        if self.audit.as_ref().is_some_and(|a| !a.available()) {
            degraded.insert(0, "audit".to_owned());
            ready = false;
        }
        Readiness { ready, degraded }
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
