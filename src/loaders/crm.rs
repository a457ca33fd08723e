//! CRM loaders: profiles, consents (the partner row rule and the ledger) and notes.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};

use super::{Loaders, Source, loader};
use crate::error::ApiError;
use crate::policy::ConsentScope;
use crate::sources::Page;
use crate::sources::crm::{self, Consent, Consenting, CrmCustomer, Note, NoteCount};

loader!(CustomerLoader: one crm::customers => CrmCustomer as CrmCustomer, key |c| c.id, entry |c: CrmCustomer| (c.id, c));
loader!(
    /// The newest notes of each CRM record.
    NotePageLoader: page crm::notes_page => Note, key |n: &Note| n.customer_id
);
loader!(
    /// The consent ledger of each CRM record.
    ConsentLedgerLoader: many crm::consents => Consent, key |c: &Consent| c.customer_id
);
loader!(
    /// How many notes each CRM record has.
    NoteCountLoader: one crm::note_counts => NoteCount as i64, key |c| c.customer_id, entry |c: NoteCount| (c.customer_id, c.n)
);

/// Which CRM records have an active consent for the request's partner (row rule for
/// partner viewers). Holds one scope: loaders are per request, and so is the viewer.
pub(crate) struct ConsentLoader {
    pub(crate) source: Source,
    pub(crate) scope: Option<ConsentScope>,
    /// One instant for the whole request, so every check agrees.
    pub(crate) now: DateTime<Utc>,
}

impl Loader<i64> for ConsentLoader {
    type Value = ();
    type Error = ApiError;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, ()>, ApiError> {
        let Some(scope) = &self.scope else { return Ok(HashMap::new()) };
        let s = &self.source;
        let scope = Consenting { partner: &scope.partner, purpose: scope.purpose.as_deref() };
        let rows = tracing::Instrument::instrument(
            crm::consenting(&s.db, &s.trace, scope, self.now, ids),
            s.batch("ConsentLoader", ids.len()),
        )
        .await
        .map_err(|e| s.fail(e))?;
        Ok(rows.into_iter().map(|id| (id, ())).collect())
    }
}

/// The request's writes to the CRM; each forgets the cached reads it makes stale.
pub(crate) struct Writes<'a> {
    pub(super) loaders: &'a Loaders,
    pub(super) source: &'a Source,
}

impl Writes<'_> {
    /// Records a grant on CRM record `customer_id`.
    pub(crate) async fn grant_consent(
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
    pub(crate) async fn revoke_consent(
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
    pub(crate) async fn add_note(
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
