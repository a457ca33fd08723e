//! Operation limits: documents over a limit are refused before they run, with a typed
//! error and a 400 under `application/graphql-response+json`; cost budgets differ by
//! role; a request's time is bounded.

use c360::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, codes};

/// Posts `query` as `token` asking for `application/graphql-response+json`: status, body.
async fn post(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// The limit a refused document exceeded, checking the refusal's shape on the way.
fn exceeded(status: u16, body: &Value) -> String {
    assert_eq!(status, 400, "{body:#}");
    assert!(body.get("data").is_none(), "refused before it ran: {body:#}");
    assert_eq!(codes(body), ["LIMIT_EXCEEDED"], "{body:#}");
    let extensions = &body["errors"][0]["extensions"];
    assert!(extensions["found"].as_u64() > extensions["max"].as_u64(), "{body:#}");
    extensions["limit"].as_str().expect("limit").to_owned()
}

#[tokio::test]
async fn documents_over_a_limit_are_refused_before_they_run() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 20, |c| {
        c.trace_sql = true;
        c.graphql.cost_by_role.insert("partner".to_owned(), 500);
    })
    .await;
    let admin = app.admin.clone();

    // Finding 6 of the hardening issue: a thousand aliased counts took the whole pool.
    let aliases: String = (0..1_000).map(|i| format!("a{i}: customers(first: 1) {{ totalCount }} ")).collect();
    let (status, body) = post(&app, &admin, &format!("{{ {aliases} }}")).await;
    assert_eq!(exceeded(status, &body), "root fields");
    assert!(body.get("extensions").and_then(|e| e.get("sqlStatements")).is_none(), "no statement ran: {body:#}");
    // Twenty are allowed, and answer.
    let aliases: String = (0..20).map(|i| format!("a{i}: customers(first: 1) {{ totalCount }} ")).collect();
    let (status, body) = post(&app, &admin, &format!("{{ {aliases} }}")).await;
    assert_eq!((status, body["data"]["a19"]["totalCount"].as_i64().is_some()), (200, true), "{body:#}");
    // Aliases below the root count too.
    let inner: String = (0..31).map(|i| format!("n{i}: totalCount ")).collect();
    let (status, body) = post(&app, &admin, &format!("{{ customers(first: 1) {{ {inner} }} }}")).await;
    assert_eq!(exceeded(status, &body), "aliases");

    // Depth counts inline fragments: seventeen nested `... on Customer` are too deep.
    let nested = |n: usize| {
        format!(
            "{{ customers(first: 1) {{ edges {{ node {{ {} id {} }} }} }} }}",
            "... on Customer { ".repeat(n),
            "} ".repeat(n)
        )
    };
    let (status, body) = post(&app, &admin, &nested(17)).await;
    assert_eq!(exceeded(status, &body), "depth");
    let (status, body) = post(&app, &admin, &nested(3)).await;
    assert_eq!(status, 200, "{body:#}");
    // A fragment spread many times counts every time.
    let many = format!(
        "{{ customers(first: 1) {{ {} }} }} fragment F on CustomerConnection {{ n: totalCount }}",
        "...F ".repeat(40)
    );
    let (status, body) = post(&app, &admin, &many).await;
    assert_eq!(exceeded(status, &body), "aliases");

    // Two thousand directives (three thousand are over the token limit before they are
    // parsed), and too many root fields.
    let directives = format!("{{ __typename {} }}", "@include(if: true) ".repeat(2_000));
    let (status, body) = post(&app, &admin, &directives).await;
    assert_eq!(exceeded(status, &body), "directives");
    let directives = format!("{{ __typename {} }}", "@include(if: true) ".repeat(3_000));
    let (status, body) = post(&app, &admin, &directives).await;
    assert_eq!(exceeded(status, &body), "tokens");
    let roots = format!("{{ {} }}", "customers(first: 1) { totalCount } ".repeat(21));
    let (status, body) = post(&app, &admin, &roots).await;
    assert_eq!(exceeded(status, &body), "root fields");

    // Cost is weighed by page sizes, against the role's budget: 100 customers with 100
    // orders each is within an admin's budget and over a partner's.
    let wide =
        "{ customers(first: 100) { edges { node { id orders(first: 100) { edges { node { id number } } } } } } }";
    let (status, body) = post(&app, &admin, wide).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body["data"]["customers"]["edges"].is_array(), "{body:#}");
    // A partner's budget (here 500, configured above): one page of 100 customers costs
    // 1 + 100 + 100 + 100, two cost twice that.
    let partner = app.token(Role::Partner, Some("customers:read"), Some("acme-insurance"));
    let page = "customers(first: 100) { edges { node { id } } }";
    let (status, body) = post(&app, &partner, &format!("{{ {page} }}")).await;
    assert_eq!(status, 200, "{body:#}");
    let (status, body) = post(&app, &partner, &format!("{{ a: {page} b: {page} }}")).await;
    assert_eq!(exceeded(status, &body), "cost");
    assert_eq!(body["errors"][0]["extensions"]["max"], 500, "the partners' budget: {body:#}");
    let (status, body) = post(&app, &admin, &format!("{{ a: {page} b: {page} }}")).await;
    assert_eq!(status, 200, "the admins' budget is larger: {body:#}");
    // A field hidden from partners costs what a name that does not exist costs: the
    // limit does not tell one from the other (notes' pages of ten would cross it).
    let hidden =
        |field: &str| format!("{{ customers(first: 40) {{ edges {{ node {{ {field} {{ totalCount }} }} }} }} }}");
    let (notes_status, notes) = post(&app, &partner, &hidden("notes")).await;
    let (nopes_status, nopes) = post(&app, &partner, &hidden("nopes")).await;
    assert_eq!((notes_status, codes(&notes)), (nopes_status, codes(&nopes)), "{notes:#} {nopes:#}");
    assert_eq!(codes(&notes), ["GRAPHQL_VALIDATION_FAILED"], "{notes:#}");
    // Page sizes in variables count as given.
    let variables = "query($n: Int!) { a: customers(first: $n) { edges { node { id } } } b: customers(first: $n) { edges { node { id } } } }";
    let send = |n: i64| {
        reqwest::Client::new()
            .post(format!("{}/graphql", app.address))
            .header("authorization", format!("Bearer {partner}"))
            .json(&json!({ "query": variables, "variables": { "n": n } }))
            .send()
    };
    let small: Value = send(50).await.expect("POST").json().await.expect("JSON");
    assert!(small.get("errors").is_none(), "{small:#}");
    let large: Value = send(100).await.expect("POST").json().await.expect("JSON");
    assert_eq!(codes(&large), ["LIMIT_EXCEEDED"], "{large:#}");
}

