//! Persisted documents and request-level limits: automatic persisted queries (APQ),
//! safelists per role and per partner, tokens per document, and batches.

use c360::auth::Role;
use c360::request::persisted::sha256_hex;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, codes};

const COUNT: &str = "query Count { customers(first: 1) { totalCount } }";

fn apq(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

#[tokio::test]
async fn a_document_sent_once_runs_by_its_hash_for_the_same_viewer() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 20).await;
    let hash = sha256_hex(COUNT);
    let analyst = format!("Bearer {}", app.token(Role::Analyst, None, None));
    let customers = app.data(COUNT, json!({})).await["customers"]["totalCount"].clone();

    // Unknown hash: the client is told to send the text.
    let (status, body) = app.post(Some(&analyst), json!({ "extensions": apq(&hash) })).await;
    assert_eq!((status, codes(&body)), (200, vec!["PERSISTED_QUERY_NOT_FOUND".to_owned()]), "{body:#}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound", "what Apollo clients look for");
    // A text that is not the hash's is refused, and registers nothing.
    let (_, body) = app.post(Some(&analyst), json!({ "query": "{ __typename }", "extensions": apq(&hash) })).await;
    assert_eq!(codes(&body), ["PERSISTED_QUERY_HASH_MISMATCH"], "{body:#}");
    // Text and hash: runs and registers.
    let (_, body) = app.post(Some(&analyst), json!({ "query": COUNT, "extensions": apq(&hash) })).await;
    assert_eq!(body["data"]["customers"]["totalCount"], customers, "{body:#}");
    // Then the hash alone, over POST and over GET.
    let (_, body) = app.post(Some(&analyst), json!({ "extensions": apq(&hash) })).await;
    assert_eq!(body["data"]["customers"]["totalCount"], customers, "{body:#}");
    let response = reqwest::Client::new()
        .get(format!("{}/graphql", app.address))
        .query(&[("extensions", apq(&hash).to_string())])
        .header("authorization", &analyst)
        .send()
        .await
        .expect("GET");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["customers"]["totalCount"], customers, "{body:#}");

    // Another subject has not sent it: its hash tells them nothing of what was asked.
    let frontend = format!("Bearer {}", app.token(Role::Frontend, None, None));
    let (_, body) = app.post(Some(&frontend), json!({ "extensions": apq(&hash) })).await;
    assert_eq!(codes(&body), ["PERSISTED_QUERY_NOT_FOUND"], "{body:#}");
    // Nor does the same subject with another role or other scopes: what a document shows
    // depends on them.
    let admin = app.subject_token("test-analyst", Role::Admin, std::time::Duration::from_secs(600));
    let fewer_scopes = app.token(Role::Analyst, Some("customers:read"), None);
    for token in [admin, fewer_scopes] {
        let (_, body) = app.post(Some(&format!("Bearer {token}")), json!({ "extensions": apq(&hash) })).await;
        assert_eq!(codes(&body), ["PERSISTED_QUERY_NOT_FOUND"], "{body:#}");
    }

    // A mutation registered over POST does not run over GET by its hash either.
    let note = "mutation { __typename }";
    let note_hash = sha256_hex(note);
    let (_, body) = app.post(Some(&analyst), json!({ "query": note, "extensions": apq(&note_hash) })).await;
    assert_eq!(body["data"]["__typename"], "Mutation", "{body:#}");
    let response = reqwest::Client::new()
        .get(format!("{}/graphql", app.address))
        .query(&[("extensions", apq(&note_hash).to_string())])
        .header("authorization", &analyst)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(codes(&body), ["METHOD_NOT_ALLOWED"], "{body:#}");
}

