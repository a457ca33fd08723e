//! The HTTP server: one entry point for every GraphQL request (bearer token → viewer →
//! policy decisions, statement trace, loaders), over HTTP or a websocket, plus health
//! checks, metrics and the analysts' playground, which stay public.

mod hosts;
mod playground;
mod sse;
mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::header::{ACCEPT, ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{AuthError, Verifier, Viewer};
use crate::config::{Config, HttpConfig};
use crate::request::{Engine, Operations};

struct AppState {
    hub: Engine,
    verifier: Verifier,
    /// The configuration the playground's development tokens are minted under; `None`
    /// unless the hub runs in development with the development key.
    development: Option<Config>,
    /// The names the hub answers to: the development endpoints' `Host`, a browser
    /// websocket's `Origin`.
    hosts: hosts::AllowedHosts,
    /// Turns true when the server begins to shut down: websockets take no new operation.
    closing: tokio::sync::watch::Sender<bool>,
    /// Open websocket connections, which the server waits for as it shuts down.
    sockets: tokio_util::task::TaskTracker,
    /// How long requests and operations in flight may take to finish on shutdown.
    grace: std::time::Duration,
    /// How long a client may take to send a request, and a websocket its `connection_init`.
    http: HttpConfig,
    /// The largest request body, and websocket message.
    max_body: usize,
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
}

impl Application {
    /// Loads the verification keys, binds `config.listen` (port 0 picks a free port) and
    /// assembles the routes around `hub` (see [`Engine::new`]).
    pub async fn build(config: Config, hub: Engine) -> anyhow::Result<Self> {
        let verifier = Verifier::new(&config)?;
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let hosts = hosts::AllowedHosts::new(&config.allowed_hosts, listener.local_addr()?)?;
        let grace = config.shutdown_timeout;
        let max_body = config.graphql.max_body_bytes;
        let development = playground::mints_tokens(&config).then_some(config.clone());
        let state = Arc::new(AppState {
            hub,
            verifier,
            hosts,
            closing: tokio::sync::watch::Sender::new(false),
            sockets: tokio_util::task::TaskTracker::new(),
            grace,
            http: config.http.clone(),
            max_body,
            development,
        });
        let mut playground = Router::new().route("/", get(playground::asset)).fallback(playground::asset);
        if state.development.is_some() {
            let development = Router::new()
                .route("/viewers", get(playground::viewers))
                .route("/token", axum::routing::post(playground::dev_token))
                .fallback(|| async { (StatusCode::NOT_FOUND, Json(error_body("NOT_FOUND", "no such resource"))) })
                .layer(axum::middleware::from_fn_with_state(state.clone(), playground::only_own_hosts))
                .layer(axum::middleware::map_response(no_store));
            playground = playground.nest("/dev", development);
        }
        let playground = playground.layer(CompressionLayer::new());
        let router = Router::new()
            .route(
                "/graphql",
                get(graphql_get)
                    .post(graphql_post)
                    .fallback(|| async {
                        let body = error_body("METHOD_NOT_ALLOWED", "/graphql takes GET and POST");
                        (StatusCode::METHOD_NOT_ALLOWED, [(ALLOW, "GET, POST")], Json(body))
                    })
                    .layer(axum::middleware::map_response(no_store)),
            )
            .merge(playground)
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(metrics))
            .route("/readyz", get(ready))
            .route("/health/live", get(|| async { "ok" }))
            .route("/health/ready", get(ready))
            // Bodies are read by the handlers' extractors, which answer a larger one with
            // a JSON 413.
            .layer(axum::extract::DefaultBodyLimit::max(max_body))
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

    /// Serves until `shutdown` completes, then stops accepting connections and gives
    /// requests and websocket operations in flight `shutdown_timeout` to finish (what
    /// runs longer is cut off), closes every websocket (1001), and writes every audit
    /// entry the answered requests made.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let state = self.state;
        let closing = {
            let state = state.clone();
            async move {
                shutdown.await;
                state.closing.send_replace(true);
                state.sockets.close();
            }
        };
        let watch = {
            let state = state.clone();
            tokio::spawn(async move { state.hub.watch_sources(state.closing.subscribe()).await })
        };
        let bus = {
            let state = state.clone();
            tokio::spawn(async move { state.hub.follow_bus(state.closing.subscribe()).await })
        };
        let alerts = {
            let state = state.clone();
            tokio::spawn(async move { state.hub.detect_alerts(state.closing.subscribe()).await })
        };
        let serve = serve(self.listener, self.router, state.http.header_timeout, closing);
        let (mut closed, grace) = (state.closing.subscribe(), state.grace);
        let deadline = async move {
            let _ = closed.wait_for(|closing| *closing).await;
            tokio::time::sleep(grace).await;
        };
        let served = tokio::select! {
            served = serve => served,
            () = deadline => {
                tracing::warn!("requests still running at the shutdown deadline were cut off");
                Ok(())
            }
        };
        // The websockets close by themselves once their operations are done, by the
        // deadline at the latest.
        if tokio::time::timeout(state.grace, state.sockets.wait()).await.is_err() {
            tracing::warn!("websockets still open at the shutdown deadline were cut off");
        }
        state.hub.close().await;
        let _ = watch.await;
        let _ = bus.await;
        let _ = alerts.await;
        served
    }
}