#[tokio::test]
async fn a_request_over_its_time_is_answered_with_timeout() {
    // A millisecond: a customer's whole 360 view for a hundred customers takes longer.
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 100, |c| {
        c.graphql.timeout = std::time::Duration::from_millis(1);
    })
    .await;
    let view =
        "{ customers(first: 100) { edges { node { id orders(first: 10) { edges { node { id number lines { sku } } } }
        tickets(first: 10) { edges { node { id subject } } } campaignResponses(first: 10) { totalCount } } } } }";
    let (status, body) = post(&app, &app.admin, view).await;
    assert_eq!((status, codes(&body)), (200, vec!["TIMEOUT".to_owned()]), "{body:#}");
    assert!(body["data"].is_null(), "nothing of the answer: {body:#}");
    // What needs no database is within it (given a few tries: on a loaded machine even
    // that can miss a millisecond now and then).
    let mut answers = Vec::new();
    for _ in 0..5 {
        let (status, body) = post(&app, &app.admin, "{ __typename }").await;
        if (status, &body["data"]["__typename"]) == (200, &json!("Query")) {
            answers.clear();
            break;
        }
        answers.push(body);
    }
    assert!(answers.is_empty(), "{answers:#?}");
}

#[tokio::test]
async fn each_token_is_held_to_its_rate() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 5, |c| {
        let partner = c360::config::RateLimit { operations_per_second: 1, burst: 5, ..Default::default() };
        c.rate_limits.roles.insert("partner".to_owned(), partner);
        let generous = c360::config::RateLimit { operations_per_second: 1, burst: 8, ..Default::default() };
        c.rate_limits.partners.insert("acme-insurance".to_owned(), generous);
    })
    .await;
    let send = |token: String| {
        let url = format!("{}/graphql", app.address);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .json(&json!({ "query": "{ customers(first: 1) { totalCount } }" }))
                .send()
                .await
                .expect("POST");
            let retry = response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
            (response.status().as_u16(), retry, response.json::<Value>().await.expect("JSON"))
        }
    };
    // A burst of eight partner operations: five pass, then 429 with Retry-After.
    let other = app.token(Role::Partner, Some("customers:read"), Some("globex"));
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (status, retry, body) = send(other.clone()).await;
        if status == 429 {
            assert_eq!(codes(&body), ["RATE_LIMITED"], "{body:#}");
            assert_eq!(retry.as_deref(), Some("1"), "{body:#}");
            assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 1);
            assert!(body.get("data").is_none(), "{body:#}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    // A partner with its own limits gets them; admins are not limited.
    let acme = app.token(Role::Partner, Some("customers:read"), Some("acme-insurance"));
    let mut passed = 0;
    for _ in 0..10 {
        passed += usize::from(send(acme.clone()).await.0 == 200);
    }
    assert_eq!(passed, 8);
    for _ in 0..20 {
        assert_eq!(send(app.admin.clone()).await.0, 200);
    }
}

