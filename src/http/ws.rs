//! GraphQL over websocket (`graphql-transport-ws`, and the older `graphql-ws`): the same
//! requests as over HTTP, run by the same [`Engine`](crate::request::Engine) under the same policy and
//! audit log.
//!
//! The token comes with the upgrade request's `Authorization` header or, from browsers,
//! which cannot set headers on a websocket, in the `connection_init` payload as
//! `{"Authorization": "Bearer <token>"}`. Without a valid token the connection is closed
//! before anything runs. The token is verified again for every operation, so a
//! connection does not outlive its token's expiry or the retirement of its key.

use std::any::TypeId;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::{WebSocketProtocols, WsMessage};
use async_graphql::{Data, ErrorExtensionValues, Executor, ServerError, Value};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
use futures::{SinkExt as _, StreamExt as _, future};

use super::{AppState, bearer, unauthenticated};
use crate::auth::AuthError;

/// A connection without any message for this long is closed.
const IDLE: Duration = Duration::from_secs(60);

/// Whether a GET to `/graphql` asks to become a websocket.
pub(super) fn wants_upgrade(headers: &HeaderMap) -> bool {
    let has = |name, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
    };
    has(CONNECTION, "upgrade") && has(UPGRADE, "websocket")
}

/// Accepts the websocket. A browser's `Origin` must be one of the hub's own names, its
/// listen address or `allowed_hosts` (HTTP 403 otherwise): browsers open websockets to
/// any site, and without this check a page elsewhere could drive a connection in the
/// name of whoever opened it (cross-site websocket hijacking). The request's own `Host`
/// proves nothing: a page on a name that resolves to the hub sends that name as both.
/// An `Authorization` header that is present must be valid (HTTP 401 otherwise). Both are
/// checked before the upgrade.
pub(super) async fn upgrade(state: Arc<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    if !state.hosts.allows_origin(&parts.headers) {
        let body = super::error_body("FORBIDDEN", "websocket connections from another origin are refused");
        return (axum::http::StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let header_token = match parts.headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => {
            let token = value.to_str().map_err(|_| AuthError::Invalid).and_then(bearer);
            match token.and_then(|t| state.verifier.verify(t).map(|_| t.to_owned())) {
                Ok(token) => Some(token),
                Err(e) => return unauthenticated(e),
            }
        }
    };
    // The first subprotocol offered that the hub speaks.
    let offered = parts.headers.get(SEC_WEBSOCKET_PROTOCOL).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(protocol) = offered.split(',').find_map(|p| p.trim().parse::<WebSocketProtocols>().ok()) else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let socket = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(socket) => socket,
        Err(rejection) => return rejection.into_response(),
    };
    let sockets = state.sockets.clone();
    // A message (fragmented or not) is held to the body limit of HTTP requests: read in
    // full before anything looks at it, it would otherwise take up to 64 MiB before the
    // token in it is checked.
    socket
        .max_message_size(state.max_body)
        .max_frame_size(state.max_body)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| sockets.track_future(serve(socket, state, header_token, protocol)))
}

