//! GraphQL over Server-Sent Events: the graphql-sse protocol's distinct connections mode,
//! for clients behind proxies that do not pass websockets. A POST to `/graphql` with
//! `Accept: text/event-stream` and a JSON GraphQL request is answered with an event
//! stream: an `event: next` per response (a subscription's each event, a query's one
//! answer), then `event: complete`. The same engine, policy and audit as any request.
//!
//! A stream does not outlive its authority: its token is verified again every second, and
//! when it has expired or been revoked the stream sends an `UNAUTHENTICATED` error as its
//! last `next` and completes. On shutdown it completes at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{ErrorExtensionValues, ServerError};
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, AUTHORIZATION};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
use futures::{StreamExt as _, future};

use super::{AppState, Media, authenticate, bearer, serialized, unauthenticated};
use crate::auth::AuthError;

/// How often an open stream's token is verified again.
const AUTHORITY_CHECK: Duration = Duration::from_secs(1);
/// A comment this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Whether the client asks for an event stream (`Accept: text/event-stream`).
pub(super) fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream")))
}

/// Runs `request` for the bearer of the `Authorization` header (401 without a valid one,
/// before any stream opens) and streams its responses.
pub(super) async fn serve(state: Arc<AppState>, headers: &HeaderMap, request: async_graphql::Request) -> Response {
    let viewer = match authenticate(&state.verifier, headers) {
        Ok(viewer) => viewer,
        Err(e) => return unauthenticated(e),
    };
    if state.hub.refuses(&viewer).await {
        return unauthenticated(AuthError::Revoked);
    }
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| bearer(h).ok())
        .map(str::to_owned)
        .unwrap_or_default();
    let responses: BoxStream<'static, async_graphql::Response> = if !state.hub.is_subscription(&request) {
        let (response, _) = state.hub.execute(viewer, request).await;
        futures::stream::once(future::ready(response)).boxed()
    } else {
        match state.hub.subscribe(viewer, request).await {
            Err(refusal) => futures::stream::once(future::ready(*refusal)).boxed(),
            Ok(subscription) => {
                let state = state.clone();
                futures::stream::unfold((state, subscription), |(state, mut subscription)| async move {
                    let response = state.hub.next_event(&mut subscription).await?;
                    Some((response, (state, subscription)))
                })
                .boxed()
            }
        }
    };
    let events = Events { state, token, responses, done: false };
    let stream = futures::stream::unfold(events, |mut events| async move {
        let event = events.next().await?;
        Some((Ok::<_, Infallible>(event), events))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}

/// One stream's state: its responses, and whether `complete` was sent.
struct Events {
    state: Arc<AppState>,
    token: String,
    responses: BoxStream<'static, async_graphql::Response>,
    done: bool,
}

impl Events {
    /// The next event to send; `None` after `complete`.
    async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let mut closing = self.state.closing.subscribe();
        let closing = async move {
            let _ = closing.wait_for(|closing| *closing).await;
        };
        futures::pin_mut!(closing);
        let mut authority = tokio::time::interval_at(tokio::time::Instant::now() + AUTHORITY_CHECK, AUTHORITY_CHECK);
        loop {
            tokio::select! {
                response = self.responses.next() => return Some(match response {
                    Some(response) => next_event(&response),
                    None => self.complete(),
                }),
                _ = authority.tick() => {
                    if let Some(reason) = super::ws::lost_authority(&self.state, Some(&self.token)).await {
                        // Its last `next`, then `complete` on the following call.
                        self.responses = futures::stream::empty().boxed();
                        return Some(next_event(&unauthenticated_response(reason)));
                    }
                }
                () = &mut closing => return Some(self.complete()),
            }
        }
    }

    fn complete(&mut self) -> Event {
        self.done = true;
        Event::default().event("complete").data("")
    }
}

fn next_event(response: &async_graphql::Response) -> Event {
    Event::default().event("next").data(serialized(&Media::Json.body(response).0))
}

fn unauthenticated_response(reason: &str) -> async_graphql::Response {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "UNAUTHENTICATED");
    async_graphql::Response::from_errors(vec![ServerError {
        extensions: Some(extensions),
        ..ServerError::new(reason, None)
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn event_streams_are_asked_for_in_any_list_and_case() {
        let mut headers = HeaderMap::new();
        assert!(!wants_events(&headers));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json, Text/Event-Stream; q=0.9"));
        assert!(wants_events(&headers));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_events(&headers));
    }
}
