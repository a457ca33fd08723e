//! The root query: finding customers, and `node` for any object by global id. Thin: the
//! finding, and the row rule, are the loaders' (`crate::loaders::customers`).

use async_graphql::{Context, Enum, ID, InputObject, Interface, Object, Result};
use c360_macros::classified;

use super::alerts::ServiceAlert;
use super::campaign::Campaign;
use super::common::ids;
use super::common::{page_size, request, require, shared, wants_total};
use super::customer::{Customer, CustomerConnection};
use super::ids::{Cursor, Ids, Kind};
use super::insights::{LifecycleStage, Quadrant, RfmSegment, ValueTier};
use super::order::Order;
use super::ticket::Ticket;
use crate::error::ApiError;
use crate::identity::normalize::{EmailAddress, PhoneNumber};
use crate::identity::store::LookupKey;
use crate::insights::store::{Criteria, RankBy};
use crate::loaders::customers::Position;
use crate::sources::SourceName;

/// Any object with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Global id."))]
pub(crate) enum Node {
    Customer(Customer),
    Order(Order),
    Ticket(Ticket),
    Campaign(Campaign),
    ServiceAlert(ServiceAlert),
}

/// Narrows the customer list. Only for viewers who may use one of its fields (insight or
/// internal data): a viewer's schema has no input type left without fields, nor the
/// arguments of one.
#[derive(Debug, Default, InputObject)]
pub(crate) struct CustomerFilter {
    /// Only customers with at least one record in this source (e.g. `SHOP` for buyers).
    /// A filter by the customer's source records: only for viewers who may see internal
    /// data, as `sourceRecords` (elsewhere it is an unknown field).
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Internal))]
    pub(crate) has_source: Option<SourceName>,
    /// Only customers in this RFM segment under the current insight model. Like every
    /// insight filter, only for viewers who may see insights (elsewhere an unknown field);
    /// `MODEL_NOT_READY` before the first fit.
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Insight))]
    pub(crate) rfm_segment: Option<RfmSegment>,
    /// Only customers in this lifecycle stage (customers who had not bought by the
    /// model's date are exploring).
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Insight))]
    pub(crate) lifecycle_stage: Option<LifecycleStage>,
    /// Only customers in this value tier (customers who had not bought are tail).
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Insight))]
    pub(crate) value_tier: Option<ValueTier>,
    /// Only customers with a churn risk at least this (0 to 1).
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Insight))]
    pub(crate) min_churn_risk: Option<f64>,
    /// Only customers whose predicted 12-month lifetime value is at least this.
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Insight))]
    pub(crate) min_predicted_clv: Option<f64>,
    /// Only customers in this value × satisfaction quadrant.
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Insight))]
    pub(crate) quadrant: Option<Quadrant>,
}

impl CustomerFilter {
    /// The insight criteria, checked.
    fn criteria(&self) -> Result<Criteria, ApiError> {
        if self.min_churn_risk.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            return Err(ApiError::BadInput("`minChurnRisk` must be between 0 and 1".into()));
        }
        Ok(Criteria {
            segment: self.rfm_segment.map(Into::into),
            lifecycle: self.lifecycle_stage.map(Into::into),
            value_tier: self.value_tier.map(Into::into),
            min_churn_risk: self.min_churn_risk,
            min_clv: self.min_predicted_clv,
            quadrant: self.quadrant.map(Into::into),
            order: None,
        })
    }
}

/// Lists customers ranked by an insight under the current model (only customers who have
/// it; then by golden id). Set one field. Of class insight, like the insight filters.
#[derive(Debug, Default, InputObject)]
pub(crate) struct CustomerOrder {
    /// By predicted 12-month lifetime value.
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Insight))]
    pub(crate) predicted_clv: Option<OrderDirection>,
    /// By churn risk.
    #[graphql(directive = super::privacy::lookup::apply(super::privacy::PrivacyClass::Insight))]
    pub(crate) churn_risk: Option<OrderDirection>,
}

/// Which way a list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum OrderDirection {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl CustomerOrder {
    fn rank(&self) -> Result<(RankBy, bool), ApiError> {
        let descending = |d: OrderDirection| d == OrderDirection::Desc;
        match (self.predicted_clv, self.churn_risk) {
            (Some(d), None) => Ok((RankBy::PredictedClv, descending(d))),
            (None, Some(d)) => Ok((RankBy::ChurnRisk, descending(d))),
            _ => Err(ApiError::BadInput("`orderBy` takes exactly one field".into())),
        }
    }
}

pub(crate) struct CustomerQuery;

/// The one customer with `key` that the viewer may see, if any; `AMBIGUOUS_MATCH` when
/// the viewer may see several.
async fn one_customer(ctx: &Context<'_>, key: LookupKey, what: &'static str) -> Result<Option<Customer>, ApiError> {
    let mut found = request(ctx).loaders.customers().by_key(key).await?;
    match found.len() {
        0 | 1 => Ok(found.pop().map(Customer::from)),
        _ => Err(ApiError::AmbiguousMatch(what)),
    }
}

