//! Helpdesk loaders: tickets (by id and newest-first pages per requester) and service
//! aggregates per requester.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::{Source, loader};
use crate::error::ApiError;
use crate::insights::refresh::RECENT_SERVICE_DAYS;
use crate::sources::helpdesk::{self, ServiceFigures, Ticket, TicketAggregate};

loader!(TicketLoader: one helpdesk::tickets => Ticket as Ticket, key |t| t.id, entry |t: Ticket| (t.id, t));
loader!(
    /// The newest tickets of a requester, one page.
    TicketPageLoader: page helpdesk::tickets_page => Ticket, key |t: &Ticket| t.requester_id
);
loader!(
    /// Ticket counts and CSAT per requester (by status and category).
    ServiceLoader: many helpdesk::ticket_aggregates => TicketAggregate, key |a: &TicketAggregate| a.requester_id
);

/// Service figures per requester up to now: the satisfaction of customers the insight
/// snapshot has no row for (they had not bought by the model's date).
pub(crate) struct ServiceNowLoader(pub Source);

impl Loader<i64> for ServiceNowLoader {
    type Value = ServiceFigures;
    type Error = ApiError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, ServiceFigures>, ApiError> {
        let s = &self.0;
        let rows = tracing::Instrument::instrument(
            helpdesk::service_figures_now(&s.db, &s.trace, keys, RECENT_SERVICE_DAYS),
            s.batch("ServiceNowLoader", keys.len()),
        )
        .await
        .map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|f| (f.requester_id, f)).collect())
    }
}
