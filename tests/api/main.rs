//! Integration tests: the real server on a random port over real databases.
//! SQLite always; PostgreSQL and MySQL/MariaDB when `C360_TEST_POSTGRES_URL` and
//! `C360_TEST_MYSQL_URL` are set (`.ci/run` sets both and requires them).

mod alerts;
mod audit;
mod auth;
mod consent;
mod contract;
mod crash;
mod customer360;
mod errors;
mod helpers;
mod hidden;
mod identity;
mod ids;
mod insights;
mod jobs;
mod layers;
mod limits;
mod logs;
mod partner;
mod persisted;
mod playground;
mod privacy;
mod resilience;
mod schema;
mod shutdown;
mod slow;
mod subject;
mod websocket;
