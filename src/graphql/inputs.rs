//! Input values checked against the viewer's schema, with variables as typed holes.
//!
//! GraphQL validation must refuse an input value that names an unknown input field or
//! enum value, wherever it stands. async-graphql 7.2's `ArgumentsOfCorrectType` turns an
//! argument into a constant with its variables filled in, and when one of them was not
//! sent it leaves the whole argument unchecked: `filter: {hasSourcx: SHOP, rfmSegment:
//! $w}` runs with `$w` unsent, the unknown field ignored. The hub does not rely on it.
//! Here every argument literal is checked as it stands, a variable inside it being a hole
//! of its declared type (whose use there validation checks, sent or not), and every
//! variable value sent, and every default, is checked against its declared type. Run on the viewer's schema,
//! this refuses a hidden input field exactly as an unknown one, since for that viewer it
//! is one ([`super::privacy::viewer`]).
//!
//! The walk visits each operation and fragment definition once (never a spread): its work
//! is bounded by the document's size.

use async_graphql::parser::types::{
    Directive, ExecutableDocument, OperationType, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::registry::{MetaInputValue, MetaType, MetaTypeName};
use async_graphql::{Name, Positioned, ServerError, Variables};
use async_graphql_value::Value;
use indexmap::IndexMap;

use super::privacy::viewer::Types;

/// The errors of [`check_document`] and [`check_variables`] together, in document order.
pub(crate) fn in_order(mut document: Vec<ServerError>, variables: Vec<ServerError>) -> Vec<ServerError> {
    document.extend(variables);
    document.sort_by_key(|e| e.locations.first().copied());
    document
}

/// The errors of the input values written in `document`: its literals, defaults and
/// directives, whatever the variables. The same for the same document and schema, so a
/// document found clean once need not be walked again ([`check_variables`] is then all).
pub(crate) fn check_document(types: &Types, document: &ExecutableDocument) -> Vec<ServerError> {
    if !types.types.contains_key(&types.query) {
        // A viewer schema without its types (cannot happen: see `viewer::build`) cannot
        // be checked against: refused.
        return vec![ServerError::new("internal error", None)];
    }
    let mut check = Check { types, errors: Vec::new() };
    for (_, op) in document.operations.iter() {
        let root = match op.node.ty {
            OperationType::Query => Some(types.query.as_str()),
            OperationType::Mutation => types.mutation.as_deref(),
            OperationType::Subscription => types.subscription.as_deref(),
        };
        check.directives(&op.node.directives);
        for definition in &op.node.variable_definitions {
            check.directives(&definition.node.directives);
            check.known_type(definition);
            check.default(definition);
        }
        if let Some(root) = root {
            check.selection_set(root, &op.node.selection_set);
        }
    }
    for fragment in document.fragments.values() {
        check.directives(&fragment.node.directives);
        let on = fragment.node.type_condition.node.on.node.as_str();
        check.selection_set(on, &fragment.node.selection_set);
    }
    check.errors.sort_by_key(|e| e.locations.first().copied());
    check.errors
}

/// The errors of the variable values sent for the operation that runs (`operation`, or
/// the only one), in document order.
pub(crate) fn check_variables(
    types: &Types,
    document: &ExecutableDocument,
    operation: Option<&str>,
    variables: &Variables,
) -> Vec<ServerError> {
    let mut check = Check { types, errors: Vec::new() };
    for (name, op) in document.operations.iter() {
        let runs = match (operation, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            (None, _) => document.operations.iter().count() == 1,
            (Some(_), None) => false,
        };
        if runs {
            for definition in &op.node.variable_definitions {
                check.variable(definition, variables);
            }
        }
    }
    check.errors.sort_by_key(|e| e.locations.first().copied());
    check.errors
}

struct Check<'a> {
    types: &'a Types,
    errors: Vec<ServerError>,
}

/// Where in an input value a problem is: the argument or variable, then field names and
/// list indices.
type Path = Vec<String>;

