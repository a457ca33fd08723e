//! The analysts' playground at `/`: the bundle built from `playground/` (embedded in
//! release builds, read from `playground/dist` at run time in debug builds), served under
//! a strict Content-Security-Policy, and in development the endpoints that mint
//! short-lived tokens for its sign-in, which answer only requests addressed to the hub's
//! own names (`Host`) and mint for JSON bodies only.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{AppState, bad_request, error_body, is_json};
use crate::auth::token::TokenRequest;
use crate::auth::{self, Role};
use crate::config::{Config, Environment};

/// The built playground (`npm run build` in `playground/`; the bundle is committed).
#[derive(rust_embed::Embed)]
#[folder = "playground/dist/"]
struct Bundle;

/// What the page may load: its own scripts, styles and workers, and requests to the hub
/// only. No inline script, no `eval`, no other host, no framing. Inline styles are
/// allowed: the editor (Monaco) and GraphiQL add style elements from script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self'; worker-src 'self'; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");
const CONTENT_SECURITY_POLICY_HEADER: HeaderName = HeaderName::from_static("content-security-policy");

/// A file of the bundle for a GET (`/` is `index.html`); 404 for anything else. Hashed
/// assets are cached for good, the page itself revalidated (by its ETag) on every load.
pub(super) async fn asset(request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return (StatusCode::NOT_FOUND, Json(error_body("NOT_FOUND", "no such resource"))).into_response();
    }
    let path = request.uri().path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = Bundle::get(path) else {
        return (StatusCode::NOT_FOUND, Json(error_body("NOT_FOUND", "no such resource"))).into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut headers = vec![
        (CACHE_CONTROL, HeaderValue::from_static(cache)),
        (CONTENT_SECURITY_POLICY_HEADER, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.push((ETAG, value));
    }
    let unchanged = request.headers().get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v == etag);
    let mut response =
        if unchanged { StatusCode::NOT_MODIFIED.into_response() } else { file.data.into_owned().into_response() };
    if let Ok(media) = HeaderValue::from_str(file.metadata.mimetype()) {
        response.headers_mut().insert(CONTENT_TYPE, media);
    }
    response.headers_mut().extend(headers);
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether this hub mints development tokens for the playground's sign-in: in
/// development with the development key, listening on a loopback address only (anyone
/// who reaches `/dev/token` gets an admin token; production serves no `/dev/` route).
pub(super) fn mints_tokens(config: &Config) -> bool {
    config.environment == Environment::Development && config.auth.development_key && config.listen.ip().is_loopback()
}

/// Lets through only requests addressed (`Host`) to one of the hub's own names: a page on
/// another name that resolves to the hub (DNS rebinding) is same-origin with it, and
/// could otherwise read the tokens minted here. 421 Misdirected Request otherwise.
pub(super) async fn only_own_hosts(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if state.hosts.allows_host(request.headers(), request.uri()) {
        return next.run(request).await;
    }
    let body = error_body(
        "MISDIRECTED_REQUEST",
        "the development endpoints answer only requests addressed to the hub's listen address or `allowed_hosts`",
    );
    (StatusCode::MISDIRECTED_REQUEST, Json(body)).into_response()
}

/// The roles the playground offers, with their usual scopes, and the partners that have
/// consents in the CRM.
pub(super) async fn viewers(State(state): State<Arc<AppState>>) -> Response {
    let roles: Vec<serde_json::Value> = <Role as strum::IntoEnumIterator>::iter()
        .map(|role| serde_json::json!({ "role": role, "scopes": role.default_scopes().split(' ').collect::<Vec<_>>() }))
        .collect();
    match state.hub.partners().await {
        Ok(partners) => Json(serde_json::json!({ "roles": roles, "partners": partners })).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(error_body("SOURCE_UNAVAILABLE", "the CRM does not answer")))
            .into_response(),
    }
}

/// A development token's request from the playground.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DevTokenRequest {
    role: Role,
    partner: Option<String>,
    /// Seconds the token is valid: 1 to a day (or `auth.max_token_lifetime` when shorter),
    /// an hour when left out.
    ttl_seconds: Option<u64>,
}

/// A minted development token and the viewer it makes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DevToken {
    token: String,
    role: Role,
    scopes: Vec<&'static str>,
    partner: Option<String>,
    expires_at: chrono::DateTime<chrono::Utc>,
}

const LONGEST_DEV_TOKEN: u64 = 24 * 60 * 60;

/// Mints a development token, as `c360 token` does. The body must be declared
/// `application/json`: a page elsewhere may send a form or `text/plain` body without the
/// browser asking the hub first (a CORS "simple request").
pub(super) async fn dev_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(config) = state.development.as_ref() else {
        return (StatusCode::NOT_FOUND, Json(error_body("NOT_FOUND", "no such resource"))).into_response();
    };
    if !is_json(&headers) {
        let body = error_body("UNSUPPORTED_MEDIA_TYPE", "the body must be JSON (application/json)");
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response();
    }
    let Ok(request) = serde_json::from_slice::<DevTokenRequest>(&body) else {
        return bad_request("BAD_REQUEST", "expected {\"role\": .., \"partner\": .., \"ttlSeconds\": ..}");
    };
    if (request.role == Role::Partner) != request.partner.as_deref().is_some_and(|p| !p.is_empty()) {
        return bad_request("BAD_REQUEST", "a partner is required for role partner and only allowed with it");
    }
    if let Some(partner) = &request.partner
        && !config.partners.contains(partner)
    {
        return bad_request("BAD_REQUEST", "no such partner (config `partners`)");
    }
    let longest = LONGEST_DEV_TOKEN.min(config.auth.max_token_lifetime.as_secs());
    let ttl = request.ttl_seconds.unwrap_or(3600.min(longest));
    if !(1..=longest).contains(&ttl) {
        return bad_request("BAD_REQUEST", &format!("ttlSeconds must be from 1 to {longest}"));
    }
    let scope = request.role.default_scopes();
    let minted = TokenRequest {
        subject: format!("playground-{}", request.role),
        role: request.role,
        scope: scope.to_owned(),
        partner: request.partner.clone(),
        purpose: None,
        ttl: Duration::from_secs(ttl),
    };
    match auth::token::mint_development(config, &minted) {
        Ok(token) => Json(DevToken {
            token,
            role: request.role,
            scopes: scope.split(' ').collect(),
            partner: request.partner,
            expires_at: chrono::Utc::now() + Duration::from_secs(ttl),
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot mint a development token");
            let body = error_body("INTERNAL", "the development key cannot be read");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_tokens_are_minted_on_loopback_only() {
        let mut config = Config::default();
        assert!(mints_tokens(&config), "the default: development, development key, 127.0.0.1");
        config.listen = "0.0.0.0:8360".parse().expect("address");
        assert!(!mints_tokens(&config), "reachable from other hosts: no admin tokens for whoever asks");
        config.listen = "[::1]:8360".parse().expect("address");
        assert!(mints_tokens(&config));
        config.environment = Environment::Production;
        assert!(!mints_tokens(&config));
    }
}
