//! Subject rights for admins: export everything about a customer, or erase them.
//! Both are written to the audit log before they happen; without it, they do not.

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use strum::IntoEnumIterator as _;

use super::common::ids;
use super::common::{admin_only, refused, request};
use super::customer::Customer;
use super::ids::Kind;
use crate::audit::store::AuditFilter;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::ApiError;
use crate::identity::store::Link;
use crate::policy::{Access, Decision, PrivacyClass};
use crate::subject::Export;

/// Stores the audit entry now, before the action: no export or erasure goes unrecorded.
async fn record(ctx: &Context<'_>, action: AuditAction, customer_id: &str, links: &[Link]) -> Result<(), ApiError> {
    let rc = request(ctx);
    let mut sources: Vec<String> = links.iter().map(|l| l.source.clone()).collect();
    sources.dedup();
    let entry = AuditEntry::new(&rc.viewer, &rc.request_id, action, customer_id, sources);
    rc.loaders.admin().record_now(entry).await
}

#[derive(Default)]
pub(crate) struct SubjectQuery;

#[Object]
impl SubjectQuery {
    /// Everything the hub can find about the customer in the four sources, and how their
    /// records were linked, as JSON (the right of access). Recorded in the audit log.
    /// Admins only. Null when there is no such customer.
    ///
    /// The token must see every class of data shown (an admin token lacking a scope the
    /// policy requires, say `tickets:read`, would get a partial export that passes for a
    /// whole one): otherwise `FORBIDDEN`, naming the classes it does not see.
    async fn export_customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Json<Export>>> {
        admin_only(ctx, "exportCustomer")?;
        let access = ctx.data_opt::<Access>();
        let unseen: Vec<String> = PrivacyClass::iter()
            .filter(|c| access.is_none_or(|a| a.decision(*c) != Decision::Show))
            .map(|c| c.to_string())
            .collect();
        if !unseen.is_empty() {
            return Err(refused(ctx, "exportCustomer", ApiError::ExportIncomplete(unseen.join(", "))).into());
        }
        let key = ids(ctx).parse_id_of(Kind::Customer, &id)?;
        let Some(customer) = Customer::load(ctx, key).await? else { return Ok(None) };
        record(ctx, AuditAction::Export, &customer.id, &customer.links).await?;
        let links = customer.links.as_ref().clone();
        let export = request(ctx).loaders.admin().export(&customer.id, links).await?;
        Ok(Some(Json(export)))
    }
}

/// What erasure did in one database.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct SourceErasure {
    /// `crm`, `shop`, `helpdesk`, `marketing`, or `hub` (identity links).
    pub(crate) database: String,
    /// Rows deleted.
    pub(crate) deleted: i64,
    /// Rows kept with what described the person blanked (ticket subjects). Orders are
    /// kept as they are, without the account that said whose they were.
    pub(crate) anonymized: i64,
}

/// The outcome of `eraseCustomer`.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct ErasureReport {
    /// The customer erased.
    pub(crate) customer_id: ID,
    /// The customer was erased before; nothing was left to do.
    pub(crate) already_erased: bool,
    /// Per database, what was done (empty when already erased).
    pub(crate) sources: Vec<SourceErasure>,
    /// Other customers with an email or phone this one had: possibly the same person,
    /// kept apart by the resolver. Not erased: check each, and erase it too if it is them.
    pub(crate) sharing_identifiers: Vec<ID>,
}

#[derive(Default)]
pub(crate) struct SubjectMutation;

#[Object]
impl SubjectMutation {
    /// Erases the customer (the right to be forgotten): their records in the four sources
    /// are deleted or irreversibly anonymized, then their identity links. Idempotent:
    /// erasing again reports `alreadyErased`. The audit log keeps who erased whom, never
    /// what. Admins only. Null when there is no such customer and never was.
    async fn erase_customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ErasureReport>> {
        admin_only(ctx, "eraseCustomer")?;
        let key = ids(ctx).parse_id_of(Kind::Customer, &id)?;
        let Some(customer) = Customer::load(ctx, key.clone()).await? else {
            let filter =
                AuditFilter { customer_id: Some(key), action: Some(AuditAction::Erase), ..AuditFilter::default() };
            let erasures = request(ctx).loaders.admin().audit_count(&filter).await?;
            return Ok((erasures > 0).then(|| ErasureReport {
                customer_id: id,
                already_erased: true,
                sources: vec![],
                sharing_identifiers: vec![],
            }));
        };
        record(ctx, AuditAction::Erase, &customer.id, &customer.links).await?;
        let sharing = request(ctx).loaders.admin().sharing_keys(&customer.id).await?;
        let report = request(ctx).loaders.admin().erase(&customer.id, &customer.links).await?;
        tracing::info!(customer = %customer.id, "customer erased");
        Ok(Some(ErasureReport {
            customer_id: ids(ctx).global_id(Kind::Customer, &customer.id),
            already_erased: false,
            sources: report
                .into_iter()
                .map(|r| SourceErasure {
                    database: r.db.to_string(),
                    deleted: i64::try_from(r.deleted).unwrap_or(i64::MAX),
                    anonymized: i64::try_from(r.anonymized).unwrap_or(i64::MAX),
                })
                .collect(),
            sharing_identifiers: sharing.iter().map(|c| ids(ctx).global_id(Kind::Customer, c)).collect(),
        }))
    }
}
