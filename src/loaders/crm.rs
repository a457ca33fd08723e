//! CRM profiles by CRM id.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::Source;
use crate::error::ApiError;
use chrono::{DateTime, Utc};

use crate::sources::crm::{self, ConsentScope, CrmCustomer};

pub struct CustomerLoader(pub Source);

impl Loader<i64> for CustomerLoader {
    type Value = CrmCustomer;
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, CrmCustomer>, ApiError> {
        let s = &self.0;
        let rows = crm::customers(&s.db, &s.trace, ids).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|c| (c.id, c)).collect())
    }
}

/// Which CRM records have an active consent for the request's partner (row rule for
/// partner viewers). Holds one scope: loaders are per request, and so is the viewer.
pub struct ConsentLoader {
    pub source: Source,
    pub scope: Option<ConsentScope>,
    /// One instant for the whole request, so every check agrees.
    pub now: DateTime<Utc>,
}

impl Loader<i64> for ConsentLoader {
    type Value = ();
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, ()>, ApiError> {
        let Some(scope) = &self.scope else { return Ok(HashMap::new()) };
        let s = &self.source;
        let rows = crm::consenting(&s.db, &s.trace, scope, self.now, ids).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|id| (id, ())).collect())
    }
}
