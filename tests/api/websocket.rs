//! GraphQL over websocket (`graphql-transport-ws`): nothing runs without a valid token,
//! a connection does not outlive its token, and every viewer gets exactly the answer HTTP
//! gives (same policy, same partner rows, same audit).

use std::time::Duration;

use c360::auth::Role;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::audit::entries_of;
use crate::helpers::{Backend, Layout, TestApp, codes};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server sent next.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(u16, String),
}

/// Opens `/graphql` as a `graphql-transport-ws` websocket, with this `Authorization`
/// header on the upgrade request.
pub async fn open(app: &TestApp, authorization: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let url = format!("{}/graphql", app.address.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
    if let Some(authorization) = authorization {
        headers.insert("authorization", authorization.parse().expect("header"));
    }
    Ok(connect_async(request).await?.0)
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.expect("send");
}

/// The next protocol message or the close; fails the test after 20 s of silence.
pub async fn next(socket: &mut Socket) -> Frame {
    loop {
        let message =
            tokio::time::timeout(Duration::from_secs(20), socket.next()).await.expect("the server answers within 20 s");
        match message {
            Some(Ok(Message::Text(text))) => return Frame::Json(serde_json::from_str(&text).expect("JSON message")),
            Some(Ok(Message::Close(frame))) => {
                return frame.map_or(Frame::Closed(1005, String::new()), |f| {
                    Frame::Closed(f.code.into(), f.reason.to_string())
                });
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Frame::Closed(1006, String::new()),
        }
    }
}

/// Sends `connection_init` with `payload`; returns what came back.
async fn init(socket: &mut Socket, payload: Value) -> Frame {
    send(socket, json!({ "type": "connection_init", "payload": payload })).await;
    next(socket).await
}

/// A connection whose `connection_init` carried `token` and was acknowledged.
pub async fn connect(app: &TestApp, token: &str) -> Socket {
    let mut socket = open(app, None).await.expect("upgrade");
    match init(&mut socket, json!({ "Authorization": format!("Bearer {token}") })).await {
        Frame::Json(ack) => assert_eq!(ack["type"], "connection_ack"),
        other => panic!("connection refused: {other:?}"),
    }
    socket
}

/// Runs one operation; returns its single result (without `extensions`) and the request
/// id the server reported (none when the operation was refused before it ran).
async fn run(socket: &mut Socket, id: &str, query: &str, variables: Value) -> (Value, Option<String>) {
    send(socket, json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
    let Frame::Json(result) = next(socket).await else { panic!("closed instead of answering {id}") };
    assert_eq!(result["id"].as_str(), Some(id), "{result:#}");
    // An operation refused as a whole is an `error` with the errors, and ends there;
    // one that ran is a `next`, then `complete`.
    if result["type"] == "error" {
        return (json!({ "errors": result["payload"] }), None);
    }
    assert_eq!(result["type"], "next", "{result:#}");
    let Frame::Json(complete) = next(socket).await else { panic!("closed before completing {id}") };
    assert_eq!(complete["type"], "complete");
    let mut payload = result["payload"].clone();
    let request_id = payload["extensions"]["requestId"].as_str().map(str::to_owned);
    payload.as_object_mut().expect("payload").remove("extensions");
    (payload, request_id)
}

fn without_extensions(mut response: Value) -> Value {
    response.as_object_mut().expect("response").remove("extensions");
    response
}

/// A page on another site cannot open a connection in its visitor's name: browsers send
/// `Origin`, and only the hub's own is accepted. Clients that are not browsers send none.
#[tokio::test]
async fn websockets_from_another_origin_are_refused() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 0).await;
    let url = format!("{}/graphql", app.address.replacen("http://", "ws://", 1));
    let with_origin = |origin: &str| {
        let mut request = url.as_str().into_client_request().expect("request");
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
        request.headers_mut().insert("origin", origin.parse().expect("header"));
        request
    };
    match connect_async(with_origin("https://evil.example")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("a foreign origin was let in: {:?}", other.map(|_| ())),
    }
    let own = app.address.clone();
    let (mut socket, _) = connect_async(with_origin(&own)).await.expect("the hub's own origin");
    let token = app.admin.clone();
    match init(&mut socket, json!({ "Authorization": format!("Bearer {token}") })).await {
        Frame::Json(ack) => assert_eq!(ack["type"], "connection_ack"),
        other => panic!("refused: {other:?}"),
    }
    assert!(open(&app, None).await.is_ok(), "no Origin: not a browser");

    // DNS rebinding: a page on another name that resolves to the hub sends its own name as
    // both `Host` and `Origin`; the origin is checked against the hub's names, not `Host`.
    let port = app.address.rsplit(':').next().expect("port").to_owned();
    let mut rebound = with_origin(&format!("http://attacker.example:{port}"));
    rebound.headers_mut().insert("host", format!("attacker.example:{port}").parse().expect("header"));
    match connect_async(rebound).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("a rebound origin was let in: {:?}", other.map(|_| ())),
    }
    assert!(connect_async(with_origin(&format!("http://localhost:{port}"))).await.is_ok(), "localhost is the hub's");
}

