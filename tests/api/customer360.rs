//! The customer-360 query on every engine and on a mixed deployment: data, pagination,
//! lookups, and the statement count that proves batching.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, statements};

const CUSTOMER_360: &str = r#"
query Page($first: Int!, $after: String) {
  customers(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id displayName email phone
      purchaseSummary { orderCount cancelledCount returnedCount totalSpent { amount currency } lastOrderAt }
      orders(first: 5) { totalCount edges { node { id number orderedAt status total { amount currency }
                          lines { sku productName quantity unitPrice { amount currency } lineTotal { amount } } } } }
      tickets(first: 5) { totalCount edges { node { id openedAt category status csat } } }
      serviceSummary { ticketCount openTickets complaintCount averageCsat }
      campaignResponses(first: 5) { totalCount edges { node { campaign { id name channel } sentAt openedAt clickedAt convertedAt } } }
      sourceRecords { source key matchedBy }
    } }
  }
}"#;

/// The query of the issue: orders with lines, tickets, campaign responses with
/// campaigns, and both summaries, without any totalCount.
const ISSUE_QUERY: &str = r#"
query Page($first: Int!) { customers(first: $first) { edges { node {
    id displayName email phone
    purchaseSummary { orderCount totalSpent { amount currency } lastOrderAt }
    orders(first: 5) { edges { node { number orderedAt status total { amount currency }
                                      lines { sku productName quantity unitPrice { amount currency } } } } }
    tickets(first: 5) { edges { node { openedAt category status csat } } }
    serviceSummary { openTickets complaintCount averageCsat }
    campaignResponses(first: 5) { edges { node { campaign { name channel } sentAt openedAt clickedAt convertedAt } } }
    sourceRecords { source key matchedBy }
} } } }"#;

fn cents(amount: &Value) -> i64 {
    let s = amount.as_str().expect("amount is a string");
    let (units, fraction) = s.split_once('.').expect("two decimals");
    assert_eq!(fraction.len(), 2, "{s}");
    units.parse::<i64>().expect("units") * 100 + fraction.parse::<i64>().expect("fraction")
}

