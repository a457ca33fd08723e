//! The root query: finding customers, and `node` for any object by global id.

use async_graphql::{Context, ID, InputObject, Interface, Object, Result};
use c360_macros::classified;

use super::campaign::Campaign;
use super::common::{page_size, request, shared, wants_total};
use super::customer::{Customer, CustomerConnection};
use super::ids::{self, Kind};
use super::order::Order;
use super::ticket::Ticket;
use crate::auth::Role;
use crate::error::ApiError;
use crate::identity::normalize::{EmailAddress, PhoneNumber};
use crate::identity::store;
use crate::sources::SourceName;
use crate::sources::crm::{self, ConsentScope};

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

/// The one customer among `links` that the viewer may see, if any; `AMBIGUOUS_MATCH`
/// when the viewer may see several. (A partner is never told that a key is shared with
/// customers it cannot see.)
async fn one_customer(
    ctx: &Context<'_>,
    links: Vec<store::Link>,
    what: &'static str,
) -> Result<Option<Customer>, ApiError> {
    let mut customers: Vec<Customer> =
        store::group_by_customer(links).into_iter().map(|(id, links)| Customer { id, links: links.into() }).collect();
    if request(ctx).viewer.partner.is_some() {
        // One consent lookup for all candidates (the probe when there are none).
        let mut keys: Vec<i64> = customers.iter().flat_map(|c| c.keys(SourceName::Crm)).collect();
        if keys.is_empty() {
            keys.push(NO_CRM_RECORD);
        }
        let consented = request(ctx).loaders.consents.load_many(keys).await?;
        customers.retain(|c| c.keys(SourceName::Crm).iter().any(|k| consented.contains_key(k)));
    }
    match customers.len() {
        0 | 1 => Ok(customers.pop()),
        _ => Err(ApiError::AmbiguousMatch(what)),
    }
}

#[classified]
#[Object]
impl CustomerQuery {
    /// A customer by global id; null when there is no such customer.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Customer>> {
        require(ctx, READ)?;
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
        require(ctx, READ)?;
        let first = page_size(ctx, first)?;
        let filter = filter.unwrap_or_default();
        if let Some(scope) = consent_scope(ctx) {
            return Ok(partner_page(ctx, &scope, first, after.as_deref(), filter.has_source).await?);
        }
        let after = after.as_deref().map(ids::parse_customer_cursor).transpose()?;
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
    /// Only for viewers who may see contact data (masked or not).
    #[lookup(contact)]
    async fn customer_by_email(&self, ctx: &Context<'_>, email: String) -> Result<Option<Customer>> {
        require(ctx, READ)?;
        let Some(email) = EmailAddress::parse(&email) else {
            return Err(ApiError::BadInput("`email` is not an email address".into()).into());
        };
        let hub = &shared(ctx).sources.hub;
        let links = store::links_by_email(hub, &request(ctx).trace, email.as_str())
            .await
            .map_err(|e| ApiError::from_sql(hub.name, &e))?;
        Ok(one_customer(ctx, links, "this email address").await?)
    }

    /// The customer with this phone number, compared in E.164 (a number without country
    /// code is read in the hub's default region). Null when none; `AMBIGUOUS_MATCH` when
    /// the number is shared. Only for viewers who may see contact data (masked or not).
    #[lookup(contact)]
    async fn customer_by_phone(&self, ctx: &Context<'_>, phone: String) -> Result<Option<Customer>> {
        require(ctx, READ)?;
        let region = &shared(ctx).config.identity.default_region;
        let Some(phone) = PhoneNumber::parse(&phone, Some(region)) else {
            return Err(ApiError::BadInput("`phone` is not a phone number".into()).into());
        };
        let hub = &shared(ctx).sources.hub;
        let links = store::links_by_phone(hub, &request(ctx).trace, &phone.to_string())
            .await
            .map_err(|e| ApiError::from_sql(hub.name, &e))?;
        Ok(one_customer(ctx, links, "this phone number").await?)
    }

    /// The customer a source system's record belongs to, by that system's own key
    /// (e.g. a shop account id). Null when the key is unknown. Only for viewers who may
    /// see internal data (source records).
    #[lookup(internal)]
    async fn customer_by_source_key(
        &self,
        ctx: &Context<'_>,
        source: SourceName,
        key: String,
    ) -> Result<Option<Customer>> {
        require(ctx, READ)?;
        if key.len() > 64 {
            return Ok(None);
        }
        let hub = &shared(ctx).sources.hub;
        let links = store::links_by_source_key(hub, &request(ctx).trace, source, key.trim())
            .await
            .map_err(|e| ApiError::from_sql(hub.name, &e))?;
        Ok(one_customer(ctx, links, "this source key").await?)
    }

