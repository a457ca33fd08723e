//! The consent ledger and notes: who may write them, what the ledger records, and that a
//! grant or revocation changes what a partner sees on the very next request.

use c360::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, Layout, TestApp, codes};

const GRANT: &str = "mutation($id: ID!, $p: String!, $u: String) {
    grantConsent(customerId: $id, partner: $p, purpose: $u) { id consents { partner purpose active revokedAt } } }";
const REVOKE: &str = "mutation($id: ID!, $p: String!, $u: String) {
    revokeConsent(customerId: $id, partner: $p, purpose: $u) { id consents { partner purpose active revokedAt } } }";
const ADD_NOTE: &str =
    "mutation($id: ID!, $b: String!) { addNote(customerId: $id, body: $b) { author body createdAt } }";
const PROBE: &str = "query($id: ID!) { customer(id: $id) { id } }";

/// The consents of `partner` in a mutation's answer.
fn ledger<'a>(answer: &'a Value, field: &str, partner: &str) -> Vec<&'a Value> {
    answer["data"][field]["consents"].as_array().expect("consents").iter().filter(|c| c["partner"] == partner).collect()
}

/// The id of a customer with a CRM record (to hold consents and notes).
async fn with_crm_record(app: &TestApp) -> String {
    let page = app.data("{ customers(first: 30) { edges { node { id sourceRecords { source } } } } }", json!({})).await;
    page["customers"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["sourceRecords"].as_array().expect("records").iter().any(|r| r["source"] == "CRM"))
        .expect("a customer with a CRM record")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn consent_and_notes(layout: Layout) {
    let app = TestApp::spawn(layout, 60).await;
    let partner = "test-partner";
    let watcher = app.token(Role::Partner, None, Some(partner));
    let agent = app.token(Role::Agent, None, None);

    // A customer with a CRM record, unknown to the new partner.
    let id = with_crm_record(&app).await;
    let vars = |u: Option<&str>| json!({ "id": id, "p": partner, "u": u });
    assert_eq!(app.query_as(&watcher, PROBE, json!({ "id": id })).await["data"]["customer"], Value::Null);

    // Who may not write consents: partners (even with the scope), roles without the scope.
    let partner_with_scope = app.token(Role::Partner, Some("customers:read consent:write"), Some(partner));
    let frontend = app.token(Role::Frontend, None, None);
    let grant_only = "mutation($id: ID!, $p: String!) { grantConsent(customerId: $id, partner: $p) { id } }";
    for token in [&watcher, &partner_with_scope, &frontend] {
        let denied = app.query_as(token, grant_only, vars(None)).await;
        assert_eq!(codes(&denied), ["FORBIDDEN"], "{denied:#}");
        assert_eq!(denied["data"], Value::Null);
    }
    assert_eq!(app.query_as(&watcher, PROBE, json!({ "id": id })).await["data"]["customer"], Value::Null);

    // An agent grants: the partner sees the customer on its next request. Granting again
    // while the grant stands changes nothing.
    let granted = app.query_as(&agent, GRANT, vars(Some("offers"))).await;
    assert!(granted.get("errors").is_none(), "{granted:#}");
    assert_eq!(ledger(&granted, "grantConsent", partner).len(), 1);
    assert_eq!(
        *ledger(&granted, "grantConsent", partner)[0],
        json!({
        "partner": partner, "purpose": "offers", "active": true, "revokedAt": null })
    );
    let again = app.query_as(&agent, GRANT, vars(Some("offers"))).await;
    assert_eq!(ledger(&again, "grantConsent", partner).len(), 1, "idempotent: {again:#}");
    assert_eq!(app.query_as(&watcher, PROBE, json!({ "id": id })).await["data"]["customer"]["id"], id.as_str());
    let for_travel = app.partner_token(Role::Partner, None, Some(partner), Some("travel"));
    assert_eq!(
        app.query_as(&for_travel, PROBE, json!({ "id": id })).await["data"]["customer"],
        Value::Null,
        "a grant for `offers` does not cover `travel`"
    );

    // Revoking another purpose leaves the grant; revoking every purpose ends it, and the
    // ledger keeps the history.
    let other = app.query_as(&agent, REVOKE, vars(Some("travel"))).await;
    assert_eq!(ledger(&other, "revokeConsent", partner)[0]["active"], true, "{other:#}");
    let revoked = app.query_as(&agent, REVOKE, vars(None)).await;
    let history = ledger(&revoked, "revokeConsent", partner);
    assert_eq!(history.len(), 1, "{revoked:#}");
    assert_eq!(history[0]["active"], false);
    assert!(history[0]["revokedAt"].is_string());
    assert_eq!(app.query_as(&watcher, PROBE, json!({ "id": id })).await["data"]["customer"], Value::Null);

    // Bad input is a typed error and writes nothing.
    for (p, u) in [("Not A Name", None), ("", None), (partner, Some("x y"))] {
        let bad = app.query_as(&agent, GRANT, json!({ "id": id, "p": p, "u": u })).await;
        assert_eq!(codes(&bad), ["BAD_USER_INPUT"], "{bad:#}");
    }
    let nobody = app.ids().global_id(c360::graphql::ids::Kind::Customer, &uuid::Uuid::now_v7().to_string());
    let missing = app.query_as(&agent, GRANT, json!({ "id": nobody.to_string(), "p": partner })).await;
    assert_eq!(missing["data"]["grantConsent"], Value::Null, "{missing:#}");
    // Still the one (revoked) grant: nothing was written by the refused calls.
    assert_eq!(ledger(&app.query_as(&agent, REVOKE, vars(None)).await, "revokeConsent", partner).len(), 1);

    // Notes: written with notes:write, read by roles whose policy shows `internal`. Where
    // the policy hides `internal`, `addNote` does not exist either, whatever the scopes:
    // its answer is a note, and no mutation answer gets around the policy.
    let partner_writer = app.token(Role::Partner, Some("customers:read notes:write"), Some(partner));
    let frontend_writer = app.token(Role::Frontend, Some("customers:read notes:write"), None);
    for token in [&frontend, &partner_writer, &frontend_writer] {
        let denied = app.query_as(token, ADD_NOTE, json!({ "id": id, "b": "prefers email" })).await;
        assert_eq!(codes(&denied), ["GRAPHQL_VALIDATION_FAILED"], "{denied:#}");
        assert_eq!(denied["errors"][0]["message"], "Unknown field \"addNote\" on type \"Mutation\".");
    }
    let agent_without_scope = app.token(Role::Agent, Some("customers:read"), None);
    let denied = app.query_as(&agent_without_scope, ADD_NOTE, json!({ "id": id, "b": "prefers email" })).await;
    assert_eq!(codes(&denied), ["FORBIDDEN"], "{denied:#}");
    let body = "Called about a late parcel; offered a voucher.";
    let added = app.query_as(&agent, ADD_NOTE, json!({ "id": id, "b": format!("  {body}\n") })).await;
    assert!(added.get("errors").is_none(), "{added:#}");
    assert_eq!(added["data"]["addNote"]["body"], body);
    assert_eq!(added["data"]["addNote"]["author"], "test-agent");
    for bad in ["", "   ", &"x".repeat(4001)] {
        let refused = app.query_as(&agent, ADD_NOTE, json!({ "id": id, "b": bad })).await;
        assert_eq!(codes(&refused), ["BAD_USER_INPUT"], "{refused:#}");
    }
    let notes =
        "query($id: ID!) { customer(id: $id) { notes(first: 5) { totalCount edges { node { author body } } } } }";
    let seen = app.query_as(&agent, notes, json!({ "id": id })).await;
    assert_eq!(seen["data"]["customer"]["notes"]["edges"][0]["node"]["body"], body, "{seen:#}");
    let total = seen["data"]["customer"]["notes"]["totalCount"].as_i64().expect("count");
    assert!(total >= 1);
    // Roles whose policy hides `internal` cannot even name the field.
    for role in [Role::Frontend, Role::Analyst] {
        let hidden = app.query_as(&app.token(role, None, None), notes, json!({ "id": id })).await;
        assert!(codes(&hidden).iter().all(|c| c == "GRAPHQL_VALIDATION_FAILED"), "{role}: {hidden:#}");
        assert_eq!(hidden["errors"][0]["message"], "Unknown field \"notes\" on type \"Customer\".");
        assert!(!hidden.to_string().contains(body));
    }
}

/// Mutations run one after another, and each sees what the ones before it wrote: a write
/// forgets what the request's loaders had cached of it.
#[tokio::test]
async fn a_mutation_sees_the_writes_before_it() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 30).await;
    let id = with_crm_record(&app).await;
    let both = "mutation($id: ID!) {
        a: grantConsent(customerId: $id, partner: \"test-partner\") { consents { partner active } notes(first: 1) { totalCount } }
        n: addNote(customerId: $id, body: \"in between\") { body }
        b: revokeConsent(customerId: $id, partner: \"test-partner\") { consents { partner active } notes(first: 1) { totalCount } }
    }";
    let answer = app.query(both, json!({ "id": id })).await;
    assert!(answer.get("errors").is_none(), "{answer:#}");
    let zz = |field: &str| -> Vec<bool> {
        ledger(&answer, field, "test-partner").iter().map(|c| c["active"].as_bool().expect("active")).collect()
    };
    assert_eq!(zz("a"), [true], "{answer:#}");
    assert_eq!(zz("b"), [false], "the revocation's answer shows it revoked: {answer:#}");
    let notes = |field: &str| answer["data"][field]["notes"]["totalCount"].as_i64().expect("count");
    assert_eq!(notes("b"), notes("a") + 1, "the note added in between is counted: {answer:#}");
    // And a fresh request agrees.
    let fresh =
        app.data("query($id: ID!) { customer(id: $id) { consents { partner active } } }", json!({ "id": id })).await;
    let fresh: Vec<&Value> = fresh["customer"]["consents"]
        .as_array()
        .expect("consents")
        .iter()
        .filter(|c| c["partner"] == "test-partner")
        .collect();
    assert_eq!(fresh, [&json!({ "partner": "test-partner", "active": false })]);
}

#[tokio::test]
async fn consent_and_notes_on_sqlite() {
    consent_and_notes(Layout::all(Backend::Sqlite)).await;
}

#[tokio::test]
#[ignore = "PostgreSQL: set C360_TEST_POSTGRES_URL and run `cargo test -- --include-ignored`"]
async fn consent_and_notes_on_postgres() {
    consent_and_notes(Layout::all(Backend::Postgres)).await;
}

#[tokio::test]
#[ignore = "MySQL/MariaDB: set C360_TEST_MYSQL_URL and run `cargo test -- --include-ignored`"]
async fn consent_and_notes_on_mysql() {
    consent_and_notes(Layout::all(Backend::Mysql)).await;
}

/// Every consent change is in the audit log with who made it, for whom, for which
/// partner and purpose (twenty aliased grants in one mutation once left no trace), and so
/// are privileged operations refused and reads of the log itself.
#[tokio::test]
async fn changes_and_refusals_are_attributed_in_the_audit_log() {
    let app = TestApp::spawn(Layout::all(Backend::Sqlite), 60).await;
    let agent = app.token(Role::Agent, None, None);
    let page = app.data("{ customers(first: 60) { edges { node { id sourceRecords { source } } } } }", json!({})).await;
    let ids: Vec<String> = page["customers"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["sourceRecords"].as_array().expect("records").iter().any(|r| r["source"] == "CRM"))
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .take(20)
        .collect();
    assert_eq!(ids.len(), 20);
    let grants: String = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!("g{i}: grantConsent(customerId: \"{id}\", partner: \"audit-test\", purpose: \"offers\") {{ id }} ")
        })
        .collect();
    let (granted, request) = app.query_with_id(&agent, &format!("mutation {{ {grants} }}"), json!({})).await;
    assert!(granted.get("errors").is_none(), "{granted:#}");
    let (revoked, revocation) =
        app.query_with_id(&agent, REVOKE, json!({ "id": ids[0], "p": "audit-test", "u": null })).await;
    assert!(revoked.get("errors").is_none(), "{revoked:#}");
    // Refused: an agent may not read the log, nor a token without consent:write grant.
    let (_, refused_log) = app.query_with_id(&agent, "{ auditLog { totalCount } }", json!({})).await;
    // A partner the company does not have (a typo) is no consent at all.
    let typo = app.query_as(&agent, GRANT, json!({ "id": ids[1], "p": "acme-insurence", "u": null })).await;
    assert_eq!(codes(&typo), ["BAD_USER_INPUT"], "{typo:#}");
    let reader = app.token(Role::Agent, Some("customers:read campaigns:read"), None);
    let (refused, refused_grant) =
        app.query_with_id(&reader, GRANT, json!({ "id": ids[0], "p": "audit-test", "u": null })).await;
    assert_eq!(codes(&refused), ["FORBIDDEN"], "{refused:#}");

    let log = "query($after: String) { auditLog(first: 100, after: $after) { edges { node {
        requestId subject action customerId fields consentPartner } } pageInfo { hasNextPage endCursor } } }";
    let mut entries = Vec::new();
    for _ in 0..100 {
        entries.clear();
        let mut after = Value::Null;
        loop {
            let page = app.data(log, json!({ "after": after })).await;
            entries.extend(page["auditLog"]["edges"].as_array().expect("edges").iter().map(|e| e["node"].clone()));
            if page["auditLog"]["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = page["auditLog"]["pageInfo"]["endCursor"].clone();
        }
        // Refusals and reads of the log are written after their responses: wait for them.
        let read = entries.iter().any(|e| e["action"] == "AUDIT_READ" && e["subject"] == "test-admin");
        if read && entries.iter().any(|e| e["requestId"] == refused_grant) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let of = |id: &str| entries.iter().filter(|e| e["requestId"] == id).collect::<Vec<_>>();
    let grants = of(&request);
    assert_eq!(grants.len(), 20, "{grants:#?}");
    for entry in &grants {
        assert_eq!((&entry["action"], &entry["subject"]), (&json!("CONSENT_GRANTED"), &json!("test-agent")));
        assert_eq!((&entry["consentPartner"], &entry["fields"]), (&json!("audit-test"), &json!(["offers"])));
    }
    let customers: std::collections::BTreeSet<_> =
        grants.iter().map(|e| e["customerId"].as_str().expect("id")).collect();
    assert_eq!(customers.len(), 20);
    let revocation = of(&revocation);
    assert_eq!(revocation.len(), 1);
    assert_eq!((&revocation[0]["action"], &revocation[0]["fields"]), (&json!("CONSENT_REVOKED"), &json!(["*"])));
    for (id, what) in [(&refused_log, "auditLog"), (&refused_grant, "grantConsent")] {
        let refusal = of(id);
        assert_eq!(refusal.len(), 1, "{what}: {refusal:#?}");
        assert_eq!((&refusal[0]["action"], &refusal[0]["fields"]), (&json!("REFUSED"), &json!([what])));
    }
    assert!(entries.iter().any(|e| e["action"] == "AUDIT_READ" && e["subject"] == "test-admin"));
}
