//! The schema as the policy sees it: every field's type and privacy class, read from the
//! SDL the schema prints (so the `@privacy` directives in `schema.graphql` are the one
//! source), and the check that a document names nothing the viewer may not see.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, OperationType, Selection, SelectionSet, TypeKind, TypeSystemDefinition,
};
use async_graphql::{Pos, Positioned, Value, Variables};

use crate::policy::{Access, CLASSES, ClassifiedField, MaskFormat, PrivacyClass};

/// A field's privacy class and mask format, or the class of the key a lookup takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPrivacy {
    pub class: PrivacyClass,
    pub mask: Option<MaskFormat>,
    /// `@lookup`: the class is that of the key the field looks up by. The field is hidden
    /// with its class, and its value is not masked (it is not of that class).
    pub lookup: bool,
}

/// A field's type: the named type, and whether the field may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldType {
    pub named: String,
    pub nullable: bool,
    pub list: bool,
}

#[derive(Debug, Default)]
struct TypeInfo {
    /// Field name → (type, privacy).
    fields: HashMap<String, (FieldType, Option<FieldPrivacy>)>,
    /// Whether this is an object or interface type (not a scalar, enum or input).
    composite: bool,
    /// Per field, its arguments of input object types (the only ones that can name a
    /// hidden input field): (argument, input type).
    arguments: HashMap<String, Vec<(String, String)>>,
    /// For interfaces: the object types implementing it.
    implementors: Vec<String>,
}

/// Types, fields and privacy classes of the schema.
#[derive(Debug)]
pub struct PrivacyTable {
    types: HashMap<String, TypeInfo>,
    /// The types each viewer's schema can reach, by [`Access::hidden_set`]: worked out at
    /// the first request of each combination of hidden classes, then shared.
    visible: Vec<OnceLock<HashSet<String>>>,
}

/// A name in a document the viewer may not use, reported as GraphQL reports unknown names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The error, as GraphQL words it for an unknown name; `None` for a place that only
    /// silences other errors (a spread of a fragment on a hidden type).
    pub message: Option<String>,
    pub pos: Pos,
    /// The part of the document the offending name governs: errors GraphQL validation
    /// reports within it would not exist for an unknown name, so they are dropped.
    pub span: (Pos, Pos),
}

