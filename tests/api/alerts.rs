//! Service alerts: detected once from the sources' changes (a late commit inside the
//! overlap window included, a record changed again not reported twice), only by the
//! lease holder, and shown through the policy in the inbox.

use std::time::Duration;

use c360::auth::Role;
use c360::sources::{Arg, SqlTrace};
use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use serde_json::{Value, json};

use super::helpers::{Backend, Layout, TestApp, codes};
use super::websocket::{Frame, Socket, connect, next, send};

const INBOX: &str = "query($k: [AlertKind!]) { alerts(first: 50, kinds: $k) { edges { node {
    id number kind status assignee csat ticketCategory occurredAt customer { id } } } pageInfo { hasNextPage } } }";

/// A customer with records in the CRM, the shop and the helpdesk: (id, account, requester).
async fn customer_everywhere(app: &TestApp) -> (String, i64, i64) {
    let page =
        app.data("{ customers(first: 100) { edges { node { id sourceRecords { source key } } } } }", json!({})).await;
    for edge in page["customers"]["edges"].as_array().expect("edges") {
        let records = edge["node"]["sourceRecords"].as_array().expect("records");
        let key = |source: &str| {
            records.iter().find(|r| r["source"] == source).and_then(|r| r["key"].as_str()?.parse::<i64>().ok())
        };
        if let (Some(_), Some(account), Some(requester)) = (key("CRM"), key("SHOP"), key("HELPDESK")) {
            return (edge["node"]["id"].as_str().expect("id").to_owned(), account, requester);
        }
    }
    panic!("no customer with CRM, shop and helpdesk records among the first 100");
}

async fn insert_ticket(app: &TestApp, id: i64, requester: i64, category: &str, csat: Option<i64>, at: DateTime<Utc>) {
    let sql = "insert into tickets (id, requester_id, channel, category, priority, status, subject, opened_at,
               closed_at, csat, updated_at) values (?, ?, 'email', ?, 'high', 'open', 'Broken on arrival', ?, null, ?, ?)";
    let args = [id.into(), requester.into(), category.into(), at.into(), Arg::OptInt(csat), at.into()];
    app.sources.helpdesk().execute(&SqlTrace::default(), sql, &args).await.expect("insert ticket");
}

/// What a partner's policy lets it select of an alert.
const PARTNER_INBOX: &str = "{ alerts(first: 50) { edges { node { id kind customer { id } } } } }";

/// Waits until `token`'s inbox holds `n` alerts (at most 15 s); returns them.
async fn inbox(app: &TestApp, token: &str, n: usize) -> Vec<Value> {
    listed(app, token, INBOX, n).await
}

