//! The test harness: `TestApp::spawn` starts the real server on port 0 over fresh
//! databases (SQLite files in a temp dir; PostgreSQL and MySQL databases with unique
//! names, dropped afterwards), seeded and resolved.

use std::path::Path;
use std::sync::OnceLock;

use c360::auth::Role;
use c360::auth::token::TokenRequest;
use c360::config::Config;
use c360::http::Application;
use c360::identity::Resolver;
use c360::request::Engine;
use c360::seed::{SeedOptions, seed};
use c360::sources::{DbName, Sources};
use chrono::NaiveDate;
use serde_json::{Value, json};
use sqlx::Connection;

/// A database engine for one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

impl Backend {
    fn admin_url(self) -> Option<String> {
        let var = match self {
            Backend::Sqlite => return None,
            Backend::Postgres => "C360_TEST_POSTGRES_URL",
            Backend::Mysql => "C360_TEST_MYSQL_URL",
        };
        std::env::var(var).ok().filter(|u| !u.is_empty())
    }

    /// The server's admin URL. Tests on PostgreSQL and MySQL are `#[ignore]`d, so
    /// `cargo test` lists them as skipped; asked for (`-- --include-ignored`), they need
    /// their URL, and fail without it rather than pass without running.
    fn required_url(self) -> Option<String> {
        let url = self.admin_url();
        if self != Backend::Sqlite && url.is_none() {
            panic!(
                "{self:?} tests need C360_TEST_POSTGRES_URL / C360_TEST_MYSQL_URL \
                 (run them with `cargo test -- --include-ignored` where the servers are)"
            );
        }
        url
    }
}

/// A server database created for one test, dropped when the test ends (even on panic).
struct TempDb {
    backend: Backend,
    admin: String,
    name: String,
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let (backend, admin, name) = (self.backend, self.admin.clone(), self.name.clone());
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let sql = format!("drop database if exists {name}");
                match backend {
                    Backend::Postgres => {
                        if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                            let _ = sqlx::query(&format!("{sql} with (force)")).execute(&mut c).await;
                        }
                    }
                    Backend::Mysql => {
                        if let Ok(mut c) = sqlx::MySqlConnection::connect(&admin).await {
                            // Like PostgreSQL's `with (force)`: the test's pools may still
                            // hold connections (even mid-transaction, on the runtime this
                            // drop blocks), and `drop database` would wait for them forever.
                            let ids: Vec<(u64,)> =
                                sqlx::query_as("select id from information_schema.processlist where db = ?")
                                    .bind(&name)
                                    .fetch_all(&mut c)
                                    .await
                                    .unwrap_or_default();
                            for (id,) in ids {
                                let _ = sqlx::query(&format!("kill {id}")).execute(&mut c).await;
                            }
                            let _ = sqlx::query("set session lock_wait_timeout = 10").execute(&mut c).await;
                            let _ = sqlx::query(&sql).execute(&mut c).await;
                        }
                    }
                    Backend::Sqlite => {}
                }
            })
        })
        .join();
    }
}

/// Replaces the database name (the URL's path) of a server URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map(|(b, q)| (b, Some(q))).unwrap_or((url, None));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..].find('/').map(|i| i + scheme_end).unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn create_database(backend: Backend, dir: &Path, label: &str) -> (String, Option<TempDb>) {
    let Some(admin) = backend.required_url() else {
        return (format!("sqlite:{}", dir.join(format!("{label}.db")).display()), None);
    };
    let name = format!("c360_t_{}_{label}", uuid::Uuid::new_v4().simple());
    let sql = format!("create database {name}");
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL reachable");
            sqlx::query(&sql).execute(&mut c).await.expect("create PostgreSQL database");
        }
        Backend::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(&admin).await.expect("MySQL reachable");
            sqlx::query(&format!("{sql} character set utf8mb4 collate utf8mb4_unicode_ci"))
                .execute(&mut c)
                .await
                .expect("create MySQL database");
        }
        Backend::Sqlite => unreachable!(),
    }
    let url = with_database(&admin, &name);
    (url, Some(TempDb { backend, admin, name }))
}

/// Where each database of a test deployment lives.
#[derive(Debug, Clone, Copy)]
pub struct Layout([Backend; DbName::COUNT]);

impl Layout {
    /// Every database on `backend`.
    pub fn all(backend: Backend) -> Self {
        Layout([backend; DbName::COUNT])
    }

    /// Every database on `backend`, but those named in `others`.
    pub fn mixed(backend: Backend, others: &[(DbName, Backend)]) -> Self {
        let mut layout = Layout::all(backend);
        for (db, other) in others {
            layout.0[*db as usize] = *other;
        }
        layout
    }
}

