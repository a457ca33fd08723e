//! The GraphQL schema, apart from any transport: types and resolvers, thin, over the
//! loaders. `build` assembles it; `sdl` prints it (the committed `schema.graphql`).

pub mod audit;
pub mod campaign;
pub mod common;
pub mod crm;
pub mod crm_writes;
pub mod customer;
pub mod field_order;
pub mod ids;
pub mod insights;
pub mod limits;
pub mod order;
pub mod privacy;
pub mod query;
pub mod revocation;
pub mod subject;
pub mod suggestions;
pub mod ticket;

use async_graphql::{EmptySubscription, MergedObject, Schema};

pub use common::{RequestContext, Shared};

use privacy::PolicyGuard;

/// The root query, one part per domain.
#[derive(MergedObject, Default)]
pub struct Query(query::CustomerQuery, audit::AuditQuery, subject::SubjectQuery, insights::InsightQuery);

impl Default for query::CustomerQuery {
    fn default() -> Self {
        query::CustomerQuery
    }
}

/// The root mutation, one part per domain.
#[derive(MergedObject, Default)]
pub struct Mutation(
    crm_writes::CrmMutation,
    subject::SubjectMutation,
    insights::InsightMutation,
    revocation::RevocationMutation,
);

pub type C360Schema = Schema<Query, Mutation, EmptySubscription>;

/// The schema with its process-wide data, and with the privacy guard when `guarded` (the
/// schema that rejects documents naming what their viewer may not see; see `Hub`).
/// Suggestions ("did you mean …") are off: they would name fields the viewer may not see.
/// Depth and the other operation limits are the hub's, checked before validation
/// ([`limits`]).
pub fn build(shared: Option<Shared>, guarded: bool) -> C360Schema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .register_output_type::<query::Node>()
        .disable_suggestions();
    if let Some(shared) = shared {
        builder = builder.data(shared);
    }
    if guarded {
        builder = builder.extension(PolicyGuard);
    }
    builder.finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build(None, false).sdl()
}