#[tokio::test]
async fn a_safelisted_partner_runs_only_its_listed_documents() {
    let dir = tempfile::tempdir().expect("dir");
    let manifest = dir.path().join("acme.json");
    let listed = json!({ "format": "apollo-persisted-query-manifest", "version": 1,
        "operations": [{ "id": "count-v1", "name": "Count", "type": "query", "body": COUNT }] });
    std::fs::write(&manifest, listed.to_string()).expect("write");
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 20, |c| {
        c.safelists.partners.insert("acme-insurance".to_owned(), manifest);
    })
    .await;
    let acme = format!("Bearer {}", app.token(Role::Partner, None, Some("acme-insurance")));
    let northwind = format!("Bearer {}", app.token(Role::Partner, None, Some("northwind-travel")));

    let count = |body: &Value| body["data"]["customers"]["totalCount"].as_i64();
    let (_, by_id) = app.post(Some(&acme), json!({ "extensions": apq("count-v1") })).await;
    let (_, by_hash) = app.post(Some(&acme), json!({ "extensions": apq(&sha256_hex(COUNT)) })).await;
    let (_, by_text) = app.post(Some(&acme), json!({ "query": COUNT })).await;
    assert!(count(&by_id).is_some(), "{by_id:#}");
    assert_eq!((count(&by_hash), count(&by_text)), (count(&by_id), count(&by_id)));

    let other = "{ customers(first: 2) { totalCount } }";
    let (status, body) = app.post(Some(&acme), json!({ "query": other })).await;
    assert_eq!((status, codes(&body)), (200, vec!["PERSISTED_QUERY_NOT_IN_LIST".to_owned()]), "{body:#}");
    let (_, body) = app.post(Some(&acme), json!({ "query": other, "extensions": apq(&sha256_hex(other)) })).await;
    assert_eq!(codes(&body), ["PERSISTED_QUERY_NOT_IN_LIST"], "registering is free-form text too: {body:#}");
    // Another partner has no list.
    let (_, body) = app.post(Some(&northwind), json!({ "query": other })).await;
    assert!(body["data"]["customers"]["totalCount"].is_i64(), "{body:#}");
}

#[tokio::test]
async fn documents_with_too_many_tokens_are_refused_before_they_are_parsed() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 5, |c| c.graphql.max_tokens = 200).await;
    let admin = format!("Bearer {}", app.admin);
    let fine = format!("{{ customers(first: 1) {{ {} }} }}", "totalCount ".repeat(150));
    let (_, body) = app.post(Some(&admin), json!({ "query": fine })).await;
    assert!(body["data"]["customers"]["totalCount"].is_i64(), "{body:#}");
    let over = format!("{{ {} }}", "__typename ".repeat(199));
    let (_, body) = app.post(Some(&admin), json!({ "query": over })).await;
    assert_eq!(codes(&body), ["LIMIT_EXCEEDED"], "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "tokens", "{body:#}");
    // A body past graphql.max_body_bytes: 413, as JSON with its code.
    let huge = json!({ "query": format!("{{ __typename }} # {}", "x".repeat(2 * 1024 * 1024)) });
    let (status, body) = app.post(Some(&admin), huge).await;
    assert_eq!((status, codes(&body)), (413, vec!["PAYLOAD_TOO_LARGE".to_owned()]), "{body:#}");
    // A broken document past the limit is refused for its size, not parsed.
    let broken = format!("{{ {}", "(".repeat(10_000));
    let (_, body) = app.post(Some(&admin), json!({ "query": broken })).await;
    assert_eq!(codes(&body), ["LIMIT_EXCEEDED"], "{body:#}");
}

#[tokio::test]
async fn batches_are_off_by_default_and_bounded_when_on() {
    let off = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let batch = json!([{ "query": COUNT }, { "query": "{ __typename }" }]);
    let (status, body) = off.post(Some(&format!("Bearer {}", off.admin)), batch.clone()).await;
    assert_eq!((status, codes(&body)), (400, vec!["BAD_REQUEST".to_owned()]), "{body:#}");

    let on = TestApp::spawn_with(Layout::all(Backend::Sqlite), 5, |c| c.graphql.max_batch = 2).await;
    let admin = format!("Bearer {}", on.admin);
    let (status, body) = on.post(Some(&admin), batch).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body[0]["data"]["customers"]["totalCount"].is_i64(), "{body:#}");
    assert_eq!(body[1]["data"]["__typename"], "Query", "{body:#}");
    let three = json!([{ "query": COUNT }, { "query": COUNT }, { "query": COUNT }]);
    let (status, body) = on.post(Some(&admin), three).await;
    assert_eq!((status, codes(&body)), (400, vec!["LIMIT_EXCEEDED".to_owned()]), "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "batch");
    let (status, body) = on.post(None, json!([{ "query": COUNT }])).await;
    assert_eq!((status, codes(&body)), (401, vec!["UNAUTHENTICATED".to_owned()]), "{body:#}");
}
