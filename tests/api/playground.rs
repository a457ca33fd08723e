//! The analysts' playground: its page and assets under a strict Content-Security-Policy,
//! development tokens for its sign-in (in development only), and its saved queries, each
//! of which must run for an analyst and for an admin.

use c360::auth::Role;
use c360::config::{Environment, KeyFile};
use c360::insights::refresh;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, as_of, codes};

#[tokio::test]
async fn the_page_is_served_under_a_strict_content_security_policy() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 0).await;
    let client = reqwest::Client::new();

    let page = client.get(format!("{}/", app.address)).send().await.expect("GET /");
    assert_eq!(page.status().as_u16(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers().get(name).map(|v| v.to_str().expect("ascii").to_owned()).unwrap_or_default()
    };
    assert!(header(&page, "content-type").starts_with("text/html"), "{:?}", page.headers());
    let csp = header(&page, "content-security-policy");
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let etag = header(&page, "etag");
    let html = page.text().await.expect("html");
    assert!(!html.contains("<script>") && !html.contains("http://") && !html.contains("https://"), "{html}");

    // Unchanged: 304 on revalidation.
    let again = client.get(format!("{}/", app.address)).header("if-none-match", &etag).send().await.expect("GET");
    assert_eq!(again.status().as_u16(), 304);

    // Every script and style the page names is served, with the same policy, for good.
    let assets: Vec<&str> = html.split('"').filter(|s| s.starts_with("/assets/")).collect();
    for asset in &assets {
        let response = client.get(format!("{}{asset}", app.address)).send().await.expect("asset");
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable", "{asset}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let gzipped = client
            .get(format!("{}{asset}", app.address))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("asset");
        if asset.ends_with(".js") {
            assert_eq!(header(&gzipped, "content-encoding"), "gzip", "{asset}");
        }
    }
    let missing = client.get(format!("{}/assets/nothing.js", app.address)).send().await.expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
    let escape = client.get(format!("{}/../Cargo.toml", app.address)).send().await.expect("GET");
    assert_eq!(escape.status().as_u16(), 404);
}

#[tokio::test]
async fn development_tokens_are_minted_in_development_only() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 30).await;
    let client = reqwest::Client::new();
    let mint = |body: Value| client.post(format!("{}/dev/token", app.address)).json(&body).send();

    let viewers: Value =
        client.get(format!("{}/dev/viewers", app.address)).send().await.expect("GET").json().await.expect("JSON");
    let roles: Vec<&str> =
        viewers["roles"].as_array().expect("roles").iter().filter_map(|r| r["role"].as_str()).collect();
    assert_eq!(roles, ["admin", "agent", "frontend", "analyst", "partner"]);
    assert_eq!(viewers["partners"], json!(["acme-insurance", "northwind-travel"]));

    let minted: Value =
        mint(json!({ "role": "analyst", "ttlSeconds": 60 })).await.expect("POST").json().await.expect("JSON");
    assert_eq!(minted["role"], "analyst");
    assert!(minted["scopes"].as_array().expect("scopes").contains(&json!("insights:read")), "{minted}");
    let token = minted["token"].as_str().expect("token");
    let count = "{ customers(first: 1) { totalCount } }";
    let body = app.query_as(token, count, json!({})).await;
    assert_eq!(body["data"], app.data(count, json!({})).await, "the analyst counts whom the admin counts");

    let partner: Value = mint(json!({ "role": "partner", "partner": "acme-insurance" }))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(partner["partner"], "acme-insurance");
    for bad in [
        json!({ "role": "partner" }),
        json!({ "role": "admin", "partner": "x" }),
        json!({ "role": "root" }),
        json!({ "role": "admin", "ttlSeconds": 0 }),
        json!({ "role": "admin", "ttlSeconds": 86_401 }),
    ] {
        let response = mint(bad.clone()).await.expect("POST");
        assert_eq!(response.status().as_u16(), 400, "{bad}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(codes(&body), ["BAD_REQUEST"], "{bad}");
    }

    // In production there is no such route.
    let keys = tempfile::tempdir().expect("dir");
    let secret = keys.path().join("hmac.key");
    std::fs::write(&secret, "a production secret of thirty-two bytes or more").expect("write");
    let ids_key = keys.path().join("ids.key");
    std::fs::write(&ids_key, "the production ids key, thirty-two bytes or more").expect("write");
    let production = TestApp::spawn_with(Layout::all(Backend::Sqlite), 0, |c| {
        c.environment = Environment::Production;
        c.ids.key_file = Some(ids_key);
        c.auth.development_key = false;
        let file = KeyFile { kid: "k1".into(), algorithm: jsonwebtoken::Algorithm::HS256, file: secret };
        c.auth.hmac_keys = vec![file];
    })
    .await;
    for path in ["/dev/viewers", "/dev/token"] {
        let response = client
            .post(format!("{}{path}", production.address))
            .json(&json!({ "role": "admin" }))
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status().as_u16(), 404, "{path}");
        let response = client.get(format!("{}{path}", production.address)).send().await.expect("GET");
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
}

