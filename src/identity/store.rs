//! The hub store's identity tables: golden customers and the links from source records.

use chrono::{DateTime, Utc};

use crate::sources::engine::in_list;
use crate::sources::{Arg, Database, SourceName, SqlTrace};

crate::row! {
    /// A source record linked to a golden customer.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Link {
        pub(crate) customer_id: String,
        pub(crate) source: String,
        pub(crate) source_key: String,
        pub(crate) rule: String,
        pub(crate) linked_at: DateTime<Utc>,
    }
}

const LINK_COLUMNS: &str = "l.customer_id, l.source, l.source_key, l.rule, l.linked_at";

/// More conditions on the customer list, from beside the identity tables (the insight
/// filters): a join on `customers c` and conditions, with their bind parameters in
/// order (the join's first).
#[derive(Debug, Clone, Default)]
pub(crate) struct Narrowing {
    pub(crate) join: String,
    pub(crate) join_args: Vec<Arg>,
    pub(crate) conditions: Vec<String>,
    pub(crate) args: Vec<Arg>,
    /// Lists in the order of a floating-point column of the join (never null where the
    /// conditions hold), then by golden id.
    pub(crate) rank: Option<Rank>,
}

/// The order of a ranked list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rank {
    /// A `double precision` column of the join, e.g. `i.clv_12m`.
    pub(crate) column: &'static str,
    pub(crate) descending: bool,
}

crate::row! {
    /// A link of a ranked page, with its customer's rank key.
    #[derive(Debug, Clone)]
    pub(crate) struct RankedLink {
        pub(crate) customer_id: String,
        pub(crate) source: String,
        pub(crate) source_key: String,
        pub(crate) rule: String,
        pub(crate) linked_at: DateTime<Utc>,
        pub(crate) rank_key: f64,
    }
}

/// One page of customers in the order of `narrowing`'s rank, after the customer `after`
/// with rank key `after.0` (keyset paging), as their links in that order with each
/// customer's key: one statement, like [`customers_page`].
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn ranked_page(
    hub: &Database,
    trace: &SqlTrace,
    after: Option<(f64, &str)>,
    limit: i64,
    has_source: Option<SourceName>,
    narrowing: &Narrowing,
    rank: &Rank,
) -> Result<Vec<RankedLink>, sqlx::Error> {
    let (join, filter, mut args) = list_filter(None, has_source, Some(narrowing));
    let column = rank.column;
    let (dir, beyond) = if rank.descending { ("desc", "<") } else { ("asc", ">") };
    let mut filter = filter;
    if let Some((key, id)) = after {
        let keyset = format!("({column} {beyond} ? or ({column} = ? and c.id > ?))");
        filter = if filter.is_empty() { format!("where {keyset}") } else { format!("{filter} and {keyset}") };
        args.extend([Arg::from(key), Arg::from(key), Arg::from(id)]);
    }
    args.push(Arg::Int(limit));
    let sql = format!(
        "select {LINK_COLUMNS}, page.rank_key
         from (select c.id, {column} as rank_key from customers c {join} {filter}
               order by {column} {dir}, c.id limit ?) page
         join identity_links l on l.customer_id = page.id
         order by page.rank_key {dir}, l.customer_id, l.source, l.source_key"
    );
    hub.fetch_all(trace, &sql, &args).await
}

/// The joins, `where` clause and parameters of a customer list: after the golden id
/// `after`, with a record in `has_source`, narrowed by `narrowing`.
fn list_filter(
    after: Option<&str>,
    has_source: Option<SourceName>,
    narrowing: Option<&Narrowing>,
) -> (String, String, Vec<Arg>) {
    let mut args = Vec::new();
    let mut filters: Vec<String> = Vec::new();
    let join = narrowing.map(|n| n.join.clone()).unwrap_or_default();
    if let Some(n) = narrowing {
        args.extend(n.join_args.iter().cloned());
    }
    if let Some(after) = after {
        filters.push("c.id > ?".into());
        args.push(Arg::from(after));
    }
    if let Some(source) = has_source {
        filters.push("exists (select 1 from identity_links x where x.customer_id = c.id and x.source = ?)".into());
        args.push(Arg::Text(source.to_string()));
    }
    if let Some(n) = narrowing {
        filters.extend(n.conditions.iter().cloned());
        args.extend(n.args.iter().cloned());
    }
    let filter = if filters.is_empty() { String::new() } else { format!("where {}", filters.join(" and ")) };
    (join, filter, args)
}

