//! The GraphQL schema, apart from any transport: types and resolvers, thin, over the
//! loaders. `build` assembles it; `sdl` prints it (the committed `schema.graphql`).

pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod campaign;
pub(crate) mod common;
pub(crate) mod crm;
pub(crate) mod crm_writes;
pub(crate) mod customer;
pub(crate) mod document;
pub mod ids;
pub(crate) mod inputs;
pub(crate) mod insights;
pub(crate) mod order;
pub mod privacy;
pub(crate) mod query;
pub(crate) mod revocation;
pub(crate) mod subject;
pub(crate) mod ticket;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

pub(crate) use common::{RequestContext, Shared};

/// The root query, one part per domain.
#[derive(MergedObject, Default)]
pub(crate) struct Query(
    query::CustomerQuery,
    audit::AuditQuery,
    subject::SubjectQuery,
    insights::InsightQuery,
    alerts::AlertQuery,
);

impl Default for query::CustomerQuery {
    fn default() -> Self {
        query::CustomerQuery
    }
}

/// The root mutation, one part per domain.
#[derive(MergedObject, Default)]
pub(crate) struct Mutation(
    crm_writes::CrmMutation,
    subject::SubjectMutation,
    insights::InsightMutation,
    revocation::RevocationMutation,
    alerts::AlertMutation,
);

/// The root subscription, one part per domain.
#[derive(MergedSubscription, Default)]
pub(crate) struct Subscription(alerts::AlertSubscription);

pub(crate) type C360Schema = Schema<Query, Mutation, Subscription>;

/// The whole schema, every class shown: what `schema.graphql` prints, and what each
/// viewer's schema is cut from ([`privacy::viewer`]).
/// Suggestions ("did you mean …"): async-graphql's own are off: the hub makes its own,
/// from the viewer's schema, for the roles configured to get them.
/// Depth and the other operation limits are the hub's, checked before validation
/// ([`limits`]).
pub(crate) fn builder(shared: Option<Shared>) -> SchemaBuilder<Query, Mutation, Subscription> {
    let builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .register_output_type::<query::Node>()
        .disable_suggestions();
    match shared {
        Some(shared) => builder.data(shared),
        None => builder,
    }
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder(None).finish().sdl()
}
