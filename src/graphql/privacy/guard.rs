//! The policy at work in every request, as an async-graphql extension:
//! - after parsing, the document is checked for names the viewer may not use; they fail
//!   validation exactly as unknown names do (same message, nothing else reported inside
//!   them, no suggestions: the schema is built with suggestions off);
//! - as each field resolves, a masked class is rewritten into its mask format, so no alias,
//!   fragment or `node` path returns the raw value.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, NextValidation, ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ServerResult, ValidationResult, Value, Variables};

use super::mask_value;
use super::schema::{PrivacyTable, Violation};
use crate::policy::{Access, Decision};

/// Installs the policy into a schema.
pub struct PolicyGuard {
    table: Arc<PrivacyTable>,
}

impl PolicyGuard {
    pub fn new(table: Arc<PrivacyTable>) -> Self {
        PolicyGuard { table }
    }
}

impl ExtensionFactory for PolicyGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Guard { table: self.table.clone(), violations: Mutex::new(Vec::new()) })
    }
}

/// One request's guard.
struct Guard {
    table: Arc<PrivacyTable>,
    /// What the document names that the viewer may not use, found after parsing and
    /// reported with GraphQL validation's own errors.
    violations: Mutex<Vec<Violation>>,
}

/// Validation errors, ours and GraphQL's alike, with the code clients branch on.
fn coded(mut errors: Vec<ServerError>) -> Vec<ServerError> {
    for e in &mut errors {
        e.extensions.get_or_insert_with(Default::default).set("code", "GRAPHQL_VALIDATION_FAILED");
    }
    errors
}

/// A request without an [`Access`] is a wiring bug; it sees nothing.
fn no_access() -> ServerError {
    tracing::error!("GraphQL request without an access decision");
    ServerError::new("internal error", None)
}

#[async_graphql::async_trait::async_trait]
impl Extension for Guard {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let access = ctx.data_opt::<Access>().ok_or_else(no_access)?;
        *self.violations.lock().unwrap_or_else(|e| e.into_inner()) = self.table.check(&document, variables, access);
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        let violations = std::mem::take(&mut *self.violations.lock().unwrap_or_else(|e| e.into_inner()));
        if violations.is_empty() {
            return result.map_err(coded);
        }
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
        Err(coded(errors))
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let privacy = if info.is_for_introspection { None } else { self.table.privacy(info.parent_type, info.name) };
        let Some(privacy) = privacy else {
            return next.run(ctx, info).await;
        };
        let access = ctx.data_opt::<Access>().ok_or_else(no_access)?;
        match access.decision(privacy.class) {
            Decision::Show => next.run(ctx, info).await,
            // A lookup's result is not of its key's class: it is not masked.
            Decision::Mask if privacy.lookup => next.run(ctx, info).await,
            Decision::Mask => Ok(next.run(ctx, info).await?.map(|v| mask_value(privacy.mask, v))),
            // Validation turned the document away already; never resolve it regardless.
            Decision::Hide => Err(ServerError::new("internal error", None)),
        }
    }
}
