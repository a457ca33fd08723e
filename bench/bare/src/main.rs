//! The floor of the performance ladder (BENCHMARKS.md): what async-graphql 7 and sqlx
//! answer on this machine for the benchmark's operations, over the very tables c360 reads,
//! with none of c360's layers: no policy, no audit, no identity links cache, no limits,
//! no rate limits, no spans, no metrics; one pool and loaders shared by every request.
//!
//! It serves PostgreSQL only, over the benchmark's database (`bench/compare.py`: one
//! database whose schemas crm, shop, helpdesk, marketing and hub are c360's five): the
//! schema the benchmark asks of c360, with golden ids as ids. Never a product.
//!
//!     DATABASE_URL=postgres://root@127.0.0.1/c360_bench_100000 PORT=8400 POOL_MAX=20 c360-bare

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Failure = Arc<sqlx::Error>;

/// Reads a row into a struct by column names (sqlx's derive would add its macros crate to
/// every build of the workspace).
macro_rules! from_row {
    ($name:ident { $($field:ident),* }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for $name {
            fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row;
                Ok($name { $($field: row.try_get(stringify!($field))?),* })
            }
        }
    };
}

// ------------------------------------------------------------------------- loaders

/// Golden id → its source records (source, key), from the hub store's links.
struct Links(PgPool);

impl Loader<String> for Links {
    type Value = Vec<(String, i64)>;
    type Error = Failure;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Self::Value>, Failure> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "select customer_id, source, source_key from hub.identity_links where customer_id = any($1)",
        )
        .bind(ids)
        .fetch_all(&self.0)
        .await?;
        let mut out: HashMap<String, Self::Value> = HashMap::new();
        for (customer, source, key) in rows {
            if let Ok(key) = key.parse() {
                out.entry(customer).or_default().push((source, key));
            }
        }
        Ok(out)
    }
}

#[derive(Clone)]
struct Profile {
    id: i64,
    first_name: String,
    last_name: String,
    email: Option<String>,
    phone: Option<String>,
    birth_date: Option<NaiveDate>,
    gender: Option<String>,
    city: Option<String>,
    country: Option<String>,
}

from_row!(Profile { id, first_name, last_name, email, phone, birth_date, gender, city, country });

struct Profiles(PgPool);

