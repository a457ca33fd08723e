//! The audit log's table in the hub store.

use chrono::{DateTime, Utc};

use super::{AuditAction, AuditEntry};
use crate::sources::engine::insert_rows;
use crate::sources::{Arg, Database, Engine, SqlTrace};

/// On PostgreSQL, both tables' rows in one statement of one text whatever their number:
/// each table's rows as a JSON array (`json_to_recordset`). One round trip per commit
/// instead of a transaction's four and more, on the path every revealing response waits
/// on (BENCHMARKS.md, the durable audit).
const PG_INSERT: &str = "with log as (
    insert into audit_log (at, request_id, subject, role, partner, action, customer_id, fields, target)
    select at, request_id, subject, role, partner, action, customer_id, fields, target
    from json_to_recordset(?::json) as x(at timestamptz, request_id text, subject text, role text, partner text,
                                         action text, customer_id text, fields text, target text)
)
insert into audit_reads (request_id, customer_id, fields)
select request_id, customer_id, fields
from json_to_recordset(?::json) as r(request_id text, customer_id text, fields text)";

/// Stores entries in one transaction: one row in `audit_log` per entry, and one in
/// `audit_reads` per customer a read names.
pub(crate) async fn insert(hub: &Database, entries: &[AuditEntry]) -> Result<(), sqlx::Error> {
    if hub.engine == Engine::Postgres {
        let log: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "request_id": e.request_id, "subject": e.subject, "role": e.role.to_string(),
                    "partner": e.partner, "action": e.action.to_string(), "customer_id": e.customer_id,
                    "fields": e.fields.join(","), "target": e.target,
                })
            })
            .collect();
        let reads: Vec<serde_json::Value> = entries
            .iter()
            .flat_map(|e| e.seen.iter().map(move |s| (e, s)))
            .map(|(e, s)| serde_json::json!({ "request_id": e.request_id, "customer_id": s.customer_id, "fields": s.fields }))
            .collect();
        let args = [
            Arg::Text(serde_json::Value::from(log).to_string()),
            Arg::Text(serde_json::Value::from(reads).to_string()),
        ];
        return hub.execute(&SqlTrace::default(), PG_INSERT, &args).await.map(|_| ());
    }
    const LOG: [&str; 9] =
        ["at", "request_id", "subject", "role", "partner", "action", "customer_id", "fields", "target"];
    let log = entries
        .iter()
        .map(|e| {
            vec![
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
    let reads = entries
        .iter()
        .flat_map(|e| e.seen.iter().map(|s| (e.request_id.as_str(), s)))
        .map(|(request, s)| vec![Arg::from(request), Arg::from(s.customer_id.as_str()), Arg::from(s.fields.clone())])
        .collect();
    let mut statements = insert_rows(hub, "audit_log", &LOG, log);
    statements.extend(insert_rows(hub, "audit_reads", &["request_id", "customer_id", "fields"], reads));
    hub.transaction(&statements).await.map(|_| ())
}

crate::row! {
    /// One stored entry.
    #[derive(Debug, Clone)]
    pub(crate) struct AuditRow {
        pub(crate) id: i64,
        pub(crate) at: DateTime<Utc>,
        pub(crate) request_id: String,
        pub(crate) subject: String,
        pub(crate) role: String,
        pub(crate) partner: Option<String>,
        pub(crate) action: String,
        pub(crate) customer_id: String,
        pub(crate) fields: String,
        pub(crate) target: Option<String>,
    }
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditFilter {
    pub(crate) subject: Option<String>,
    pub(crate) customer_id: Option<String>,
    pub(crate) since: Option<DateTime<Utc>>,
    pub(crate) action: Option<AuditAction>,
}

/// Where a page of the log starts: below the entry of `id` (and, within a response that
/// revealed several customers, below `customer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) id: i64,
    pub(crate) customer: Option<String>,
}

crate::row! {
    /// One customer of a read.
    struct SeenRow {
        request_id: String,
        customer_id: String,
        fields: Option<String>,
    }
}

/// The columns of an entry, from `audit_log a` (a read's customer and fields from
/// `audit_reads r` where the query joins it).
const COLUMNS: &str = "a.id, a.at, a.request_id, a.subject, a.role, a.partner, a.action";

/// A read stored as one row per response (its customers in `audit_reads`).
const READ_HEAD: &str = "a.action = 'read' and a.customer_id = ''";

/// Entries matching `filter`, newest first (by id, then customer within a response),
/// from below `before`: `limit` of them.
pub(crate) async fn page(
    hub: &Database,
    trace: &SqlTrace,
    filter: &AuditFilter,
    before: Option<&Position>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    // Synced: a reader expects the entries of what was just done, through any replica.
    let hub = &hub.synced();
    let below = |conditions: &mut Vec<&'static str>, args: &mut Vec<Arg>, strict: bool| {
        if let Some(before) = before {
            conditions.push(if strict || before.customer.is_none() { "a.id < ?" } else { "a.id <= ?" });
            args.push(Arg::Int(before.id));
        }
    };
    if let Some(customer) = &filter.customer_id {
        // One customer: each entry names them once, so the id orders the page. Their own
        // rows, and the reads that name them.
        let (mut conditions, mut args) = where_clause(&AuditFilter { customer_id: None, ..filter.clone() });
        below(&mut conditions, &mut args, true);
        let own = [&["a.customer_id = ?"][..], &conditions].concat();
        let read = [&["r.customer_id = ?", READ_HEAD][..], &conditions].concat();
        let mut all = vec![Arg::from(customer.as_str())];
        all.extend(args.iter().cloned());
        all.push(Arg::from(customer.as_str()));
        all.extend(args);
        all.push(Arg::Int(limit));
        let sql = format!(
            "select * from (
               select {COLUMNS}, a.customer_id, a.fields, a.target from audit_log a{}
               union all
               select {COLUMNS}, r.customer_id, coalesce(r.fields, a.fields) as fields, a.target
               from audit_reads r join audit_log a on a.request_id = r.request_id{}
             ) e order by id desc limit ?",
            render(&own),
            render(&read),
        );
        return hub.fetch_all(trace, &sql, &all).await;
    }
    // Every customer: the responses first (by the index on id), then their customers.
    // Each response is at least one entry; the one the page starts in may have none left.
    let (mut conditions, mut args) = where_clause(filter);
    below(&mut conditions, &mut args, false);
    args.push(Arg::Int(limit + 1));
    let sql = format!(
        "select {COLUMNS}, a.customer_id, a.fields, a.target from audit_log a{} order by a.id desc limit ?",
        render(&conditions)
    );
    let heads: Vec<AuditRow> = hub.fetch_all(trace, &sql, &args).await?;
    let reads: Vec<Arg> = heads
        .iter()
        .filter(|h| h.action == "read" && h.customer_id.is_empty())
        .map(|h| Arg::from(h.request_id.as_str()))
        .collect();
    let mut seen: Vec<SeenRow> = Vec::new();
    for chunk in reads.chunks(500) {
        let sql = format!(
            "select request_id, customer_id, fields from audit_reads where request_id in ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        seen.extend(hub.fetch_all::<SeenRow>(trace, &sql, chunk).await?);
    }
    seen.sort_by(|a, b| (&a.request_id, &b.customer_id).cmp(&(&b.request_id, &a.customer_id)));
    let mut rows = Vec::new();
    for head in heads {
        if !(head.action == "read" && head.customer_id.is_empty()) {
            rows.push(head);
            continue;
        }
        let first = seen.partition_point(|s| s.request_id < head.request_id);
        let customers = seen[first..].iter().take_while(|s| s.request_id == head.request_id);
        for s in customers {
            let fields = s.fields.clone().unwrap_or_else(|| head.fields.clone());
            rows.push(AuditRow { customer_id: s.customer_id.clone(), fields, ..head.clone() });
        }
    }
    let after = |r: &AuditRow| match before {
        None => true,
        Some(b) => r.id < b.id || b.customer.as_deref().is_some_and(|c| r.customer_id.as_str() < c),
    };
    rows.retain(after);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(rows)
}

crate::row! {
    struct Count {
        n: i64,
    }
}

/// How many entries match `filter`.
pub(crate) async fn count(hub: &Database, trace: &SqlTrace, filter: &AuditFilter) -> Result<i64, sqlx::Error> {
    let hub = &hub.synced();
    let customer = filter.customer_id.as_deref();
    let (conditions, args) = where_clause(&AuditFilter { customer_id: None, ..filter.clone() });
    let (sql, args) = match customer {
        Some(customer) => {
            let own = [&["a.customer_id = ?"][..], &conditions].concat();
            let read = [&["r.customer_id = ?", READ_HEAD][..], &conditions].concat();
            let mut all = vec![Arg::from(customer)];
            all.extend(args.iter().cloned());
            all.push(Arg::from(customer));
            all.extend(args);
            let sql = format!(
                "select (select count(*) from audit_log a{}) + (select count(*) from audit_reads r
                 join audit_log a on a.request_id = r.request_id{}) as n",
                render(&own),
                render(&read)
            );
            (sql, all)
        }
        None => {
            // A read counts once per customer it names.
            let sql = format!(
                "select count(*) as n from audit_log a left join audit_reads r
                 on {READ_HEAD} and r.request_id = a.request_id{}",
                render(&conditions)
            );
            (sql, args)
        }
    };
    Ok(hub.fetch_all::<Count>(trace, &sql, &args).await?.first().map_or(0, |c| c.n))
}

