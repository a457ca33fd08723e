//! Each viewer's schema: the whole schema with every part the policy hides from its viewer
//! taken out. Fields and lookups of hidden classes go, then what they leave without a use:
//! input fields and arguments of types that are gone, input types left without fields,
//! and every type that only hidden fields led to (an interface's implementors included:
//! `Node` has no `Order` for a viewer who may not see orders).
//!
//! Validation, introspection, suggestions and execution all read that schema's registry,
//! so a hidden name is unknown to each of them by construction: there is nothing else to
//! find, and no second walk of the document that must imitate the validator. A viewer's
//! schema depends only on the set of classes hidden from it ([`Access::hidden_set`]); one
//! is built at the first request of each such set, then shared.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::registry::{MetaDirectiveInvocation, MetaInputValue, MetaType, MetaTypeName, Registry};
use async_graphql::{ContextDirective, CustomDirective, CustomDirectiveFactory, ServerError, ServerResult};
use indexmap::IndexMap;

use crate::graphql::{C360Schema, Shared};
use crate::policy::{Access, CLASSES, PrivacyClass};

/// The types of a viewer's schema, and the arguments of its directives: what the input
/// check reads (async-graphql keeps a schema's own registry to itself).
pub(crate) struct Types {
    pub(crate) types: BTreeMap<String, MetaType>,
    pub(crate) directives: BTreeMap<String, IndexMap<String, MetaInputValue>>,
    pub(crate) query: String,
    pub(crate) mutation: Option<String>,
    pub(crate) subscription: Option<String>,
}

/// One viewer's schema and a copy of its types.
pub(crate) struct ViewerSchema {
    pub(crate) schema: C360Schema,
    pub(crate) types: Types,
}

/// The schemas of every set of hidden classes, each built when first asked for.
pub(crate) struct ViewerSchemas {
    shared: Option<Shared>,
    built: Vec<OnceLock<Arc<ViewerSchema>>>,
}

impl ViewerSchemas {
    pub(crate) fn new(shared: Option<Shared>) -> Self {
        ViewerSchemas { shared, built: (0..1 << CLASSES).map(|_| OnceLock::new()).collect() }
    }

    /// The schema of `access`'s viewer.
    pub(crate) fn of(&self, access: &Access) -> &Arc<ViewerSchema> {
        let hidden = access.hidden_set();
        self.built[hidden].get_or_init(|| Arc::new(build(self.shared.clone(), hidden)))
    }
}

/// The schema for a viewer from whom the classes in `hidden` (a bit set, as
/// [`Access::hidden_set`]) are hidden.
pub(crate) fn build(shared: Option<Shared>, hidden: usize) -> ViewerSchema {
    let slot = Arc::new(Mutex::new(None));
    let restrict = Restrict { hidden, out: slot.clone() };
    let schema = crate::graphql::builder(shared).directive(restrict).finish();
    let types = slot.lock().ok().and_then(|mut s| s.take());
    // `register` runs inside `directive`: the slot is always filled by now. Were it not,
    // the input check refuses every document of this schema (it has no query type).
    let types = types.unwrap_or_else(|| {
        tracing::error!("a viewer schema was built without its types");
        Types {
            types: BTreeMap::new(),
            directives: BTreeMap::new(),
            query: String::new(),
            mutation: None,
            subscription: None,
        }
    });
    ViewerSchema { schema, types }
}

/// The SDL of the schema for the classes in `hidden`.
pub fn sdl(hidden: usize) -> String {
    build(None, hidden).schema.sdl()
}

/// Takes the hidden parts out of a schema's registry while it is built. async-graphql
/// hands a registry to a directive as it is registered, and this "directive" is only
/// that: it adds no directive (a document naming it fails as unknown), and its name is
/// not a GraphQL name.
struct Restrict {
    hidden: usize,
    /// Where the restricted types are copied to.
    out: Arc<Mutex<Option<Types>>>,
}

