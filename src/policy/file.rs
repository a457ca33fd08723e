//! The policy file: role × privacy class → show, mask or hide, depending on scopes.
//!
//! ```toml
//! [requires]                      # a class is hidden from tokens without its scope
//! financial = "orders:read"
//!
//! [roles.frontend]
//! identity = "show"
//! contact = { with = "pii:read", then = "show", otherwise = "mask" }
//!
//! [rows]                          # which customers a role sees at all
//! frontend = "all"
//! partner = "consented"
//! ```
//! Every role names every class; a typo in a role, class, decision or scope is an error
//! at start, and so is a `mask` for a class with fields that have no masked form.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;
use strum::IntoEnumIterator;

use super::{Access, CLASSES, ClassifiedField, ConsentScope, Decision, PrivacyClass, RowRule, Rows};
use crate::auth::{Role, SCOPES, Viewer};

/// The policy shipped with the hub (`policy.toml` at the project root).
pub(crate) const DEFAULT_POLICY: &str = include_str!("../../policy.toml");

/// A policy file that cannot be used, with the reason in the file's terms.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("policy {origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    requires: BTreeMap<PrivacyClass, String>,
    roles: BTreeMap<Role, BTreeMap<PrivacyClass, Rule>>,
    rows: BTreeMap<Role, RowRule>,
}

/// One role's rule for one class.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Rule {
    Always(Decision),
    Scoped(ScopedRule),
}

