//! Subject rights: exporting everything about a customer, and erasing them so that no
//! query, by any role, finds anything of theirs afterwards.

use std::collections::BTreeMap;

use c360::auth::Role;
use c360::sources::SqlTrace;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, codes};

const EXPORT: &str = "query($id: ID!) { exportCustomer(id: $id) }";
const ERASE: &str = "mutation($id: ID!) { eraseCustomer(id: $id) {
    customerId alreadyErased sources { database deleted anonymized } } }";

/// A customer with records in all four sources, an email and a phone, and a consent
/// (so a partner could see them).
async fn someone_everywhere(app: &TestApp) -> Value {
    let mut after = Value::Null;
    loop {
        let q = "query($after: String) { customers(first: 100, after: $after) {
                   edges { node { id email phone sourceRecords { source key } consents { partner active } } }
                   pageInfo { hasNextPage endCursor } } }";
        let page = app.data(q, json!({ "after": after })).await;
        for edge in page["customers"]["edges"].as_array().expect("edges") {
            let n = &edge["node"];
            let mut sources: Vec<&str> = n["sourceRecords"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| r["source"].as_str().expect("s"))
                .collect();
            sources.sort();
            sources.dedup();
            let consented = n["consents"].as_array().expect("consents").iter().any(|c| c["active"] == true);
            if sources.len() == 4 && n["email"].is_string() && n["phone"].is_string() && consented {
                return n.clone();
            }
        }
        assert_eq!(page["customers"]["pageInfo"]["hasNextPage"], true, "the seed has a customer in every source");
        after = page["customers"]["pageInfo"]["endCursor"].clone();
    }
}

/// Every way each role has to ask for the person; all must come back empty.
async fn assert_gone(app: &TestApp, person: &Value, tokens: &[(String, String)]) {
    let id = person["id"].as_str().expect("id");
    for (who, token) in tokens {
        let by_id = app
            .query_as(token, "query($id: ID!) { customer(id: $id) { id } node(id: $id) { id } }", json!({ "id": id }))
            .await;
        assert_eq!(by_id["data"], json!({ "customer": null, "node": null }), "{who} by id: {by_id:#}");
        let q = "query($e: String!, $p: String!) { e: customerByEmail(email: $e) { id } p: customerByPhone(phone: $p) { id } }";
        let by_contact = app.query_as(token, q, json!({ "e": person["email"], "p": person["phone"] })).await;
        // Someone else may share the address or number; the person is not found either way.
        assert!(!by_contact.to_string().contains(id), "{who} by email/phone: {by_contact:#}");
        for record in person["sourceRecords"].as_array().expect("records") {
            let q = "query($s: SourceName!, $k: String!) { customerBySourceKey(source: $s, key: $k) { id } }";
            let by_key = app.query_as(token, q, json!({ "s": record["source"], "k": record["key"] })).await;
            assert_eq!(by_key["data"]["customerBySourceKey"], Value::Null, "{who} by {record}: {by_key:#}");
        }
    }
    // Nor in any list, and nothing of theirs is left in the sources.
    let mut after = Value::Null;
    loop {
        let q = "query($after: String) { customers(first: 100, after: $after) {
                   edges { node { id email phone } } pageInfo { hasNextPage endCursor } } }";
        let page = app.data(q, json!({ "after": after })).await;
        for edge in page["customers"]["edges"].as_array().expect("edges") {
            assert_ne!(edge["node"]["id"], person["id"], "listed after erasure");
        }
        if page["customers"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["customers"]["pageInfo"]["endCursor"].clone();
    }
    let email = person["email"].as_str().expect("email");
    let trace = SqlTrace::default();
    let s = &app.sources;
    for (db, sql) in [
        (s.crm(), "select count(*) as n from customers where lower(trim(email)) = ?"),
        (s.shop(), "select count(*) as n from accounts where lower(trim(email)) = ?"),
        (s.helpdesk(), "select count(*) as n from requesters where lower(trim(email)) = ?"),
        (s.marketing(), "select count(*) as n from contacts where lower(trim(email)) = ?"),
    ] {
        let n = db.fetch_count(&trace, sql, &[c360::sources::Arg::from(email)]).await.expect("count");
        assert_eq!(n, 0, "{}: {sql}", db.name);
    }
}

