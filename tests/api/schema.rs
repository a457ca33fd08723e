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
