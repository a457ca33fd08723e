//! Marketing queries: campaigns and the sends (with responses) of each contact.

use chrono::{DateTime, Utc};

use super::contract::Kind::{Boolean, Integer, Text, Timestamp};
use super::contract::Table;
use super::engine::{Database, SqlTrace, in_list, ints};
use super::{Page, newest_first};

/// The marketing in the one list of sources ([`super::def`]).
pub(crate) const SOURCE: super::SourceDef = super::SourceDef {
    contract: CONTRACT,
    // Contacts are known by email alone.
    identity: (
        "contacts",
        "id, email, null as phone, null as first_name, null as last_name, null as country, updated_at",
    ),
    export: |db, trace, keys| Box::pin(export(db, trace, keys)),
    erasure,
    migrations: super::migrations!("marketing", 1 "0001_init.sql" "init"),
};

/// What c360 needs of marketing (see [`super::contract`]).
pub(crate) const CONTRACT: &[Table] = &[
    Table {
        name: "contacts",
        about: "marketing contacts",
        columns: &[
            ("id", Integer),
            ("email", Text),
            ("first_name", Text),
            ("subscribed", Boolean),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    Table {
        name: "campaigns",
        about: "campaigns",
        columns: &[
            ("id", Integer),
            ("name", Text),
            ("channel", Text),
            ("offer_type", Text),
            ("starts_at", Timestamp),
            ("ends_at", Timestamp),
        ],
    },
    Table {
        name: "sends",
        about: "one campaign sent to one contact, and the response",
        columns: &[
            ("id", Integer),
            ("campaign_id", Integer),
            ("contact_id", Integer),
            ("sent_at", Timestamp),
            ("delivered_at", Timestamp),
            ("opened_at", Timestamp),
            ("clicked_at", Timestamp),
            ("converted_at", Timestamp),
            ("unsubscribed_at", Timestamp),
            ("coupon_code", Text),
        ],
    },
];

crate::row! {
    /// A marketing campaign.
    #[derive(Debug, Clone)]
    pub(crate) struct Campaign {
        pub(crate) id: i64,
        pub(crate) name: String,
        pub(crate) channel: String,
        pub(crate) offer_type: String,
        pub(crate) starts_at: DateTime<Utc>,
        pub(crate) ends_at: DateTime<Utc>,
    }
}

crate::row! {
    /// One campaign sent to one contact, and what the contact did with it.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Send {
        pub(crate) id: i64,
        pub(crate) campaign_id: i64,
        pub(crate) contact_id: i64,
        pub(crate) sent_at: DateTime<Utc>,
        pub(crate) delivered_at: Option<DateTime<Utc>>,
        pub(crate) opened_at: Option<DateTime<Utc>>,
        pub(crate) clicked_at: Option<DateTime<Utc>>,
        pub(crate) converted_at: Option<DateTime<Utc>>,
        pub(crate) unsubscribed_at: Option<DateTime<Utc>>,
        pub(crate) coupon_code: Option<String>,
    }
}

crate::row! {
    /// How many sends one contact received.
    #[derive(Debug, Clone)]
    pub(crate) struct SendCount {
        pub(crate) contact_id: i64,
        pub(crate) sends: i64,
    }
}

pub(crate) const SEND_COLUMNS: &str = "id, campaign_id, contact_id, sent_at, delivered_at, opened_at, clicked_at, converted_at, unsubscribed_at, coupon_code";

/// The newest sends of each contact, one statement for all contacts.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = contacts.len()))]
pub(crate) async fn sends_page(
    db: &Database,
    trace: &SqlTrace,
    contacts: &[i64],
    page: &Page,
) -> Result<Vec<Send>, sqlx::Error> {
    let (sql, args) = newest_first(SEND_COLUMNS, "sends", "contact_id", "sent_at", contacts, page);
    db.fetch_all(trace, &sql, &args).await
}

#[tracing::instrument(level = "debug", skip_all, fields(db.ids = contacts.len()))]
pub(crate) async fn send_counts(
    db: &Database,
    trace: &SqlTrace,
    contacts: &[i64],
) -> Result<Vec<SendCount>, sqlx::Error> {
    let sql = format!(
        "select contact_id, count(*) as sends from sends where contact_id in ({}) group by contact_id",
        in_list(contacts.len())
    );
    db.fetch_all(trace, &sql, &ints(contacts)).await
}

#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn campaigns(db: &Database, trace: &SqlTrace, ids: &[i64]) -> Result<Vec<Campaign>, sqlx::Error> {
    let sql = format!(
        "select id, name, channel, offer_type, starts_at, ends_at from campaigns where id in ({})",
        in_list(ids.len())
    );
    db.fetch_all(trace, &sql, &ints(ids)).await
}

/// Everything the marketing holds about these records, by table.
pub(crate) async fn export(db: &Database, trace: &SqlTrace, keys: &[i64]) -> Result<serde_json::Value, sqlx::Error> {
    let contacts: Vec<Contact> =
        super::rows_in(db, trace, "id, email, first_name, subscribed, created_at", "contacts", "id", keys).await?;
    let sends: Vec<Send> = super::rows_in(db, trace, SEND_COLUMNS, "sends", "contact_id", keys).await?;
    Ok(serde_json::json!({ "contacts": contacts, "sends": sends }))
}

/// Erasure here: the contacts and their sends are deleted.
fn erasure(keys: &[i64]) -> super::Erasure {
    super::Erasure {
        anonymize: vec![],
        delete: vec![super::delete_in("sends", "contact_id", keys), super::delete_in("contacts", "id", keys)],
    }
}

crate::row! {
    /// A marketing contact.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Contact {
        pub(crate) id: i64,
        pub(crate) email: String,
        pub(crate) first_name: Option<String>,
        pub(crate) subscribed: bool,
        pub(crate) created_at: DateTime<Utc>,
    }
}
