//! The bus between replicas: small messages ("the revocations changed"), never rows. The
//! hub store is the log: a replica that misses a message catches up from it on its own
//! interval, as it did before there was a bus. In one process, a broadcast channel;
//! across replicas, NATS when `bus.nats` is set, else `LISTEN`/`NOTIFY` on the channel
//! `c360_bus` when the hub store is PostgreSQL. Over the other engines without NATS the
//! replicas hear only their own messages (and read the store on their intervals).

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::{OnceCell, broadcast, watch};

use super::engine::{Arg, Database, SqlTrace};
use crate::config::BusConfig;

/// PostgreSQL's channel.
const CHANNEL: &str = "c360_bus";

/// What a message says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Topic {
    /// Tokens were revoked: read `token_revocations` again.
    Revocations,
    /// Alerts were appended to the log: read it after the last id seen.
    Alerts,
}

impl Topic {
    /// Every topic: what a replica that may have missed messages reads again.
    pub(crate) const ALL: [Topic; 2] = [Topic::Revocations, Topic::Alerts];
}

/// How long `c360 revoke` waits for NATS to take its message before it exits.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// This replica's end of the bus. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Bus {
    local: broadcast::Sender<Topic>,
    hub: Database,
    nats: Option<Arc<Nats>>,
}

/// The NATS connection, opened at the first publish or relay. It connects (and
/// reconnects) in the background: what is published meanwhile waits in its buffer.
struct Nats {
    url: SecretString,
    subject: String,
    client: OnceCell<async_nats::Client>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("engine", &self.hub.engine)
            .field("nats", &self.nats.is_some())
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// The bus `config` describes; an error when its NATS URL is not one.
    pub(crate) fn new(hub: Database, config: &BusConfig) -> anyhow::Result<Self> {
        let nats = match &config.nats {
            Some(url) => {
                async_nats::ServerAddr::from_str(url.expose_secret())
                    .map_err(|_| anyhow::anyhow!("bus.nats is not a NATS URL (nats://host:4222)"))?;
                let subject = config.subject.clone();
                Some(Arc::new(Nats { url: url.clone(), subject, client: OnceCell::new() }))
            }
            None => None,
        };
        Ok(Bus { local: broadcast::channel(64).0, hub, nats })
    }

    /// The NATS client, connecting in the background on first use. It does not hear its
    /// own messages (`no_echo`): [`Bus::publish`] tells this replica itself. Each time it
    /// (re)connects, this replica's subscribers hear every topic: what was said while it
    /// was away is read from the store.
    async fn nats(&self, nats: &Nats) -> Result<async_nats::Client, async_nats::ConnectError> {
        let local = self.local.clone();
        let client = nats
            .client
            .get_or_try_init(|| {
                async_nats::ConnectOptions::new()
                    .no_echo()
                    .name("c360")
                    .connection_timeout(Duration::from_secs(1))
                    .retry_on_initial_connect()
                    .event_callback(move |event| {
                        let local = local.clone();
                        async move {
                            match event {
                                async_nats::Event::Connected => {
                                    tracing::info!("the bus is connected to NATS");
                                    for topic in Topic::ALL {
                                        let _ = local.send(topic);
                                    }
                                }
                                async_nats::Event::Disconnected => {
                                    tracing::warn!("the bus lost NATS; the replicas read the store on their intervals")
                                }
                                other => tracing::debug!(event = %other, "NATS"),
                            }
                        }
                    })
                    .connect(nats.url.expose_secret())
            })
            .await?;
        Ok(client.clone())
    }

    /// Messages from now on, this replica's own included.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Topic> {
        self.local.subscribe()
    }

    /// Tells every replica, this one included, that `topic` changed. Over PostgreSQL the
    /// message comes back through [`Bus::relay`]; if it cannot be sent, this replica
    /// still hears it, and the others read the store on their interval.
    pub(crate) async fn publish(&self, topic: Topic) {
        if let Some(nats) = &self.nats {
            let _ = self.local.send(topic);
            let sent = match self.nats(nats).await {
                Ok(client) => {
                    client.publish(nats.subject.clone(), topic.to_string().into()).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = sent {
                tracing::warn!(%error, %topic, "cannot tell the other replicas; they read the store on their interval");
            }
            return;
        }
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

    /// Waits (at most 2 s) until what was published has left for NATS: for a command that
    /// exits right after publishing.
    pub(crate) async fn flush(&self) {
        let Some(nats) = &self.nats else { return };
        let Some(client) = nats.client.get() else { return };
        match tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the bus's message may not have reached NATS"),
            Err(_) => tracing::warn!(
                "NATS did not take the bus's message within 2 s; the replicas read the store on their interval"
            ),
        }
    }

    /// Relays NATS's messages on the subject until the subscription ends.
    async fn listen_nats(&self, nats: &Nats) -> anyhow::Result<()> {
        let client = self.nats(nats).await?;
        let mut messages = client.subscribe(nats.subject.clone()).await?;
        while let Some(message) = messages.next().await {
            self.relay_payload(&String::from_utf8_lossy(&message.payload));
        }
        anyhow::bail!("the subscription ended")
    }

    fn relay_payload(&self, payload: &str) {
        match Topic::from_str(payload) {
            Ok(topic) => {
                let _ = self.local.send(topic);
            }
            Err(_) => tracing::debug!(payload, "an unknown message on the bus"),
        }
    }

    /// Listens on the hub store's channel, relaying each message, until the connection
    /// fails.
    async fn listen(&self) -> Result<(), sqlx::Error> {
        let mut listener = self.hub.listener().await?;
        listener.listen(CHANNEL).await?;
        loop {
            let message = listener.recv().await?;
            self.relay_payload(message.payload());
        }
    }

    /// Relays the other replicas' messages to this replica's subscribers until `stop`
    /// turns true (NATS, or a PostgreSQL hub store; returns at once otherwise). A lost
    /// connection is opened again after a second; what was sent meanwhile is read from
    /// the store on the subscribers' own intervals.
    pub(crate) async fn relay(&self, mut stop: watch::Receiver<bool>) {
        if self.nats.is_none() && self.hub.engine != super::Engine::Postgres {
            return;
        }
        loop {
            let listen = async {
                match &self.nats {
                    Some(nats) => self.listen_nats(nats).await,
                    None => Ok(self.listen().await?),
                }
            };
            tokio::select! {
                result = listen => {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "the bus's connection failed; listening again in a second");
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