impl PrivacyTable {
    /// Reads the SDL printed by the schema.
    pub fn from_sdl(sdl: &str) -> Result<Self, String> {
        let document = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut table =
            PrivacyTable { types: HashMap::new(), visible: (0..1 << CLASSES).map(|_| OnceLock::new()).collect() };
        let mut implements: Vec<(String, String)> = Vec::new();
        for definition in &document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            let name = ty.node.name.node.to_string();
            let (fields, interfaces) = match &ty.node.kind {
                TypeKind::Object(o) => (&o.fields, &o.implements),
                TypeKind::Interface(i) => (&i.fields, &i.implements),
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
                for argument in &field.arguments {
                    let input = (argument.node.name.node.to_string(), named(&argument.node.ty.node.base));
                    info.arguments.entry(field.name.node.to_string()).or_default().push(input);
                }
                info.fields.insert(field.name.node.to_string(), (ty, privacy));
            }
            implements.extend(interfaces.iter().map(|i| (i.node.to_string(), name.clone())));
        }
        // Only arguments of input object types are checked (a scalar names no field).
        let inputs: HashSet<String> =
            table.types.iter().filter(|(_, i)| !i.composite && !i.fields.is_empty()).map(|(n, _)| n.clone()).collect();
        for info in table.types.values_mut() {
            info.arguments.retain(|_, args| {
                args.retain(|(_, ty)| inputs.contains(ty));
                !args.is_empty()
            });
        }
        for (interface, object) in implements {
            table.types.entry(interface).or_default().implementors.push(object);
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
    pub fn mask_type_errors(&self) -> Vec<String> {
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
            };
            if !fits {
                errors.push(format!("{t}.{f}: mask {mask:?} does not fit its type {}", ty.named));
            }
        }
        errors
    }

    /// The hidden fields of `input_name` that `value` names (an input object, or a list of
    /// them), in order.
    fn hidden_input_fields(&self, input_name: &str, value: &Value, access: &Access) -> Vec<String> {
        let Some(input) = self.types.get(input_name) else { return Vec::new() };
        let hides = |key: &str| input.fields.get(key).is_some_and(|(_, p)| p.is_some_and(|p| access.hides(p.class)));
        match value {
            Value::Object(map) => map.keys().filter(|k| hides(k.as_str())).map(|k| k.to_string()).collect(),
            Value::List(items) => items.iter().flat_map(|v| self.hidden_input_fields(input_name, v, access)).collect(),
            _ => Vec::new(),
        }
    }

    /// Object and interface types the viewer can reach through fields it may see.
    pub fn visible_types(&self, access: &Access) -> &HashSet<String> {
        self.visible[access.hidden_set()].get_or_init(|| self.reachable(access))
    }

    fn reachable(&self, access: &Access) -> HashSet<String> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut todo: Vec<&str> = vec!["Query", "Mutation", "Subscription"];
        while let Some(name) = todo.pop() {
            let Some((name, info)) = self.types.get_key_value(name) else { continue };
            if !seen.insert(name.as_str()) {
                continue;
            }
            todo.extend(info.implementors.iter().map(String::as_str));
            for (ty, privacy) in info.fields.values() {
                if !privacy.is_some_and(|p| access.hides(p.class)) {
                    todo.push(&ty.named);
                }
            }
        }
        seen.into_iter().map(str::to_owned).collect()
    }

    /// Names in `document` (and its `variables`) the viewer may not use: hidden fields,
    /// types only hidden fields lead to, and hidden fields of input values (filters).
    pub fn check(&self, document: &ExecutableDocument, variables: &Variables, access: &Access) -> Vec<Violation> {
        let visible = self.visible_types(access);
        // A default naming a hidden input field fails as one naming an unknown field does,
        // whether or not the variable is sent (GraphQL checks every default). Variables as
        // they will be used: a variable not sent takes its (valid) default.
        let mut violations = Vec::new();
        let mut with_defaults = variables.clone();
        for (_, operation) in document.operations.iter() {
            for definition in &operation.node.variable_definitions {
                let name = &definition.node.name.node;
                let Some(default) = &definition.node.default_value else { continue };
                let input_name = named(&definition.node.var_type.node.base);
                let hidden = self.hidden_input_fields(&input_name, &default.node, access);
                for field in &hidden {
                    violations.push(Violation {
                        message: Some(format!(
                            "Invalid default value for argument: \"{name}\", unknown field \"{field}\" of type \"{input_name}\""
                        )),
                        pos: definition.pos,
                        span: (definition.pos, default.pos),
                    });
                }
                if hidden.is_empty() && !with_defaults.contains_key(name) {
                    with_defaults.insert(name.clone(), default.node.clone());
                }
            }
        }
        let variables = &with_defaults;
        let mut walk = Walk { table: self, access, visible, variables, violations };
        for (_, operation) in document.operations.iter() {
            let root = match operation.node.ty {
                OperationType::Query => "Query",
                OperationType::Mutation => "Mutation",
                OperationType::Subscription => "Subscription",
            };
            walk.selection_set(root, &operation.node.selection_set);
        }
        for fragment in document.fragments.values() {
            let on = &fragment.node.type_condition.node.on;
            let span = (fragment.pos, last_pos(&fragment.node.selection_set));
            if walk.type_visible(on.node.as_str(), on.pos, span) {
                walk.selection_set(on.node.as_str(), &fragment.node.selection_set);
            }
        }
        let hidden_fragments: HashSet<&str> = document
            .fragments
            .iter()
            .filter(|(_, f)| !walk.visible_type(f.node.type_condition.node.on.node.as_str()))
            .map(|(name, _)| name.as_str())
            .collect();
        if !hidden_fragments.is_empty() {
            for (_, operation) in document.operations.iter() {
                walk.silence_spreads(&operation.node.selection_set, &hidden_fragments);
            }
            for fragment in document.fragments.values() {
                walk.silence_spreads(&fragment.node.selection_set, &hidden_fragments);
            }
        }
        walk.violations.sort_by_key(|v| v.pos);
        walk.violations
    }
}

struct Walk<'a> {
    table: &'a PrivacyTable,
    access: &'a Access,
    variables: &'a Variables,
    visible: &'a HashSet<String>,
    violations: Vec<Violation>,
}

