//! The HTTP server: one entry point for every GraphQL request (viewer, statement trace,
//! loaders), plus health checks and the landing page.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::{Name, Value};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Viewer;
use crate::config::Config;
use crate::graphql::{self, C360Schema, RequestContext, Shared};
use crate::loaders::batch::{self, BatchQueue};
use crate::sources::{Sources, SqlTrace};

/// Largest request body accepted (GraphQL documents and variables).
const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
struct AppState {
    schema: C360Schema,
    sources: Sources,
    trace_sql: bool,
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds `config.listen` (port 0 picks a free port) and assembles the routes.
    pub async fn build(config: Config, sources: Sources) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let trace_sql = config.trace_sql;
        let schema = graphql::build(Some(Shared { sources: sources.clone(), config }));
        let state = Arc::new(AppState { schema, sources, trace_sql });
        let router = Router::new()
            .route("/graphql", get(graphql_handler).post(graphql_handler))
            .route("/", get(landing))
            .route("/health/live", get(|| async { "ok" }))
            .route("/health/ready", get(ready))
            .layer(RequestBodyLimitLayer::new(MAX_BODY))
            .layer(TraceLayer::new_for_http())
            .with_state(state);
        Ok(Application { listener, router })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `shutdown` completes, then finishes requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}

/// Every GraphQL request enters here.
async fn graphql_handler(State(state): State<Arc<AppState>>, request: GraphQLRequest) -> GraphQLResponse {
    let trace = if state.trace_sql { SqlTrace::enabled() } else { SqlTrace::default() };
    let queue = BatchQueue::default();
    let context = RequestContext::new(&state.sources, Viewer::development(), trace.clone(), &queue);
    let mut response = batch::drive(queue, state.schema.execute(request.into_inner().data(context))).await;
    if let Some(counts) = trace.snapshot() {
        let by_source = counts.into_iter().map(|(db, n)| (Name::new(db.to_string()), Value::from(n))).collect();
        response.extensions.insert("sqlStatements".into(), Value::Object(by_source));
    }
    response.into()
}

/// Ready when every database answers.
async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let s = &state.sources;
    for db in [&s.crm, &s.shop, &s.helpdesk, &s.marketing, &s.hub] {
        if db.ping().await.is_err() {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("{} unavailable", db.name));
        }
    }
    (StatusCode::OK, "ready".to_owned())
}

async fn landing() -> Html<&'static str> {
    Html(include_str!("landing.html"))
}