/// Runs a connection: async-graphql's protocol machine between the socket and the hub,
/// with `graphql-transport-ws` kept where it differs: an operation before the connection
/// is acknowledged closes it with 4401, and an operation refused or failed as a whole
/// (no data: parse, validation, limits) answers `error`, without `complete`. When the
/// server shuts down, the connection takes no new operation, finishes those it runs
/// (until the deadline) and closes with 1001.
async fn serve(socket: WebSocket, state: Arc<AppState>, header_token: Option<String>, protocol: WebSocketProtocols) {
    let (mut sink, stream) = socket.split();
    let strict = protocol == WebSocketProtocols::GraphQLWS;
    let acknowledged = Arc::new(AtomicBool::new(false));
    let too_early = Arc::new(AtomicBool::new(false));
    let running: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let mut closing = state.closing.subscribe();
    let input = {
        let (acknowledged, too_early, running) = (acknowledged.clone(), too_early.clone(), running.clone());
        let closing = closing.clone();
        stream
            .take_while(|message| future::ready(message.is_ok()))
            .filter_map(|message| {
                future::ready(match message {
                    Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                    Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                    _ => None,
                })
            })
            .take_while(move |bytes| {
                let kind = message_type(bytes);
                let early = strict && !acknowledged.load(Ordering::SeqCst) && kind.as_deref() == Some("subscribe");
                too_early.store(early, Ordering::SeqCst);
                if let Some(id) = message_id(bytes) {
                    let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
                    match kind.as_deref() {
                        Some("subscribe" | "start") => running.insert(id),
                        // The client gave up on it.
                        Some("complete" | "stop") => running.remove(&id),
                        _ => false,
                    };
                }
                future::ready(!early)
            })
            // On shutdown, nothing more is read (and nothing new starts); the stream
            // then stays open so that the operations running finish. Ended by the client,
            // it ends.
            .take_until({
                let mut closing = closing.clone();
                async move {
                    let _ = closing.wait_for(|closing| *closing).await;
                }
            })
            .chain(
                futures::stream::once(async move {
                    if *closing.borrow() {
                        future::pending::<()>().await;
                    }
                })
                .filter_map(|()| future::ready(None)),
            )
    };
    // The token the connection was acknowledged with, checked again every second.
    let session: Arc<std::sync::OnceLock<String>> = Arc::default();
    let init = {
        let (state, session) = (state.clone(), session.clone());
        move |payload| connection_init(state, header_token, payload, session)
    };
    let mut authority = tokio::time::interval(AUTHORITY_CHECK);
    authority.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let output = async_graphql::http::WebSocket::new(Connection(state.clone()), input, protocol)
        .on_connection_init(init)
        .keepalive_timeout(IDLE);
    futures::pin_mut!(output);
    let mut failed: HashSet<String> = HashSet::new();
    let deadline = tokio::time::sleep(Duration::MAX);
    futures::pin_mut!(deadline);
    // A connection must be acknowledged (a valid token) in time; pings do not count.
    let unacknowledged = tokio::time::sleep(state.http.websocket_init_timeout);
    futures::pin_mut!(unacknowledged);
    let mut shutting_down = false;
    let mut init_timed_out = false;
    let mut check_authority = false;
    loop {
        if std::mem::take(&mut check_authority)
            && let Some(reason) = lost_authority(&state, session.get()).await
        {
            let close = CloseFrame { code: 4403, reason: reason.into() };
            let _ = sink.send(Message::Close(Some(close))).await;
            return;
        }
        if init_timed_out {
            let close = CloseFrame { code: 4408, reason: "Connection initialisation timeout".into() };
            let _ = sink.send(Message::Close(Some(close))).await;
            return;
        }
        let idle = running.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
        if shutting_down && idle {
            break;
        }
        let message = tokio::select! {
            message = output.next() => message,
            _ = closing.wait_for(|closing| *closing), if !shutting_down => {
                shutting_down = true;
                deadline.as_mut().reset(tokio::time::Instant::now() + state.grace);
                continue;
            }
            () = &mut deadline => break,
            () = &mut unacknowledged, if !acknowledged.load(Ordering::SeqCst) => {
                init_timed_out = true;
                continue;
            }
            _ = authority.tick(), if acknowledged.load(Ordering::SeqCst) => {
                check_authority = true;
                continue;
            }
        };
        let Some(message) = message else {
            if too_early.load(Ordering::SeqCst) {
                let close = CloseFrame { code: 4401, reason: "Unauthorized".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
            }
            return;
        };
        let message = match message {
            WsMessage::Text(text) => {
                match message_type(text.as_bytes()).as_deref() {
                    Some("connection_ack") => acknowledged.store(true, Ordering::SeqCst),
                    Some("complete" | "error") => {
                        if let Some(id) = message_id(text.as_bytes()) {
                            running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                        }
                    }
                    _ => {}
                }
                let rewrite = if strict { as_error(&text, &mut failed) } else { Rewrite::Keep };
                if let Rewrite::Send(error) = &rewrite
                    && let Some(id) = message_id(error.as_bytes())
                {
                    running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                }
                match rewrite {
                    Rewrite::Keep => Message::Text(text.into()),
                    Rewrite::Send(text) => Message::Text(text.into()),
                    Rewrite::Drop => continue,
                }
            }
            WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame { code, reason: reason.into() })),
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
    let close = CloseFrame { code: 1001, reason: "the server is shutting down".into() };
    let _ = sink.send(Message::Close(Some(close))).await;
}

/// A protocol message's `id`.
fn message_id(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Identified {
        id: String,
    }
    serde_json::from_slice::<Identified>(bytes).ok().map(|m| m.id)
}

/// A protocol message's `type`.
fn message_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        r#type: String,
    }
    serde_json::from_slice::<Typed>(bytes).ok().map(|t| t.r#type)
}

