//! Bad input gets typed errors; unknown ids get null; nothing leaks.

use c360::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, codes};

#[tokio::test]
async fn bad_input_gets_typed_errors_and_unknown_ids_get_null() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 30).await;

    let cases = [
        ("{ customer(id: \"not-an-id\") { id } }", "INVALID_ID"),
        // A well-formed id of another type.
        ("{ customer(id: \"T3JkZXI6MQ\") { id } }", "INVALID_ID"),
        ("{ node(id: \"UGxhbmV0OjE\") { id } }", "INVALID_ID"),
        ("{ customers(first: 101) { totalCount } }", "PAGE_SIZE_OUT_OF_RANGE"),
        ("{ customers(first: -1) { totalCount } }", "PAGE_SIZE_OUT_OF_RANGE"),
        ("{ customers(after: \"bm9wZQ\") { totalCount } }", "INVALID_CURSOR"),
        ("{ customers(first: 1) { edges { node { orders(first: 500) { totalCount } } } } }", "PAGE_SIZE_OUT_OF_RANGE"),
        ("{ customers(first: 1) { edges { node { tickets(after: \"xyz\") { totalCount } } } } }", "INVALID_CURSOR"),
        ("{ customerByEmail(email: \"no at sign\") { id } }", "BAD_USER_INPUT"),
    ];
    // Every field skipped: the operation ran, so `data` is an (empty) object, not null.
    let skipped = app.query("{ __typename @skip(if: true) }", json!({})).await;
    assert_eq!((&skipped["data"], skipped.get("errors")), (&json!({}), None), "{skipped}");

    for (query, code) in cases {
        let response = app.query(query, json!({})).await;
        assert!(codes(&response).contains(&code.to_owned()), "{query}: {response:#}");
        let text = response.to_string().to_lowercase();
        for leak in ["select ", "sqlx", "sqlite", "syntax", "panicked"] {
            assert!(!text.contains(leak), "{query} leaked `{leak}`: {response}");
        }
    }

    // Errors of the request as a whole carry a code too: a syntax error, an unknown field,
    // an operation that is not there.
    let requests = [
        ("{ customers(first: 1) { ", "GRAPHQL_PARSE_FAILED"),
        ("{ customers(first: 1) { nope } }", "GRAPHQL_VALIDATION_FAILED"),
        ("query A { __typename } query B { __typename }", "GRAPHQL_VALIDATION_FAILED"),
        // Once, though async-graphql's validation reports it on each of its two walks.
        ("subscription { __typename }", "GRAPHQL_VALIDATION_FAILED"),
    ];
    for (query, code) in requests {
        let response = app.query(query, json!({})).await;
        assert_eq!(codes(&response), [code], "{query}: {response:#}");
        assert!(response["data"].is_null(), "{query}: {response:#}");
    }

    // A cursor of one list is refused by another.
    let page = app
        .data("{ customers(first: 1) { edges { node { orders(first: 1) { pageInfo { endCursor } } } } } }", json!({}))
        .await;
    if let Some(order_cursor) = page["customers"]["edges"][0]["node"]["orders"]["pageInfo"]["endCursor"].as_str() {
        let response =
            app.query("query($a: String) { customers(after: $a) { totalCount } }", json!({ "a": order_cursor })).await;
        assert_eq!(codes(&response), ["INVALID_CURSOR"]);
    }

    // Unknown but well-formed ids and keys are simply not there.
    let unknown = app.ids().global_id(c360::graphql::ids::Kind::Customer, &uuid::Uuid::now_v7().to_string());
    let data =
        app.data("query($id: ID!) { customer(id: $id) { id } node(id: $id) { id } }", json!({ "id": unknown })).await;
    assert!(data["customer"].is_null() && data["node"].is_null());
    let order = app.ids().global_id(c360::graphql::ids::Kind::Order, "999999999999");
    assert!(app.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": order })).await["node"].is_null());
    let data = app
        .data("{ a: customerBySourceKey(source: SHOP, key: \"424242\") { id } b: customerBySourceKey(source: CRM, key: \"abc\") { id } c: customerByEmail(email: \"nobody@example.com\") { id } }", json!({}))
        .await;
    assert!(data["a"].is_null() && data["b"].is_null() && data["c"].is_null(), "{data:#}");
}

#[tokio::test]
async fn an_unreachable_source_is_a_clear_startup_error() {
    let mut config = c360::config::Config::default();
    let dir = tempfile::tempdir().expect("temp dir");
    config.data_dir = dir.path().to_owned();
    config.sources.insert(c360::sources::SourceName::Shop, "postgres://root:secret@127.0.0.1:1/shop".into());
    config.database.connect_timeout = std::time::Duration::from_secs(2);
    let error =
        c360::sources::Sources::connect(&config, c360::sources::Migrate::All).await.expect_err("port 1 is closed");
    let message = error.to_string();
    assert!(message.starts_with("shop database"), "{message}");
    assert!(!message.contains("secret"), "credentials leaked: {message}");
}

