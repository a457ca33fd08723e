//! Identity resolution: quality against the seeder's ground truth, and incremental
//! pick-up of new and changed records, merges and aliases.

use std::time::Duration;

use c360::auth::Role;
use c360::identity::quality;
use c360::sources::{Arg, SqlTrace};
use serde_json::json;

use crate::helpers::{Backend, Layout, TestApp};

async fn precision_and_recall(layout: Layout, customers: u64) {
    let app = TestApp::spawn(layout, customers).await;
    let q = quality::measure(app.sources.hub()).await.expect("measure");
    assert!(q.records > customers, "{q:?}");
    assert_eq!(q.precision, 1.0, "no false merges: {q:?}");
    // What is missed cannot be told apart: records known only by an email a couple shares
    // or by a household's landline (measured: 98.9% at 2,000 and 99.2% at 20,000 people).
    assert!(q.recall >= 0.985, "recall {:.4}: {q:?}", q.recall);
    // Couples sharing an email and households sharing a landline are reported, not merged.
    for kind in ["shared_email", "shared_phone"] {
        let conflicts = app
            .sources
            .hub()
            .fetch_count(
                &SqlTrace::default(),
                "select count(*) as n from identity_conflicts where kind = ?",
                &[Arg::from(kind)],
            )
            .await
            .expect("count");
        assert!(conflicts > 0, "{kind} must be reported");
    }
}