async fn export_and_erase(layout: Layout) {
    let app = TestApp::spawn(layout, 120).await;
    c360::insights::refresh::refresh(&app.sources, crate::helpers::as_of()).await.expect("fit the insight models");
    let person = someone_everywhere(&app).await;
    let id = person["id"].as_str().expect("id").to_owned();
    let agent = app.token(Role::Agent, None, None);
    // A read of their email among others', stored before the export (its trail names it).
    let q = "query($id: ID!) { customer(id: $id) { email } customers(first: 5) { edges { node { phone } } } }";
    let (_, read) = app.query_with_id(&app.admin, q, json!({ "id": id })).await;
    assert!(!crate::audit::entries_of(&app, &read).await.is_empty(), "the read is recorded");

    // Export: admins only, everything from every source, audited.
    assert_eq!(codes(&app.query_as(&agent, EXPORT, json!({ "id": id })).await), ["FORBIDDEN"]);
    // An admin token without a scope the policy requires (here tickets and campaigns) sees
    // no tickets anywhere, the export included: it may not export at all (found by fuzzing).
    let narrow = app.token(Role::Admin, Some("customers:read orders:read pii:read insights:read"), None);
    let refused = app.query_as(&narrow, EXPORT, json!({ "id": id })).await;
    assert_eq!(codes(&refused), ["FORBIDDEN"], "{refused:#}");
    assert_eq!(refused["data"]["exportCustomer"], Value::Null, "{refused:#}");
    assert!(refused.to_string().contains("service, marketing"), "{refused:#}");
    let (export, request) = app.query_with_id(&app.admin, EXPORT, json!({ "id": id })).await;
    let doc = &export["data"]["exportCustomer"];
    let golden = app.ids().parse_id_of(c360::graphql::ids::Kind::Customer, &id).expect("id");
    assert_eq!(doc["customer_id"], golden.as_str(), "{export:#}");
    for (source, table) in
        [("crm", "customers"), ("shop", "accounts"), ("helpdesk", "requesters"), ("marketing", "contacts")]
    {
        assert!(!doc[source][table].as_array().expect(table).is_empty(), "{source}.{table}: {doc:#}");
    }
    assert!(!doc["crm"]["consents"].as_array().expect("consents").is_empty());
    assert!(doc.to_string().contains(person["email"].as_str().expect("email")), "the export holds the email");
    // What the hub derives and keeps is the person's too: the keys it matches by, the
    // insight scores, and who saw their data (this export first of all).
    let keys = doc["hub"]["normalised_keys"].as_array().expect("normalised keys");
    assert!(keys.iter().any(|k| k["email_norm"] == person["email"]), "{doc:#}");
    let scores = doc["hub"]["insights"].as_array().expect("insights");
    assert!(
        !scores.is_empty() && scores.iter().all(|s| s["segment"].is_string() && s["r_score"].is_number()),
        "{doc:#}"
    );
    let trail = doc["hub"]["audit_trail"].as_array().expect("audit trail");
    assert!(trail.iter().any(|e| e["action"] == "export" && e["subject"] == "test-admin"), "{doc:#}");
    assert!(trail.iter().any(|e| e["action"] == "read" && e["fields"].as_str().is_some_and(|f| f.contains("email"))));
    let links = doc["identity_links"].as_array().expect("links").len();
    assert_eq!(links, person["sourceRecords"].as_array().expect("records").len());
    let log = app
        .data("query($c: ID) { auditLog(customerId: $c) { edges { node { requestId action } } } }", json!({ "c": id }))
        .await;
    assert!(
        log["auditLog"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["node"]["requestId"] == request.as_str() && e["node"]["action"] == "EXPORT"),
        "{log:#}"
    );

    // Erase: admins only; reports per database; leaves an entry without personal data.
    assert_eq!(codes(&app.query_as(&agent, ERASE, json!({ "id": id })).await), ["FORBIDDEN"]);
    let erased = app.data(ERASE, json!({ "id": id })).await["eraseCustomer"].clone();
    assert_eq!(erased["alreadyErased"], false);
    let report: BTreeMap<String, (i64, i64)> = erased["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            (
                s["database"].as_str().expect("db").to_owned(),
                (s["deleted"].as_i64().unwrap_or(0), s["anonymized"].as_i64().unwrap_or(0)),
            )
        })
        .collect();
    for db in ["crm", "shop", "helpdesk", "marketing", "hub"] {
        assert!(report[db].0 > 0, "{db} deleted rows: {report:?}");
    }
    let again = app.data(ERASE, json!({ "id": id })).await["eraseCustomer"].clone();
    assert_eq!(again["alreadyErased"], true, "idempotent: {again:#}");
    assert_eq!(again["sources"], json!([]));
    let log = app
        .data(
            "query($c: ID) { auditLog(customerId: $c) { edges { node { action fields subject } } } }",
            json!({ "c": id }),
        )
        .await;
    let text = log.to_string();
    assert!(text.contains("ERASE"), "{log:#}");
    for secret in [&person["email"], &person["phone"]] {
        assert!(!text.contains(secret.as_str().expect("value")), "the audit log holds no personal data");
    }
    let nobody = app.ids().global_id(c360::graphql::ids::Kind::Customer, &uuid::Uuid::now_v7().to_string());
    assert_eq!(app.data(ERASE, json!({ "id": nobody.to_string() })).await["eraseCustomer"], Value::Null);

    // Nobody finds anything of theirs, by any path, even after the resolver runs again.
    let mut tokens = vec![("admin".to_owned(), app.admin.clone()), ("agent".to_owned(), agent.clone())];
    tokens.push(("frontend".into(), app.token(Role::Frontend, Some("customers:read pii:read"), None)));
    tokens.push(("analyst".into(), app.token(Role::Analyst, None, None)));
    for partner in ["acme-insurance", "northwind-travel"] {
        tokens.push((partner.into(), app.token(Role::Partner, Some("customers:read pii:read"), Some(partner))));
    }
    assert_gone(&app, &person, &tokens).await;
    app.resolver.run().await.expect("resolve");
    assert_gone(&app, &person, &tokens).await;
    assert_eq!(app.data(EXPORT, json!({ "id": id })).await["exportCustomer"], Value::Null);
}

