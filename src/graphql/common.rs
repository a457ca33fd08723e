//! Types shared by the domain modules: the request context, connections, money, and
//! reading source strings into GraphQL enums.

use std::str::FromStr;
use std::sync::Arc;

use async_graphql::{Context, SimpleObject};
use rust_decimal::Decimal;

use crate::audit::Reveals;
use crate::auth::{Role, Viewer};
use crate::config::Config;
use crate::error::ApiError;
use crate::loaders::batch::BatchQueue;
use crate::loaders::{Kept, Loaders};
use crate::policy::Rows;
use crate::sources::{Sources, SqlTrace};

/// Per-request data: who asks, the request's loaders (over its statement trace), and what the
/// response reveals (for the audit log).
pub(crate) struct RequestContext {
    pub(crate) viewer: Viewer,
    /// Unique per request; sent back as `x-request-id` and kept in audit entries.
    pub(crate) request_id: String,
    pub(crate) loaders: Loaders,
    pub(crate) reveals: Arc<Reveals>,
}

impl RequestContext {
    /// A context whose loaders batch through `queue`, for a viewer who sees the customers
    /// `rows` admits; run the request with [`crate::loaders::batch::drive`] on the same
    /// queue.
    pub(crate) fn new(
        sources: &Sources,
        kept: &Kept,
        viewer: Viewer,
        rows: Rows,
        trace: SqlTrace,
        queue: &BatchQueue,
        request_id: String,
    ) -> Self {
        let loaders = Loaders::new(sources, kept, &trace, queue, rows, &viewer.subject);
        RequestContext { viewer, request_id, loaders, reveals: Arc::default() }
    }
}

/// Process-wide data every resolver may read.
///
/// No databases: resolvers reach data only through the request's loaders.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// The keys ids and cursors are sealed with.
    pub(crate) ids: Arc<super::ids::Ids>,
}

pub(crate) fn request<'a>(ctx: &Context<'a>) -> &'a RequestContext {
    ctx.data_unchecked::<RequestContext>()
}

/// The hub's ids and cursors, for resolvers.
pub(crate) fn ids<'a>(ctx: &Context<'a>) -> &'a super::ids::Ids {
    &shared(ctx).ids
}

pub(crate) fn shared<'a>(ctx: &Context<'a>) -> &'a Shared {
    ctx.data_unchecked::<Shared>()
}

/// Fails with `FORBIDDEN` unless the token has `scope`.
pub(crate) fn require(ctx: &Context<'_>, scope: &'static str) -> Result<(), ApiError> {
    if request(ctx).viewer.has_scope(scope) { Ok(()) } else { Err(ApiError::Forbidden(scope)) }
}

/// For operations only admins may run, whatever the scopes: `what` (the field's name) is
/// recorded in the audit log when it is refused.
pub(crate) fn admin_only(ctx: &Context<'_>, what: &'static str) -> Result<(), ApiError> {
    if request(ctx).viewer.role == Role::Admin { Ok(()) } else { Err(refused(ctx, what, ApiError::AdminOnly)) }
}

/// A privileged operation (`what`) refused to the token: recorded in the audit log (after
/// the response, with its other entries), and the error returned.
pub(crate) fn refused(ctx: &Context<'_>, what: &'static str, error: ApiError) -> ApiError {
    request(ctx).reveals.note(crate::audit::AuditAction::Refused, "", vec![what.to_owned()]);
    error
}

/// Checks `first` against the configured maximum.
pub(crate) fn page_size(ctx: &Context<'_>, first: i32) -> Result<i32, ApiError> {
    let max = shared(ctx).config.graphql.max_page_size;
    if (0..=max).contains(&first) { Ok(first) } else { Err(ApiError::PageSizeOutOfRange { got: first, max }) }
}

/// Whether the client selected `totalCount` on the connection being resolved.
pub(crate) fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// Relay page information.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct PageInfo {
    /// More items follow the last edge.
    pub(crate) has_next_page: bool,
    /// Always false: lists are read forwards only.
    pub(crate) has_previous_page: bool,
    #[graphql(skip)]
    pub(crate) start: Option<super::ids::Cursor>,
    #[graphql(skip)]
    pub(crate) end: Option<super::ids::Cursor>,
}