/// `/metrics`: operations by name and outcome, rejections, statements per database and
/// the pools, in the Prometheus text format; no token or personal data in it.
#[tokio::test]
async fn operators_read_the_metrics() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 10).await;
    let profile = "query Profile { customers(first: 2) { edges { node { email } } } }";
    let (status, body) = post(&app, &app.admin, profile).await;
    assert_eq!(status, 200, "{body:#}");
    let roots = format!("{{ {} }}", "customers(first: 1) { totalCount } ".repeat(21));
    assert_eq!(post(&app, &app.admin, &roots).await.0, 400);
    let response = reqwest::get(format!("{}/metrics", app.address)).await.expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/plain"));
    let text = response.text().await.expect("text");
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series} in {text}"));
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a number")
    };
    assert_eq!(value(r#"c360_operations_total{operation="Profile",outcome="ok"}"#), 1.0);
    assert_eq!(value(r#"c360_operations_total{operation="anonymous",outcome="LIMIT_EXCEEDED"}"#), 1.0);
    assert_eq!(value(r#"c360_rejections_total{reason="limit"}"#), 1.0);
    assert!(value(r#"c360_statements_total{db="crm"}"#) >= 1.0);
    assert!(value(r#"c360_loader_batch_keys_count{loader="CustomerLoader"}"#) >= 1.0, "{text}");
    assert!(value(r#"c360_pool_wait_seconds_count{db="crm"}"#) >= 1.0, "{text}");
    assert!(value(r#"c360_operation_seconds_count{operation="Profile",outcome="ok"}"#) >= 1.0);
    assert!(text.contains(r#"c360_pool_connections{db="hub",state="idle"}"#), "{text}");
    let email = body["data"]["customers"]["edges"][0]["node"]["email"].as_str().expect("an email");
    assert!(!text.contains(email) && !text.contains(&app.admin), "no personal data, no tokens");

    // The model's age: none before a fit; after a fit elsewhere (another replica, here the
    // test), the model it would serve, before any request has asked for an insight.
    assert_eq!(value("c360_insight_model_age_seconds"), -1.0);
    c360::insights::refresh::refresh(&app.sources, crate::helpers::as_of()).await.expect("fit");
    let text = reqwest::get(format!("{}/metrics", app.address)).await.expect("GET").text().await.expect("text");
    let age = text.lines().find_map(|l| l.strip_prefix("c360_insight_model_age_seconds ")).expect("the gauge");
    assert!(age.parse::<f64>().expect("a number") >= 0.0, "{text}");
}

/// Introspection is for the roles `graphql.introspection_roles` names: by default not
/// for partners, whose clients have no use for it.
#[tokio::test]
async fn partners_do_not_introspect_by_default() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let partner = app.token(Role::Partner, Some("customers:read"), Some("acme-insurance"));
    for query in ["{ __schema { types { name } } }", "{ __type(name: \"Customer\") { name } }"] {
        let (status, body) = post(&app, &partner, query).await;
        assert_eq!(status, 400, "{body:#}");
        assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"], "{body:#}");
        assert!(body.get("data").is_none(), "{body:#}");
        let (status, body) = post(&app, &app.admin, query).await;
        assert_eq!(status, 200, "{body:#}");
        assert!(body["data"].is_object() && body.get("errors").is_none(), "{body:#}");
    }
    let (status, body) = post(&app, &partner, "{ __typename }").await;
    assert_eq!((status, &body["data"]["__typename"]), (200, &json!("Query")), "{body:#}");
}

#[tokio::test]
async fn suggestions_name_only_fields_the_viewer_may_see() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 3).await;
    let analyst = app.token(Role::Analyst, None, None);
    let partner = app.token(Role::Partner, None, Some("acme-insurance"));
    let message = |body: &Value| body["errors"][0]["message"].as_str().unwrap_or_default().to_owned();

    let (_, typo) = post(&app, &analyst, "{ customers(first: 1) { edges { node { insigths } } } }").await;
    assert!(message(&typo).ends_with("Did you mean \"insights\"?"), "{typo:#}");
    // `email` is close, and hidden from analysts: not named.
    let (_, hidden) = post(&app, &analyst, "{ customers(first: 1) { edges { node { emial } } } }").await;
    assert_eq!(message(&hidden), "Unknown field \"emial\" on type \"Customer\".", "{hidden:#}");
    let (_, shown) = post(&app, &app.admin, "{ customers(first: 1) { edges { node { emial } } } }").await;
    assert!(message(&shown).ends_with("Did you mean \"email\"?"), "{shown:#}");
    // Partners get none (graphql.suggestion_roles).
    let (_, none) = post(&app, &partner, "{ customers(first: 1) { edges { node { idd } } } }").await;
    assert_eq!(message(&none), "Unknown field \"idd\" on type \"Customer\".", "{none:#}");
}

/// Introspection's answer is bounded before it is built: a fourth nested list
/// (`possibleTypes { interfaces { … } }` multiplied the answer by four per hop, until the
/// process was killed) is refused, while graphql-js's full introspection query runs.
#[tokio::test]
async fn introspection_cannot_take_all_memory() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 3).await;
    let hops = (0..15).fold(String::from("name"), |inner, i| {
        format!("{} {{ {inner} }}", if i % 2 == 0 { "possibleTypes" } else { "interfaces" })
    });
    let (status, body) = post(&app, &app.admin, &format!("{{ __type(name: \"Node\") {{ {hops} }} }}")).await;
    assert_eq!(codes(&body), ["LIMIT_EXCEEDED"], "{status} {body:#}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("introspection lists limit of 3"), "{message}");

    let (status, body) = post(&app, &app.admin, include_str!("../fixtures/introspection.graphql")).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body.get("errors").is_none(), "{body:#}");
    assert!(body["data"]["__schema"]["types"].as_array().is_some_and(|t| t.len() > 50), "{body:#}");
}

/// A request refused before it runs (over a limit, not parsing, introspection where it is
/// not allowed) is charged to its token: a burst of them once all got `LIMIT_EXCEEDED`,
/// none `RATE_LIMITED`, however many.
#[tokio::test]
async fn refused_requests_count_against_the_rate() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 3, |c| {
        let partner = c360::config::RateLimit { operations_per_second: 1, burst: 5, ..Default::default() };
        c.rate_limits.roles.insert("partner".to_owned(), partner);
    })
    .await;
    let deep = (0..40).fold(String::from("id"), |inner, _| format!("orders(first: 1) {{ {inner} }}"));
    for (query, code) in [
        (format!("{{ customers(first: 1) {{ edges {{ node {{ {deep} }} }} }} }}"), "LIMIT_EXCEEDED"),
        ("{ customers(first: 1) { ".to_owned(), "GRAPHQL_PARSE_FAILED"),
        ("{ __schema { types { name } } }".to_owned(), "GRAPHQL_VALIDATION_FAILED"),
    ] {
        // A subject of its own for each kind: allowances are per subject.
        let request = c360::auth::token::TokenRequest {
            subject: format!("burst-{code}"),
            role: Role::Partner,
            scope: Role::Partner.default_scopes().to_owned(),
            partner: Some("acme-insurance".to_owned()),
            purpose: None,
            ttl: std::time::Duration::from_secs(600),
        };
        let partner = c360::auth::token::mint_development(&app.config, &request).expect("mint");
        let mut seen = Vec::new();
        for _ in 0..8 {
            let (_, body) = post(&app, &partner, &query).await;
            seen.push(codes(&body).first().cloned().unwrap_or_default());
        }
        let limited = seen.iter().filter(|c| *c == "RATE_LIMITED").count();
        assert_eq!((limited, &seen[0]), (3, &code.to_owned()), "{query}: {seen:?}");
    }
}

/// Only the operation that runs is validated and checked, with the fragments it spreads:
/// the others of the document cost their parsing and nothing more (a thousand operations
/// spreading one fan-out once took seconds, each validated in full).
#[tokio::test]
async fn only_the_operation_that_runs_is_checked() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 3).await;
    let document =
        "query A { ...X } query B { nope ...Y } fragment X on Query { __typename } fragment Y on Query { no }";
    let body = json!({ "query": document, "operationName": "A" });
    let response = app.send(Some(&format!("Bearer {}", app.admin)), body).await.expect("send");
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["data"], json!({ "__typename": "Query" }), "{answer:#}");
    for (name, message) in
        [(Value::Null, "Operation name required in request."), (json!("C"), "Unknown operation named \"C\"")]
    {
        let body = json!({ "query": document, "operationName": name });
        let response = app.send(Some(&format!("Bearer {}", app.admin)), body).await.expect("send");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(codes(&answer), ["GRAPHQL_VALIDATION_FAILED"], "{answer:#}");
        assert_eq!(answer["errors"][0]["message"], message, "{answer:#}");
    }
}

/// A partner of the test's own, limited to a burst of `burst`, its allowance kept in
/// `redis`; the partner's id.
fn limited_partner(c: &mut c360::config::Config, partner: &str, burst: u32, redis: &str) {
    c.partners.push(partner.to_owned());
    let limit = c360::config::RateLimit { operations_per_second: 1, burst, ..Default::default() };
    c.rate_limits.partners.insert(partner.to_owned(), limit);
    c.rate_limits.redis = Some(redis.to_owned().into());
}

#[tokio::test]
#[ignore = "needs Redis: set C360_TEST_REDIS_URL and run `cargo test -- --include-ignored`"]
async fn replicas_share_each_tokens_rate_through_redis() {
    let redis = std::env::var("C360_TEST_REDIS_URL").expect("C360_TEST_REDIS_URL");
    let partner = format!("rl-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let configure = |c: &mut c360::config::Config| limited_partner(c, &partner, 4, &redis);
    let (a, b) = (
        TestApp::spawn_with(Layout::all(Backend::Sqlite), 3, configure).await,
        TestApp::spawn_with(Layout::all(Backend::Sqlite), 3, configure).await,
    );
    let tokens = [&a, &b].map(|app| app.token(Role::Partner, Some("customers:read"), Some(&partner)));
    // Twelve operations of one token, alternating between two replicas: four pass in all
    // (five if a second went by), where each replica alone would have let four through.
    let mut passed = 0;
    for i in 0..12 {
        let app = [&a, &b][i % 2];
        let (status, body) = post(app, &tokens[i % 2], "{ __typename }").await;
        match status {
            200 => passed += 1,
            _ => assert_eq!(codes(&body), ["RATE_LIMITED"], "{body:#}"),
        }
    }
    assert!((4..=5).contains(&passed), "{passed} passed");
}

#[tokio::test]
async fn without_redis_each_replica_limits_on_its_own() {
    // Nothing listens on port 1: every call to Redis fails, and the replica's own
    // allowance decides (requests are served, not refused for want of Redis).
    let partner = "rl-fallback".to_owned();
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 3, |c| {
        limited_partner(c, &partner, 3, "redis://127.0.0.1:1");
    })
    .await;
    let token = app.token(Role::Partner, Some("customers:read"), Some(&partner));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(post(&app, &token, "{ __typename }").await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}
