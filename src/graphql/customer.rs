//! The golden customer: one person across the four sources.
//!
//! A `Customer` is built with its identity links already loaded, so every field goes
//! straight to the batched loader of its source, keyed by that source's own keys.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use c360_macros::classified;
use chrono::{DateTime, NaiveDate, Utc};

use super::campaign::CampaignResponse;
use super::campaign::CampaignResponseConnection;
use super::common::ids;
use super::common::{Money, connection, page_size, request, shared, wants_total};
use super::crm::{Consent, Note, NoteConnection};
use super::ids::{Ids, Kind};
use super::insights::CustomerInsights;
use super::order::{Order, OrderConnection};
use super::privacy::{MaskValue, Subject};
use super::ticket::{Ticket, TicketConnection};
use crate::error::ApiError;
use crate::identity::normalize::PhoneNumber;
use crate::identity::store::{self, Link};
use crate::policy::MaskFormat;
use crate::sources::crm::CrmCustomer;
use crate::sources::shop::Account;
use crate::sources::{Page, SourceName};

/// Orders that count as bought (not cancelled, not sent back).
const SPENT: fn(&str) -> bool = |status| !matches!(status, "cancelled" | "returned");

/// A customer: the records of one person in the CRM, shop, helpdesk and marketing,
/// resolved into one identity.
#[derive(Clone)]
pub(crate) struct Customer {
    /// Golden id in the hub store.
    pub(crate) id: String,
    /// The source records of this customer, ordered by source and key.
    pub(crate) links: Arc<Vec<Link>>,
}

impl Customer {
    /// The keys this customer has in one source (all sources use integer keys).
    pub(crate) fn keys(&self, source: SourceName) -> Vec<i64> {
        store::source_keys(&self.links, source)
    }

    /// The CRM record that speaks for the profile (the one that founded the customer,
    /// else the lowest CRM key; later ones are duplicates), else the shop account that
    /// speaks for customers the CRM does not know (guests). The account is asked for only
    /// when there is no CRM record: a profile costs one statement, and a page of customers
    /// one more when guests are on it (one for all of them).
    async fn profile(&self, ctx: &Context<'_>) -> Result<(Option<CrmCustomer>, Option<Account>), ApiError> {
        let loaders = &request(ctx).loaders;
        if let Some(key) = self.primary_crm_key()
            && let Some(crm) = loaders.crm_customers.load_one(key).await?
        {
            return Ok((Some(crm), None));
        }
        let account = match self.keys(SourceName::Shop).into_iter().min() {
            Some(key) => loaders.accounts.load_one(key).await?,
            None => None,
        };
        Ok((None, account))
    }

    /// The CRM record that speaks for the customer: the one that founded it, else the
    /// lowest CRM key (later ones are duplicates).
    pub(crate) fn primary_crm_key(&self) -> Option<i64> {
        let crm = SourceName::Crm.to_string();
        let mut links: Vec<&Link> = self.links.iter().filter(|l| l.source == crm).collect();
        links.sort_by_key(|l| (l.rule != "anchor", l.source_key.parse::<i64>().unwrap_or(i64::MAX)));
        links.first().and_then(|l| l.source_key.parse().ok())
    }

    /// A customer by golden id, as the viewer may see it; `INVALID_ID` for a malformed one.
    pub(crate) async fn load(ctx: &Context<'_>, key: String) -> Result<Option<Customer>, ApiError> {
        if uuid::Uuid::parse_str(&key).is_err() {
            return Err(ApiError::InvalidId(ids(ctx).global_id(Kind::Customer, &key).to_string()));
        }
        Ok(request(ctx).loaders.customers().by_id(key).await?.map(Customer::from))
    }

    async fn crm(&self, ctx: &Context<'_>) -> Result<Option<CrmCustomer>, ApiError> {
        Ok(self.profile(ctx).await?.0)
    }

    fn first(ctx: &Context<'_>, first: i32) -> Result<Page, ApiError> {
        let first = page_size(ctx, first)?;
        Ok(Page { limit: i64::from(first) + 1, before: None })
    }
}

connection!(CustomerConnection, CustomerEdge, Customer, "customer");

