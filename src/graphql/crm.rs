//! The CRM's consent ledger and notes as GraphQL types (`crm_writes` writes them).

use async_graphql::{ComplexObject, SimpleObject};
use c360_macros::classified;
use chrono::{DateTime, Utc};

use super::common::connection;
use crate::sources::crm;

/// One grant in the consent ledger: the customer agreed to share their data with a partner.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Consent {
    /// The partner firm (as in partner tokens' `partner_id`).
    pub(crate) partner: String,
    /// What the data may be used for; null: any purpose.
    pub(crate) purpose: Option<String>,
    #[graphql(skip)]
    pub(crate) granted_at: DateTime<Utc>,
    #[graphql(skip)]
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    /// Granted and not revoked.
    pub(crate) active: bool,
}

#[classified]
#[ComplexObject]
impl Consent {
    /// When the customer agreed.
    #[class(timing, mask = month)]
    async fn granted_at(&self) -> DateTime<Utc> {
        self.granted_at
    }

    /// When the grant was withdrawn; null while it stands.
    #[class(timing, mask = month)]
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.revoked_at
    }
}

impl From<&crm::Consent> for Consent {
    fn from(c: &crm::Consent) -> Self {
        let now = Utc::now();
        Consent {
            partner: c.partner_id.clone(),
            purpose: c.purpose.clone(),
            granted_at: c.granted_at,
            revoked_at: c.revoked_at,
            active: c.granted_at <= now && c.revoked_at.is_none_or(|r| r > now),
        }
    }
}

/// A note about the customer by sales or service staff.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Note {
    /// Who wrote it (the token subject).
    pub(crate) author: String,
    /// What the note says.
    pub(crate) body: String,
    /// When it was written.
    pub(crate) created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub(crate) id: i64,
}

impl From<&crm::Note> for Note {
    fn from(n: &crm::Note) -> Self {
        Note { author: n.author.clone(), body: n.body.clone(), created_at: n.created_at, id: n.id }
    }
}

connection!(NoteConnection, NoteEdge, Note, "note");
