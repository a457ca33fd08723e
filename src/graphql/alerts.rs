//! Service alerts as GraphQL: the inbox (`alerts`), and the changes staff make to it.
//! Each alert is shown through the same policy as any query: its customer is a
//! `Customer` (an agent sees the name, a frontend the mask, an analyst no identity), its
//! facts carry their privacy classes, and a viewer who may not see the customer does not
//! see the alert at all (a partner only with a token for the purpose `alerts` and the
//! customer's consent covering it).

use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use c360_macros::classified;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use futures::stream::BoxStream;

use super::common::{Money, connection, enum_value, ids, page_size, refused, request, require, wants_total};
use super::customer::Customer;
use super::ids::{Ids, Kind};
use super::order::{Order, OrderStatus};
use super::ticket::{Ticket, TicketCategory, TicketChannel, TicketPriority};
use crate::alerts::{self, AlertFilter, Change, Facts};
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::Role;
use crate::error::ApiError;
use crate::policy::{Access, Decision, PrivacyClass};

/// What an alert says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::alerts::AlertKind")]
pub(crate) enum AlertKind {
    /// A new complaint ticket of a customer in one of the configured value tiers.
    Complaint,
    /// A satisfaction (CSAT) answer at or below the configured score.
    LowSatisfaction,
    /// An order whose total is at or above the configured amount.
    HighValueOrder,
}

/// Where an alert stands in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::alerts::AlertStatus")]
pub(crate) enum AlertStatus {
    /// Nobody has taken it up yet.
    Open,
    /// Someone is on it (assigning an open alert acknowledges it).
    Acknowledged,
    /// Dealt with.
    Resolved,
}

/// A service alert: something that happened to a customer that someone should act on.
#[derive(Clone)]
pub(crate) struct ServiceAlert(pub(crate) alerts::Alert);

impl ServiceAlert {
    fn facts(&self) -> Facts {
        self.0.facts()
    }
}

/// A service alert: something that happened to a customer that someone should act on.
#[classified]
#[Object]
impl ServiceAlert {
    /// Global id (use with `node`, and with the inbox's mutations).
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> ID {
        ids(ctx).global_id(Kind::ServiceAlert, &self.0.id.to_string())
    }

    /// Its place in the log: later alerts have larger numbers. Of class internal: the gap
    /// between two numbers counts every customer's alerts.
    #[class(internal)]
    async fn number(&self) -> i64 {
        self.0.id
    }

    /// What happened.
    async fn kind(&self) -> Result<AlertKind> {
        Ok(enum_value::<alerts::AlertKind>("ServiceAlert.kind", &self.0.kind)?.into())
    }

    /// The customer it happened to, as the viewer may see them.
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<Customer>> {
        Ok(Customer::load(ctx, self.0.customer_id.clone()).await?)
    }

    /// When it happened in the source (a ticket opened, an answer given, an order placed).
    #[class(timing, mask = month)]
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// When the hub detected it.
    #[class(timing, mask = month)]
    async fn detected_at(&self) -> DateTime<Utc> {
        self.0.detected_at
    }

    /// Where it stands in the inbox.
    #[class(service)]
    async fn status(&self) -> Result<AlertStatus> {
        Ok(enum_value::<alerts::AlertStatus>("ServiceAlert.status", &self.0.status)?.into())
    }

    /// When it last changed in the inbox (detection, or a change by staff).
    #[class(timing, mask = month)]
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The staff member (token subject) it is assigned to; null: nobody yet.
    #[class(service)]
    async fn assignee(&self) -> Option<&str> {
        self.0.assignee.as_deref()
    }

    /// The ticket it is about (complaints and satisfaction alerts), as it stands now;
    /// null for other kinds, or once the helpdesk no longer has it.
    #[class(service)]
    async fn ticket(&self, ctx: &Context<'_>) -> Result<Option<Ticket>> {
        let Some(id) = self.facts().ticket_id else { return Ok(None) };
        Ok(request(ctx).loaders.tickets.load_one(id).await?.map(Ticket))
    }

