//! CRM loaders: profiles, consents (the partner row rule and the ledger) and notes.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};

use super::{Loaders, Source, group, paged};
use crate::error::ApiError;
use crate::policy::ConsentScope;
use crate::sources::Page;
use crate::sources::crm::{self, Consent, Consenting, CrmCustomer, Note};

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
        let scope = Consenting { partner: &scope.partner, purpose: scope.purpose.as_deref() };
        let rows = crm::consenting(&s.db, &s.trace, scope, self.now, ids).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|id| (id, ())).collect())
    }
}

/// The newest notes of each CRM record.
pub struct NotePageLoader(pub Source);

impl Loader<(i64, Page)> for NotePageLoader {
    type Value = Arc<Vec<Note>>;
    type Error = ApiError;

    async fn load(&self, keys: &[(i64, Page)]) -> Result<HashMap<(i64, Page), Self::Value>, ApiError> {
        let s = &self.0;
        paged(
            keys,
            |n: &Note| n.customer_id,
            |ids, page| async move { crm::notes_page(&s.db, &s.trace, &ids, &page).await.map_err(|e| s.fail(e)) },
        )
        .await
    }
}

/// The consent ledger of each CRM record.
pub struct ConsentLedgerLoader(pub Source);

impl Loader<i64> for ConsentLedgerLoader {
    type Value = Arc<Vec<Consent>>;
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Self::Value>, ApiError> {
        let s = &self.0;
        let rows = crm::consents(&s.db, &s.trace, ids).await.map_err(|e| s.fail(e))?;
        Ok(group(rows, |c| c.customer_id))
    }
}

/// How many notes each CRM record has.
pub struct NoteCountLoader(pub Source);

impl Loader<i64> for NoteCountLoader {
    type Value = i64;
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, i64>, ApiError> {
        let s = &self.0;
        let rows = crm::note_counts(&s.db, &s.trace, ids).await.map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|c| (c.customer_id, c.n)).collect())
    }
}

/// The request's writes to the CRM; each forgets the cached reads it makes stale.
pub struct Writes<'a> {
    pub(super) loaders: &'a Loaders,
    pub(super) source: &'a Source,
}

impl Writes<'_> {
    /// Records a grant on CRM record `customer_id`.
    pub async fn grant_consent(
        &self,
        customer_id: i64,
        scope: &ConsentScope,
        at: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let s = self.source;
        let scope = Consenting { partner: &scope.partner, purpose: scope.purpose.as_deref() };
        let done = crm::grant_consent(&s.db, &s.trace, customer_id, scope, at).await.map_err(|e| s.fail(e));
        self.forget_consents();
        done
    }

    /// Revokes the active grants of these CRM records for `partner` (and `purpose`, or
    /// every purpose); returns how many it revoked.
    pub async fn revoke_consent(
        &self,
        ids: &[i64],
        partner: &str,
        purpose: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<u64, ApiError> {
        let s = self.source;
        let done = crm::revoke_consent(&s.db, &s.trace, ids, partner, purpose, at).await.map_err(|e| s.fail(e));
        self.forget_consents();
        done
    }

    /// Adds a note to CRM record `customer_id` and returns it.
    pub async fn add_note(
        &self,
        customer_id: i64,
        author: &str,
        body: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Note>, ApiError> {
        let s = self.source;
        let done = crm::add_note(&s.db, &s.trace, customer_id, author, body, at).await.map_err(|e| s.fail(e));
        self.loaders.note_pages.clear::<(i64, Page)>();
        self.loaders.note_counts.clear::<i64>();
        done
    }

    fn forget_consents(&self) {
        self.loaders.consent_ledger.clear::<i64>();
        self.loaders.consents.clear::<i64>();
    }
}
