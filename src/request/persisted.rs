//! Persisted documents: automatic persisted queries (Apollo's APQ protocol, a document
//! sent once and then named by its SHA-256) and safelists (per role or per partner: only
//! listed documents run, named by hash or id, or sent in full and found by hash).
//!
//! A registered document is kept for the viewer that sent it, by everything that decides
//! what a document shows (subject, role, scopes, partner, purpose): a hash that answers
//! for one caller tells another nothing about what was asked, and a document an admin
//! sent never runs by hash for a partner token of the same subject.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_graphql::Value;
use quick_cache::sync::Cache;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::auth::{Role, Viewer};
use crate::config::SafelistsConfig;

/// Why a request's document was not found or not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// APQ: the hash is not registered (for this viewer); the client sends the text.
    #[error("PersistedQueryNotFound")]
    NotFound,
    /// The viewer has a safelist and the document is not on it.
    #[error("the operation is not on this token's safelist")]
    NotInList,
    /// The text sent with a hash is not the text of that hash.
    #[error("the document's SHA-256 is not the hash sent with it")]
    HashMismatch,
    /// APQ is switched off (`graphql.automatic_persisted_queries`).
    #[error("PersistedQueryNotSupported")]
    NotSupported,
    /// `persistedQuery` that is not version 1 with a `sha256Hash`.
    #[error("persistedQuery must be {{\"version\": 1, \"sha256Hash\": \"<hex>\"}}")]
    Unsupported,
}

impl Refusal {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            Refusal::NotInList => "PERSISTED_QUERY_NOT_IN_LIST",
            Refusal::HashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            Refusal::NotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            Refusal::Unsupported => "BAD_REQUEST",
        }
    }
}

/// One safelist: its documents by id and by the hex SHA-256 of their text.
#[derive(Debug, Default)]
struct Safelist {
    by_id: HashMap<String, Arc<str>>,
    by_hash: HashMap<String, Arc<str>>,
}

/// An Apollo persisted query manifest, or a plain `{ "<id>": "<document>" }` map (as
/// Relay's compiler writes it).
#[derive(Deserialize)]
#[serde(untagged)]
enum Manifest {
    Apollo { operations: Vec<ManifestOperation> },
    Map(BTreeMap<String, String>),
}

#[derive(Deserialize)]
struct ManifestOperation {
    id: String,
    body: String,
}

impl Safelist {
    fn load(path: &Path) -> anyhow::Result<Safelist> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("safelist {} cannot be read: {e}", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!("safelist {}: neither a persisted query manifest nor an id map: {e}", path.display())
        })?;
        let entries: Vec<(String, String)> = match manifest {
            Manifest::Apollo { operations } => operations.into_iter().map(|o| (o.id, o.body)).collect(),
            Manifest::Map(map) => map.into_iter().collect(),
        };
        let mut list = Safelist::default();
        for (id, body) in entries {
            async_graphql::parser::parse_query(&body)
                .map_err(|e| anyhow::anyhow!("safelist {}: document `{id}` does not parse: {e}", path.display()))?;
            let body: Arc<str> = body.into();
            list.by_hash.insert(sha256_hex(&body), body.clone());
            list.by_id.insert(id, body);
        }
        Ok(list)
    }

    fn named(&self, name: &str) -> Option<&Arc<str>> {
        self.by_id.get(name).or_else(|| self.by_hash.get(&name.to_ascii_lowercase()))
    }
}

/// Registered APQ documents kept at most (per replica; a client whose hash was dropped
/// is told `PERSISTED_QUERY_NOT_FOUND` and sends the text again, as the protocol has it).
const REGISTERED: usize = 4096;
/// Longer documents run but are not registered.
const LONGEST_REGISTERED: usize = 64 * 1024;

/// Whose an APQ registration is: every part of a viewer that decides what a document
/// shows. Another token of the same viewer (a fresh one, the same claims) finds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Registrant {
    subject: String,
    role: Role,
    scopes: BTreeSet<String>,
    partner: Option<String>,
    purpose: Option<String>,
}

impl Registrant {
    fn of(viewer: &Viewer) -> Self {
        Registrant {
            subject: viewer.subject.clone(),
            role: viewer.role,
            scopes: viewer.scopes.clone(),
            partner: viewer.partner.clone(),
            purpose: viewer.purpose.clone(),
        }
    }
}

