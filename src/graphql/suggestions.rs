//! "Did you mean …?" for a field the document names and its type does not have, from the
//! fields the viewer may see only. async-graphql's own suggestions draw on every field of
//! the type, hidden ones included, so they are off; these never name a field the policy
//! hides from the viewer.

use std::collections::HashMap;

use async_graphql::ServerError;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

use super::privacy::schema::read_directive;
use crate::policy::{Access, PrivacyClass};

/// The fields of each object and interface type, each with its privacy class.
#[derive(Debug, Clone, Default)]
pub struct Suggestions(HashMap<String, Vec<(String, Option<PrivacyClass>)>>);

/// Suggestions offered at most.
const MOST: usize = 5;

impl Suggestions {
    pub fn from_sdl(sdl: &str) -> Result<Suggestions, String> {
        let schema = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut types: HashMap<String, Vec<(String, Option<PrivacyClass>)>> = HashMap::new();
        for definition in &schema.definitions {
            let TypeSystemDefinition::Type(ty) = definition else { continue };
            let fields = match &ty.node.kind {
                TypeKind::Object(object) => &object.fields,
                TypeKind::Interface(interface) => &interface.fields,
                _ => continue,
            };
            let mut named = Vec::with_capacity(fields.len());
            for field in fields {
                let mut class = None;
                for directive in &field.node.directives {
                    let lookup = match directive.node.name.node.as_str() {
                        "privacy" => false,
                        "lookup" => true,
                        _ => continue,
                    };
                    class = Some(read_directive(&directive.node.arguments, lookup)?.class);
                }
                named.push((field.node.name.node.to_string(), class));
            }
            types.insert(ty.node.name.node.to_string(), named);
        }
        Ok(Suggestions(types))
    }

    /// Appends to each unknown-field error the fields of that type, visible to `access`,
    /// whose names are close to the one asked for.
    pub fn suggest(&self, errors: &mut [ServerError], access: &Access) {
        for error in errors {
            let Some((field, ty)) = unknown_field(&error.message) else { continue };
            let Some(fields) = self.0.get(ty) else { continue };
            let visible = fields.iter().filter(|(_, class)| class.is_none_or(|c| !access.hides(c)));
            let close = close_to(field, visible.map(|(name, _)| name.as_str()));
            if !close.is_empty() {
                error.message = format!("{} Did you mean {}?", error.message, listed(&close));
            }
        }
    }
}

/// The field and type of `Unknown field "x" on type "T".`
fn unknown_field(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("Unknown field \"")?;
    let (field, rest) = rest.split_once("\" on type \"")?;
    let ty = rest.strip_suffix("\".")?;
    Some((field, ty))
}

/// The names within graphql-js's lexical distance of `input` (at most 40% of its length
/// apart, case differences counting as nothing), closest first.
fn close_to<'a>(input: &str, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let threshold = input.len() * 2 / 5 + 1;
    let lowered = input.to_lowercase();
    let mut close: Vec<(usize, &str)> = names
        .filter(|name| *name != input)
        .filter_map(|name| {
            let distance = if name.to_lowercase() == lowered {
                1
            } else {
                strsim::damerau_levenshtein(&lowered, &name.to_lowercase())
            };
            (distance <= threshold).then_some((distance, name))
        })
        .collect();
    close.sort();
    close.into_iter().take(MOST).map(|(_, name)| name).collect()
}

/// `"a"`, `"a" or "b"`, `"a", "b", or "c"`.
fn listed(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [rest @ .., last] => format!("{}, or {last}", rest.join(", ")),
        [] => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, Viewer};
    use crate::policy::Policy;

    fn suggest(role: Role, message: &str) -> String {
        let sdl = crate::graphql::sdl();
        let suggestions = Suggestions::from_sdl(&sdl).expect("sdl");
        let table = crate::graphql::privacy::PrivacyTable::from_sdl(&sdl).expect("classes");
        let policy = Policy::load(None, &table.value_fields()).expect("the shipped policy");
        let access = policy.access(Viewer::with_role(role, None));
        let mut errors = vec![ServerError::new(message, None)];
        suggestions.suggest(&mut errors, &access);
        errors.remove(0).message
    }

    #[test]
    fn suggestions_name_only_what_the_viewer_sees() {
        let typo = "Unknown field \"insigths\" on type \"Customer\".";
        assert_eq!(suggest(Role::Analyst, typo), format!("{typo} Did you mean \"insights\"?"));
        let email = "Unknown field \"emial\" on type \"Customer\".";
        assert_eq!(suggest(Role::Admin, email), format!("{email} Did you mean \"email\"?"));
        // Analysts may not see contact data: no `email` for them.
        assert_eq!(suggest(Role::Analyst, email), email);
        // Nothing close, or not an unknown field: unchanged.
        let far = "Unknown field \"zzzzzz\" on type \"Customer\".";
        assert_eq!(suggest(Role::Admin, far), far);
        assert_eq!(suggest(Role::Admin, "Unknown argument \"x\""), "Unknown argument \"x\"");
        assert_eq!(listed(&["a", "b", "c"]), "\"a\", \"b\", or \"c\"");
    }
}
