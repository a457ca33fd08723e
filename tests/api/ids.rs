//! Ids and cursors carry nothing: whatever list or object they come from, nothing in them
//! is readable (no source key, no sort value, no kind), and one that was altered, padded,
//! or sealed for something else is refused like a malformed one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use c360::auth::Role;
use serde_json::json;

use crate::helpers::{Backend, Layout, TestApp, codes};

/// What a client could read in `token`: its bytes as text, decoded as base64 if it is.
fn readable(token: &str) -> String {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).unwrap_or_default();
    format!("{token} {}", String::from_utf8_lossy(&bytes))
}

/// `token` with one character changed at each place in turn.
fn tampered(token: &str) -> Vec<String> {
    (0..token.len())
        .map(|at| {
            let mut bytes = token.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'A' { b'g' } else { b'A' };
            String::from_utf8(bytes).unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn ids_and_cursors_are_sealed() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 60, |c| c.rate_limits.roles.clear()).await;
    let listed = app
        .data(
            "{ customers(first: 40) { edges { cursor node { id sourceRecords { source key } orders(first: 1) { edges { cursor node { id number } } } } } } }",
            json!({}),
        )
        .await;
    let edges = listed["customers"]["edges"].as_array().expect("edges").clone();
    let mut checked = 0;
    for edge in &edges {
        let (id, cursor) = (edge["node"]["id"].as_str().expect("id"), edge["cursor"].as_str().expect("cursor"));
        let keys: Vec<&str> = edge["node"]["sourceRecords"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|r| r["key"].as_str())
            // Short keys turn up in any random text.
            .filter(|k| k.len() >= 5)
            .collect();
        for token in [id, cursor] {
            let text = readable(token);
            for secret in keys.iter().chain(&["Customer", "cu:", "cc:"]) {
                assert!(!text.contains(secret), "{token} shows {secret}");
            }
        }
        if let Some(order) = edge["node"]["orders"]["edges"][0].as_object() {
            let order_id = order["node"]["id"].as_str().expect("order id");
            let number = order["node"]["number"].as_str().unwrap_or_default();
            let text = readable(order_id) + &readable(order["cursor"].as_str().unwrap_or_default());
            assert!(!text.contains("Order") && !number.is_empty() && !text.contains(number), "{text}");
        }
        checked += 1;
    }
    assert!(checked >= 40);

    // The same object, the same id, request after request; tools with the same
    // configuration make the same ones.
    let first = edges[0]["node"]["id"].as_str().expect("id").to_owned();
    let again = app.data("{ customers(first: 1) { edges { node { id } } } }", json!({})).await;
    assert_eq!(again["customers"]["edges"][0]["node"]["id"], first.as_str());
    let golden = app.ids().parse_id_of(c360::graphql::ids::Kind::Customer, &first).expect("sealed by the hub's key");
    assert_eq!(app.ids().global_id(c360::graphql::ids::Kind::Customer, &golden).as_str(), first);

    // Altered, padded or sealed for something else: refused as malformed ones are.
    let cursor = edges[0]["cursor"].as_str().expect("cursor").to_owned();
    let by_id = "query($id: ID!) { customer(id: $id) { id } }";
    let after = "query($a: String) { customers(first: 1, after: $a) { totalCount } }";
    for bad in tampered(&first).into_iter().chain([format!("{first}="), format!("{first}A"), cursor.clone()]) {
        let answer = app.query(by_id, json!({ "id": bad })).await;
        assert_eq!(codes(&answer), ["INVALID_ID"], "{bad}: {answer:#}");
    }
    for bad in tampered(&cursor).into_iter().chain([format!("{cursor}=="), first.clone()]) {
        let answer = app.query(after, json!({ "a": bad })).await;
        assert_eq!(codes(&answer), ["INVALID_CURSOR"], "{bad}: {answer:#}");
    }
    // Another deployment's ids are not this one's.
    let foreign = c360::graphql::ids::Ids::from_secrets(&[b"another deployment's key, 32 bytes".to_vec()]);
    let elsewhere = foreign.global_id(c360::graphql::ids::Kind::Customer, &golden);
    assert_eq!(codes(&app.query(by_id, json!({ "id": elsewhere.as_str() })).await), ["INVALID_ID"]);
}

/// A partner's cursors used to hold the customer's CRM key (`cc:100004`), and a ranked
/// list's the exact value it is ranked by; a frontend's ranked cursors now show neither.
#[tokio::test]
async fn partners_and_ranked_lists_read_nothing_in_their_cursors() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 80, |c| c.rate_limits.roles.clear()).await;
    let consenting =
        app.data("{ customers(first: 80) { edges { node { id consents { partner } } } } }", json!({})).await;
    let partner_token = app.token(Role::Partner, None, Some("acme-insurance"));
    let page =
        app.query_as(&partner_token, "{ customers(first: 5) { edges { cursor node { id } } } }", json!({})).await;
    let edges = page["data"]["customers"]["edges"].as_array().cloned().unwrap_or_default();
    assert!(!edges.is_empty(), "some demo customers consent to acme: {consenting}");
    for edge in &edges {
        let text = readable(edge["cursor"].as_str().expect("cursor"));
        // The CRM key the partner's list is ordered by, as an admin reads it.
        let about = "query($id: ID!) { customer(id: $id) { sourceRecords { source key } } }";
        let records = app.data(about, json!({ "id": edge["node"]["id"] })).await;
        let crm: Vec<&str> = records["customer"]["sourceRecords"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["source"] == "CRM")
            .filter_map(|r| r["key"].as_str())
            .collect();
        assert!(!crm.is_empty(), "a consenting customer has a CRM record: {records}");
        assert!(!text.contains("cc:") && crm.iter().all(|key| !text.contains(key)), "{text} shows {crm:?}");
    }
    c360::insights::refresh::refresh(&app.sources, crate::helpers::as_of()).await.expect("fit");
    let frontend = app.token(Role::Frontend, Some("customers:read orders:read tickets:read insights:read"), None);
    let ranked = app
        .query_as(
            &frontend,
            "{ customers(first: 3, orderBy: {churnRisk: DESC}) { edges { cursor node { insights { churnRisk } } } } }",
            json!({}),
        )
        .await;
    let ranked = ranked["data"]["customers"]["edges"].as_array().cloned().unwrap_or_default();
    assert_eq!(ranked.len(), 3, "a ranked page");
    for edge in &ranked {
        let text = readable(edge["cursor"].as_str().expect("cursor"));
        let risk = edge["node"]["insights"]["churnRisk"].as_f64().unwrap_or(0.5);
        assert!(!text.contains("rk:") && !text.contains(&format!("{:x}", risk.to_bits())), "{text}");
    }
}