/// One page of customers in id order, returned as their links (one statement: the page
/// and everything needed to reach each customer's source records).
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn customers_page(
    hub: &Database,
    trace: &SqlTrace,
    after: Option<&str>,
    limit: i64,
    has_source: Option<SourceName>,
    narrowing: Option<&Narrowing>,
) -> Result<Vec<Link>, sqlx::Error> {
    let (join, filter, mut args) = list_filter(after, has_source, narrowing);
    args.push(Arg::Int(limit));
    // A derived table, not `in (.. limit ..)`: MySQL/MariaDB refuse LIMIT inside IN.
    let sql = format!(
        "select {LINK_COLUMNS}
         from (select c.id from customers c {join} {filter} order by c.id limit ?) page
         join identity_links l on l.customer_id = page.id
         order by l.customer_id, l.source, l.source_key"
    );
    hub.fetch_all(trace, &sql, &args).await
}

/// Of the golden ids `ids`, those `narrowing` keeps.
pub(crate) async fn narrow(
    hub: &Database,
    trace: &SqlTrace,
    ids: &[String],
    narrowing: &Narrowing,
) -> Result<Vec<String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = narrowing.join_args.clone();
    args.extend(ids.iter().map(|id| Arg::from(id.as_str())));
    args.extend(narrowing.args.iter().cloned());
    let mut conditions = vec![format!("c.id in ({})", in_list(ids.len()))];
    conditions.extend(narrowing.conditions.iter().cloned());
    let sql = format!("select c.id as id from customers c {} where {}", narrowing.join, conditions.join(" and "));
    let rows: Vec<Id> = hub.fetch_all(trace, &sql, &args).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

crate::row! {
    struct Id {
        id: String,
    }
}

/// How many customers match the filter.
pub(crate) async fn count_customers(
    hub: &Database,
    trace: &SqlTrace,
    has_source: Option<SourceName>,
    narrowing: Option<&Narrowing>,
) -> Result<i64, sqlx::Error> {
    match (has_source, narrowing) {
        (None, None) => hub.fetch_count(trace, "select count(*) as n from customers", &[]).await,
        (Some(source), None) => {
            let sql = "select count(distinct customer_id) as n from identity_links where source = ?";
            hub.fetch_count(trace, sql, &[Arg::Text(source.to_string())]).await
        }
        (_, Some(_)) => {
            let (join, filter, args) = list_filter(None, has_source, narrowing);
            hub.fetch_count(trace, &format!("select count(*) as n from customers c {join} {filter}"), &args).await
        }
    }
}

crate::row! {
    /// A link found for a requested golden id (which may be an alias of the link's customer).
    #[derive(Debug, Clone)]
    pub(crate) struct RequestedLink {
        pub(crate) requested_id: String,
        pub(crate) customer_id: String,
        pub(crate) source: String,
        pub(crate) source_key: String,
        pub(crate) rule: String,
        pub(crate) linked_at: DateTime<Utc>,
    }
}