impl CustomDirectiveFactory for Restrict {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("c360.viewer-schema")
    }

    fn register(&self, registry: &mut Registry) {
        let hidden = self.hidden;
        restrict(registry, &|class| hidden & (1 << class as usize) != 0);
        let types = Types {
            types: registry.types.clone(),
            directives: registry.directives.iter().map(|(n, d)| (n.clone(), d.args.clone())).collect(),
            query: registry.query_type.clone(),
            mutation: registry.mutation_type.clone(),
            subscription: registry.subscription_type.clone(),
        };
        if let Ok(mut out) = self.out.lock() {
            *out = Some(types);
        }
    }

    fn create(
        &self,
        _: &ContextDirective<'_>,
        _: &async_graphql::parser::types::Directive,
    ) -> ServerResult<Box<dyn CustomDirective>> {
        // Unreachable: validation refuses a directive the registry does not have.
        Err(ServerError::new("Unknown directive", None))
    }
}

/// The class a field or input field carries (`@privacy` or `@lookup`); a class that
/// cannot be read counts as hidden (fail closed).
fn hidden_by(directives: &[MetaDirectiveInvocation], hides: &dyn Fn(PrivacyClass) -> bool) -> bool {
    directives.iter().filter(|d| d.name == "privacy" || d.name == "lookup").any(|d| {
        let class = match d.args.get("class") {
            Some(async_graphql::Value::Enum(name)) => PrivacyClass::from_str(&name.to_lowercase()).ok(),
            _ => None,
        };
        class.is_none_or(hides)
    })
}

fn required(input: &MetaInputValue) -> bool {
    MetaTypeName::create(&input.ty).is_non_null() && input.default_value.is_none()
}

/// Built-in types every schema keeps (as async-graphql does).
fn system(name: &str) -> bool {
    name.starts_with("__") || matches!(name, "Boolean" | "Int" | "Float" | "String" | "ID")
}

/// Takes out of `registry` what `hides` hides, and everything left without a use.
pub(crate) fn restrict(registry: &mut Registry, hides: &dyn Fn(PrivacyClass) -> bool) {
    // What the policy hides: fields, lookups and filters of hidden classes.
    for ty in registry.types.values_mut() {
        match ty {
            MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => {
                fields.retain(|_, f| !hidden_by(&f.directive_invocations, hides));
            }
            MetaType::InputObject { input_fields, .. } => {
                input_fields.retain(|_, f| !hidden_by(&f.directive_invocations, hides));
            }
            _ => {}
        }
    }
    // What that leaves without a use, until nothing more goes: types with nothing in them,
    // then what refers to types that are gone (a field whose required argument is gone
    // goes with it, and an input type whose required field is gone).
    loop {
        let before = size(registry);
        registry.types.retain(|name, ty| {
            system(name)
                || match ty {
                    MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => !fields.is_empty(),
                    MetaType::InputObject { input_fields, .. } => !input_fields.is_empty(),
                    MetaType::Union { possible_types, .. } => !possible_types.is_empty(),
                    MetaType::Scalar { .. } | MetaType::Enum { .. } => true,
                }
        });
        let known: HashSet<String> = registry.types.keys().cloned().collect();
        let exists = |ty: &str| known.contains(MetaTypeName::concrete_typename(ty));
        let mut broken_inputs = Vec::new();
        for (name, ty) in registry.types.iter_mut() {
            match ty {
                MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => {
                    fields.retain(|_, f| exists(&f.ty) && f.args.values().all(|a| exists(&a.ty) || !required(a)));
                    for field in fields.values_mut() {
                        field.args.retain(|_, a| exists(&a.ty));
                    }
                }
                MetaType::InputObject { input_fields, .. } => {
                    if input_fields.values().any(|f| !exists(&f.ty) && required(f)) {
                        broken_inputs.push(name.clone());
                    }
                    input_fields.retain(|_, f| exists(&f.ty));
                }
                MetaType::Union { possible_types, .. } => possible_types.retain(|t| exists(t)),
                MetaType::Scalar { .. } | MetaType::Enum { .. } => {}
            }
        }
        for name in broken_inputs {
            registry.types.remove(&name);
        }
        if size(registry) == before {
            break;
        }
    }
    // What no visible field leads to. An interface does not lead to its implementors:
    // they exist for the viewer only where a visible field leads to them.
    let mut reached: HashSet<String> = HashSet::new();
    let mut todo: Vec<String> = [Some(registry.query_type.clone()), registry.mutation_type.clone()]
        .into_iter()
        .chain([registry.subscription_type.clone()])
        .flatten()
        .collect();
    for directive in registry.directives.values() {
        todo.extend(directive.args.values().map(|a| MetaTypeName::concrete_typename(&a.ty).to_owned()));
    }
    while let Some(name) = todo.pop() {
        let Some(ty) = registry.types.get(&name) else { continue };
        if !reached.insert(name) {
            continue;
        }
        let named = |t: &String| MetaTypeName::concrete_typename(t).to_owned();
        match ty {
            MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => {
                for field in fields.values() {
                    todo.push(named(&field.ty));
                    todo.extend(field.args.values().map(|a| named(&a.ty)));
                }
            }
            MetaType::InputObject { input_fields, .. } => todo.extend(input_fields.values().map(|f| named(&f.ty))),
            MetaType::Union { possible_types, .. } => todo.extend(possible_types.iter().cloned()),
            MetaType::Scalar { .. } | MetaType::Enum { .. } => {}
        }
    }
    registry.types.retain(|name, _| system(name) || reached.contains(name));
    for ty in registry.types.values_mut() {
        if let MetaType::Interface { possible_types, .. } | MetaType::Union { possible_types, .. } = ty {
            possible_types.retain(|t| reached.contains(t));
        }
    }
    registry.implements.retain(|ty, _| reached.contains(ty));
    for interfaces in registry.implements.values_mut() {
        interfaces.retain(|i| reached.contains(i));
    }
    if registry.mutation_type.as_ref().is_some_and(|m| !registry.types.contains_key(m)) {
        registry.mutation_type = None;
    }
    if registry.subscription_type.as_ref().is_some_and(|s| !registry.types.contains_key(s)) {
        registry.subscription_type = None;
    }
}

