//! Subject rights: everything the sources hold about one customer (export), and removing
//! it (erasure).
//!
//! Erasure deletes the person's records and what only describes them (CRM profile,
//! consents and notes; shop account; helpdesk requester; marketing contact and its sends),
//! blanks free text that may describe them (ticket subjects) and keeps what the company
//! must keep without a person attached (orders for bookkeeping, tickets for service
//! statistics). The identity links go last, so an erasure cut short by a failing source
//! still finds the customer when retried; every statement is safe to run twice.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::identity::store::{self, Link};
use crate::sources::crm::{Consent, CrmCustomer, NOTE_COLUMNS, Note};
use crate::sources::engine::{in_list, ints};
use crate::sources::helpdesk::{TICKET_COLUMNS, Ticket};
use crate::sources::marketing::{SEND_COLUMNS, Send};
use crate::sources::shop::{self, Account, ORDER_COLUMNS, Order, OrderLine};
use crate::sources::{Arg, Database, DbName, SourceName, Sources, SqlTrace};

crate::row! {
    /// A helpdesk requester.
    #[derive(Debug, Clone, Serialize)]
    pub struct Requester {
        pub id: i64,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub name: Option<String>,
        pub created_at: DateTime<Utc>,
    }
}

crate::row! {
    /// A marketing contact.
    #[derive(Debug, Clone, Serialize)]
    pub struct Contact {
        pub id: i64,
        pub email: String,
        pub first_name: Option<String>,
        pub subscribed: bool,
        pub created_at: DateTime<Utc>,
    }
}

/// Everything about one customer, source by source.
#[derive(Debug, Serialize)]
pub struct Export {
    pub customer_id: String,
    pub exported_at: DateTime<Utc>,
    pub crm: CrmExport,
    pub shop: ShopExport,
    pub helpdesk: HelpdeskExport,
    pub marketing: MarketingExport,
    /// How the hub resolved the records into this customer.
    pub identity_links: Vec<Link>,
}

#[derive(Debug, Serialize)]
pub struct CrmExport {
    pub customers: Vec<CrmCustomer>,
    pub consents: Vec<Consent>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Serialize)]
pub struct ShopExport {
    pub accounts: Vec<Account>,
    pub orders: Vec<Order>,
    pub order_lines: Vec<OrderLine>,
}

#[derive(Debug, Serialize)]
pub struct HelpdeskExport {
    pub requesters: Vec<Requester>,
    pub tickets: Vec<Ticket>,
}

#[derive(Debug, Serialize)]
pub struct MarketingExport {
    pub contacts: Vec<Contact>,
    pub sends: Vec<Send>,
}

/// A source that failed, and why (logged, never sent).
#[derive(Debug)]
pub struct SourceFailed(pub DbName, pub sqlx::Error);

/// The rows `fetch` reads from `db`, or none without running it when there are no `ids`
/// (an empty `in ()` is not SQL).
async fn rows<T>(
    db: &Database,
    ids: &[i64],
    fetch: impl Future<Output = Result<Vec<T>, sqlx::Error>>,
) -> Result<Vec<T>, SourceFailed> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    fetch.await.map_err(|e| SourceFailed(db.name, e))
}

/// Rows of `table` whose `column` is one of `ids`, for tables the resolvers only read
/// page by page.
async fn rows_in<T: crate::sources::engine::AnyRow>(
    db: &Database,
    trace: &SqlTrace,
    columns: &str,
    table: &str,
    column: &str,
    ids: &[i64],
) -> Result<Vec<T>, SourceFailed> {
    let sql = format!("select {columns} from {table} where {column} in ({}) order by 1", in_list(ids.len()));
    rows(db, ids, db.fetch_all(trace, &sql, &ints(ids))).await
}