impl Loader<i64> for Profiles {
    type Value = Profile;
    type Error = Failure;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Profile>, Failure> {
        let rows: Vec<Profile> = sqlx::query_as(
            "select id, first_name, last_name, email, phone, birth_date, gender, city, country
             from crm.customers where id = any($1)",
        )
        .bind(ids)
        .fetch_all(&self.0)
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

#[derive(Clone)]
struct Account {
    id: i64,
    email: Option<String>,
    phone: Option<String>,
    name: Option<String>,
}

from_row!(Account { id, email, phone, name });

struct Accounts(PgPool);

impl Loader<i64> for Accounts {
    type Value = Account;
    type Error = Failure;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Account>, Failure> {
        let rows: Vec<Account> = sqlx::query_as("select id, email, phone, name from shop.accounts where id = any($1)")
            .bind(ids)
            .fetch_all(&self.0)
            .await?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// The newest `limit` rows of each parent, newest first: the same windowed statement as
/// c360's (`sources::newest_first`).
fn newest_first(columns: &str, table: &str, parent: &str, time: &str) -> String {
    format!(
        "select {columns} from (
            select {columns}, row_number() over (partition by {parent} order by {time} desc, id desc) as rn
            from {table} where {parent} = any($1)
         ) ranked
         where rn <= $2
         order by {parent}, {time} desc, id desc"
    )
}

#[derive(Clone)]
struct Order {
    id: i64,
    account_id: i64,
    number: String,
    ordered_at: DateTime<Utc>,
    status: String,
    currency: String,
    total_cents: i64,
}

from_row!(Order { id, account_id, number, ordered_at, status, currency, total_cents });

/// (account, rows per account) → that account's newest orders.
struct OrderPages(PgPool);

impl Loader<(i64, i64)> for OrderPages {
    type Value = Vec<Order>;
    type Error = Failure;

    async fn load(&self, keys: &[(i64, i64)]) -> Result<HashMap<(i64, i64), Vec<Order>>, Failure> {
        let columns = "id, account_id, number, ordered_at, status, currency, total_cents";
        let sql = newest_first(columns, "shop.orders", "account_id", "ordered_at");
        pages(&self.0, &sql, keys, |o: &Order| o.account_id).await
    }
}

#[derive(Clone)]
struct Line {
    order_id: i64,
    sku: String,
    product_name: Option<String>,
    quantity: i32,
    unit_price_cents: i64,
    currency: String,
}

from_row!(Line { order_id, sku, product_name, quantity, unit_price_cents, currency });

struct Lines(PgPool);

impl Loader<i64> for Lines {
    type Value = Vec<Line>;
    type Error = Failure;

    async fn load(&self, orders: &[i64]) -> Result<HashMap<i64, Vec<Line>>, Failure> {
        let rows: Vec<Line> = sqlx::query_as(
            "select l.order_id, l.sku, p.name as product_name, l.quantity, l.unit_price_cents, o.currency
             from shop.order_lines l
             join shop.orders o on o.id = l.order_id
             left join shop.products p on p.sku = l.sku
             where l.order_id = any($1)
             order by l.order_id, l.line_no",
        )
        .bind(orders)
        .fetch_all(&self.0)
        .await?;
        let mut out: HashMap<i64, Vec<Line>> = HashMap::new();
        for line in rows {
            out.entry(line.order_id).or_default().push(line);
        }
        Ok(out)
    }
}

#[derive(Clone)]
struct Ticket {
    requester_id: i64,
    opened_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    category: String,
    status: String,
    subject: String,
    csat: Option<i32>,
}

from_row!(Ticket { requester_id, opened_at, closed_at, category, status, subject, csat });

struct TicketPages(PgPool);

impl Loader<(i64, i64)> for TicketPages {
    type Value = Vec<Ticket>;
    type Error = Failure;

    async fn load(&self, keys: &[(i64, i64)]) -> Result<HashMap<(i64, i64), Vec<Ticket>>, Failure> {
        let columns = "id, requester_id, opened_at, closed_at, category, status, subject, csat";
        let sql = newest_first(columns, "helpdesk.tickets", "requester_id", "opened_at");
        pages(&self.0, &sql, keys, |t: &Ticket| t.requester_id).await
    }
}

#[derive(Clone)]
struct CampaignSend {
    contact_id: i64,
    campaign_id: i64,
    sent_at: DateTime<Utc>,
    opened_at: Option<DateTime<Utc>>,
    clicked_at: Option<DateTime<Utc>>,
    converted_at: Option<DateTime<Utc>>,
}

from_row!(CampaignSend { contact_id, campaign_id, sent_at, opened_at, clicked_at, converted_at });

struct SendPages(PgPool);

impl Loader<(i64, i64)> for SendPages {
    type Value = Vec<CampaignSend>;
    type Error = Failure;

    async fn load(&self, keys: &[(i64, i64)]) -> Result<HashMap<(i64, i64), Vec<CampaignSend>>, Failure> {
        let columns = "id, contact_id, campaign_id, sent_at, opened_at, clicked_at, converted_at";
        let sql = newest_first(columns, "marketing.sends", "contact_id", "sent_at");
        pages(&self.0, &sql, keys, |s: &CampaignSend| s.contact_id).await
    }
}

#[derive(Clone, SimpleObject)]
struct Campaign {
    #[graphql(skip)]
    id: i64,
    name: String,
    channel: String,
}

from_row!(Campaign { id, name, channel });

struct Campaigns(PgPool);

impl Loader<i64> for Campaigns {
    type Value = Campaign;
    type Error = Failure;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Campaign>, Failure> {
        let rows: Vec<Campaign> =
            sqlx::query_as("select id, name, channel from marketing.campaigns where id = any($1)")
                .bind(ids)
                .fetch_all(&self.0)
                .await?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }
}

/// One windowed statement for every (parent, limit) key of a batch: keys of different
/// limits read the largest and are cut back.
async fn pages<T>(
    pool: &PgPool,
    sql: &str,
    keys: &[(i64, i64)],
    parent: impl Fn(&T) -> i64,
) -> Result<HashMap<(i64, i64), Vec<T>>, Failure>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin + Clone,
{
    let parents: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let limit = keys.iter().map(|k| k.1).max().unwrap_or(0);
    let rows: Vec<T> = sqlx::query_as(sql).bind(&parents).bind(limit).fetch_all(pool).await?;
    let mut by_parent: HashMap<i64, Vec<T>> = HashMap::new();
    for row in rows {
        by_parent.entry(parent(&row)).or_default().push(row);
    }
    Ok(keys
        .iter()
        .map(|&(p, n)| {
            let mut rows = by_parent.get(&p).cloned().unwrap_or_default();
            rows.truncate(usize::try_from(n).unwrap_or(0));
            ((p, n), rows)
        })
        .collect())
}

struct Loaders {
    links: DataLoader<Links>,
    profiles: DataLoader<Profiles>,
    accounts: DataLoader<Accounts>,
    order_pages: DataLoader<OrderPages>,
    lines: DataLoader<Lines>,
    ticket_pages: DataLoader<TicketPages>,
    send_pages: DataLoader<SendPages>,
    campaigns: DataLoader<Campaigns>,
}

impl Loaders {
    /// Shared by every request, without a cache (rows never cross requests stale), with
    /// async-graphql's batching window (`BARE_DELAY_US`, 1 ms unless set).
    fn new(pool: &PgPool, delay: Duration) -> Self {
        fn loader<T: Loader<K>, K>(inner: T, delay: Duration) -> DataLoader<T>
        where
            K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
        {
            DataLoader::new(inner, tokio::spawn).delay(delay)
        }
        Loaders {
            links: loader(Links(pool.clone()), delay),
            profiles: loader(Profiles(pool.clone()), delay),
            accounts: loader(Accounts(pool.clone()), delay),
            order_pages: loader(OrderPages(pool.clone()), delay),
            lines: loader(Lines(pool.clone()), delay),
            ticket_pages: loader(TicketPages(pool.clone()), delay),
            send_pages: loader(SendPages(pool.clone()), delay),
            campaigns: loader(Campaigns(pool.clone()), delay),
        }
    }
}

fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

fn failed(e: Failure) -> async_graphql::Error {
    async_graphql::Error::new(e.to_string())
}

// ------------------------------------------------------------------------- schema

struct Query;

#[Object]
impl Query {
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Customer>> {
        let links = loaders(ctx).links.load_one(id.0.clone()).await.map_err(failed)?;
        Ok(links.map(|links| Customer { id: id.0, links }))
    }

    async fn customer_by_email(&self, ctx: &Context<'_>, email: String) -> async_graphql::Result<Option<Customer>> {
        let pool = ctx.data_unchecked::<PgPool>();
        let found: Option<(String,)> =
            sqlx::query_as("select customer_id from hub.identity_links where email_norm = $1 limit 1")
                .bind(email.trim().to_lowercase())
                .fetch_optional(pool)
                .await?;
        let Some((id,)) = found else { return Ok(None) };
        let links = loaders(ctx).links.load_one(id.clone()).await.map_err(failed)?;
        Ok(links.map(|links| Customer { id, links }))
    }

    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<CustomerConnection> {
        let pool = ctx.data_unchecked::<PgPool>();
        let after = match after {
            Some(cursor) => String::from_utf8(URL_SAFE_NO_PAD.decode(cursor)?)?,
            None => String::new(),
        };
        let ids: Vec<(String,)> = sqlx::query_as("select id from hub.customers where id > $1 order by id limit $2")
            .bind(&after)
            .bind(i64::from(first))
            .fetch_all(pool)
            .await?;
        let ids: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
        let mut links = loaders(ctx).links.load_many(ids.iter().cloned()).await.map_err(failed)?;
        let edges = ids
            .into_iter()
            .map(|id| CustomerEdge {
                cursor: URL_SAFE_NO_PAD.encode(&id),
                node: Customer { links: links.remove(&id).unwrap_or_default(), id },
            })
            .collect();
        Ok(CustomerConnection { edges })
    }
}

#[derive(SimpleObject)]
struct CustomerConnection {
    edges: Vec<CustomerEdge>,
}

#[derive(SimpleObject)]
struct CustomerEdge {
    cursor: String,
    node: Customer,
}

struct Customer {
    id: String,
    links: Vec<(String, i64)>,
}

impl Customer {
    fn keys(&self, source: &str) -> Vec<i64> {
        self.links.iter().filter(|(s, _)| s == source).map(|(_, k)| *k).collect()
    }

    /// The CRM record, else the shop account (as c360's `profile`).
    async fn profile(&self, ctx: &Context<'_>) -> async_graphql::Result<(Option<Profile>, Option<Account>)> {
        if let Some(key) = self.keys("crm").into_iter().min()
            && let Some(profile) = loaders(ctx).profiles.load_one(key).await.map_err(failed)?
        {
            return Ok((Some(profile), None));
        }
        let account = match self.keys("shop").into_iter().min() {
            Some(key) => loaders(ctx).accounts.load_one(key).await.map_err(failed)?,
            None => None,
        };
        Ok((None, account))
    }

    async fn crm(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Profile>> {
        Ok(self.profile(ctx).await?.0)
    }
}

#[Object]
impl Customer {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }

    async fn display_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(match self.profile(ctx).await? {
            (Some(c), _) => Some(format!("{} {}", c.first_name.trim(), c.last_name.trim())),
            (None, account) => account.and_then(|a| a.name),
        })
    }

    async fn first_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.crm(ctx).await?.map(|c| c.first_name.trim().to_owned()))
    }

