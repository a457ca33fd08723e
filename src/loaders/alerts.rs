//! The alert log, for the inbox: pages of it and the changes agents make.

use chrono::Utc;

use super::Source;
use crate::alerts::{self, Alert, AlertFilter, Change};
use crate::error::ApiError;

/// The hub store's alert log, over the request's statement trace.
pub(crate) struct AlertLog<'a> {
    pub(super) hub: &'a Source,
}

impl AlertLog<'_> {
    /// Alerts matching `filter`, newest first, with ids below `before`.
    pub(crate) async fn newest(
        &self,
        filter: &AlertFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Alert>, ApiError> {
        alerts::newest(&self.hub.db, &self.hub.trace, filter, before, limit).await.map_err(|e| self.hub.fail(e))
    }

    /// One alert by id.
    pub(crate) async fn get(&self, id: i64) -> Result<Option<Alert>, ApiError> {
        alerts::get(&self.hub.db, &self.hub.trace, id).await.map_err(|e| self.hub.fail(e))
    }

    /// Applies `change` to alert `id` as `by`; whether it exists.
    pub(crate) async fn change(&self, id: i64, change: &Change, by: &str) -> Result<bool, ApiError> {
        alerts::change(&self.hub.db, &self.hub.trace, id, change, by, Utc::now()).await.map_err(|e| self.hub.fail(e))
    }
}
