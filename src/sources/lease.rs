//! Leases on background jobs, in the hub store (`job_leases`): with many replicas over
//! one hub store, the replica holding a job's lease runs it and the others skip their
//! turn. A lease lasts until it is released or expires (so a replica that dies mid-job
//! holds it no longer than its time to live).

use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;

use super::engine::{Arg, Database, SqlTrace};

/// This process, as a lease holder.
fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| uuid::Uuid::now_v7().to_string())
}

/// A job's lease, held by this process until [`Lease::release`] or its expiry.
#[derive(Debug)]
pub struct Lease<'a> {
    hub: &'a Database,
    name: &'static str,
}

impl<'a> Lease<'a> {
    /// Takes the lease on `name` for `ttl` when it is free, expired or already this
    /// process's; `None` when another replica holds it.
    pub async fn take(hub: &'a Database, name: &'static str, ttl: Duration) -> Result<Option<Lease<'a>>, sqlx::Error> {
        let now = Utc::now();
        let until = now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::MAX);
        let trace = SqlTrace::default();
        let renewed = hub
            .execute(
                &trace,
                "update job_leases set holder = ?, expires_at = ? where name = ? and (expires_at < ? or holder = ?)",
                &[holder().into(), until.into(), name.into(), now.into(), holder().into()],
            )
            .await?;
        if renewed > 0 {
            return Ok(Some(Lease { hub, name }));
        }
        // The first lease on this job: whoever inserts it holds it.
        let (head, tail) = hub.engine.insert_ignore();
        let sql = format!("{head} job_leases (name, holder, expires_at) values (?, ?, ?){tail}");
        let args: [Arg; 3] = [name.into(), holder().into(), until.into()];
        let inserted = hub.execute(&trace, &sql, &args).await?;
        Ok((inserted > 0).then_some(Lease { hub, name }))
    }

    /// Gives the lease up, for another replica to take at once.
    pub(crate) async fn release(self) {
        let sql = "update job_leases set expires_at = ? where name = ? and holder = ?";
        let args: [Arg; 3] = [Utc::now().into(), self.name.into(), holder().into()];
        if let Err(e) = self.hub.execute(&SqlTrace::default(), sql, &args).await {
            tracing::warn!(error = %e, job = self.name, "could not release the job's lease; it expires on its own");
        }
    }
}