    /// The order it is about (high-value orders), as it stands now.
    #[class(financial)]
    async fn order(&self, ctx: &Context<'_>) -> Result<Option<Order>> {
        let Some(id) = self.facts().order_id else { return Ok(None) };
        Ok(request(ctx).loaders.orders.load_one(id).await?.map(Order))
    }

    /// The ticket's category (complaints and satisfaction alerts).
    #[class(service)]
    async fn ticket_category(&self) -> Result<Option<TicketCategory>> {
        let facts = self.facts();
        Ok(facts.ticket_category.map(|c| enum_value("ServiceAlert.ticketCategory", &c)).transpose()?)
    }

    /// The ticket's priority.
    #[class(service)]
    async fn ticket_priority(&self) -> Result<Option<TicketPriority>> {
        let facts = self.facts();
        Ok(facts.ticket_priority.map(|c| enum_value("ServiceAlert.ticketPriority", &c)).transpose()?)
    }

    /// How the ticket reached the helpdesk.
    #[class(service)]
    async fn ticket_channel(&self) -> Result<Option<TicketChannel>> {
        let facts = self.facts();
        Ok(facts.ticket_channel.map(|c| enum_value("ServiceAlert.ticketChannel", &c)).transpose()?)
    }

    /// The satisfaction answer (1 to 5) the ticket had when detected.
    #[class(service)]
    async fn csat(&self) -> Option<i32> {
        self.facts().csat
    }

    /// The order's total (high-value orders): one order's amount.
    #[class(receipt)]
    async fn order_total(&self) -> Option<Money> {
        let facts = self.facts();
        Some(Money::from_cents(facts.total_cents?, facts.currency.as_deref()?))
    }

    /// Where the order stood when detected.
    #[class(financial)]
    async fn order_status(&self) -> Result<Option<OrderStatus>> {
        let facts = self.facts();
        Ok(facts.order_status.map(|s| enum_value("ServiceAlert.orderStatus", &s)).transpose()?)
    }

    /// The customer's value tier when detected (`TOP`, `CORE`, `TAIL`; null before the
    /// first insight model).
    #[class(insight)]
    async fn value_tier(&self) -> Option<String> {
        self.facts().value_tier
    }
}

connection!(ServiceAlertConnection, ServiceAlertEdge, ServiceAlert, "service alert");

#[derive(Default)]
pub(crate) struct AlertQuery;

/// The scope every customer query needs.
const READ: &str = "customers:read";
/// The purpose a partner's token must name to see alerts (and its customers' consents
/// cover).
const PARTNER_PURPOSE: &str = "alerts";

/// The class an alert of `kind` reveals: the viewer sees the alert only where its policy
/// shows (or masks) that class.
fn class_of(kind: alerts::AlertKind) -> PrivacyClass {
    match kind {
        alerts::AlertKind::Complaint | alerts::AlertKind::LowSatisfaction => PrivacyClass::Service,
        // That one order's total reached the threshold.
        alerts::AlertKind::HighValueOrder => PrivacyClass::Receipt,
    }
}

/// Whether the viewer sees alerts at all, and which: the kinds whose class its policy
/// does not hide (none without an access decision: fail closed), an agent's own and
/// unassigned ones, a partner's only with a token for the purpose `alerts`.
fn viewer_filter(ctx: &Context<'_>, asked: Vec<alerts::AlertKind>) -> Option<AlertFilter> {
    let viewer = &request(ctx).viewer;
    let access = ctx.data_opt::<Access>()?;
    let kinds: Vec<alerts::AlertKind> = match asked.is_empty() {
        true => <alerts::AlertKind as strum::VariantArray>::VARIANTS.to_vec(),
        false => asked,
    };
    let kinds: Vec<_> = kinds.into_iter().filter(|k| access.decision(class_of(*k)) != Decision::Hide).collect();
    if kinds.is_empty() {
        return None;
    }
    let filter = AlertFilter { kinds, ..AlertFilter::default() };
    match viewer.role {
        Role::Partner if viewer.purpose.as_deref() != Some(PARTNER_PURPOSE) => None,
        Role::Agent => Some(AlertFilter { mine_or_unassigned: Some(viewer.subject.clone()), ..filter }),
        _ => Some(filter),
    }
}

