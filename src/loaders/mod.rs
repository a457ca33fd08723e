//! Every read and write of a request goes through here: batched data loaders, so a page
//! of N customers costs the same number of statements as a page of one, and thin services
//! for what is one statement per request anyway (pages of customers, the audit log,
//! subject rights, writes that forget what they make stale).
//!
//! Loaders are built per request ([`Loaders::new`]): their caches never cross viewers,
//! they carry the request's [`SqlTrace`] and its row rule. Loaders take source keys (a
//! shop account id, a helpdesk requester id), never golden ids: identity is resolved
//! before them ([`customers`]). One file per source.

pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod batch;
pub(crate) mod crm;
pub(crate) mod customers;
pub(crate) mod helpdesk;
pub(crate) mod insights;
pub mod links;
pub(crate) mod marketing;
pub(crate) mod merged;
pub(crate) mod shop;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache};

use crate::error::ApiError;
use crate::policy::Rows;
use crate::revocations::Revocations;
use crate::sources::bus::Bus;
use crate::sources::{Page, Sources, SqlTrace};

/// What loaders keep across requests, process-wide.
pub(crate) struct Kept {
    /// The current insight model, as this process last saw it.
    pub(crate) models: Arc<insights::ModelCache>,
    /// Customers' identity links, per viewer.
    pub(crate) links: Arc<links::LinkCache>,
    /// Where concurrent requests' statements meet to be merged; `None` when they are not
    /// (`database.merge_statements`).
    pub(crate) merges: Option<Arc<merged::Merges>>,
    /// The revoked tokens as this process knows them; `None` without the check (a
    /// benchmark's ladder).
    pub(crate) revocations: Option<Arc<Revocations>>,
    /// The bus to the other replicas.
    pub(crate) bus: Bus,
    /// New service alerts, read from the log once for every subscription of this process.
    pub(crate) alerts: Arc<alerts::Fanout>,
}

impl Kept {
    /// With up to `links` customers' links kept (none at 0), statements merged or not.
    pub(crate) fn new(
        links: usize,
        merge: bool,
        revocations: Option<Revocations>,
        bus: Bus,
        hub: crate::sources::Database,
    ) -> Self {
        Kept {
            alerts: Arc::new(alerts::Fanout::new(hub, bus.clone())),
            bus,
            models: Arc::default(),
            links: Arc::new(links::LinkCache::new(links)),
            merges: merge.then(Arc::default),
            revocations: revocations.map(Arc::new),
        }
    }
}

/// Every loader of one request.
pub(crate) struct Loaders {
    pub(crate) links: DataLoader<links::LinksLoader, HashMapCache>,
    pub(crate) key_links: DataLoader<links::KeyLinksLoader, HashMapCache>,
    pub(crate) crm_customers: DataLoader<crm::CustomerLoader, HashMapCache>,
    pub(crate) consents: DataLoader<crm::ConsentLoader, HashMapCache>,
    pub(crate) consent_ledger: DataLoader<crm::ConsentLedgerLoader, HashMapCache>,
    pub(crate) note_pages: DataLoader<crm::NotePageLoader, HashMapCache>,
    pub(crate) note_counts: DataLoader<crm::NoteCountLoader, HashMapCache>,
    pub(crate) accounts: DataLoader<shop::AccountLoader, HashMapCache>,
    pub(crate) orders: DataLoader<shop::OrderLoader, HashMapCache>,
    pub(crate) order_pages: DataLoader<shop::OrderPageLoader, HashMapCache>,
    pub(crate) order_lines: DataLoader<shop::OrderLineLoader, HashMapCache>,
    pub(crate) purchases: DataLoader<shop::PurchaseLoader, HashMapCache>,
    pub(crate) tickets: DataLoader<helpdesk::TicketLoader, HashMapCache>,
    pub(crate) ticket_pages: DataLoader<helpdesk::TicketPageLoader, HashMapCache>,
    pub(crate) service: DataLoader<helpdesk::ServiceLoader, HashMapCache>,
    pub(crate) service_now: DataLoader<helpdesk::ServiceNowLoader, HashMapCache>,
    pub(crate) send_pages: DataLoader<marketing::SendPageLoader, HashMapCache>,
    pub(crate) send_counts: DataLoader<marketing::SendCountLoader, HashMapCache>,
    pub(crate) campaigns: DataLoader<marketing::CampaignLoader, HashMapCache>,
    pub(crate) insights: DataLoader<insights::InsightLoader, HashMapCache>,
    pub(crate) affinities: DataLoader<insights::ModelLoader<insights::Affinities>, HashMapCache>,
    pub(crate) category_products: DataLoader<insights::ModelLoader<insights::CategoryProducts>, HashMapCache>,
    pub(crate) bought: DataLoader<shop::BoughtLoader, HashMapCache>,
    /// Which customers the viewer sees at all (the policy's row rule).
    rows: Rows,
    /// The CRM, for the request's writes (consents and notes): see [`crm::Writes`].
    crm: Source,
    /// The hub store, for pages of customers and the audit log.
    hub: Source,
    /// Every database, for subject rights (export and erasure touch them all).
    sources: Sources,
    trace: SqlTrace,
    revocations: Option<Arc<Revocations>>,
    bus: Bus,
    alerts: Arc<alerts::Fanout>,
}

