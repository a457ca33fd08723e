//! Revoked tokens, kept in the hub store (`token_revocations`) and read by every replica
//! every few seconds: a token is refused when its id (`jti`) is revoked, or when its
//! subject or partner was revoked after the token was issued, or less than the clock skew
//! allowance (`auth.leeway`) before (an issuer whose clock runs ahead may stamp a token
//! minted before the revocation with an `iat` after it; a token without `iat`, which
//! verification refuses anyway, whenever). Requests check an in-memory snapshot: no round
//! trip per request or field.
//! Each revocation is recorded in the audit log as well.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::audit::AuditEntry;
use crate::auth::Viewer;
use crate::sources::{Arg, Database, SqlTrace};

/// How old a snapshot may be before a request reads the table again: how long another
/// replica's revocation takes to reach this one.
const REFRESH: Duration = Duration::from_secs(3);

/// What is revoked: one token, or a subject's or a partner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::Display, strum::EnumString, async_graphql::Enum)]
#[strum(serialize_all = "lowercase")]
pub(crate) enum RevocationKind {
    /// One token, by its id (`jti`).
    #[graphql(name = "TOKEN_ID")]
    Jti,
    /// Every token of a subject issued up to the revocation.
    Subject,
    /// Every token of a partner issued up to the revocation.
    Partner,
}

crate::row! {
    #[derive(Debug, Clone)]
    struct RevocationRow {
        kind: String,
        value: String,
        revoked_at: DateTime<Utc>,
    }
}

/// The revocations as last read.
#[derive(Debug, Default)]
struct Snapshot {
    revoked: HashMap<(RevocationKind, String), DateTime<Utc>>,
    /// When read; `None` before the first successful read.
    read_at: Option<Instant>,
}

impl Snapshot {
    /// Whether `viewer`'s token is revoked, its `iat` trusted to within `leeway`.
    fn refuses(&self, viewer: &Viewer, leeway: Duration) -> bool {
        let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        let revoked_after_issue = |kind, value: &str| {
            self.revoked.get(&(kind, value.to_owned())).is_some_and(|at| match viewer.issued_at {
                Some(iat) => at.timestamp().saturating_add(leeway) >= i64::try_from(iat).unwrap_or(i64::MAX),
                None => true,
            })
        };
        viewer.token_id.as_deref().is_some_and(|jti| self.revoked.contains_key(&(RevocationKind::Jti, jti.to_owned())))
            || revoked_after_issue(RevocationKind::Subject, &viewer.subject)
            || viewer.partner.as_deref().is_some_and(|p| revoked_after_issue(RevocationKind::Partner, p))
    }
}

/// The revocations of the hub store, with the snapshot requests check.
pub(crate) struct Revocations {
    hub: Database,
    /// The clock skew allowed for `iat` (`auth.leeway`): a subject's or partner's
    /// revocation covers tokens issued up to this long after it.
    leeway: Duration,
    snapshot: RwLock<Arc<Snapshot>>,
    /// One read at a time; requests that find it taken use the snapshot they have.
    reading: tokio::sync::Mutex<()>,
}

impl Revocations {
    pub(crate) fn new(hub: Database, leeway: Duration) -> Self {
        // Read after another replica's write (a bus message says so): synced on Galera.
        Revocations { hub: hub.synced(), leeway, snapshot: RwLock::default(), reading: tokio::sync::Mutex::new(()) }
    }

    /// Whether `viewer`'s token is revoked. Until the table could be read once, every
    /// token is refused: the hub fails closed.
    pub(crate) async fn refuses(&self, viewer: &Viewer) -> bool {
        let snapshot = self.current().await;
        snapshot.read_at.is_none() || snapshot.refuses(viewer, self.leeway)
    }

    async fn current(&self) -> Arc<Snapshot> {
        let seen = self.snapshot.read().map(|s| s.clone()).unwrap_or_default();
        if seen.read_at.is_some_and(|at| at.elapsed() < REFRESH) {
            return seen;
        }
        // The first read is waited for; later ones are left to whoever took them.
        let _reading = match (seen.read_at, self.reading.try_lock()) {
            (_, Ok(guard)) => guard,
            (Some(_), Err(_)) => return seen,
            (None, Err(_)) => self.reading.lock().await,
        };
        let fresh = self.snapshot.read().map(|s| s.clone()).unwrap_or_default();
        if fresh.read_at.is_some_and(|at| at.elapsed() < REFRESH) {
            return fresh;
        }
        self.read().await.unwrap_or(fresh)
    }

    /// A revocation this process just stored: refused from now on here, without waiting
    /// for the next read of the table (which will hold it too).
    pub(crate) fn note(&self, kind: RevocationKind, value: &str, at: DateTime<Utc>) {
        if let Ok(mut current) = self.snapshot.write() {
            let mut revoked = current.revoked.clone();
            revoked.insert((kind, value.to_owned()), at);
            *current = Arc::new(Snapshot { revoked, read_at: current.read_at });
        }
    }

