//! The audit log: revealing reads are recorded (and masked or hidden ones are not), the
//! hub refuses to reveal while it cannot record, and a graceful shutdown loses nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use c360::auth::Role;
use c360::sources::SqlTrace;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, codes};

const LOG: &str = "query($c: ID, $s: String, $after: String) {
    auditLog(first: 50, customerId: $c, subject: $s, after: $after) {
        totalCount
        edges { cursor node { requestId subject role partner action customerId fields } }
        pageInfo { hasNextPage endCursor } } }";

/// The audit entries of one request, once the writer has stored them (it batches, so
/// this polls, for up to ten seconds).
pub(crate) async fn entries_of(app: &TestApp, request_id: &str) -> Vec<Value> {
    for _ in 0..200 {
        let log = app.data(LOG, json!({})).await;
        let found: Vec<Value> = log["auditLog"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"].clone())
            .filter(|n| n["requestId"] == request_id)
            .collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    vec![]
}

/// Waits until every entry queued before now is stored: a revealing admin read is made
/// and awaited (the writer stores in order).
async fn barrier(app: &TestApp, customer: &str) {
    let (_, id) = app
        .query_with_id(&app.admin, "query($id: ID!) { customer(id: $id) { email } }", json!({ "id": customer }))
        .await;
    assert!(!entries_of(app, &id).await.is_empty(), "the barrier read is recorded");
}

/// Subjects that appear in the log.
async fn subjects(app: &TestApp) -> BTreeSet<String> {
    let log = app.data(LOG, json!({})).await;
    log["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["subject"].as_str().expect("s").to_owned())
        .collect()
}

/// Customers with every contact and sensitive field filled in.
async fn full_customers(app: &TestApp, n: usize) -> Vec<String> {
    let page = app
        .data(
            "{ customers(first: 100) { edges { node { id email phone birthDate gender address { street postalCode } } } } }",
            json!({}),
        )
        .await;
    let full: Vec<String> = page["customers"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .filter(|n| ["email", "phone", "birthDate", "gender", "address"].iter().all(|f| !n[*f].is_null()))
        .filter(|n| !n["address"]["street"].is_null() && !n["address"]["postalCode"].is_null())
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .take(n)
        .collect();
    assert_eq!(full.len(), n, "the seed has customers with full profiles");
    full
}

async fn revealing_reads_are_recorded(layout: Layout) {
    let app = TestApp::spawn(layout, 150).await;
    let customers = full_customers(&app, 3).await;
    let who = &customers[0];

    // Every audited field of the schema (contact and sensitive, wherever it is: read from
    // the SDL's own classes) writes an entry naming it when shown, asked for alone.
    let table = c360::graphql::privacy::PrivacyTable::from_sdl(&c360::graphql::sdl()).expect("table");
    let audited: Vec<(String, String)> = table
        .classified()
        .into_iter()
        .filter(|(_, _, _, p)| !p.lookup && p.class.audited())
        .map(|(t, f, _, _)| (t, f))
        .collect();
    assert!(audited.len() >= 8, "{audited:?}");
    let mut everything = BTreeSet::new();
    for (type_name, field) in &audited {
        let (selection, name) = match (type_name.as_str(), field.as_str()) {
            ("Customer", "address") => ("address { city }".to_owned(), field.clone()),
            ("Customer", _) => (field.clone(), field.clone()),
            ("Address", _) => (format!("address {{ {field} }}"), format!("address.{field}")),
            (other, _) => panic!("no path to {other}.{field} in the audit test: add one"),
        };
        let q = format!("query($id: ID!) {{ customer(id: $id) {{ displayName {selection} }} }}");
        let (seen, request) = app.query_with_id(&app.admin, &q, json!({ "id": who })).await;
        assert!(seen.get("errors").is_none(), "{seen:#}");
        let entries = entries_of(&app, &request).await;
        assert_eq!(entries.len(), 1, "{type_name}.{field}: {entries:#?}");
        let fields: Vec<&str> =
            entries[0]["fields"].as_array().expect("fields").iter().filter_map(Value::as_str).collect();
        assert!(fields.contains(&name.as_str()), "{type_name}.{field} is audited as `{name}`: {fields:?}");
        everything.insert(selection);
    }
    let everything = format!(
        "query($id: ID!) {{ customer(id: $id) {{ displayName {} }} }}",
        everything.into_iter().collect::<Vec<_>>().join(" ")
    );
    let (_, request) = app.query_with_id(&app.admin, &everything, json!({ "id": who })).await;
    let entries = entries_of(&app, &request).await;
    assert_eq!(entries.len(), 1, "one entry per customer: {entries:#?}");
    // One entry per customer a list reveals, each with only the fields it showed.
    let (_, request) =
        app.query_with_id(&app.admin, "{ customers(first: 3) { edges { node { id phone } } } }", json!({})).await;
    let listed = entries_of(&app, &request).await;
    assert_eq!(listed.len(), 3, "{listed:#?}");
    assert!(listed.iter().all(|e| e["fields"] == json!(["phone"])));

    // Masked, hidden or not asked for: no entry. (Frontend masks contact data without
    // pii:read; analysts do not see it at all; names and orders are not audited.)
    let masked = app.token(Role::Frontend, None, None);
    let seen = app
        .query_as(&masked, "query($id: ID!) { customer(id: $id) { email phone birthDate } }", json!({ "id": who }))
        .await;
    assert!(seen["data"]["customer"]["email"].as_str().expect("masked").contains("***"), "{seen:#}");
    let analyst = app.token(Role::Analyst, None, None);
    let hidden = app.query_as(&analyst, "query($id: ID!) { customer(id: $id) { email } }", json!({ "id": who })).await;
    assert_eq!(codes(&hidden), ["GRAPHQL_VALIDATION_FAILED"]);
    let agent = app.token(Role::Agent, None, None);
    app.query_as(
        &agent,
        "query($id: ID!) { customer(id: $id) { displayName orders(first: 1) { totalCount } } }",
        json!({ "id": who }),
    )
    .await;
    barrier(&app, who).await;
    let seen_by = subjects(&app).await;
    assert!(
        !seen_by.contains("test-frontend") && !seen_by.contains("test-analyst") && !seen_by.contains("test-agent"),
        "{seen_by:?}"
    );

    // A mask that keeps the value shows it as it is: an analyst's birth year is recorded.
    let (seen, request) =
        app.query_with_id(&analyst, "query($id: ID!) { customer(id: $id) { birthYear } }", json!({ "id": who })).await;
    assert!(seen["data"]["customer"]["birthYear"].is_i64(), "{seen:#}");
    assert_eq!(entries_of(&app, &request).await[0]["fields"], json!(["birthYear"]));

    // With pii:read, the frontend sees the data, and it is recorded; so is a partner's read.
    let with_pii = app.token(Role::Frontend, Some("customers:read pii:read"), None);
    let (seen, request) =
        app.query_with_id(&with_pii, "query($id: ID!) { customer(id: $id) { email } }", json!({ "id": who })).await;
    assert!(!seen["data"]["customer"]["email"].as_str().expect("email").contains("***"));
    assert_eq!(entries_of(&app, &request).await[0]["fields"], json!(["email"]));
    let partner = app.token(Role::Partner, Some("customers:read pii:read"), Some("acme-insurance"));
    let (seen, request) =
        app.query_with_id(&partner, "{ customers(first: 1) { edges { node { id email } } } }", json!({})).await;
    let shown = &seen["data"]["customers"]["edges"][0]["node"];
    if !shown["email"].is_null() {
        let entry = &entries_of(&app, &request).await[0];
        assert_eq!(entry["partner"], "acme-insurance");
        assert_eq!(entry["customerId"], shown["id"]);
    }

    // Filters and paging.
    let mine = app.data(LOG, json!({ "c": who })).await;
    let edges = mine["auditLog"]["edges"].as_array().expect("edges");
    assert!(edges.iter().all(|e| e["node"]["customerId"] == who.as_str()));
    assert_eq!(mine["auditLog"]["totalCount"].as_i64(), Some(edges.len() as i64));
    let by_frontend = app.data(LOG, json!({ "s": "test-frontend" })).await;
    assert_eq!(by_frontend["auditLog"]["totalCount"], 1);
    let all = app.data(LOG, json!({})).await["auditLog"]["totalCount"].as_i64().expect("count");
    let mut paged = BTreeSet::new();
    let mut after = Value::Null;
    loop {
        // Pages of two cut through the reads of several customers (one row per response).
        let q = "query($after: String) { auditLog(first: 2, after: $after) {
                   edges { cursor node { requestId action customerId fields } } pageInfo { hasNextPage endCursor } } }";
        let page = app.data(q, json!({ "after": after })).await;
        for e in page["auditLog"]["edges"].as_array().expect("edges") {
            assert!(paged.insert(e["node"].to_string()), "each entry once: {e}");
        }
        if page["auditLog"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["auditLog"]["pageInfo"]["endCursor"].clone();
    }
    assert!(paged.len() as i64 >= all, "every entry reachable by paging");

    // The log is for admins only.
    for token in [&agent, &partner] {
        assert_eq!(codes(&app.query_as(token, LOG, json!({})).await), ["FORBIDDEN"]);
    }
}

#[tokio::test]
async fn audit_records_revealing_reads_on_sqlite() {
    revealing_reads_are_recorded(Layout::all(Backend::Sqlite)).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn audit_records_revealing_reads_on_postgres() {
    revealing_reads_are_recorded(Layout::all(Backend::Postgres)).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn audit_records_revealing_reads_on_mysql() {
    revealing_reads_are_recorded(Layout::all(Backend::Mysql)).await;
}

/// Renames the audit table away and back: the store "fails" and recovers.
async fn audit_table(app: &TestApp, from: &str, to: &str) {
    let sql = format!("alter table {from} rename to {to}");
    app.sources.hub().execute(&SqlTrace::default(), &sql, &[]).await.expect("rename");
}

async fn fails_closed(layout: Layout) {
    let app = TestApp::spawn(layout, 40).await;
    let who = &full_customers(&app, 1).await[0];
    let reveal = "query($id: ID!) { customer(id: $id) { email } }";
    let masked = app.token(Role::Frontend, None, None);

    audit_table(&app, "audit_log", "audit_log_away").await;
    // Taken while the store still looked fine: withheld, as its entry could not be
    // stored, and kept to be written later (the log may name a read the client did not
    // get, never miss one it got).
    let (first, pending) = app.query_with_id(&app.admin, reveal, json!({ "id": who })).await;
    assert_eq!(codes(&first), ["AUDIT_UNAVAILABLE"], "{first:#}");
    assert_eq!(first["data"], Value::Null, "{first:#}");
    let mut refused = Value::Null;
    for _ in 0..200 {
        let seen = app.query(reveal, json!({ "id": who })).await;
        if seen.get("errors").is_some() {
            refused = seen;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(codes(&refused), ["AUDIT_UNAVAILABLE"], "{refused:#}");
    assert_eq!(refused["data"], Value::Null, "nothing revealed: {refused:#}");
    assert!(!refused.to_string().contains('@'));
    // Reads that reveal nothing still work; readiness reports the audit log.
    let fine = app.query_as(&masked, reveal, json!({ "id": who })).await;
    assert!(fine["data"]["customer"]["email"].as_str().expect("masked").contains("***"), "{fine:#}");
    for path in ["/readyz", "/health/ready"] {
        let ready = reqwest::get(format!("{}{path}", app.address)).await.expect("ready");
        assert_eq!(ready.status().as_u16(), 503);
        let body: Value = ready.json().await.expect("JSON");
        assert_eq!(body, json!({ "status": "unavailable", "degraded": ["audit"] }));
    }

    audit_table(&app, "audit_log_away", "audit_log").await;
    assert!(!entries_of(&app, &pending).await.is_empty(), "the entry taken before the failure is stored");
    let again = app.query(reveal, json!({ "id": who })).await;
    assert!(again.get("errors").is_none(), "{again:#}");
}

#[tokio::test]
async fn audit_fails_closed_on_sqlite() {
    fails_closed(Layout::all(Backend::Sqlite)).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn audit_fails_closed_on_postgres() {
    fails_closed(Layout::all(Backend::Postgres)).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn audit_fails_closed_on_mysql() {
    fails_closed(Layout::all(Backend::Mysql)).await;
}

c360::row! {
    struct Logged {
        request_id: String,
    }
}

async fn nothing_lost_at_shutdown(layout: Layout) {
    // Requests in flight as the server stops: every response served has its entry.
    let app = TestApp::spawn(layout, 60).await;
    let ids = full_customers(&app, 10).await;
    let answered = AtomicUsize::new(0);
    let reveal = "query($id: ID!) { customer(id: $id) { email phone } }";
    let (app, answered) = (&app, &answered);
    let requests = (0..80).map(|i| {
        let id = ids[i % ids.len()].clone();
        async move {
            let body = json!({ "query": reveal, "variables": { "id": id } });
            let response = app.send(Some(&format!("Bearer {}", app.admin)), body).await.ok()?;
            let request_id = response.headers().get("x-request-id")?.to_str().ok()?.to_owned();
            let json: Value = response.json().await.ok()?;
            answered.fetch_add(1, Ordering::SeqCst);
            json["data"]["customer"]["email"].is_string().then_some(request_id)
        }
    });
    // Stop once some answers are out and the rest are in flight or not yet sent.
    let stopper = async {
        for _ in 0..10_000 {
            if answered.load(Ordering::SeqCst) >= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        app.stop().await;
    };
    let (served, ()) = tokio::join!(futures::future::join_all(requests), stopper);
    let served: BTreeSet<String> = served.into_iter().flatten().collect();
    assert!(!served.is_empty(), "some requests were served before the shutdown");
    let rows: Vec<Logged> =
        app.sources.hub().fetch_all(&SqlTrace::default(), "select request_id from audit_log", &[]).await.expect("log");
    let logged: BTreeSet<String> = rows.into_iter().map(|r| r.request_id).collect();
    let lost: Vec<&String> = served.difference(&logged).collect();
    assert!(lost.is_empty(), "{} of {} revealing responses have no audit entry: {lost:?}", lost.len(), served.len());
}

#[tokio::test]
async fn audit_loses_nothing_at_shutdown_on_sqlite() {
    nothing_lost_at_shutdown(Layout::all(Backend::Sqlite)).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn audit_loses_nothing_at_shutdown_on_postgres() {
    nothing_lost_at_shutdown(Layout::all(Backend::Postgres)).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn audit_loses_nothing_at_shutdown_on_mysql() {
    nothing_lost_at_shutdown(Layout::all(Backend::Mysql)).await;
}

/// A rule of the store's own that refuses the entries of one subject (`poison`): an
/// entry the store will not take while it takes others.
async fn refuse_subject(app: &TestApp, backend: Backend) {
    let sql = match backend {
        Backend::Sqlite => {
            "create trigger audit_poison before insert on audit_log when new.subject = 'poison'
             begin select raise(abort, 'poison'); end"
        }
        Backend::Postgres | Backend::Mysql => {
            "alter table audit_log add constraint audit_poison check (subject <> 'poison')"
        }
    };
    app.sources.hub().execute(&SqlTrace::default(), sql, &[]).await.expect("the poison rule");
}

/// One entry the store refuses does not stop the log for everyone (it once retried that
/// batch forever, refusing every revealing response and never finishing a shutdown);
/// claims the store could not hold are refused with the token.
async fn one_bad_entry_does_not_jam_the_log(backend: Backend) {
    let app = TestApp::spawn(Layout::all(backend), 20).await;
    let who = &full_customers(&app, 1).await[0];
    let reveal = "query($id: ID!) { customer(id: $id) { email } }";

    // A subject longer than the log holds is no subject: the token is refused.
    let long = app.subject_token(&"s".repeat(201), Role::Admin, Duration::from_secs(600));
    let response = app.send(Some(&format!("Bearer {long}")), json!({ "query": "{ __typename }" })).await.expect("send");
    assert_eq!(response.status(), 401);
    let padded = app.subject_token("padded ", Role::Admin, Duration::from_secs(600));
    let response =
        app.send(Some(&format!("Bearer {padded}")), json!({ "query": "{ __typename }" })).await.expect("send");
    assert_eq!(response.status(), 401);
    // The longest one is stored whole.
    let longest = "s".repeat(200);
    let token = app.subject_token(&longest, Role::Admin, Duration::from_secs(600));
    let (seen, id) = app.query_with_id(&token, reveal, json!({ "id": who })).await;
    assert!(seen["data"]["customer"]["email"].is_string(), "{seen:#}");
    assert_eq!(entries_of(&app, &id).await.first().map(|e| e["subject"].clone()), Some(json!(longest)));

    refuse_subject(&app, backend).await;
    let poison = app.subject_token("poison", Role::Admin, Duration::from_secs(600));
    let (seen, poisoned) = app.query_with_id(&poison, reveal, json!({ "id": who })).await;
    // What the log could not record, the client does not get.
    assert_eq!(seen["errors"][0]["extensions"]["code"], "AUDIT_UNAVAILABLE", "{seen:#}");
    assert!(seen["data"].is_null(), "{seen:#}");
    // Everyone else goes on being served and recorded, the poisoned entry set apart.
    for _ in 0..5 {
        let (seen, id) = app.query_with_id(&app.admin, reveal, json!({ "id": who })).await;
        assert!(seen.get("errors").is_none(), "{seen:#}");
        assert!(!entries_of(&app, &id).await.is_empty(), "the log goes on after a refused entry");
    }
    assert!(entries_of(&app, &poisoned).await.is_empty());
    let ready = reqwest::get(format!("{}/readyz", app.address)).await.expect("ready");
    assert_eq!(ready.status().as_u16(), 200);
    let metrics = reqwest::get(format!("{}/metrics", app.address)).await.expect("GET").text().await.expect("text");
    assert!(metrics.contains("c360_audit_dead_letters_total 1"), "{metrics}");
}

#[tokio::test]
async fn one_bad_entry_does_not_jam_the_log_on_sqlite() {
    one_bad_entry_does_not_jam_the_log(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn one_bad_entry_does_not_jam_the_log_on_postgres() {
    one_bad_entry_does_not_jam_the_log(Backend::Postgres).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn one_bad_entry_does_not_jam_the_log_on_mysql() {
    one_bad_entry_does_not_jam_the_log(Backend::Mysql).await;
}

/// A shutdown keeps its deadline while the store is down: what it cannot write goes to
/// the server log after ten seconds, instead of a retry that never ends.
#[tokio::test]
async fn shutdown_keeps_its_deadline_while_the_audit_fails() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 20).await;
    let who = &full_customers(&app, 1).await[0];
    audit_table(&app, "audit_log", "audit_log_away").await;
    let (seen, _) =
        app.query_with_id(&app.admin, "query($id: ID!) { customer(id: $id) { email } }", json!({ "id": who })).await;
    assert_eq!(codes(&seen), ["AUDIT_UNAVAILABLE"], "{seen:#}");
    tokio::time::timeout(Duration::from_secs(60), app.stop()).await.expect("the shutdown finishes");
}
