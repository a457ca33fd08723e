//! Shop queries: accounts, orders, order lines and per-account purchase aggregates.

use chrono::{DateTime, NaiveDate, Utc};

use super::contract::Kind::{Boolean, Integer, Text, Timestamp};
use super::contract::Table;
use super::engine::{Database, SqlTrace, in_list, ints};
use super::{Page, newest_first};

/// The shop in the one list of sources ([`super::def`]).
pub(crate) const SOURCE: super::SourceDef = super::SourceDef {
    contract: CONTRACT,
    // One name field: read as the last name, folded into one name key with the (null)
    // first name.
    identity: ("accounts", "id, email, phone, null as first_name, name as last_name, country, updated_at"),
    export: |db, trace, keys| Box::pin(export(db, trace, keys)),
    erasure,
    migrations: super::migrations!("shop", 1 "0001_init.sql" "init", 2 "0002_changes.sql" "changes"),
};

/// What c360 needs of the shop (see [`super::contract`]).
pub(crate) const CONTRACT: &[Table] = &[
    Table {
        name: "accounts",
        about: "shop accounts, guests included; `country` is the region for national phone numbers",
        columns: &[
            ("id", Integer),
            ("email", Text),
            ("phone", Text),
            ("name", Text),
            ("country", Text),
            ("is_guest", Boolean),
            ("created_at", Timestamp),
            ("updated_at", Timestamp),
        ],
    },
    Table {
        name: "orders",
        about: "order headers; money in minor units (cents) of `currency`",
        columns: &[
            ("id", Integer),
            ("account_id", Integer),
            ("number", Text),
            ("ordered_at", Timestamp),
            ("status", Text),
            ("channel", Text),
            ("currency", Text),
            ("total_cents", Integer),
        ],
    },
    Table {
        name: "order_lines",
        about: "order lines",
        columns: &[
            ("order_id", Integer),
            ("line_no", Integer),
            ("sku", Text),
            ("quantity", Integer),
            ("unit_price_cents", Integer),
        ],
    },
    Table {
        name: "products",
        about: "the catalogue, for product names and categories",
        columns: &[("sku", Text), ("name", Text), ("category", Text)],
    },
];

crate::row! {
    /// A shop account (registered or guest checkout).
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Account {
        pub(crate) id: i64,
        pub(crate) email: Option<String>,
        pub(crate) phone: Option<String>,
        pub(crate) name: Option<String>,
        pub(crate) country: Option<String>,
        pub(crate) is_guest: bool,
        pub(crate) created_at: DateTime<Utc>,
    }
}

crate::row! {
    /// An order header.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct Order {
        pub(crate) id: i64,
        pub(crate) account_id: i64,
        pub(crate) number: String,
        pub(crate) ordered_at: DateTime<Utc>,
        pub(crate) status: String,
        pub(crate) channel: String,
        pub(crate) currency: String,
        pub(crate) total_cents: i64,
    }
}

crate::row! {
    /// An order as change detection reads it ([`super::changes`]).
    #[derive(Debug, Clone)]
    pub(crate) struct OrderChange {
        pub(crate) id: i64,
        pub(crate) account_id: i64,
        pub(crate) ordered_at: DateTime<Utc>,
        pub(crate) status: String,
        pub(crate) currency: String,
        pub(crate) total_cents: i64,
        pub(crate) updated_at: DateTime<Utc>,
    }
}

/// The columns of [`OrderChange`] but `updated_at`.
pub(crate) const ORDER_CHANGE_COLUMNS: &str = "id, account_id, ordered_at, status, currency, total_cents";

crate::row! {
    /// An order line with its product.
    #[derive(Debug, Clone, serde::Serialize)]
    pub(crate) struct OrderLine {
        pub(crate) order_id: i64,
        pub(crate) line_no: i32,
        pub(crate) sku: String,
        pub(crate) product_name: Option<String>,
        pub(crate) category: Option<String>,
        pub(crate) quantity: i32,
        pub(crate) unit_price_cents: i64,
        pub(crate) currency: String,
    }
}

