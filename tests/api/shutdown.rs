//! Graceful shutdown (SIGTERM, SIGINT): the server stops accepting, lets what runs over
//! HTTP and over websockets finish and answers it, closes websockets with 1001, and cuts
//! off what is still running at `shutdown_timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use c360::names::SourceName;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::helpers::{Backend, Layout, TestApp};
use crate::websocket::{Frame, next, open, send};

const ADD_NOTE: &str = "mutation($id: ID!, $b: String!) { addNote(customerId: $id, body: $b) { body } }";

/// A connection holding the CRM's write lock: notes being added wait until it commits.
async fn lock_crm(app: &TestApp) -> sqlx::SqliteConnection {
    let url = app.config.sources[&SourceName::Crm].expose_secret().to_owned();
    let mut lock = sqlx::SqliteConnection::connect(&url).await.expect("connect");
    sqlx::query("begin immediate").execute(&mut lock).await.expect("lock");
    lock
}

async fn some_customer(app: &TestApp) -> String {
    let data = app.data("{ customers(first: 1) { edges { node { id } } } }", json!({})).await;
    data["customers"]["edges"][0]["node"]["id"].as_str().expect("id").to_owned()
}

async fn notes_with(app: &TestApp, body: &str) -> i64 {
    let sql = "select count(*) as n from notes where body = ?";
    app.sources.crm().fetch_count(&Default::default(), sql, &[body.into()]).await.expect("count")
}

fn post_note(app: &TestApp, id: &str, body: &str) -> tokio::task::JoinHandle<reqwest::Result<Value>> {
    let request = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("authorization", format!("Bearer {}", app.admin))
        .json(&json!({ "query": ADD_NOTE, "variables": { "id": id, "b": body } }));
    tokio::spawn(async move { request.send().await?.json().await })
}

#[tokio::test]
async fn shutdown_answers_what_runs_and_closes_websockets() {
    let app = Arc::new(
        TestApp::spawn_with(Layout::all(Backend::Sqlite), 5, |c| c.shutdown_timeout = Duration::from_secs(20)).await,
    );
    let id = some_customer(&app).await;
    let mut socket = open(&app, Some(&format!("Bearer {}", app.admin))).await.expect("open");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert!(matches!(next(&mut socket).await, Frame::Json(m) if m["type"] == "connection_ack"));

    // A note over HTTP and one over the websocket, both waiting for the CRM.
    let lock = lock_crm(&app).await;
    let http = post_note(&app, &id, "added over HTTP during shutdown");
    let variables = json!({ "id": id, "b": "added over the websocket during shutdown" });
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": ADD_NOTE, "variables": variables } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stopping = tokio::spawn({
        let app = app.clone();
        async move { app.stop().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new connection is taken.
    let refused = reqwest::Client::new().get(format!("{}/healthz", app.address)).send().await;
    assert!(refused.is_err(), "the listener is closed: {refused:?}");

    lock.close().await.expect("release the lock");
    let answered = http.await.expect("task").expect("the request in flight is answered");
    assert_eq!(answered["data"]["addNote"]["body"], "added over HTTP during shutdown", "{answered:#}");
    let Frame::Json(result) = next(&mut socket).await else { panic!("the operation's result") };
    assert_eq!(result["payload"]["data"]["addNote"]["body"], "added over the websocket during shutdown", "{result:#}");
    assert!(matches!(next(&mut socket).await, Frame::Json(m) if m["type"] == "complete"));
    match next(&mut socket).await {
        Frame::Closed(code, _) => assert_eq!(code, 1001, "going away"),
        other => panic!("closed after its last operation: {other:?}"),
    }
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("the server stops").expect("task");
    assert_eq!(notes_with(&app, "added over HTTP during shutdown").await, 1);
    assert_eq!(notes_with(&app, "added over the websocket during shutdown").await, 1);
}

#[tokio::test]
async fn shutdown_cuts_off_what_runs_past_the_deadline() {
    let app = Arc::new(
        TestApp::spawn_with(Layout::all(Backend::Sqlite), 5, |c| c.shutdown_timeout = Duration::from_secs(1)).await,
    );
    let id = some_customer(&app).await;
    let mut socket = open(&app, Some(&format!("Bearer {}", app.admin))).await.expect("open");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert!(matches!(next(&mut socket).await, Frame::Json(m) if m["type"] == "connection_ack"));
    let lock = lock_crm(&app).await;
    let _http = post_note(&app, &id, "never mind");
    let variables = json!({ "id": id, "b": "never mind either" });
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": ADD_NOTE, "variables": variables } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    app.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "stopped at the deadline, with the lock still held: {took:?}");
    match next(&mut socket).await {
        Frame::Closed(code, _) => assert_eq!(code, 1001),
        Frame::Json(m) => panic!("cut off, not answered: {m}"),
    }
    drop(lock);
}
