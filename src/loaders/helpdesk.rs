//! Helpdesk loaders: tickets (by id and newest-first pages per requester) and service
//! aggregates per requester.

use super::loader;
use crate::sources::helpdesk::{self, Ticket, TicketAggregate};

loader!(TicketLoader: one helpdesk::tickets => Ticket, entry |t: Ticket| (t.id, t));
loader!(
    /// The newest tickets of a requester, one page.
    TicketPageLoader: page helpdesk::tickets_page => Ticket, key |t: &Ticket| t.requester_id
);
loader!(
    /// Ticket counts and CSAT per requester (by status and category).
    ServiceLoader: many helpdesk::ticket_aggregates => TicketAggregate, key |a: &TicketAggregate| a.requester_id
);
