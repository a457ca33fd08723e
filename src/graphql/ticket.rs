//! Helpdesk tickets as GraphQL types.

use async_graphql::{Context, Enum, ID, Object, Result};
use c360_macros::classified;
use chrono::{DateTime, Utc};

use super::common::enum_value;
use super::common::ids;
use super::ids::Kind;
use crate::sources::helpdesk;

/// How the ticket reached the helpdesk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum TicketChannel {
    /// A call.
    Phone,
    /// An email to the helpdesk.
    Email,
    /// The chat on the web shop or in the app.
    Chat,
    /// A message on social media.
    Social,
    /// At the counter of a store.
    Store,
}

/// What the ticket is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum TicketCategory {
    /// The customer is unhappy with a product or the service.
    Complaint,
    /// A question.
    Inquiry,
    /// A product to repair (warranty or paid).
    Repair,
    /// A product to send back.
    Return,
    /// Invoices, payments and refunds.
    Billing,
}

/// How urgently the helpdesk handles the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum TicketPriority {
    /// When there is time.
    Low,
    /// In turn.
    Normal,
    /// Before normal tickets.
    High,
    /// At once.
    Urgent,
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum TicketStatus {
    /// New, nobody has answered yet.
    Open,
    /// Waiting for the customer or a third party.
    Pending,
    /// Answered; the customer may still reopen it.
    Solved,
    /// Done for good.
    Closed,
}

/// A helpdesk ticket.
#[derive(Clone)]
pub(crate) struct Ticket(pub helpdesk::Ticket);

/// A helpdesk ticket.
#[classified]
#[Object]
impl Ticket {
    /// Global id (use with `node`).
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> ID {
        ids(ctx).global_id(Kind::Ticket, &self.0.id.to_string())
    }

    /// When the ticket was opened.
    #[class(timing, mask = month)]
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }

    /// Null while the ticket is open or pending.
    #[class(timing, mask = month)]
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }

    #[class(service)]
    /// How the ticket reached the helpdesk.
    async fn channel(&self) -> Result<TicketChannel> {
        Ok(enum_value("Ticket.channel", &self.0.channel)?)
    }

    #[class(service)]
    /// What the ticket is about.
    async fn category(&self) -> Result<TicketCategory> {
        Ok(enum_value("Ticket.category", &self.0.category)?)
    }

    #[class(service)]
    /// How urgently it is handled.
    async fn priority(&self) -> Result<TicketPriority> {
        Ok(enum_value("Ticket.priority", &self.0.priority)?)
    }

    #[class(service)]
    /// Where it stands.
    async fn status(&self) -> Result<TicketStatus> {
        Ok(enum_value("Ticket.status", &self.0.status)?)
    }

    /// The subject line as the requester or agent wrote it.
    #[class(receipt)]
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// Customer satisfaction, 1 (very unhappy) to 5 (very happy); null when not answered.
    #[class(service)]
    async fn csat(&self) -> Option<i32> {
        self.0.csat
    }
}

super::common::connection!(TicketConnection, TicketEdge, Ticket, "ticket");
