//! Personal data never reaches the logs: traffic full of canary names, emails, phones,
//! addresses and note texts, at the most verbose log level, leaves none of them in what
//! the server logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
#[cfg(feature = "otel")]
use tracing_subscriber::Layer as _;

use c360::auth::Role;
use c360::sources::{Arg, SqlTrace};
use serde_json::json;

use crate::helpers::{Backend, Layout, TestApp};

/// Everything logged, in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

const NAME: &str = "Zoltanqx";
const SURNAME: &str = "Kwiatkowskyz";
const EMAIL: &str = "zoltanqx.canary@example.org";
const PHONE: &str = "+49 151 98765432";
const PHONE_DIGITS: &str = "15198765432";
const STREET: &str = "Kanarienweg 77";
const NOTE: &str = "canary-note-7c1e: prefers calls after six";

// A current-thread runtime: the server's tasks run on this thread, so this thread's
// subscriber sees everything the server logs (other tests log elsewhere).
#[tokio::test]
async fn personal_data_never_reaches_the_logs() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 20).await;
    let now = chrono::Utc::now();
    let insert = "insert into customers (id, first_name, last_name, email, phone, birth_date, gender, street,
                  postal_code, city, country, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let args = [
        Arg::Int(99_000_001),
        Arg::from(NAME),
        Arg::from(SURNAME),
        Arg::from(EMAIL),
        Arg::from(PHONE),
        Arg::OptDate(chrono::NaiveDate::from_ymd_opt(1970, 1, 2)),
        Arg::from("diverse"),
        Arg::from(STREET),
        Arg::from("10115"),
        Arg::from("Berlin"),
        Arg::from("DE"),
        Arg::Time(now),
        Arg::Time(now),
    ];
    app.sources.crm().execute(&SqlTrace::default(), insert, &args).await.expect("insert the canary");
    app.resolver.run().await.expect("resolve");

    // Found by its keys (as variables and in a GET URL), read in full, written to, asked
    // for wrongly: every path a request takes through the hub.
    let by_email = "query($e: String!) { customerByEmail(email: $e) { id displayName email phone birthDate
                      address { street postalCode } } }";
    let found = app.data(by_email, json!({ "e": EMAIL })).await;
    let id = found["customerByEmail"]["id"].as_str().expect("the canary is found").to_owned();
    assert_eq!(found["customerByEmail"]["address"]["street"], STREET);
    app.data("query($p: String!) { customerByPhone(phone: $p) { id } }", json!({ "p": PHONE })).await;
    let url = format!(
        "{}/graphql?query={}",
        app.address,
        urlencode(&format!("{{ customerByEmail(email: \"{EMAIL}\") {{ id email }} }}"))
    );
    let get = reqwest::Client::new()
        .get(url)
        .header("authorization", format!("Bearer {}", app.admin))
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 200);
    let added = app.data(
        "mutation($id: ID!, $b: String!) { addNote(customerId: $id, body: $b) { body } }",
        json!({ "id": id, "b": NOTE }),
    );
    assert_eq!(added.await["addNote"]["body"], NOTE);
    let frontend = app.token(Role::Frontend, None, None);
    app.query_as(&frontend, "query($id: ID!) { customer(id: $id) { email phone } }", json!({ "id": id })).await;
    // Wrong input carrying personal data: malformed keys, unknown fields, a broken token.
    app.query("query($e: String!) { customerByEmail(email: $e) { id } }", json!({ "e": format!("{NAME} {SURNAME}") }))
        .await;
    app.query("query($p: String!) { customerByPhone(phone: $p) { id } }", json!({ "p": format!("{PHONE} {NAME}") }))
        .await;
    app.query(&format!("{{ customer(id: \"{EMAIL}\") {{ id }} }}"), json!({})).await;
    app.post(Some(&format!("Bearer {EMAIL}")), json!({ "query": "{ customers(first: 1) { totalCount } }" })).await;
    app.query(&format!("{{ {NAME}: customers(first: 1) {{ totalCount }} }}"), json!({})).await;
    app.stop().await;

    let text = String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned();
    assert!(text.contains("DEBUG") || text.contains("TRACE"), "the capture holds verbose logs: {text}");
    for canary in [NAME, SURNAME, EMAIL, "zoltanqx", PHONE, PHONE_DIGITS, STREET, NOTE, "canary-note"] {
        let at = text.find(canary);
        assert!(
            at.is_none(),
            "`{canary}` is in the logs: …{}…",
            at.map(|i| &text[i.saturating_sub(300)..(i + 100).min(text.len())]).unwrap_or_default()
        );
    }
}

/// Percent-encodes a query string value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// Operators who log JSON get one object per line, each request's in its `graphql` span:
// the request id the client was given, the operation, the role, the outcome and the time;
// its statements (and loader batches) in spans of their own.
#[tokio::test]
async fn json_logs_carry_the_request_span() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let analyst = app.token(Role::Analyst, None, None);

    let query = "query Count { customers(first: 2) { totalCount edges { node { id } } } }";
    let (_, request_id) = app.query_with_id(&analyst, query, json!({})).await;
    app.stop().await;

    let text = String::from_utf8_lossy(&logs.0.lock().expect("lock")).into_owned();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("every line is one JSON object")).collect();
    let answered = lines
        .iter()
        .find(|l| l["fields"]["message"] == "answered" && l["span"]["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("the request's line: {text}"));
    let span = &answered["span"];
    assert_eq!((span["name"].as_str(), span["operation"].as_str()), (Some("graphql"), Some("Count")), "{answered}");
    assert_eq!((span["role"].as_str(), span["outcome"].as_str()), (Some("analyst"), Some("ok")), "{answered}");
    assert!(span["ms"].as_f64().is_some_and(|ms| ms > 0.0), "{answered}");
    // Its statements ran inside it, each in its own span.
    let nested = lines.iter().any(|l| {
        let spans = l["spans"].as_array().cloned().unwrap_or_default();
        let inside = spans.iter().any(|s| s["name"] == "graphql" && s["request_id"] == request_id.as_str());
        inside && spans.last().is_some_and(|s| s["name"] == "sql" && s["db"].is_string())
    });
    assert!(nested, "statement spans: {text}");
}

// With the `otel` feature, spans go to an OpenTelemetry collector over OTLP/HTTP: here a
// stand-in that keeps what it is sent. A current-thread runtime, as above, so that this
// thread's subscriber sees the server's spans; the exporter sends from a thread of its own.
#[cfg(feature = "otel")]
#[tokio::test]
async fn spans_are_exported_to_an_otlp_collector() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
    let collector = {
        let received = received.clone();
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| async move {
                received.lock().expect("lock").extend_from_slice(&body);
                ""
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let (layer, provider) = c360::telemetry::otlp_layer(&endpoint).expect("exporter");
    let subscriber =
        tracing_subscriber::registry().with(layer.with_filter(tracing_subscriber::EnvFilter::new("c360=debug")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let analyst = app.token(Role::Analyst, None, None);
    let (_, request_id) =
        app.query_with_id(&analyst, "query Count { customers(first: 2) { totalCount } }", json!({})).await;
    app.stop().await;
    tokio::task::spawn_blocking(move || provider.force_flush()).await.expect("flush").expect("exported");

    // OTLP/protobuf: span names and attribute values travel as plain strings.
    let sent = received.lock().expect("lock").clone();
    let text = String::from_utf8_lossy(&sent);
    for expected in ["c360", "graphql", "sql", request_id.as_str(), "Count", "analyst"] {
        assert!(text.contains(expected), "`{expected}` in what the collector got ({} bytes)", sent.len());
    }
}