impl Loaders {
    /// Loaders whose batches run through `queue` (see [`batch::drive`]), for a viewer who
    /// sees the customers `rows` admits; `models` is the process's view of the current
    /// insight model.
    pub(crate) fn new(
        sources: &Sources,
        kept: &Kept,
        trace: &SqlTrace,
        queue: &batch::BatchQueue,
        rows: Rows,
        viewer: &str,
    ) -> Self {
        let models = &kept.models;
        // Viewers who see every customer only: see [`links::LinkCache`].
        let viewer: Option<Arc<str>> = matches!(rows, Rows::All).then(|| Arc::from(viewer));
        fn loader<T: Send + Sync + 'static>(inner: T, queue: &batch::BatchQueue) -> DataLoader<T, HashMapCache> {
            DataLoader::with_cache(inner, queue.spawner(), HashMapCache::default()).delay(std::time::Duration::ZERO)
        }
        let ctx = |db: &crate::sources::Database| Source {
            db: db.clone(),
            trace: trace.clone(),
            merges: kept.merges.clone(),
        };
        let links =
            || links::LinkSource { source: ctx(sources.hub()), cache: kept.links.clone(), viewer: viewer.clone() };
        let consent = match &rows {
            Rows::All => None,
            Rows::ConsentedTo(scope) => Some(scope.clone()),
        };
        // One model per request, whichever insight loader asks first.
        let model = Arc::new(tokio::sync::OnceCell::new());
        let model_table = |models: &Arc<insights::ModelCache>| (ctx(sources.hub()), models.clone(), model.clone());
        Loaders {
            links: loader(links::LinksLoader(links()), queue),
            key_links: loader(links::KeyLinksLoader(links()), queue),
            crm_customers: loader(crm::CustomerLoader(ctx(sources.crm())), queue),
            consents: loader(
                crm::ConsentLoader { source: ctx(sources.crm()), scope: consent, now: chrono::Utc::now() },
                queue,
            ),
            consent_ledger: loader(crm::ConsentLedgerLoader(ctx(sources.crm())), queue),
            note_pages: loader(crm::NotePageLoader(ctx(sources.crm())), queue),
            note_counts: loader(crm::NoteCountLoader(ctx(sources.crm())), queue),
            accounts: loader(shop::AccountLoader(ctx(sources.shop())), queue),
            orders: loader(shop::OrderLoader(ctx(sources.shop())), queue),
            order_pages: loader(shop::OrderPageLoader(ctx(sources.shop())), queue),
            order_lines: loader(shop::OrderLineLoader(ctx(sources.shop())), queue),
            purchases: loader(shop::PurchaseLoader(ctx(sources.shop())), queue),
            tickets: loader(helpdesk::TicketLoader(ctx(sources.helpdesk())), queue),
            ticket_pages: loader(helpdesk::TicketPageLoader(ctx(sources.helpdesk())), queue),
            service: loader(helpdesk::ServiceLoader(ctx(sources.helpdesk())), queue),
            service_now: loader(helpdesk::ServiceNowLoader(ctx(sources.helpdesk())), queue),
            send_pages: loader(marketing::SendPageLoader(ctx(sources.marketing())), queue),
            send_counts: loader(marketing::SendCountLoader(ctx(sources.marketing())), queue),
            campaigns: loader(marketing::CampaignLoader(ctx(sources.marketing())), queue),
            insights: loader(
                insights::InsightLoader { source: ctx(sources.hub()), models: models.clone(), model: model.clone() },
                queue,
            ),
            affinities: loader(
                {
                    let (source, models, model) = model_table(models);
                    insights::ModelLoader { source, models, model, table: std::marker::PhantomData }
                },
                queue,
            ),
            category_products: loader(
                {
                    let (source, models, model) = model_table(models);
                    insights::ModelLoader { source, models, model, table: std::marker::PhantomData }
                },
                queue,
            ),
            bought: loader(shop::BoughtLoader(ctx(sources.shop())), queue),
            rows,
            crm: ctx(sources.crm()),
            hub: ctx(sources.hub()),
            sources: sources.clone(),
            trace: trace.clone(),
            revocations: kept.revocations.clone(),
            bus: kept.bus.clone(),
            alerts: kept.alerts.clone(),
        }
    }

    /// Finding customers, as the viewer's row rule lets it see them.
    pub(crate) fn customers(&self) -> customers::Customers<'_> {
        customers::Customers { loaders: self }
    }

    /// The service alerts' log (the inbox).
    pub(crate) fn alerts(&self) -> alerts::AlertLog<'_> {
        alerts::AlertLog { hub: &self.hub }
    }

    /// The alerts `filter` selects, to follow after this request (a subscription), under
    /// the viewer's row rule.
    pub(crate) fn alert_feed(&self, filter: crate::alerts::AlertFilter) -> alerts::Feed {
        let consent = match &self.rows {
            Rows::All => None,
            Rows::ConsentedTo(scope) => Some(scope.clone()),
        };
        alerts::Feed { hub: self.hub.clone(), crm: self.crm.clone(), consent, filter, fanout: self.alerts.clone() }
    }

    /// The audit log's reads, and the entries subject rights write before they act.
    pub(crate) fn admin(&self) -> admin::Admin<'_> {
        admin::Admin {
            hub: &self.hub,
            sources: &self.sources,
            trace: &self.trace,
            models: &self.insights.loader().models,
            links: &self.links.loader().0.cache,
            revocations: self.revocations.as_deref(),
            bus: &self.bus,
        }
    }

    /// The current insight model; `MODEL_NOT_READY` before the first fit.
    pub(crate) async fn insight_model(&self) -> Result<Arc<crate::insights::store::Model>, ApiError> {
        self.insights.loader().models.current(&self.hub).await
    }

    /// Aggregates over every customer (the insight model's population, data quality):
    /// only for viewers who see every customer. A partner, who sees consenting customers
    /// only, must not learn counts or shares of the others (`FORBIDDEN`).
    pub(crate) fn population(&self) -> Result<insights::Population<'_>, ApiError> {
        match self.rows {
            Rows::All => Ok(insights::Population {
                source: &self.hub,
                models: &self.insights.loader().models,
                sources: &self.sources,
            }),
            Rows::ConsentedTo(_) => Err(ApiError::WholePopulation),
        }
    }

    /// Writes to the CRM. Each one forgets what the request's loaders cached of what it
    /// changed, so a mutation's result, and any later field of the same request, reads
    /// the state after the write.
    pub(crate) fn crm_writes(&self) -> crm::Writes<'_> {
        crm::Writes { loaders: self, source: &self.crm }
    }
}

