//! The policy matrix: for every viewer and every field with a privacy class, the field is
//! shown, masked or hidden as the shipped policy says, by every path (plain, alias,
//! named fragment, inline fragment, `node`), and hidden fields are indistinguishable from
//! fields that do not exist.

use c360::auth::{Role, Viewer, parse_scopes};
use c360::policy::schema::PrivacyTable;
use c360::policy::{Decision, Policy, mask};
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp};

/// The viewers of the matrix: each role with its usual scopes, and the scope variants the
/// policy distinguishes.
fn viewers() -> Vec<(&'static str, Role, String, Option<&'static str>)> {
    let mut out = Vec::new();
    for role in [Role::Admin, Role::Agent, Role::Frontend, Role::Analyst, Role::Partner] {
        let partner = (role == Role::Partner).then_some("acme-insurance");
        out.push(("usual scopes", role, role.default_scopes().to_owned(), partner));
    }
    out.push(("without pii:read", Role::Agent, Role::Agent.default_scopes().replace(" pii:read", ""), None));
    out.push(("with pii:read", Role::Frontend, format!("{} pii:read", Role::Frontend.default_scopes()), None));
    out.push(("without orders:read", Role::Frontend, "customers:read tickets:read".into(), None));
    out.push((
        "with pii:read and insights:read",
        Role::Partner,
        "customers:read pii:read insights:read".into(),
        Some("acme-insurance"),
    ));
    out
}

/// A selection for a field of an object type (scalars need none).
fn subselection(field: &str) -> &'static str {
    match field {
        "address" => " { city country }",
        "purchaseSummary" => " { orderCount }",
        "serviceSummary" => " { ticketCount }",
        "orders" | "tickets" | "campaignResponses" | "notes" => " { totalCount }",
        "consents" => " { partner }",
        "sourceRecords" => " { key }",
        "total" => " { amount currency }",
        "lines" => " { sku }",
        "campaign" => " { name }",
        _ => "",
    }
}

/// The ways to ask for `field` on `type_name` at the end of `root` (a path opening one
/// brace per level, e.g. `customer(id: $id) { address`).
fn forms(root: &str, type_name: &str, field: &str) -> Vec<(&'static str, String)> {
    let sub = subselection(field);
    let close = " }".repeat(root.matches('{').count());
    let query = |inner: String, rest: &str| format!("query($id: ID!) {{ r: {root} {{ {inner} }}{close} }}{rest}");
    vec![
        ("plain", query(format!("{field}{sub}"), "")),
        ("alias", query(format!("x: {field}{sub}"), "")),
        ("fragment", query("...F".into(), &format!(" fragment F on {type_name} {{ {field}{sub} }}"))),
        ("inline fragment", query(format!("... on {type_name} {{ {field}{sub} }}"), "")),
    ]
}

