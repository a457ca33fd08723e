//! Puts a response's fields in the order of the selection set, as GraphQL's ordered
//! result map requires: async-graphql resolves a query's fields at once and keeps them
//! in the order they finish, so a field waiting on a database ends up after its later
//! siblings.

use async_graphql::Value;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use indexmap::IndexMap;

/// Orders `data`, the result of the operation `operation_name` of `document`.
pub(crate) fn reorder(document: &ExecutableDocument, operation_name: Option<&str>, data: &mut Value) {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return,
        },
        (DocumentOperations::Multiple(ops), None) => match ops.values().next() {
            Some(op) if ops.len() == 1 => op,
            _ => return,
        },
    };
    Orderer { document }.value(&[&operation.node.selection_set.node], data);
}

struct Orderer<'a> {
    document: &'a ExecutableDocument,
}

/// Response keys in selection order, each with the selection sets below it (a key can be
/// selected more than once, by fragments).
type Keys<'a> = IndexMap<&'a str, Vec<&'a SelectionSet>>;

impl<'a> Orderer<'a> {
    fn value(&self, sets: &[&'a SelectionSet], value: &mut Value) {
        match value {
            Value::Object(_) | Value::List(_) => {
                let mut keys = Keys::new();
                let mut spreading = Vec::new();
                for set in sets {
                    self.collect(set, &mut keys, &mut spreading);
                }
                self.apply(&keys, value);
            }
            _ => {}
        }
    }

    fn apply(&self, keys: &Keys<'a>, value: &mut Value) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.apply(keys, item);
                }
            }
            Value::Object(map) => {
                // Most objects come in order (fields that wait on nothing finish in order):
                // those are checked without hashing and left as they are.
                if !in_order(keys, map) {
                    // Stable: fields not selected (there should be none) stay at the end.
                    map.sort_by_cached_key(|name, _| keys.get_index_of(name.as_str()).unwrap_or(usize::MAX));
                }
                // In selection order now: each field's key is the next one of its name.
                let mut wanted = keys.iter();
                for (name, inner) in map.iter_mut() {
                    let Some((_, sets)) = wanted.find(|(key, _)| **key == name.as_str()) else { break };
                    if !sets.is_empty() {
                        self.value(sets, inner);
                    }
                }
            }
            _ => {}
        }
    }

    fn collect(&self, set: &'a SelectionSet, keys: &mut Keys<'a>, spreading: &mut Vec<&'a str>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let key = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
                    let below = keys.entry(key).or_default();
                    if !field.selection_set.node.items.is_empty() {
                        below.push(&field.selection_set.node);
                    }
                }
                Selection::InlineFragment(fragment) => self.collect(&fragment.node.selection_set.node, keys, spreading),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(fragment) = self.document.fragments.get(&spread.node.fragment_name.node)
                        && !spreading.contains(&name)
                    {
                        spreading.push(name);
                        self.collect(&fragment.node.selection_set.node, keys, spreading);
                        spreading.pop();
                    }
                }
            }
        }
    }
}

/// Whether the fields of `map` come in the order of `keys` (each one a later key than
/// the one before it).
fn in_order(keys: &Keys<'_>, map: &IndexMap<async_graphql::Name, Value>) -> bool {
    let mut wanted = keys.keys();
    map.keys().all(|name| wanted.any(|key| *key == name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_the_selection_set_through_fragments_and_lists() {
        let document = async_graphql::parser::parse_query(
            "query Q { z: __typename list { b ...F } a: __typename } fragment F on Item { a ... on Item { c } }",
        )
        .expect("parses");
        let mut data = Value::from_json(serde_json::json!({
            "a": "Query",
            "list": [{ "c": 3, "a": 1, "b": 2 }, { "a": 1, "c": 3, "b": 2 }],
            "z": "Query",
        }))
        .expect("json");
        reorder(&document, Some("Q"), &mut data);
        let text = data.into_json().expect("json").to_string();
        assert_eq!(text, r#"{"z":"Query","list":[{"b":2,"a":1,"c":3},{"b":2,"a":1,"c":3}],"a":"Query"}"#);
    }

    #[test]
    fn objects_in_order_are_kept_and_their_children_still_ordered() {
        let document =
            async_graphql::parser::parse_query("{ z: __typename list { b a } a: __typename }").expect("parses");
        let object = |pairs: &[(&str, Value)]| {
            Value::Object(pairs.iter().map(|(k, v)| (async_graphql::Name::new(k), v.clone())).collect())
        };
        let item = object(&[("a", Value::from(1)), ("b", Value::from(2))]);
        let mut data = object(&[
            ("z", Value::from("Query")),
            ("list", Value::List(vec![item.clone(), item])),
            ("a", Value::from("Query")),
        ]);
        reorder(&document, None, &mut data);
        let text = data.into_json().expect("json").to_string();
        assert_eq!(text, r#"{"z":"Query","list":[{"b":2,"a":1},{"b":2,"a":1}],"a":"Query"}"#);
    }
}
