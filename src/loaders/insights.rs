//! Customer insights from the hub store: the current model (process-wide, looked up
//! again every few seconds so that every replica sees a new fit), and each customer's
//! scores under it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::dataloader::Loader;
use tokio::sync::OnceCell;

use super::Source;
use crate::error::ApiError;
use crate::identity::quality::Findings;
use crate::insights::affinity::{Affinity, Product};
use crate::insights::store::{self, Group, GroupBy, Model, ParetoPoint, Scored};

/// How long a replica serves a model before asking the hub store for a newer one.
const MODEL_TTL: Duration = Duration::from_secs(5);

/// The current model, as this process last saw it. Until a first model exists it is
/// asked for on every request that needs it (a fit may land any moment).
#[derive(Default)]
pub(crate) struct ModelCache {
    seen: Mutex<Option<(Instant, Arc<Model>)>>,
}

impl ModelCache {
    /// The newest ready model; `MODEL_NOT_READY` before the first fit.
    pub(crate) async fn current(&self, source: &Source) -> Result<Arc<Model>, ApiError> {
        if let Some((at, model)) = self.seen.lock().map(|s| s.clone()).unwrap_or(None)
            && at.elapsed() < MODEL_TTL
        {
            return Ok(model);
        }
        let model = store::current_model(&source.db, &source.trace).await.map_err(|e| source.fail(e))?;
        let model = Arc::new(model.ok_or(ApiError::ModelNotReady)?);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((Instant::now(), model.clone()));
        }
        Ok(model)
    }

    /// How long ago the current model was fitted. The hub store is asked when the model
    /// this process saw is older than [`MODEL_TTL`], or when it has seen none yet (a
    /// replica that has served no insight reports the model it would serve), for at most
    /// half a second (a slow store does not hold up a scrape: the model last seen is
    /// reported then); `None` while there is no model.
    pub(crate) async fn age_seconds(&self, hub: &crate::sources::Database) -> Option<i64> {
        let source = Source { db: hub.clone(), trace: crate::sources::SqlTrace::default(), merges: None };
        let _ = tokio::time::timeout(Duration::from_millis(500), self.current(&source)).await;
        let seen = self.seen.lock().ok()?.clone()?;
        Some((chrono::Utc::now() - seen.1.fitted_at).num_seconds())
    }

    /// Forgets the model seen, so the next request reads the newest (after a fit here).
    pub(crate) fn forget(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = None;
        }
    }
}

/// Aggregates over the current model's customers (for analysts): one grouped
/// statement on the hub store each.
pub(crate) struct Population<'a> {
    pub(super) source: &'a Source,
    pub(super) models: &'a ModelCache,
    pub(super) sources: &'a crate::sources::Sources,
}

impl Population<'_> {
    /// The current model; `MODEL_NOT_READY` before the first fit.
    pub(crate) async fn model(&self) -> Result<Arc<Model>, ApiError> {
        self.models.current(self.source).await
    }

    /// Counts, money and means per group of the model's customers.
    pub(crate) async fn groups(&self, model: &Model, by: GroupBy) -> Result<Vec<Group>, ApiError> {
        let s = self.source;
        store::groups(&s.db, &s.trace, &model.id, by).await.map_err(|e| s.fail(e))
    }

    /// The model's Pareto curve at these permilles (`None`: every point).
    pub(crate) async fn pareto(&self, model: &Model, permilles: Option<&[i64]>) -> Result<Vec<ParetoPoint>, ApiError> {
        let s = self.source;
        store::pareto(&s.db, &s.trace, &model.id, permilles).await.map_err(|e| s.fail(e))
    }

    /// What identity resolution found in the data.
    pub(crate) async fn data_quality(&self) -> Result<Findings, ApiError> {
        crate::identity::quality::findings(self.sources, &self.source.trace)
            .await
            .map_err(|(db, e)| ApiError::from_sql(db, &e))
    }

    /// Customers in the hub now.
    pub(crate) async fn customers(&self) -> Result<i64, ApiError> {
        let s = self.source;
        crate::identity::store::count_customers(&s.db, &s.trace, None, None).await.map_err(|e| s.fail(e))
    }
}

