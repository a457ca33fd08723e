//! Clients that send slowly, or too much, before they are known: a request's headers and
//! body, and a websocket's `connection_init`, each have a deadline, and a websocket
//! message is held to the body limit. Meanwhile everyone else is served.

use std::time::Duration;

use futures::SinkExt as _;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::helpers::{Backend, Layout, TestApp};
use crate::websocket::{Frame, next, open, send};

async fn app() -> TestApp {
    TestApp::spawn_with(Layout::all(Backend::Sqlite), 3, |c| {
        c.http.header_timeout = Duration::from_millis(500);
        c.http.body_timeout = Duration::from_millis(800);
        c.http.websocket_init_timeout = Duration::from_millis(500);
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://")).await.expect("connect")
}

/// What the server sends until it closes the connection (fails the test after 20 s).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn headers_that_trickle_in_are_cut_off() {
    let app = app().await;
    let mut slow = connect(&app).await;
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.expect("write");
    // Another client is served meanwhile.
    let healthy = reqwest::get(format!("{}/healthz", app.address)).await.expect("healthz");
    assert_eq!(healthy.status(), 200);
    // A header every 200 ms, never the end of them: the deadline is for all of them.
    for i in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
            break;
        }
    }
    let answer = until_closed(&mut slow).await;
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn a_body_that_trickles_in_is_refused_with_408() {
    let app = app().await;
    let mut slow = connect(&app).await;
    let body = json!({ "query": "{ __typename }" }).to_string();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.admin,
        body.len()
    );
    slow.write_all(head.as_bytes()).await.expect("write");
    // One byte every 200 ms (each well within any per-read timeout), until the answer.
    let mut answer = Vec::new();
    for byte in body.as_bytes().iter().take(body.len() - 1) {
        let mut buffer = [0; 4096];
        match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buffer)).await {
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buffer[..n]);
                break;
            }
            Ok(Err(_)) => break,
            Err(_) => {}
        }
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned() + &until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
}

#[tokio::test]
async fn a_websocket_must_bring_its_token_in_time_pings_or_not() {
    let app = app().await;
    let mut socket = open(&app, None).await.expect("upgrade");
    // Pings keep a connection alive, but do not stand in for `connection_init`.
    for _ in 0..3 {
        socket.send(Message::Ping(vec![1].into())).await.expect("ping");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match next(&mut socket).await {
        Frame::Closed(code, reason) => assert_eq!((code, reason.as_str()), (4408, "Connection initialisation timeout")),
        other => panic!("{other:?}"),
    }
    // With its token in time, a connection stays past the deadline.
    let mut socket = open(&app, None).await.expect("upgrade");
    let authorization = format!("Bearer {}", app.admin);
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": authorization } })).await;
    assert!(matches!(next(&mut socket).await, Frame::Json(m) if m["type"] == "connection_ack"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } })).await;
    match next(&mut socket).await {
        Frame::Json(m) => assert_eq!(m["payload"]["data"]["__typename"], "Query", "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_websocket_message_is_held_to_the_body_limit() {
    let app = app().await;
    let mut socket = open(&app, None).await.expect("upgrade");
    // A `connection_init` of 3 MiB (the body limit is 1 MiB), before any token is known.
    let padding = "x".repeat(3 << 20);
    let init = json!({ "type": "connection_init", "payload": { "Authorization": "Bearer nope", "pad": padding } });
    let _ = socket.send(Message::text(init.to_string())).await;
    match next(&mut socket).await {
        Frame::Closed(code, _) => assert!(code == 1009 || code == 1006, "closed with {code}"),
        other => panic!("{other:?}"),
    }
    // Fragmented, the same.
    let mut socket = open(&app, None).await.expect("upgrade");
    let text = init.to_string();
    let (first, rest) = text.split_at(text.len() / 2);
    let part =
        |bytes: &str, kind, last| Message::Frame(WsFrame::message(bytes.as_bytes().to_vec(), OpCode::Data(kind), last));
    let _ = socket.send(part(first, Data::Text, false)).await;
    let _ = socket.send(part(rest, Data::Continue, true)).await;
    match next(&mut socket).await {
        Frame::Closed(code, _) => assert!(code == 1009 || code == 1006, "closed with {code}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn answers_with_personal_data_are_not_stored() {
    let app = app().await;
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&app.admin)
        .json(&json!({ "query": "{ customers(first: 1) { edges { node { email } } } }" }))
        .send()
        .await
        .expect("post");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}
