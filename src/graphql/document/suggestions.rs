//! "Did you mean …?" for a field the document names and its type does not have, from the
//! viewer's schema: it never names a field the policy hides from the viewer, since that
//! schema has none. (async-graphql's own suggestions are off: the hub offers these only
//! to the roles configured for them.)

use async_graphql::ServerError;

use crate::graphql::privacy::viewer::Types;

/// Suggestions offered at most.
const MOST: usize = 5;

/// Appends to each unknown-field error the fields of that type in the viewer's schema
/// whose names are close to the one asked for.
pub(crate) fn suggest(errors: &mut [ServerError], types: &Types) {
    for error in errors {
        let Some((field, ty)) = unknown_field(&error.message) else { continue };
        let Some(fields) = types.types.get(ty).and_then(|t| t.fields()) else { continue };
        let close = close_to(field, fields.keys().map(String::as_str));
        if !close.is_empty() {
            error.message = format!("{} Did you mean {}?", error.message, listed(&close));
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
        let table = crate::graphql::privacy::PrivacyTable::from_sdl(&sdl).expect("classes");
        let policy = Policy::load(None, &table.value_fields()).expect("the shipped policy");
        let hidden = policy.access(&Viewer::with_role(role, None)).hidden_set();
        let schema = crate::graphql::privacy::viewer::build(None, hidden);
        let mut errors = vec![ServerError::new(message, None)];
        super::suggest(&mut errors, &schema.types);
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
