//! Bearer tokens: verification into a [`Viewer`], and minting development tokens.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::{self, DEVELOPMENT_KID, KeyError, KeyRing};
use super::{MAX_SUBJECT, MAX_TOKEN_ID, Role, Viewer, is_identifier, is_name, parse_scopes};
use crate::config::{AuthConfig, Config};

/// Why a request is not authenticated. Every kind is HTTP 401 `UNAUTHENTICATED`; the
/// message says only as much as a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No `Authorization: Bearer` header.
    Missing,
    /// The token expired (`exp` passed, beyond the leeway).
    Expired,
    /// Anything else: malformed, bad signature, unknown key, wrong issuer or audience,
    /// algorithm not allowed, claims missing or inconsistent.
    Invalid,
    /// Revoked: by its id, or with every token of its subject or partner.
    Revoked,
}

impl AuthError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            AuthError::Missing => "authentication required: send `Authorization: Bearer <token>`",
            AuthError::Expired => "the token has expired",
            AuthError::Invalid => "the token is not valid",
            AuthError::Revoked => "the token has been revoked",
        }
    }
}

/// The claims the hub reads. `iss`, `aud`, `exp` and `nbf` are checked by `jsonwebtoken`;
/// `iat` and the lifetime from it to `exp` here.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    #[serde(default)]
    scope: String,
    partner_id: Option<String>,
    purpose: Option<String>,
    iat: Option<u64>,
    exp: u64,
    jti: Option<String>,
}

/// Verifies bearer tokens against the configured keys, re-reading key files when they
/// change (checked at most every `auth.reload_interval`).
pub(crate) struct Verifier {
    auth: AuthConfig,
    config: Config,
    files: Vec<PathBuf>,
    state: RwLock<KeyState>,
    /// Tokens verified lately, with their viewer: a client sends the same token with
    /// every request, and verifying it (its signature, its JSON, the checks) was a
    /// twentieth of a profile request's CPU. An entry serves only until the token's
    /// `exp` (with the leeway) and only while the keys it was verified with are the
    /// current ones; revocation is checked apart, on every request.
    verified: quick_cache::sync::Cache<String, Verified>,
}

#[derive(Clone)]
struct Verified {
    viewer: Viewer,
    exp: u64,
    ring: Arc<KeyRing>,
}

/// Tokens kept verified.
const VERIFIED: usize = 4096;

struct KeyState {
    ring: Arc<KeyRing>,
    stamps: Vec<Option<u64>>,
    checked: Instant,
}

impl Verifier {
    /// Loads every key; fails (naming the file) when one cannot be used.
    pub(crate) fn new(config: &Config) -> Result<Self, KeyError> {
        let files = keys::key_files(&config.auth);
        let stamps = keys::stamps(&files);
        let ring = Arc::new(KeyRing::load(config)?);
        tracing::info!(keys = ring.len(), "token verification keys loaded");
        Ok(Verifier {
            auth: config.auth.clone(),
            config: config.clone(),
            files,
            state: RwLock::new(KeyState { ring, stamps, checked: Instant::now() }),
            verified: quick_cache::sync::Cache::new(VERIFIED),
        })
    }

    /// The viewer a token stands for: signed by a known key, for this issuer and audience,
    /// issued (`iat`) no later than now and valid (`exp`) no longer than
    /// `auth.max_token_lifetime` from then, both give or take `auth.leeway`.
    pub(crate) fn verify(&self, token: &str) -> Result<Viewer, AuthError> {
        let ring = self.keys();
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(kept) = self.verified.get(token)
            && Arc::ptr_eq(&kept.ring, &ring)
            && now.saturating_sub(self.auth.leeway.as_secs()) <= kept.exp
        {
            return Ok(kept.viewer);
        }
        let (viewer, exp) = self.verify_now(token, &ring)?;
        self.verified.insert(token.to_owned(), Verified { viewer: viewer.clone(), exp, ring });
        Ok(viewer)
    }

    /// [`Verifier::verify`] without the kept tokens: the viewer and the token's `exp`.
    fn verify_now(&self, token: &str, ring: &KeyRing) -> Result<(Viewer, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !self.auth.algorithms.contains(&header.alg) {
            tracing::debug!(alg = ?header.alg, "token algorithm not allowed");
            return Err(AuthError::Invalid);
        }
        let key = ring.find(header.kid.as_deref(), header.alg).ok_or_else(|| {
            tracing::debug!(kid = ?header.kid, alg = ?header.alg, "no key for token");
            AuthError::Invalid
        })?;
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.auth.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.auth.issuer]);
        validation.set_audience(&[&self.auth.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            kind => {
                tracing::debug!(?kind, "token rejected");
                AuthError::Invalid
            }
        })?;
        let claims = data.claims;
        let now = jsonwebtoken::get_current_timestamp();
        let Some(iat) = claims.iat else {
            tracing::debug!("token without iat");
            return Err(AuthError::Invalid);
        };
        if iat > now + self.auth.leeway.as_secs() {
            tracing::debug!("token issued in the future");
            return Err(AuthError::Invalid);
        }
        if claims.exp.saturating_sub(iat) > self.auth.max_token_lifetime.as_secs() {
            tracing::debug!("token valid for longer than auth.max_token_lifetime");
            return Err(AuthError::Invalid);
        }
        let role: Role = claims.role.parse().map_err(|_| AuthError::Invalid)?;
        let partner = claims.partner_id.filter(|p| !p.is_empty());
        // A partner token must name its partner, and only partner tokens may.
        if (role == Role::Partner) != partner.is_some() {
            return Err(AuthError::Invalid);
        }
        // What the hub stores and compares (the audit log, revocations, consents) is
        // bounded here, so that no token gets past with a value the store cannot hold.
        let purpose = claims.purpose.filter(|p| !p.is_empty());
        let token_id = claims.jti.filter(|j| !j.is_empty());
        let fits = is_identifier(&claims.sub, MAX_SUBJECT)
            && partner.as_deref().is_none_or(|p| is_name(p) && self.config.partners.iter().any(|k| k == p))
            && purpose.as_deref().is_none_or(is_name)
            && token_id.as_deref().is_none_or(|j| is_identifier(j, MAX_TOKEN_ID))
            && claims.scope.len() <= 1000;
        if !fits {
            tracing::debug!("token with a claim out of bounds");
            return Err(AuthError::Invalid);
        }
        let viewer = Viewer {
            subject: claims.sub,
            role,
            scopes: parse_scopes(&claims.scope),
            partner,
            purpose,
            token_id,
            issued_at: Some(iat),
        };
        Ok((viewer, claims.exp))
    }

    /// The current keys, re-read first when a key file changed.
    fn keys(&self) -> Arc<KeyRing> {
        {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if self.files.is_empty() || state.checked.elapsed() < self.auth.reload_interval {
                return state.ring.clone();
            }
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.checked = Instant::now();
        let stamps = keys::stamps(&self.files);
        if stamps != state.stamps {
            match KeyRing::load(&self.config) {
                Ok(ring) => {
                    tracing::info!(keys = ring.len(), "key files changed: verification keys reloaded");
                    state.ring = Arc::new(ring);
                    state.stamps = stamps;
                }
                // Keep verifying with the keys we have; say why the new ones are refused.
                Err(e) => tracing::error!(error = %e, "key files changed but cannot be loaded; keeping the old keys"),
            }
        }
        state.ring.clone()
    }
}