/// Waits until `query` lists `n` alerts for `token` (at most 15 s); returns them.
async fn listed(app: &TestApp, token: &str, query: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.query_as(token, query, json!({})).await;
        let edges = response["data"]["alerts"]["edges"].as_array().cloned().unwrap_or_else(|| panic!("{response:#}"));
        if edges.len() >= n || tokio::time::Instant::now() > deadline {
            return edges.into_iter().map(|e| e["node"].clone()).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The inbox as `token` sees it now.
async fn current(app: &TestApp, token: &str) -> Vec<Value> {
    inbox(app, token, 0).await
}

/// Waits until detection has read the helpdesk's changes up to `at` (its position at or
/// past it).
async fn read_past(app: &TestApp, at: DateTime<Utc>) {
    wait_for_position(app, "watermark_nanos", at).await;
}

/// Waits until detection has polled the helpdesk after `at` (and so read what committed
/// before).
async fn polled_after(app: &TestApp, at: DateTime<Utc>) {
    wait_for_position(app, "read_nanos", at).await;
}

async fn wait_for_position(app: &TestApp, column: &str, at: DateTime<Utc>) {
    let nanos = at.timestamp_nanos_opt().expect("nanos");
    let sql = format!("select count(*) as n from alert_positions where source = 'helpdesk' and {column} >= ?");
    let sql = sql.as_str();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while app.sources.hub().fetch_count(&SqlTrace::default(), sql, &[nanos.into()]).await.expect("position") == 0 {
        assert!(tokio::time::Instant::now() < deadline, "detection did not read past {at}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn alerts_are_detected_once_and_shown_through_the_policy(backend: Backend) {
    let app = TestApp::spawn_with(Layout::all(backend), 120, |c| {
        c.alerts.poll_interval = Duration::from_millis(200);
        c.alerts.overlap = Duration::from_secs(30);
    })
    .await;
    let (customer, account, requester) = customer_everywhere(&app).await;
    // Detection starts at its first poll: nothing of the seeded history alerts.
    polled_after(&app, Utc::now()).await;
    assert!(current(&app, &app.admin).await.is_empty());

    // Whole seconds: what every engine stores exactly (MySQL's `datetime` keeps no more).
    let now = Utc::now().trunc_subsecs(0);
    insert_ticket(&app, 900_001, requester, "complaint", Some(1), now).await;
    // Stamped before detection's position, committed after it read past that time (a
    // long transaction): the overlap window still finds it.
    read_past(&app, now).await;
    insert_ticket(&app, 900_002, requester, "inquiry", Some(2), now - TimeDelta::seconds(5)).await;
    insert_ticket(&app, 900_003, requester, "inquiry", Some(4), now).await;
    let order = "insert into orders (id, account_id, number, ordered_at, status, channel, currency, total_cents,
                 updated_at) values (900001, ?, 'HV-900001', ?, 'paid', 'web', 'EUR', 125000, ?)";
    app.sources
        .shop()
        .execute(&SqlTrace::default(), order, &[account.into(), now.into(), now.into()])
        .await
        .expect("order");

    let alerts = inbox(&app, &app.admin, 4).await;
    let mut kinds: Vec<&str> = alerts.iter().map(|a| a["kind"].as_str().expect("kind")).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["COMPLAINT", "HIGH_VALUE_ORDER", "LOW_SATISFACTION", "LOW_SATISFACTION"], "{alerts:#?}");
    assert!(alerts.iter().all(|a| a["customer"]["id"] == customer.as_str() && a["status"] == "OPEN"));
    let numbers: Vec<i64> = alerts.iter().map(|a| a["number"].as_i64().expect("number")).collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "newest first: {numbers:?}");

    // Changed again (answered, then closed): each poor score once, the complaint once.
    let later = Utc::now();
    let update = "update tickets set status = 'closed', updated_at = ? where id in (900001, 900002)";
    app.sources.helpdesk().execute(&SqlTrace::default(), update, &[later.into()]).await.expect("close");
    polled_after(&app, Utc::now()).await;
    assert_eq!(current(&app, &app.admin).await.len(), 4, "nothing reported twice");
    let rescored = Utc::now();
    let update = "update tickets set csat = 2, updated_at = ? where id = 900001";
    app.sources.helpdesk().execute(&SqlTrace::default(), update, &[rescored.into()]).await.expect("rescore");
    assert_eq!(inbox(&app, &app.admin, 5).await.len(), 5, "a new poor score is a new alert");

    // Through the policy: an analyst has no identity and no single order's amount; the
    // field is not in its schema at all.
    let analyst = app.token(Role::Analyst, None, None);
    let names = "{ alerts(first: 5) { edges { node { customer { firstName } } } } }";
    let refused = app.query_as(&analyst, names, json!({})).await;
    assert_eq!(codes(&refused), ["GRAPHQL_VALIDATION_FAILED"], "{refused:#}");
    let totals = "{ alerts(first: 5) { edges { node { orderTotal { amount } } } } }";
    assert_eq!(codes(&app.query_as(&analyst, totals, json!({})).await), ["GRAPHQL_VALIDATION_FAILED"]);
    let months =
        app.query_as(&analyst, "{ alerts(first: 50) { edges { node { kind occurredAt } } } }", json!({})).await;
    let occurred = months["data"]["alerts"]["edges"][0]["node"]["occurredAt"].as_str().expect("masked time");
    assert!(occurred.contains("-01T00:00:00"), "an analyst sees the month only: {occurred}");
    let admin_totals = app.data(totals, json!({})).await;
    let amounts: Vec<&Value> =
        admin_totals["alerts"]["edges"].as_array().expect("edges").iter().map(|e| &e["node"]["orderTotal"]).collect();
    assert!(amounts.contains(&&json!({ "amount": "1250.00" })), "{admin_totals:#}");

    // An analyst may not see a single order's amount: no high-value orders for them.
    let kinds: Vec<Value> = months["data"]["alerts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["kind"].clone())
        .collect();
    assert_eq!(kinds.len(), 4, "{months:#}");
    assert!(!kinds.contains(&json!("HIGH_VALUE_ORDER")), "{months:#}");

    // Partners: the shipped policy hides service data from them, so there is no inbox.
    let partner = app.partner_token(Role::Partner, None, Some("test-partner"), Some("alerts"));
    let none = app.query_as(&partner, PARTNER_INBOX, json!({})).await;
    assert_eq!(codes(&none), ["GRAPHQL_VALIDATION_FAILED"], "{none:#}");
    let by_id =
        app.query_as(&partner, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": alerts[0]["id"] })).await;
    assert_eq!(by_id["data"]["node"], Value::Null, "{by_id:#}");

    // The inbox: an agent sees their own and unassigned alerts; only staff change them,
    // and every change is audited.
    let alice = app.subject_token("alice", Role::Agent, Duration::from_secs(600));
    let bob = app.subject_token("bob", Role::Agent, Duration::from_secs(600));
    let first = alerts[0]["id"].as_str().expect("id").to_owned();
    let assign = "mutation($id: ID!, $to: String) { assignAlert(id: $id, assignee: $to) { status assignee } }";
    let to_bob = app.query_as(&alice, assign, json!({ "id": first, "to": "bob" })).await;
    assert_eq!(codes(&to_bob), ["FORBIDDEN"], "an agent assigns to themself only: {to_bob:#}");
    let mine = app.query_as(&alice, assign, json!({ "id": first, "to": "alice" })).await;
    assert_eq!(mine["data"]["assignAlert"], json!({ "status": "ACKNOWLEDGED", "assignee": "alice" }), "{mine:#}");
    assert_eq!(current(&app, &alice).await.len(), 5);
    assert_eq!(current(&app, &bob).await.len(), 4, "not someone else's");
    let resolve = "mutation($id: ID!) { resolveAlert(id: $id) { status } }";
    let not_his = app.query_as(&bob, resolve, json!({ "id": first })).await;
    assert_eq!(codes(&not_his), ["INVALID_ID"], "{not_his:#}");
    let analyst_tries = app.query_as(&analyst, resolve, json!({ "id": first })).await;
    assert_eq!(codes(&analyst_tries), ["FORBIDDEN"], "{analyst_tries:#}");
    let done = app.query_as(&alice, resolve, json!({ "id": first })).await;
    assert_eq!(done["data"]["resolveAlert"]["status"], "RESOLVED", "{done:#}");
    let open = app.query_as(&alice, "{ alerts(status: [OPEN]) { edges { node { id } } } }", json!({})).await;
    assert_eq!(open["data"]["alerts"]["edges"].as_array().expect("edges").len(), 4);
    let audit = "{ auditLog(first: 20, subject: \"alice\") { edges { node { action fields alert customerId } } } }";
    let entries = app.data(audit, json!({})).await;
    let changes: Vec<&Value> = entries["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["action"] == "ALERT_CHANGED")
        .collect();
    assert_eq!(changes.len(), 2, "the assignment and the resolution: {entries:#}");
    assert!(
        changes.iter().all(|c| c["alert"] == first.as_str() && c["customerId"] == customer.as_str()),
        "{changes:#?}"
    );
    let mut fields: Vec<&Value> = changes.iter().map(|c| &c["fields"]).collect();
    fields.sort_by_key(|f| f.to_string());
    assert_eq!(fields, [&json!(["assignee=alice"]), &json!(["status=RESOLVED"])]);
}

#[tokio::test]
async fn alerts_are_detected_once_and_shown_through_the_policy_on_sqlite() {
    alerts_are_detected_once_and_shown_through_the_policy(Backend::Sqlite).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL (C360_TEST_POSTGRES_URL)"]
async fn alerts_are_detected_once_and_shown_through_the_policy_on_postgres() {
    alerts_are_detected_once_and_shown_through_the_policy(Backend::Postgres).await;
}

#[tokio::test]
#[ignore = "needs MySQL (C360_TEST_MYSQL_URL)"]
async fn alerts_are_detected_once_and_shown_through_the_policy_on_mysql() {
    alerts_are_detected_once_and_shown_through_the_policy(Backend::Mysql).await;
}

/// Under a policy that shows partners service data: a partner sees the alerts of a
/// customer only with a token for the purpose `alerts` and that customer's consent to it.
#[tokio::test]
async fn a_partner_sees_alerts_only_for_the_purpose_and_with_consent() {
    let dir = tempfile::tempdir().expect("dir");
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policy.toml")).expect("policy");
    let (head, partner_section) = shipped.split_once("[roles.partner]").expect("a partner section");
    let shown = partner_section.replacen("service = \"hide\"", "service = \"show\"", 1);
    assert_ne!(shown, partner_section, "the shipped policy hides service data from partners");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, format!("{head}[roles.partner]{shown}")).expect("write the policy");
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 120, |c| {
        c.alerts.poll_interval = Duration::from_millis(200);
        c.policy = Some(policy);
    })
    .await;
    let (customer, _, requester) = customer_everywhere(&app).await;
    polled_after(&app, Utc::now()).await;
    insert_ticket(&app, 900_201, requester, "complaint", Some(1), Utc::now()).await;
    assert_eq!(inbox(&app, &app.admin, 2).await.len(), 2);

    let partner = "test-partner";
    let scopes = Some("customers:read tickets:read");
    let plain = app.partner_token(Role::Partner, scopes, Some(partner), None);
    let for_alerts = app.partner_token(Role::Partner, scopes, Some(partner), Some("alerts"));
    assert!(current_as(&app, &plain).await.is_empty(), "a token for no purpose sees no alerts");
    assert!(current_as(&app, &for_alerts).await.is_empty(), "no consent yet");
    let grant = "mutation($id: ID!, $p: String!, $u: String) { grantConsent(customerId: $id, partner: $p, purpose: $u) { id } }";
    let granted = app.query(grant, json!({ "id": customer, "p": partner, "u": "alerts" })).await;
    assert!(granted["errors"].is_null(), "{granted:#}");
    let seen = current_as(&app, &for_alerts).await;
    assert_eq!(seen.len(), 2, "the consenting customer's alerts");
    assert!(seen.iter().all(|a| a["customer"]["id"] == customer.as_str()));
    assert!(current_as(&app, &plain).await.is_empty(), "still nothing for a token without the purpose");
    let number = "{ alerts { edges { node { number } } } }";
    assert_eq!(codes(&app.query_as(&for_alerts, number, json!({})).await), ["GRAPHQL_VALIDATION_FAILED"]);

    // Live, too: a partner's subscription carries the consenting customer's alerts only.
    let other = linked_requesters(&app).await.into_iter().find(|(c, _)| *c != customer).expect("another customer");
    let follow = "subscription { serviceAlerts { node { kind customer { id } } } }";
    let mut stream = EventStream::open(&app, &for_alerts, follow).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    insert_ticket(&app, 900_202, other.1, "complaint", Some(1), Utc::now()).await;
    polled_after(&app, Utc::now()).await;
    insert_ticket(&app, 900_203, requester, "inquiry", Some(2), Utc::now()).await;
    let (name, data) = stream.next().await;
    let payload: Value = serde_json::from_str(&data).expect("json");
    assert_eq!(name, "next", "{data}");
    assert_eq!(
        payload["data"]["serviceAlerts"]["node"],
        json!({ "kind": "LOW_SATISFACTION", "customer": { "id": customer } }),
        "the other customer's two alerts, detected first, are not the partner's: {payload:#}"
    );

    // A page says nothing of other customers' alerts: not by its size, not by whether
    // more follow. The partner has three; the admin sees five.
    let page = "{ alerts(first: 3) { totalCount pageInfo { hasNextPage } edges { node { customer { id } } } } }";
    assert_eq!(inbox(&app, &app.admin, 5).await.len(), 5);
    let admin_page = app.data(page, json!({})).await;
    assert_eq!(admin_page["alerts"]["pageInfo"]["hasNextPage"], true, "{admin_page:#}");
    assert_eq!(admin_page["alerts"]["totalCount"], 5, "{admin_page:#}");
    let seen = app.query_as(&for_alerts, page, json!({})).await;
    let edges = seen["data"]["alerts"]["edges"].as_array().cloned().unwrap_or_else(|| panic!("{seen:#}"));
    assert_eq!(edges.len(), 3, "{seen:#}");
    assert!(edges.iter().all(|e| e["node"]["customer"]["id"] == customer.as_str()), "{seen:#}");
    assert_eq!(seen["data"]["alerts"]["pageInfo"]["hasNextPage"], false, "{seen:#}");
    assert_eq!(seen["data"]["alerts"]["totalCount"], 3, "{seen:#}");
}

/// Customers with a helpdesk record among the first 100: (id, requester).
async fn linked_requesters(app: &TestApp) -> Vec<(String, i64)> {
    let page =
        app.data("{ customers(first: 100) { edges { node { id sourceRecords { source key } } } } }", json!({})).await;
    let mut found = Vec::new();
    for edge in page["customers"]["edges"].as_array().expect("edges") {
        let records = edge["node"]["sourceRecords"].as_array().expect("records");
        if let Some(key) = records.iter().find(|r| r["source"] == "HELPDESK").and_then(|r| r["key"].as_str()) {
            found.push((edge["node"]["id"].as_str().expect("id").to_owned(), key.parse().expect("a number")));
        }
    }
    found
}

/// A partner's inbox now.
async fn current_as(app: &TestApp, token: &str) -> Vec<Value> {
    listed(app, token, PARTNER_INBOX, 0).await
}

/// Only the holder of the `alerts` lease detects: while another replica holds it, a
/// complaint waits; when that lease expires, this replica takes over from the position.
#[tokio::test]
async fn only_the_lease_holder_detects() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 60, |c| {
        c.alerts.poll_interval = Duration::from_millis(200);
        c.alerts.lease = Duration::from_secs(2);
    })
    .await;
    let (_, _, requester) = customer_everywhere(&app).await;
    polled_after(&app, Utc::now()).await;
    let hub = app.sources.hub();
    let until = Utc::now() + TimeDelta::seconds(3);
    let sql =
        "update job_leases set holder = 'another-replica', token = token + 1, expires_at = ? where name = 'alerts'";
    assert_eq!(hub.execute(&SqlTrace::default(), sql, &[until.into()]).await.expect("take the lease"), 1);
    insert_ticket(&app, 900_101, requester, "complaint", None, Utc::now()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(current(&app, &app.admin).await.is_empty(), "another replica holds the lease");
    let alerts = inbox(&app, &app.admin, 1).await;
    assert_eq!(alerts.len(), 1, "taken over once the other lease expired");
    assert_eq!(alerts[0]["kind"], "COMPLAINT");
}

/// The next `next` of operation `id` on `socket`: its payload.
async fn event(socket: &mut Socket, id: &str) -> Value {
    match next(socket).await {
        Frame::Json(message) if message["type"] == "next" && message["id"] == id => message["payload"].clone(),
        other => panic!("expected the next event of {id}, got {other:?}"),
    }
}

const FOLLOW: &str = "subscription($after: String) { serviceAlerts(after: $after) {
    cursor node { kind csat customer { id } } } }";

