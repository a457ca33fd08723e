//! A source that stops answering: its circuit breaker opens, so its fields fail at once
//! (`SOURCE_UNAVAILABLE`, naming it) while the other sources are served; `/readyz`
//! names it at once and stays 200 (the replica serves); `/metrics` reports it. When the
//! source answers again, its breaker turns half-open by itself, and one trial statement
//! closes it.
//!
//! The helpdesk runs on PostgreSQL behind a TCP proxy of the test's own that can
//! blackhole it (hold every byte, as a host that drops packets does).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use c360::sources::DbName;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Backend, Layout, TestApp, codes};

/// A TCP proxy to one server that can be switched to a blackhole, or slowed.
struct Proxy {
    address: String,
    blackholed: Arc<AtomicBool>,
    /// Milliseconds each answer of the server is held.
    delay: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let blackholed = Arc::new(AtomicBool::new(false));
        let delay = Arc::new(AtomicU64::new(0));
        let (hole, slow) = (blackholed.clone(), delay.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, hole, slow) = (upstream.clone(), hole.clone(), slow.clone());
                tokio::spawn(async move {
                    // A new connection into the blackhole gets no answer either.
                    while hole.load(Ordering::Acquire) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let Ok(server) = TcpStream::connect(&upstream).await else { return };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pipe(client_read, server_write, hole.clone(), None));
                    pipe(server_read, client_write, hole, Some(slow)).await;
                });
            }
        });
        Proxy { address, blackholed, delay }
    }

    fn blackhole(&self, on: bool) {
        self.blackholed.store(on, Ordering::Release);
    }
}

/// Copies `from` to `to`, holding what it read while the proxy is blackholed, and for
/// `delay` milliseconds when given.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hole: Arc<AtomicBool>,
    delay: Option<Arc<AtomicU64>>,
) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while hole.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ms = delay.as_ref().map_or(0, |d| d.load(Ordering::Acquire));
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

const QUERY: &str = "{ customers(first: 3) { edges { node { id displayName tickets(first: 2) { totalCount } } } } }";

async fn metric(app: &TestApp, line: &str) -> Option<f64> {
    let text = reqwest::get(format!("{}/metrics", app.address)).await.expect("metrics").text().await.expect("text");
    text.lines().find_map(|l| l.strip_prefix(line).and_then(|v| v.trim().parse().ok()))
}

/// `/readyz`, which must answer within a probe's usual timeout whatever the sources do.
async fn ready(app: &TestApp) -> (u16, Value) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("client");
    let response = client.get(format!("{}/readyz", app.address)).send().await.expect("/readyz answers in time");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

/// Polls `check` every 100 ms until it holds (fails the test after `within`).
async fn eventually<F: std::future::Future<Output = bool>>(within: Duration, what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `host:port` of a server URL.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    host.split(['/', '?']).next().unwrap_or(host).to_owned()
}

/// The hub with every database on SQLite but the helpdesk, on PostgreSQL behind a proxy;
/// `database` adjusts the database settings.
async fn proxied(database: impl FnOnce(&mut c360::config::DatabaseConfig)) -> (TestApp, Proxy) {
    let server = std::env::var("C360_TEST_POSTGRES_URL").expect("C360_TEST_POSTGRES_URL");
    let upstream = host_of(&server);
    let proxy = Proxy::start(upstream.clone()).await;
    let helpdesk = c360::sources::SourceName::Helpdesk;
    let app = TestApp::spawn_connected(
        Layout::mixed(Backend::Sqlite, &[(DbName::Helpdesk, Backend::Postgres)]),
        6,
        |c| {
            let url = c.sources[&helpdesk].expose_secret().replacen(&upstream, &proxy.address, 1);
            c.sources.insert(helpdesk, url.into());
            database(&mut c.database);
        },
        |_| {},
    )
    .await;
    (app, proxy)
}

