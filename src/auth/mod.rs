//! Who is asking: the [`Viewer`] every request carries in its GraphQL context.
//!
//! Until token verification lands, the hub runs in development mode and every request is
//! the development viewer; the server says so loudly at start.

use serde::Serialize;

/// The role a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum Role {
    Admin,
    Agent,
    Frontend,
    Analyst,
    Partner,
}

/// The caller of one request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Token subject (user or client id).
    pub subject: String,
    pub role: Role,
    /// Granted scopes, e.g. `customers:read`.
    pub scopes: Vec<String>,
    /// For partners: which partner firm; scopes rows to consenting customers.
    pub partner: Option<String>,
}

impl Viewer {
    /// The unauthenticated development viewer (open development mode only).
    pub fn development() -> Self {
        Viewer { subject: "development".into(), role: Role::Admin, scopes: vec!["*".into()], partner: None }
    }
}