/// Accepts connections until `closing` completes, then lets those open finish their
/// request in flight and closes them (`axum::serve`, with a deadline on each request's
/// headers: a client that trickles them in is cut off after `header_timeout`).
async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: std::time::Duration,
    closing: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};

    let connections = tokio_util::task::TaskTracker::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    futures::pin_mut!(closing);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors, or a connection reset before it was accepted.
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut closing => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let connection = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
            futures::pin_mut!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopped.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    stop.send_replace(true);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Answers that may carry personal data (or a token) are kept by no cache, and read by
/// browsers as nothing but what they declare.
async fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(axum::http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A GET is a query in the URL (`query`, `operationName`, `variables` as JSON), or the
/// opening of a websocket. Mutations are not run over GET (405): a link or a prefetch must
/// never change data.
async fn graphql_get(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if ws::wants_upgrade(request.headers()) {
        return ws::upgrade(state, request).await;
    }
    let headers = request.headers().clone();
    let Ok(Query(params)) = Query::<std::collections::HashMap<String, String>>::try_from_uri(request.uri()) else {
        return bad_request("BAD_REQUEST", "the query string cannot be read");
    };
    let mut graphql = async_graphql::Request::new(params.get("query").cloned().unwrap_or_default());
    if let Some(name) = params.get("operationName").filter(|n| !n.is_empty()) {
        graphql = graphql.operation_name(name.clone());
    }
    if let Some(variables) = params.get("variables").filter(|v| !v.is_empty()) {
        match serde_json::from_str::<serde_json::Value>(variables) {
            Ok(value @ serde_json::Value::Object(_)) => {
                graphql = graphql.variables(async_graphql::Variables::from_json(value));
            }
            _ => return bad_request("BAD_REQUEST", "`variables` must be a JSON object"),
        }
    }
    if let Some(extensions) = params.get("extensions").filter(|v| !v.is_empty()) {
        match serde_json::from_str(extensions) {
            Ok(extensions) => graphql.extensions = extensions,
            Err(_) => return bad_request("BAD_REQUEST", "`extensions` must be a JSON object"),
        }
    }
    let mut response = graphql_handler(&state, &headers, graphql, Operations::QueriesOnly).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// A POST carries a JSON GraphQL request (`application/json`); other bodies are refused
/// (415) before anything runs.
async fn graphql_post(State(state): State<Arc<AppState>>, request: Request) -> Response {
    use axum::extract::FromRequest as _;

    let headers = request.headers().clone();
    // The whole body within its time: a client that sends a byte now and then does not
    // hold the connection.
    let body = match tokio::time::timeout(state.http.body_timeout, Bytes::from_request(request, &())).await {
        Err(_) => {
            let body = error_body("REQUEST_TIMEOUT", "the request body did not arrive within http.body_timeout");
            return (StatusCode::REQUEST_TIMEOUT, [(axum::http::header::CONNECTION, "close")], Json(body))
                .into_response();
        }
        Ok(body) => body,
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let body = error_body("PAYLOAD_TOO_LARGE", "the request body is larger than graphql.max_body_bytes");
            return (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
        }
        Err(_) => return bad_request("BAD_REQUEST", "the request body cannot be read"),
    };
    if !is_json(&headers) {
        let body = error_body("UNSUPPORTED_MEDIA_TYPE", "the body must be a JSON GraphQL request (application/json)");
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response();
    }
    match serde_json::from_slice::<async_graphql::BatchRequest>(&body) {
        Ok(async_graphql::BatchRequest::Single(graphql)) if sse::wants_events(&headers) => {
            sse::serve(state.clone(), &headers, graphql).await
        }
        Ok(async_graphql::BatchRequest::Single(graphql)) => {
            graphql_handler(&state, &headers, graphql, Operations::All).await
        }
        Ok(async_graphql::BatchRequest::Batch(requests)) => graphql_batch(&state, &headers, requests).await,
        Err(_) => bad_request("BAD_REQUEST", "the body is not a GraphQL request: a JSON object with a `query`"),
    }
}

/// Whether a request's body is declared `application/json` (parameters aside). Browsers
/// send other bodies (forms, `text/plain`) from any page without asking the server first.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// A JSON array of requests, where `graphql.max_batch` allows batches: each runs as a
/// request of its own (limits, rate, audit), one after another, and the answer is the
/// array of their responses (200).
async fn graphql_batch(state: &AppState, headers: &HeaderMap, requests: Vec<async_graphql::Request>) -> Response {
    let max = state.hub.max_batch();
    if max == 0 {
        return bad_request("BAD_REQUEST", "batching is off: send one operation per request");
    }
    if requests.is_empty() {
        return bad_request("BAD_REQUEST", "the batch is empty");
    }
    if requests.len() > max {
        let message = format!("the batch exceeds the limit of {max} operations (it has {})", requests.len());
        let error = serde_json::json!({ "errors": [{ "message": message,
            "extensions": { "code": "LIMIT_EXCEEDED", "limit": "batch", "max": max, "found": requests.len() } }] });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let (media, viewer) = match admit(state, headers).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let mut responses = Vec::with_capacity(requests.len());
    for request in requests {
        responses.push(state.hub.execute(viewer.clone(), request).await.0);
    }
    let bodies: Vec<Body<'_>> = responses.iter().map(|response| media.body(response).0).collect();
    (StatusCode::OK, [(CONTENT_TYPE, media.content_type())], serialized(&bodies)).into_response()
}

/// The response's media type (406 if none fits) and the viewer of a request's token
/// (401 when it has none, or it is invalid or revoked).
async fn admit(state: &AppState, headers: &HeaderMap) -> Result<(Media, Viewer), Response> {
    let Some(media) = Media::accepted(headers) else {
        let body =
            error_body("NOT_ACCEPTABLE", "the response is application/graphql-response+json or application/json");
        return Err((StatusCode::NOT_ACCEPTABLE, Json(body)).into_response());
    };
    let viewer = authenticate(&state.verifier, headers).map_err(unauthenticated)?;
    if state.hub.refuses(&viewer).await {
        return Err(unauthenticated(AuthError::Revoked));
    }
    Ok((media, viewer))
}

/// Every GraphQL request over HTTP enters here: the response's media type is agreed
/// (406 if none fits), the token becomes a viewer, the policy its access.
async fn graphql_handler(
    state: &AppState,
    headers: &HeaderMap,
    request: async_graphql::Request,
    operations: Operations,
) -> Response {
    let (media, viewer) = match admit(state, headers).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let (response, request_id) = state.hub.execute_as(viewer, request, operations).await;
    let mut response = media.render(&response);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// The media types of a GraphQL response (GraphQL over HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    /// `application/graphql-response+json`: the status says whether the request as a
    /// whole failed (400) or ran (200).
    GraphqlResponse,
    /// `application/json`: always 200, as clients before the spec expect. Also for `*/*`
    /// and when nothing is asked for, as GraphQL over HTTP recommends.
    Json,
}

impl Media {
    /// The first acceptable type the `Accept` header lists (types with `q=0` excluded).
    fn accepted(headers: &HeaderMap) -> Option<Media> {
        let Some(accept) = headers.get(ACCEPT) else { return Some(Media::Json) };
        let accept = accept.to_str().ok()?;
        if accept.trim().is_empty() {
            return Some(Media::Json);
        }
        accept.split(',').find_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let media = parts.next()?.to_ascii_lowercase();
            if parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0")) {
                return None;
            }
            match media.as_str() {
                "application/graphql-response+json" => Some(Media::GraphqlResponse),
                "application/json" | "*/*" | "application/*" => Some(Media::Json),
                _ => None,
            }
        })
    }

    /// The response body in this media type, and whether the request was refused as a
    /// whole (it did not parse or validate, or was not allowed to run): such a body has
    /// no `data` entry.
    fn body(self, response: &async_graphql::Response) -> (Body<'_>, bool) {
        let rejected = response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| {
                let code = e.extensions.as_ref().and_then(|x| x.get("code"));
                e.path.is_empty()
                    && code.is_some_and(|c| REJECTIONS.iter().any(|r| *c == async_graphql::Value::from(*r)))
            });
        let body = Body {
            data: (!rejected).then_some(&response.data),
            extensions: &response.extensions,
            errors: &response.errors,
        };
        (body, rejected)
    }

    fn content_type(self) -> &'static str {
        match self {
            Media::GraphqlResponse => GRAPHQL_RESPONSE_JSON,
            Media::Json => "application/json; charset=utf-8",
        }
    }

    /// The response in this media type: 400 under `application/graphql-response+json`
    /// for a request refused as a whole.
    fn render(self, response: &async_graphql::Response) -> Response {
        let (body, rejected) = self.body(response);
        let body = serialized(&body);
        let content_type = self.content_type();
        let status = if rejected && self == Media::GraphqlResponse { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        // Over its allowance: 429 with Retry-After, in either media type.
        let retry_after = response.errors.iter().find_map(|e| {
            let extensions = e.extensions.as_ref()?;
            let limited = extensions.get("code") == Some(&async_graphql::Value::from("RATE_LIMITED"));
            limited.then(|| extensions.get("retryAfter").map(ToString::to_string).unwrap_or_else(|| "1".into()))
        });
        if let Some(seconds) = retry_after {
            let headers = [(CONTENT_TYPE, content_type.to_owned()), (RETRY_AFTER, seconds)];
            return (StatusCode::TOO_MANY_REQUESTS, headers, body).into_response();
        }
        // A mutation over GET (also one named by a persisted hash): 405, in either type.
        let code = response.errors.first().and_then(|e| e.extensions.as_ref()).and_then(|x| x.get("code"));
        if code == Some(&async_graphql::Value::from("METHOD_NOT_ALLOWED")) {
            return (StatusCode::METHOD_NOT_ALLOWED, [(CONTENT_TYPE, content_type)], body).into_response();
        }
        (status, [(CONTENT_TYPE, content_type)], body).into_response()
    }
}