/// Subscriptions over the websocket: each alert once, through the viewer's policy;
/// `after` replays what was missed and goes live with no gap and no duplicate.
#[tokio::test]
async fn a_subscription_delivers_each_alert_once_and_resumes_after_a_cursor() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 120, |c| {
        c.alerts.poll_interval = Duration::from_millis(200);
    })
    .await;
    let (customer, _, requester) = customer_everywhere(&app).await;
    let kinds = "{ __schema { subscriptionType { name fields { name } } } }";
    let schema = app.data(kinds, json!({})).await;
    assert_eq!(
        schema["__schema"]["subscriptionType"],
        json!({ "name": "Subscription", "fields": [{ "name": "serviceAlerts" }] })
    );
    polled_after(&app, Utc::now()).await;
    // Over a plain POST a subscription has nothing to stream to: refused, nothing runs.
    let posted = app.query(FOLLOW, json!({})).await;
    assert_eq!(codes(&posted), ["GRAPHQL_VALIDATION_FAILED"], "{posted:#}");
    assert!(posted.get("data").is_none_or(Value::is_null), "{posted:#}");

    let agent = app.token(Role::Agent, None, None);
    let mut live = connect(&app, &agent).await;
    send(&mut live, json!({ "id": "a", "type": "subscribe", "payload": { "query": FOLLOW } })).await;
    // A partner's schema has no inbox (service data is hidden from partners).
    let partner = app.partner_token(Role::Partner, None, Some("test-partner"), Some("alerts"));
    let mut refused = connect(&app, &partner).await;
    send(&mut refused, json!({ "id": "p", "type": "subscribe", "payload": { "query": FOLLOW } })).await;
    match next(&mut refused).await {
        Frame::Json(error) => {
            assert_eq!(error["type"], "error", "{error:#}");
            assert_eq!(error["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{error:#}");
        }
        other => panic!("{other:?}"),
    }
    // Give the subscription its start (it follows from the log's end when it opens).
    tokio::time::sleep(Duration::from_millis(300)).await;

    insert_ticket(&app, 900_301, requester, "complaint", None, Utc::now()).await;
    let first = event(&mut live, "a").await;
    let request_id = first["extensions"]["requestId"].as_str().expect("each event names its request").to_owned();
    assert_eq!(
        first["data"]["serviceAlerts"]["node"],
        json!({ "kind": "COMPLAINT", "csat": null, "customer": { "id": customer } }),
        "{first:#}"
    );
    let cursor = first["data"]["serviceAlerts"]["cursor"].as_str().expect("cursor").to_owned();

    // An event that shows contact data is audited as a read of its own.
    let emails = "subscription { serviceAlerts { node { customer { id email } } } }";
    send(&mut live, json!({ "id": "e", "type": "subscribe", "payload": { "query": emails } })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    insert_ticket(&app, 900_305, requester, "complaint", None, Utc::now()).await;
    let shown = loop {
        let message = next(&mut live).await;
        match message {
            Frame::Json(m) if m["id"] == "e" => break m["payload"].clone(),
            Frame::Json(m) if m["id"] == "a" => continue,
            other => panic!("{other:?}"),
        }
    };
    assert!(shown["data"]["serviceAlerts"]["node"]["customer"]["email"].is_string(), "{shown:#}");
    let read_id = shown["extensions"]["requestId"].as_str().expect("request id");
    assert_ne!(read_id, request_id, "each subscription is a request of its own");
    let entries = crate::audit::entries_of(&app, read_id).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["action"], "READ");
    assert_eq!(entries[0]["fields"], json!(["email"]));
    send(&mut live, json!({ "id": "e", "type": "complete" })).await;

    // Two more while nobody listens with that cursor, then one once it follows again.
    send(&mut live, json!({ "id": "a", "type": "complete" })).await;
    insert_ticket(&app, 900_302, requester, "inquiry", Some(1), Utc::now()).await;
    insert_ticket(&app, 900_303, requester, "complaint", Some(2), Utc::now()).await;
    assert_eq!(inbox(&app, &app.admin, 5).await.len(), 5, "two complaints, two poor scores and a complaint");
    let mut again = connect(&app, &agent).await;
    let resume = json!({ "query": FOLLOW, "variables": { "after": cursor } });
    send(&mut again, json!({ "id": "b", "type": "subscribe", "payload": resume })).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let payload = event(&mut again, "b").await;
        seen.push(payload["data"]["serviceAlerts"]["node"]["kind"].as_str().expect("kind").to_owned());
    }
    insert_ticket(&app, 900_304, requester, "complaint", None, Utc::now()).await;
    let live_again = event(&mut again, "b").await;
    seen.push(live_again["data"]["serviceAlerts"]["node"]["kind"].as_str().expect("kind").to_owned());
    // Replayed in log order (the ticket's complaint before its score), then live.
    assert_eq!(seen, ["COMPLAINT", "LOW_SATISFACTION", "COMPLAINT", "LOW_SATISFACTION", "COMPLAINT"]);
    let all = inbox(&app, &app.admin, 6).await;
    assert_eq!(all.len(), 6, "each once in the log");
    // Nothing further arrives: no duplicate.
    match tokio::time::timeout(Duration::from_millis(800), next(&mut again)).await {
        Err(_) => {}
        Ok(frame) => panic!("nothing more was due: {frame:?}"),
    }
}

