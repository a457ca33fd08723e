//! Leases on background jobs, in the hub store (`job_leases`): with many replicas over
//! one hub store, the replica holding a job's lease runs it and the others skip their
//! turn. A lease lasts until it is released or expires (so a replica that dies mid-job
//! holds it no longer than its time to live). Each take counts the lease's fencing token
//! up: a job commits its writes with [`Lease::fence`], so a replica that stalled past its
//! lease and lost it to another cannot commit the job's writes any more (no advisory
//! locks: they do not survive poolers, and on a Galera cluster `GET_LOCK` holds on one
//! node only).

use std::sync::OnceLock;
use std::time::Duration;

use chrono::Utc;

use super::engine::{Arg, Database, SqlTrace};

/// This process, as a lease holder (and in the log line that says it serves).
pub(crate) fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| uuid::Uuid::now_v7().to_string())
}

/// A job's lease, held by this process until [`Lease::release`] or its expiry.
#[derive(Debug)]
pub struct Lease<'a> {
    hub: &'a Database,
    name: &'static str,
    /// The fencing token this take got.
    token: i64,
    /// How long the lease lasts from its take, and from each fenced write.
    ttl: Duration,
}

/// The instant a lease taken or renewed now for `ttl` expires.
fn expiry(ttl: Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::MAX)
}

impl<'a> Lease<'a> {
    /// Takes the lease on `name` for `ttl` when it is free, expired or already this
    /// process's; `None` when another replica holds it.
    pub async fn take(hub: &'a Database, name: &'static str, ttl: Duration) -> Result<Option<Lease<'a>>, sqlx::Error> {
        let now = Utc::now();
        let until = expiry(ttl);
        let trace = SqlTrace::default();
        let renewed = hub
            .execute(
                &trace,
                "update job_leases set holder = ?, expires_at = ?, token = token + 1
                 where name = ? and (expires_at < ? or holder = ?)",
                &[holder().into(), until.into(), name.into(), now.into(), holder().into()],
            )
            .await?;
        if renewed == 0 {
            // The first lease on this job: whoever inserts it holds it.
            let (head, tail) = hub.engine.insert_ignore();
            let sql = format!("{head} job_leases (name, holder, expires_at, token) values (?, ?, ?, 1){tail}");
            let args: [Arg; 3] = [name.into(), holder().into(), until.into()];
            if hub.execute(&trace, &sql, &args).await? == 0 {
                return Ok(None);
            }
        }
        // Synced: on Galera, through another node than the take's (a proxy's failover),
        // the read must still see it.
        let sql = "select token as n from job_leases where name = ? and holder = ?";
        let token = hub.synced().fetch_count(&trace, sql, &[name.into(), holder().into()]).await?;
        Ok(Some(Lease { hub, name, token, ttl }))
    }

    /// The statement a job's transaction starts with (see [`Database::fenced`]): it
    /// touches the lease's row only while this take's token is still the lease's, and
    /// renews the lease for its time to live from now. So a job that commits its work in
    /// batches can hold a short lease for as long as it makes progress, and a holder that
    /// died stops holding it one time to live after its last batch.
    pub(crate) fn fence(&self) -> (String, Vec<Arg>) {
        let sql =
            "update job_leases set writes = writes + 1, expires_at = ? where name = ? and holder = ? and token = ?";
        (sql.to_owned(), vec![expiry(self.ttl).into(), self.name.into(), holder().into(), self.token.into()])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;
    use crate::names::DbName;
    use crate::sources::engine::{Engine, PoolSettings};

    /// A migrated SQLite hub store in a directory of its own (kept while the guard lives).
    async fn hub() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite:{}", dir.path().join("hub.db").display());
        let settings = PoolSettings::of(&DatabaseConfig::default(), DbName::Hub);
        let hub = Database::connect(DbName::Hub, &url, &settings).await.expect("connect");
        hub.migrate(super::super::migrations_for(DbName::Hub, Engine::Sqlite)).await.expect("migrate");
        (dir, hub)
    }

    #[tokio::test]
    async fn a_replica_that_lost_its_lease_cannot_commit_the_jobs_writes() {
        let (_dir, hub) = hub().await;
        let trace = SqlTrace::default();
        hub.execute(&trace, "create table scratch (x integer)", &[]).await.expect("scratch");
        let write = [("insert into scratch values (1)".to_owned(), vec![])];
        let count = || hub.fetch_count(&trace, "select count(*) as n from scratch", &[]);

        let lease = Lease::take(&hub, "job", Duration::from_secs(60)).await.expect("take").expect("free");
        hub.fenced(&lease.fence(), &write).await.expect("held: committed");
        assert_eq!(count().await.expect("count"), 1);
        // It expires while this replica stalls, and another takes it.
        let takeover = "update job_leases set holder = 'another', token = token + 1 where name = 'job'";
        hub.execute(&trace, takeover, &[]).await.expect("takeover");
        let lost = hub.fenced(&lease.fence(), &write).await;
        assert!(matches!(lost, Err(sqlx::Error::RowNotFound)), "{lost:?}");
        assert_eq!(count().await.expect("count"), 1, "nothing of the stale holder's was committed");
        // Taking it again (once free) gives a new token, which writes.
        hub.execute(&trace, "update job_leases set expires_at = '2000-01-01T00:00:00+00:00'", &[])
            .await
            .expect("expire");
        let again = Lease::take(&hub, "job", Duration::from_secs(60)).await.expect("take").expect("free again");
        assert!(again.token > lease.token);
        hub.fenced(&again.fence(), &write).await.expect("held again");
        assert_eq!(count().await.expect("count"), 2);
    }

    /// A fenced write renews the lease: a job that makes progress keeps a short lease.
    #[tokio::test]
    async fn a_fenced_write_renews_the_lease() {
        let (_dir, hub) = hub().await;
        let trace = SqlTrace::default();
        let ttl = Duration::from_millis(600);
        let lease = Lease::take(&hub, "job", ttl).await.expect("take").expect("free");
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            hub.fenced(&lease.fence(), &[]).await.expect("still held");
        }
        // 900 ms after the take, past its first expiry: still this take's.
        let sql = "update job_leases set holder = 'another', token = token + 1 where name = 'job' and expires_at < ?";
        assert_eq!(hub.execute(&trace, sql, &[Utc::now().into()]).await.expect("try"), 0, "renewed, not expired");
        // Without writes it expires, and another replica may take it.
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        assert_eq!(hub.execute(&trace, sql, &[Utc::now().into()]).await.expect("take over"), 1);
        assert!(matches!(hub.fenced(&lease.fence(), &[]).await, Err(sqlx::Error::RowNotFound)));
    }
}
