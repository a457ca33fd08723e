//! The audit log's table in the hub store.

use chrono::{DateTime, Utc};

use super::{AuditAction, AuditEntry};
use crate::sources::{Arg, Database, SqlTrace};

/// Stores entries in one transaction, in statements of up to 500 rows (4,500 arguments,
/// within every engine's limit).
pub async fn insert(hub: &Database, entries: &[AuditEntry]) -> Result<(), sqlx::Error> {
    let statements: Vec<(String, Vec<Arg>)> = entries
        .chunks(500)
        .map(|chunk| {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "insert into audit_log (at, request_id, subject, role, partner, action, customer_id, fields, target)
                 values {rows}"
            );
            let args = chunk
                .iter()
                .flat_map(|e| {
                    [
                        Arg::Time(e.at),
                        Arg::from(e.request_id.as_str()),
                        Arg::from(e.subject.as_str()),
                        Arg::Text(e.role.to_string()),
                        Arg::from(e.partner.clone()),
                        Arg::Text(e.action.to_string()),
                        Arg::from(e.customer_id.as_str()),
                        Arg::Text(e.fields.join(",")),
                        Arg::from(e.target.clone()),
                    ]
                })
                .collect();
            (sql, args)
        })
        .collect();
    hub.transaction(&statements).await.map(|_| ())
}

crate::row! {
    /// One stored entry.
    #[derive(Debug, Clone)]
    pub struct AuditRow {
        pub id: i64,
        pub at: DateTime<Utc>,
        pub request_id: String,
        pub subject: String,
        pub role: String,
        pub partner: Option<String>,
        pub action: String,
        pub customer_id: String,
        pub fields: String,
        pub target: Option<String>,
    }
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subject: Option<String>,
    pub customer_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub action: Option<AuditAction>,
}

/// Entries matching `filter`, newest first, from below the id `before`: `limit` of them.
pub async fn page(
    hub: &Database,
    trace: &SqlTrace,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let (mut conditions, mut args) = where_clause(filter);
    if let Some(before) = before {
        conditions.push("id < ?");
        args.push(Arg::Int(before));
    }
    args.push(Arg::Int(limit));
    let sql = format!(
        "select id, at, request_id, subject, role, partner, action, customer_id, fields, target from audit_log{}
         order by id desc limit ?",
        render(&conditions)
    );
    hub.fetch_all(trace, &sql, &args).await
}

crate::row! {
    struct Count {
        n: i64,
    }
}

/// How many entries match `filter`.
pub async fn count(hub: &Database, trace: &SqlTrace, filter: &AuditFilter) -> Result<i64, sqlx::Error> {
    let (conditions, args) = where_clause(filter);
    let sql = format!("select count(*) as n from audit_log{}", render(&conditions));
    Ok(hub.fetch_all::<Count>(trace, &sql, &args).await?.first().map_or(0, |c| c.n))
}

fn where_clause(filter: &AuditFilter) -> (Vec<&'static str>, Vec<Arg>) {
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(subject) = &filter.subject {
        conditions.push("subject = ?");
        args.push(Arg::from(subject.as_str()));
    }
    if let Some(customer) = &filter.customer_id {
        conditions.push("customer_id = ?");
        args.push(Arg::from(customer.as_str()));
    }
    if let Some(since) = filter.since {
        conditions.push("at >= ?");
        args.push(Arg::Time(since));
    }
    if let Some(action) = filter.action {
        conditions.push("action = ?");
        args.push(Arg::Text(action.to_string()));
    }
    (conditions, args)
}

fn render(conditions: &[&str]) -> String {
    if conditions.is_empty() { String::new() } else { format!(" where {}", conditions.join(" and ")) }
}
