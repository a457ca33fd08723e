//! CRM profiles by CRM id.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use super::Source;
use crate::error::ApiError;
use crate::sources::crm::{self, CrmCustomer};

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
