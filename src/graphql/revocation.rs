//! Revoking tokens, for admins: one token by its id, or every token of a subject or of a
//! partner issued up to now. Every replica refuses them within seconds.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::common::{admin_only, request};
use crate::error::ApiError;
use crate::revocations::RevocationKind;

#[derive(Default)]
pub(crate) struct RevocationMutation;

/// A revocation as stored.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct Revocation {
    /// What was revoked: one token, a subject's or a partner's.
    pub(crate) kind: RevocationKind,
    /// The token id, subject or partner id.
    pub(crate) value: String,
    /// Tokens of a subject or partner issued up to this time are refused.
    pub(crate) revoked_at: DateTime<Utc>,
}

#[Object]
impl RevocationMutation {
    /// Revokes a token by its id (`jti`), or every token of a subject or of a partner
    /// issued up to now; each replica refuses them within a few seconds (HTTP 401). The
    /// revocation keeps who made it, when and why. Admins only.
    async fn revoke_tokens(
        &self,
        ctx: &Context<'_>,
        kind: RevocationKind,
        value: String,
        reason: Option<String>,
    ) -> Result<Revocation> {
        admin_only(ctx, "revokeTokens")?;
        // As tokens carry it: a token's subject, partner or id has no space at either end
        // (a token with one is refused), so a value with one would match nothing.
        if !crate::auth::is_identifier(&value, 320) {
            let message = "`value` must be 1 to 320 characters, without control characters or spaces at either end";
            return Err(ApiError::BadInput(message.into()).into());
        }
        if reason.as_ref().is_some_and(|r| r.len() > 500) {
            return Err(ApiError::BadInput("`reason` must be at most 500 characters".into()).into());
        }
        let rc = request(ctx);
        let admin = rc.loaders.admin();
        let revoked_at = admin.revoke(kind, &value, &rc.viewer, &rc.request_id, reason.as_deref()).await?;
        Ok(Revocation { kind, value, revoked_at })
    }
}
