//! What the hub does with a GraphQL document apart from running it: its limits and cost
//! ([`limits`]), the names a misspelt field may have meant ([`suggestions`]), and the
//! response's fields put in the document's order ([`field_order`]).

pub(crate) mod field_order;
pub(crate) mod limits;
pub(crate) mod suggestions;
