//! `kill -9` under load: every response that revealed personal data to a client has its
//! audit entry in the hub store, because a response leaves only once its entries are
//! committed (the writer once flushed every 200 ms, and a crash lost the last ones).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::jobs::{Server, free_port};

#[tokio::test]
async fn a_killed_hub_has_audited_every_response_it_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_c360"));
    command.arg("serve").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command
        .env("C360_DATA_DIR", dir.path())
        .env("C360_LISTEN", format!("127.0.0.1:{port}"))
        .env("C360_SEED__CUSTOMERS", "300")
        .env("C360_INSIGHTS__REFRESH_INTERVAL", "0s")
        .env("C360_LOG", "off");
    let mut server = Server(command.spawn().expect("start c360"));
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while !reqwest::get(format!("{base}/readyz")).await.is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(120), "not ready in 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let minted = Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(["token", "--role", "admin"])
        .env("C360_DATA_DIR", dir.path())
        .env("C360_LOG", "off")
        .output()
        .expect("c360 token");
    let token = String::from_utf8_lossy(&minted.stdout).trim().to_owned();

    // Sixteen clients read emails until the server dies under them.
    let dead = Arc::new(AtomicBool::new(false));
    let clients = (0..16).map(|_| {
        let (url, token, dead) = (format!("{base}/graphql"), token.clone(), dead.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut served = Vec::new();
            let mut after = Value::Null;
            while !dead.load(Ordering::Acquire) {
                let query = "query($after: String) { customers(first: 5, after: $after) {
                    pageInfo { endCursor } edges { node { email } } } }";
                let body = json!({ "query": query, "variables": { "after": after } });
                let Ok(response) = client.post(&url).bearer_auth(&token).json(&body).send().await else { break };
                let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let Ok(answer) = response.json::<Value>().await else { break };
                let emails = answer["data"]["customers"]["edges"].as_array().into_iter().flatten();
                if emails.filter(|e| e["node"]["email"].is_string()).count() > 0 {
                    served.extend(id);
                }
                // Page on; past the last page, from the first again.
                after = answer["data"]["customers"]["pageInfo"]["endCursor"].clone();
            }
            served
        })
    });
    let clients: Vec<_> = clients.collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.0.kill().expect("SIGKILL");
    let _ = server.0.wait();
    dead.store(true, Ordering::Release);
    let mut served = BTreeSet::new();
    for client in clients {
        served.extend(client.await.expect("client"));
    }
    assert!(served.len() > 50, "the clients were served before the kill: {}", served.len());

    let hub = format!("sqlite:{}", dir.path().join("hub.db").display());
    let mut hub = sqlx::SqliteConnection::connect(&hub).await.expect("the hub store");
    let rows: Vec<(String,)> =
        sqlx::query_as("select request_id from audit_log").fetch_all(&mut hub).await.expect("audit_log");
    let logged: BTreeSet<String> = rows.into_iter().map(|r| r.0).collect();
    let lost: Vec<&String> = served.difference(&logged).collect();
    assert!(lost.is_empty(), "{} of {} responses sent have no audit entry: {lost:?}", lost.len(), served.len());
}