/// Declares a loader over one query of a source, in one of three shapes, so that each
/// loader is one line of what it loads and from where:
/// - `one`: one value per key, the `entry` of each row (`|row| (key, value)`);
/// - `many`: the rows of each key, grouped by `key` (`|row| key`);
/// - `page`: a newest-first page of each parent (the query takes the parents and a
///   [`Page`]; `key` reads a row's parent).
macro_rules! loader {
    ($(#[$m:meta])* $name:ident: one $query:path => $row:ty as $value:ty, key $key:expr, entry $entry:expr) => {
        $(#[$m])*
        pub(crate) struct $name(pub $crate::loaders::Source);

        impl async_graphql::dataloader::Loader<i64> for $name {
            type Value = $value;
            type Error = $crate::error::ApiError;

            async fn load(&self, keys: &[i64]) -> Result<std::collections::HashMap<i64, $value>, Self::Error> {
                let s = &self.0;
                let span = s.batch(stringify!($name), keys.len());
                let fetch: $crate::loaders::merged::Fetch<$row> = |s, keys, _| {
                    Box::pin(async move { $query(&s.db, &s.trace, &keys).await.map_err(|e| s.fail(e)) })
                };
                let rows = tracing::Instrument::instrument(s.merged::<Self, $row>(keys, None, fetch, $key), span).await?;
                Ok(rows.into_iter().map($entry).collect())
            }
        }
    };
    ($(#[$m:meta])* $name:ident: many $query:path => $row:ty, key $key:expr) => {
        $(#[$m])*
        pub(crate) struct $name(pub $crate::loaders::Source);

        impl async_graphql::dataloader::Loader<i64> for $name {
            type Value = std::sync::Arc<Vec<$row>>;
            type Error = $crate::error::ApiError;

            async fn load(&self, keys: &[i64]) -> Result<std::collections::HashMap<i64, Self::Value>, Self::Error> {
                let s = &self.0;
                let span = s.batch(stringify!($name), keys.len());
                let fetch: $crate::loaders::merged::Fetch<$row> = |s, keys, _| {
                    Box::pin(async move { $query(&s.db, &s.trace, &keys).await.map_err(|e| s.fail(e)) })
                };
                let key: fn(&$row) -> i64 = $key;
                let rows = tracing::Instrument::instrument(s.merged::<Self, $row>(keys, None, fetch, key), span).await?;
                Ok($crate::loaders::group(rows, key))
            }
        }
    };
    ($(#[$m:meta])* $name:ident: page $query:path => $row:ty, key $key:expr) => {
        $(#[$m])*
        pub(crate) struct $name(pub $crate::loaders::Source);

        impl async_graphql::dataloader::Loader<(i64, $crate::sources::Page)> for $name {
            type Value = std::sync::Arc<Vec<$row>>;
            type Error = $crate::error::ApiError;

            async fn load(
                &self,
                keys: &[(i64, $crate::sources::Page)],
            ) -> Result<std::collections::HashMap<(i64, $crate::sources::Page), Self::Value>, Self::Error> {
                let s = &self.0;
                let span = s.batch(stringify!($name), keys.len());
                let fetch: $crate::loaders::merged::Fetch<$row> = |s, parents, page| {
                    Box::pin(async move {
                        let page = page.unwrap_or($crate::sources::Page { limit: 0, before: None });
                        $query(&s.db, &s.trace, &parents, &page).await.map_err(|e| s.fail(e))
                    })
                };
                let key: fn(&$row) -> i64 = $key;
                let load = $crate::loaders::paged(keys, key, |parents, page| async move {
                    s.merged::<Self, $row>(&parents, Some(page), fetch, key).await
                });
                tracing::Instrument::instrument(load, span).await
            }
        }
    };
}
pub(crate) use loader;

/// What every loader holds: its database, the request's statement trace, and the
/// process's lanes for merging statements of concurrent requests (none where they are
/// not merged).
#[derive(Clone)]
pub(crate) struct Source {
    pub(crate) db: crate::sources::Database,
    pub(crate) trace: SqlTrace,
    pub(crate) merges: Option<Arc<merged::Merges>>,
}

impl Source {
    /// The rows of `keys` (and `page`) fetched by `fetch`, merged with other requests'
    /// statements of loader `L` when this source merges ([`merged`]).
    pub(crate) async fn merged<L: 'static, R: Clone + Send + 'static>(
        &self,
        keys: &[i64],
        page: Option<Page>,
        fetch: merged::Fetch<R>,
        key: fn(&R) -> i64,
    ) -> Result<Vec<R>, ApiError> {
        match &self.merges {
            Some(merges) => merges.of::<L, R>().load(self, keys.to_vec(), page, fetch, key).await,
            None => fetch(self.clone(), keys.to_vec(), page).await,
        }
    }

    /// One batch of `loader` for `keys` keys: its size goes into the metrics, and its
    /// statements run in the span returned.
    pub(crate) fn batch(&self, loader: &'static str, keys: usize) -> tracing::Span {
        self.trace.batched(loader, keys);
        tracing::debug_span!("loader", loader, db = %self.db.name, keys)
    }

    /// Turns a database error into the client's `SOURCE_UNAVAILABLE`, logging the cause.
    pub(crate) fn fail(&self, e: sqlx::Error) -> ApiError {
        ApiError::from_sql(self.db.name, &e)
    }
}

/// Rows grouped under their key, each group shared cheaply between resolvers.
pub(crate) fn group<K: Eq + Hash, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Arc<Vec<V>>> {
    let mut map: HashMap<K, Vec<V>> = HashMap::new();
    for row in rows {
        map.entry(key(&row)).or_default().push(row);
    }
    map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect()
}

/// Loads a paged list for `(parent, page)` keys: one statement per distinct page (all
/// parents of a GraphQL list share one page, so normally one statement in all).
pub(crate) async fn paged<V, F, Fut>(
    keys: &[(i64, Page)],
    parent_of: impl Fn(&V) -> i64,
    fetch: F,
) -> Result<HashMap<(i64, Page), Arc<Vec<V>>>, ApiError>
where
    F: Fn(Vec<i64>, Page) -> Fut,
    Fut: Future<Output = Result<Vec<V>, ApiError>>,
{
    let mut by_page: HashMap<Page, Vec<i64>> = HashMap::new();
    for (parent, page) in keys {
        by_page.entry(*page).or_default().push(*parent);
    }
    let mut out = HashMap::new();
    for (page, parents) in by_page {
        let rows = fetch(parents.clone(), page).await?;
        let mut grouped = group(rows, &parent_of);
        for parent in parents {
            let rows = grouped.remove(&parent).unwrap_or_default();
            out.insert((parent, page), rows);
        }
    }
    Ok(out)
}