impl Walk<'_> {
    /// Names the schema does not have at all are GraphQL validation's to report.
    fn visible_type(&self, name: &str) -> bool {
        !self.table.types.contains_key(name) || self.visible.contains(name)
    }

    fn type_visible(&mut self, name: &str, pos: Pos, span: (Pos, Pos)) -> bool {
        if self.visible_type(name) {
            return true;
        }
        self.violations.push(Violation { message: Some(format!("Unknown type \"{name}\"")), pos, span });
        false
    }

    /// Spreads of fragments on hidden types: GraphQL says nothing about spreads of a
    /// fragment on an unknown type, so nothing is said about these either.
    fn silence_spreads(&mut self, set: &Positioned<SelectionSet>, hidden: &HashSet<&str>) {
        for item in &set.node.items {
            match &item.node {
                Selection::Field(f) => self.silence_spreads(&f.node.selection_set, hidden),
                Selection::InlineFragment(f) => self.silence_spreads(&f.node.selection_set, hidden),
                Selection::FragmentSpread(s) if hidden.contains(s.node.fragment_name.node.as_str()) => {
                    self.violations.push(Violation { message: None, pos: item.pos, span: (item.pos, item.pos) });
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }

    /// Input values naming a hidden input field, as literals or through variables: they
    /// fail as GraphQL fails an unknown input field.
    fn arguments(&mut self, parent: &str, field: &Positioned<Field>) {
        let Some(inputs) = self.table.types.get(parent).and_then(|t| t.arguments.get(field.node.name.node.as_str()))
        else {
            return;
        };
        for (argument, value) in &field.node.arguments {
            let Some((_, input_name)) = inputs.iter().find(|(a, _)| *a == argument.node.as_str()) else { continue };
            // The value as it will be used: literal, or with its variables filled in.
            let resolved = value.node.clone().into_const_with(|var| self.variables.get(&var).cloned().ok_or(()));
            let hidden =
                resolved.map(|v| self.table.hidden_input_fields(input_name, &v, self.access)).unwrap_or_default();
            for hidden in hidden {
                self.violations.push(Violation {
                    message: Some(format!(
                        "Invalid value for argument \"{}\", unknown field \"{hidden}\" of type \"{input_name}\"",
                        argument.node
                    )),
                    pos: argument.pos,
                    span: (argument.pos, value.pos),
                });
            }
        }
    }

    fn selection_set(&mut self, parent: &str, set: &Positioned<SelectionSet>) {
        for item in &set.node.items {
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let Some((ty, privacy)) = self.table.types.get(parent).and_then(|t| t.fields.get(name)) else {
                        continue;
                    };
                    if privacy.is_some_and(|p| self.access.hides(p.class)) {
                        self.violations.push(Violation {
                            message: Some(format!("Unknown field \"{name}\" on type \"{parent}\".")),
                            pos: field.pos,
                            span: (field.pos, last_pos(&field.node.selection_set).max(field.pos)),
                        });
                    } else {
                        self.arguments(parent, field);
                        self.selection_set(&ty.named, &field.node.selection_set);
                    }
                }
                Selection::InlineFragment(fragment) => match &fragment.node.type_condition {
                    Some(on) => {
                        let span = (item.pos, last_pos(&fragment.node.selection_set));
                        if self.type_visible(on.node.on.node.as_str(), on.node.on.pos, span) {
                            self.selection_set(on.node.on.node.as_str(), &fragment.node.selection_set);
                        }
                    }
                    None => self.selection_set(parent, &fragment.node.selection_set),
                },
                // Fragment definitions are checked on their own.
                Selection::FragmentSpread(_) => {}
            }
        }
    }
}

/// The furthest position inside a selection set (including argument values).
fn last_pos(set: &Positioned<SelectionSet>) -> Pos {
    let mut last = set.pos;
    for item in &set.node.items {
        last = last.max(item.pos);
        match &item.node {
            Selection::Field(f) => {
                for (_, value) in &f.node.arguments {
                    last = last.max(value.pos);
                }
                last = last.max(last_pos(&f.node.selection_set));
            }
            Selection::InlineFragment(f) => last = last.max(last_pos(&f.node.selection_set)),
            Selection::FragmentSpread(s) => last = last.max(s.node.fragment_name.pos),
        }
    }
    last
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
