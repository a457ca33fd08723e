//! Bearer tokens: every forgery is refused with HTTP 401 `UNAUTHENTICATED`; keys rotate
//! without a restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use c360::auth::Role;
use c360::config::{Config, KeyFile};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp};

const QUERY: &str = "{ customers(first: 1) { totalCount } }";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture key")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims the test server accepts, to be spoilt one way or another.
fn claims() -> Value {
    json!({
        "iss": "c360", "aud": "c360", "sub": "mallory", "role": "agent",
        "scope": "customers:read", "iat": now(), "exp": now() + 600,
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let header = Header { kid: kid.map(str::to_owned), ..Header::new(alg) };
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

/// Claims of a token valid for `seconds` from its `iat`.
fn lasting(seconds: u64) -> Value {
    let issued = now();
    with(with(claims(), "iat", json!(issued)), "exp", json!(issued + seconds))
}

/// A server that trusts an RSA key (kid `rsa-1`), an EC key (`ec-1`) and a JWKS file
/// (`jwks-1`) besides the development key; key files are re-checked on every request.
async fn spawn(jwks: &Path) -> TestApp {
    let jwks = jwks.to_owned();
    TestApp::spawn_with(Layout::all(Backend::Sqlite), 0, move |config: &mut Config| {
        config.auth.public_keys = vec![
            KeyFile { kid: "rsa-1".into(), algorithm: Algorithm::RS256, file: fixture("rsa.pub.pem") },
            KeyFile { kid: "ec-1".into(), algorithm: Algorithm::ES256, file: fixture("ec.pub.pem") },
        ];
        config.auth.jwks_file = Some(jwks);
        config.auth.reload_interval = Duration::ZERO;
    })
    .await
}

async fn status(app: &TestApp, token: &str) -> (u16, Value) {
    app.post(Some(&format!("Bearer {token}")), json!({ "query": QUERY })).await
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks = dir.path().join("jwks.json");
    std::fs::copy(fixture("jwks.json"), &jwks).expect("copy jwks");
    let app = spawn(&jwks).await;
    let rsa = EncodingKey::from_rsa_pem(&read("rsa.key")).expect("rsa key");
    let ec = EncodingKey::from_ec_pem(&read("ec.key")).expect("ec key");
    let jwks_key = EncodingKey::from_rsa_pem(&read("jwks-rsa.key")).expect("jwks key");
    let dev = EncodingKey::from_secret(&c360::auth::keys::development_key(&app.config).expect("dev key"));

    // What the server accepts.
    for (what, token) in [
        ("development", app.token(Role::Agent, None, None)),
        ("RS256", sign(Algorithm::RS256, Some("rsa-1"), &claims(), &rsa)),
        ("ES256", sign(Algorithm::ES256, Some("ec-1"), &claims(), &ec)),
        ("JWKS", sign(Algorithm::RS256, Some("jwks-1"), &claims(), &jwks_key)),
        ("within leeway", sign(Algorithm::RS256, Some("rsa-1"), &with(claims(), "exp", json!(now() - 5)), &rsa)),
        ("a day long", sign(Algorithm::RS256, Some("rsa-1"), &lasting(86_400), &rsa)),
    ] {
        let (code, body) = status(&app, &token).await;
        assert_eq!(code, 200, "{what}: {body}");
        assert!(body.get("errors").is_none(), "{what}: {body}");
    }

    let valid = sign(Algorithm::RS256, Some("rsa-1"), &claims(), &rsa);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let admin_payload = URL_SAFE_NO_PAD.encode(with(claims(), "role", json!("admin")).to_string());
    parts[1] = admin_payload.clone();
    let tampered = parts.join(".");
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{admin_payload}.");
    let public_as_secret = EncodingKey::from_secret(&read("rsa.pub.pem"));
    let forgeries = [
        ("garbage", "not.a.token".to_owned()),
        ("alg none", unsigned),
        ("tampered payload", tampered),
        ("HS256 signed with the RS public key", sign(Algorithm::HS256, Some("rsa-1"), &claims(), &public_as_secret)),
        ("HS256 with the public key, no kid", sign(Algorithm::HS256, None, &claims(), &public_as_secret)),
        ("unknown kid", sign(Algorithm::RS256, Some("rsa-9"), &claims(), &rsa)),
        ("kid of another key", sign(Algorithm::RS256, Some("jwks-1"), &claims(), &rsa)),
        ("algorithm not allowed", sign(Algorithm::HS384, Some("dev"), &claims(), &dev)),
        ("expired", sign(Algorithm::RS256, Some("rsa-1"), &with(claims(), "exp", json!(now() - 120)), &rsa)),
        ("no exp", {
            let mut c = claims();
            c.as_object_mut().expect("object").remove("exp");
            sign(Algorithm::RS256, Some("rsa-1"), &c, &rsa)
        }),
        ("no iat", {
            let mut c = claims();
            c.as_object_mut().expect("object").remove("iat");
            sign(Algorithm::RS256, Some("rsa-1"), &c, &rsa)
        }),
        ("longer than auth.max_token_lifetime", sign(Algorithm::RS256, Some("rsa-1"), &lasting(86_401), &rsa)),
        ("a hundred years long", sign(Algorithm::RS256, Some("rsa-1"), &lasting(100 * 365 * 86_400), &rsa)),
        ("not yet valid", sign(Algorithm::RS256, Some("rsa-1"), &with(claims(), "nbf", json!(now() + 600)), &rsa)),
        (
            "issued in the future",
            sign(Algorithm::RS256, Some("rsa-1"), &with(claims(), "iat", json!(now() + 600)), &rsa),
        ),
        ("wrong issuer", sign(Algorithm::RS256, Some("rsa-1"), &with(claims(), "iss", json!("evil")), &rsa)),
        ("wrong audience", sign(Algorithm::RS256, Some("rsa-1"), &with(claims(), "aud", json!("other")), &rsa)),
        ("unknown role", sign(Algorithm::RS256, Some("rsa-1"), &with(claims(), "role", json!("root")), &rsa)),
        (
            "partner without partner_id",
            sign(Algorithm::RS256, Some("rsa-1"), &with(claims(), "role", json!("partner")), &rsa),
        ),
    ];
    for (what, token) in forgeries {
        let (code, body) = status(&app, &token).await;
        assert_eq!(code, 401, "{what} must be refused: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{what}: {body}");
        assert!(body.get("data").is_none(), "{what}: {body}");
    }

    // No token, or another scheme.
    for header in [None, Some("Basic YWRtaW46YWRtaW4="), Some("Bearer"), Some("Bearer ")] {
        let (code, body) = app.post(header, json!({ "query": QUERY })).await;
        assert_eq!(code, 401, "{header:?}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }

    // Health checks stay public.
    for path in ["/healthz", "/health/live"] {
        let live = reqwest::get(format!("{}{path}", app.address)).await.expect("live");
        assert_eq!(live.status(), 200);
    }
    let ready: Value =
        reqwest::get(format!("{}/readyz", app.address)).await.expect("ready").json().await.expect("JSON");
    assert_eq!(ready, json!({ "status": "ready" }));
}

#[tokio::test]
async fn keys_rotate_without_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks = dir.path().join("jwks.json");
    std::fs::copy(fixture("jwks.json"), &jwks).expect("copy jwks");
    let app = spawn(&jwks).await;
    let key = EncodingKey::from_rsa_pem(&read("jwks-rsa.key")).expect("jwks key");
    let old = sign(Algorithm::RS256, Some("jwks-1"), &claims(), &key);
    let new = sign(Algorithm::RS256, Some("jwks-2"), &claims(), &key);
    assert_eq!(status(&app, &old).await.0, 200);
    assert_eq!(status(&app, &new).await.0, 401);

    // The identity provider publishes the key under a new kid and retires the old one.
    let rotated = std::fs::read_to_string(&jwks).expect("jwks").replace("\"jwks-1\"", "\"jwks-2\"");
    std::fs::write(&jwks, rotated).expect("rotate");
    assert_eq!(status(&app, &new).await.0, 200, "the new kid is accepted without a restart");
    assert_eq!(status(&app, &old).await.0, 401, "the retired kid is refused");

    // A broken key file keeps the last good keys.
    std::fs::write(&jwks, "{ not json").expect("break");
    assert_eq!(status(&app, &new).await.0, 200);
}

/// The `jti` of a token (its payload, undecoded by signature).
fn token_id(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("JSON");
    claims["jti"].as_str().expect("jti").to_owned()
}

/// The status of one query with `token`.
async fn status_now(app: &TestApp, token: &str) -> u16 {
    app.post(Some(&format!("Bearer {token}")), json!({ "query": "{ customers(first: 1) { totalCount } }" })).await.0
}

/// The status of a query with `token`, polled until it is `want` (revocations reach every
/// replica within seconds) or 8 s have passed.
async fn status_becomes(app: &TestApp, token: &str, want: u16) -> u16 {
    let started = std::time::Instant::now();
    loop {
        let (status, _) = app
            .post(Some(&format!("Bearer {token}")), json!({ "query": "{ customers(first: 1) { totalCount } }" }))
            .await;
        if status == want || started.elapsed() > Duration::from_secs(8) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn revoked_tokens_are_refused_everywhere_within_seconds() {
    // A short leeway: tokens issued within it after a revocation are refused too.
    let leeway = Duration::from_secs(2);
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 5, |c| c.auth.leeway = leeway).await;
    let revoke = "mutation($kind: RevocationKind!, $value: String!) {
        revokeTokens(kind: $kind, value: $value, reason: \"leaked\") { kind value revokedAt } }";
    let partner = app.token(Role::Partner, Some("customers:read"), Some("acme-insurance"));
    let sibling = app.token(Role::Partner, Some("customers:read"), Some("acme-insurance"));
    assert_eq!(status_becomes(&app, &partner, 200).await, 200);

    // Only admins revoke.
    let agent = app.token(Role::Agent, None, None);
    let refused = app.query_as(&agent, revoke, json!({ "kind": "PARTNER", "value": "acme-insurance" })).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused:#}");
    // Values are compared as tokens carry them: one padded with a space (it was trimmed,
    // and so matched no token whose subject had one) is refused, as such tokens are.
    let padded = app.query(revoke, json!({ "kind": "SUBJECT", "value": "test-agent " })).await;
    assert_eq!(padded["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{padded:#}");

    // One token by its id: refused with 401 from the next request on (the replica that
    // took the revocation does not wait for its next read of the table), its sibling
    // still works.
    let done = app.data(revoke, json!({ "kind": "TOKEN_ID", "value": token_id(&partner) })).await;
    assert_eq!(done["revokeTokens"]["kind"], "TOKEN_ID");
    assert_eq!(status_now(&app, &partner).await, 401);
    let (_, body) = app
        .post(Some(&format!("Bearer {partner}")), json!({ "query": "{ customers(first: 1) { totalCount } }" }))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(body["errors"][0]["message"], "the token has been revoked");
    assert_eq!(status_becomes(&app, &sibling, 200).await, 200);

    // A whole partner: every token issued up to now, over HTTP and the websocket, and
    // those whose issuer's clock runs ahead by up to the leeway (`iat` in the future).
    let dev = EncodingKey::from_secret(&c360::auth::keys::development_key(&app.config).expect("dev key"));
    let ahead = json!({
        "iss": "c360", "aud": "c360", "sub": "skewed", "role": "partner", "partner_id": "acme-insurance",
        "scope": "customers:read", "iat": now() + leeway.as_secs(), "exp": now() + 600,
    });
    let ahead = sign(Algorithm::HS256, Some("dev"), &ahead, &dev);
    assert_eq!(status_becomes(&app, &ahead, 200).await, 200);
    app.data(revoke, json!({ "kind": "PARTNER", "value": "acme-insurance" })).await;
    assert_eq!(status_now(&app, &sibling).await, 401);
    assert_eq!(status_now(&app, &ahead).await, 401, "issued within the leeway of the revocation");
    // Tokens issued after the revocation and its leeway work again (`iat` is whole seconds).
    tokio::time::sleep(leeway + Duration::from_millis(1_100)).await;
    let fresh = app.token(Role::Partner, Some("customers:read"), Some("acme-insurance"));
    assert_eq!(status_becomes(&app, &fresh, 200).await, 200);
    // Other partners and the admin were never affected.
    let other = app.token(Role::Partner, Some("customers:read"), Some("globex"));
    assert_eq!(status_becomes(&app, &other, 200).await, 200);
    assert_eq!(status_becomes(&app, &app.admin, 200).await, 200);

    // The audit log records both revocations, with who made them; the refused agent's
    // attempt is not among them.
    let log = app
        .data("{ auditLog(first: 10) { edges { node { action subject role customerId fields revoked } } } }", json!({}))
        .await;
    let revocations: Vec<&Value> = log["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["action"] == "REVOKE")
        .collect();
    assert_eq!(revocations.len(), 2, "{log:#}");
    assert_eq!(revocations[0]["fields"], json!(["partner"]));
    assert_eq!(revocations[0]["revoked"], "acme-insurance");
    assert_eq!(revocations[1]["fields"], json!(["token_id"]));
    assert_eq!(revocations[1]["revoked"], token_id(&partner));
    for entry in revocations {
        assert_eq!((entry["subject"].as_str(), entry["role"].as_str()), (Some("test-admin"), Some("admin")));
        assert!(entry["customerId"].is_null(), "{entry}");
    }
}

/// A second replica of `app` (its configuration, its databases) in this process, serving
/// until the test ends; its address.
async fn second_replica(app: &TestApp) -> String {
    let hub = c360::request::Engine::new(app.config.clone(), app.sources.clone()).expect("engine");
    let replica = c360::http::Application::build(app.config.clone(), hub).await.expect("bind");
    let address = format!("http://{}", replica.local_addr().expect("address"));
    tokio::spawn(replica.run_until(std::future::pending()));
    address
}

/// Over a PostgreSQL hub store, a revocation reaches the other replicas through the bus
/// (`LISTEN`/`NOTIFY`) at once, not at their next read of the table (every 3 s).
#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn a_revocation_reaches_the_other_replicas_at_once_over_postgres() {
    let app = TestApp::spawn(Layout::all(Backend::Postgres), 3).await;
    a_revocation_reaches_the_other_replica_at_once(&app).await;
}

/// Over a MariaDB hub store, which has no `LISTEN`, the bus goes through NATS when
/// `bus.nats` is set: the other replica hears of a revocation at once.
#[tokio::test]
#[ignore = "needs MySQL and NATS: set C360_TEST_MYSQL_URL and C360_TEST_NATS_URL, run `cargo test -- --include-ignored`"]
async fn a_revocation_reaches_the_other_replicas_at_once_over_nats() {
    let nats = std::env::var("C360_TEST_NATS_URL").expect("C360_TEST_NATS_URL");
    // A subject of this test's own: other tests' replicas on the same server stay apart.
    let subject = format!("c360.test.{}", uuid::Uuid::now_v7().simple());
    let app = TestApp::spawn_with(Layout::all(Backend::Mysql), 3, |config| {
        config.bus.nats = Some(nats.into());
        config.bus.subject = subject;
    })
    .await;
    a_revocation_reaches_the_other_replica_at_once(&app).await;
}

/// A revocation taken by `app` is refused by a second replica within 1.5 s, well within
/// its periodic read of the revocations (every 3 s).
async fn a_revocation_reaches_the_other_replica_at_once(app: &TestApp) {
    let other = second_replica(app).await;
    let partner = app.token(Role::Partner, Some("customers:read"), Some("acme-insurance"));
    let status_at = |address: String, token: String| async move {
        let response = reqwest::Client::new()
            .post(format!("{address}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("POST");
        response.status().as_u16()
    };
    // The other replica reads the revocations now, with this request: its copy is fresh
    // for the next 3 s.
    assert_eq!(status_at(other.clone(), partner.clone()).await, 200);
    let revoke = "mutation($v: String!) { revokeTokens(kind: TOKEN_ID, value: $v) { kind } }";
    app.data(revoke, json!({ "v": token_id(&partner) })).await;
    // Well within those 3 s, the other replica refuses the token.
    let started = std::time::Instant::now();
    let mut status = 200;
    while status != 401 && started.elapsed() < Duration::from_millis(1_500) {
        status = status_at(other.clone(), partner.clone()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 401, "the other replica still served the token after {:?}", started.elapsed());
}