#[tokio::test]
async fn export_and_erase_on_sqlite() {
    export_and_erase(Layout::all(Backend::Sqlite)).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn export_and_erase_on_postgres() {
    export_and_erase(Layout::all(Backend::Postgres)).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn export_and_erase_on_mysql() {
    export_and_erase(Layout::all(Backend::Mysql)).await;
}

/// The bytes a copy of the SQLite files gives back: after an erasure, nothing of the
/// person (a copy once recovered their CRM row, their note, and their email from the
/// hub's planner statistics).
#[tokio::test]
async fn erased_data_is_not_left_in_the_sqlite_files() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 120).await;
    let person = someone_everywhere(&app).await;
    let id = person["id"].as_str().expect("id");
    let note = "zq-erasure-canary-7731";
    let added = app
        .data(
            "mutation($id: ID!, $b: String!) { addNote(customerId: $id, body: $b) { body } }",
            json!({ "id": id, "b": note }),
        )
        .await;
    assert_eq!(added["addNote"]["body"], note);
    // The hub's statistics sample the normalised emails once gathered.
    app.sources.hub().analyze(&["identity_links"]).await.expect("analyze");
    let email = person["email"].as_str().expect("email").to_lowercase();
    let files = || {
        std::fs::read_dir(&app.config.data_dir)
            .expect("data dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains(".db"))
            .collect::<Vec<_>>()
    };
    let holding = |needle: &str| {
        files()
            .into_iter()
            .filter(|p| {
                let bytes = std::fs::read(p).unwrap_or_default().to_ascii_lowercase();
                bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            })
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    };
    assert!(!holding(note).is_empty() && !holding(&email).is_empty(), "the canaries are on disk before");
    app.data(ERASE, json!({ "id": id })).await;
    assert_eq!(holding(note), Vec::<String>::new(), "the note");
    assert_eq!(holding(&email), Vec::<String>::new(), "the email");
}