/// The alert `id` names, if the viewer may see it.
pub(crate) async fn load(ctx: &Context<'_>, key: &str) -> Result<Option<ServiceAlert>, ApiError> {
    let Some(filter) = viewer_filter(ctx, Vec::new()) else { return Ok(None) };
    let id: i64 = key.parse().map_err(|_| ApiError::InvalidId(key.to_owned()))?;
    let Some(alert) = request(ctx).loaders.alerts().get(id).await? else { return Ok(None) };
    if !alert.kind.parse().is_ok_and(|k| filter.kinds.contains(&k)) {
        return Ok(None);
    }
    if filter.mine_or_unassigned.as_ref().is_some_and(|me| alert.assignee.as_ref().is_some_and(|a| a != me)) {
        return Ok(None);
    }
    // The viewer's row rule, as for any customer: a partner's consenting customers only.
    let customer = request(ctx).loaders.customers().by_id(alert.customer_id.clone()).await?;
    Ok(customer.is_some().then_some(ServiceAlert(alert)))
}

#[classified]
#[Object]
impl AlertQuery {
    /// The alert inbox, newest first: complaints, poor satisfaction and high-value orders
    /// as the sources report them (README, "Service alerts"). Agents see the alerts
    /// assigned to them and those assigned to nobody; a partner sees alerts only with a
    /// token for the purpose `alerts`, of customers whose consent covers it. `kinds` and
    /// `status` narrow it (null or empty: all). Of class service: a viewer who may not see
    /// service data has no inbox; one who may not see receipts gets no high-value orders.
    #[class(service)]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        kinds: Option<Vec<AlertKind>>,
        status: Option<Vec<AlertStatus>>,
    ) -> Result<ServiceAlertConnection> {
        require(ctx, READ)?;
        let first = page_size(ctx, first)?;
        let before = match after {
            Some(after) => Some(ids(ctx).parse_alert_cursor(&after)?),
            None => None,
        };
        let empty = ServiceAlertConnection::from_items(Vec::new(), first, |a| Ids::alert_cursor(a.0.id), 0);
        let asked: Vec<alerts::AlertKind> = kinds.unwrap_or_default().into_iter().map(Into::into).collect();
        let Some(mut filter) = viewer_filter(ctx, asked) else { return Ok(empty) };
        filter.statuses = status.unwrap_or_default().into_iter().map(Into::into).collect();
        // A partner's list is of its consenting customers in the statement itself: a page
        // filtered after reading would tell by its size, `hasNextPage` or its time that
        // other customers have alerts.
        let loaders = &request(ctx).loaders;
        filter.customers =
            loaders.customers().all_admitted().await?.map(|all| all.into_iter().map(|(id, _)| id).collect());
        let limit = i64::from(first) + 1;
        let log = loaders.alerts();
        let found = log.newest(&filter, before, limit).await?;
        let total = if wants_total(ctx) { log.count(&filter).await? } else { 0 };
        let items = found.into_iter().map(ServiceAlert).collect();
        Ok(ServiceAlertConnection::from_items(items, first, |a| Ids::alert_cursor(a.0.id), total))
    }
}

#[derive(Default)]
pub(crate) struct AlertMutation;

/// The alert `id` names, for a change by staff who may see it; an id the viewer may not
/// see is `INVALID_ID`, as one that names nothing.
async fn for_change(ctx: &Context<'_>, id: &ID, what: &'static str) -> Result<alerts::Alert, ApiError> {
    let viewer = &request(ctx).viewer;
    if !matches!(viewer.role, Role::Admin | Role::Agent) {
        return Err(refused(ctx, what, ApiError::StaffOnly));
    }
    let key = ids(ctx).parse_id_of(Kind::ServiceAlert, id)?;
    match load(ctx, &key).await? {
        Some(ServiceAlert(alert)) => Ok(alert),
        None => Err(ApiError::InvalidId(id.to_string())),
    }
}

/// Records the change in the audit log (before it is made), then makes it.
async fn apply(ctx: &Context<'_>, alert: &alerts::Alert, change: Change, fields: Vec<String>) -> Result<ServiceAlert> {
    let rc = request(ctx);
    let entry = AuditEntry {
        target: Some(alert.id.to_string()),
        ..AuditEntry::new(&rc.viewer, &rc.request_id, AuditAction::AlertChanged, &alert.customer_id, fields)
    };
    rc.loaders.admin().record_now(entry).await?;
    let log = rc.loaders.alerts();
    log.change(alert.id, &change, &rc.viewer.subject).await?;
    let changed = log.get(alert.id).await?.ok_or(ApiError::Internal)?;
    Ok(ServiceAlert(changed))
}

