//! Mutations on the CRM: granting and revoking consents, adding notes. Each write goes
//! through the request's loaders, which forget what it made stale.

use async_graphql::{Context, ID, Object, Result};
use c360_macros::classified;
use chrono::Utc;

use super::common::ids;
use super::common::{refused, request, require, shared};
use super::crm::{Consent, Note};
use super::customer::Customer;
use super::ids::Kind;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::ApiError;
use crate::policy::ConsentScope;
use crate::sources::SourceName;

/// The longest note accepted, in characters.
const MAX_NOTE: usize = 4000;

/// Partner ids and purposes: short lowercase names (`acme-insurance`, `offers`).
fn name(what: &'static str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if crate::auth::is_name(value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::BadInput(format!("`{what}` must be 1 to 64 characters of a-z, 0-9, `-`, `_` or `.`")))
    }
}

/// The customer a mutation is about (null when the viewer cannot see one by that id), and
/// the CRM record its consents and notes are written to.
async fn target(ctx: &Context<'_>, id: &ID) -> Result<Option<(Customer, i64)>, ApiError> {
    let key = ids(ctx).parse_id_of(Kind::Customer, id)?;
    let Some(customer) = Customer::load(ctx, key).await? else { return Ok(None) };
    let Some(crm_key) = customer.primary_crm_key() else {
        return Err(ApiError::BadInput("this customer has no CRM record to hold consents and notes".into()));
    };
    Ok(Some((customer, crm_key)))
}

/// The partner and purpose a consent mutation is about, once the viewer may change
/// consents: the company's own staff and applications with `consent:write`; partners
/// never, whatever their token's scopes.
fn consent_change(
    ctx: &Context<'_>,
    what: &'static str,
    partner: &str,
    purpose: Option<&str>,
) -> Result<ConsentScope, ApiError> {
    require(ctx, "consent:write").map_err(|e| refused(ctx, what, e))?;
    if request(ctx).viewer.partner.is_some() {
        return Err(refused(ctx, what, ApiError::Forbidden("consent:write")));
    }
    let partner = name("partner", partner)?;
    if !shared(ctx).config.partners.contains(&partner) {
        return Err(ApiError::BadInput(format!("`partner`: no partner `{partner}` (config `partners`)")));
    }
    Ok(ConsentScope { partner, purpose: purpose.map(|p| name("purpose", p)).transpose()? })
}

/// Stores the audit entry of a consent change now, before the change: who changed whose
/// consent, for which partner (`target`) and purpose (`fields`, `*` for any or every).
async fn record(
    ctx: &Context<'_>,
    action: AuditAction,
    customer: &Customer,
    scope: &ConsentScope,
) -> Result<(), ApiError> {
    let rc = request(ctx);
    let purpose = scope.purpose.clone().unwrap_or_else(|| "*".to_owned());
    let entry = AuditEntry {
        target: Some(scope.partner.clone()),
        ..AuditEntry::new(&rc.viewer, &rc.request_id, action, &customer.id, vec![purpose])
    };
    rc.loaders.admin().record_now(entry).await
}

#[derive(Default)]
pub(crate) struct CrmMutation;

#[classified]
#[Object]
impl CrmMutation {
    /// Records that the customer consents to share their data with `partner`, for
    /// `purpose` (any purpose when left out). Takes effect for the next request; granting a
    /// consent that stands already changes nothing. Needs `consent:write`; partners cannot.
    /// Null when there is no such customer.
    async fn grant_consent(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        partner: String,
        purpose: Option<String>,
    ) -> Result<Option<Customer>> {
        let scope = consent_change(ctx, "grantConsent", &partner, purpose.as_deref())?;
        let Some((customer, crm_key)) = target(ctx, &customer_id).await? else { return Ok(None) };
        let loaders = &request(ctx).loaders;
        let ledger = loaders.consent_ledger.load_many(customer.keys(SourceName::Crm)).await?;
        let standing = ledger
            .values()
            .flat_map(|l| l.iter())
            .map(Consent::from)
            .any(|c| c.active && c.partner == scope.partner && c.purpose == scope.purpose);
        if !standing {
            record(ctx, AuditAction::ConsentGranted, &customer, &scope).await?;
            loaders.crm_writes().grant_consent(crm_key, &scope, Utc::now()).await?;
            tracing::info!(partner = %scope.partner, "consent granted");
        }
        Ok(Some(customer))
    }

    /// Withdraws the customer's consents for `partner`: for `purpose` only, or for every
    /// purpose when left out. Takes effect for the next request. Needs `consent:write`;
    /// partners cannot. Null when there is no such customer.
    async fn revoke_consent(
        &self,
        ctx: &Context<'_>,
        customer_id: ID,
        partner: String,
        purpose: Option<String>,
    ) -> Result<Option<Customer>> {
        let scope = consent_change(ctx, "revokeConsent", &partner, purpose.as_deref())?;
        let Some((customer, _)) = target(ctx, &customer_id).await? else { return Ok(None) };
        record(ctx, AuditAction::ConsentRevoked, &customer, &scope).await?;
        let ConsentScope { partner, purpose } = scope;
        let keys = customer.keys(SourceName::Crm);
        let writes = request(ctx).loaders.crm_writes();
        let revoked = writes.revoke_consent(&keys, &partner, purpose.as_deref(), Utc::now()).await?;
        tracing::info!(partner = %partner, revoked, "consent revoked");
        Ok(Some(customer))
    }

    /// Adds a note to the customer (class internal: who sees notes is the policy's
    /// call, for the note it returns too: viewers who may not read notes cannot add them).
    /// Needs `notes:write`; partners cannot. Null when there is no such customer.
    #[class(internal)]
    async fn add_note(&self, ctx: &Context<'_>, customer_id: ID, body: String) -> Result<Option<Note>> {
        require(ctx, "notes:write")?;
        // Partners never read notes, so they do not write them either.
        if request(ctx).viewer.partner.is_some() {
            return Err(ApiError::Forbidden("notes:write").into());
        }
        let body = body.trim();
        if body.is_empty() || body.chars().count() > MAX_NOTE {
            return Err(ApiError::BadInput(format!("`body` must be 1 to {MAX_NOTE} characters")).into());
        }
        let Some((_, crm_key)) = target(ctx, &customer_id).await? else { return Ok(None) };
        let rc = request(ctx);
        let note = rc.loaders.crm_writes().add_note(crm_key, &rc.viewer.subject, body, Utc::now()).await?;
        Ok(note.as_ref().map(Note::from))
    }
}