/// How much a registry holds: types, fields, input fields, arguments and possible types.
fn size(registry: &Registry) -> usize {
    registry
        .types
        .values()
        .map(|ty| {
            1 + match ty {
                MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => {
                    fields.values().map(|f| 1 + f.args.len()).sum::<usize>()
                }
                MetaType::InputObject { input_fields, .. } => input_fields.len(),
                MetaType::Union { possible_types, .. } => possible_types.len(),
                MetaType::Scalar { .. } | MetaType::Enum { .. } => 0,
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, Viewer};
    use crate::policy::Policy;

    fn hidden_set(role: Role, scopes: Option<&str>) -> usize {
        let mut viewer = Viewer::with_role(role, (role == Role::Partner).then_some("acme"));
        if let Some(scopes) = scopes {
            viewer.scopes = scopes.split(' ').map(str::to_owned).collect();
        }
        let fields =
            crate::graphql::privacy::PrivacyTable::from_sdl(&crate::graphql::sdl()).expect("sdl").value_fields();
        Policy::load(None, &fields).expect("policy").access(&viewer).hidden_set()
    }

    #[test]
    fn nothing_hidden_is_the_whole_schema() {
        assert_eq!(sdl(0), crate::graphql::sdl());
    }

    #[test]
    fn hidden_parts_and_what_only_they_lead_to_are_gone() {
        let partner = sdl(hidden_set(Role::Partner, Some("customers:read insights:read")));
        let schema = async_graphql::parser::parse_schema(&partner).expect("a valid schema");
        let names: Vec<String> = schema
            .definitions
            .iter()
            .filter_map(|d| match d {
                async_graphql::parser::types::TypeSystemDefinition::Type(t) => Some(t.node.name.node.to_string()),
                _ => None,
            })
            .collect();
        for gone in ["Order", "Ticket", "Campaign", "Note", "SourceRecord", "Gender", "TicketCategory"] {
            assert!(!names.iter().any(|n| n == gone), "{gone} in the partner's schema");
        }
        assert!(names.iter().any(|n| n == "Customer"));
        assert!(partner.contains("email: String"), "contact is masked for partners, not hidden");
        assert!(partner.contains("rfmSegment") && !partner.contains("hasSource"), "{partner}");
        // Without insights the filter has no field left: no filter, no orderBy.
        let none = sdl(hidden_set(Role::Partner, None));
        assert!(!none.contains("CustomerFilter") && !none.contains("orderBy"), "{none}");
        // Source names come with data quality (an insight): not without it.
        assert!(partner.contains("enum SourceName") && !none.contains("SourceName"), "{none}");
    }
}