    async fn last_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.crm(ctx).await?.map(|c| c.last_name.trim().to_owned()))
    }

    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let raw = match self.profile(ctx).await? {
            (Some(c), _) => c.email,
            (None, account) => account.and_then(|a| a.email),
        };
        Ok(raw.map(|e| e.trim().to_lowercase()))
    }

    async fn phone(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let raw = match self.profile(ctx).await? {
            (Some(c), _) => c.phone,
            (None, account) => account.and_then(|a| a.phone),
        };
        Ok(raw.map(|p| p.trim().to_owned()))
    }

    async fn birth_date(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<NaiveDate>> {
        Ok(self.crm(ctx).await?.and_then(|c| c.birth_date))
    }

    async fn gender(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.crm(ctx).await?.and_then(|c| c.gender).map(|g| g.to_uppercase()))
    }

    async fn address(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Address>> {
        Ok(self.crm(ctx).await?.map(|c| Address { city: c.city, country: c.country }))
    }

    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<OrderConnection> {
        let keys = self.keys("shop").into_iter().map(|a| (a, i64::from(first)));
        let pages = loaders(ctx).order_pages.load_many(keys).await.map_err(failed)?;
        let mut orders: Vec<Order> = pages.into_values().flatten().collect();
        orders.sort_by_key(|o| std::cmp::Reverse((o.ordered_at, o.id)));
        Ok(OrderConnection::of(orders, first, |o| format!("{}:{}", o.ordered_at.timestamp_micros(), o.id)))
    }

    async fn tickets(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<TicketConnection> {
        let keys = self.keys("helpdesk").into_iter().map(|r| (r, i64::from(first)));
        let pages = loaders(ctx).ticket_pages.load_many(keys).await.map_err(failed)?;
        let mut tickets: Vec<Ticket> = pages.into_values().flatten().collect();
        tickets.sort_by_key(|t| std::cmp::Reverse(t.opened_at));
        Ok(TicketConnection::of(tickets, first, |t| t.opened_at.timestamp_micros().to_string()))
    }

    async fn campaign_responses(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<CampaignResponseConnection> {
        let keys = self.keys("marketing").into_iter().map(|c| (c, i64::from(first)));
        let pages = loaders(ctx).send_pages.load_many(keys).await.map_err(failed)?;
        let mut sends: Vec<CampaignSend> = pages.into_values().flatten().collect();
        sends.sort_by_key(|s| std::cmp::Reverse(s.sent_at));
        Ok(CampaignResponseConnection::of(sends, first, |s| s.sent_at.timestamp_micros().to_string()))
    }
}

#[derive(SimpleObject)]
struct Address {
    city: Option<String>,
    country: Option<String>,
}

/// A page of a customer's rows, newest first.
macro_rules! page {
    ($page:ident, $edge:ident, $node:ty) => {
        #[derive(SimpleObject)]
        struct $page {
            edges: Vec<$edge>,
        }

        #[derive(SimpleObject)]
        struct $edge {
            cursor: String,
            node: $node,
        }

        impl $page {
            fn of(mut rows: Vec<$node>, first: i32, cursor: impl Fn(&$node) -> String) -> Self {
                rows.truncate(usize::try_from(first).unwrap_or(0));
                let edges = rows.into_iter().map(|node| $edge { cursor: URL_SAFE_NO_PAD.encode(cursor(&node)), node });
                $page { edges: edges.collect() }
            }
        }
    };
}

page!(OrderConnection, OrderEdge, Order);
page!(TicketConnection, TicketEdge, Ticket);
page!(CampaignResponseConnection, CampaignResponseEdge, CampaignSend);

#[derive(SimpleObject)]
struct Money {
    amount: String,
    currency: String,
}

fn money(cents: i64, currency: &str) -> Money {
    Money { amount: rust_decimal::Decimal::new(cents, 2).to_string(), currency: currency.to_owned() }
}

#[Object]
impl Order {
    async fn number(&self) -> &str {
        &self.number
    }

    async fn ordered_at(&self) -> DateTime<Utc> {
        self.ordered_at
    }

    async fn status(&self) -> String {
        self.status.to_uppercase()
    }

    async fn total(&self) -> Money {
        money(self.total_cents, &self.currency)
    }

    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Line>> {
        Ok(loaders(ctx).lines.load_one(self.id).await.map_err(failed)?.unwrap_or_default())
    }
}

#[Object]
impl Line {
    async fn sku(&self) -> &str {
        &self.sku
    }

    async fn product_name(&self) -> Option<&str> {
        self.product_name.as_deref()
    }

    async fn quantity(&self) -> i32 {
        self.quantity
    }

    async fn unit_price(&self) -> Money {
        money(self.unit_price_cents, &self.currency)
    }
}

#[Object]
impl Ticket {
    async fn opened_at(&self) -> DateTime<Utc> {
        self.opened_at
    }

    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.closed_at
    }

    async fn category(&self) -> String {
        self.category.to_uppercase()
    }

    async fn status(&self) -> String {
        self.status.to_uppercase()
    }

    async fn subject(&self) -> &str {
        &self.subject
    }

    async fn csat(&self) -> Option<i32> {
        self.csat
    }
}

#[Object(name = "CampaignResponse")]
impl CampaignSend {
    async fn campaign(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Campaign>> {
        loaders(ctx).campaigns.load_one(self.campaign_id).await.map_err(failed)
    }

    async fn sent_at(&self) -> DateTime<Utc> {
        self.sent_at
    }

    async fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.opened_at
    }

    async fn clicked_at(&self) -> Option<DateTime<Utc>> {
        self.clicked_at
    }

    async fn converted_at(&self) -> Option<DateTime<Utc>> {
        self.converted_at
    }
}

// ------------------------------------------------------------------------- serving

type BareSchema = Schema<Query, EmptyMutation, EmptySubscription>;

async fn graphql(
    State(schema): State<BareSchema>,
    Json(request): Json<async_graphql::Request>,
) -> Json<async_graphql::Response> {
    Json(schema.execute(request).await)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let port: u16 = env_or("PORT", 8400);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(env_or("POOL_MAX", 20)).connect(&url).await?;
    let delay = Duration::from_micros(env_or("BARE_DELAY_US", 1_000));
    let schema =
        Schema::build(Query, EmptyMutation, EmptySubscription).data(Loaders::new(&pool, delay)).data(pool).finish();
    let app = axum::Router::new().route("/graphql", post(graphql)).with_state(schema);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
