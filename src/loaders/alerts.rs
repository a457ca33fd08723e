//! The alert log, for the inbox: pages of it and the changes agents make.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use tokio::sync::broadcast;

use super::Source;
use crate::alerts::{self, Alert, AlertFilter, Change};
use crate::error::ApiError;
use crate::identity::store as links;
use crate::names::SourceName;
use crate::policy::ConsentScope;
use crate::sources::bus::{Bus, Topic};
use crate::sources::crm::{self, Consenting};

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

/// Alerts to follow, for a subscription: owned (it outlives the request that opened it),
/// reading the log after a cursor with the viewer's filter and row rule.
pub(crate) struct Feed {
    pub(super) hub: Source,
    pub(super) crm: Source,
    /// A partner's consents; `None`: the viewer sees every customer.
    pub(super) consent: Option<ConsentScope>,
    pub(super) filter: AlertFilter,
    pub(super) bus: Bus,
}

/// Alerts read at once at most.
const FEED_PAGE: i64 = 100;

/// What one read of the feed found.
pub(crate) struct Read {
    /// The alerts the viewer may see, oldest first.
    pub(crate) visible: Vec<Alert>,
    /// The last id read (whether the viewer may see it or not): the next read's cursor.
    pub(crate) last: i64,
    /// Whether the log may hold more right now (a full page was read).
    pub(crate) more: bool,
}

impl Feed {
    /// The bus's messages from now on: subscribe before the first read, so nothing
    /// appended between the read and the wait is missed.
    pub(crate) fn messages(&self) -> broadcast::Receiver<Topic> {
        self.bus.subscribe()
    }

    /// The newest alert's id: a subscription without `after` starts there.
    pub(crate) async fn last_id(&self) -> Result<i64, ApiError> {
        alerts::last_id(&self.hub.db, &self.hub.trace).await.map_err(|e| self.hub.fail(e))
    }

    /// The alerts after `after` that the viewer may see (a page of the log).
    pub(crate) async fn read(&self, after: i64) -> Result<Read, ApiError> {
        let hub = &self.hub;
        let rows = alerts::after(&hub.db, &hub.trace, &self.filter, after, FEED_PAGE).await.map_err(|e| hub.fail(e))?;
        let last = rows.last().map_or(after, |r| r.id);
        let more = rows.len() as i64 == FEED_PAGE;
        let visible = match &self.consent {
            None => rows,
            Some(scope) => {
                let admitted = self.consenting(scope, &rows).await?;
                rows.into_iter().filter(|a| admitted.contains(&a.customer_id)).collect()
            }
        };
        Ok(Read { visible, last, more })
    }

    /// Which of these alerts' customers consent to the partner (for its purpose): the
    /// same rule as [`super::customers::Customers::admit`], for a feed that has no
    /// request's loaders.
    async fn consenting(&self, scope: &ConsentScope, rows: &[Alert]) -> Result<HashSet<String>, ApiError> {
        let mut ids: Vec<String> = rows.iter().map(|a| a.customer_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let found =
            links::links_by_customer_ids(&self.hub.db, &self.hub.trace, &ids).await.map_err(|e| self.hub.fail(e))?;
        let crm_source = SourceName::Crm.to_string();
        let mut by_key: HashMap<i64, Vec<String>> = HashMap::new();
        for link in found.iter().filter(|l| l.source == crm_source) {
            if let Ok(key) = link.source_key.parse::<i64>() {
                by_key.entry(key).or_default().push(link.requested_id.clone());
            }
        }
        let keys: Vec<i64> = by_key.keys().copied().collect();
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let scope = Consenting { partner: &scope.partner, purpose: scope.purpose.as_deref() };
        let consenting = crm::consenting(&self.crm.db, &self.crm.trace, scope, Utc::now(), &keys)
            .await
            .map_err(|e| self.crm.fail(e))?;
        Ok(consenting.into_iter().flat_map(|k| by_key.remove(&k).unwrap_or_default()).collect())
    }
}