    /// Reads the table again now (another replica revoked tokens: [`crate::sources::bus`]).
    pub(crate) async fn reread(&self) {
        let _reading = self.reading.lock().await;
        self.read().await;
    }

    /// Reads the table into a new snapshot; on failure, logs and keeps the old one.
    async fn read(&self) -> Option<Arc<Snapshot>> {
        let sql = "select kind, value, revoked_at from token_revocations";
        let rows: Vec<RevocationRow> = match self.hub.fetch_all(&SqlTrace::default(), sql, &[]).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the token revocations; keeping the last ones read");
                return None;
            }
        };
        let revoked = rows.into_iter().filter_map(|r| Some(((r.kind.parse().ok()?, r.value), r.revoked_at))).collect();
        let snapshot = Arc::new(Snapshot { revoked, read_at: Some(Instant::now()) });
        if let Ok(mut current) = self.snapshot.write() {
            *current = snapshot.clone();
        }
        Some(snapshot)
    }
}

/// Revokes `value` of `kind` now (again, if it was: the time moves on), recording who and
/// why. Every replica refuses the tokens within a few seconds; the one that took it, once
/// it is noted there ([`Revocations::note`]) at once.
pub(crate) async fn revoke(
    hub: &Database,
    trace: &SqlTrace,
    kind: RevocationKind,
    value: &str,
    by: &Viewer,
    request_id: &str,
    reason: Option<&str>,
) -> Result<DateTime<Utc>, sqlx::Error> {
    // The audit log first: no revocation goes unrecorded.
    let label = match kind {
        RevocationKind::Jti => "token_id",
        RevocationKind::Subject => "subject",
        RevocationKind::Partner => "partner",
    };
    crate::audit::store::insert(hub, &[AuditEntry::revocation(by, request_id, label, value)]).await?;
    let now = Utc::now();
    let upsert = hub.engine.upsert("kind, value", &["revoked_at", "revoked_by", "reason"]);
    let sql = format!(
        "insert into token_revocations (kind, value, revoked_at, revoked_by, reason) values (?, ?, ?, ?, ?){upsert}"
    );
    let args = [
        Arg::from(kind.to_string()),
        Arg::from(value),
        Arg::from(now),
        Arg::from(by.subject.as_str()),
        Arg::OptText(reason.map(str::to_owned)),
    ];
    hub.execute(trace, &sql, &args).await?;
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn tokens_issued_before_a_revocation_or_within_its_leeway_are_refused() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).expect("time");
        let snapshot = Snapshot {
            revoked: HashMap::from([
                ((RevocationKind::Jti, "t1".to_owned()), at(100)),
                ((RevocationKind::Subject, "bob".to_owned()), at(1_000)),
                ((RevocationKind::Partner, "acme".to_owned()), at(1_000)),
            ]),
            read_at: Some(Instant::now()),
        };
        let viewer = |subject: &str, partner: Option<&str>, jti: Option<&str>, iat: Option<u64>| Viewer {
            subject: subject.to_owned(),
            token_id: jti.map(str::to_owned),
            issued_at: iat,
            ..Viewer::with_role(if partner.is_some() { Role::Partner } else { Role::Agent }, partner)
        };
        let leeway = Duration::from_secs(30);
        let refuses = |viewer: &Viewer| snapshot.refuses(viewer, leeway);
        assert!(refuses(&viewer("alice", None, Some("t1"), Some(5_000))), "its id, whenever issued");
        assert!(!refuses(&viewer("alice", None, Some("t2"), Some(5_000))));
        assert!(refuses(&viewer("bob", None, None, Some(999))), "issued before the subject's revocation");
        assert!(refuses(&viewer("bob", None, None, None)), "no iat: whenever");
        assert!(refuses(&viewer("bob", None, None, Some(1_001))), "issued within the leeway after it");
        assert!(refuses(&viewer("bob", None, None, Some(1_030))), "issued the leeway after it");
        assert!(!refuses(&viewer("bob", None, None, Some(1_031))), "a token issued after it and its leeway works");
        assert!(!snapshot.refuses(&viewer("bob", None, None, Some(1_001)), Duration::ZERO), "no leeway");
        assert!(refuses(&viewer("carol", Some("acme"), None, Some(500))));
        assert!(refuses(&viewer("carol", Some("acme"), None, Some(1_030))), "a partner's, within the leeway");
        assert!(!refuses(&viewer("carol", Some("acme"), None, Some(1_031))));
        assert!(!refuses(&viewer("carol", Some("globex"), None, Some(500))));
    }
}