impl Check<'_> {
    fn selection_set(&mut self, parent: &str, set: &Positioned<SelectionSet>) {
        for item in &set.node.items {
            match &item.node {
                Selection::Field(field) => {
                    self.directives(&field.node.directives);
                    let Some(defined) =
                        self.types.types.get(parent).and_then(|t| t.field_by_name(&field.node.name.node))
                    else {
                        // Unknown here: validation reports the field, and nothing inside it.
                        continue;
                    };
                    self.arguments(&defined.args, &field.node.arguments);
                    let ty = MetaTypeName::concrete_typename(&defined.ty).to_owned();
                    self.selection_set(&ty, &field.node.selection_set);
                }
                Selection::InlineFragment(fragment) => {
                    self.directives(&fragment.node.directives);
                    let on = fragment.node.type_condition.as_ref().map_or(parent, |c| c.node.on.node.as_str());
                    self.selection_set(on, &fragment.node.selection_set);
                }
                Selection::FragmentSpread(spread) => self.directives(&spread.node.directives),
            }
        }
    }

    fn directives(&mut self, directives: &[Positioned<Directive>]) {
        for directive in directives {
            if let Some(args) = self.types.directives.get(directive.node.name.node.as_str()) {
                self.arguments(args, &directive.node.arguments);
            }
        }
    }

    fn arguments(
        &mut self,
        defined: &IndexMap<String, MetaInputValue>,
        given: &[(Positioned<Name>, Positioned<Value>)],
    ) {
        for (name, value) in given {
            // An unknown argument is validation's to report.
            let Some(argument) = defined.get(name.node.as_str()) else { continue };
            if let Some(reason) = self.value(&argument.ty, &value.node, &mut vec![name.node.to_string()]) {
                self.errors.push(ServerError::new(format!("Invalid value for argument {reason}"), Some(name.pos)));
            }
        }
    }

    /// A variable declared as a list of a type the viewer's schema lacks (`[Hidden!]`):
    /// async-graphql 7.2 reports an unknown named type, but looks a list's element type
    /// up with a panic when it has a default. Reported here as validation words it for a
    /// named one, before validation runs.
    fn known_type(&mut self, definition: &Positioned<VariableDefinition>) {
        let declared = &definition.node.var_type.node;
        if matches!(declared.base, async_graphql::parser::types::BaseType::Named(_)) {
            return;
        }
        let declared = declared.to_string();
        let name = MetaTypeName::concrete_typename(&declared);
        if !self.types.types.contains_key(name) {
            self.errors.push(ServerError::new(format!("Unknown type \"{name}\""), Some(definition.pos)));
        }
    }

    /// A variable's default, against its declared type (async-graphql checks defaults
    /// too, but names one unknown field of several at random).
    fn default(&mut self, definition: &Positioned<VariableDefinition>) {
        let Some(default) = &definition.node.default_value else { return };
        let declared = definition.node.var_type.node.to_string();
        if !self.types.types.contains_key(MetaTypeName::concrete_typename(&declared)) {
            return;
        }
        let name = &definition.node.name.node;
        let value = default.node.clone().into_value();
        if let Some(reason) = self.value(&declared, &value, &mut vec![format!("${name}")]) {
            self.errors
                .push(ServerError::new(format!("Invalid default value for variable {reason}"), Some(default.pos)));
        }
    }

    /// A variable's value as sent, against its declared type (when the viewer's schema has
    /// that type: an unknown one is validation's to report).
    fn variable(&mut self, definition: &Positioned<VariableDefinition>, variables: &Variables) {
        let name = &definition.node.name.node;
        let Some(sent) = variables.get(name) else { return };
        let declared = definition.node.var_type.node.to_string();
        if !self.types.types.contains_key(MetaTypeName::concrete_typename(&declared)) {
            return;
        }
        let value = sent.clone().into_value();
        if let Some(reason) = self.value(&declared, &value, &mut vec![format!("${name}")]) {
            self.errors.push(ServerError::new(format!("Invalid value for variable {reason}"), Some(definition.pos)));
        }
    }

    /// Why `value` is not a value of `ty`, as `"path", reason`; `None` when it is, or may
    /// be once its variables are filled in.
    fn value(&self, ty: &str, value: &Value, path: &mut Path) -> Option<String> {
        let invalid = |path: &Path, reason: String| Some(format!("\"{}\", {reason}", path.join(".")));
        if let Value::Variable(_) = value {
            // A typed hole: validation checks the variable's type fits here.
            return None;
        }
        match MetaTypeName::create(ty) {
            MetaTypeName::NonNull(inner) => match value {
                Value::Null => invalid(path, format!("expected type \"{inner}\"")),
                _ => self.value(inner, value, path),
            },
            MetaTypeName::List(inner) => match value {
                Value::List(items) => items.iter().enumerate().find_map(|(i, item)| {
                    path.push(i.to_string());
                    let reason = self.value(inner, item, path);
                    path.pop();
                    reason
                }),
                Value::Null => None,
                single => self.value(inner, single, path),
            },
            MetaTypeName::Named(name) => {
                if let Value::Null = value {
                    return None;
                }
                let Some(meta) = self.types.types.get(name) else {
                    return invalid(path, format!("unknown type \"{name}\""));
                };
                match meta {
                    MetaType::Scalar { is_valid, .. } => {
                        // A scalar literal holding variables (a JSON object, say) is checked
                        // when they are filled in, by the scalar's own parsing.
                        let constant = value.clone().into_const()?;
                        match is_valid {
                            Some(valid) if !valid(&constant) => invalid(path, format!("expected type \"{name}\"")),
                            _ => None,
                        }
                    }
                    MetaType::Enum { enum_values, .. } => match value {
                        Value::Enum(v) if enum_values.contains_key(v.as_str()) => None,
                        Value::String(v) if enum_values.contains_key(v.as_str()) => None,
                        Value::Enum(v) => {
                            invalid(path, format!("enumeration type \"{name}\" does not contain the value \"{v}\""))
                        }
                        Value::String(v) => {
                            invalid(path, format!("enumeration type \"{name}\" does not contain the value \"{v}\""))
                        }
                        _ => invalid(path, format!("expected type \"{name}\"")),
                    },
                    MetaType::InputObject { input_fields, oneof, .. } => {
                        let Value::Object(given) = value else {
                            return invalid(path, format!("expected type \"{name}\""));
                        };
                        if let Some(unknown) = given.keys().find(|k| !input_fields.contains_key(k.as_str())) {
                            return invalid(path, format!("unknown field \"{unknown}\" of type \"{name}\""));
                        }
                        if *oneof && given.len() != 1 {
                            return invalid(path, "Oneof input objects requires have exactly one field".to_owned());
                        }
                        for field in input_fields.values() {
                            match given.get(field.name.as_str()) {
                                Some(inner) => {
                                    path.push(field.name.clone());
                                    let reason = self.value(&field.ty, inner, path);
                                    path.pop();
                                    if reason.is_some() {
                                        return reason;
                                    }
                                }
                                None if MetaTypeName::create(&field.ty).is_non_null()
                                    && field.default_value.is_none() =>
                                {
                                    return invalid(
                                        path,
                                        format!(
                                            "field \"{}\" of type \"{}\" is required but not provided",
                                            field.name, field.ty
                                        ),
                                    );
                                }
                                None => {}
                            }
                        }
                        None
                    }
                    MetaType::Object { .. } | MetaType::Interface { .. } | MetaType::Union { .. } => {
                        invalid(path, format!("\"{name}\" is not an input type"))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::privacy::viewer;

    fn errors(query: &str, variables: serde_json::Value) -> Vec<String> {
        let schema = viewer::build(None, 0);
        let document = async_graphql::parser::parse_query(query).expect("parses");
        let variables = Variables::from_json(variables);
        let types = &schema.types;
        let found = in_order(check_document(types, &document), check_variables(types, &document, None, &variables));
        assert!(found.iter().all(|e| e.locations.len() == 1), "every error has a position: {found:?}");
        found.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn unknown_input_fields_are_refused_whether_or_not_variables_are_sent() {
        let q = "query($w: RfmSegment) { customers(filter: {hasSourcx: SHOP, rfmSegment: $w}) { totalCount } }";
        let expected = "Invalid value for argument \"filter\", unknown field \"hasSourcx\" of type \"CustomerFilter\"";
        assert_eq!(errors(q, serde_json::json!({})), [expected]);
        assert_eq!(errors(q, serde_json::json!({"w": "CHAMPIONS"})), [expected]);
        let nested = "query($d: OrderDirection) { customers(orderBy: {churnRisk: $d, nope: ASC}) { totalCount } }";
        assert_eq!(errors(nested, serde_json::json!({})).len(), 1);
    }

    #[test]
    fn values_sent_for_variables_are_checked_against_their_declared_type() {
        let q = "query($f: CustomerFilter) { customers(filter: $f) { totalCount } }";
        assert_eq!(
            errors(q, serde_json::json!({"f": {"hasSourcx": "SHOP"}})),
            ["Invalid value for variable \"$f\", unknown field \"hasSourcx\" of type \"CustomerFilter\""]
        );
        assert_eq!(errors(q, serde_json::json!({"f": {"hasSource": "SHOP"}})), Vec::<String>::new());
        assert_eq!(errors(q, serde_json::json!({"f": {"rfmSegment": "NOPE"}})).len(), 1);
        // A variable not sent, or null, is not a value to check.
        assert!(errors(q, serde_json::json!({})).is_empty());
        assert!(errors(q, serde_json::json!({"f": null})).is_empty());
    }

    /// async-graphql 7.2 panics on a list variable of an unknown type with a default (it
    /// checks only named types are known): refused before validation, as validation
    /// words an unknown named type.
    #[test]
    fn a_list_variable_of_an_unknown_type_is_refused() {
        for declared in ["[Nope!]", "[Nope]!", "[[Nope!]]"] {
            let q = format!("query($v: {declared} = [A]) {{ __typename }}");
            assert_eq!(errors(&q, serde_json::json!({})), ["Unknown type \"Nope\""], "{declared}");
        }
        // Known types, and named types (validation's), are not this check's.
        assert!(errors("query($v: [AlertKind!] = [COMPLAINT]) { __typename }", serde_json::json!({})).is_empty());
        assert!(errors("query($v: Nope = A) { __typename }", serde_json::json!({})).is_empty());
    }

    #[test]
    fn enum_values_and_shapes_are_checked_in_literals() {
        assert_eq!(errors("{ customers(filter: {rfmSegment: NOPE}) { totalCount } }", serde_json::json!({})).len(), 1);
        assert_eq!(errors("{ customers(filter: 3) { totalCount } }", serde_json::json!({})).len(), 1);
        assert!(
            errors("{ customers(filter: {rfmSegment: CHAMPIONS}) { totalCount } }", serde_json::json!({})).is_empty()
        );
        // Inside fragments and directives too.
        let fragment = "{ ...F } fragment F on Query { customers(filter: {hasSourcx: SHOP}) { totalCount } }";
        assert_eq!(errors(fragment, serde_json::json!({})).len(), 1);
        assert_eq!(errors("{ __typename @skip(if: NOPE) }", serde_json::json!({})).len(), 1);
    }

    /// async-graphql's own rule, kept as a reproduction: an argument holding a variable
    /// that was not sent goes unchecked, so an unknown input field beside it is accepted
    /// and ignored. The day this fails, upstream checks it: this module may then go.
    #[tokio::test]
    async fn upstream_still_skips_arguments_with_unsent_variables() {
        use async_graphql::{EmptyMutation, EmptySubscription, InputObject, Object, Schema};

        #[derive(InputObject)]
        struct Filter {
            known: Option<i32>,
        }
        struct Root;
        #[Object]
        impl Root {
            async fn count(&self, filter: Option<Filter>) -> i32 {
                filter.and_then(|f| f.known).unwrap_or(0)
            }
        }
        let schema = Schema::new(Root, EmptyMutation, EmptySubscription);
        let unsent = schema.execute("query($k: Int) { count(filter: {unknown: 1, known: $k}) }").await;
        assert!(
            unsent.errors.is_empty(),
            "async-graphql now refuses an unknown input field beside an unsent variable: {:?}",
            unsent.errors
        );
        let sent = async_graphql::Request::new("query($k: Int) { count(filter: {unknown: 1, known: $k}) }")
            .variables(Variables::from_json(serde_json::json!({"k": 2})));
        assert_eq!(schema.execute(sent).await.errors.len(), 1, "with every variable sent, it checks");
    }
}
