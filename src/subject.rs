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

use crate::identity::store::Link;
use crate::sources::crm::{CONSENT_COLUMNS, Consent, CrmCustomer, NOTE_COLUMNS, Note};
use crate::sources::engine::{in_list, ints};
use crate::sources::helpdesk::{TICKET_COLUMNS, Ticket};
use crate::sources::marketing::{SEND_COLUMNS, Send};
use crate::sources::shop::{Account, ORDER_COLUMNS, Order, OrderLine};
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

/// The keys of `links` in one source.
fn keys(links: &[Link], source: SourceName) -> Vec<i64> {
    let name = source.to_string();
    links.iter().filter(|l| l.source == name).filter_map(|l| l.source_key.parse().ok()).collect()
}

/// Rows of `table` whose `column` is one of `ids` (none when there are no ids).
async fn rows_in<T: crate::sources::engine::AnyRow>(
    db: &Database,
    trace: &SqlTrace,
    columns: &str,
    table: &str,
    column: &str,
    ids: &[i64],
) -> Result<Vec<T>, SourceFailed> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!("select {columns} from {table} where {column} in ({}) order by 1", in_list(ids.len()));
    db.fetch_all(trace, &sql, &ints(ids)).await.map_err(|e| SourceFailed(db.name, e))
}

/// Everything the four sources and the hub hold about the customer with these links.
pub async fn export(
    sources: &Sources,
    trace: &SqlTrace,
    customer_id: &str,
    links: Vec<Link>,
) -> Result<Export, SourceFailed> {
    let (crm_keys, shop_keys) = (keys(&links, SourceName::Crm), keys(&links, SourceName::Shop));
    let (helpdesk_keys, marketing_keys) = (keys(&links, SourceName::Helpdesk), keys(&links, SourceName::Marketing));
    let (crm, shop, helpdesk, marketing) = (&sources.crm, &sources.shop, &sources.helpdesk, &sources.marketing);
    let profile =
        "id, first_name, last_name, email, phone, birth_date, gender, street, postal_code, city, country, created_at";
    let orders: Vec<Order> = rows_in(shop, trace, ORDER_COLUMNS, "orders", "account_id", &shop_keys).await?;
    let order_ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    let order_lines = if order_ids.is_empty() {
        vec![]
    } else {
        crate::sources::shop::order_lines(shop, trace, &order_ids).await.map_err(|e| SourceFailed(shop.name, e))?
    };
    Ok(Export {
        customer_id: customer_id.to_owned(),
        exported_at: Utc::now(),
        crm: CrmExport {
            customers: rows_in(crm, trace, profile, "customers", "id", &crm_keys).await?,
            consents: rows_in(crm, trace, CONSENT_COLUMNS, "consents", "customer_id", &crm_keys).await?,
            notes: rows_in(crm, trace, NOTE_COLUMNS, "notes", "customer_id", &crm_keys).await?,
        },
        shop: ShopExport {
            accounts: rows_in(
                shop,
                trace,
                "id, email, phone, name, country, is_guest, created_at",
                "accounts",
                "id",
                &shop_keys,
            )
            .await?,
            orders,
            order_lines,
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

/// Statements deleting rows of `table` whose `column` is one of `ids`.
fn delete(table: &str, column: &str, ids: &[i64]) -> (String, Vec<Arg>) {
    (format!("delete from {table} where {column} in ({})", in_list(ids.len())), ints(ids))
}

/// Runs one source's statements in a transaction; `anonymizing` of them (the first ones)
/// keep their rows.
async fn apply(db: &Database, statements: Vec<(String, Vec<Arg>)>, anonymizing: usize) -> Result<Erased, SourceFailed> {
    if statements.is_empty() {
        return Ok(Erased { db: db.name, deleted: 0, anonymized: 0 });
    }
    let counts = db.transaction(&statements).await.map_err(|e| SourceFailed(db.name, e))?;
    Ok(Erased {
        db: db.name,
        anonymized: counts.iter().take(anonymizing).sum(),
        deleted: counts.iter().skip(anonymizing).sum(),
    })
}

/// Erases the customer with these links from the four sources, then from the hub.
pub async fn erase(sources: &Sources, customer_id: &str, links: &[Link]) -> Result<Vec<Erased>, SourceFailed> {
    let mut report = Vec::new();
    let crm_keys = keys(links, SourceName::Crm);
    let crm = if crm_keys.is_empty() {
        vec![]
    } else {
        vec![
            delete("notes", "customer_id", &crm_keys),
            delete("consents", "customer_id", &crm_keys),
            delete("customers", "id", &crm_keys),
        ]
    };
    report.push(apply(&sources.crm, crm, 0).await?);

    let shop_keys = keys(links, SourceName::Shop);
    // Orders stay for the books, without the account that said whose they were.
    let shop = if shop_keys.is_empty() { vec![] } else { vec![delete("accounts", "id", &shop_keys)] };
    report.push(apply(&sources.shop, shop, 0).await?);

    let helpdesk_keys = keys(links, SourceName::Helpdesk);
    let helpdesk = if helpdesk_keys.is_empty() {
        vec![]
    } else {
        let mut blank = ints(&helpdesk_keys);
        blank.insert(0, Arg::from(ERASED_TEXT));
        vec![
            (format!("update tickets set subject = ? where requester_id in ({})", in_list(helpdesk_keys.len())), blank),
            delete("requesters", "id", &helpdesk_keys),
        ]
    };
    report.push(apply(&sources.helpdesk, helpdesk, usize::from(!helpdesk_keys.is_empty())).await?);

    let marketing_keys = keys(links, SourceName::Marketing);
    let marketing = if marketing_keys.is_empty() {
        vec![]
    } else {
        vec![delete("sends", "contact_id", &marketing_keys), delete("contacts", "id", &marketing_keys)]
    };
    report.push(apply(&sources.marketing, marketing, 0).await?);

    let hub = crate::identity::store::forget(&sources.hub, customer_id, links)
        .await
        .map_err(|e| SourceFailed(DbName::Hub, e))?;
    report.push(Erased { db: DbName::Hub, deleted: hub, anonymized: 0 });
    Ok(report)
}
