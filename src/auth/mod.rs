//! Who is asking: bearer tokens (JWT) turned into the [`Viewer`] every request carries in
//! its GraphQL context.
//!
//! `keys` holds the verification keys (files, re-read on change); `token` verifies and
//! mints tokens. What a viewer may see is decided by `crate::policy`, not here.

pub mod keys;
pub mod token;

use std::collections::BTreeSet;

use serde::Serialize;

pub(crate) use token::{AuthError, Verifier};

/// The role a token grants.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    strum::Display,
    strum::EnumString,
    strum::EnumIter,
    strum::IntoStaticStr,
    serde::Deserialize,
)]
#[strum(serialize_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Operators of the hub: everything, including the audit log and subject rights.
    Admin,
    /// Service and sales staff working with one customer at a time.
    Agent,
    /// Customer-facing applications (web shop, app) acting for the customer.
    Frontend,
    /// Analysts: aggregates and insights, no direct identifiers.
    Analyst,
    /// Partner firms: only customers who consented to share with them.
    Partner,
}

/// Every scope the hub knows, with what it grants.
pub(crate) const SCOPES: &[(&str, &str)] = &[
    ("customers:read", "find and read customers at all"),
    ("orders:read", "financial data: purchases and orders"),
    ("tickets:read", "service data: helpdesk tickets and satisfaction"),
    ("campaigns:read", "marketing data: campaign sends and responses"),
    ("insights:read", "derived insights (segments, scores)"),
    ("pii:read", "unmasked contact and sensitive data where the role allows it"),
    ("notes:write", "add notes to customers"),
    ("consent:write", "grant and revoke consents"),
];

impl Role {
    /// The scopes `c360 token` grants a role when none are given.
    pub fn default_scopes(self) -> &'static str {
        match self {
            Role::Admin => {
                "customers:read orders:read tickets:read campaigns:read insights:read pii:read notes:write consent:write"
            }
            Role::Agent => "customers:read orders:read tickets:read campaigns:read pii:read notes:write consent:write",
            Role::Frontend => "customers:read orders:read tickets:read",
            Role::Analyst => "customers:read orders:read tickets:read campaigns:read insights:read",
            Role::Partner => "customers:read",
        }
    }
}

/// The caller of one request, as its token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// Token subject (user or client id).
    pub(crate) subject: String,
    pub(crate) role: Role,
    /// Granted scopes, e.g. `customers:read`.
    pub scopes: BTreeSet<String>,
    /// For partners: which partner firm; scopes rows to consenting customers.
    pub(crate) partner: Option<String>,
    /// For partners: the purpose the token is limited to; only consents for this purpose
    /// (or for any purpose) count.
    pub(crate) purpose: Option<String>,
    /// The token's id (`jti`), by which it can be revoked alone.
    pub(crate) token_id: Option<String>,
    /// When the token was issued (`iat`, seconds since the epoch).
    pub(crate) issued_at: Option<u64>,
}

impl Viewer {
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// A viewer with the role's default scopes (tests and tools).
    pub fn with_role(role: Role, partner: Option<&str>) -> Self {
        Viewer {
            subject: format!("{role}-tool"),
            role,
            scopes: parse_scopes(role.default_scopes()),
            partner: partner.map(str::to_owned),
            purpose: None,
            token_id: None,
            issued_at: None,
        }
    }
}

/// The longest token subject, in characters (the audit log's column holds it).
pub(crate) const MAX_SUBJECT: usize = 200;

/// The longest token id (`jti`), in characters (a revocation holds it).
pub(crate) const MAX_TOKEN_ID: usize = 320;

/// Whether `value` is a partner id or purpose: 1 to 64 characters of `a-z`, `0-9`, `-`,
/// `_` and `.` (`acme-insurance`, `offers`). Tokens and consents hold them alike.
pub(crate) fn is_name(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// Whether `value` is an identifier as sent: 1 to `max` characters, no control characters,
/// and no space at either end (it is compared, and revoked, exactly as it stands).
pub(crate) fn is_identifier(value: &str, max: usize) -> bool {
    !value.is_empty() && value.chars().count() <= max && value.trim() == value && !value.chars().any(char::is_control)
}

/// Space-separated scopes, as in the `scope` claim.
pub(crate) fn parse_scopes(scope: &str) -> BTreeSet<String> {
    scope.split_whitespace().map(str::to_owned).collect()
}