crate::row! {
    /// Orders of one account in one currency and status: the bricks of purchase summaries.
    #[derive(Debug, Clone)]
    pub(crate) struct OrderAggregate {
        pub(crate) account_id: i64,
        pub(crate) currency: String,
        pub(crate) status: String,
        pub(crate) orders: i64,
        pub(crate) total_cents: i64,
        pub(crate) first_at: DateTime<Utc>,
        pub(crate) last_at: DateTime<Utc>,
    }
}

pub(crate) const ORDER_COLUMNS: &str = "id, account_id, number, ordered_at, status, channel, currency, total_cents";

#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn accounts(db: &Database, trace: &SqlTrace, ids: &[i64]) -> Result<Vec<Account>, sqlx::Error> {
    let sql = format!(
        "select id, email, phone, name, country, is_guest, created_at from accounts where id in ({})",
        in_list(ids.len())
    );
    db.fetch_all(trace, &sql, &ints(ids)).await
}

/// The newest orders of each account, one statement for all accounts.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = accounts.len()))]
pub(crate) async fn orders_page(
    db: &Database,
    trace: &SqlTrace,
    accounts: &[i64],
    page: &Page,
) -> Result<Vec<Order>, sqlx::Error> {
    let (sql, args) = newest_first(ORDER_COLUMNS, "orders", "account_id", "ordered_at", accounts, page);
    db.fetch_all(trace, &sql, &args).await
}

#[tracing::instrument(level = "debug", skip_all, fields(db.ids = ids.len()))]
pub(crate) async fn orders(db: &Database, trace: &SqlTrace, ids: &[i64]) -> Result<Vec<Order>, sqlx::Error> {
    let sql = format!("select {ORDER_COLUMNS} from orders where id in ({})", in_list(ids.len()));
    db.fetch_all(trace, &sql, &ints(ids)).await
}

/// Lines of many orders, with product name and category (a product missing from the
/// catalogue still shows its line).
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = orders.len()))]
pub(crate) async fn order_lines(
    db: &Database,
    trace: &SqlTrace,
    orders: &[i64],
) -> Result<Vec<OrderLine>, sqlx::Error> {
    let sql = format!(
        "select l.order_id, l.line_no, l.sku, p.name as product_name, p.category, l.quantity, l.unit_price_cents, o.currency
         from order_lines l
         join orders o on o.id = l.order_id
         left join products p on p.sku = l.sku
         where l.order_id in ({})
         order by l.order_id, l.line_no",
        in_list(orders.len())
    );
    db.fetch_all(trace, &sql, &ints(orders)).await
}

/// Order counts, totals and first/last order time per account, currency and status.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = accounts.len()))]
pub(crate) async fn order_aggregates(
    db: &Database,
    trace: &SqlTrace,
    accounts: &[i64],
) -> Result<Vec<OrderAggregate>, sqlx::Error> {
    let sql = format!(
        "select account_id, currency, status, count(*) as orders, {total} as total_cents,
                min(ordered_at) as first_at, max(ordered_at) as last_at
         from orders where account_id in ({list})
         group by account_id, currency, status",
        total = db.engine.sum_int("total_cents"),
        list = in_list(accounts.len())
    );
    db.fetch_all(trace, &sql, &ints(accounts)).await
}

crate::row! {
    /// What one account spent on one day (orders that were bought, not cancelled or
    /// returned): the purchase models' unit, a day's orders being one transaction.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct PurchaseDay {
        pub(crate) account_id: i64,
        pub(crate) day: NaiveDate,
        pub(crate) cents: i64,
    }
}

/// Every account's purchase days up to and including `as_of`, in account order, handed
/// to `each` as they stream (one grouped statement for the whole shop). Amounts are
/// summed across currencies: the models assume the shop sells in one.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn purchase_days(
    db: &Database,
    as_of: NaiveDate,
    accounts: Option<&[i64]>,
    each: impl FnMut(PurchaseDay) + Send,
) -> Result<(), sqlx::Error> {
    let day = db.engine.day("ordered_at");
    let only = accounts.map_or(String::new(), |a| format!("and account_id in ({})", in_list(a.len())));
    let sql = format!(
        "select account_id, {day} as day, {total} as cents
         from orders
         where status not in ('cancelled', 'returned') and ordered_at < ? {only}
         group by account_id, {day}
         order by account_id, {day}",
        total = db.engine.sum_int("total_cents"),
    );
    let mut args = vec![super::end_of(as_of).into()];
    args.extend(accounts.map(ints).unwrap_or_default());
    db.for_each(&sql, &args, each).await
}

