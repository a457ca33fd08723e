//! The names of the databases the hub talks to: a leaf that configuration, errors and the
//! source layer all use, so that none of them needs the others for it.

use async_graphql::Enum;
use serde::{Deserialize, Serialize};

/// A source system: one of the company's databases the hub reads from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Enum,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum SourceName {
    /// The CRM: profiles, consents, notes.
    Crm,
    /// The shop: accounts, orders, order lines.
    Shop,
    /// The helpdesk: requesters and tickets.
    Helpdesk,
    /// Marketing: contacts, campaigns, sends and responses.
    Marketing,
}

impl SourceName {
    /// In resolution order: the CRM first, as the master of profiles.
    pub const ALL: [SourceName; 4] = [SourceName::Crm, SourceName::Shop, SourceName::Helpdesk, SourceName::Marketing];

    /// The database that holds this source.
    pub(crate) fn db(self) -> DbName {
        match self {
            SourceName::Crm => DbName::Crm,
            SourceName::Shop => DbName::Shop,
            SourceName::Helpdesk => DbName::Helpdesk,
            SourceName::Marketing => DbName::Marketing,
        }
    }
}

/// Every database the hub talks to: the four sources and its own store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::Display, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum DbName {
    Crm = 0,
    Shop = 1,
    Helpdesk = 2,
    Marketing = 3,
    Hub = 4,
}

impl DbName {
    /// The source this database holds; `None` for the hub's own store.
    pub fn source(self) -> Option<SourceName> {
        SourceName::ALL.into_iter().find(|s| s.db() == self)
    }

    pub const COUNT: usize = 5;
    pub const ALL: [DbName; 5] = [DbName::Crm, DbName::Shop, DbName::Helpdesk, DbName::Marketing, DbName::Hub];
}
