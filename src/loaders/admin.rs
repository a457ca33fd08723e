//! What only admins do, through the same per-request trace as everything else: reading
//! the audit log, and subject rights (export and erasure in every source, each recorded
//! in the audit log before it happens).

use chrono::{DateTime, NaiveDate, Utc};

use super::Source;
use super::insights::ModelCache;
use super::links::LinkCache;
use crate::audit::AuditEntry;
use crate::audit::store::{self, AuditFilter, AuditRow, Position};
use crate::auth::Viewer;
use crate::error::ApiError;
use crate::identity::store::Link;
use crate::insights::refresh;
use crate::revocations::{self, RevocationKind, Revocations};
use crate::sources::bus::{Bus, Topic};
use crate::sources::{Sources, SqlTrace};
use crate::subject::{self, Erased, Export, SourceFailed};

pub(crate) struct Admin<'a> {
    pub(super) hub: &'a Source,
    pub(super) sources: &'a Sources,
    pub(super) trace: &'a SqlTrace,
    pub(super) models: &'a ModelCache,
    pub(super) links: &'a LinkCache,
    pub(super) revocations: Option<&'a Revocations>,
    pub(super) bus: &'a Bus,
}

fn failed(SourceFailed(db, e): SourceFailed) -> ApiError {
    ApiError::from_sql(db, &e)
}

impl Admin<'_> {
    /// Audit entries matching `filter`, newest first, below `before`.
    pub(crate) async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<&Position>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, ApiError> {
        store::page(&self.hub.db, &self.hub.trace, filter, before, limit).await.map_err(|e| self.hub.fail(e))
    }

    /// How many audit entries match `filter`.
    pub(crate) async fn audit_count(&self, filter: &AuditFilter) -> Result<i64, ApiError> {
        store::count(&self.hub.db, &self.hub.trace, filter).await.map_err(|e| self.hub.fail(e))
    }

    /// Stores an entry now (not through the batching writer): the action it records may
    /// only happen once it is stored. `AUDIT_UNAVAILABLE` when it cannot be.
    pub(crate) async fn record_now(&self, entry: AuditEntry) -> Result<(), ApiError> {
        let action = entry.action;
        store::insert(&self.hub.db, &[entry]).await.map_err(|e| {
            tracing::error!(error = %e, %action, "cannot write the audit log");
            ApiError::AuditUnavailable
        })
    }

    /// Fits the insight models as of `as_of` and makes them current, or with
    /// `changed_only` scores again the customers changed since the current model's last
    /// refresh (a full fit when there is no model to update); this replica serves the
    /// result from the next request on, the others within seconds. The work runs as its
    /// own task: a client that goes away does not cut it short.
    pub(crate) async fn refresh_insights(&self, as_of: NaiveDate, changed_only: bool) -> Result<(), ApiError> {
        let sources = self.sources.clone();
        let fit = tokio::spawn(async move {
            if changed_only && refresh::update(&sources, as_of).await?.is_some() {
                return Ok(());
            }
            refresh::refresh(&sources, as_of).await.map(|_| ())
        });
        match fit.await {
            Ok(Ok(())) => {}
            Ok(Err(refresh::RefreshError::Database(db, e))) => return Err(ApiError::from_sql(db, &e)),
            Ok(Err(refresh::RefreshError::Running)) => return Err(ApiError::RefreshRunning),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "fitting the insight models failed");
                return Err(ApiError::Internal);
            }
            Err(e) => {
                tracing::error!(error = %e, "the insight fit panicked");
                return Err(ApiError::Internal);
            }
        };
        self.models.forget();
        Ok(())
    }

    /// Revokes `value` of `kind`, recording the admin's subject and the reason. This
    /// replica refuses the tokens from the next request on; the others once the bus has
    /// told them (at once over PostgreSQL), or when they next read the revocations.
    pub(crate) async fn revoke(
        &self,
        kind: RevocationKind,
        value: &str,
        by: &Viewer,
        request_id: &str,
        reason: Option<&str>,
    ) -> Result<DateTime<Utc>, ApiError> {
        let at = revocations::revoke(&self.hub.db, self.trace, kind, value, by, request_id, reason)
            .await
            .map_err(|e| self.hub.fail(e))?;
        if let Some(revocations) = self.revocations {
            revocations.note(kind, value, at);
        }
        self.bus.publish(Topic::Revocations).await;
        Ok(at)
    }

    /// Everything the sources hold about the customer with these links.
    pub(crate) async fn export(&self, customer_id: &str, links: Vec<Link>) -> Result<Export, ApiError> {
        subject::export(self.sources, self.trace, customer_id, links).await.map_err(failed)
    }

    /// The other customers sharing an email or phone with this one.
    pub(crate) async fn sharing_keys(&self, customer_id: &str) -> Result<Vec<String>, ApiError> {
        subject::sharing_keys(&self.hub.db, &self.hub.trace, customer_id).await.map_err(|e| self.hub.fail(e))
    }

    /// Erases the customer with these links from every source, then from the hub.
    pub(crate) async fn erase(&self, customer_id: &str, links: &[Link]) -> Result<Vec<Erased>, ApiError> {
        let erased = subject::erase(self.sources, customer_id, links).await;
        // Whatever was erased before a failure, this process's requests read afresh.
        self.links.invalidate();
        erased.map_err(failed)
    }
}