/// A page on another name that resolves to the hub (DNS rebinding) is same-origin with
/// it in the browser: the development endpoints answer only requests addressed to the
/// hub's own listen address, and mint tokens for JSON bodies only (a form or `text/plain`
/// body is a request a page elsewhere may send without asking).
#[tokio::test]
async fn development_endpoints_answer_only_the_hubs_own_host() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 0).await;
    let port = app.address.rsplit(':').next().expect("port").to_owned();
    let client = reqwest::Client::new();
    let mint = |host: String, media: &'static str| {
        client
            .post(format!("{}/dev/token", app.address))
            .header("host", host)
            .header("content-type", media)
            .body(r#"{"role":"admin","ttlSeconds":86400}"#)
            .send()
    };

    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
        let response = mint(host.clone(), "application/json").await.expect("POST");
        assert_eq!(response.status().as_u16(), 200, "{host}");
    }
    let other_port = format!("127.0.0.1:{}", port.parse::<u16>().expect("port").wrapping_add(1));
    for host in [format!("attacker.example:{port}"), "attacker.example".to_owned(), other_port] {
        let response = mint(host.clone(), "application/json").await.expect("POST");
        assert_eq!(response.status().as_u16(), 421, "{host}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(codes(&body), ["MISDIRECTED_REQUEST"], "{host}");
        let viewers =
            client.get(format!("{}/dev/viewers", app.address)).header("host", host.clone()).send().await.expect("GET");
        assert_eq!(viewers.status().as_u16(), 421, "{host}");
    }

    for media in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let response = mint(format!("127.0.0.1:{port}"), media).await.expect("POST");
        assert_eq!(response.status().as_u16(), 415, "{media}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(codes(&body), ["UNSUPPORTED_MEDIA_TYPE"], "{media}");
    }
}

/// The saved queries shipped in `playground/queries/`.
fn saved_queries() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/queries");
    let mut queries: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("playground/queries")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "graphql"))
        .map(|path| {
            (
                path.file_name().expect("name").to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).expect("read"),
            )
        })
        .collect();
    queries.sort();
    queries
}

#[tokio::test]
async fn every_saved_query_runs_for_analysts_and_admins() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 300).await;
    refresh::refresh(&app.sources, as_of()).await.expect("fit");
    let queries = saved_queries();
    assert!(queries.len() >= 8, "the issue's eight saved queries: {queries:?}");
    for role in [Role::Analyst, Role::Admin] {
        let token = app.token(role, None, None);
        for (name, query) in &queries {
            if query.lines().any(|l| l.starts_with("subscription")) {
                // Over an event stream, as the playground runs it: it opens, and nothing
                // it asks for is refused (a refusal would come at once).
                let mut stream = reqwest::Client::new()
                    .post(format!("{}/graphql", app.address))
                    .header("authorization", format!("Bearer {token}"))
                    .header("accept", "text/event-stream")
                    .json(&json!({ "query": query }))
                    .send()
                    .await
                    .expect("the stream opens");
                assert_eq!(stream.status(), 200, "{name} as {role}");
                let first = tokio::time::timeout(std::time::Duration::from_millis(500), stream.chunk()).await;
                if let Ok(Ok(Some(chunk))) = first {
                    let text = String::from_utf8_lossy(&chunk);
                    assert!(!text.contains("errors"), "{name} as {role}: {text}");
                }
                continue;
            }
            let body = app.query_as(&token, query, json!({})).await;
            // A list filtered down to fewer than k customers is not shown to analysts
            // (k-anonymity, README: Threat model); admins get it.
            if role == Role::Analyst
                && query.contains("filter:")
                && body["errors"][0]["extensions"]["code"] == "GROUP_TOO_SMALL"
            {
                continue;
            }
            assert!(body.get("errors").is_none(), "{name} as {role}: {body:#}");
            let data = body["data"].as_object().expect("data");
            assert!(!data.is_empty() && data.values().all(|v| !v.is_null()), "{name} as {role}: {body:#}");
        }
    }
}