/// The hub's persisted documents.
pub(crate) struct Persisted {
    /// APQ registrations by viewer and hash; `None` when APQ is off.
    registered: Option<Cache<(Registrant, String), Arc<str>>>,
    roles: HashMap<String, Safelist>,
    partners: HashMap<String, Safelist>,
}

impl Persisted {
    /// Loads every safelist; a list that cannot be read or holds a document that does not
    /// parse stops the start.
    pub(crate) fn load(config: &SafelistsConfig, automatic: bool) -> anyhow::Result<Persisted> {
        let load = |lists: &BTreeMap<String, PathBuf>| -> anyhow::Result<HashMap<String, Safelist>> {
            lists.iter().map(|(key, path)| Ok((key.clone(), Safelist::load(path)?))).collect()
        };
        for role in config.roles.keys() {
            role.parse::<crate::auth::Role>().map_err(|_| anyhow::anyhow!("safelists.roles: no role `{role}`"))?;
        }
        Ok(Persisted {
            roles: load(&config.roles)?,
            partners: load(&config.partners)?,
            ..Persisted::automatic(automatic)
        })
    }

    /// APQ alone (when `on`), with no safelist.
    pub(crate) fn automatic(on: bool) -> Persisted {
        Persisted { registered: on.then(|| Cache::new(REGISTERED)), roles: HashMap::new(), partners: HashMap::new() }
    }

    /// Fills in `request.query` from the persisted document the request names, or checks
    /// its text against the viewer's safelist. Requests that name no persisted document
    /// and meet no safelist pass as they are.
    pub(crate) fn resolve(&self, viewer: &Viewer, request: &mut async_graphql::Request) -> Result<(), Refusal> {
        let named = match request.extensions.get("persistedQuery") {
            None => None,
            Some(persisted) => Some(hash_of(persisted).ok_or(Refusal::Unsupported)?),
        };
        if let Some(list) = self.safelist(viewer) {
            let listed = match &named {
                Some(name) => list.named(name),
                None => list.by_hash.get(&sha256_hex(&request.query)),
            };
            let listed = listed.ok_or(Refusal::NotInList)?;
            if !request.query.is_empty() && request.query != **listed {
                return Err(Refusal::NotInList);
            }
            request.query = listed.to_string();
            return Ok(());
        }
        let Some(hash) = named else { return Ok(()) };
        let Some(registered) = &self.registered else { return Err(Refusal::NotSupported) };
        let key = (Registrant::of(viewer), hash.to_ascii_lowercase());
        if request.query.is_empty() {
            let document = registered.get(&key).ok_or(Refusal::NotFound)?;
            request.query = document.to_string();
        } else {
            if sha256_hex(&request.query) != key.1 {
                return Err(Refusal::HashMismatch);
            }
            // A document that writes an email or a phone number out is run, not kept: the
            // hub keeps no personal data that an erasure would not find.
            if request.query.len() <= LONGEST_REGISTERED && !holds_contact_literal(&request.query) {
                registered.insert(key, request.query.as_str().into());
            }
        }
        Ok(())
    }

    fn safelist(&self, viewer: &Viewer) -> Option<&Safelist> {
        let partner = viewer.partner.as_deref().and_then(|p| self.partners.get(p));
        partner.or_else(|| self.roles.get(<&'static str>::from(viewer.role)))
    }
}

/// The `sha256Hash` of a version-1 `persistedQuery` extension.
fn hash_of(persisted: &Value) -> Option<String> {
    let Value::Object(fields) = persisted else { return None };
    let version = fields.get("version")?;
    if *version != Value::from(1) {
        return None;
    }
    match fields.get("sha256Hash")? {
        Value::String(hash) if !hash.is_empty() && hash.len() <= 128 => Some(hash.clone()),
        _ => None,
    }
}

/// The lowercase hex SHA-256 of a document's text, as APQ clients compute it.
/// Whether a string literal of `query` looks like an email (an `@`) or a phone number
/// (seven digits or more, whatever separates them).
fn holds_contact_literal(query: &str) -> bool {
    let mut rest = query;
    while let Some(start) = rest.find('"') {
        let after = &rest[start..];
        let (quote, body) = match after.strip_prefix("\"\"\"") {
            Some(body) => ("\"\"\"", body),
            None => ("\"", after.get(1..).unwrap_or_default()),
        };
        // The end of the literal: its closing quote, not an escaped one.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' && quote == "\"" {
                escaped = true;
            } else if body[i..].starts_with(quote) {
                end = Some(i);
                break;
            }
        }
        let literal = &body[..end.unwrap_or(body.len())];
        let digits = literal.chars().filter(char::is_ascii_digit).count();
        let phone_like = digits >= 7 && literal.chars().all(|c| c.is_ascii_digit() || " +-()./".contains(c));
        if literal.contains('@') || phone_like {
            return true;
        }
        let Some(end) = end else { return false };
        rest = &body[end + quote.len()..];
    }
    false
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = "query Profile($id: ID!) { customer(id: $id) { id } }";

