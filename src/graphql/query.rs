//! The root query: finding customers, and `node` for any object by global id.

use async_graphql::{Context, ID, InputObject, Interface, Object, Result};

use super::campaign::Campaign;
use super::common::{page_size, request, shared, wants_total};
use super::customer::{Customer, CustomerConnection};
use super::ids::{self, Kind};
use super::order::Order;
use super::ticket::Ticket;
use crate::error::ApiError;
use crate::identity::normalize::EmailAddress;
use crate::identity::store;
use crate::sources::SourceName;

/// Any object with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Global id."))]
pub enum Node {
    Customer(Customer),
    Order(Order),
    Ticket(Ticket),
    Campaign(Campaign),
}

/// Narrows the customer list.
#[derive(Debug, Default, InputObject)]
pub struct CustomerFilter {
    /// Only customers with at least one record in this source (e.g. `SHOP` for buyers).
    pub has_source: Option<SourceName>,
}

pub struct CustomerQuery;

/// Turns the links of one customer into the customer, if any.
fn one_customer(links: Vec<store::Link>, what: &'static str) -> Result<Option<Customer>, ApiError> {
    let mut groups = store::group_by_customer(links);
    match groups.len() {
        0 => Ok(None),
        1 => {
            let (id, links) = groups.remove(0);
            Ok(Some(Customer { id, links: links.into() }))
        }
        _ => Err(ApiError::AmbiguousMatch(what)),
    }
}

#[Object]
impl CustomerQuery {
    /// A customer by global id; null when there is no such customer.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Customer>> {
        let key = ids::parse_id_of(Kind::Customer, &id)?;
        Ok(load_customer(ctx, key).await?)
    }

    /// Customers in a stable order (oldest golden id first), a page at a time.
    async fn customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        filter: Option<CustomerFilter>,
    ) -> Result<CustomerConnection> {
        let first = page_size(ctx, first)?;
        let after = after.as_deref().map(ids::parse_customer_cursor).transpose()?;
        let filter = filter.unwrap_or_default();
        let hub = &shared(ctx).sources.hub;
        let rc = request(ctx);
        let fail = |e: sqlx::Error| ApiError::from_sql(hub.name, &e);
        let links = store::customers_page(hub, &rc.trace, after.as_deref(), i64::from(first) + 1, filter.has_source)
            .await
            .map_err(fail)?;
        let total = if wants_total(ctx) {
            store::count_customers(hub, &rc.trace, filter.has_source).await.map_err(fail)?
        } else {
            0
        };
        let customers: Vec<Customer> = store::group_by_customer(links)
            .into_iter()
            .map(|(id, links)| Customer { id, links: links.into() })
            .collect();
        Ok(CustomerConnection::from_items(customers, first, |c| ids::customer_cursor(&c.id), total))
    }

    /// The customer with this email address, compared after normalisation (case, white
    /// space, Gmail dots). Null when none; `AMBIGUOUS_MATCH` when the address is shared.
    async fn customer_by_email(&self, ctx: &Context<'_>, email: String) -> Result<Option<Customer>> {
        let Some(email) = EmailAddress::parse(&email) else {
            return Err(ApiError::BadInput("`email` is not an email address".into()).into());
        };
        let hub = &shared(ctx).sources.hub;
        let links = store::links_by_email(hub, &request(ctx).trace, email.as_str())
            .await
            .map_err(|e| ApiError::from_sql(hub.name, &e))?;
        Ok(one_customer(links, "this email address")?)
    }

    /// The customer a source system's record belongs to, by that system's own key
    /// (e.g. a shop account id). Null when the key is unknown.
    async fn customer_by_source_key(
        &self,
        ctx: &Context<'_>,
        source: SourceName,
        key: String,
    ) -> Result<Option<Customer>> {
        if key.len() > 64 {
            return Ok(None);
        }
        let hub = &shared(ctx).sources.hub;
        let links = store::links_by_source_key(hub, &request(ctx).trace, source, key.trim())
            .await
            .map_err(|e| ApiError::from_sql(hub.name, &e))?;
        Ok(one_customer(links, "this source key")?)
    }

    /// Any object by global id; null when it does not exist.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let (kind, key) = ids::parse_global_id(&id)?;
        let loaders = &request(ctx).loaders;
        let int_key = || key.parse::<i64>().map_err(|_| ApiError::InvalidId(id.to_string()));
        Ok(match kind {
            Kind::Customer => load_customer(ctx, key.clone()).await?.map(Node::Customer),
            Kind::Order => loaders.orders.load_one(int_key()?).await?.map(|o| Node::Order(Order(o))),
            Kind::Ticket => loaders.tickets.load_one(int_key()?).await?.map(|t| Node::Ticket(Ticket(t))),
            Kind::Campaign => loaders.campaigns.load_one(int_key()?).await?.map(|c| Node::Campaign(Campaign(c))),
        })
    }
}

async fn load_customer(ctx: &Context<'_>, key: String) -> Result<Option<Customer>, ApiError> {
    if uuid::Uuid::parse_str(&key).is_err() {
        return Err(ApiError::InvalidId(ids::global_id(Kind::Customer, &key).to_string()));
    }
    let links = request(ctx).loaders.links.load_one(key).await?;
    Ok(links.and_then(|links| {
        let id = links.first()?.customer_id.clone();
        Some(Customer { id, links })
    }))
}