/// One customer's insights: the model and, when they had bought by its date, their scores.
#[derive(Debug, Clone)]
pub(crate) struct Insight {
    pub(crate) model: Arc<Model>,
    pub(crate) scored: Option<Scored>,
}

/// What one loader of the current model's tables reads, by key.
pub(crate) trait ModelTable: Send + Sync + 'static {
    type Row: Clone + Send + Sync + 'static;
    /// The rows of these keys under `model`, each with its key.
    fn load(
        source: &Source,
        model: &str,
        keys: &[String],
    ) -> impl std::future::Future<Output = Result<Vec<(String, Self::Row)>, sqlx::Error>> + Send;
}

/// Rows of a model table by key (a product's affinities, a category's products), under
/// the model the request saw first.
pub(crate) struct ModelLoader<T> {
    pub(crate) source: Source,
    pub(crate) models: Arc<ModelCache>,
    pub(crate) model: Arc<OnceCell<Arc<Model>>>,
    pub(crate) table: std::marker::PhantomData<T>,
}

impl<T: ModelTable> Loader<String> for ModelLoader<T> {
    type Value = Arc<Vec<T::Row>>;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, ApiError> {
        let model = self.model.get_or_try_init(|| self.models.current(&self.source)).await?.clone();
        let span = self.source.batch(std::any::type_name::<T>().rsplit("::").next().unwrap_or("model"), keys.len());
        let rows = tracing::Instrument::instrument(T::load(&self.source, &model.id, keys), span)
            .await
            .map_err(|e| self.source.fail(e))?;
        let grouped = super::group(rows, |(key, _)| key.clone());
        Ok(grouped.into_iter().map(|(k, rows)| (k, Arc::new(rows.iter().map(|(_, r)| r.clone()).collect()))).collect())
    }
}

/// The products bought together with a product, strongest first.
pub(crate) struct Affinities;

impl ModelTable for Affinities {
    type Row = Affinity;

    async fn load(source: &Source, model: &str, skus: &[String]) -> Result<Vec<(String, Affinity)>, sqlx::Error> {
        let rows = store::affinities(&source.db, &source.trace, model, skus).await?;
        Ok(rows.into_iter().map(|a| (a.sku.clone(), a)).collect())
    }
}

/// The products of a category, cheapest first.
pub(crate) struct CategoryProducts;

impl ModelTable for CategoryProducts {
    type Row = Product;

    async fn load(source: &Source, model: &str, categories: &[String]) -> Result<Vec<(String, Product)>, sqlx::Error> {
        let rows = store::products_in(&source.db, &source.trace, model, categories).await?;
        Ok(rows.into_iter().map(|p| (p.category.clone(), p)).collect())
    }
}

/// Insights by golden id, all under the one model the request saw first.
pub(crate) struct InsightLoader {
    pub(crate) source: Source,
    pub(crate) models: Arc<ModelCache>,
    /// The request's model: a fit landing mid-request does not mix two models.
    pub(crate) model: Arc<OnceCell<Arc<Model>>>,
}

impl Loader<String> for InsightLoader {
    type Value = Arc<Insight>;
    type Error = ApiError;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Self::Value>, ApiError> {
        let model = self.model.get_or_try_init(|| self.models.current(&self.source)).await?.clone();
        let s = &self.source;
        let rows = tracing::Instrument::instrument(
            store::insights(&s.db, &s.trace, &model.id, ids),
            s.batch("InsightLoader", ids.len()),
        )
        .await
        .map_err(|e| s.fail(e))?;
        let mut found: HashMap<String, Scored> = rows.into_iter().collect();
        Ok(ids
            .iter()
            .map(|id| {
                let insight = Insight { model: model.clone(), scored: found.remove(id) };
                (id.clone(), Arc::new(insight))
            })
            .collect())
    }
}