#[tokio::test]
async fn resolution_is_precise_and_complete_on_sqlite() {
    precision_and_recall(Layout::all(Backend::Sqlite), 2_000).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn resolution_is_precise_and_complete_on_postgres() {
    precision_and_recall(Layout::all(Backend::Postgres), 600).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn resolution_is_precise_and_complete_on_mysql() {
    precision_and_recall(Layout::all(Backend::Mysql), 600).await;
}

/// Writes a customer into the CRM as its own application would.
async fn add_crm(app: &TestApp, id: i64, first: &str, last: &str, email: &str) {
    let now = chrono::Utc::now();
    let sql = "insert into customers (id, first_name, last_name, email, country, created_at, updated_at) values (?, ?, ?, ?, 'GB', ?, ?)";
    let args = [Arg::Int(id), first.into(), last.into(), email.into(), now.into(), now.into()];
    app.sources.crm().execute(&SqlTrace::default(), sql, &args).await.expect("crm insert");
}

/// Writes a shop account as a checkout would.
async fn add_account(app: &TestApp, id: i64, email: Option<&str>, phone: &str, name: &str, guest: bool) {
    let now = chrono::Utc::now();
    let sql = "insert into accounts (id, email, phone, name, country, is_guest, created_at, updated_at) values (?, ?, ?, ?, 'GB', ?, ?, ?)";
    let args = [
        Arg::Int(id),
        email.map(str::to_owned).into(),
        phone.into(),
        name.into(),
        guest.into(),
        now.into(),
        now.into(),
    ];
    app.sources.shop().execute(&SqlTrace::default(), sql, &args).await.expect("shop insert");
}

#[tokio::test]
async fn new_records_are_linked_incrementally_and_merges_keep_old_ids() {
    // The resolver here is another process to the server: with links kept, its merges
    // would reach the server within a second (the next test), not at once.
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 0, |c| c.identity.link_cache_entries = 0).await;

    // Two people the hub does not know are the same: one by email, one by phone.
    add_crm(&app, 1, "Ada", "Lovelace", "ada@example.org").await;
    add_account(&app, 7, None, "07700 900123", "A. Lovelace", true).await;
    let report = app.resolver.run().await.expect("resolve");
    assert_eq!((report.read, report.new_customers), (2, 2));

    let by_key = "query($s: SourceName!, $k: String!) { customerBySourceKey(source: $s, key: $k) { id sourceRecords { source key matchedBy } } }";
    let ada = app.data(by_key, json!({ "s": "CRM", "k": "1" })).await["customerBySourceKey"].clone();
    let guest = app.data(by_key, json!({ "s": "SHOP", "k": "7" })).await["customerBySourceKey"].clone();
    assert_ne!(ada["id"], guest["id"]);

    // A new account with Ada's email (other case) and the guest's phone joins both.
    add_account(&app, 8, Some(" ADA@Example.org"), "+44 7700 900123", "Ada Lovelace", false).await;
    let report = app.resolver.run().await.expect("resolve");
    assert_eq!((report.read, report.linked, report.merged), (1, 1, 1));
    let merged = app.data(by_key, json!({ "s": "SHOP", "k": "7" })).await["customerBySourceKey"].clone();
    assert_eq!(merged["id"], ada["id"], "the email match survives");
    assert_eq!(merged["sourceRecords"].as_array().map(Vec::len), Some(3));
    // The merged-away id still answers, with the survivor.
    let old = app.data("query($id: ID!) { customer(id: $id) { id } }", json!({ "id": guest["id"] })).await;
    assert_eq!(old["customer"]["id"], ada["id"]);

    // A second CRM person with Ada's email but another name is a conflict, not a merge.
    add_crm(&app, 2, "Byron", "Lovelace", "ada@example.org").await;
    let report = app.resolver.run().await.expect("resolve");
    assert_eq!((report.new_customers, report.conflicts), (1, 1));
    let byron = app.data(by_key, json!({ "s": "CRM", "k": "2" })).await["customerBySourceKey"].clone();
    assert_ne!(byron["id"], ada["id"]);
    let ambiguous = app.query("{ customerByEmail(email: \"ada@example.org\") { id } }", json!({})).await;
    assert_eq!(crate::helpers::codes(&ambiguous), ["AMBIGUOUS_MATCH"]);

    // Erasure forgets a shared key, once nobody holds it any more; it names the other
    // customers with the erased one's email or phone (the same person, maybe: a human
    // decides), and erases none of them.
    let erase = "mutation($id: ID!) { eraseCustomer(id: $id) { alreadyErased sharingIdentifiers } }";
    assert_eq!(shared_emails(&app).await, ["ada@example.org"]);
    let erased = app.data(erase, json!({ "id": byron["id"] })).await;
    assert_eq!(erased["eraseCustomer"]["sharingIdentifiers"], json!([ada["id"]]));
    assert_eq!(shared_emails(&app).await, ["ada@example.org"], "Ada still has it");
    app.data(erase, json!({ "id": ada["id"] })).await;
    assert!(shared_emails(&app).await.is_empty());
    let gone = app.data("{ customerByEmail(email: \"ada@example.org\") { id } }", json!({})).await;
    assert_eq!(gone["customerByEmail"], serde_json::Value::Null);

    // Nothing new: nothing read.
    assert_eq!(app.resolver.run().await.expect("resolve").read, 0);
}

c360::row! {
    struct SharedKey {
        value: String,
    }
}

/// The emails the hub knows to be shared by several people.
async fn shared_emails(app: &TestApp) -> Vec<String> {
    let sql = "select value from ambiguous_keys where kind = 'email' order by value";
    let rows: Vec<SharedKey> = app.sources.hub().fetch_all(&SqlTrace::default(), sql, &[]).await.expect("shared keys");
    rows.into_iter().map(|r| r.value).collect()
}

/// Background jobs run on one replica at a time: the resolver skips its turn while
/// another process holds the lease, and resolves once the lease has expired.
#[tokio::test]
async fn one_replica_at_a_time_resolves() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 5).await;
    let hub = app.sources.hub();
    let trace = SqlTrace::default();
    // Another replica holds the resolver's lease for an hour.
    let later = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    let foreign = "update job_leases set holder = 'another-replica', expires_at = ? where name = 'resolve'";
    assert_eq!(hub.execute(&trace, foreign, &[later.into()]).await.expect("lease"), 1, "the resolver took it once");
    add_crm(&app, 900_001, "Ada", "Lovelace", "ada@example.org").await;
    assert_eq!(app.resolver.run().await.expect("resolve").read, 0, "its turn skipped");
    // The lease expires (the other replica died): this one takes over.
    let expired = "update job_leases set expires_at = ? where name = 'resolve'";
    hub.execute(&trace, expired, &[(chrono::Utc::now() - chrono::TimeDelta::seconds(1)).into()]).await.expect("expire");
    assert_eq!(app.resolver.run().await.expect("resolve").read, 1);
    // Released after the run: free for any replica at once.
    let held = "select count(*) as n from job_leases where name = 'resolve' and expires_at > ?";
    assert_eq!(hub.fetch_count(&trace, held, &[chrono::Utc::now().into()]).await.expect("count"), 0);

    // A lease is taken by one holder only.
    let lease = c360::sources::lease::Lease::take(hub, "test-job", Duration::from_secs(60)).await.expect("take");
    assert!(lease.is_some());
    let foreign = "update job_leases set holder = 'another-replica' where name = 'test-job'";
    hub.execute(&trace, foreign, &[]).await.expect("lease");
    let again = c360::sources::lease::Lease::take(hub, "test-job", Duration::from_secs(60)).await.expect("take");
    assert!(again.is_none(), "held by another replica");
}

