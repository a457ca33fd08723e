//! Identity links of golden customers (the hub store).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::Source;
use crate::error::ApiError;
use crate::identity::store::{self, Link, LookupKey};

/// Links by golden id. An id merged into another customer loads the survivor's links
/// (whose `customer_id` is the survivor's); an unknown id loads nothing.
pub struct LinksLoader(pub Source);

impl Loader<String> for LinksLoader {
    type Value = Arc<Vec<Link>>;
    type Error = ApiError;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Self::Value>, ApiError> {
        let s = &self.0;
        let rows = tracing::Instrument::instrument(
            store::links_by_customer_ids(&s.db, &s.trace, ids),
            s.batch("LinksLoader", ids.len()),
        )
        .await
        .map_err(|e| s.fail(e))?;
        let mut out: HashMap<String, Vec<Link>> = HashMap::new();
        for row in rows {
            out.entry(row.requested_id.clone()).or_default().push(row.into_link());
        }
        Ok(out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// The links of the customers found by each key (an email, a phone, a source record's
/// key): every lookup of a request's level in one statement per kind of key.
pub struct KeyLinksLoader(pub Source);

impl Loader<LookupKey> for KeyLinksLoader {
    type Value = Arc<Vec<Link>>;
    type Error = ApiError;

    async fn load(&self, keys: &[LookupKey]) -> Result<HashMap<LookupKey, Self::Value>, ApiError> {
        let s = &self.0;
        let rows = tracing::Instrument::instrument(
            store::links_by_keys(&s.db, &s.trace, keys),
            s.batch("KeyLinksLoader", keys.len()),
        )
        .await
        .map_err(|e| s.fail(e))?;
        let mut out: HashMap<LookupKey, Vec<Link>> = HashMap::new();
        for (key, link) in rows {
            out.entry(key).or_default().push(link);
        }
        Ok(out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}
