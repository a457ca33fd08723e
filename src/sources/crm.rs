//! CRM queries: customer profiles.

use chrono::{DateTime, NaiveDate, Utc};

use super::engine::{Arg, Database, SqlTrace, in_list, ints};

crate::row! {
    /// A CRM customer record.
    #[derive(Debug, Clone)]
    pub struct CrmCustomer {
        pub id: i64,
        pub first_name: String,
        pub last_name: String,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub birth_date: Option<NaiveDate>,
        pub gender: Option<String>,
        pub street: Option<String>,
        pub postal_code: Option<String>,
        pub city: Option<String>,
        pub country: Option<String>,
        pub created_at: DateTime<Utc>,
    }
}

/// Profiles by CRM id, one statement for the batch.
#[tracing::instrument(skip_all, fields(db.ids = ids.len()))]
pub async fn customers(db: &Database, trace: &SqlTrace, ids: &[i64]) -> Result<Vec<CrmCustomer>, sqlx::Error> {
    let sql = format!(
        "select id, first_name, last_name, email, phone, birth_date, gender, street, postal_code, city, country, created_at
         from customers where id in ({})",
        in_list(ids.len())
    );
    db.fetch_all(trace, &sql, &ints(ids)).await
}

/// Whom a partner may see: customers with an active consent for `partner`, for `purpose`
/// when given (a consent without purpose covers every purpose).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsentScope {
    pub partner: String,
    pub purpose: Option<String>,
}

impl ConsentScope {
    /// The `where` conditions for active consents of this scope, and their arguments.
    fn condition(&self, now: DateTime<Utc>) -> (&'static str, Vec<Arg>) {
        let mut args = vec![Arg::from(self.partner.clone()), Arg::from(now), Arg::from(now)];
        let sql = match &self.purpose {
            Some(purpose) => {
                args.push(Arg::from(purpose.clone()));
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
    pub struct CrmId {
        pub id: i64,
    }
}

/// Which of `ids` have an active consent in `scope`.
#[tracing::instrument(skip_all, fields(db.ids = ids.len()))]
pub async fn consenting(
    db: &Database,
    trace: &SqlTrace,
    scope: &ConsentScope,
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
#[tracing::instrument(skip_all)]
pub async fn consenting_page(
    db: &Database,
    trace: &SqlTrace,
    scope: &ConsentScope,
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