/// What a development token says.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub subject: String,
    pub role: Role,
    pub scope: String,
    pub partner: Option<String>,
    pub purpose: Option<String>,
    pub ttl: Duration,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    role: Role,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partner_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'a str>,
    iat: u64,
    exp: u64,
    jti: &'a str,
}

/// Signs a token with the development key (made on first use), as `c360 token` does.
pub fn mint_development(config: &Config, request: &TokenRequest) -> Result<String, KeyError> {
    if config.environment == crate::config::Environment::Production || !config.auth.development_key {
        return Err(KeyError::DevelopmentKeyInProduction);
    }
    let secret = keys::development_key(config)?;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = MintedClaims {
        iss: &config.auth.issuer,
        aud: &config.auth.audience,
        sub: &request.subject,
        role: request.role,
        scope: &request.scope,
        partner_id: request.partner.as_deref(),
        purpose: request.purpose.as_deref(),
        iat: now,
        exp: now + request.ttl.as_secs(),
        jti: &uuid::Uuid::now_v7().to_string(),
    };
    let header = Header { kid: Some(DEVELOPMENT_KID.into()), ..Header::new(Algorithm::HS256) };
    // Encoding with an HMAC key cannot fail for a serialisable claim set.
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret))
        .map_err(|_| KeyError::Invalid { path: keys::development_key_path(config), what: "signing key" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> Config {
        Config { data_dir: dir.to_owned(), ..Config::default() }
    }

    fn request(role: Role, partner: Option<&str>) -> TokenRequest {
        TokenRequest {
            subject: "alice".into(),
            role,
            scope: role.default_scopes().into(),
            partner: partner.map(str::to_owned),
            purpose: None,
            ttl: Duration::from_secs(600),
        }
    }

    #[test]
    fn minted_tokens_verify_into_their_viewer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config(dir.path());
        let token = mint_development(&config, &request(Role::Partner, Some("acme-insurance"))).expect("mint");
        let viewer = Verifier::new(&config).expect("keys").verify(&token).expect("valid");
        assert_eq!(viewer.role, Role::Partner);
        assert_eq!(viewer.partner.as_deref(), Some("acme-insurance"));
        assert!(viewer.has_scope("customers:read"));
    }

    /// A verified token is kept, but only until its `exp`: then it is refused as expired,
    /// as the first time.
    #[test]
    fn a_kept_token_expires_on_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config(dir.path());
        config.auth.leeway = Duration::ZERO;
        let verifier = Verifier::new(&config).expect("keys");
        let token =
            mint_development(&config, &TokenRequest { ttl: Duration::from_secs(1), ..request(Role::Admin, None) })
                .expect("mint");
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.verify(&token).is_ok(), "kept");
        std::thread::sleep(Duration::from_millis(2_100));
        assert!(matches!(verifier.verify(&token), Err(AuthError::Expired)));
    }

    #[test]
    fn a_partner_token_names_a_registered_partner() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config(dir.path());
        let verifier = Verifier::new(&config).expect("keys");
        // A typo, a path, a dash: not partners the company has.
        for partner in ["acme-insurence", "..", "-", "ACME-INSURANCE", "acme-insurance "] {
            let token = mint_development(&config, &request(Role::Partner, Some(partner))).expect("mint");
            assert_eq!(verifier.verify(&token), Err(AuthError::Invalid), "{partner}");
        }
    }

    #[test]
    fn partner_claims_must_match_the_role() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config(dir.path());
        let verifier = Verifier::new(&config).expect("keys");
        for (role, partner) in [(Role::Partner, None), (Role::Agent, Some("acme"))] {
            let token = mint_development(&config, &request(role, partner)).expect("mint");
            assert_eq!(verifier.verify(&token), Err(AuthError::Invalid), "{role} with partner {partner:?}");
        }
    }

    #[test]
    fn production_refuses_the_development_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config { environment: crate::config::Environment::Production, ..config(dir.path()) };
        assert!(matches!(Verifier::new(&config), Err(KeyError::DevelopmentKeyInProduction)));
        assert!(mint_development(&config, &request(Role::Admin, None)).is_err());
    }
}