/// Records that share one timestamp, more than a batch of them, with the hub store on
/// MySQL (whose `datetime` keeps whole seconds): each batch moves the resolver on, and the
/// run ends with every record linked. Before, the position read back from the store lay
/// before the batch it had just resolved, and the run read that batch forever.
#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn records_sharing_a_timestamp_beyond_a_batch_are_resolved_once_over_mysql() {
    let app = TestApp::spawn(Layout::mixed(Backend::Sqlite, &[(c360::sources::DbName::Hub, Backend::Mysql)]), 0).await;
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00.123456789Z").expect("time").to_utc();
    let sql = "insert into customers (id, first_name, last_name, email, country, created_at, updated_at) values (?, ?, ?, ?, 'GB', ?, ?)";
    for id in 1..=25 {
        let args = [
            Arg::Int(id),
            "Ada".into(),
            format!("Person{id}").into(),
            format!("p{id}@example.org").into(),
            at.into(),
            at.into(),
        ];
        app.sources.crm().execute(&SqlTrace::default(), sql, &args).await.expect("crm insert");
    }
    let resolver = c360::identity::Resolver::new(app.sources.clone(), "GB".to_owned(), 10);
    let run = tokio::time::timeout(Duration::from_secs(60), resolver.run()).await;
    let report = run.expect("the run ends").expect("resolve");
    assert_eq!(report.read, 25, "each record read once: {report:?}");
    let linked = "select count(*) as n from identity_links where source = 'crm'";
    assert_eq!(app.sources.hub().fetch_count(&SqlTrace::default(), linked, &[]).await.expect("count"), 25);
    // The next run starts after them: nothing is read again.
    assert_eq!(resolver.run().await.expect("resolve").read, 0);
}

