//! CRM queries: customer profiles, the consent ledger and notes.

use chrono::{DateTime, NaiveDate, Utc};

use super::contract::Kind::{Date, Integer, Text, Timestamp};
use super::contract::Table;
use super::engine::{Arg, Database, SqlTrace, in_list, ints};
use super::{Page, newest_first};

/// The crm in the one list of sources ([`super::def`]).
pub(crate) const SOURCE: super::SourceDef = super::SourceDef {
    contract: CONTRACT,
    identity: ("customers", "id, email, phone, first_name, last_name, country, updated_at"),
    export: |db, trace, keys| Box::pin(export(db, trace, keys)),
    erasure,
    migrations: super::migrations!("crm", 1 "0001_init.sql" "init"),
};

/// What c360 needs of the CRM (see [`super::contract`]).
pub(crate) const CONTRACT: &[Table] = &[
    Table {
        name: "customers",
        about: "customer profiles; `id` is the CRM's customer number",
        columns: &[
            ("id", Integer),
            ("first_name", Text),
            ("last_name", Text),
            ("email", Text),
            ("phone", Text),
            ("birth_date", Date),
            ("gender", Text),
            ("street", Text),
            ("postal_code", Text),
            ("city", Text),
            ("country", Text),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    Table {
        name: "consents",
        about: "the consent ledger: one row per grant, `revoked_at` set on revocation (written by grantConsent, revokeConsent)",
        columns: &[
            ("id", Integer),
            ("customer_id", Integer),
            ("partner_id", Text),
            ("purpose", Text),
            ("granted_at", Timestamp),
            ("revoked_at", Timestamp),
        ],
    },
    Table {
        name: "notes",
        about: "notes by staff (written by addNote)",
        columns: &[
            ("id", Integer),
            ("customer_id", Integer),
            ("author", Text),
            ("body", Text),
            ("created_at", Timestamp),
        ],
    },
];

crate::row! {
    /// A CRM customer record.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct CrmCustomer {
        pub(crate) id: i64,
        pub(crate) first_name: String,
        pub(crate) last_name: String,
        pub(crate) email: Option<String>,
        pub(crate) phone: Option<String>,
        pub(crate) birth_date: Option<NaiveDate>,
        pub(crate) gender: Option<String>,
        pub(crate) street: Option<String>,
        pub(crate) postal_code: Option<String>,
        pub(crate) city: Option<String>,
        pub(crate) country: Option<String>,
        pub(crate) created_at: DateTime<Utc>,
    }
}

/// Profiles by CRM id, one statement for the batch.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn customers(db: &Database, trace: &SqlTrace, ids: &[i64]) -> Result<Vec<CrmCustomer>, sqlx::Error> {
    let sql = format!(
        "select id, first_name, last_name, email, phone, birth_date, gender, street, postal_code, city, country, created_at
         from customers where id in ({})",
        in_list(ids.len())
    );
    db.fetch_all(trace, &sql, &ints(ids)).await
}

/// Active consents for `partner`, for `purpose` when given (a consent without purpose
/// covers every purpose): whom a partner may see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Consenting<'a> {
    pub(crate) partner: &'a str,
    pub(crate) purpose: Option<&'a str>,
}

impl Consenting<'_> {
    /// The `where` conditions for active consents of this scope, and their arguments.
    fn condition(&self, now: DateTime<Utc>) -> (&'static str, Vec<Arg>) {
        let mut args = vec![Arg::from(self.partner), Arg::from(now), Arg::from(now)];
        let sql = match self.purpose {
            Some(purpose) => {
                args.push(Arg::from(purpose));
                "partner_id = ? and granted_at <= ? and (revoked_at is null or revoked_at > ?)
                 and (purpose = ? or purpose is null)"
            }
            None => "partner_id = ? and granted_at <= ? and (revoked_at is null or revoked_at > ?)",
        };
        (sql, args)
    }
}

crate::row! {
    /// A CRM id.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct CrmId {
        pub(crate) id: i64,
    }
}

/// Which of `ids` have an active consent in `scope`.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn consenting(
    db: &Database,
    trace: &SqlTrace,
    scope: Consenting<'_>,
    now: DateTime<Utc>,
    ids: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    let (condition, mut args) = scope.condition(now);
    let sql = format!(
        "select distinct customer_id as id from consents where {condition} and customer_id in ({})",
        in_list(ids.len())
    );
    args.extend(ints(ids));
    Ok(db.fetch_all::<CrmId>(trace, &sql, &args).await?.into_iter().map(|r| r.id).collect())
}

/// CRM ids with an active consent in `scope`, ascending, after `after`, at most `limit`
/// (every one when `limit` is `None`).
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn consenting_page(
    db: &Database,
    trace: &SqlTrace,
    scope: Consenting<'_>,
    now: DateTime<Utc>,
    after: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<i64>, sqlx::Error> {
    let (condition, mut args) = scope.condition(now);
    args.push(Arg::from(after.unwrap_or(i64::MIN)));
    let mut sql = format!(
        "select distinct customer_id as id from consents where {condition} and customer_id > ? order by customer_id"
    );
    if let Some(limit) = limit {
        sql.push_str(" limit ?");
        args.push(Arg::from(limit));
    }
    Ok(db.fetch_all::<CrmId>(trace, &sql, &args).await?.into_iter().map(|r| r.id).collect())
}

crate::row! {
    /// A free-text note about a customer by sales or service staff.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Note {
        pub(crate) id: i64,
        pub(crate) customer_id: i64,
        pub(crate) author: String,
        pub(crate) body: String,
        pub(crate) created_at: DateTime<Utc>,
    }
}