/// Of class service, as the inbox: a viewer who may not see service data has none of them.
#[classified]
#[Object]
impl AlertMutation {
    /// Marks an alert as seen and being dealt with. Admins and agents (on their own and
    /// unassigned alerts); audited.
    #[class(service)]
    async fn acknowledge_alert(&self, ctx: &Context<'_>, id: ID) -> Result<ServiceAlert> {
        let alert = for_change(ctx, &id, "acknowledgeAlert").await?;
        let status = alerts::AlertStatus::Acknowledged;
        apply(ctx, &alert, Change::Status(status), vec!["status=ACKNOWLEDGED".to_owned()]).await
    }

    /// Assigns an alert to a staff member (a token subject), acknowledging it when open;
    /// null unassigns it. An agent may assign only to themself. Audited.
    #[class(service)]
    async fn assign_alert(&self, ctx: &Context<'_>, id: ID, assignee: Option<String>) -> Result<ServiceAlert> {
        let alert = for_change(ctx, &id, "assignAlert").await?;
        let viewer = &request(ctx).viewer;
        if let Some(assignee) = &assignee {
            if !crate::auth::is_identifier(assignee, 200) {
                let message = "`assignee` must be a token subject: 1 to 200 characters, no spaces at either end";
                return Err(ApiError::BadInput(message.into()).into());
            }
            if viewer.role == Role::Agent && assignee != &viewer.subject {
                return Err(refused(ctx, "assignAlert", ApiError::AdminOnly).into());
            }
        }
        let field = format!("assignee={}", assignee.as_deref().unwrap_or("null"));
        apply(ctx, &alert, Change::Assignee(assignee), vec![field]).await
    }

    /// Marks an alert as dealt with. Admins and agents; audited.
    #[class(service)]
    async fn resolve_alert(&self, ctx: &Context<'_>, id: ID) -> Result<ServiceAlert> {
        let alert = for_change(ctx, &id, "resolveAlert").await?;
        apply(ctx, &alert, Change::Status(alerts::AlertStatus::Resolved), vec!["status=RESOLVED".to_owned()]).await
    }
}

#[derive(Default)]
pub(crate) struct AlertSubscription;

/// Of class service, as the inbox.
#[classified]
#[Subscription]
impl AlertSubscription {
    /// Service alerts as they are detected, each once, oldest first, as the inbox shows
    /// them to this viewer. `after` (an edge's cursor, from here or the inbox) replays
    /// the log after it, then goes live with no gap and no duplicate; without it, from
    /// now on. `kinds` narrows it (null or empty: all the viewer may see).
    #[class(service)]
    async fn service_alerts(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<AlertKind>>,
        after: Option<String>,
    ) -> Result<BoxStream<'static, ServiceAlertEdge>> {
        require(ctx, READ)?;
        let start = after.as_deref().map(|a| ids(ctx).parse_alert_cursor(a)).transpose()?;
        let asked: Vec<alerts::AlertKind> = kinds.unwrap_or_default().into_iter().map(Into::into).collect();
        let Some(filter) = viewer_filter(ctx, asked) else { return Ok(futures::stream::empty().boxed()) };
        let feed = request(ctx).loaders.alert_feed(filter);
        // Listening from here: what is appended from now on (or after `after`) is heard.
        let following = feed.follow(start).await;
        let state = (following, std::collections::VecDeque::new());
        let stream = futures::stream::unfold(state, |(mut following, mut pending)| async move {
            loop {
                if let Some(alert) = pending.pop_front() {
                    let alert: alerts::Alert = alert;
                    let edge = ServiceAlertEdge { position: Ids::alert_cursor(alert.id), node: ServiceAlert(alert) };
                    return Some((edge, (following, pending)));
                }
                pending.extend(following.next().await?);
            }
        });
        Ok(stream.boxed())
    }
}
