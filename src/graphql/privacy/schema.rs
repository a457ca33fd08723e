//! The schema as the policy sees it: every field's type and privacy class, read from the
//! SDL the schema prints (so the `@privacy` directives in `schema.graphql` are the one
//! source). The policy file is checked against it at start; what each viewer's schema
//! leaves out is [`super::viewer`]'s.

use std::collections::HashMap;

use async_graphql::parser::types::{BaseType, TypeKind, TypeSystemDefinition};
use async_graphql::{Positioned, Value};

use crate::policy::{ClassifiedField, MaskFormat, PrivacyClass};

/// A field's privacy class and mask format, or the class of the key a lookup takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPrivacy {
    pub class: PrivacyClass,
    pub(crate) mask: Option<MaskFormat>,
    /// `@lookup`: the class is that of the key the field looks up by. The field is hidden
    /// with its class, and its value is not masked (it is not of that class).
    pub lookup: bool,
}

/// A field's type: the named type, and whether the field may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldType {
    pub(crate) named: String,
    pub(crate) nullable: bool,
    pub(crate) list: bool,
}

#[derive(Debug, Default)]
struct TypeInfo {
    /// Field name → (type, privacy).
    fields: HashMap<String, (FieldType, Option<FieldPrivacy>)>,
    /// Whether this is an object or interface type (not a scalar, enum or input).
    composite: bool,
}

/// Types, fields and privacy classes of the schema.
#[derive(Debug)]
pub struct PrivacyTable {
    types: HashMap<String, TypeInfo>,
}

impl PrivacyTable {
    /// Reads the SDL printed by the schema.
    pub fn from_sdl(sdl: &str) -> Result<Self, String> {
        let document = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut table = PrivacyTable { types: HashMap::new() };
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            let name = ty.node.name.node.to_string();
            let fields = match &ty.node.kind {
                TypeKind::Object(o) => &o.fields,
                TypeKind::Interface(i) => &i.fields,
                TypeKind::InputObject(input) => {
                    // Input fields: a filter by a classified value carries `@lookup`.
                    let info = table.types.entry(name.clone()).or_default();
                    for field in &input.fields {
                        let field = &field.node;
                        let lookup = field.directives.iter().find(|d| d.node.name.node == "lookup");
                        let privacy = lookup
                            .map(|d| read_directive(&d.node.arguments, true))
                            .transpose()
                            .map_err(|e| format!("{name}.{}: {e}", field.name.node))?;
                        let ty = FieldType {
                            named: named(&field.ty.node.base),
                            nullable: field.ty.node.nullable,
                            list: matches!(field.ty.node.base, BaseType::List(_)),
                        };
                        info.fields.insert(field.name.node.to_string(), (ty, privacy));
                    }
                    continue;
                }
                _ => continue,
            };
            let info = table.types.entry(name.clone()).or_default();
            info.composite = true;
            for field in fields {
                let field = &field.node;
                let mut privacy = None;
                for directive in &field.directives {
                    let lookup = match directive.node.name.node.as_str() {
                        "privacy" => false,
                        "lookup" => true,
                        _ => continue,
                    };
                    if privacy.is_some() {
                        return Err(format!("{name}.{}: more than one privacy class", field.name.node));
                    }
                    let read = read_directive(&directive.node.arguments, lookup)
                        .map_err(|e| format!("{name}.{}: {e}", field.name.node))?;
                    privacy = Some(read);
                }
                let ty = FieldType {
                    named: named(&field.ty.node.base),
                    nullable: field.ty.node.nullable,
                    list: matches!(field.ty.node.base, BaseType::List(_)),
                };
                info.fields.insert(field.name.node.to_string(), (ty, privacy));
            }
        }
        Ok(table)
    }

    /// Every classified field as (`Type`, `field`, its type, privacy), sorted; lookups
    /// included.
    pub fn classified(&self) -> Vec<(String, String, FieldType, FieldPrivacy)> {
        let mut all: Vec<_> = self
            .types
            .iter()
            .flat_map(|(t, info)| {
                info.fields.iter().filter_map(move |(f, (ty, p))| p.map(|p| (t.clone(), f.clone(), ty.clone(), p)))
            })
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    /// The fields whose values have a class (not lookups), as the policy checks them.
    pub fn value_fields(&self) -> Vec<ClassifiedField> {
        self.classified()
            .into_iter()
            .filter(|(_, _, _, p)| !p.lookup)
            .map(|(t, f, _, p)| ClassifiedField { name: format!("{t}.{f}"), class: p.class, mask: p.mask })
            .collect()
    }

    /// Fields whose mask format does not fit their type, each with the reason: a masked
    /// value must be a value of the field's own type.
    pub(crate) fn mask_type_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (t, f, ty, p) in self.classified() {
            let Some(mask) = p.mask else { continue };
            let fits = match mask {
                MaskFormat::Email | MaskFormat::Phone | MaskFormat::Initials => ty.named == "String",
                MaskFormat::CityCountry => self.types.get(&ty.named).is_some_and(|i| {
                    i.composite
                        && i.fields.values().all(|(field_ty, privacy)| {
                            // What it keeps is unclassified; what it drops can be null.
                            privacy.is_none() || (field_ty.nullable && privacy.is_some_and(|p| p.mask.is_some()))
                        })
                }),
                MaskFormat::Remove => ty.nullable,
                MaskFormat::Keep => true,
                // A time, or a count of days (`daysSince…`): both have a month.
                MaskFormat::Month => ty.named == "DateTime" || (ty.named == "Int" && f.starts_with("days")),
            };
            if !fits {
                errors.push(format!("{t}.{f}: mask {mask:?} does not fit its type {}", ty.named));
            }
        }
        errors
    }
}