/// An event stream (graphql-sse, distinct connections) read as a client would.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(app: &TestApp, token: &str, query: &str) -> EventStream {
        let response = reqwest::Client::new()
            .post(format!("{}/graphql", app.address))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "text/event-stream")
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(response.status(), 200);
        let media = response.headers()["content-type"].to_str().expect("type").to_owned();
        assert!(media.starts_with("text/event-stream"), "{media}");
        EventStream { response, buffer: String::new() }
    }

    /// The next event's name and data (comments skipped); fails after 20 s of silence.
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if !name.is_empty() {
                    return (name, data.join("\n"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .expect("read");
            let chunk = chunk.expect("the stream is open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Server-Sent Events for clients whose proxies block websockets: the same alerts, and a
/// stream that ends with `UNAUTHENTICATED` when its token expires.
#[tokio::test]
async fn server_sent_events_carry_alerts_until_the_token_expires() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 120, |c| {
        c.alerts.poll_interval = Duration::from_millis(200);
        c.auth.leeway = Duration::ZERO;
    })
    .await;
    let (customer, _, requester) = customer_everywhere(&app).await;
    polled_after(&app, Utc::now()).await;
    // A query over the stream: one `next`, then `complete`.
    let mut query = EventStream::open(&app, &app.admin, "{ alerts { pageInfo { hasNextPage } } }").await;
    let (name, data) = query.next().await;
    assert_eq!(
        (
            name.as_str(),
            serde_json::from_str::<Value>(&data).expect("json")["data"]["alerts"]["pageInfo"]["hasNextPage"].clone()
        ),
        ("next", json!(false))
    );
    assert_eq!(query.next().await.0, "complete");

    let token = app.subject_token("brief", Role::Agent, Duration::from_secs(4));
    let mut stream = EventStream::open(&app, &token, FOLLOW).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    insert_ticket(&app, 900_401, requester, "complaint", Some(1), Utc::now()).await;
    for kind in ["COMPLAINT", "LOW_SATISFACTION"] {
        let (name, data) = stream.next().await;
        let payload: Value = serde_json::from_str(&data).expect("json");
        assert_eq!(name, "next", "{data}");
        assert_eq!(payload["data"]["serviceAlerts"]["node"]["kind"], kind, "{payload:#}");
        assert_eq!(payload["data"]["serviceAlerts"]["node"]["customer"]["id"], customer.as_str());
    }
    let (name, data) = stream.next().await;
    let payload: Value = serde_json::from_str(&data).expect("json");
    assert_eq!(name, "next", "{data}");
    assert_eq!(payload["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{payload:#}");
    assert_eq!(payload["errors"][0]["message"], "Forbidden: the token has expired");
    assert_eq!(stream.next().await.0, "complete");

    // No stream at all without a valid token.
    let refused = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": FOLLOW }))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 401);
}

/// A token holds a bounded number of subscriptions open; a finished one frees its place.
#[tokio::test]
async fn a_token_holds_a_bounded_number_of_subscriptions() {
    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 0, |c| {
        c.graphql.max_subscriptions_per_token = 2;
    })
    .await;
    let agent = app.token(Role::Agent, None, None);
    let mut socket = connect(&app, &agent).await;
    let subscribe = |id: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": FOLLOW } });
    send(&mut socket, subscribe("a")).await;
    send(&mut socket, subscribe("b")).await;
    assert!(quiet(&mut socket).await, "two are allowed");
    send(&mut socket, subscribe("c")).await;
    match next(&mut socket).await {
        Frame::Json(error) => {
            assert_eq!((error["type"].as_str(), error["id"].as_str()), (Some("error"), Some("c")), "{error:#}");
            assert_eq!(error["payload"][0]["extensions"]["code"], "LIMIT_EXCEEDED", "{error:#}");
            assert_eq!(error["payload"][0]["extensions"]["limit"], "subscriptions", "{error:#}");
        }
        other => panic!("{other:?}"),
    }
    // The same token on another connection counts too.
    let mut other = connect(&app, &agent).await;
    send(&mut other, subscribe("x")).await;
    assert!(matches!(next(&mut other).await, Frame::Json(e) if e["type"] == "error"));
    send(&mut socket, json!({ "id": "a", "type": "complete" })).await;
    match next(&mut socket).await {
        Frame::Json(done) => assert_eq!((done["type"].as_str(), done["id"].as_str()), (Some("complete"), Some("a"))),
        other => panic!("{other:?}"),
    }
    send(&mut socket, subscribe("d")).await;
    let answer = tokio::time::timeout(Duration::from_millis(500), next(&mut socket)).await;
    assert!(answer.is_err(), "a finished subscription frees its place: {answer:?}");
}

/// Whether `socket` stays silent for half a second.
async fn quiet(socket: &mut Socket) -> bool {
    tokio::time::timeout(Duration::from_millis(500), next(socket)).await.is_err()
}
