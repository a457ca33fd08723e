//! Helpdesk queries: tickets and per-requester service aggregates.

use chrono::{DateTime, NaiveDate, Utc};

use super::contract::Kind::{Integer, Text, Timestamp};
use super::contract::Table;
use super::engine::{Database, SqlTrace, in_list, ints};
use super::{Page, newest_first};

/// The helpdesk in the one list of sources ([`super::def`]).
pub(crate) const SOURCE: super::SourceDef = super::SourceDef {
    contract: CONTRACT,
    // One name field, as in the shop; requesters have no country.
    identity: ("requesters", "id, email, phone, null as first_name, name as last_name, null as country, updated_at"),
    export: |db, trace, keys| Box::pin(export(db, trace, keys)),
    erasure,
    migrations: super::migrations!("helpdesk", 1 "0001_init.sql" "init", 2 "0002_changes.sql" "changes"),
};

/// What c360 needs of the helpdesk (see [`super::contract`]).
pub(crate) const CONTRACT: &[Table] = &[
    Table {
        name: "requesters",
        about: "people who opened tickets",
        columns: &[
            ("id", Integer),
            ("email", Text),
            ("phone", Text),
            ("name", Text),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    Table {
        name: "tickets",
        about: "tickets; `csat` is 1 to 5 or null",
        columns: &[
            ("id", Integer),
            ("requester_id", Integer),
            ("channel", Text),
            ("category", Text),
            ("priority", Text),
            ("status", Text),
            ("subject", Text),
            ("opened_at", Timestamp),
            ("closed_at", Timestamp),
            ("csat", Integer),
        ],
    },
];

crate::row! {
    /// A support ticket.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Ticket {
        pub(crate) id: i64,
        pub(crate) requester_id: i64,
        pub(crate) channel: String,
        pub(crate) category: String,
        pub(crate) priority: String,
        pub(crate) status: String,
        pub(crate) subject: String,
        pub(crate) opened_at: DateTime<Utc>,
        pub(crate) closed_at: Option<DateTime<Utc>>,
        pub(crate) csat: Option<i32>,
    }
}

crate::row! {
    /// Tickets of one requester in one status and category, with CSAT sum and count.
    #[derive(Debug, Clone)]
    pub(crate) struct TicketAggregate {
        pub(crate) requester_id: i64,
        pub(crate) status: String,
        pub(crate) category: String,
        pub(crate) tickets: i64,
        pub(crate) csat_sum: Option<i64>,
        pub(crate) csat_answers: i64,
    }
}

pub(crate) const TICKET_COLUMNS: &str =
    "id, requester_id, channel, category, priority, status, subject, opened_at, closed_at, csat";

/// The newest tickets of each requester, one statement for all requesters.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = requesters.len()))]
pub(crate) async fn tickets_page(
    db: &Database,
    trace: &SqlTrace,
    requesters: &[i64],
    page: &Page,
) -> Result<Vec<Ticket>, sqlx::Error> {
    let (sql, args) = newest_first(TICKET_COLUMNS, "tickets", "requester_id", "opened_at", requesters, page);
    db.fetch_all(trace, &sql, &args).await
}

#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn tickets(db: &Database, trace: &SqlTrace, ids: &[i64]) -> Result<Vec<Ticket>, sqlx::Error> {
    let sql = format!("select {TICKET_COLUMNS} from tickets where id in ({})", in_list(ids.len()));
    db.fetch_all(trace, &sql, &ints(ids)).await
}

/// Ticket counts and CSAT per requester, status and category.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = requesters.len()))]
pub(crate) async fn ticket_aggregates(
    db: &Database,
    trace: &SqlTrace,
    requesters: &[i64],
) -> Result<Vec<TicketAggregate>, sqlx::Error> {
    let sql = format!(
        "select requester_id, status, category, count(*) as tickets, {csat} as csat_sum, count(csat) as csat_answers
         from tickets where requester_id in ({list})
         group by requester_id, status, category",
        csat = db.engine.sum_int("csat"),
        list = in_list(requesters.len())
    );
    db.fetch_all(trace, &sql, &ints(requesters)).await
}

crate::row! {
    /// One requester's service up to a day: the satisfaction model's input.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct ServiceFigures {
        pub(crate) requester_id: i64,
        pub(crate) tickets: i64,
        pub(crate) complaints: i64,
        /// Complaints still open or pending.
        pub(crate) open_complaints: i64,
        pub(crate) csat_sum: i64,
        pub(crate) csat_answers: i64,
        /// CSAT of tickets opened on or after the "recent" day.
        pub(crate) recent_csat_sum: i64,
        pub(crate) recent_csat_answers: i64,
    }
}

