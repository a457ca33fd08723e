//! The hub store's identity tables: golden customers and the links from source records.

use chrono::{DateTime, Utc};

use crate::sources::engine::in_list;
use crate::sources::{Arg, Database, SourceName, SqlTrace};

crate::row! {
    /// A source record linked to a golden customer.
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct Link {
        pub customer_id: String,
        pub source: String,
        pub source_key: String,
        pub rule: String,
        pub linked_at: DateTime<Utc>,
    }
}

const LINK_COLUMNS: &str = "l.customer_id, l.source, l.source_key, l.rule, l.linked_at";

/// One page of customers in id order, returned as their links (one statement: the page
/// and everything needed to reach each customer's source records).
#[tracing::instrument(skip_all)]
pub async fn customers_page(
    hub: &Database,
    trace: &SqlTrace,
    after: Option<&str>,
    limit: i64,
    has_source: Option<SourceName>,
) -> Result<Vec<Link>, sqlx::Error> {
    let mut args = Vec::new();
    let mut filters = Vec::new();
    if let Some(after) = after {
        filters.push("c.id > ?");
        args.push(Arg::from(after));
    }
    if let Some(source) = has_source {
        filters.push("exists (select 1 from identity_links x where x.customer_id = c.id and x.source = ?)");
        args.push(Arg::Text(source.to_string()));
    }
    args.push(Arg::Int(limit));
    let filter = if filters.is_empty() { String::new() } else { format!("where {}", filters.join(" and ")) };
    // A derived table, not `in (.. limit ..)`: MySQL/MariaDB refuse LIMIT inside IN.
    let sql = format!(
        "select {LINK_COLUMNS}
         from (select c.id from customers c {filter} order by c.id limit ?) page
         join identity_links l on l.customer_id = page.id
         order by l.customer_id, l.source, l.source_key"
    );
    hub.fetch_all(trace, &sql, &args).await
}

/// How many customers match the filter.
pub async fn count_customers(
    hub: &Database,
    trace: &SqlTrace,
    has_source: Option<SourceName>,
) -> Result<i64, sqlx::Error> {
    match has_source {
        None => hub.fetch_count(trace, "select count(*) as n from customers", &[]).await,
        Some(source) => {
            let sql = "select count(distinct customer_id) as n from identity_links where source = ?";
            hub.fetch_count(trace, sql, &[Arg::Text(source.to_string())]).await
        }
    }
}

crate::row! {
    /// A link found for a requested golden id (which may be an alias of the link's customer).
    #[derive(Debug, Clone)]
    pub struct RequestedLink {
        pub requested_id: String,
        pub customer_id: String,
        pub source: String,
        pub source_key: String,
        pub rule: String,
        pub linked_at: DateTime<Utc>,
    }
}

impl RequestedLink {
    pub fn into_link(self) -> Link {
        Link {
            customer_id: self.customer_id,
            source: self.source,
            source_key: self.source_key,
            rule: self.rule,
            linked_at: self.linked_at,
        }
    }
}

/// Links of the customers with these golden ids, following merges: an id merged into
/// another customer answers with the survivor's links. One statement.
pub async fn links_by_customer_ids(
    hub: &Database,
    trace: &SqlTrace,
    ids: &[String],
) -> Result<Vec<RequestedLink>, sqlx::Error> {
    let list = in_list(ids.len());
    let sql = format!(
        "select l.customer_id as requested_id, {LINK_COLUMNS} from identity_links l where l.customer_id in ({list})
         union all
         select a.old_id as requested_id, {LINK_COLUMNS} from customer_aliases a
         join identity_links l on l.customer_id = a.customer_id
         where a.old_id in ({list})
         order by requested_id, source, source_key"
    );
    let args: Vec<Arg> = ids.iter().chain(ids).map(|id| Arg::Text(id.clone())).collect();
    hub.fetch_all(trace, &sql, &args).await
}

/// The keys of the records among `links` that are in `source`.
pub fn source_keys(links: &[Link], source: SourceName) -> Vec<i64> {
    let name = source.to_string();
    links.iter().filter(|l| l.source == name).filter_map(|l| l.source_key.parse().ok()).collect()
}

/// Links of every customer one of whose records has this normalised email.
pub async fn links_by_email(hub: &Database, trace: &SqlTrace, email: &str) -> Result<Vec<Link>, sqlx::Error> {
    links_by_key(hub, trace, "email_norm", email).await
}