fn named(ty: &BaseType) -> String {
    match ty {
        BaseType::Named(name) => name.to_string(),
        BaseType::List(inner) => named(&inner.base),
    }
}

pub(crate) fn read_directive(
    args: &[(Positioned<async_graphql::Name>, Positioned<Value>)],
    lookup: bool,
) -> Result<FieldPrivacy, String> {
    let arg = |name: &str| args.iter().find(|(n, _)| n.node == name).map(|(_, v)| v.node.clone());
    let enum_name = |v: Option<Value>| match v {
        Some(Value::Enum(n)) => Ok(Some(n.to_string())),
        None | Some(Value::Null) => Ok(None),
        Some(other) => Err(format!("`{other}` is not a privacy enum value")),
    };
    let class = enum_name(arg("class"))?.ok_or("@privacy without a class")?;
    let class = serde_json::from_value::<PrivacyClass>(serde_json::Value::String(class.to_lowercase()))
        .map_err(|_| format!("unknown privacy class {class}"))?;
    let mask = match enum_name(arg("mask"))?.as_deref() {
        None => None,
        Some("EMAIL") => Some(MaskFormat::Email),
        Some("PHONE") => Some(MaskFormat::Phone),
        Some("INITIALS") => Some(MaskFormat::Initials),
        Some("CITY_COUNTRY") => Some(MaskFormat::CityCountry),
        Some("REMOVE") => Some(MaskFormat::Remove),
        Some("KEEP") => Some(MaskFormat::Keep),
        Some("MONTH") => Some(MaskFormat::Month),
        Some(other) => return Err(format!("unknown mask format {other}")),
    };
    Ok(FieldPrivacy { class, mask, lookup })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PrivacyTable {
        PrivacyTable::from_sdl(&crate::graphql::sdl()).expect("schema")
    }

    #[test]
    fn every_mask_keeps_its_fields_type() {
        let table = table();
        assert_eq!(table.mask_type_errors(), Vec::<String>::new());
        // The check itself: a date masked to a year string would not be a date.
        let broken = crate::graphql::sdl().replace("mask: REMOVE", "mask: EMAIL");
        let broken = PrivacyTable::from_sdl(&broken).expect("schema");
        assert!(broken.mask_type_errors().iter().any(|e| e.starts_with("Customer.birthDate")), "{broken:?}");
    }

    #[test]
    fn lookups_carry_the_class_of_their_key() {
        let table = table();
        let all = table.classified();
        let class = |f: &str| {
            all.iter().find(|(t, name, _, p)| t == "Query" && name == f && p.lookup).map(|(_, _, _, p)| p.class)
        };
        assert_eq!(class("customerByEmail"), Some(PrivacyClass::Contact));
        assert_eq!(class("customerByPhone"), Some(PrivacyClass::Contact));
        assert_eq!(class("customerBySourceKey"), Some(PrivacyClass::Internal));
    }
}
