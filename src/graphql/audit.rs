//! The audit log, for admins: who saw whose personal data.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::common::ids;
use super::common::{admin_only, connection, page_size, request, wants_total};
use super::ids::{Ids, Kind};
use crate::audit::AuditAction;
use crate::audit::store::{AuditFilter, AuditRow};
use crate::error::ApiError;

/// One customer's personal data seen, exported or erased in one request, a change of
/// their consents, a revocation of tokens, a read of this log, or a privileged operation
/// refused.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct AuditEntry {
    /// When it happened.
    pub(crate) at: DateTime<Utc>,
    /// The request, as in its `x-request-id` response header.
    pub(crate) request_id: String,
    /// The token's subject.
    pub(crate) subject: String,
    /// The token's role (`admin`, `agent`, …).
    pub(crate) role: String,
    /// The token's partner, for partner tokens.
    pub(crate) partner: Option<String>,
    /// What was done.
    pub(crate) action: AuditAction,
    /// The customer's id; null when the entry is about no customer (a revocation, a read
    /// of the whole log, a refusal).
    pub(crate) customer_id: Option<ID>,
    /// The fields shown unmasked (names, never values); for a revocation, what kind of
    /// thing was revoked (`token_id`, `subject` or `partner`); for a consent change, the
    /// purpose (`*`: any, or every); for a read of the log, the filters used; for a
    /// refusal, the operation refused.
    pub(crate) fields: Vec<String>,
    /// For a revocation: the token id, subject or partner id revoked.
    pub(crate) revoked: Option<String>,
    /// For a consent change: the partner.
    pub(crate) consent_partner: Option<String>,
    /// For a change in the alert inbox: the alert's id.
    pub(crate) alert: Option<ID>,
    #[graphql(skip)]
    pub(crate) id: i64,
    /// The customer's own id (empty: none), for the cursor.
    #[graphql(skip)]
    pub(crate) key: String,
}

impl AuditEntry {
    /// An entry as the log stores it, its customer's id sealed with `ids`.
    fn read(row: AuditRow, ids: &Ids) -> Result<Self, ApiError> {
        let action = row.action.parse().map_err(|_| {
            tracing::error!(action = row.action, "unknown action in the audit log");
            ApiError::Internal
        })?;
        Ok(AuditEntry {
            at: row.at,
            request_id: row.request_id,
            subject: row.subject,
            role: row.role,
            partner: row.partner,
            action,
            customer_id: (!row.customer_id.is_empty()).then(|| ids.global_id(Kind::Customer, &row.customer_id)),
            revoked: row.target.clone().filter(|_| action == AuditAction::Revoke),
            consent_partner: row
                .target
                .clone()
                .filter(|_| matches!(action, AuditAction::ConsentGranted | AuditAction::ConsentRevoked)),
            alert: row
                .target
                .filter(|_| action == AuditAction::AlertChanged)
                .map(|n| ids.global_id(Kind::ServiceAlert, &n)),
            fields: row.fields.split(',').filter(|f| !f.is_empty()).map(str::to_owned).collect(),
            id: row.id,
            key: row.customer_id,
        })
    }
}

connection!(AuditConnection, AuditEdge, AuditEntry, "audit record");

#[derive(Default)]
pub(crate) struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit log, newest first: whose personal data was shown unmasked, exported or
    /// erased, by whom and when. Filters combine. Admins only.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        subject: Option<String>,
        customer_id: Option<ID>,
        since: Option<DateTime<Utc>>,
    ) -> Result<AuditConnection> {
        admin_only(ctx, "auditLog")?;
        let first = page_size(ctx, first)?;
        let before = after.as_deref().map(|c| ids(ctx).parse_audit_cursor(c)).transpose()?;
        let filter = AuditFilter {
            subject,
            customer_id: customer_id.map(|id| ids(ctx).parse_id_of(Kind::Customer, &id)).transpose()?,
            since,
            action: None,
        };
        // Who read whose trail is in the log too (the filters by name, never by value).
        let used = [("subject", filter.subject.is_some()), ("since", since.is_some()), ("after", before.is_some())];
        let used = used.iter().filter(|(_, on)| *on).map(|(name, _)| (*name).to_owned()).collect();
        let whose = filter.customer_id.as_deref().unwrap_or_default();
        request(ctx).reveals.note(crate::audit::AuditAction::AuditRead, whose, used);
        let admin = request(ctx).loaders.admin();
        let rows = admin.audit_page(&filter, before.as_ref(), i64::from(first) + 1).await?;
        let total = if wants_total(ctx) { admin.audit_count(&filter).await? } else { 0 };
        let entries = rows.into_iter().map(|row| AuditEntry::read(row, ids(ctx))).collect::<Result<Vec<_>, _>>()?;
        Ok(AuditConnection::from_items(entries, first, |e| Ids::audit_cursor(e.id, &e.key), total))
    }
}