/// Fixed "today" of the seeded data, so tests see the same data every day.
pub fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
}

pub struct TestApp {
    pub address: String,
    pub sources: Sources,
    pub resolver: Resolver,
    client: reqwest::Client,
    /// The configuration the server runs with (its development key signs test tokens).
    pub config: Config,
    /// An admin token with every scope.
    pub admin: String,
    _dbs: Vec<TempDb>,
    _dir: tempfile::TempDir,
    server: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl TestApp {
    /// Fresh databases in `layout`, seeded with `customers` demo people and resolved,
    /// and the server listening on a free port with statement tracing on.
    pub async fn spawn(layout: Layout, customers: u64) -> TestApp {
        Self::spawn_with(layout, customers, |_| {}).await
    }

    /// Like `spawn`, with the configuration adjusted by `configure` before the server starts.
    pub async fn spawn_with(layout: Layout, customers: u64, configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_connected(layout, customers, |_| {}, configure).await
    }

    /// Like `spawn_with`, with the configuration also adjusted by `connect` before the
    /// databases are connected (their URLs and pool settings).
    pub async fn spawn_connected(
        layout: Layout,
        customers: u64,
        connect: impl FnOnce(&mut Config),
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut dbs = Vec::new();
        let mut config = Config { data_dir: dir.path().to_owned(), trace_sql: true, ..Config::default() };
        // The demo's partners, and those the tests make up.
        config.partners.extend(["globex", "test-partner", "audit-test"].map(str::to_owned));
        config.listen = "127.0.0.1:0".parse().expect("address");
        config.identity.resolve_interval = std::time::Duration::ZERO;
        // No alert detection but in the tests that ask for it: a poll a second in every
        // test's hub is load the others run under.
        config.alerts.poll_interval = std::time::Duration::ZERO;
        for db in DbName::ALL {
            let (url, temp) = create_database(layout.0[db as usize], dir.path(), &db.to_string()).await;
            dbs.extend(temp);
            match db.source() {
                Some(source) => {
                    config.sources.insert(source, url.into());
                }
                None => config.hub = Some(url.into()),
            }
        }
        connect(&mut config);
        let sources = Sources::connect(&config, c360::sources::Migrate::All).await.expect("connect and migrate");
        if customers > 0 {
            let options = SeedOptions { customers, seed: 7, as_of: as_of(), progress: false };
            seed(&sources, &options).await.expect("seed");
        }
        let resolver = Resolver::new(sources.clone(), config.identity.default_region.clone(), 700);
        resolver.run().await.expect("resolve");

        configure(&mut config);
        let hub = Engine::new(config.clone(), sources.clone()).expect("policy");
        let app = Application::build(config.clone(), hub).await.expect("bind");
        let address = format!("http://{}", app.local_addr().expect("address"));
        let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = app
                .run_until(async move {
                    let _ = stopping.await;
                })
                .await;
        });
        let mut app = TestApp {
            address,
            sources,
            resolver,
            client: reqwest::Client::new(),
            config,
            admin: String::new(),
            _dbs: dbs,
            _dir: dir,
            server: std::sync::Mutex::new(Some(server)),
            stop: std::sync::Mutex::new(Some(stop)),
        };
        // Production refuses the development key: tests of it sign their own tokens.
        if app.config.environment == c360::config::Environment::Development && app.config.auth.development_key {
            app.admin = app.token(Role::Admin, None, None);
        }
        app
    }

    /// The hub's ids and cursors, sealed with its keys (for ids of nobody, say).
    pub fn ids(&self) -> c360::graphql::ids::Ids {
        c360::graphql::ids::Ids::load(&self.config).expect("the ids key")
    }

    /// A development token for `role` with `scope` (the role's usual scopes when `None`).
    pub fn token(&self, role: Role, scope: Option<&str>, partner: Option<&str>) -> String {
        self.partner_token(role, scope, partner, None)
    }

    /// A development token limited to a consent `purpose`.
    pub fn partner_token(
        &self,
        role: Role,
        scope: Option<&str>,
        partner: Option<&str>,
        purpose: Option<&str>,
    ) -> String {
        let request = TokenRequest {
            subject: format!("test-{role}"),
            role,
            scope: scope.unwrap_or(role.default_scopes()).to_owned(),
            partner: partner.map(str::to_owned),
            purpose: purpose.map(str::to_owned),
            ttl: std::time::Duration::from_secs(600),
        };
        c360::auth::token::mint_development(&self.config, &request).expect("mint token")
    }

    /// A development token of `subject` in `role` (its usual scopes, no partner), valid
    /// for `ttl`.
    pub fn subject_token(&self, subject: &str, role: Role, ttl: std::time::Duration) -> String {
        let request = TokenRequest {
            subject: subject.to_owned(),
            role,
            scope: role.default_scopes().to_owned(),
            partner: None,
            purpose: None,
            ttl,
        };
        c360::auth::token::mint_development(&self.config, &request).expect("mint token")
    }

    /// Posts a GraphQL query as an admin; returns the whole JSON response (data, errors,
    /// extensions).
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        self.query_as(&self.admin, query, variables).await
    }

    /// Posts a GraphQL query with `token`.
    pub async fn query_as(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) =
            self.post(Some(&format!("Bearer {token}")), json!({ "query": query, "variables": variables })).await;
        assert_eq!(status, 200, "{body:#}");
        body
    }

    /// Posts `body` to `/graphql` with this `Authorization` header; returns status and JSON.
    pub async fn post(&self, authorization: Option<&str>, body: Value) -> (u16, Value) {
        let response = self.send(authorization, body).await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON response"))
    }

    /// Posts a query with `token`; returns the response and its `x-request-id`.
    pub async fn query_with_id(&self, token: &str, query: &str, variables: Value) -> (Value, String) {
        let body = json!({ "query": query, "variables": variables });
        let response = self.send(Some(&format!("Bearer {token}")), body).await.expect("request");
        assert_eq!(response.status().as_u16(), 200);
        let id = response.headers().get("x-request-id").expect("x-request-id").to_str().expect("ascii").to_owned();
        (response.json().await.expect("JSON response"), id)
    }

    /// Posts `body` as is; fails only when the server cannot be reached.
    pub async fn send(&self, authorization: Option<&str>, body: Value) -> reqwest::Result<reqwest::Response> {
        // `application/json`: every GraphQL response is a 200, whatever its errors.
        let mut request =
            self.client.post(format!("{}/graphql", self.address)).header("accept", "application/json").json(&body);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send().await
    }

    /// Shuts the server down gracefully (as on SIGTERM) and waits until it has finished.
    pub async fn stop(&self) {
        if let Some(stop) = self.stop.lock().expect("lock").take() {
            let _ = stop.send(());
        }
        let server = self.server.lock().expect("lock").take();
        if let Some(server) = server {
            let _ = server.await;
        }
    }

    /// Like `query`, but fails the test on any GraphQL error.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let response = self.query(query, variables).await;
        assert!(response.get("errors").is_none(), "unexpected errors: {response:#}");
        response["data"].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().ok().and_then(|mut s| s.take()) {
            server.abort();
        }
    }
}