impl From<crate::loaders::customers::Golden> for Customer {
    fn from(golden: crate::loaders::customers::Golden) -> Self {
        Customer { id: golden.id, links: golden.links }
    }
}

impl Subject for Customer {
    fn subject_id(&self) -> &str {
        &self.id
    }
}

/// Runs `load` only when `wanted`; otherwise an empty result without a statement.
async fn when<K, V, F>(wanted: bool, load: F) -> Result<std::collections::HashMap<K, V>, ApiError>
where
    F: std::future::Future<Output = Result<std::collections::HashMap<K, V>, ApiError>>,
{
    if wanted { load.await } else { Ok(std::collections::HashMap::new()) }
}

/// A postal address.
#[derive(Debug, Clone)]
pub(crate) struct Address {
    /// The customer it belongs to (the audit files reads under them).
    customer_id: String,
    street: Option<String>,
    postal_code: Option<String>,
    city: Option<String>,
    country: Option<String>,
}

impl Subject for Address {
    fn subject_id(&self) -> &str {
        &self.customer_id
    }
}

/// Masked to its city and country, it stays: its street and postal code mask themselves.
impl MaskValue for Address {
    fn mask(self, format: MaskFormat) -> Option<Self> {
        matches!(format, MaskFormat::CityCountry | MaskFormat::Keep).then_some(self)
    }
}

/// A postal address. Masked, it keeps only city and country.
#[classified]
#[Object]
impl Address {
    /// Street and house number.
    #[class(contact, mask = remove)]
    async fn street(&self) -> Option<String> {
        self.street.clone()
    }

    /// Postal code.
    #[class(contact, mask = remove)]
    async fn postal_code(&self) -> Option<String> {
        self.postal_code.clone()
    }

    /// City.
    async fn city(&self) -> Option<&str> {
        self.city.as_deref()
    }

    /// ISO 3166-1 alpha-2.
    async fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
}

/// Gender as the customer gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub(crate) enum Gender {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Diverse (neither, or both).
    Diverse,
}

impl MaskValue for Gender {}

/// Purchases across all of the customer's shop accounts.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct PurchaseSummary {
    /// Orders that were neither cancelled nor returned.
    pub(crate) order_count: i64,
    /// Orders cancelled before shipping.
    pub(crate) cancelled_count: i64,
    /// Orders delivered and sent back.
    pub(crate) returned_count: i64,
    /// What those orders came to, one entry per currency (most customers have one).
    pub(crate) total_spent: Vec<Money>,
    #[graphql(skip)]
    pub(crate) first_order_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub(crate) last_order_at: Option<DateTime<Utc>>,
}

#[classified]
#[ComplexObject]
impl PurchaseSummary {
    /// The first of those orders; null when none.
    #[class(timing, mask = month)]
    async fn first_order_at(&self) -> Option<DateTime<Utc>> {
        self.first_order_at
    }

    /// The latest of those orders; null when none.
    #[class(timing, mask = month)]
    async fn last_order_at(&self) -> Option<DateTime<Utc>> {
        self.last_order_at
    }
}

/// The customer's contact with service, across all their helpdesk requesters.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct ServiceSummary {
    /// Tickets opened, in every status.
    pub(crate) ticket_count: i64,
    /// Tickets open or pending.
    pub(crate) open_tickets: i64,
    /// Tickets of the category complaint.
    pub(crate) complaint_count: i64,
    /// Mean satisfaction score (1..5) over answered surveys; null when none.
    pub(crate) average_csat: Option<f64>,
    /// How many surveys were answered.
    pub(crate) csat_responses: i64,
}

/// How a source record came to belong to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum MatchRule {
    /// The record matched nobody and founded this customer.
    Anchor,
    /// Same normalised email address.
    Email,
    /// Same phone number (E.164).
    Phone,
}

/// A record of this customer in a source system.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct SourceRecord {
    /// The system the record is in.
    pub(crate) source: SourceName,
    /// The record's key in that system (e.g. the shop account id).
    pub(crate) key: String,
    /// Which rule linked it to the customer.
    pub(crate) matched_by: MatchRule,
    /// When it was linked.
    pub(crate) linked_at: DateTime<Utc>,
}

