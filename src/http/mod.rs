//! The HTTP server: one entry point for every GraphQL request (bearer token → viewer →
//! policy decisions, statement trace, loaders), over HTTP or a websocket, plus health
//! checks and the landing page, which stay public.

mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Json;
use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{AuthError, Verifier, Viewer};
use crate::config::Config;
use crate::hub::Hub;

/// Largest request body accepted (GraphQL documents and variables).
const MAX_BODY: usize = 1024 * 1024;

struct AppState {
    hub: Hub,
    verifier: Verifier,
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
}

impl Application {
    /// Loads the verification keys, binds `config.listen` (port 0 picks a free port) and
    /// assembles the routes around `hub` (see [`Hub::new`]).
    pub async fn build(config: Config, hub: Hub) -> anyhow::Result<Self> {
        let verifier = Verifier::new(&config)?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let state = Arc::new(AppState { hub, verifier });
        let router = Router::new()
            .route("/graphql", get(graphql_get).post(graphql_handler))
            .route("/", get(landing))
            .route("/health/live", get(|| async { "ok" }))
            .route("/health/ready", get(ready))
            .layer(RequestBodyLimitLayer::new(MAX_BODY))
            // The path only: a GET query string carries the document and its variables,
            // which may hold emails, phones or names.
            .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
            }))
            .with_state(state.clone());
        Ok(Application { listener, router, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `shutdown` completes, then finishes requests in flight and writes
    /// every audit entry they made.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let served = axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await;
        self.state.hub.close().await;
        served
    }
}

/// A GET is a query in the URL, or the opening of a websocket.
async fn graphql_get(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if ws::wants_upgrade(request.headers()) {
        return ws::upgrade(state, request).await;
    }
    let headers = request.headers().clone();
    match <GraphQLRequest>::from_request(request, &state).await {
        Ok(graphql) => graphql_handler(State(state), headers, graphql).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// Every GraphQL request over HTTP enters here: the token becomes a viewer, the policy
/// its access.
async fn graphql_handler(State(state): State<Arc<AppState>>, headers: HeaderMap, request: GraphQLRequest) -> Response {
    let viewer = match authenticate(&state.verifier, &headers) {
        Ok(viewer) => viewer,
        Err(e) => return unauthenticated(e),
    };
    let (response, request_id) = state.hub.execute(viewer, request.into_inner()).await;
    let mut response = GraphQLResponse::from(response).into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The viewer of a request's bearer token.
fn authenticate(verifier: &Verifier, headers: &HeaderMap) -> Result<Viewer, AuthError> {
    let header = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    verifier.verify(bearer(header.to_str().map_err(|_| AuthError::Invalid)?)?)
}

/// The token of a `Bearer <token>` authorization (another scheme counts as none).
fn bearer(authorization: &str) -> Result<&str, AuthError> {
    let (scheme, token) = authorization.trim().split_once(' ').ok_or(AuthError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Missing);
    }
    Ok(token.trim())
}

/// HTTP 401 with a GraphQL error body, as clients expect from a GraphQL endpoint.
fn unauthenticated(error: AuthError) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": error.message(), "extensions": { "code": "UNAUTHENTICATED" } }]
    });
    let challenge = match error {
        AuthError::Missing => "Bearer",
        AuthError::Expired | AuthError::Invalid => "Bearer error=\"invalid_token\"",
    };
    (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, challenge)], Json(body)).into_response()
}

/// Ready when every database answers and the audit log is written.
async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.hub.ready().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn landing() -> Html<&'static str> {
    Html(include_str!("landing.html"))
}