fn init_tracing() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    });
}

/// The SQL statements a response took (`C360_TRACE_SQL`): the total, and by source.
pub fn statements(response: &Value) -> (u64, Value) {
    let by_source = response["extensions"]["sqlStatements"].clone();
    let total = by_source.as_object().expect("sqlStatements by source").values().map(|v| v.as_u64().unwrap_or(0)).sum();
    (total, by_source)
}

/// The error codes of a response, in order.
pub fn codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| e["extensions"]["code"].as_str().unwrap_or("NONE").to_owned()).collect())
        .unwrap_or_default()
}

/// Asserts that `message` is the error a name the schema does not have gets: `Unknown
/// field "field" on type "ty".`, with any "Did you mean" naming only fields of `ty` that
/// `token`'s viewer may see (read from its own introspection), never a hidden one.
pub async fn assert_unknown_field(app: &TestApp, token: &str, message: &Value, field: &str, ty: &str, context: &str) {
    let message = message.as_str().unwrap_or_else(|| panic!("{context}: no message"));
    let stem = format!("Unknown field \"{field}\" on type \"{ty}\".");
    let rest = message.strip_prefix(&stem).unwrap_or_else(|| panic!("{context}: {message}"));
    if rest.is_empty() {
        return;
    }
    let names = rest.strip_prefix(" Did you mean ").and_then(|r| r.strip_suffix('?'));
    let names: Vec<&str> =
        names.unwrap_or_else(|| panic!("{context}: {message}")).split('"').skip(1).step_by(2).collect();
    let visible =
        app.query_as(token, "query($t: String!) { __type(name: $t) { fields { name } } }", json!({ "t": ty })).await;
    let visible: Vec<&str> = visible["data"]["__type"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("{context}: introspection {visible:#}"))
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for name in names {
        assert!(
            visible.contains(&name) && name != field,
            "{context}: suggests `{name}`, which the viewer cannot see: {message}"
        );
    }
}