    /// Any object by global id; null when it does not exist.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        require(ctx, READ)?;
        let (kind, key) = ids::parse_global_id(&id)?;
        let loaders = &request(ctx).loaders;
        let int_key = || key.parse::<i64>().map_err(|_| ApiError::InvalidId(id.to_string()));
        Ok(match kind {
            Kind::Customer => load_customer(ctx, key.clone()).await?.map(Node::Customer),
            Kind::Order => {
                let order = loaders.orders.load_one(int_key()?).await?;
                let owner = order.as_ref().map(|o| (SourceName::Shop, o.account_id));
                owned_by_admitted(ctx, owner).await?.then_some(()).and(order).map(|o| Node::Order(Order(o)))
            }
            Kind::Ticket => {
                let ticket = loaders.tickets.load_one(int_key()?).await?;
                let owner = ticket.as_ref().map(|t| (SourceName::Helpdesk, t.requester_id));
                owned_by_admitted(ctx, owner).await?.then_some(()).and(ticket).map(|t| Node::Ticket(Ticket(t)))
            }
            // Campaigns are the company's, not a customer's: no row rule.
            Kind::Campaign => loaders.campaigns.load_one(int_key()?).await?.map(|c| Node::Campaign(Campaign(c))),
        })
    }
}

/// The scope every customer query needs.
const READ: &str = "customers:read";

pub(crate) fn require(ctx: &Context<'_>, scope: &'static str) -> Result<(), ApiError> {
    if request(ctx).viewer.has_scope(scope) { Ok(()) } else { Err(ApiError::Forbidden(scope)) }
}

/// For operations only admins may run, whatever the scopes.
pub(crate) fn admin_only(ctx: &Context<'_>) -> Result<(), ApiError> {
    if request(ctx).viewer.role == Role::Admin { Ok(()) } else { Err(ApiError::AdminOnly) }
}

/// The partner consent scope of the viewer; `None` for everyone but partners.
fn consent_scope(ctx: &Context<'_>) -> Option<ConsentScope> {
    let viewer = &request(ctx).viewer;
    viewer.partner.clone().map(|partner| ConsentScope { partner, purpose: viewer.purpose.clone() })
}

/// The row rule. A partner sees a customer only when one of the customer's CRM records has
/// an active consent for the partner (and the token's purpose); anyone else sees every
/// customer. A customer the partner may not see is `None`, as one that does not exist, and
/// costs the same: the consent lookup runs either way.
async fn admit(ctx: &Context<'_>, customer: Option<Customer>) -> Result<Option<Customer>, ApiError> {
    let rc = request(ctx);
    if rc.viewer.partner.is_none() {
        return Ok(customer);
    }
    let mut keys = customer.as_ref().map(|c| c.keys(SourceName::Crm)).unwrap_or_default();
    if keys.is_empty() {
        keys.push(NO_CRM_RECORD);
    }
    let consented = rc.loaders.consents.load_many(keys).await?;
    Ok(customer.filter(|_| !consented.is_empty()))
}

/// A CRM key no record has (ids are positive): the probe for customers without one.
const NO_CRM_RECORD: i64 = -1;

/// Whether the customer owning a source record (an order's account, a ticket's requester)
/// may be seen; `None` (no such record) is `false`.
async fn owned_by_admitted(ctx: &Context<'_>, owner: Option<(SourceName, i64)>) -> Result<bool, ApiError> {
    let rc = request(ctx);
    if rc.viewer.partner.is_none() {
        return Ok(owner.is_some());
    }
    let links = match owner {
        Some((source, key)) => {
            let hub = &shared(ctx).sources.hub;
            store::links_by_source_key(hub, &rc.trace, source, &key.to_string())
                .await
                .map_err(|e| ApiError::from_sql(hub.name, &e))?
        }
        None => Vec::new(),
    };
    let customer =
        store::group_by_customer(links).into_iter().next().map(|(id, links)| Customer { id, links: links.into() });
    Ok(admit(ctx, customer).await?.is_some())
}