/// A customer's links are kept in memory between requests, per viewer: a second read of
/// the same id or key by the same viewer takes no statement in the hub store, another viewer's
/// first read does, and a partner's reads always do. A merge by another process reaches
/// the server within the check interval; an erasure through the server at once.
async fn links_are_kept_per_viewer_and_follow_other_processes_changes(backend: Backend) {
    let app = TestApp::spawn(Layout::all(backend), 0).await;
    add_crm(&app, 1, "Ada", "Lovelace", "ada@example.org").await;
    add_account(&app, 7, None, "07700 900123", "A. Lovelace", true).await;
    app.resolver.run().await.expect("resolve");
    let by_key = "query($s: SourceName!, $k: String!) { customerBySourceKey(source: $s, key: $k) { id } }";
    let ada = app.data(by_key, json!({ "s": "CRM", "k": "1" })).await["customerBySourceKey"]["id"].clone();
    let guest = app.data(by_key, json!({ "s": "SHOP", "k": "7" })).await["customerBySourceKey"]["id"].clone();

    let profile = "query($id: ID!) { customer(id: $id) { id sourceRecords { source key } } }";
    let hub_statements = |response: &serde_json::Value| response["extensions"]["sqlStatements"]["hub"].as_u64();
    let read = |token: String, id: serde_json::Value| {
        let app = &app;
        async move { app.query_as(&token, profile, json!({ "id": id })).await }
    };
    let first = read(app.admin.clone(), guest.clone()).await;
    assert_eq!(first["data"]["customer"]["id"], guest);
    assert_eq!(hub_statements(&first), Some(1), "{first:#}");
    let again = read(app.admin.clone(), guest.clone()).await;
    assert_eq!(again["data"], first["data"]);
    assert_eq!(hub_statements(&again), Some(0), "kept: no statement in the hub store: {again:#}");

    let metrics = reqwest::get(format!("{}/metrics", app.address)).await.expect("metrics");
    let metrics = metrics.text().await.expect("metrics text");
    assert!(metrics.contains(r#"c360_link_lookups_total{from="memory"} 1"#), "{metrics}");

    // So are the links of a customer looked up by a key.
    let by_email = "query($e: String!) { customerByEmail(email: $e) { id } }";
    let found = app.query(by_email, json!({ "e": "ada@example.org" })).await;
    assert_eq!((found["data"]["customerByEmail"]["id"].clone(), hub_statements(&found)), (ada.clone(), Some(1)));
    let again = app.query(by_email, json!({ "e": "ada@example.org" })).await;
    assert_eq!((again["data"]["customerByEmail"]["id"].clone(), hub_statements(&again)), (ada.clone(), Some(0)));

    // Another viewer of the same role reads from the hub store.
    let other = app.subject_token("another-admin", Role::Admin, Duration::from_secs(600));
    assert_eq!(hub_statements(&read(other, guest.clone()).await), Some(1));
    // A partner never reads links from memory (how fast an id answers must not say
    // whether it exists).
    let partner = app.token(Role::Partner, None, Some("acme-insurance"));
    for _ in 0..2 {
        let response =
            app.query_as(&partner, "query($id: ID!) { customer(id: $id) { id } }", json!({ "id": guest })).await;
        assert_eq!(response["data"]["customer"], serde_json::Value::Null, "no consent: {response:#}");
        assert!(hub_statements(&response) >= Some(1), "{response:#}");
    }

    // Another process merges the guest into Ada: the kept links go within the interval.
    add_account(&app, 8, Some("ada@example.org"), "+44 7700 900123", "Ada Lovelace", false).await;
    assert_eq!(app.resolver.run().await.expect("resolve").merged, 1);
    let deadline = std::time::Instant::now() + c360::loaders::links::LINKS_CHECKED_EVERY * 5;
    loop {
        let response = read(app.admin.clone(), guest.clone()).await;
        if response["data"]["customer"]["id"] == ada {
            assert_eq!(response["data"]["customer"]["sourceRecords"].as_array().map(Vec::len), Some(3));
            break;
        }
        assert_eq!(response["data"]["customer"]["id"], guest, "{response:#}");
        assert!(std::time::Instant::now() < deadline, "the merge never reached the kept links");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An erasure through this server: the next read, at once, finds nobody.
    assert_eq!(read(app.admin.clone(), ada.clone()).await["data"]["customer"]["id"], ada);
    app.data("mutation($id: ID!) { eraseCustomer(id: $id) { alreadyErased } }", json!({ "id": ada })).await;
    for id in [ada, guest] {
        let response = read(app.admin.clone(), id).await;
        assert_eq!(response["data"]["customer"], serde_json::Value::Null, "{response:#}");
    }
}

#[tokio::test]
async fn links_are_kept_and_follow_changes_on_sqlite() {
    links_are_kept_per_viewer_and_follow_other_processes_changes(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn links_are_kept_and_follow_changes_on_postgres() {
    links_are_kept_per_viewer_and_follow_other_processes_changes(Backend::Postgres).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn links_are_kept_and_follow_changes_on_mysql() {
    links_are_kept_per_viewer_and_follow_other_processes_changes(Backend::Mysql).await;
}