    fn apq(hash: &str) -> async_graphql::Value {
        let mut fields = async_graphql::indexmap::IndexMap::new();
        fields.insert(async_graphql::Name::new("version"), Value::from(1));
        fields.insert(async_graphql::Name::new("sha256Hash"), Value::from(hash));
        Value::Object(fields)
    }

    fn request(query: &str, hash: Option<&str>) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(query);
        if let Some(hash) = hash {
            request.extensions.insert("persistedQuery".into(), apq(hash));
        }
        request
    }

    fn hub(lists: &[(&str, &str)]) -> (Persisted, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("dir");
        let mut config = SafelistsConfig::default();
        for (role, manifest) in lists {
            let path = dir.path().join(format!("{role}.json"));
            std::fs::write(&path, manifest).expect("write");
            config.roles.insert((*role).to_owned(), path);
        }
        (Persisted::load(&config, true).expect("load"), dir)
    }

    #[test]
    fn documents_that_write_contact_data_out_are_run_not_kept() {
        for literal in [
            r#"{ customerByEmail(email: "jane@example.com") { id } }"#,
            r#"{ customerByPhone(phone: "+49 151 2345-678") { id } }"#,
            r#"{ a: __typename b: customerByEmail(email: """ x@y.z """) { id } }"#,
            r#"{ x: customerByEmail(email: "say \"hi\" jane@example.com") { id } }"#,
        ] {
            assert!(holds_contact_literal(literal), "{literal}");
        }
        for clean in [
            PROFILE,
            r#"{ customers(first: 5, filter: { rfmSegment: CHAMPIONS }) { totalCount } }"#,
            r#"{ insights { expectedPurchases(days: 1234567) } x: node(id: "Q3VzdG9tZXI6MQ") { id } }"#,
            r#"{ __type(name: "Customer") { name } }"#,
        ] {
            assert!(!holds_contact_literal(clean), "{clean}");
        }
        let (persisted, _dir) = hub(&[]);
        let jane = Viewer::with_role(Role::Agent, None);
        let query = r#"query { customerByEmail(email: "jane@example.com") { id } }"#;
        let hash = sha256_hex(query);
        assert_eq!(persisted.resolve(&jane, &mut request(query, Some(&hash))), Ok(()));
        assert_eq!(persisted.resolve(&jane, &mut request("", Some(&hash))), Err(Refusal::NotFound));
    }

    #[test]
    fn a_hash_runs_once_its_text_was_sent_by_the_same_subject() {
        let (persisted, _dir) = hub(&[]);
        let hash = sha256_hex(PROFILE);
        let jane = Viewer::with_role(Role::Analyst, None);
        let other = Viewer { subject: "someone-else".into(), ..jane.clone() };

        assert_eq!(persisted.resolve(&jane, &mut request("", Some(&hash))), Err(Refusal::NotFound));
        let mismatched = &mut request("{ __typename }", Some(&hash));
        assert_eq!(persisted.resolve(&jane, mismatched), Err(Refusal::HashMismatch));
        assert_eq!(persisted.resolve(&jane, &mut request(PROFILE, Some(&hash.to_uppercase()))), Ok(()));

        let mut by_hash = request("", Some(&hash));
        assert_eq!(persisted.resolve(&jane, &mut by_hash), Ok(()));
        assert_eq!(by_hash.query, PROFILE);
        assert_eq!(persisted.resolve(&other, &mut request("", Some(&hash))), Err(Refusal::NotFound));
    }

    /// What a document shows depends on the whole viewer, not its subject: a document an
    /// admin registered does not run by hash for a token of the same subject with another
    /// role, scopes, partner or purpose.
    #[test]
    fn a_registration_is_kept_for_the_viewer_that_made_it() {
        let (persisted, _dir) = hub(&[]);
        let hash = sha256_hex(PROFILE);
        let admin = Viewer { subject: "jane".into(), ..Viewer::with_role(Role::Admin, None) };
        assert_eq!(persisted.resolve(&admin, &mut request(PROFILE, Some(&hash))), Ok(()));
        assert_eq!(persisted.resolve(&admin.clone(), &mut request("", Some(&hash))), Ok(()));

        let partner = Viewer { subject: "jane".into(), ..Viewer::with_role(Role::Partner, Some("acme")) };
        let fewer_scopes = Viewer { scopes: crate::auth::parse_scopes("customers:read"), ..admin.clone() };
        let other_partner = Viewer { partner: Some("globex".into()), ..partner.clone() };
        let purpose = Viewer { purpose: Some("offers".into()), ..partner.clone() };
        let another_token = Viewer { token_id: Some("t2".into()), issued_at: Some(1), ..admin.clone() };
        for (what, viewer) in [("role", &partner), ("scopes", &fewer_scopes)] {
            assert_eq!(persisted.resolve(viewer, &mut request("", Some(&hash))), Err(Refusal::NotFound), "{what}");
        }
        assert_eq!(persisted.resolve(&partner, &mut request(PROFILE, Some(&hash))), Ok(()));
        for (what, viewer) in [("partner", &other_partner), ("purpose", &purpose)] {
            assert_eq!(persisted.resolve(viewer, &mut request("", Some(&hash))), Err(Refusal::NotFound), "{what}");
        }
        // Another token of the same viewer (the next one of a session) runs it.
        assert_eq!(persisted.resolve(&another_token, &mut request("", Some(&hash))), Ok(()));
    }

    #[test]
    fn a_safelist_runs_only_its_documents_by_id_hash_or_text() {
        let manifest = format!(
            r#"{{"format":"apollo-persisted-query-manifest","version":1,"operations":[{{"id":"profile-v1","name":"Profile","type":"query","body":"{PROFILE}"}}]}}"#
        );
        let (persisted, _dir) = hub(&[("partner", &manifest)]);
        let partner = Viewer::with_role(Role::Partner, Some("acme"));

        let mut by_id = request("", Some("profile-v1"));
        assert_eq!(persisted.resolve(&partner, &mut by_id), Ok(()));
        assert_eq!(by_id.query, PROFILE);
        assert_eq!(persisted.resolve(&partner, &mut request("", Some(&sha256_hex(PROFILE)))), Ok(()));
        assert_eq!(persisted.resolve(&partner, &mut request(PROFILE, None)), Ok(()));

        let other = "{ customers(first: 100) { totalCount } }";
        assert_eq!(persisted.resolve(&partner, &mut request(other, None)), Err(Refusal::NotInList));
        // Registering a new document is free-form text too: refused under a safelist.
        assert_eq!(persisted.resolve(&partner, &mut request(other, Some(&sha256_hex(other)))), Err(Refusal::NotInList));
        // A listed id with another text is not the listed document.
        assert_eq!(persisted.resolve(&partner, &mut request(other, Some("profile-v1"))), Err(Refusal::NotInList));
        // Roles without a list run what they send.
        let analyst = Viewer::with_role(Role::Analyst, None);
        assert_eq!(persisted.resolve(&analyst, &mut request(other, None)), Ok(()));
    }

    #[test]
    fn a_safelist_that_does_not_parse_stops_the_start() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bad.json");
        std::fs::write(&path, r#"{"broken": "{ customers("}"#).expect("write");
        let config = SafelistsConfig { roles: BTreeMap::from([("partner".to_owned(), path)]), ..Default::default() };
        let error = Persisted::load(&config, true).err().expect("refused").to_string();
        assert!(error.contains("`broken` does not parse"), "{error}");
    }
}