/// A partner's customer list: customers with an active consent, in the order of the CRM
/// record that carries it (a customer is listed once, under its lowest consenting record).
/// The count, when asked for, counts the same customers.
async fn partner_page(
    ctx: &Context<'_>,
    scope: &ConsentScope,
    first: i32,
    after: Option<&str>,
    has_source: Option<SourceName>,
) -> Result<CustomerConnection, ApiError> {
    let mut cursor = after.map(ids::parse_consent_cursor).transpose()?;
    let sources = &shared(ctx).sources;
    let rc = request(ctx);
    let now = chrono::Utc::now();
    let want = first as usize + 1;
    let crm_fail = |e: sqlx::Error| ApiError::from_sql(sources.crm.name, &e);
    let hub_fail = |e: sqlx::Error| ApiError::from_sql(sources.hub.name, &e);
    let mut listed: Vec<(i64, Customer)> = Vec::new();
    while listed.len() < want {
        let batch = (want * 2) as i64;
        let keys =
            crm::consenting_page(&sources.crm, &rc.trace, scope, now, cursor, Some(batch)).await.map_err(crm_fail)?;
        let Some(&last) = keys.last() else { break };
        let customers = customers_of_crm_keys(ctx, &keys).await?;
        for (position, customer) in customers {
            if has_source.is_none_or(|s| !customer.keys(s).is_empty()) {
                listed.push((position, customer));
            }
        }
        cursor = Some(last);
        if (keys.len() as i64) < batch {
            break;
        }
    }
    listed.sort_by_key(|(position, _)| *position);
    let total = if wants_total(ctx) {
        let all = crm::consenting_page(&sources.crm, &rc.trace, scope, now, None, None).await.map_err(crm_fail)?;
        let mut seen = std::collections::HashSet::new();
        let chunk = sources.hub.engine.max_params() - 1;
        for keys in all.chunks(chunk) {
            let keys: Vec<String> = keys.iter().map(i64::to_string).collect();
            let links =
                store::links_by_source_keys(&sources.hub, &rc.trace, SourceName::Crm, &keys).await.map_err(hub_fail)?;
            for (id, links) in store::group_by_customer(links) {
                if has_source.is_none_or(|s| links.iter().any(|l| l.source == s.to_string())) {
                    seen.insert(id);
                }
            }
        }
        seen.len() as i64
    } else {
        0
    };
    let positions: std::collections::HashMap<String, i64> = listed.iter().map(|(p, c)| (c.id.clone(), *p)).collect();
    let customers = listed.into_iter().map(|(_, c)| c).collect();
    Ok(CustomerConnection::from_items(customers, first, |c| ids::consent_cursor(positions[&c.id]), total))
}

/// The customers owning consenting CRM records `keys` (ascending), each with the key it is
/// listed under: its lowest consenting CRM key, when that key is among `keys` (else it was
/// listed on an earlier page).
async fn customers_of_crm_keys(ctx: &Context<'_>, keys: &[i64]) -> Result<Vec<(i64, Customer)>, ApiError> {
    let sources = &shared(ctx).sources;
    let rc = request(ctx);
    let texts: Vec<String> = keys.iter().map(i64::to_string).collect();
    let links = store::links_by_source_keys(&sources.hub, &rc.trace, SourceName::Crm, &texts)
        .await
        .map_err(|e| ApiError::from_sql(sources.hub.name, &e))?;
    let customers: Vec<Customer> =
        store::group_by_customer(links).into_iter().map(|(id, links)| Customer { id, links: links.into() }).collect();
    // Other CRM records of these customers may consent too: the lowest consenting one counts.
    let others: Vec<i64> =
        customers.iter().flat_map(|c| c.keys(SourceName::Crm)).filter(|k| keys.binary_search(k).is_err()).collect();
    let consented_others =
        if others.is_empty() { Default::default() } else { rc.loaders.consents.load_many(others).await? };
    Ok(customers
        .into_iter()
        .filter_map(|c| {
            let lowest = c
                .keys(SourceName::Crm)
                .into_iter()
                .filter(|k| keys.binary_search(k).is_ok() || consented_others.contains_key(k))
                .min()?;
            keys.binary_search(&lowest).is_ok().then_some((lowest, c))
        })
        .collect())
}

pub(crate) async fn load_customer(ctx: &Context<'_>, key: String) -> Result<Option<Customer>, ApiError> {
    if uuid::Uuid::parse_str(&key).is_err() {
        return Err(ApiError::InvalidId(ids::global_id(Kind::Customer, &key).to_string()));
    }
    let links = request(ctx).loaders.links.load_one(key).await?;
    let customer = links.and_then(|links| {
        let id = links.first()?.customer_id.clone();
        Some(Customer { id, links })
    });
    admit(ctx, customer).await
}