#[tokio::test]
#[ignore = "needs PostgreSQL (C360_TEST_POSTGRES_URL)"]
async fn a_blackholed_source_fails_fast_and_comes_back() {
    let (app, proxy) = proxied(|d| {
        d.acquire_timeout = Duration::from_millis(300);
        d.statement_timeout = Duration::from_secs(1);
        d.breaker.requests = 4;
        d.breaker.window = Duration::from_secs(2);
        d.breaker.open = Duration::from_secs(1);
        d.health_interval = Duration::from_millis(200);
    })
    .await;
    let answer = app.query(QUERY, json!({})).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(ready(&app).await.0, 200);

    proxy.blackhole(true);
    // Requests keep coming; the breaker opens and the helpdesk's fields fail at once.
    eventually(Duration::from_secs(20), "the helpdesk's breaker opens", || async {
        let answer = app.query(QUERY, json!({})).await;
        // Until it opens, statements time out or wait for a connection in vain.
        let code = codes(&answer).first().cloned().unwrap_or_default();
        assert!(["SOURCE_TIMEOUT", "SOURCE_UNAVAILABLE"].contains(&code.as_str()), "{answer}");
        metric(&app, r#"c360_source_breaker_state{source="helpdesk"}"#).await == Some(2.0)
    })
    .await;
    let refused = metric(&app, r#"c360_source_refusals_total{source="helpdesk",reason="open"}"#).await.unwrap_or(0.0);
    for _ in 0..10 {
        let answer = app.query(QUERY, json!({})).await;
        // The other sources are served; the helpdesk's fields are null with its error.
        let edges = answer["data"]["customers"]["edges"].as_array().expect("customers served").clone();
        assert_eq!(edges.len(), 3, "{answer}");
        assert!(edges.iter().all(|e| e["node"]["displayName"].is_string()), "{answer}");
        let errors = answer["errors"].as_array().expect("errors");
        assert!(errors.iter().all(|e| e["extensions"]["code"] == "SOURCE_UNAVAILABLE"), "{answer}");
        assert!(errors.iter().all(|e| e["extensions"]["source"] == "helpdesk"), "{answer}");
    }
    // Those ten never reached the source: the breaker refused them.
    let now = metric(&app, r#"c360_source_refusals_total{source="helpdesk",reason="open"}"#).await.unwrap_or(0.0);
    assert!(now >= refused + 10.0, "refused {refused} then {now}");
    // A source down is down for every replica: the replica stays in its load balancer.
    let (status, body) = ready(&app).await;
    assert_eq!((status, &body["status"]), (200, &json!("degraded")), "{body}");
    assert!(body["degraded"].as_array().is_some_and(|d| d.contains(&json!("helpdesk"))), "{body}");
    eventually(Duration::from_secs(10), "the helpdesk reported down", || async {
        metric(&app, r#"c360_source_up{source="helpdesk"}"#).await == Some(0.0)
    })
    .await;
    assert_eq!(metric(&app, r#"c360_source_up{source="crm"}"#).await, Some(1.0));

    proxy.blackhole(false);
    // With no request at all, the source is reported back once its breaker's time is up
    // (half-open) and a ping is answered: nothing waits for a statement to come.
    eventually(Duration::from_secs(10), "the helpdesk reported up without a request", || async {
        metric(&app, r#"c360_source_up{source="helpdesk"}"#).await == Some(1.0)
    })
    .await;
    assert_eq!(metric(&app, r#"c360_source_breaker_state{source="helpdesk"}"#).await, Some(1.0), "half-open");
    // One trial statement finds the source back and closes the breaker.
    eventually(Duration::from_secs(30), "the helpdesk serves again", || async {
        app.query(QUERY, json!({})).await.get("errors").is_none()
    })
    .await;
    eventually(Duration::from_secs(10), "ready again", || async { ready(&app).await.0 == 200 }).await;
    assert_eq!(metric(&app, r#"c360_source_breaker_state{source="helpdesk"}"#).await, Some(0.0));
    assert_eq!(metric(&app, r#"c360_source_up{source="helpdesk"}"#).await, Some(1.0));
}

#[tokio::test]
#[ignore = "needs PostgreSQL (C360_TEST_POSTGRES_URL)"]
async fn a_slow_source_holds_no_more_than_its_bulkhead() {
    let (app, proxy) = proxied(|d| {
        d.max_connections = 2;
        // Each request its own statements (merged, eight would make one).
        d.merge_statements = false;
        // Eight slots: the eight requests each wait for the hub store at most once at a time,
        // and send the helpdesk two statements each.
        d.max_waiting = 6;
        d.acquire_timeout = Duration::from_secs(10);
        d.statement_timeout = Duration::from_secs(10);
    })
    .await;
    proxy.delay.store(700, Ordering::Release);
    let answers = futures::future::join_all((0..8).map(|_| app.query(QUERY, json!({})))).await;
    for answer in &answers {
        // Every answer has the CRM's customers; the helpdesk's fields are served or refused.
        let edges =
            answer["data"]["customers"]["edges"].as_array().unwrap_or_else(|| panic!("customers served: {answer}"));
        assert!(edges.iter().all(|e| e["node"]["displayName"].is_string()), "{answer}");
        assert!(codes(answer).iter().all(|c| c == "SOURCE_UNAVAILABLE"), "{answer}");
    }
    assert!(answers.iter().any(|a| a.get("errors").is_none()), "some are served slowly");
    assert!(answers.iter().any(|a| a.get("errors").is_some()), "some are refused at once");
    let busy = metric(&app, r#"c360_source_refusals_total{source="helpdesk",reason="busy"}"#).await;
    assert!(busy.is_some_and(|n| n >= 1.0), "{busy:?}");
    // A slow source is not a failing one: its breaker stays closed.
    assert_eq!(metric(&app, r#"c360_source_breaker_state{source="helpdesk"}"#).await, Some(0.0));
}