impl RequestedLink {
    pub(crate) fn into_link(self) -> Link {
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
pub(crate) async fn links_by_customer_ids(
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
pub(crate) fn source_keys(links: &[Link], source: SourceName) -> Vec<i64> {
    let name = source.to_string();
    links.iter().filter(|l| l.source == name).filter_map(|l| l.source_key.parse().ok()).collect()
}

/// What a customer can be looked up by: a normalised email, an E.164 phone, or a source
/// record's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum LookupKey {
    Email(String),
    Phone(String),
    Source(SourceName, String),
}

crate::row! {
    /// A link of a customer found by a key, with the key's value that found it.
    #[derive(Debug, Clone)]
    struct MatchedLink {
        matched: String,
        customer_id: String,
        source: String,
        source_key: String,
        rule: String,
        linked_at: DateTime<Utc>,
    }
}

/// The links of every customer one of whose records has one of `keys`, each with the key
/// it was found by: one statement per kind of key (emails, phones, each source's keys).
pub(crate) async fn links_by_keys(
    hub: &Database,
    trace: &SqlTrace,
    keys: &[LookupKey],
) -> Result<Vec<(LookupKey, Link)>, sqlx::Error> {
    // (the column matched on, the source it is limited to, the values): one statement each.
    let mut groups: Vec<(&'static str, Option<SourceName>, Vec<&str>)> = Vec::new();
    for key in keys {
        let (column, source, value) = match key {
            LookupKey::Email(v) => ("email_norm", None, v.as_str()),
            LookupKey::Phone(v) => ("phone_norm", None, v.as_str()),
            LookupKey::Source(s, v) => ("source_key", Some(*s), v.as_str()),
        };
        match groups.iter_mut().find(|(c, s, _)| *c == column && *s == source) {
            Some((_, _, values)) => values.push(value),
            None => groups.push((column, source, vec![value])),
        }
    }
    let mut out = Vec::new();
    for (column, source, values) in groups {
        for chunk in values.chunks(hub.engine.max_params() - 1) {
            let mut args: Vec<Arg> = source.map(|s| Arg::Text(s.to_string())).into_iter().collect();
            args.extend(chunk.iter().map(|v| Arg::from(*v)));
            let in_source = if source.is_some() { "m.source = ? and " } else { "" };
            // `distinct`: a customer with two records sharing the key is found once.
            let sql = format!(
                "select distinct m.{column} as matched, {LINK_COLUMNS}
                 from identity_links m join identity_links l on l.customer_id = m.customer_id
                 where {in_source}m.{column} in ({})
                 order by matched, l.customer_id, l.source, l.source_key",
                in_list(chunk.len())
            );
            for row in hub.fetch_all::<MatchedLink>(trace, &sql, &args).await? {
                let key = match (column, source) {
                    ("email_norm", _) => LookupKey::Email(row.matched),
                    ("phone_norm", _) => LookupKey::Phone(row.matched),
                    (_, Some(s)) => LookupKey::Source(s, row.matched),
                    _ => continue,
                };
                let link = Link {
                    customer_id: row.customer_id,
                    source: row.source,
                    source_key: row.source_key,
                    rule: row.rule,
                    linked_at: row.linked_at,
                };
                out.push((key, link));
            }
        }
    }
    Ok(out)
}

/// Links of the customers records with these keys in `source` belong to. One statement.
pub(crate) async fn links_by_source_keys(
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

/// Links of the customers with a record linked to them after `since`. One statement.
pub(crate) async fn links_of_customers_linked_since(
    hub: &Database,
    since: DateTime<Utc>,
) -> Result<Vec<Link>, sqlx::Error> {
    let sql = format!(
        "select {LINK_COLUMNS} from identity_links l
         where l.customer_id in (select m.customer_id from identity_links m where m.linked_at > ?)"
    );
    hub.fetch_all(&SqlTrace::default(), &sql, &[since.into()]).await
}

/// Groups links (ordered by customer) into one list per customer, keeping the order.
pub(crate) fn group_by_customer(links: Vec<Link>) -> Vec<(String, Vec<Link>)> {
    let mut out: Vec<(String, Vec<Link>)> = Vec::new();
    for link in links {
        match out.last_mut() {
            Some((id, group)) if *id == link.customer_id => group.push(link),
            _ => out.push((link.customer_id.clone(), vec![link])),
        }
    }
    out
}

/// The statement every transaction that changes links or aliases ends with, so that
/// replicas keeping links in memory learn of it (see [`link_generation`]).
pub(crate) const BUMP_LINK_GENERATION: &str = "update link_generation set generation = generation + 1";

crate::row! {
    struct Generation {
        generation: i64,
    }
}

/// How many times links or aliases have changed: moves whenever any process commits
/// such a change.
pub(crate) async fn link_generation(hub: &Database, trace: &SqlTrace) -> Result<i64, sqlx::Error> {
    let rows: Vec<Generation> = hub.fetch_all(trace, "select generation from link_generation", &[]).await?;
    Ok(rows.first().map_or(0, |g| g.generation))
}

/// Removes a customer from the hub store: its links, aliases, conflicts, demo truth,
/// insights, service alerts, the customer itself, and the shared keys of theirs that no one else holds any more.
/// Returns the rows deleted; deleting again deletes nothing.
pub(crate) async fn forget(hub: &Database, customer_id: &str, links: &[Link]) -> Result<u64, sqlx::Error> {
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
        // What the insight models derived of them goes with them.
        ("delete from customer_insights where customer_id = ?".to_owned(), vec![id()]),
        // So do the service alerts about them (the log's other ids stay as they are).
        ("delete from alerts where customer_id = ?".to_owned(), vec![id()]),
        (BUMP_LINK_GENERATION.to_owned(), vec![]),
    ]);
    for link in links {
        statements.push((
            "delete from seed_truth where source = ? and source_key = ?".to_owned(),
            vec![Arg::from(link.source.as_str()), Arg::from(link.source_key.as_str())],
        ));
    }
    Ok(hub.transaction(&statements).await?.iter().sum())
}