/// The accounts with an order placed or changed after `since`, each once.
pub(crate) async fn changed_accounts(db: &Database, since: DateTime<Utc>) -> Result<Vec<i64>, sqlx::Error> {
    super::changed_keys(db, "orders", "account_id", since).await
}

crate::row! {
    /// An order line as the product statistics read it.
    #[derive(Debug, Clone)]
    pub(crate) struct SoldLine {
        pub(crate) order_id: i64,
        pub(crate) sku: String,
        pub(crate) unit_price_cents: i64,
    }
}

/// The lines of the orders bought from `from` to the end of `until`, in order-id order,
/// of one order in `every` (by id: a sample that reads the lines in their own order, so
/// the database neither sorts nor decodes the rest), handed to `each` as they stream.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn sold_lines(
    db: &Database,
    from: NaiveDate,
    until: NaiveDate,
    every: i64,
    each: impl FnMut(SoldLine) + Send,
) -> Result<(), sqlx::Error> {
    let sql = "select l.order_id, l.sku, l.unit_price_cents
               from order_lines l
               join orders o on o.id = l.order_id
               where l.order_id % ? = 0
                 and o.status not in ('cancelled', 'returned') and o.ordered_at >= ? and o.ordered_at < ?
               order by l.order_id, l.line_no";
    let args = [every.max(1).into(), super::midnight(from).into(), super::end_of(until).into()];
    db.for_each(sql, &args, each).await
}

/// How many orders the shop holds.
pub(crate) async fn order_count(db: &Database) -> Result<i64, sqlx::Error> {
    db.fetch_count(&SqlTrace::default(), "select count(*) as n from orders", &[]).await
}

crate::row! {
    /// A product of the catalogue: its name and category.
    #[derive(Debug, Clone)]
    pub(crate) struct CatalogueEntry {
        pub(crate) sku: String,
        pub(crate) name: String,
        pub(crate) category: String,
    }
}

/// The whole catalogue.
pub(crate) async fn catalogue(db: &Database) -> Result<Vec<CatalogueEntry>, sqlx::Error> {
    db.fetch_all(&SqlTrace::default(), "select sku, name, category from products", &[]).await
}

crate::row! {
    /// A product an account bought, with the most it paid for it.
    #[derive(Debug, Clone)]
    pub(crate) struct Bought {
        pub(crate) account_id: i64,
        pub(crate) sku: String,
        pub(crate) category: String,
        pub(crate) price_cents: i64,
    }
}

/// The products these accounts bought (orders not cancelled or returned).
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = accounts.len()))]
pub(crate) async fn bought(db: &Database, trace: &SqlTrace, accounts: &[i64]) -> Result<Vec<Bought>, sqlx::Error> {
    let sql = format!(
        "select o.account_id, l.sku, p.category, max(l.unit_price_cents) as price_cents
         from orders o
         join order_lines l on l.order_id = o.id
         join products p on p.sku = l.sku
         where o.account_id in ({}) and o.status not in ('cancelled', 'returned')
         group by o.account_id, l.sku, p.category",
        in_list(accounts.len())
    );
    db.fetch_all(trace, &sql, &ints(accounts)).await
}

/// Everything the shop holds about these records, by table.
pub(crate) async fn export(db: &Database, trace: &SqlTrace, keys: &[i64]) -> Result<serde_json::Value, sqlx::Error> {
    let orders: Vec<Order> = super::rows_in(db, trace, ORDER_COLUMNS, "orders", "account_id", keys).await?;
    let order_ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    let accounts = if keys.is_empty() { vec![] } else { accounts(db, trace, keys).await? };
    let order_lines = if order_ids.is_empty() { vec![] } else { order_lines(db, trace, &order_ids).await? };
    Ok(serde_json::json!({ "accounts": accounts, "orders": orders, "order_lines": order_lines }))
}

/// Erasure here: the accounts are deleted; orders stay for the books, without the account that said whose they were.
fn erasure(keys: &[i64]) -> super::Erasure {
    super::Erasure { anonymize: vec![], delete: vec![super::delete_in("accounts", "id", keys)] }
}