#[async_graphql::ComplexObject]
impl PageInfo {
    /// Cursor of the first edge.
    async fn start_cursor(&self, ctx: &Context<'_>) -> Option<String> {
        self.start.as_ref().map(|c| ids(ctx).seal_cursor(c))
    }

    /// Cursor of the last edge; pass it as `after` for the next page.
    async fn end_cursor(&self, ctx: &Context<'_>) -> Option<String> {
        self.end.as_ref().map(|c| ids(ctx).seal_cursor(c))
    }
}

/// Declares a Relay connection and its edge type for one node type.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty, $what:literal) => {
        #[doc = concat!("One ", $what, " of a list, with the cursor that continues after it.")]
        #[derive(async_graphql::SimpleObject)]
        #[graphql(complex)]
        pub(crate) struct $edge {
            #[doc = concat!("The ", $what, ".")]
            pub(crate) node: $node,
            #[graphql(skip)]
            pub(crate) position: $crate::graphql::ids::Cursor,
        }

        #[async_graphql::ComplexObject]
        impl $edge {
            /// Opaque; pass it as `after` to read on from here.
            async fn cursor(&self, ctx: &async_graphql::Context<'_>) -> String {
                $crate::graphql::common::ids(ctx).seal_cursor(&self.position)
            }
        }

        #[doc = concat!("A page of ", $what, "s (Relay connection).")]
        #[derive(async_graphql::SimpleObject)]
        pub(crate) struct $connection {
            #[doc = concat!("The ", $what, "s of this page, each with its cursor.")]
            pub(crate) edges: Vec<$edge>,
            /// Whether more follow, and the cursor to read on from.
            pub(crate) page_info: $crate::graphql::common::PageInfo,
            /// How many items the whole list holds.
            pub(crate) total_count: i64,
        }

        impl $connection {
            /// Builds a page from up to `first + 1` items (the extra one only says
            /// there is more).
            pub(crate) fn from_items(
                mut items: Vec<$node>,
                first: i32,
                cursor: impl Fn(&$node) -> $crate::graphql::ids::Cursor,
                total_count: i64,
            ) -> Self {
                let has_next_page = items.len() > first as usize;
                items.truncate(first as usize);
                let edges: Vec<$edge> = items.into_iter().map(|node| $edge { position: cursor(&node), node }).collect();
                let page_info = $crate::graphql::common::PageInfo {
                    has_next_page,
                    has_previous_page: false,
                    start: edges.first().map(|e| e.position.clone()),
                    end: edges.last().map(|e| e.position.clone()),
                };
                $connection { edges, page_info, total_count }
            }
        }
    };
}
pub(crate) use connection;

/// An amount of money: an exact decimal and its currency.
#[derive(Debug, Clone, PartialEq, Eq, SimpleObject)]
pub(crate) struct Money {
    /// Exact decimal with the currency's minor units, e.g. `"129.90"`.
    pub(crate) amount: String,
    /// ISO 4217 code, e.g. `EUR`.
    pub(crate) currency: String,
}

impl Money {
    /// From minor units (cents); all currencies the sources use have two decimals.
    pub(crate) fn from_cents(cents: i64, currency: &str) -> Self {
        Money { amount: Decimal::new(cents, 2).to_string(), currency: currency.to_owned() }
    }
}

/// Reads a source's status or category string into a GraphQL enum; a value the schema
/// does not know is a data problem, logged and reported as `INTERNAL`.
pub(crate) fn enum_value<E: FromStr>(field: &'static str, value: &str) -> Result<E, ApiError> {
    E::from_str(value).map_err(|_| {
        tracing::error!(field, value, "unknown enum value in source data");
        ApiError::Internal
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact() {
        assert_eq!(Money::from_cents(12990, "EUR").amount, "129.90");
        assert_eq!(Money::from_cents(5, "GBP").amount, "0.05");
        assert_eq!(Money::from_cents(-250, "USD").amount, "-2.50");
    }
}