#[tokio::test]
async fn a_websocket_runs_nothing_without_a_valid_token() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 0).await;
    let refused = |frame: Frame, why: &str| match frame {
        Frame::Closed(code, reason) => {
            assert_eq!(code, 1002, "{reason}");
            assert!(reason.contains(why), "{reason:?} should say {why:?}");
        }
        Frame::Json(message) => panic!("accepted: {message}"),
    };

    // No token anywhere, a forged one, an expired one: closed at connection_init.
    let mut socket = open(&app, None).await.expect("upgrade");
    refused(init(&mut socket, json!({})).await, "authentication required");
    let mut socket = open(&app, None).await.expect("upgrade");
    refused(init(&mut socket, json!({ "Authorization": "Bearer e30.e30.c2ln" })).await, "not valid");
    let expired = expired_token(&app);
    let mut socket = open(&app, None).await.expect("upgrade");
    refused(init(&mut socket, json!({ "authorization": format!("Bearer {expired}") })).await, "expired");

    // An operation before connection_init never runs.
    let mut socket = open(&app, None).await.expect("upgrade");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ customers(first: 1) { totalCount } }" } }),
    )
    .await;
    assert!(matches!(next(&mut socket).await, Frame::Closed(..)), "an operation ran before the handshake");

    // A bad Authorization header on the upgrade itself: HTTP 401, no websocket.
    match open(&app, Some(&format!("Bearer {expired}"))).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("upgraded with an expired token: {:?}", other.map(|_| ())),
    }
    // A good one is the connection's token: connection_init needs none.
    let mut socket = open(&app, Some(&format!("Bearer {}", app.admin))).await.expect("upgrade");
    match init(&mut socket, json!({})).await {
        Frame::Json(ack) => assert_eq!(ack["type"], "connection_ack"),
        other => panic!("refused an authenticated upgrade: {other:?}"),
    }
    let (result, _) = run(&mut socket, "1", "{ customers(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(result["data"]["customers"]["totalCount"], 0);
}

/// A development token that expired a minute ago (beyond the 30 s leeway).
fn expired_token(app: &TestApp) -> String {
    let key = c360::auth::keys::development_key(&app.config).expect("development key");
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": app.config.auth.issuer, "aud": app.config.auth.audience, "sub": "late", "role": "admin",
        "scope": "customers:read", "iat": now - 600, "exp": now - 60,
    });
    let header =
        jsonwebtoken::Header { kid: Some("dev".into()), ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256) };
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&key)).expect("sign")
}

#[tokio::test]
async fn a_connection_does_not_outlive_its_token() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 0, |config| {
        config.auth.leeway = Duration::ZERO;
    })
    .await;
    let token = app.subject_token("short-lived", Role::Agent, Duration::from_secs(2));
    let mut socket = connect(&app, &token).await;
    let query = "{ customers(first: 1) { totalCount } }";
    let (before, ran) = run(&mut socket, "1", query, json!({})).await;
    assert!(ran.is_some());
    assert_eq!(before["data"]["customers"]["totalCount"], 0, "{before:#}");
    // The socket closes by itself when the token expires: 4403, with the reason.
    match next(&mut socket).await {
        Frame::Closed(code, reason) => {
            assert_eq!((code, reason.as_str()), (4403, "Forbidden: the token has expired"));
        }
        other => panic!("expected the socket to close, got {other:?}"),
    }
}

/// A revoked token's socket closes within seconds, whatever it is doing.
#[tokio::test]
async fn a_connection_does_not_outlive_its_revocation() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 0).await;
    let token = app.subject_token("soon-revoked", Role::Agent, Duration::from_secs(600));
    let mut socket = connect(&app, &token).await;
    let (_, ran) = run(&mut socket, "1", "{ __typename }", json!({})).await;
    assert!(ran.is_some());
    let revoke = "mutation { revokeTokens(kind: SUBJECT, value: \"soon-revoked\") { kind } }";
    app.data(revoke, json!({})).await;
    let started = std::time::Instant::now();
    match next(&mut socket).await {
        Frame::Closed(code, reason) => {
            assert_eq!((code, reason.as_str()), (4403, "Forbidden: the token has been revoked"));
        }
        other => panic!("expected the socket to close, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
}

/// Contact, sensitive, internal and insight fields, a nested list and a node lookup: the
/// policy masks or hides some of them for every role but the admin.
const PAGE: &str = "query($id: ID!) {
    customers(first: 8) { totalCount edges { node { id displayName email phone birthDate
        orders(first: 2) { totalCount edges { node { id total { amount currency } } } } } } }
    node(id: $id) { id ... on Customer { email } } }";