crate::row! {
    /// One entry of the consent ledger: a grant, and its revocation once revoked.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Consent {
        pub(crate) id: i64,
        pub(crate) customer_id: i64,
        pub(crate) partner_id: String,
        pub(crate) purpose: Option<String>,
        pub(crate) granted_at: DateTime<Utc>,
        pub(crate) revoked_at: Option<DateTime<Utc>>,
    }
}

pub(crate) const NOTE_COLUMNS: &str = "id, customer_id, author, body, created_at";
const CONSENT_COLUMNS: &str = "id, customer_id, partner_id, purpose, granted_at, revoked_at";

/// The newest notes of each CRM record, one statement for all.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn notes_page(
    db: &Database,
    trace: &SqlTrace,
    ids: &[i64],
    page: &Page,
) -> Result<Vec<Note>, sqlx::Error> {
    let (sql, args) = newest_first(NOTE_COLUMNS, "notes", "customer_id", "created_at", ids, page);
    db.fetch_all(trace, &sql, &args).await
}

/// Adds a note and returns it.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn add_note(
    db: &Database,
    trace: &SqlTrace,
    customer_id: i64,
    author: &str,
    body: &str,
    at: DateTime<Utc>,
) -> Result<Option<Note>, sqlx::Error> {
    let args = [Arg::Int(customer_id), Arg::from(author), Arg::from(body), Arg::Time(at)];
    db.execute(trace, "insert into notes (customer_id, author, body, created_at) values (?, ?, ?, ?)", &args).await?;
    // The newest note with this text by this author on this record is the one just added
    // (or its twin, added at the same time). Not by time: MySQL keeps whole seconds.
    let sql = format!(
        "select {NOTE_COLUMNS} from notes where customer_id = ? and author = ? and body = ? order by id desc limit 1"
    );
    Ok(db.fetch_all(trace, &sql, &args[..3]).await?.into_iter().next())
}

/// The whole consent ledger of these CRM records, oldest grant first.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn consents(db: &Database, trace: &SqlTrace, ids: &[i64]) -> Result<Vec<Consent>, sqlx::Error> {
    let sql = format!(
        "select {CONSENT_COLUMNS} from consents where customer_id in ({}) order by granted_at, id",
        in_list(ids.len())
    );
    db.fetch_all(trace, &sql, &ints(ids)).await
}

/// The partners named in the consent ledger, in order.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn partners(db: &Database, trace: &SqlTrace) -> Result<Vec<String>, sqlx::Error> {
    crate::row! {
        struct Partner {
            partner_id: String,
        }
    }
    let rows: Vec<Partner> =
        db.fetch_all(trace, "select distinct partner_id from consents order by partner_id", &[]).await?;
    Ok(rows.into_iter().map(|r| r.partner_id).collect())
}

/// Records a grant.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn grant_consent(
    db: &Database,
    trace: &SqlTrace,
    customer_id: i64,
    scope: Consenting<'_>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "insert into consents (customer_id, partner_id, purpose, granted_at) values (?, ?, ?, ?)";
    let args =
        [Arg::Int(customer_id), Arg::from(scope.partner), Arg::from(scope.purpose.map(str::to_owned)), Arg::Time(at)];
    db.execute(trace, sql, &args).await.map(|_| ())
}

/// Revokes every active grant of these CRM records for the partner (for one purpose, or
/// for all when `purpose` is `None`). Returns how many grants it revoked.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn revoke_consent(
    db: &Database,
    trace: &SqlTrace,
    ids: &[i64],
    partner: &str,
    purpose: Option<&str>,
    at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut args = vec![Arg::Time(at), Arg::from(partner)];
    let purpose_filter = match purpose {
        Some(p) => {
            args.push(Arg::from(p));
            " and purpose = ?"
        }
        None => "",
    };
    args.extend(ints(ids));
    let sql = format!(
        "update consents set revoked_at = ? where partner_id = ?{purpose_filter} and revoked_at is null
         and customer_id in ({})",
        in_list(ids.len())
    );
    db.execute(trace, &sql, &args).await
}

crate::row! {
    /// How many notes one CRM record has.
    #[derive(Debug, Clone)]
    pub(crate) struct NoteCount {
        pub(crate) customer_id: i64,
        pub(crate) n: i64,
    }
}

/// Note counts per CRM record.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn note_counts(db: &Database, trace: &SqlTrace, ids: &[i64]) -> Result<Vec<NoteCount>, sqlx::Error> {
    let sql = format!(
        "select customer_id, count(*) as n from notes where customer_id in ({}) group by customer_id",
        in_list(ids.len())
    );
    db.fetch_all(trace, &sql, &ints(ids)).await
}

/// Everything the crm holds about these records, by table.
pub(crate) async fn export(db: &Database, trace: &SqlTrace, keys: &[i64]) -> Result<serde_json::Value, sqlx::Error> {
    let notes: Vec<Note> = super::rows_in(db, trace, NOTE_COLUMNS, "notes", "customer_id", keys).await?;
    let (customers, consents) = if keys.is_empty() {
        (vec![], vec![])
    } else {
        (customers(db, trace, keys).await?, consents(db, trace, keys).await?)
    };
    Ok(serde_json::json!({ "customers": customers, "consents": consents, "notes": notes }))
}

/// Erasure here: the profiles, their consents and notes are deleted.
fn erasure(keys: &[i64]) -> super::Erasure {
    super::Erasure {
        anonymize: vec![],
        delete: vec![
            super::delete_in("notes", "customer_id", keys),
            super::delete_in("consents", "customer_id", keys),
            super::delete_in("customers", "id", keys),
        ],
    }
}