/// Every requester's service figures for tickets opened up to the end of `as_of`, CSAT
/// counted as recent from the start of `recent`, handed to `each` as they stream (one
/// grouped statement).
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn service_figures(
    db: &Database,
    recent: NaiveDate,
    as_of: NaiveDate,
    requesters: Option<&[i64]>,
    each: impl FnMut(ServiceFigures) + Send,
) -> Result<(), sqlx::Error> {
    let (sql, args) = service_statement(db, recent, as_of, requesters);
    db.for_each(&sql, &args, each).await
}

/// These requesters' service figures up to now (a request's read, for customers the
/// insight snapshot has no row for), CSAT counted as recent for `recent_days`.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = keys.len()))]
pub(crate) async fn service_figures_now(
    db: &Database,
    trace: &SqlTrace,
    keys: &[i64],
    recent_days: u64,
) -> Result<Vec<ServiceFigures>, sqlx::Error> {
    let today = Utc::now().date_naive();
    let recent = today - chrono::Days::new(recent_days.saturating_sub(1));
    let (sql, args) = service_statement(db, recent, today, Some(keys));
    db.fetch_all(trace, &sql, &args).await
}

/// The grouped statement of the service figures, and its arguments.
fn service_statement(
    db: &Database,
    recent: NaiveDate,
    as_of: NaiveDate,
    requesters: Option<&[i64]>,
) -> (String, Vec<super::Arg>) {
    let sum = |expr: &str| db.engine.sum_int(expr);
    let only = requesters.map_or(String::new(), |r| format!("and requester_id in ({})", in_list(r.len())));
    let sql = format!(
        "select requester_id, count(*) as tickets,
                {complaints} as complaints, {open} as open_complaints,
                {csat} as csat_sum, count(csat) as csat_answers,
                {recent_sum} as recent_csat_sum, {recent_answers} as recent_csat_answers
         from tickets where opened_at < ? {only}
         group by requester_id",
        complaints = sum("case when category = 'complaint' then 1 else 0 end"),
        open = sum("case when category = 'complaint' and status in ('open', 'pending') then 1 else 0 end"),
        csat = sum("coalesce(csat, 0)"),
        recent_sum = sum("case when opened_at >= ? then coalesce(csat, 0) else 0 end"),
        recent_answers = sum("case when opened_at >= ? and csat is not null then 1 else 0 end"),
    );
    let recent = super::midnight(recent);
    let mut args = vec![recent.into(), recent.into(), super::end_of(as_of).into()];
    args.extend(requesters.map(ints).unwrap_or_default());
    (sql, args)
}

/// The requesters with a ticket opened or changed after `since`, each once.
pub(crate) async fn changed_requesters(db: &Database, since: DateTime<Utc>) -> Result<Vec<i64>, sqlx::Error> {
    super::changed_keys(db, "tickets", "requester_id", since).await
}

crate::row! {
    /// A ticket as change detection reads it ([`super::changes`]).
    #[derive(Debug, Clone)]
    pub(crate) struct TicketChange {
        pub(crate) id: i64,
        pub(crate) requester_id: i64,
        pub(crate) category: String,
        pub(crate) priority: String,
        pub(crate) channel: String,
        pub(crate) opened_at: DateTime<Utc>,
        pub(crate) csat: Option<i32>,
        pub(crate) updated_at: DateTime<Utc>,
    }
}

/// The columns of [`TicketChange`] but `updated_at`.
pub(crate) const TICKET_CHANGE_COLUMNS: &str = "id, requester_id, category, priority, channel, opened_at, csat";

/// Everything the helpdesk holds about these records, by table.
pub(crate) async fn export(db: &Database, trace: &SqlTrace, keys: &[i64]) -> Result<serde_json::Value, sqlx::Error> {
    let requesters: Vec<Requester> =
        super::rows_in(db, trace, "id, email, phone, name, created_at", "requesters", "id", keys).await?;
    let tickets: Vec<Ticket> = super::rows_in(db, trace, TICKET_COLUMNS, "tickets", "requester_id", keys).await?;
    Ok(serde_json::json!({ "requesters": requesters, "tickets": tickets }))
}

/// Erasure here: the requesters are deleted; tickets stay for service statistics, with their subject blanked.
fn erasure(keys: &[i64]) -> super::Erasure {
    let blank = (
        format!("update tickets set subject = ? where requester_id in ({})", in_list(keys.len())),
        [vec![super::Arg::from(super::ERASED_TEXT)], ints(keys)].concat(),
    );
    super::Erasure { anonymize: vec![blank], delete: vec![super::delete_in("requesters", "id", keys)] }
}

crate::row! {
    /// A helpdesk requester.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Requester {
        pub(crate) id: i64,
        pub(crate) email: Option<String>,
        pub(crate) phone: Option<String>,
        pub(crate) name: Option<String>,
        pub(crate) created_at: DateTime<Utc>,
    }
}