/// GraphQL over HTTP: POST takes JSON bodies only, GET runs queries only, and what is
/// refused is refused before anything runs, with a JSON error and a code.
#[tokio::test]
async fn http_takes_json_posts_and_query_only_gets() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let client = reqwest::Client::new();
    let url = format!("{}/graphql", app.address);
    let bearer = format!("Bearer {}", app.admin);
    let id =
        app.data("{ customers(first: 1) { edges { node { id } } } }", json!({})).await["customers"]["edges"][0]["node"]
            ["id"]
            .as_str()
            .expect("a customer")
            .to_owned();
    let notes = "query($id: ID!) { customer(id: $id) { notes(first: 50) { totalCount } } }";
    let count = |data: Value| data["customer"]["notes"]["totalCount"].as_i64().expect("notes");
    let before = count(app.data(notes, json!({ "id": id })).await);

    // A mutation over GET: 405, and nothing written.
    let mutation = "mutation($id: ID!) { addNote(customerId: $id, body: \"via GET\") { body } }";
    let variables = json!({ "id": id }).to_string();
    let response = client
        .get(&url)
        .query(&[("query", mutation), ("variables", variables.as_str())])
        .header("authorization", &bearer)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(codes(&body), ["METHOD_NOT_ALLOWED"]);
    assert_eq!(count(app.data(notes, json!({ "id": id })).await), before);

    // GET picks the operation named.
    let two = "query A { __typename } mutation B { __typename }";
    let response =
        client.get(&url).query(&[("query", two), ("operationName", "A")]).header("authorization", &bearer).send().await;
    let body: Value = response.expect("GET").json().await.expect("JSON");
    assert_eq!(body["data"]["__typename"], "Query", "{body:#}");
    let response =
        client.get(&url).query(&[("query", two), ("operationName", "B")]).header("authorization", &bearer).send().await;
    assert_eq!(response.expect("GET").status().as_u16(), 405);

    // POST bodies other than JSON: 415, nothing run.
    let query = json!({ "query": mutation, "variables": { "id": id } }).to_string();
    for content_type in [None, Some("text/plain"), Some("multipart/form-data; boundary=x"), Some("application/xml")] {
        let mut request = client.post(&url).header("authorization", &bearer).body(query.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("POST");
        assert_eq!(response.status().as_u16(), 415, "{content_type:?}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(codes(&body), ["UNSUPPORTED_MEDIA_TYPE"], "{content_type:?}");
    }
    assert_eq!(count(app.data(notes, json!({ "id": id })).await), before);

    // JSON that is not a GraphQL request: 400 with a code, no parser internals.
    for body in ["{\"query\": ", "[1, 2]", "\"text\""] {
        let response = client
            .post(&url)
            .header("authorization", &bearer)
            .header("content-type", "application/json; charset=utf-8")
            .body(body)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status().as_u16(), 400, "{body}");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(codes(&answer), ["BAD_REQUEST"], "{body}");
        assert!(!answer.to_string().contains("EOF"), "{answer}");
    }
}

/// The response's media type follows `Accept`; under application/graphql-response+json a
/// request that fails as a whole is a 400 without `data`.
#[tokio::test]
async fn responses_follow_the_accept_header() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let client = reqwest::Client::new();
    let url = format!("{}/graphql", app.address);
    let bearer = format!("Bearer {}", app.admin);
    let send = |accept: Option<&'static str>, query: &'static str| {
        let mut request = client.post(&url).header("authorization", &bearer).json(&json!({ "query": query }));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send()
    };
    let graphql_response = "application/graphql-response+json; charset=utf-8";
    let json = "application/json; charset=utf-8";
    let cases = [
        // Nothing asked for, or anything: application/json, as the spec recommends.
        (None, "{ __typename }", 200, json),
        (Some("*/*"), "{ __typename }", 200, json),
        (None, "{ __typename ", 200, json),
        (Some("application/graphql-response+json"), "{ __typename }", 200, graphql_response),
        (Some("application/json"), "{ __typename }", 200, json),
        (Some("text/html, application/json;q=0.9"), "{ nope }", 200, json),
        (Some("application/graphql-response+json"), "{ nope }", 400, graphql_response),
        (Some("application/graphql-response+json, application/json"), "{ __typename ", 400, graphql_response),
    ];
    for (accept, query, status, content_type) in cases {
        let response = send(accept, query).await.expect("POST");
        assert_eq!(response.status().as_u16(), status, "{accept:?} {query}");
        assert_eq!(response.headers()["content-type"], content_type, "{accept:?} {query}");
        let body: Value = response.json().await.expect("JSON");
        if query == "{ __typename }" {
            assert_eq!(body["data"]["__typename"], "Query");
        } else {
            // Failed as a whole: errors, and no `data` entry at all.
            assert!(body.get("data").is_none() && !codes(&body).is_empty(), "{body:#}");
        }
    }
    for accept in ["text/html", "application/graphql-response+json;q=0"] {
        let response = send(Some(accept), "{ __typename }").await.expect("POST");
        assert_eq!(response.status().as_u16(), 406, "{accept}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(codes(&body), ["NOT_ACCEPTABLE"]);
    }
}

