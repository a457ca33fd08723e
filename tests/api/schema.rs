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

/// Every type, field, argument-less enum value and input field the schema defines carries
/// a description: the SDL is the API's documentation.
#[test]
fn every_type_and_field_is_documented() {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let document = async_graphql::parser::parse_schema(c360::graphql::sdl()).expect("SDL");
    let mut missing = Vec::new();
    let mut fields = 0;
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else { continue };
        let ty = &ty.node;
        let name = ty.name.node.as_str();
        if name.starts_with("__") {
            continue;
        }
        let builtin_scalar =
            matches!(ty.kind, TypeKind::Scalar) && ["String", "Int", "Float", "Boolean", "ID"].contains(&name);
        if ty.description.is_none() && !builtin_scalar {
            missing.push(format!("type {name}"));
        }
        let mut field = |field_name: &str, described: bool| {
            fields += 1;
            if !described {
                missing.push(format!("{name}.{field_name}"));
            }
        };
        match &ty.kind {
            TypeKind::Object(o) => o.fields.iter().for_each(|f| field(&f.node.name.node, f.node.description.is_some())),
            TypeKind::Interface(i) => {
                i.fields.iter().for_each(|f| field(&f.node.name.node, f.node.description.is_some()))
            }
            TypeKind::InputObject(i) => {
                i.fields.iter().for_each(|f| field(&f.node.name.node, f.node.description.is_some()))
            }
            TypeKind::Enum(e) => e.values.iter().for_each(|v| field(&v.node.value.node, v.node.description.is_some())),
            _ => {}
        }
    }
    assert!(fields > 150, "{fields} fields and values");
    assert!(missing.is_empty(), "{} undocumented:\n{}", missing.len(), missing.join("\n"));
}

/// What each role introspects is a valid schema, as tools such as GraphiQL check it:
/// no object, interface or input type without fields (a type whose fields are all hidden
/// from the viewer is hidden too), and no field, argument or input field whose type is
/// not in the schema.
#[tokio::test]
async fn every_role_introspects_a_valid_schema() {
    use c360::auth::Role;
    use serde_json::{Value, json};

    use crate::helpers::{Backend, Layout, TestApp};

    let app = TestApp::spawn_with(Layout::all(Backend::Sqlite), 0, |c| {
        c.graphql.introspection_roles.push("partner".to_owned());
    })
    .await;
    let query = "{ __schema { types { name kind
        fields(includeDeprecated: true) { name type { ...Ref } args { name type { ...Ref } } }
        inputFields { name type { ...Ref } } } } }
        fragment Ref on __Type { name ofType { name ofType { name ofType { name ofType { name } } } } }";
    fn named(ty: &Value) -> &str {
        match ty["name"].as_str() {
            Some(name) => name,
            None => named(&ty["ofType"]),
        }
    }
    for (role, partner) in [
        (Role::Admin, None),
        (Role::Agent, None),
        (Role::Frontend, None),
        (Role::Analyst, None),
        (Role::Partner, Some("acme-insurance")),
    ] {
        let token = app.token(role, None, partner);
        let body = app.query_as(&token, query, json!({})).await;
        let types = body["data"]["__schema"]["types"].as_array().unwrap_or_else(|| panic!("{role}: {body:#}"));
        let names: std::collections::HashSet<&str> = types.iter().filter_map(|t| t["name"].as_str()).collect();
        for ty in types {
            let (name, kind) = (ty["name"].as_str().unwrap_or_default(), ty["kind"].as_str().unwrap_or_default());
            let members = match kind {
                "OBJECT" | "INTERFACE" => &ty["fields"],
                "INPUT_OBJECT" => &ty["inputFields"],
                _ => continue,
            };
            let members = members.as_array().cloned().unwrap_or_default();
            assert!(!members.is_empty(), "{role}: {kind} {name} has no fields");
            for member in &members {
                let mut referenced = vec![named(&member["type"])];
                referenced.extend(member["args"].as_array().into_iter().flatten().map(|a| named(&a["type"])));
                for reference in referenced {
                    assert!(
                        names.contains(reference),
                        "{role}: {name}.{} names {reference}, not in the schema",
                        member["name"]
                    );
                }
            }
        }
    }
}