/// What becomes of a message on its way out.
#[derive(Debug, PartialEq)]
enum Rewrite {
    Keep,
    Send(String),
    Drop,
}

/// A `next` without data is the operation's `error` (its errors as the payload), which
/// ends it: the `complete` after it is dropped. `failed` holds the ids in between.
fn as_error(text: &str, failed: &mut HashSet<String>) -> Rewrite {
    let Ok(serde_json::Value::Object(message)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Rewrite::Keep;
    };
    let id = message.get("id").and_then(|i| i.as_str()).unwrap_or_default().to_owned();
    match message.get("type").and_then(|t| t.as_str()) {
        Some("next") => {
            let payload = message.get("payload");
            let no_data = payload.and_then(|p| p.get("data")).is_none_or(serde_json::Value::is_null);
            match payload.and_then(|p| p.get("errors")) {
                Some(serde_json::Value::Array(errors)) if no_data && !errors.is_empty() => {
                    failed.insert(id.clone());
                    Rewrite::Send(serde_json::json!({ "id": id, "type": "error", "payload": errors }).to_string())
                }
                _ => Rewrite::Keep,
            }
        }
        Some("complete") if failed.remove(&id) => Rewrite::Drop,
        _ => Rewrite::Keep,
    }
}

/// The token a connection was opened with, kept to be verified again per operation.
struct Session(String);

/// Accepts `connection_init` when it brings (or the upgrade brought) a valid token;
/// otherwise the connection is closed with the reason.
/// How often an acknowledged connection's token is checked again: a socket closes within
/// this long of its token's expiry or revocation.
const AUTHORITY_CHECK: Duration = Duration::from_secs(1);

/// Why the connection's token no longer holds (expired, revoked, its key gone), if it
/// does not. Cheap: the verifier keeps verified tokens, revocations are in memory.
pub(super) async fn lost_authority(state: &AppState, token: Option<&String>) -> Option<&'static str> {
    let token = token?;
    match state.verifier.verify(token) {
        Err(AuthError::Expired) => Some("Forbidden: the token has expired"),
        Err(_) => Some("Forbidden: the token is no longer valid"),
        Ok(viewer) if state.hub.refuses(&viewer).await => Some("Forbidden: the token has been revoked"),
        Ok(_) => None,
    }
}

async fn connection_init(
    state: Arc<AppState>,
    header_token: Option<String>,
    payload: serde_json::Value,
    session: Arc<std::sync::OnceLock<String>>,
) -> async_graphql::Result<Data> {
    let token = match header_token {
        Some(token) => token,
        None => payload_token(&payload).map_err(refusal)?,
    };
    let viewer = state.verifier.verify(&token).map_err(refusal)?;
    if state.hub.refuses(&viewer).await {
        return Err(refusal(AuthError::Revoked));
    }
    let _ = session.set(token.clone());
    let mut data = Data::default();
    data.insert(Session(token));
    Ok(data)
}

/// `Authorization` (any case) in the `connection_init` payload.
fn payload_token(payload: &serde_json::Value) -> Result<String, AuthError> {
    let (_, value) = payload
        .as_object()
        .and_then(|fields| fields.iter().find(|(key, _)| key.eq_ignore_ascii_case("authorization")))
        .ok_or(AuthError::Missing)?;
    bearer(value.as_str().ok_or(AuthError::Invalid)?).map(str::to_owned)
}

fn refusal(error: AuthError) -> async_graphql::Error {
    match error {
        AuthError::Missing => async_graphql::Error::new(
            "authentication required: send {\"Authorization\": \"Bearer <token>\"} in connection_init",
        ),
        other => async_graphql::Error::new(other.message()),
    }
}