/// Response fields come in the order of the selection set (GraphQL's ordered result map),
/// over HTTP in both media types.
#[tokio::test]
async fn fields_keep_the_order_of_the_selection_set() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let query = "{ zulu: __typename customers(first: 1) { totalCount edges { node { id } } } alpha: __typename }";
    for accept in ["application/json", "application/graphql-response+json"] {
        let response = reqwest::Client::new()
            .post(format!("{}/graphql", app.address))
            .header("authorization", format!("Bearer {}", app.admin))
            .header("accept", accept)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("POST");
        let text = response.text().await.expect("body");
        let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap_or_else(|| panic!("{key} in {text}"));
        assert!(at("zulu") < at("customers") && at("customers") < at("alpha"), "{accept}: {text}");
        assert!(at("totalCount") < at("edges"), "{accept}: {text}");
    }
}

/// What the fuzzer (`bench/fuzz/fuzz.py`) found, each now answered with a typed error.
#[tokio::test]
async fn what_the_fuzzer_found_is_refused_cleanly() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let partner = format!("Bearer {}", app.token(Role::Partner, None, Some("acme-insurance")));
    let agent = app.token(Role::Agent, None, None);

    // A value nested 400 deep overflowed the parser's stack and killed the process.
    let deep = format!("{{ customers(filter: {}) {{ totalCount }} }}", "[".repeat(400));
    let (status, body) = app.post(Some(&partner), json!({ "query": deep })).await;
    assert_eq!((status, codes(&body)), (200, vec!["LIMIT_EXCEEDED".to_owned()]), "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "nesting");
    let (status, _) = app.post(Some(&partner), json!({ "query": "{ __typename }" })).await;
    assert_eq!(status, 200, "the hub still serves");

    // A hidden input field in a variable's default was applied (agents have no insights);
    // and with the variable sent, the default went unchecked, where an unknown field in a
    // default is refused: hidden and unknown told apart (the million-document run).
    let filtered = |field: &str| {
        format!("query($f: CustomerFilter = {{{field}: TOP}}) {{ customers(first: 1, filter: $f) {{ totalCount }} }}")
    };
    for variables in [json!({}), json!({ "f": {} })] {
        let refused = app.query_as(&agent, &filtered("valueTier"), variables.clone()).await;
        assert_eq!(codes(&refused), ["GRAPHQL_VALIDATION_FAILED"], "{refused:#}");
        assert!(refused.get("data").is_none_or(Value::is_null), "{refused:#}");
        let unknown = app.query_as(&agent, &filtered("valueTeir"), variables).await;
        assert_eq!(
            refused.to_string().replace("valueTier", "valueTeir"),
            unknown.to_string(),
            "{refused:#}\n{unknown:#}"
        );
    }

    // Parse errors: a position, not the parser's trace.
    let broken = app.query_as(&agent, "}", json!({})).await;
    assert_eq!(broken["errors"][0]["message"], "syntax error at line 1, column 1", "{broken:#}");
    assert_eq!(codes(&broken), ["GRAPHQL_PARSE_FAILED"]);

    // Coercion errors of arguments and variables carry a code.
    for (query, variables) in [
        ("{ customers(first: 99999999999) { totalCount } }", json!({})),
        ("query($v: ID!) { node(id: $v) { id } }", json!({})),
        ("{ auditLog(since: \"\") { totalCount } }", json!({})),
    ] {
        let body = app.query(query, variables).await;
        let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{query}: {body:#}"));
        assert!(errors.iter().all(|e| e["extensions"]["code"].is_string()), "{query}: {body:#}");
    }

    // Other methods: 405 as JSON.
    let put = reqwest::Client::new().put(format!("{}/graphql", app.address)).send().await.expect("PUT");
    assert_eq!(put.status().as_u16(), 405);
    let body: Value = put.json().await.expect("JSON");
    assert_eq!(codes(&body), ["METHOD_NOT_ALLOWED"]);
}