/// The customer's trail, oldest first: the entries that name them, as `select`s columns
/// of `audit_log` (`a`) and the customer's fields.
pub(crate) fn trail_sql(select: &str) -> String {
    format!(
        "select * from (
           select a.id, {select}, a.fields from audit_log a where a.customer_id = ?
           union all
           select a.id, {select}, coalesce(r.fields, a.fields) as fields from audit_reads r
           join audit_log a on a.request_id = r.request_id where r.customer_id = ? and {READ_HEAD}
         ) e order by id"
    )
}

fn where_clause(filter: &AuditFilter) -> (Vec<&'static str>, Vec<Arg>) {
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(subject) = &filter.subject {
        conditions.push("a.subject = ?");
        args.push(Arg::from(subject.as_str()));
    }
    if let Some(customer) = &filter.customer_id {
        conditions.push("a.customer_id = ?");
        args.push(Arg::from(customer.as_str()));
    }
    if let Some(since) = filter.since {
        conditions.push("a.at >= ?");
        args.push(Arg::Time(since));
    }
    if let Some(action) = filter.action {
        conditions.push("a.action = ?");
        args.push(Arg::Text(action.to_string()));
    }
    (conditions, args)
}

fn render(conditions: &[&str]) -> String {
    if conditions.is_empty() { String::new() } else { format!(" where {}", conditions.join(" and ")) }
}
