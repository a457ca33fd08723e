//! The schema that answers documents naming what their viewer may not see. After
//! parsing, [`PrivacyTable::check`](super::PrivacyTable::check) finds those names; such a
//! document is validated by a schema with this extension, which reports them exactly as
//! GraphQL reports unknown names (same message, nothing else reported inside them, no
//! suggestions: the schema is built with suggestions off), and never executes it.
//! Documents without such names run on a schema without extensions (see `Hub`).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::{ServerError, ValidationResult};

use super::schema::Violation;

/// What a document names that its viewer may not use, handed to the guarded schema with
/// the request.
pub struct Violations(pub Vec<Violation>);

/// Installs the rejection of [`Violations`] into a schema.
pub struct PolicyGuard;

impl ExtensionFactory for PolicyGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Guard)
    }
}

struct Guard;

#[async_graphql::async_trait::async_trait]
impl Extension for Guard {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        let Some(Violations(violations)) = ctx.data_opt::<Violations>() else {
            // Only documents with violations come here; never run one on that assumption.
            tracing::error!("guarded GraphQL request without its violations");
            return Err(vec![ServerError::new("invalid document", None)]);
        };
        let inside = |e: &ServerError| {
            e.locations.first().is_some_and(|p| violations.iter().any(|v| (v.span.0..=v.span.1).contains(p)))
        };
        let mut errors: Vec<ServerError> =
            result.err().unwrap_or_default().into_iter().filter(|e| !inside(e)).collect();
        errors.extend(violations.iter().filter_map(|v| Some(ServerError::new(v.message.clone()?, Some(v.pos)))));
        if errors.is_empty() {
            // Only silenced spreads: cannot happen (the fragment's hidden type is reported
            // with it), but a document is never let through on that assumption.
            errors.push(ServerError::new("invalid document", None));
        }
        errors.sort_by_key(|e| e.locations.first().copied());
        Err(errors)
    }
}
