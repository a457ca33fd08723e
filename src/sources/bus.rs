//! The bus between replicas: small messages ("the revocations changed"), never rows. The
//! hub store is the log: a replica that misses a message catches up from it on its own
//! interval, as it did before there was a bus. In one process, a broadcast channel;
//! across replicas whose hub store is PostgreSQL, `LISTEN`/`NOTIFY` on the channel
//! `c360_bus`. Over the other engines the replicas hear only their own messages (and
//! read the store on their intervals).

use std::str::FromStr as _;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::engine::{Arg, Database, SqlTrace};

/// PostgreSQL's channel.
const CHANNEL: &str = "c360_bus";

/// What a message says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Topic {
    /// Tokens were revoked: read `token_revocations` again.
    Revocations,
}

/// This replica's end of the bus. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Bus {
    local: broadcast::Sender<Topic>,
    hub: Database,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("engine", &self.hub.engine).finish_non_exhaustive()
    }
}

impl Bus {
    pub(crate) fn new(hub: Database) -> Self {
        Bus { local: broadcast::channel(64).0, hub }
    }

    /// Messages from now on, this replica's own included.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Topic> {
        self.local.subscribe()
    }

    /// Tells every replica, this one included, that `topic` changed. Over PostgreSQL the
    /// message comes back through [`Bus::relay`]; if it cannot be sent, this replica
    /// still hears it, and the others read the store on their interval.
    pub(crate) async fn publish(&self, topic: Topic) {
        if self.hub.engine == super::Engine::Postgres {
            let sql = "select pg_notify(?, ?)";
            let args = [Arg::from(CHANNEL), Arg::Text(topic.to_string())];
            match self.hub.execute(&SqlTrace::default(), sql, &args).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, %topic, "cannot tell the other replicas; they read the store on their interval")
                }
            }
        }
        let _ = self.local.send(topic);
    }

    /// Listens on the hub store's channel, relaying each message, until the connection
    /// fails.
    async fn listen(&self) -> Result<(), sqlx::Error> {
        let mut listener = self.hub.listener().await?;
        listener.listen(CHANNEL).await?;
        loop {
            let message = listener.recv().await?;
            match Topic::from_str(message.payload()) {
                Ok(topic) => {
                    let _ = self.local.send(topic);
                }
                Err(_) => tracing::debug!(payload = message.payload(), "an unknown message on the bus"),
            }
        }
    }

    /// Relays the hub store's messages to this replica's subscribers until `stop` turns
    /// true (PostgreSQL; returns at once over the other engines). A lost connection is
    /// opened again after a second; what was sent meanwhile is read from the store on
    /// the subscribers' own intervals.
    pub(crate) async fn relay(&self, mut stop: watch::Receiver<bool>) {
        if self.hub.engine != super::Engine::Postgres {
            return;
        }
        loop {
            tokio::select! {
                result = self.listen() => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "the bus's connection to the hub store failed; listening again in a second");
                    }
                }
                _ = stop.wait_for(|stop| *stop) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }
}
