//! c360: a customer 360 hub. One GraphQL schema over four source systems (CRM, shop,
//! helpdesk, marketing), each its own SQLite, PostgreSQL or MySQL database, with records
//! resolved into golden customers and served through batched loaders.
//!
//! A request travels down and back up:
//! - [`http`]: the one entry point over HTTP and websockets (the bearer token → viewer);
//! - [`request`]: the request engine (admission: documents parsed, limited, checked and
//!   charged to rate limits; execution under the policy with the statement trace and the
//!   request's loaders; the audit of what a response revealed);
//! - [`graphql`]: types and thin resolvers;
//! - [`loaders`]: one batched query per source per batch;
//! - [`sources`]: the SQL of each source, over [`sources::engine`] (one code path for
//!   three engines).
//!
//! Beside that path: [`identity`] resolves source records into customers (normalised
//! keys, the incremental resolver, the hub store's links); [`seed`] writes demo data;
//! [`insights`] holds the customer models (RFM, BG/NBD); [`auth`] says who is asking
//! (bearer tokens);
//! [`policy`] decides what they may see of each field (show, mask, hide); [`audit`]
//! records who saw whose personal data; [`alerts`] detects service alerts in the sources
//! and keeps their log; [`metrics`] counts for operators; [`revocations`]
//! refuses revoked tokens;
//! [`config`] and [`cli`] start it all, [`telemetry`] logs it; [`error`] is what clients see when something goes
//! wrong.
//!
//! Items are `pub` only where `main.rs`, the integration tests or the benches use them;
//! the rest is `pub(crate)`, so the crate's boundary is what is `pub`.
#![warn(unreachable_pub)]

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod insights;
pub mod jobs;
pub mod loaders;
pub mod metrics;
pub mod names;
pub mod policy;
pub mod request;
pub mod revocations;
pub mod seed;
pub mod sources;
pub mod subject;
pub mod telemetry;
