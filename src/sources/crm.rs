//! CRM queries: customer profiles.

use chrono::{DateTime, NaiveDate, Utc};

use super::engine::{Database, SqlTrace, in_list, ints};

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
