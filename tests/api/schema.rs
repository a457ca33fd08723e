//! `schema.graphql` is the exported SDL; it must match the code.

#[test]
fn schema_graphql_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = c360::graphql::sdl();
    if committed != current {
        if std::env::var("C360_UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &current).expect("write schema.graphql");
        } else {
            panic!(
                "schema.graphql is out of date: run `cargo run -- schema > schema.graphql` (or C360_UPDATE_SCHEMA=1 cargo test)"
            );
        }
    }
}

#[test]
fn every_type_and_field_is_documented() {
    let sdl = c360::graphql::sdl();
    // Types we define start with a description block; the check is on our domain types.
    for name in [
        "Customer",
        "Order",
        "Ticket",
        "Campaign",
        "CampaignResponse",
        "PurchaseSummary",
        "ServiceSummary",
        "SourceRecord",
        "Money",
    ] {
        let def = format!("type {name} ");
        let at = sdl.find(&def).unwrap_or_else(|| panic!("{name} missing"));
        assert!(sdl[..at].trim_end().ends_with("\"\"\""), "type {name} has no description");
    }
}