/// The whole suite, run on one deployment.
async fn customer_360(layout: Layout) {
    let app = TestApp::spawn(layout, 150).await;

    // Batching: a page of 50 costs exactly what a page of 5 costs; the issue's query at
    // most 10 statements, and every totalCount adds at most one more per source.
    for (query, limit) in [(ISSUE_QUERY, 10), (CUSTOMER_360, 13)] {
        let small = app.query(query, json!({ "first": 5 })).await;
        let large = app.query(query, json!({ "first": 50 })).await;
        assert!(small.get("errors").is_none() && large.get("errors").is_none(), "{small:#}\n{large:#}");
        let (small_n, small_by) = statements(&small);
        let (large_n, large_by) = statements(&large);
        assert_eq!(small_by, large_by, "statements per source must not depend on page size");
        assert!(large_n <= limit, "{large_n} statements: {large_by}");
        assert!(small_n >= 8, "the trace counts real statements: {small_by}");
        eprintln!("statements for 5 and for 50 customers: {large_n} {large_by}");
    }
    // The partner path too (the row rule's consent checks are batched like the rest), and
    // lookups: ten of them in one request are one statement.
    let partner = app.token(c360::auth::Role::Partner, None, Some("acme-insurance"));
    let partner_page = "query Page($first: Int!) { customers(first: $first) { totalCount edges { node {
        id displayName email phone address { city country } } } } }";
    let small = app.query_as(&partner, partner_page, json!({ "first": 5 })).await;
    let large = app.query_as(&partner, partner_page, json!({ "first": 50 })).await;
    assert!(small.get("errors").is_none() && large.get("errors").is_none(), "{small:#}\n{large:#}");
    assert!(large["data"]["customers"]["edges"].as_array().map(Vec::len) > Some(5), "{large:#}");
    let (large_n, large_by) = statements(&large);
    assert_eq!(statements(&small).1, large_by, "a partner's statements must not depend on page size");
    assert!(large_n <= 8, "{large_n} statements for a partner's page: {large_by}");
    let emails: Vec<String> =
        app.data("{ customers(first: 10) { edges { node { email } } } }", json!({})).await["customers"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter_map(|e| e["node"]["email"].as_str().map(str::to_owned))
            .collect();
    let lookups: Vec<String> =
        emails.iter().enumerate().map(|(i, e)| format!("e{i}: customerByEmail(email: \"{e}\") {{ id }}")).collect();
    let found = app.query(&format!("{{ {} }}", lookups.join(" ")), json!({})).await;
    assert_eq!(found["extensions"]["sqlStatements"]["hub"], 1, "{} lookups in one statement: {found:#}", emails.len());

    // A profile by id costs two statements: the customer's links, then its CRM record, or
    // for a guest the CRM does not know, its shop account (asked for only then).
    // (Guests come last: the resolver founds customers from the CRM first.)
    let mut records = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .data(
                "query($after: String) { customers(first: 100, after: $after) {
                    pageInfo { hasNextPage endCursor } edges { node { id sourceRecords { source } } } } }",
                json!({ "after": after }),
            )
            .await;
        records.extend(page["customers"]["edges"].as_array().expect("edges").iter().cloned());
        if page["customers"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["customers"]["pageInfo"]["endCursor"].clone();
    }
    let with = |crm: bool| {
        records.iter().find_map(|e| {
            let sources = e["node"]["sourceRecords"].as_array().expect("records");
            let has = |source: &str| sources.iter().any(|r| r["source"] == source);
            (has("CRM") == crm && has("SHOP")).then(|| e["node"]["id"].clone())
        })
    };
    let profile =
        "query($id: ID!) { customer(id: $id) { displayName firstName email phone birthDate address { city } } }";
    for (who, id) in [("a CRM customer with a shop account", with(true)), ("a guest", with(false))] {
        let id = id.unwrap_or_else(|| panic!("no {who} among {} customers", records.len()));
        let response = app.query(profile, json!({ "id": id })).await;
        assert!(response["data"]["customer"]["email"].is_string(), "{who}: {response:#}");
        let (n, by) = statements(&response);
        assert_eq!(n, 2, "{who}'s profile: {by}");
    }

    let large = app.query(CUSTOMER_360, json!({ "first": 50 })).await;

    // Every customer once, in a stable order, through opaque cursors.
    let total = large["data"]["customers"]["totalCount"].as_i64().expect("totalCount");
    assert!(total >= 150, "{total} customers for 150 people and strangers");
    let mut seen = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = app
            .data("query($after: String) { customers(first: 40, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }", json!({ "after": after }))
            .await;
        for edge in page["customers"]["edges"].as_array().expect("edges") {
            assert!(seen.insert(edge["node"]["id"].as_str().expect("id").to_owned()), "a customer appeared twice");
        }
        if !page["customers"]["pageInfo"]["hasNextPage"].as_bool().expect("hasNextPage") {
            break;
        }
        after = page["customers"]["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len() as i64, total);

    // The data holds together.
    let customers = large["data"]["customers"]["edges"].as_array().expect("edges");
    let mut with_orders = None;
    for c in customers.iter().map(|e| &e["node"]) {
        assert!(!c["sourceRecords"].as_array().expect("records").is_empty());
        let summary = &c["purchaseSummary"];
        let counted = summary["orderCount"].as_i64().unwrap_or(0)
            + summary["cancelledCount"].as_i64().unwrap_or(0)
            + summary["returnedCount"].as_i64().unwrap_or(0);
        assert_eq!(c["orders"]["totalCount"].as_i64(), Some(counted), "orders.totalCount vs summary");
        let orders = c["orders"]["edges"].as_array().expect("orders");
        let times: Vec<&str> = orders.iter().map(|o| o["node"]["orderedAt"].as_str().expect("orderedAt")).collect();
        let parsed: Vec<chrono::DateTime<chrono::FixedOffset>> =
            times.iter().map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339")).collect();
        assert!(parsed.windows(2).all(|w| w[0] >= w[1]), "orders newest first: {times:?}");
        for o in orders.iter().map(|o| &o["node"]) {
            let lines: i64 =
                o["lines"].as_array().expect("lines").iter().map(|l| cents(&l["lineTotal"]["amount"])).sum();
            assert_eq!(lines, cents(&o["total"]["amount"]), "lines add up to the order total");
        }
        if counted >= 3 && with_orders.is_none() {
            with_orders = Some(c["id"].as_str().expect("id").to_owned());
        }
        let service = &c["serviceSummary"];
        assert_eq!(c["tickets"]["totalCount"], service["ticketCount"]);
        if let Some(avg) = service["averageCsat"].as_f64() {
            assert!((1.0..=5.0).contains(&avg));
        }
    }

    // Nested pagination continues exactly where the first page stopped.
    let id = with_orders.expect("some customer has three orders");
    let q = "query($id: ID!, $after: String) { customer(id: $id) { orders(first: 2, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id orderedAt } } } } }";
    let first = app.data(q, json!({ "id": id })).await;
    let all = app.data(&q.replace("first: 2", "first: 100"), json!({ "id": id })).await;
    let cursor = first["customer"]["orders"]["pageInfo"]["endCursor"].clone();
    let second = app.data(q, json!({ "id": id, "after": cursor })).await;
    let ids = |v: &Value| -> Vec<String> {
        v["customer"]["orders"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let mut paged = ids(&first);
    paged.extend(ids(&second));
    assert_eq!(paged, ids(&all)[..paged.len()].to_vec());

    // node(id) returns the same objects; lookups find the same customer.
    let c = &customers[0]["node"];
    let node = app
        .data("query($id: ID!) { node(id: $id) { id ... on Customer { displayName } } }", json!({ "id": c["id"] }))
        .await;
    assert_eq!(node["node"]["displayName"], c["displayName"]);
    if let Some(order) =
        customers.iter().flat_map(|e| e["node"]["orders"]["edges"].as_array().cloned().unwrap_or_default()).next()
    {
        let node = app
            .data("query($id: ID!) { node(id: $id) { ... on Order { number } } }", json!({ "id": order["node"]["id"] }))
            .await;
        assert_eq!(node["node"]["number"], order["node"]["number"]);
    }
    let email = customers.iter().find_map(|e| {
        e["node"]["email"].as_str().filter(|_| e["node"]["sourceRecords"].as_array().is_some_and(|r| r.len() > 1))
    });
    if let Some(email) = email {
        let messy = format!("  {}  ", email.to_uppercase());
        let found = app.query("query($e: String!) { customerByEmail(email: $e) { id } }", json!({ "e": messy })).await;
        if found.get("errors").is_none() {
            assert!(found["data"]["customerByEmail"]["id"].is_string(), "{found:#}");
        } else {
            assert_eq!(crate::helpers::codes(&found), ["AMBIGUOUS_MATCH"]);
        }
    }
    let record = &c["sourceRecords"][0];
    let by_key = app
        .data(
            "query($s: SourceName!, $k: String!) { customerBySourceKey(source: $s, key: $k) { id } }",
            json!({ "s": record["source"], "k": record["key"] }),
        )
        .await;
    assert_eq!(by_key["customerBySourceKey"]["id"], c["id"]);
}

#[tokio::test]
async fn customer_360_on_sqlite() {
    customer_360(Layout::all(Backend::Sqlite)).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn customer_360_on_postgres() {
    customer_360(Layout::all(Backend::Postgres)).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn customer_360_on_mysql() {
    customer_360(Layout::all(Backend::Mysql)).await;
}

/// crm on PostgreSQL, shop on MariaDB, helpdesk on SQLite, marketing on PostgreSQL,
/// the hub store on MariaDB.
#[tokio::test]
#[ignore = "PostgreSQL and MySQL/MariaDB: set both URLs and run `cargo test -- --include-ignored`"]
async fn customer_360_on_a_mixed_deployment() {
    use c360::sources::DbName;
    customer_360(Layout::mixed(
        Backend::Postgres,
        &[(DbName::Shop, Backend::Mysql), (DbName::Helpdesk, Backend::Sqlite), (DbName::Hub, Backend::Mysql)],
    ))
    .await;
}