/// The one value a form selected: follow `hops` from `r`, then take the only field left.
fn dig(data: &Value, hops: &[&str]) -> Value {
    let mut v = data["r"].clone();
    for hop in hops {
        v = if *hop == "edges" { v["edges"][0]["node"].clone() } else { v[*hop].clone() };
    }
    v.as_object()
        .and_then(|o| o.iter().find(|(k, _)| *k != "__typename"))
        .map(|(_, v)| v.clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn policy_matrix_on_sqlite() {
    policy_matrix(Backend::Sqlite).await;
}

#[tokio::test]
async fn policy_matrix_on_postgres() {
    policy_matrix(Backend::Postgres).await;
}

#[tokio::test]
async fn policy_matrix_on_mysql() {
    policy_matrix(Backend::Mysql).await;
}

/// Every classified field is shown, masked or hidden as the shipped policy says.
async fn policy_matrix(backend: Backend) {
    let layout = Layout::all(backend);
    if !layout.available() {
        return;
    }
    let app = TestApp::spawn(layout, 80).await;
    let table = PrivacyTable::from_sdl(&c360::graphql::sdl()).expect("schema");
    let policy = Policy::load(None, &table).expect("policy");
    let classified = table.classified();
    assert!(classified.len() >= 35, "every customer-data field has a class: {}", classified.len());

    // A customer the partner may see (consent for acme-insurance), with an order, a ticket
    // and a campaign response, so every path has data.
    let partner = app.token(Role::Partner, None, Some("acme-insurance"));
    let listed = app.query_as(&partner, "{ customers(first: 50) { edges { node { id } } } }", json!({})).await;
    let ids: Vec<String> = listed["data"]["customers"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(!ids.is_empty(), "the seed has customers consenting to acme-insurance");
    let mut subject = None;
    for id in &ids {
        let q = "query($id: ID!) { customer(id: $id) { email birthDate address { street }
                   orders(first: 1) { edges { node { id } } } tickets(first: 1) { edges { node { id } } }
                   campaignResponses(first: 1) { totalCount } } }";
        let c = app.data(q, json!({ "id": id })).await["customer"].clone();
        let order = c["orders"]["edges"][0]["node"]["id"].as_str().map(str::to_owned);
        let ticket = c["tickets"]["edges"][0]["node"]["id"].as_str().map(str::to_owned);
        let complete = !c["email"].is_null() && !c["birthDate"].is_null() && !c["address"]["street"].is_null();
        if let (true, Some(order), Some(ticket), true) =
            (complete, order, ticket, c["campaignResponses"]["totalCount"].as_i64() > Some(0))
        {
            subject = Some((id.clone(), order, ticket));
            break;
        }
    }
    let (customer, order, ticket) = subject.expect("a consenting customer with data in every source");

    let mut cells = 0;
    for (variant, role, scope, partner) in viewers() {
        let token = app.token(role, Some(&scope), partner);
        let viewer = Viewer {
            subject: "matrix".into(),
            role,
            scopes: parse_scopes(&scope),
            partner: partner.map(str::to_owned),
            purpose: None,
        };
        let who = format!("{role} ({variant})");
        let introspected = app.query_as(&token, "{ __schema { types { name fields { name } } } }", json!({})).await;
        let types = introspected["data"]["__schema"]["types"].as_array().expect("types").clone();
        let listed = |t: &str, f: &str| {
            types.iter().any(|ty| {
                ty["name"] == t && ty["fields"].as_array().is_some_and(|fs| fs.iter().any(|x| x["name"] == f))
            })
        };
        for (type_name, field, privacy) in &classified {
            let decision = policy.decide(&viewer, privacy.class);
            let cell = format!("{who}: {type_name}.{field} ({}) should be {decision}", privacy.class);
            assert_eq!(listed(type_name, field), decision != Decision::Hide, "introspection: {cell}");
            cells += 1;

            let (root, hops, id): (&str, &[&str], &String) = match type_name.as_str() {
                "Customer" => ("customer(id: $id)", &[], &customer),
                "Address" => ("customer(id: $id) { address", &["address"], &customer),
                "Order" => ("node(id: $id) { __typename ... on Order", &[], &order),
                "Ticket" => ("node(id: $id) { __typename ... on Ticket", &[], &ticket),
                "CampaignResponse" => (
                    "customer(id: $id) { campaignResponses(first: 1) { edges { node",
                    &["campaignResponses", "edges"],
                    &customer,
                ),
                other => panic!("no path to {other} in the matrix: add one"),
            };
            // The parent path may itself be hidden: then the field is unreachable anyway.
            let parent_hidden = match type_name.as_str() {
                "Address" => policy.decide(&viewer, c360::policy::PrivacyClass::Contact) == Decision::Hide,
                "CampaignResponse" => policy.decide(&viewer, c360::policy::PrivacyClass::Marketing) == Decision::Hide,
                _ => false,
            };
            if parent_hidden {
                continue;
            }
            for (form, query) in forms(root, type_name, field) {
                let seen = app.query_as(&token, &query, json!({ "id": id })).await;
                if decision == Decision::Hide {
                    let errors = seen["errors"].as_array().unwrap_or_else(|| panic!("{cell} via {form}: {seen:#}"));
                    assert_eq!(errors.len(), 1, "{cell} via {form}: {seen:#}");
                    assert_eq!(
                        errors[0]["message"],
                        format!("Unknown field \"{field}\" on type \"{type_name}\"."),
                        "{cell} via {form}"
                    );
                    assert!(seen.get("data").is_none_or(Value::is_null), "{cell} via {form}: {seen:#}");
                    continue;
                }
                assert!(seen.get("errors").is_none(), "{cell} via {form}: {seen:#}");
                let truth = app.query(&query, json!({ "id": id })).await;
                let (got, raw) = (dig(&seen["data"], hops), dig(&truth["data"], hops));
                let expected = match decision {
                    Decision::Mask => {
                        mask::apply(privacy.mask, async_graphql::Value::from_json(raw.clone()).expect("value"))
                            .into_json()
                            .expect("json")
                    }
                    _ => raw.clone(),
                };
                assert_eq!(got, expected, "{cell} via {form}");
                if decision == Decision::Mask && privacy.mask != Some(c360::policy::MaskFormat::CityCountry) {
                    assert_ne!(got, raw, "{cell} via {form}: a masked value must differ from the raw one");
                }
            }
        }
    }
    assert!(cells >= 300, "matrix size {cells}");
    eprintln!("policy matrix: {cells} cells (viewers × classified fields), each by 4 query forms");
}

#[tokio::test]
async fn hidden_fields_and_types_look_exactly_like_unknown_ones() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 10).await;
    let analyst = app.token(Role::Analyst, None, None);
    let ask = |q: &'static str| {
        let analyst = analyst.clone();
        let app = &app;
        async move { app.query_as(&analyst, q, json!({})).await }
    };

    // Hidden and non-existent fields give the same answer, name for name.
    let hidden = ask("{ customers(first: 1) { edges { node { email } } } }").await;
    let unknown = ask("{ customers(first: 1) { edges { node { xmail } } } }").await;
    assert_eq!(hidden.to_string().replace("email", "xmail"), unknown.to_string());
    assert_eq!(hidden["errors"][0]["message"], "Unknown field \"email\" on type \"Customer\".");

    // No suggestions: a misspelling never reveals a hidden name, nor a visible one.
    let typo = ask("{ customers(first: 1) { edges { node { emial } } } }").await;
    assert!(!typo.to_string().contains("Did you mean"), "{typo}");

    // Nothing inside a hidden field is validated (an unknown field's insides are not).
    let inside = ask("{ customers(first: 1) { edges { node { address(bogus: 1) { nope } } } } }").await;
    assert_eq!(inside["errors"].as_array().map(Vec::len), Some(1), "{inside:#}");

    // Types only hidden fields lead to do not exist either.
    let note = ask("{ customers(first: 1) { edges { node { ... on SourceRecord { key } } } } }").await;
    let nothing = ask("{ customers(first: 1) { edges { node { ... on NoSuchType { key } } } } }").await;
    assert_eq!(note["errors"][0]["message"], "Unknown type \"SourceRecord\"", "{note:#}");
    assert_eq!(nothing["errors"][0]["message"], "Unknown type \"NoSuchType\"", "{nothing:#}");
    let by_name = ask("{ __type(name: \"SourceRecord\") { name } }").await;
    assert!(by_name["data"]["__type"].is_null(), "{by_name:#}");

    // Variables and directives give no way around it.
    let skipped = ask("query($s: Boolean!) { customers(first: 1) { edges { node { email @skip(if: $s) } } } }").await;
    assert_eq!(skipped["errors"][0]["message"], "Unknown field \"email\" on type \"Customer\".", "{skipped:#}");

    // Without customers:read there is nothing to read.
    let no_scope = app.token(Role::Agent, Some("orders:read"), None);
    let denied = app.query_as(&no_scope, "{ customers(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN", "{denied:#}");
}
