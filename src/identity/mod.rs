//! Identity resolution: normalised matching keys, the incremental resolver that links
//! source records to golden customers, the hub store's link tables, and the measure of
//! resolution quality against the seeder's ground truth.

pub(crate) mod normalize;
pub mod quality;
pub(crate) mod resolve;
pub mod store;

pub use resolve::{ResolveReport, Resolver};
