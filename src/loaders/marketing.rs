//! Marketing loaders: newest-first send pages and send counts per contact, campaigns.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::{Source, paged};
use crate::error::ApiError;
use crate::sources::Page;
use crate::sources::marketing::{self, Campaign, Send};

pub struct SendPageLoader(pub Source);

impl Loader<(i64, Page)> for SendPageLoader {
    type Value = Arc<Vec<Send>>;
    type Error = ApiError;

    async fn load(&self, keys: &[(i64, Page)]) -> Result<HashMap<(i64, Page), Self::Value>, ApiError> {
        let s = &self.0;
        paged(
            keys,
            |x: &Send| x.contact_id,
            |contacts, page| async move {
                marketing::sends_page(&s.db, &s.trace, &contacts, &page).await.map_err(|e| s.fail(e))
            },
        )
        .await
    }
}

pub struct SendCountLoader(pub Source);

impl Loader<i64> for SendCountLoader {
    type Value = i64;
    type Error = ApiError;

    async fn load(&self, contacts: &[i64]) -> Result<HashMap<i64, i64>, ApiError> {
        let s = &self.0;
        let rows = marketing::send_counts(&s.db, &s.trace, contacts).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|r| (r.contact_id, r.sends)).collect())
    }
}

pub struct CampaignLoader(pub Source);

impl Loader<i64> for CampaignLoader {
    type Value = Campaign;
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Campaign>, ApiError> {
        let s = &self.0;
        let rows = marketing::campaigns(&s.db, &s.trace, ids).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|c| (c.id, c)).collect())
    }
}