/// Runs a connection's operations for the viewer of its token.
#[derive(Clone)]
struct Connection(Arc<AppState>);

impl Executor for Connection {
    /// Only reached without a session, which the protocol never allows.
    async fn execute(&self, _request: async_graphql::Request) -> async_graphql::Response {
        refused(AuthError::Missing)
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let state = self.0.clone();
        let token = session
            .as_deref()
            .and_then(|data| data.get(&TypeId::of::<Session>()))
            .and_then(|session| session.downcast_ref::<Session>())
            .map(|Session(token)| token.clone());
        futures::stream::once(async move {
            let once = |response| futures::stream::once(future::ready(response)).boxed();
            let viewer = match token.ok_or(AuthError::Missing).and_then(|t| state.verifier.verify(&t)) {
                Ok(viewer) => viewer,
                Err(e) => return once(refused(e)),
            };
            if state.hub.refuses(&viewer).await {
                return once(refused(AuthError::Revoked));
            }
            if !state.hub.is_subscription(&request) {
                let (mut response, request_id) = state.hub.execute(viewer, request).await;
                response.extensions.insert("requestId".into(), Value::from(request_id));
                return once(response);
            }
            match state.hub.subscribe(viewer, request).await {
                Err(refusal) => once(*refusal),
                Ok(subscription) => futures::stream::unfold((state, subscription), |(state, mut subscription)| async {
                    let mut response = state.hub.next_event(&mut subscription).await?;
                    response.extensions.insert("requestId".into(), Value::from(subscription.request_id()));
                    Some((response, (state, subscription)))
                })
                .boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

/// The `UNAUTHENTICATED` response of an operation whose token no longer verifies.
fn refused(error: AuthError) -> async_graphql::Response {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "UNAUTHENTICATED");
    let server_error = ServerError { extensions: Some(extensions), ..ServerError::new(error.message(), None) };
    async_graphql::Response::from_errors(vec![server_error])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn upgrade_needs_both_headers_in_any_case_and_list() {
        let mut headers = HeaderMap::new();
        headers.insert(UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(!wants_upgrade(&headers));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(wants_upgrade(&headers));
        headers.insert(UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!wants_upgrade(&headers));
    }

    #[test]
    fn a_next_without_data_is_an_error_and_ends_the_operation() {
        let mut failed = HashSet::new();
        let refused =
            json!({ "id": "1", "type": "next", "payload": { "data": null, "errors": [{ "message": "no" }] } });
        assert_eq!(
            as_error(&refused.to_string(), &mut failed),
            Rewrite::Send(json!({ "id": "1", "type": "error", "payload": [{ "message": "no" }] }).to_string())
        );
        let ran =
            json!({ "id": "2", "type": "next", "payload": { "data": { "a": 1 }, "errors": [{ "message": "x" }] } });
        assert_eq!(as_error(&ran.to_string(), &mut failed), Rewrite::Keep);
        assert_eq!(as_error(&json!({ "id": "1", "type": "complete" }).to_string(), &mut failed), Rewrite::Drop);
        assert_eq!(as_error(&json!({ "id": "2", "type": "complete" }).to_string(), &mut failed), Rewrite::Keep);
        assert_eq!(message_type(br#"{"type":"subscribe","id":"1"}"#).as_deref(), Some("subscribe"));
    }

    #[test]
    fn the_payload_token_is_a_bearer_authorization_in_any_case() {
        assert_eq!(payload_token(&json!({ "authorization": "Bearer abc" })), Ok("abc".to_owned()));
        assert_eq!(payload_token(&json!({ "Authorization": "bearer  abc " })), Ok("abc".to_owned()));
        assert_eq!(payload_token(&json!({})), Err(AuthError::Missing));
        assert_eq!(payload_token(&json!(null)), Err(AuthError::Missing));
        assert_eq!(payload_token(&json!({ "Authorization": 7 })), Err(AuthError::Invalid));
        assert_eq!(payload_token(&json!({ "Authorization": "abc" })), Err(AuthError::Invalid));
    }
}