/// `then` when the token has every scope in `with`, else `otherwise`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopedRule {
    with: OneOrMany,
    then: Decision,
    otherwise: Decision,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn scopes(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

impl Rule {
    fn decide(&self, viewer: &Viewer) -> Decision {
        match self {
            Rule::Always(d) => *d,
            Rule::Scoped(r) => {
                if r.with.scopes().iter().all(|s| viewer.has_scope(s)) {
                    r.then
                } else {
                    r.otherwise
                }
            }
        }
    }

    /// Every decision this rule can give.
    fn outcomes(&self) -> Vec<Decision> {
        match self {
            Rule::Always(d) => vec![*d],
            Rule::Scoped(r) => vec![r.then, r.otherwise],
        }
    }
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    requires: BTreeMap<PrivacyClass, String>,
    roles: BTreeMap<Role, BTreeMap<PrivacyClass, Rule>>,
    rows: BTreeMap<Role, RowRule>,
    /// Benchmarks only: every class shown to everyone.
    show_all: bool,
}

impl Policy {
    /// Reads the policy at `path`, or the shipped one; checks it against the schema's
    /// classified `fields`.
    pub fn load(path: Option<&Path>, fields: &[ClassifiedField]) -> Result<Self, PolicyError> {
        let (origin, text) = match path {
            Some(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.into(), source })?,
            ),
            None => ("(shipped policy.toml)".to_owned(), DEFAULT_POLICY.to_owned()),
        };
        Self::parse(&text, fields).map_err(|message| PolicyError::Invalid { origin, message })
    }

    /// Parses and checks a policy document.
    pub(crate) fn parse(text: &str, fields: &[ClassifiedField]) -> Result<Self, String> {
        let file: PolicyFile = Figment::from(Toml::string(text)).extract().map_err(|e| e.to_string())?;
        let known = |scope: &str| SCOPES.iter().any(|(s, _)| *s == scope);
        for (class, scope) in &file.requires {
            if !known(scope) {
                return Err(format!("requires.{class}: unknown scope `{scope}`"));
            }
        }
        for role in Role::iter() {
            let Some(rules) = file.roles.get(&role) else {
                return Err(format!("no rules for role `{role}`"));
            };
            // Partner tokens carry the partner a consent names; no other token does.
            let rows = file.rows.get(&role).ok_or_else(|| format!("rows: no row rule for role `{role}`"))?;
            let wanted = if role == Role::Partner { RowRule::Consented } else { RowRule::All };
            if *rows != wanted {
                return Err(format!(
                    "rows.{role}: must be \"{wanted}\" (partners see only consenting customers; \
                     other roles have no partner to consent to)"
                ));
            }
            for class in PrivacyClass::iter() {
                let Some(rule) = rules.get(&class) else {
                    return Err(format!("roles.{role}: no rule for class `{class}`"));
                };
                if let Rule::Scoped(r) = rule
                    && let Some(scope) = r.with.scopes().into_iter().find(|s| !known(s))
                {
                    return Err(format!("roles.{role}.{class}: unknown scope `{scope}`"));
                }
                let outcomes = rule.outcomes();
                if role == Role::Partner && class == PrivacyClass::Internal && outcomes != [Decision::Hide] {
                    return Err("roles.partner.internal: partners never see internal data; it must be \"hide\"".into());
                }
                if outcomes.contains(&Decision::Mask) {
                    let unmaskable: Vec<&str> = fields
                        .iter()
                        .filter(|f| f.class == class && f.mask.is_none())
                        .map(|f| f.name.as_str())
                        .collect();
                    if !unmaskable.is_empty() {
                        return Err(format!(
                            "roles.{role}.{class}: \"mask\" is not possible for class `{class}`: {} cannot be masked \
                             (use \"show\" or \"hide\")",
                            unmaskable.join(", ")
                        ));
                    }
                }
            }
        }
        Ok(Policy { requires: file.requires, roles: file.roles, rows: file.rows, show_all: false })
    }

    /// A policy that shows everything to everyone: only for measuring what the policy
    /// costs (`c360 bench`).
    pub(crate) fn show_all() -> Self {
        Policy { requires: BTreeMap::new(), roles: BTreeMap::new(), rows: BTreeMap::new(), show_all: true }
    }

    /// What `class` is for `viewer`.
    pub(crate) fn decide(&self, viewer: &Viewer, class: PrivacyClass) -> Decision {
        if self.show_all {
            return Decision::Show;
        }
        if self.requires.get(&class).is_some_and(|scope| !viewer.has_scope(scope)) {
            return Decision::Hide;
        }
        self.roles.get(&viewer.role).and_then(|rules| rules.get(&class)).map_or(Decision::Hide, |r| r.decide(viewer))
    }

    /// Which customers `viewer` sees. A row rule that needs a partner, for a token
    /// without one, sees nobody (no consent names an empty partner).
    pub(crate) fn rows(&self, viewer: &Viewer) -> Rows {
        let rule = if self.show_all {
            RowRule::All
        } else {
            self.rows.get(&viewer.role).copied().unwrap_or(RowRule::Consented)
        };
        match rule {
            RowRule::All if viewer.partner.is_none() => Rows::All,
            _ => Rows::ConsentedTo(ConsentScope {
                partner: viewer.partner.clone().unwrap_or_default(),
                purpose: viewer.purpose.clone(),
            }),
        }
    }

    /// The decision table of one request.
    pub fn access(&self, viewer: &Viewer) -> Access {
        let mut decisions = [Decision::Hide; CLASSES];
        for class in PrivacyClass::iter() {
            decisions[class.index()] = self.decide(viewer, class);
        }
        let rows = self.rows(viewer);
        Access { decisions, rows }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MaskFormat;

    /// Fields as the schema classifies them (one unmaskable financial field is enough).
    fn table() -> Vec<ClassifiedField> {
        vec![
            ClassifiedField {
                name: "Customer.email".into(),
                class: PrivacyClass::Contact,
                mask: Some(MaskFormat::Email),
            },
            ClassifiedField { name: "Order.total".into(), class: PrivacyClass::Financial, mask: None },
        ]
    }

    #[test]
    fn the_shipped_policy_is_valid() {
        Policy::load(None, &table()).expect("shipped policy");
    }

    #[test]
    fn mistakes_are_named() {
        let table = table();
        let broken = |from: &str, to: &str| {
            assert!(DEFAULT_POLICY.contains(from), "{from}");
            Policy::parse(&DEFAULT_POLICY.replacen(from, to, 1), &table).expect_err(to)
        };
        let e = broken("[roles.analyst]", "[roles.analyts]");
        assert!(e.contains("analyts"), "{e}");
        let e = broken("financial = \"orders:read\"", "financial = \"orders:raed\"");
        assert!(e.contains("orders:raed"), "{e}");
        // Orders have no masked form.
        let e = broken("financial = \"hide\"", "financial = \"mask\"");
        assert!(e.contains("cannot be masked"), "{e}");
        let e = broken("partner = \"consented\"", "partner = \"all\"");
        assert!(e.contains("rows.partner"), "{e}");
    }

    #[test]
    fn partners_see_consenting_rows_only() {
        let policy = Policy::load(None, &table()).expect("policy");
        assert_eq!(policy.rows(&Viewer::with_role(Role::Analyst, None)), Rows::All);
        let partner = Viewer::with_role(Role::Partner, Some("acme"));
        assert_eq!(policy.rows(&partner), Rows::ConsentedTo(ConsentScope { partner: "acme".into(), purpose: None }));
        // A token that somehow names a partner without being one sees only its consents.
        let odd = Viewer::with_role(Role::Admin, Some("acme"));
        assert!(matches!(policy.rows(&odd), Rows::ConsentedTo(_)));
    }

    #[test]
    fn scopes_switch_decisions() {
        let policy = Policy::load(None, &table()).expect("policy");
        let mut viewer = Viewer::with_role(Role::Frontend, None);
        assert_eq!(policy.decide(&viewer, PrivacyClass::Contact), Decision::Mask);
        viewer.scopes.insert("pii:read".into());
        assert_eq!(policy.decide(&viewer, PrivacyClass::Contact), Decision::Show);
        viewer.scopes.remove("orders:read");
        assert_eq!(policy.decide(&viewer, PrivacyClass::Financial), Decision::Hide, "requires orders:read");
    }

    /// A viewer's schema is cached by its hidden classes: viewers hiding different
    /// classes must never share one, viewers hiding the same ones may.
    #[test]
    fn hidden_sets_tell_viewers_apart_by_what_they_hide() {
        let policy = Policy::load(None, &table()).expect("policy");
        let set = |viewer: Viewer| policy.access(&viewer).hidden_set();
        let analyst = set(Viewer::with_role(Role::Analyst, None));
        let frontend = set(Viewer::with_role(Role::Frontend, None));
        assert_eq!(set(Viewer::with_role(Role::Admin, None)), 0, "admins see every class");
        assert_ne!(analyst, frontend);
        assert!(analyst < 1 << crate::policy::CLASSES);
        let access = policy.access(&Viewer::with_role(Role::Analyst, None));
        for class in <PrivacyClass as strum::IntoEnumIterator>::iter() {
            assert_eq!(analyst & (1 << class as usize) != 0, access.hides(class), "{class:?}");
        }
        let mut without_orders = Viewer::with_role(Role::Frontend, None);
        without_orders.scopes.remove("orders:read");
        assert_ne!(set(without_orders), frontend, "a missing scope hides financial data");
    }
}