/// A response's body: as async-graphql serialises a response, without `data` when the
/// request was refused as a whole. Written straight to text (no JSON tree in between: that
/// was a tenth of a page's CPU).
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "no_extensions")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
    #[serde(skip_serializing_if = "no_errors")]
    errors: &'a [async_graphql::ServerError],
}

fn no_extensions(extensions: &&std::collections::BTreeMap<String, async_graphql::Value>) -> bool {
    extensions.is_empty()
}

fn no_errors(errors: &&[async_graphql::ServerError]) -> bool {
    errors.is_empty()
}

/// `value` as JSON text (serialising a response cannot fail: its maps have string keys).
fn serialized(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The codes of a request refused as a whole, before it ran: no `data`, and 400 under
/// `application/graphql-response+json`.
const REJECTIONS: &[&str] = &[
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "LIMIT_EXCEEDED",
    "RATE_LIMITED",
    "METHOD_NOT_ALLOWED",
    "BAD_REQUEST",
    "PERSISTED_QUERY_NOT_FOUND",
    "PERSISTED_QUERY_NOT_IN_LIST",
    "PERSISTED_QUERY_HASH_MISMATCH",
    "PERSISTED_QUERY_NOT_SUPPORTED",
];

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";

/// A GraphQL error body with its code.
fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// HTTP 400 with a GraphQL error body.
fn bad_request(code: &str, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(error_body(code, message))).into_response()
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
    let body = error_body("UNAUTHENTICATED", error.message());
    let challenge = match error {
        AuthError::Missing => "Bearer",
        AuthError::Expired | AuthError::Invalid | AuthError::Revoked => "Bearer error=\"invalid_token\"",
    };
    (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, challenge)], Json(body)).into_response()
}

/// The hub's metrics, in the Prometheus text format.
async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.hub.metrics_text().await)
}

/// 200 while the hub store answers and the audit log is written, naming the sources
/// that do not (`degraded`: their fields fail, the others are served); else 503. Asks no
/// database.
async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let readiness = state.hub.readiness();
    let body = match (readiness.ready, readiness.degraded.is_empty()) {
        (true, true) => serde_json::json!({ "status": "ready" }),
        (true, false) => serde_json::json!({ "status": "degraded", "degraded": readiness.degraded }),
        (false, _) => serde_json::json!({ "status": "unavailable", "degraded": readiness.degraded }),
    };
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body))
}