/// A customer: the records of one person in the CRM, shop, helpdesk and marketing,
/// resolved into one identity.
#[classified]
#[Object]
impl Customer {
    /// Global id (use with `customer(id:)` and `node`); stable across merges.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> ID {
        ids(ctx).global_id(Kind::Customer, &self.id)
    }

    /// Full name from the CRM, else as given at checkout.
    #[class(identity, mask = initials)]
    async fn display_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(match self.profile(ctx).await? {
            (Some(c), _) => Some(format!("{} {}", c.first_name.trim(), c.last_name.trim())),
            (None, account) => account.and_then(|a| a.name),
        })
    }

    /// First name from the CRM; null for customers the CRM does not know.
    #[class(identity, mask = initials)]
    async fn first_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.crm(ctx).await?.map(|c| c.first_name.trim().to_owned()))
    }

    /// Last name from the CRM; null for customers the CRM does not know.
    #[class(identity, mask = initials)]
    async fn last_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.crm(ctx).await?.map(|c| c.last_name.trim().to_owned()))
    }

    /// Email address (trimmed, lowercase) from the CRM, else from the shop.
    #[class(contact, mask = email)]
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let raw = match self.profile(ctx).await? {
            (Some(c), _) => c.email,
            (None, account) => account.and_then(|a| a.email),
        };
        let email = raw.map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
        Ok(email)
    }

    /// Phone number in E.164 (`+4915123456789`) from the CRM, else from the shop.
    #[class(contact, mask = phone)]
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let (raw, country) = match self.profile(ctx).await? {
            (Some(c), _) => (c.phone, c.country),
            (None, account) => account.map(|a| (a.phone, a.country)).unwrap_or_default(),
        };
        let region = country.unwrap_or_else(|| shared(ctx).config.identity.default_region.clone());
        let phone = raw.map(|p| {
            PhoneNumber::parse_cached(&p, Some(&region)).map(|n| n.to_string()).unwrap_or_else(|| p.trim().to_owned())
        });
        Ok(phone)
    }

    /// Date of birth. Masked, it is null: the year alone is `birthYear`.
    #[class(sensitive, mask = remove)]
    async fn birth_date(&self, ctx: &Context<'_>) -> Result<Option<NaiveDate>> {
        Ok(self.crm(ctx).await?.and_then(|c| c.birth_date))
    }

    /// Year of birth, for cohorts: shown also where the policy masks the birth date.
    #[class(sensitive, mask = keep)]
    async fn birth_year(&self, ctx: &Context<'_>) -> Result<Option<i32>> {
        Ok(self.crm(ctx).await?.and_then(|c| c.birth_date).map(|d| chrono::Datelike::year(&d)))
    }

    /// Gender as given in the CRM; null when not given.
    #[class(sensitive, mask = remove)]
    async fn gender(&self, ctx: &Context<'_>) -> Result<Option<Gender>> {
        let gender = self.crm(ctx).await?.and_then(|c| match c.gender.as_deref() {
            Some("female") => Some(Gender::Female),
            Some("male") => Some(Gender::Male),
            Some("diverse") => Some(Gender::Diverse),
            _ => None,
        });
        Ok(gender)
    }

    /// Postal address from the CRM.
    #[class(contact, mask = city_country)]
    async fn address(&self, ctx: &Context<'_>) -> Result<Option<Address>> {
        let address = self.crm(ctx).await?.map(|c| Address {
            customer_id: self.id.clone(),
            street: c.street,
            postal_code: c.postal_code,
            city: c.city,
            country: c.country,
        });
        Ok(address)
    }

    /// When the customer first appeared: the CRM record's creation, else the shop account's.
    #[class(timing, mask = month)]
    async fn customer_since(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(match self.profile(ctx).await? {
            (Some(c), _) => Some(c.created_at),
            (None, account) => account.map(|a| a.created_at),
        })
    }

    /// What the insight models of the latest fit say of the customer: RFM segment,
    /// lifecycle stage, churn risk, expected purchases, lifetime value and value tier.
    /// `MODEL_NOT_READY` before the first fit (`c360 fit`).
    #[class(insight)]
    async fn insights(&self, ctx: &Context<'_>) -> Result<CustomerInsights> {
        let insight = request(ctx).loaders.insights.load_one(self.id.clone()).await?;
        Ok(CustomerInsights {
            insight: insight.ok_or(ApiError::Internal)?,
            accounts: self.keys(SourceName::Shop),
            requesters: self.keys(SourceName::Helpdesk),
        })
    }

    /// Purchases across all shop accounts; null when the shop cannot be reached.
    #[class(financial)]
    async fn purchase_summary(&self, ctx: &Context<'_>) -> Result<Option<PurchaseSummary>> {
        let accounts = self.keys(SourceName::Shop);
        let loaded = request(ctx).loaders.purchases.load_many(accounts).await?;
        let mut summary = PurchaseSummary {
            order_count: 0,
            cancelled_count: 0,
            returned_count: 0,
            total_spent: Vec::new(),
            first_order_at: None,
            last_order_at: None,
        };
        let mut spent: BTreeMap<String, i64> = BTreeMap::new();
        for agg in loaded.values().flat_map(|a| a.iter()) {
            match agg.status.as_str() {
                "cancelled" => summary.cancelled_count += agg.orders,
                "returned" => summary.returned_count += agg.orders,
                _ => {}
            }
            if SPENT(&agg.status) {
                summary.order_count += agg.orders;
                *spent.entry(agg.currency.clone()).or_default() += agg.total_cents;
                summary.first_order_at = summary.first_order_at.min(Some(agg.first_at)).or(Some(agg.first_at));
                summary.last_order_at = summary.last_order_at.max(Some(agg.last_at));
            }
        }
        summary.total_spent = spent.iter().map(|(currency, cents)| Money::from_cents(*cents, currency)).collect();
        Ok(Some(summary))
    }

    /// Service contact across all helpdesk requesters; null when the helpdesk cannot be reached.
    #[class(service)]
    async fn service_summary(&self, ctx: &Context<'_>) -> Result<Option<ServiceSummary>> {
        let requesters = self.keys(SourceName::Helpdesk);
        let loaded = request(ctx).loaders.service.load_many(requesters).await?;
        let mut s = ServiceSummary {
            ticket_count: 0,
            open_tickets: 0,
            complaint_count: 0,
            average_csat: None,
            csat_responses: 0,
        };
        let mut csat_sum = 0i64;
        for agg in loaded.values().flat_map(|a| a.iter()) {
            s.ticket_count += agg.tickets;
            if matches!(agg.status.as_str(), "open" | "pending") {
                s.open_tickets += agg.tickets;
            }
            if agg.category == "complaint" {
                s.complaint_count += agg.tickets;
            }
            csat_sum += agg.csat_sum.unwrap_or(0);
            s.csat_responses += agg.csat_answers;
        }
        if s.csat_responses > 0 {
            s.average_csat = Some(csat_sum as f64 / s.csat_responses as f64);
        }
        Ok(Some(s))
    }

    /// Orders from all shop accounts, newest first.
    #[class(financial)]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
        after: Option<String>,
    ) -> Result<Option<OrderConnection>> {
        let mut page = Self::first(ctx, first)?;
        page.before = after.as_deref().map(|c| ids(ctx).parse_time_cursor("o", c)).transpose()?;
        let accounts = self.keys(SourceName::Shop);
        let loaders = &request(ctx).loaders;
        // The count comes from the purchase aggregates, asked for in the same pass as the
        // page (and as `purchaseSummary`) so that it joins their batch.
        let (pages, totals) = tokio::join!(
            loaders.order_pages.load_many(accounts.iter().map(|a| (*a, page))),
            when(wants_total(ctx), loaders.purchases.load_many(accounts.iter().copied())),
        );
        let mut orders: Vec<Order> = pages?.values().flat_map(|p| p.iter().cloned().map(Order)).collect();
        orders.sort_by_key(|o| Reverse((o.0.ordered_at, o.0.id)));
        let total = totals?.values().flat_map(|a| a.iter()).map(|a| a.orders).sum();
        Ok(Some(OrderConnection::from_items(orders, first, |o| Ids::time_cursor("o", o.0.ordered_at, o.0.id), total)))
    }

    /// Helpdesk tickets from all of the customer's requesters, newest first.
    #[class(service)]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
        after: Option<String>,
    ) -> Result<Option<TicketConnection>> {
        let mut page = Self::first(ctx, first)?;
        page.before = after.as_deref().map(|c| ids(ctx).parse_time_cursor("t", c)).transpose()?;
        let requesters = self.keys(SourceName::Helpdesk);
        let loaders = &request(ctx).loaders;
        let (pages, totals) = tokio::join!(
            loaders.ticket_pages.load_many(requesters.iter().map(|r| (*r, page))),
            when(wants_total(ctx), loaders.service.load_many(requesters.iter().copied())),
        );
        let mut tickets: Vec<Ticket> = pages?.values().flat_map(|p| p.iter().cloned().map(Ticket)).collect();
        tickets.sort_by_key(|t| Reverse((t.0.opened_at, t.0.id)));
        let total = totals?.values().flat_map(|a| a.iter()).map(|a| a.tickets).sum();
        Ok(Some(TicketConnection::from_items(tickets, first, |t| Ids::time_cursor("t", t.0.opened_at, t.0.id), total)))
    }

    /// Campaigns sent to the customer and the responses, newest first.
    #[class(marketing)]
    async fn campaign_responses(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
        after: Option<String>,
    ) -> Result<Option<CampaignResponseConnection>> {
        let mut page = Self::first(ctx, first)?;
        page.before = after.as_deref().map(|c| ids(ctx).parse_time_cursor("s", c)).transpose()?;
        let contacts = self.keys(SourceName::Marketing);
        let loaders = &request(ctx).loaders;
        let pages = loaders.send_pages.load_many(contacts.iter().map(|c| (*c, page))).await?;
        let mut sends: Vec<CampaignResponse> =
            pages.values().flat_map(|p| p.iter().cloned().map(CampaignResponse)).collect();
        sends.sort_by_key(|s| Reverse((s.0.sent_at, s.0.id)));
        let total = if wants_total(ctx) { loaders.send_counts.load_many(contacts).await?.values().sum() } else { 0 };
        Ok(Some(CampaignResponseConnection::from_items(
            sends,
            first,
            |s| Ids::time_cursor("s", s.0.sent_at, s.0.id),
            total,
        )))
    }

    /// The consent ledger: every grant to share data with a partner, and its revocation.
    #[class(marketing)]
    async fn consents(&self, ctx: &Context<'_>) -> Result<Option<Vec<Consent>>> {
        let keys = self.keys(SourceName::Crm);
        let ledger = request(ctx).loaders.consent_ledger.load_many(keys).await?;
        let mut all: Vec<&crate::sources::crm::Consent> = ledger.values().flat_map(|l| l.iter()).collect();
        all.sort_by_key(|c| (c.granted_at, c.id));
        Ok(Some(all.into_iter().map(Consent::from).collect()))
    }

    /// Notes by sales and service staff, newest first.
    #[class(internal)]
    async fn notes(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
        after: Option<String>,
    ) -> Result<Option<NoteConnection>> {
        let mut page = Self::first(ctx, first)?;
        page.before = after.as_deref().map(|c| ids(ctx).parse_time_cursor("n", c)).transpose()?;
        let keys = self.keys(SourceName::Crm);
        let loaders = &request(ctx).loaders;
        let (pages, totals) = tokio::join!(
            loaders.note_pages.load_many(keys.iter().map(|k| (*k, page))),
            when(wants_total(ctx), loaders.note_counts.load_many(keys.iter().copied())),
        );
        let mut notes: Vec<Note> = pages?.values().flat_map(|p| p.iter().map(Note::from)).collect();
        notes.sort_by_key(|n| Reverse((n.created_at, n.id)));
        let total = totals?.values().sum();
        Ok(Some(NoteConnection::from_items(notes, first, |n| Ids::time_cursor("n", n.created_at, n.id), total)))
    }

    /// The source records resolved into this customer, and why.
    #[class(internal)]
    async fn source_records(&self) -> Result<Vec<SourceRecord>> {
        self.links
            .iter()
            .map(|l| {
                Ok(SourceRecord {
                    source: super::common::enum_value("SourceRecord.source", &l.source)?,
                    key: l.source_key.clone(),
                    matched_by: super::common::enum_value("SourceRecord.matchedBy", &l.rule)?,
                    linked_at: l.linked_at,
                })
            })
            .collect()
    }
}
