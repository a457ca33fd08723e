//! Helpdesk loaders: tickets (by id and newest-first pages per requester) and service
//! aggregates per requester.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::{Source, group, paged};
use crate::error::ApiError;
use crate::sources::Page;
use crate::sources::helpdesk::{self, Ticket, TicketAggregate};

pub struct TicketLoader(pub Source);

impl Loader<i64> for TicketLoader {
    type Value = Ticket;
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Ticket>, ApiError> {
        let s = &self.0;
        let rows = helpdesk::tickets(&s.db, &s.trace, ids).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|t| (t.id, t)).collect())
    }
}

pub struct TicketPageLoader(pub Source);

impl Loader<(i64, Page)> for TicketPageLoader {
    type Value = Arc<Vec<Ticket>>;
    type Error = ApiError;

    async fn load(&self, keys: &[(i64, Page)]) -> Result<HashMap<(i64, Page), Self::Value>, ApiError> {
        let s = &self.0;
        paged(
            keys,
            |t: &Ticket| t.requester_id,
            |requesters, page| async move {
                helpdesk::tickets_page(&s.db, &s.trace, &requesters, &page).await.map_err(|e| s.fail(e))
            },
        )
        .await
    }
}

pub struct ServiceLoader(pub Source);

impl Loader<i64> for ServiceLoader {
    type Value = Arc<Vec<TicketAggregate>>;
    type Error = ApiError;

    async fn load(&self, requesters: &[i64]) -> Result<HashMap<i64, Self::Value>, ApiError> {
        let s = &self.0;
        let rows = helpdesk::ticket_aggregates(&s.db, &s.trace, requesters).await.map_err(|e| s.fail(e))?;
        Ok(group(rows, |a| a.requester_id))
    }
}