#[classified]
#[Object]
impl CustomerQuery {
    /// A customer by global id; null when there is no such customer.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Customer>> {
        require(ctx, READ)?;
        let key = ids(ctx).parse_id_of(Kind::Customer, &id)?;
        Ok(Customer::load(ctx, key).await?)
    }

    /// Customers in a stable order (oldest golden id first), a page at a time.
    async fn customers(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        filter: Option<CustomerFilter>,
        order_by: Option<CustomerOrder>,
    ) -> Result<CustomerConnection> {
        require(ctx, READ)?;
        let first = page_size(ctx, first)?;
        let filter = filter.unwrap_or_default();
        let mut criteria = filter.criteria()?;
        // A group picked by its insights is a group as an aggregate's: for viewers who may
        // not see who customers are (and see every customer: a partner's list is its own
        // consenting customers, and it gets no aggregates), one of fewer than k customers
        // is not listed.
        let k = super::insights::min_group(ctx);
        let filtered = !criteria.is_empty();
        criteria.order = order_by.as_ref().map(CustomerOrder::rank).transpose()?;
        let loaders = &request(ctx).loaders;
        let narrowing = match criteria.is_empty() {
            true => None,
            false => Some(criteria.narrowing(&loaders.insight_model().await?.id)),
        };
        let finder = loaders.customers();
        let grouped = k > 1 && filtered && !finder.consent_ordered();
        let ids = ids(ctx);
        let after = match after.as_deref() {
            None => None,
            Some(c) if finder.consent_ordered() => Some(Position::Consent(ids.parse_consent_cursor(c)?)),
            Some(c) if criteria.order.is_some() => {
                let (key, id) = ids.parse_ranked_cursor(c)?;
                Some(Position::Ranked(key, id))
            }
            Some(c) => Some(Position::Id(ids.parse_customer_cursor(c)?)),
        };
        let page = finder
            .page(first as usize, after, filter.has_source, narrowing.as_ref(), grouped || wants_total(ctx))
            .await?;
        if grouped && (1..k).contains(&page.total) {
            return Err(ApiError::GroupTooSmall(k).into());
        }
        let cursors: std::collections::HashMap<String, Cursor> = page
            .customers
            .iter()
            .map(|(c, position)| {
                let cursor = match position {
                    Position::Id(id) => Ids::customer_cursor(id),
                    Position::Consent(k) => Ids::consent_cursor(*k),
                    Position::Ranked(key, id) => Ids::ranked_cursor(*key, id),
                };
                (c.id.clone(), cursor)
            })
            .collect();
        let customers = page.customers.into_iter().map(|(c, _)| Customer::from(c)).collect();
        Ok(CustomerConnection::from_items(customers, first, |c| cursors[&c.id].clone(), page.total))
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
        Ok(one_customer(ctx, LookupKey::Email(email.to_string()), "this email address").await?)
    }

    /// The customer with this phone number, compared in E.164 (a number without country
    /// code is read in the hub's default region). Null when none; `AMBIGUOUS_MATCH` when
    /// the number is shared. Only for viewers who may see contact data (masked or not).
    #[lookup(contact)]
    async fn customer_by_phone(&self, ctx: &Context<'_>, phone: String) -> Result<Option<Customer>> {
        require(ctx, READ)?;
        let region = &shared(ctx).config.identity.default_region;
        // Not the process-wide cache: what one viewer types must not change how fast
        // another viewer's lookup answers.
        let Some(phone) = PhoneNumber::parse(&phone, Some(region)) else {
            return Err(ApiError::BadInput("`phone` is not a phone number".into()).into());
        };
        Ok(one_customer(ctx, LookupKey::Phone(phone.to_string()), "this phone number").await?)
    }

    /// The customer a source system's record belongs to, by that system's own key
    /// (e.g. a shop account id; leading zeros do not matter). Null when the key is unknown. Only for viewers who may
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
        // Every source numbers its records: `00004` and `4` are the same key.
        let key = key.trim();
        let key = key.parse::<i64>().map_or_else(|_| key.to_owned(), |k| k.to_string());
        Ok(one_customer(ctx, LookupKey::Source(source, key), "this source key").await?)
    }

    /// Any object by global id; null when it does not exist.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        require(ctx, READ)?;
        let (kind, key) = ids(ctx).parse_global_id(&id)?;
        // A kind of object the viewer's schema does not have (orders, for a viewer who may
        // not see them) does not exist for it: decided before any read.
        if !ctx.schema_env.registry.types.contains_key(&kind.to_string()) {
            return Ok(None);
        }
        let loaders = &request(ctx).loaders;
        let int_key = || key.parse::<i64>().map_err(|_| ApiError::InvalidId(id.to_string()));
        Ok(match kind {
            Kind::Customer => Customer::load(ctx, key.clone()).await?.map(Node::Customer),
            Kind::Order => {
                let order = loaders.orders.load_one(int_key()?).await?;
                let owner = order.as_ref().map(|o| (SourceName::Shop, o.account_id));
                loaders.customers().owner_admitted(owner).await?.then_some(()).and(order).map(|o| Node::Order(Order(o)))
            }
            Kind::Ticket => {
                let ticket = loaders.tickets.load_one(int_key()?).await?;
                let owner = ticket.as_ref().map(|t| (SourceName::Helpdesk, t.requester_id));
                loaders
                    .customers()
                    .owner_admitted(owner)
                    .await?
                    .then_some(())
                    .and(ticket)
                    .map(|t| Node::Ticket(Ticket(t)))
            }
            // Campaigns are the company's, not a customer's: no row rule.
            Kind::Campaign => loaders.campaigns.load_one(int_key()?).await?.map(|c| Node::Campaign(Campaign(c))),
            Kind::ServiceAlert => super::alerts::load(ctx, &key).await?.map(Node::ServiceAlert),
        })
    }
}

/// The scope every customer query needs.
const READ: &str = "customers:read";