/// Links of every customer one of whose records has this phone number (E.164).
pub async fn links_by_phone(hub: &Database, trace: &SqlTrace, phone: &str) -> Result<Vec<Link>, sqlx::Error> {
    links_by_key(hub, trace, "phone_norm", phone).await
}

async fn links_by_key(
    hub: &Database,
    trace: &SqlTrace,
    column: &'static str,
    value: &str,
) -> Result<Vec<Link>, sqlx::Error> {
    let sql = format!(
        "select {LINK_COLUMNS} from identity_links l
         where l.customer_id in (select m.customer_id from identity_links m where m.{column} = ?)
         order by l.customer_id, l.source, l.source_key"
    );
    hub.fetch_all(trace, &sql, &[Arg::from(value)]).await
}

/// Links of the customer a source record belongs to.
pub async fn links_by_source_key(
    hub: &Database,
    trace: &SqlTrace,
    source: SourceName,
    key: &str,
) -> Result<Vec<Link>, sqlx::Error> {
    let sql = format!(
        "select {LINK_COLUMNS} from identity_links l
         where l.customer_id in (select m.customer_id from identity_links m where m.source = ? and m.source_key = ?)
         order by l.customer_id, l.source, l.source_key"
    );
    hub.fetch_all(trace, &sql, &[Arg::Text(source.to_string()), Arg::from(key)]).await
}

/// Links of the customers records with these keys in `source` belong to. One statement.
pub async fn links_by_source_keys(
    hub: &Database,
    trace: &SqlTrace,
    source: SourceName,
    keys: &[String],
) -> Result<Vec<Link>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "select {LINK_COLUMNS} from identity_links l
         where l.customer_id in (select m.customer_id from identity_links m where m.source = ? and m.source_key in ({}))
         order by l.customer_id, l.source, l.source_key",
        in_list(keys.len())
    );
    let mut args = vec![Arg::Text(source.to_string())];
    args.extend(keys.iter().map(|k| Arg::Text(k.clone())));
    hub.fetch_all(trace, &sql, &args).await
}

/// Groups links (ordered by customer) into one list per customer, keeping the order.
pub fn group_by_customer(links: Vec<Link>) -> Vec<(String, Vec<Link>)> {
    let mut out: Vec<(String, Vec<Link>)> = Vec::new();
    for link in links {
        match out.last_mut() {
            Some((id, group)) if *id == link.customer_id => group.push(link),
            _ => out.push((link.customer_id.clone(), vec![link])),
        }
    }
    out
}

/// Removes a customer from the hub store: its links, aliases, conflicts, demo truth, the
/// customer itself, and the shared keys of theirs that no one else holds any more.
/// Returns the rows deleted; deleting again deletes nothing.
pub async fn forget(hub: &Database, customer_id: &str, links: &[Link]) -> Result<u64, sqlx::Error> {
    let id = || Arg::from(customer_id);
    // Before the links go: they say which keys were theirs.
    let mut statements: Vec<(String, Vec<Arg>)> = [("email", "email_norm"), ("phone", "phone_norm")]
        .into_iter()
        .map(|(kind, column)| {
            let sql = format!(
                "delete from ambiguous_keys where kind = ? \
                 and value in (select {column} from identity_links where customer_id = ?) \
                 and not exists (select 1 from identity_links l \
                                 where l.{column} = ambiguous_keys.value and l.customer_id <> ?)"
            );
            (sql, vec![Arg::from(kind), id(), id()])
        })
        .collect();
    statements.extend([
        ("delete from identity_links where customer_id = ?".to_owned(), vec![id()]),
        ("delete from customer_aliases where customer_id = ? or old_id = ?".to_owned(), vec![id(), id()]),
        ("delete from identity_conflicts where customer_id = ? or other_customer_id = ?".to_owned(), vec![id(), id()]),
        ("delete from customers where id = ?".to_owned(), vec![id()]),
    ]);
    for link in links {
        statements.push((
            "delete from seed_truth where source = ? and source_key = ?".to_owned(),
            vec![Arg::from(link.source.as_str()), Arg::from(link.source_key.as_str())],
        ));
    }
    Ok(hub.transaction(&statements).await?.iter().sum())
}