/// Everything the four sources and the hub hold about the customer with these links.
pub async fn export(
    sources: &Sources,
    trace: &SqlTrace,
    customer_id: &str,
    links: Vec<Link>,
) -> Result<Export, SourceFailed> {
    let keys = |source| store::source_keys(&links, source);
    let (crm_keys, shop_keys) = (keys(SourceName::Crm), keys(SourceName::Shop));
    let (helpdesk_keys, marketing_keys) = (keys(SourceName::Helpdesk), keys(SourceName::Marketing));
    let (crm, shop, helpdesk, marketing) = (sources.crm(), sources.shop(), sources.helpdesk(), sources.marketing());
    let orders: Vec<Order> = rows_in(shop, trace, ORDER_COLUMNS, "orders", "account_id", &shop_keys).await?;
    let order_ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    Ok(Export {
        customer_id: customer_id.to_owned(),
        exported_at: Utc::now(),
        crm: CrmExport {
            customers: rows(crm, &crm_keys, crate::sources::crm::customers(crm, trace, &crm_keys)).await?,
            consents: rows(crm, &crm_keys, crate::sources::crm::consents(crm, trace, &crm_keys)).await?,
            notes: rows_in(crm, trace, NOTE_COLUMNS, "notes", "customer_id", &crm_keys).await?,
        },
        shop: ShopExport {
            accounts: rows(shop, &shop_keys, shop::accounts(shop, trace, &shop_keys)).await?,
            order_lines: rows(shop, &order_ids, shop::order_lines(shop, trace, &order_ids)).await?,
            orders,
        },
        helpdesk: HelpdeskExport {
            requesters: rows_in(
                helpdesk,
                trace,
                "id, email, phone, name, created_at",
                "requesters",
                "id",
                &helpdesk_keys,
            )
            .await?,
            tickets: rows_in(helpdesk, trace, TICKET_COLUMNS, "tickets", "requester_id", &helpdesk_keys).await?,
        },
        marketing: MarketingExport {
            contacts: rows_in(
                marketing,
                trace,
                "id, email, first_name, subscribed, created_at",
                "contacts",
                "id",
                &marketing_keys,
            )
            .await?,
            sends: rows_in(marketing, trace, SEND_COLUMNS, "sends", "contact_id", &marketing_keys).await?,
        },
        identity_links: links,
    })
}

/// What erasure did in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub db: DbName,
    /// Rows deleted.
    pub deleted: u64,
    /// Rows kept with what described the person removed.
    pub anonymized: u64,
}

/// The text left where free text about an erased person was.
pub const ERASED_TEXT: &str = "[erased]";

type Statement = (String, Vec<Arg>);

/// Deletes the rows of `table` whose `column` is one of `ids`.
fn delete(table: &str, column: &str, ids: &[i64]) -> Statement {
    (format!("delete from {table} where {column} in ({})", in_list(ids.len())), ints(ids))
}

/// Runs one source's statements in a transaction, those that keep their rows
/// (`anonymize`) first; nothing when the customer has no record there (`keys`).
async fn apply(
    db: &Database,
    keys: &[i64],
    anonymize: Vec<Statement>,
    delete: Vec<Statement>,
) -> Result<Erased, SourceFailed> {
    if keys.is_empty() {
        return Ok(Erased { db: db.name, deleted: 0, anonymized: 0 });
    }
    let kept = anonymize.len();
    let counts = db.transaction(&[anonymize, delete].concat()).await.map_err(|e| SourceFailed(db.name, e))?;
    Ok(Erased { db: db.name, anonymized: counts[..kept].iter().sum(), deleted: counts[kept..].iter().sum() })
}

/// Erases the customer with these links from the four sources, then from the hub.
pub async fn erase(sources: &Sources, customer_id: &str, links: &[Link]) -> Result<Vec<Erased>, SourceFailed> {
    let keys = |source| store::source_keys(links, source);
    let crm = keys(SourceName::Crm);
    let crm_deletes = vec![
        delete("notes", "customer_id", &crm),
        delete("consents", "customer_id", &crm),
        delete("customers", "id", &crm),
    ];
    let mut report = vec![apply(sources.crm(), &crm, vec![], crm_deletes).await?];

    // Orders stay for the books, without the account that said whose they were.
    let shop = keys(SourceName::Shop);
    report.push(apply(sources.shop(), &shop, vec![], vec![delete("accounts", "id", &shop)]).await?);

    // Tickets stay for service statistics, without their subject.
    let helpdesk = keys(SourceName::Helpdesk);
    let blank = (
        format!("update tickets set subject = ? where requester_id in ({})", in_list(helpdesk.len())),
        [vec![Arg::from(ERASED_TEXT)], ints(&helpdesk)].concat(),
    );
    report.push(apply(sources.helpdesk(), &helpdesk, vec![blank], vec![delete("requesters", "id", &helpdesk)]).await?);

    let marketing = keys(SourceName::Marketing);
    let marketing_deletes = vec![delete("sends", "contact_id", &marketing), delete("contacts", "id", &marketing)];
    report.push(apply(sources.marketing(), &marketing, vec![], marketing_deletes).await?);

    let hub = store::forget(sources.hub(), customer_id, links).await.map_err(|e| SourceFailed(DbName::Hub, e))?;
    report.push(Erased { db: DbName::Hub, deleted: hub, anonymized: 0 });
    Ok(report)
}