/// What a partner may name.
const PARTNER_PAGE: &str = "query($id: ID!) {
    customers(first: 50) { totalCount edges { node { id displayName email } } }
    node(id: $id) { id ... on Customer { email } } }";

#[tokio::test]
async fn websocket_and_http_give_every_viewer_the_same_answer() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 60).await;
    let first = app.data("{ customers(first: 1) { edges { node { id email } } } }", json!({})).await;
    let someone = first["customers"]["edges"][0]["node"]["id"].as_str().expect("id").to_owned();
    let viewers = [
        ("admin", app.admin.clone(), PAGE),
        ("agent", app.token(Role::Agent, None, None), PAGE),
        ("frontend", app.token(Role::Frontend, None, None), PAGE),
        ("analyst", app.token(Role::Analyst, None, None), PAGE),
        ("partner", app.token(Role::Partner, None, Some("acme-insurance")), PARTNER_PAGE),
    ];
    let mut answers = Vec::new();
    for (who, token, query) in &viewers {
        let mut socket = connect(&app, token).await;
        let variables = json!({ "id": someone });
        let (mut over_ws, _) = run(&mut socket, "page", query, variables.clone()).await;
        // A document rejected as a whole has no `data` over HTTP; the websocket's
        // `next` carries a null one (until rejections there are `error` messages).
        if over_ws["data"].is_null()
            && let Some(object) = over_ws.as_object_mut()
        {
            object.remove("data");
        }
        let over_http = without_extensions(app.query_as(token, query, variables).await);
        assert_eq!(over_ws, over_http, "{who}: websocket and HTTP differ");
        answers.push((*who, over_ws));
    }
    // Not vacuous: the roles' answers differ as the policy says.
    for (who, answer) in answers.iter().filter(|(who, _)| *who != "analyst") {
        assert!(answer.get("errors").is_none(), "{who}: {answer:#}");
    }
    let admin_email = &answers[0].1["data"]["node"]["email"];
    assert_eq!(*admin_email, first["customers"]["edges"][0]["node"]["email"]);
    let frontend = &answers[2].1;
    assert!(frontend["data"]["node"]["email"].as_str().is_some_and(|e| e.contains("***")), "{frontend:#}");
    let analyst = codes(&answers[3].1);
    assert!(!analyst.is_empty() && analyst.iter().all(|c| c == "GRAPHQL_VALIDATION_FAILED"), "{analyst:?}");
    let count = |answer: &Value| answer["data"]["customers"]["totalCount"].as_i64().expect("totalCount");
    assert!(count(&answers[4].1) < count(&answers[0].1), "the partner sees only consenting customers");

    // An unmasked read over the websocket is audited under the request id it reports.
    let mut socket = connect(&app, &app.admin).await;
    let (_, request_id) =
        run(&mut socket, "email", "query($id: ID!) { customer(id: $id) { email } }", json!({ "id": someone })).await;
    let entries = entries_of(&app, &request_id.expect("requestId")).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["customerId"], someone.as_str());
    assert_eq!(entries[0]["fields"], json!(["email"]));
}

/// `graphql-transport-ws` as its protocol says: an operation before the connection is
/// acknowledged closes it with 4401; an operation refused as a whole answers `error`
/// (with its errors) and nothing after it.
#[tokio::test]
async fn the_protocol_holds_before_and_after_the_handshake() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 0).await;
    let subscribe = |id: &str, query: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": query } });

    let mut early = open(&app, None).await.expect("upgrade");
    send(&mut early, subscribe("1", "{ __typename }")).await;
    match next(&mut early).await {
        Frame::Closed(code, reason) => assert_eq!((code, reason.as_str()), (4401, "Unauthorized")),
        Frame::Json(message) => panic!("ran before the handshake: {message}"),
    }

    let mut socket = connect(&app, &app.admin).await;
    send(&mut socket, subscribe("bad", "{ nope }")).await;
    let Frame::Json(error) = next(&mut socket).await else { panic!("closed") };
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("bad")), "{error:#}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{error:#}");
    let limited = format!("{{ {} }}", "customers(first: 1) { totalCount } ".repeat(21));
    send(&mut socket, subscribe("big", &limited)).await;
    let Frame::Json(error) = next(&mut socket).await else { panic!("closed") };
    assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("big")), "{error:#}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "LIMIT_EXCEEDED", "{error:#}");
    // No `complete` for either: the next message is the next operation's.
    send(&mut socket, subscribe("ok", "{ __typename }")).await;
    let Frame::Json(result) = next(&mut socket).await else { panic!("closed") };
    assert_eq!((result["type"].as_str(), result["id"].as_str()), (Some("next"), Some("ok")), "{result:#}");
    assert_eq!(result["payload"]["data"]["__typename"], "Query");
}
