//! The insight job: reads every customer's purchases (one grouped, streamed statement
//! on the shop), joins them to customers through the hub's identity links, fits the
//! models, scores everyone and stores the result as a new model in the hub store. A
//! request never waits for it: it reads the newest complete model.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use chrono::NaiveDate;

type Time = chrono::DateTime<chrono::Utc>;

use super::affinity::{Affinity, Baskets, Product};
use super::bgnbd::{Params, Sufficient};
use super::fit::FitError;
use super::rfm::{self, Segment};
use super::stage::{Lifecycle, Service, TierCuts, ValueTier, pareto_curve, value_tiers};
use super::store::{self, Cuts, Fitted, Scored, ServiceScore, Watermarks};
use super::{Summary, gamma_gamma, summarize};
use crate::identity::store as identity;
use crate::names::DbName;
use crate::sources::lease::Lease;
use crate::sources::{Database, SourceName, Sources, SqlTrace, helpdesk, shop};

/// Rows written per transaction.
const WRITE_CHUNK: usize = 5_000;

/// Why a refresh failed; the previous model stays current.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("{0} database: {1}")]
    Database(DbName, #[source] sqlx::Error),
    #[error("the purchase model did not fit: {0}")]
    Fit(#[from] FitError),
    #[error("another replica holds the lease on this refresh")]
    Running,
}

/// How long a refresh may hold its lease: well beyond a full fit of a million customers
/// (about a minute), so that only a replica that died lets another take over.
const LEASE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// What a refresh did, for the command line and the admin mutation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub(crate) model_id: String,
    pub(crate) as_of: NaiveDate,
    /// Customers with a purchase up to `as_of`.
    pub customers: usize,
    /// Of those, customers who bought on more than one day.
    pub repeat_customers: usize,
    /// BG/NBD's r, α, a, b; absent when no one bought twice.
    pub purchase_model: Option<[f64; 4]>,
    pub log_likelihood: Option<f64>,
    /// Gamma-Gamma's p, q, v.
    pub spend_model: Option<[f64; 3]>,
    pub segments: BTreeMap<&'static str, usize>,
    pub lifecycle: BTreeMap<&'static str, usize>,
    pub value_tiers: BTreeMap<&'static str, usize>,
    pub(crate) read_ms: i64,
    /// Fitting and scoring; of which scoring everyone (RFM, P(alive), lifetime value, …).
    pub(crate) fit_ms: i64,
    pub(crate) score_ms: i64,
    pub(crate) write_ms: i64,
}

/// One customer's purchases as they are read.
struct Customer {
    /// Golden id.
    id: String,
    /// Shop accounts not read yet: when none is left, the customer is summarised and
    /// their purchase days dropped (memory stays bounded by the customers in progress).
    pending: u32,
    /// The smallest shop account id: with the first purchase day, RFM's tie-breaker.
    first_account: i64,
}

/// A summarised customer: index into the customers, tie-breaking key, summary.
type Summarised = (usize, (NaiveDate, i64), Summary);

/// Fits the models as of `as_of` and makes them current; on any failure the previous
/// model stays current and the new one is marked failed.
pub async fn refresh(sources: &Sources, as_of: NaiveDate) -> Result<Report, RefreshError> {
    let hub = sources.hub();
    let db = |e| RefreshError::Database(DbName::Hub, e);
    // One full fit at a time over all replicas.
    let lease = Lease::take(hub, "insights-fit", LEASE).await.map_err(db)?.ok_or(RefreshError::Running)?;
    let done = fit_and_publish(sources, as_of, &lease).await;
    lease.release().await;
    done
}

async fn fit_and_publish(sources: &Sources, as_of: NaiveDate, lease: &Lease<'_>) -> Result<Report, RefreshError> {
    let hub = sources.hub();
    let id = uuid::Uuid::now_v7().to_string();
    let db = |e| RefreshError::Database(DbName::Hub, e);
    store::begin(hub, &id, as_of).await.map_err(db)?;
    match run(sources, &id, as_of, lease).await {
        Ok(report) => {
            // Old rows go after the switch; failing to delete them loses nothing.
            if let Err(e) = store::prune(hub).await {
                tracing::warn!(error = %e, "could not delete the rows of older insight models");
            }
            Ok(report)
        }
        Err(e) => {
            if let Err(e) = store::fail(hub, &id).await {
                tracing::warn!(error = %e, "could not mark the failed insight model");
            }
            Err(e)
        }
    }
}

async fn run(sources: &Sources, id: &str, as_of: NaiveDate, lease: &Lease<'_>) -> Result<Report, RefreshError> {
    let started = Instant::now();
    let watermarks = watermarks(sources).await?;
    // The sources are read at once, each on its own connection.
    let (customers, by_account) =
        shop_customers(sources.hub()).await.map_err(|e| RefreshError::Database(DbName::Hub, e))?;
    let golden_ids: Vec<String> = customers.iter().map(|c| c.id.clone()).collect();
    let (summarised, services, products) = tokio::try_join!(
        read(sources, customers, &by_account, as_of),
        read_service(sources, &golden_ids, as_of),
        read_baskets(sources, as_of),
    )?;
    let read_ms = elapsed_ms(started);

    let started = Instant::now();
    let histories = summarised.iter().map(|(_, _, s)| s.history);
    let sufficient = Sufficient::new(histories);
    let purchases = match sufficient.fit() {
        Ok(fit) => Some(fit),
        Err(FitError::NoData | FitError::NoRepeatPurchases) => None,
        Err(e) => return Err(e.into()),
    };
    let spend = match gamma_gamma::fit(summarised.iter().map(|(_, _, s)| (s.history.x, s.repeat_mean_spend))) {
        Ok(fit) => Some(fit.params),
        Err(FitError::NoData | FitError::NoRepeatPurchases) => None,
        Err(e) => return Err(e.into()),
    };
    let params = purchases.map(|f| f.params);
    let scoring = Instant::now();
    let (scored, cuts) = score(&summarised, &services, params.as_ref(), spend.as_ref());
    let score_ms = elapsed_ms(scoring);
    let fit_ms = elapsed_ms(started);

    let started = Instant::now();
    let mut report = Report {
        model_id: id.to_owned(),
        as_of,
        customers: summarised.len(),
        repeat_customers: summarised.iter().filter(|(_, _, s)| s.history.x > 0).count(),
        purchase_model: params.map(|p| [p.r, p.alpha, p.a, p.b]),
        log_likelihood: purchases.map(|f| f.log_likelihood),
        spend_model: spend.map(|s| [s.p, s.q, s.v]),
        segments: BTreeMap::new(),
        lifecycle: BTreeMap::new(),
        value_tiers: BTreeMap::new(),
        read_ms,
        fit_ms,
        score_ms,
        write_ms: 0,
    };
    let hub = sources.hub();
    let db = |e| RefreshError::Database(DbName::Hub, e);
    let mut chunk = Vec::with_capacity(WRITE_CHUNK);
    store::write_groups(hub, id, scored.iter()).await.map_err(db)?;
    for ((index, _, _), scored) in summarised.iter().zip(scored) {
        *report.segments.entry(scored.segment.name()).or_default() += 1;
        *report.lifecycle.entry(scored.lifecycle.name()).or_default() += 1;
        *report.value_tiers.entry(scored.value_tier.name()).or_default() += 1;
        chunk.push((golden_ids[*index].clone(), scored));
        if chunk.len() == WRITE_CHUNK {
            store::write(hub, id, &chunk).await.map_err(db)?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        store::write(hub, id, &chunk).await.map_err(db)?;
    }
    report.write_ms = elapsed_ms(started);
    let fitted = Fitted {
        customers: i64::try_from(summarised.len()).unwrap_or(i64::MAX),
        purchases: params,
        log_likelihood: report.log_likelihood,
        spend,
        read_ms: report.read_ms,
        fit_ms: report.fit_ms,
        write_ms: report.write_ms,
        cuts,
        watermarks,
    };
    let (products, affinities) = products;
    store::write_products(hub, id, &products, &affinities).await.map_err(db)?;
    let money: Vec<i64> = summarised.iter().map(|(_, _, s)| s.rfm.monetary_cents).collect();
    store::write_pareto(hub, id, &pareto_curve(&money)).await.map_err(db)?;
    // Made current only while this replica still holds the fit's lease.
    store::publish(hub, id, &fitted, &lease.fence()).await.map_err(db)?;
    hub.analyze(&["customer_insights"]).await.map_err(db)?;
    Ok(report)
}

/// Orders of this many days before the model's date count for what sells together: what
/// sells together now, and a bounded read however long the shop's history.
const BASKET_DAYS: u64 = 365;

/// At most about this many orders are read for what sells together: beyond it, one order
/// in so many (by id), which estimates the lifts as well for a catalogue of thousands.
const BASKET_SAMPLE: i64 = 500_000;

/// The products sold and their affinities, from the order lines of the last
/// [`BASKET_DAYS`] (one streamed statement; a sample of [`BASKET_SAMPLE`] orders in a
/// bigger shop) and the catalogue.
async fn read_baskets(sources: &Sources, as_of: NaiveDate) -> Result<(Vec<Product>, Vec<Affinity>), RefreshError> {
    let shop = sources.source(SourceName::Shop);
    let failed = |e| RefreshError::Database(DbName::Shop, e);
    let catalogue: HashMap<String, (String, String)> =
        shop::catalogue(shop).await.map_err(failed)?.into_iter().map(|p| (p.sku, (p.name, p.category))).collect();
    let orders = shop::order_count(shop).await.map_err(failed)?;
    let every = ((orders + BASKET_SAMPLE - 1) / BASKET_SAMPLE).max(1);
    let mut baskets = Baskets::default();
    let from = as_of - chrono::Days::new(BASKET_DAYS - 1);
    shop::sold_lines(shop, from, as_of, every, |line| baskets.add(line.order_id, &line.sku, line.unit_price_cents))
        .await
        .map_err(failed)?;
    Ok(baskets.finish(&catalogue))
}

/// Summarises the purchases up to `as_of` of every customer with a shop account
/// (`customers`, and `by_account` to find them): the summaries of those who bought.
async fn read(
    sources: &Sources,
    customers: Vec<Customer>,
    by_account: &HashMap<i64, usize>,
    as_of: NaiveDate,
) -> Result<Vec<Summarised>, RefreshError> {
    let mut reader = Reader { as_of, customers, open: HashMap::new(), out: Vec::new(), current: None };
    shop::purchase_days(sources.source(SourceName::Shop), as_of, None, |row| {
        if reader.current.map(|(account, _)| account) != Some(row.account_id) {
            reader.finish_account();
            // Orders of an account no customer links to yet wait for the next refresh.
            reader.current = by_account.get(&row.account_id).map(|&index| (row.account_id, index));
        }
        if let Some((_, index)) = reader.current {
            reader.open.entry(index).or_default().push((row.day, row.cents));
        }
    })
    .await
    .map_err(|e| RefreshError::Database(DbName::Shop, e))?;
    reader.finish_account();
    // Customers with an account that had no purchases are still open.
    for (index, days) in std::mem::take(&mut reader.open) {
        reader.close(index, days);
    }
    let mut out = reader.out;
    out.sort_by_key(|(index, _, _)| *index);
    Ok(out)
}

/// The state of [`read`] while the purchase days stream by, in account order.
struct Reader {
    as_of: NaiveDate,
    customers: Vec<Customer>,
    /// Purchase days of customers with accounts still to come.
    open: HashMap<usize, Vec<(NaiveDate, i64)>>,
    out: Vec<Summarised>,
    /// The account being read, and its customer.
    current: Option<(i64, usize)>,
}

impl Reader {
    /// The current account is read: its customer is summarised if it was their last.
    fn finish_account(&mut self) {
        let Some((_, index)) = self.current.take() else { return };
        let customer = &mut self.customers[index];
        customer.pending = customer.pending.saturating_sub(1);
        if customer.pending == 0
            && let Some(days) = self.open.remove(&index)
        {
            self.close(index, days);
        }
    }

    fn close(&mut self, index: usize, days: Vec<(NaiveDate, i64)>) {
        let first_day = days.iter().map(|(d, _)| *d).min();
        if let (Some(first_day), Some(summary)) = (first_day, summarize(days, self.as_of)) {
            self.out.push((index, (first_day, self.customers[index].first_account), summary));
        }
    }
}

crate::row! {
    /// A source record's link to its customer.
    struct SourceLink {
        customer_id: String,
        source_key: String,
    }
}

/// Every customer with a shop account (in golden id order), and which customer each
/// account belongs to.
async fn shop_customers(hub: &Database) -> Result<(Vec<Customer>, HashMap<i64, usize>), sqlx::Error> {
    let mut customers: Vec<Customer> = Vec::new();
    let mut by_account: HashMap<i64, usize> = HashMap::new();
    let sql = "select customer_id, source_key from identity_links where source = 'shop' order by customer_id";
    hub.for_each(sql, &[], |link: SourceLink| {
        let Ok(account) = link.source_key.parse::<i64>() else { return };
        match customers.last_mut() {
            Some(last) if last.id == link.customer_id => {
                last.pending += 1;
                last.first_account = last.first_account.min(account);
            }
            _ => customers.push(Customer { id: link.customer_id, pending: 1, first_account: account }),
        }
        by_account.insert(account, customers.len() - 1);
    })
    .await?;
    Ok((customers, by_account))
}

/// How many days of CSAT answers count as the customer's recent perception of service.
pub(crate) const RECENT_SERVICE_DAYS: u64 = 90;

/// Every customer's service up to `as_of` (by index into `customers`), from one grouped
/// statement on the helpdesk joined through the helpdesk's identity links.
async fn read_service(sources: &Sources, customers: &[String], as_of: NaiveDate) -> Result<Vec<Service>, RefreshError> {
    let index: HashMap<&str, usize> = customers.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut by_requester: HashMap<i64, usize> = HashMap::new();
    let sql = "select customer_id, source_key from identity_links where source = 'helpdesk'";
    sources
        .hub()
        .for_each(sql, &[], |link: SourceLink| {
            if let (Ok(requester), Some(&i)) = (link.source_key.parse::<i64>(), index.get(link.customer_id.as_str())) {
                by_requester.insert(requester, i);
            }
        })
        .await
        .map_err(|e| RefreshError::Database(DbName::Hub, e))?;
    let mut services = vec![Service::default(); customers.len()];
    let recent = as_of - chrono::Days::new(RECENT_SERVICE_DAYS - 1);
    helpdesk::service_figures(sources.source(SourceName::Helpdesk), recent, as_of, None, |f| {
        if let Some(&i) = by_requester.get(&f.requester_id) {
            services[i].add(&service(&f));
        }
    })
    .await
    .map_err(|e| RefreshError::Database(DbName::Helpdesk, e))?;
    Ok(services)
}

/// The newest change each source holds now, read at once.
async fn watermarks(sources: &Sources) -> Result<Watermarks, RefreshError> {
    async fn newest(name: DbName, db: &Database, table: &str, column: &str) -> Result<Option<Time>, RefreshError> {
        crate::sources::newest(db, table, column).await.map_err(|e| RefreshError::Database(name, e))
    }
    let (orders, tickets, links) = tokio::try_join!(
        newest(DbName::Shop, sources.source(SourceName::Shop), "orders", "updated_at"),
        newest(DbName::Helpdesk, sources.source(SourceName::Helpdesk), "tickets", "updated_at"),
        newest(DbName::Hub, sources.hub(), "identity_links", "linked_at"),
    )?;
    Ok(Watermarks { orders, tickets, links })
}

/// A requester's service figures, as the numerics read them.
pub(crate) fn service(f: &helpdesk::ServiceFigures) -> Service {
    Service {
        tickets: f.tickets,
        complaints: f.complaints,
        open_complaints: f.open_complaints,
        csat_sum: f.csat_sum,
        csat_answers: f.csat_answers,
        recent_csat_sum: f.recent_csat_sum,
        recent_csat_answers: f.recent_csat_answers,
    }
}

/// Scores every summarised customer against the population: RFM, P(alive), lifetime
/// value, lifecycle stage, value tier, and satisfaction (with `services`, by customer
/// index) against the buyers' mean CSAT. Also returns where the population's cuts fell.
fn score(
    summarised: &[Summarised],
    services: &[Service],
    purchases: Option<&Params>,
    spend: Option<&gamma_gamma::Params>,
) -> (Vec<Scored>, Cuts) {
    let (csat_sum, csat_answers) = summarised
        .iter()
        .map(|(i, _, _)| &services[*i])
        .fold((0i64, 0i64), |(s, n), v| (s + v.csat_sum, n + v.csat_answers));
    let population_csat = if csat_answers > 0 { csat_sum as f64 / csat_answers as f64 } else { 0.0 };
    let figures: Vec<((NaiveDate, i64), rfm::Figures)> = summarised.iter().map(|(_, key, s)| (*key, s.rfm)).collect();
    let scores = rfm::score(&figures);
    let money: Vec<((NaiveDate, i64), i64)> = figures.iter().map(|(key, f)| (*key, f.monetary_cents)).collect();
    let tiers = value_tiers(&money);
    let cuts = Cuts {
        rfm: rfm::Cuts::of(&figures.iter().map(|(_, f)| *f).collect::<Vec<_>>(), &scores),
        tiers: TierCuts::of(&money.iter().map(|(_, m)| *m).collect::<Vec<_>>(), &tiers),
        population_csat,
    };
    let scored = summarised
        .iter()
        .zip(scores)
        .zip(tiers)
        .map(|(((index, _, summary), scores), value_tier)| {
            let scoring = Scoring { purchases, spend, population_csat, scored_on: None };
            scoring.score(summary, scores, value_tier, &services[*index])
        })
        .collect();
    (scored, cuts)
}

/// What one customer is scored with, apart from their own figures.
struct Scoring<'a> {
    purchases: Option<&'a Params>,
    spend: Option<&'a gamma_gamma::Params>,
    population_csat: f64,
    /// `None` for the model's own date.
    scored_on: Option<NaiveDate>,
}

impl Scoring<'_> {
    fn score(&self, summary: &Summary, scores: rfm::Scores, value_tier: ValueTier, service: &Service) -> Scored {
        let service = service.satisfaction(self.population_csat).map(|satisfaction| ServiceScore {
            tickets: service.tickets,
            open_complaints: service.open_complaints,
            satisfaction,
            quadrant: satisfaction.quadrant(value_tier),
        });
        let p_alive = self.purchases.map(|p| p.probability_alive(&summary.history));
        let clv_12m = match (self.purchases, self.spend) {
            (Some(p), Some(s)) => {
                Some(gamma_gamma::lifetime_value(p, s, &summary.history, summary.repeat_mean_spend, 12, 0.01))
            }
            _ => None,
        };
        Scored {
            summary: *summary,
            scores,
            segment: Segment::of(scores.recency, scores.frequency, scores.monetary),
            p_alive,
            clv_12m,
            lifecycle: Lifecycle::of(summary, p_alive.unwrap_or(1.0)),
            value_tier,
            service,
            scored_on: self.scored_on,
        }
    }
}

/// What an incremental refresh did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpdateReport {
    pub(crate) model_id: String,
    /// The day the changed customers were scored as of.
    pub(crate) as_of: NaiveDate,
    /// Customers with an order, a ticket or a link new or changed since the watermark.
    pub changed: usize,
    /// Of those, the customers who had bought by `as_of` (the others have no row).
    pub scored: usize,
    /// Reading the changes and the changed customers' purchases and service.
    pub(crate) read_ms: i64,
    pub(crate) write_ms: i64,
}

/// An incremental refresh: the customers whose orders, tickets or identity links changed
/// since the current model's watermark are scored again as of `as_of`, in place, against
/// the model's parameters and its population's cut points (quintiles, tiers, mean CSAT);
/// the model's group sums follow. The parameters, the Pareto curve and what sells
/// together wait for the next full refresh. `None` when there is no model to update (or
/// it was fitted before incremental refreshes existed): a full refresh is due.
pub async fn update(sources: &Sources, as_of: NaiveDate) -> Result<Option<UpdateReport>, RefreshError> {
    // The group sums are read and written again: one update at a time in this process,
    // and over all replicas.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _running = ONE_AT_A_TIME.lock().await;
    let hub = sources.hub();
    let at_hub = |e| RefreshError::Database(DbName::Hub, e);
    let lease = Lease::take(hub, "insights-update", LEASE).await.map_err(at_hub)?.ok_or(RefreshError::Running)?;
    let done = update_held(sources, as_of, &lease).await;
    lease.release().await;
    done
}

async fn update_held(
    sources: &Sources,
    as_of: NaiveDate,
    lease: &Lease<'_>,
) -> Result<Option<UpdateReport>, RefreshError> {
    let hub = sources.hub();
    let at_hub = |e| RefreshError::Database(DbName::Hub, e);
    let Some(model) = store::current_model(hub, &SqlTrace::default()).await.map_err(at_hub)? else {
        return Ok(None);
    };
    let (Some(cuts), Some(since)) = (model.cuts.clone(), model.watermarks) else { return Ok(None) };
    let started = Instant::now();
    let next = watermarks(sources).await?;
    let (shop, desk) = (sources.source(SourceName::Shop), sources.source(SourceName::Helpdesk));
    let from = |at: Option<Time>| at.unwrap_or(chrono::DateTime::UNIX_EPOCH);
    let (accounts, requesters, mut links) = tokio::try_join!(
        async {
            let changed = shop::changed_accounts(shop, from(since.orders)).await;
            changed.map_err(|e| RefreshError::Database(DbName::Shop, e))
        },
        async {
            let changed = helpdesk::changed_requesters(desk, from(since.tickets)).await;
            changed.map_err(|e| RefreshError::Database(DbName::Helpdesk, e))
        },
        async { identity::links_of_customers_linked_since(hub, from(since.links)).await.map_err(at_hub) },
    )?;
    for (source, keys) in [(SourceName::Shop, accounts), (SourceName::Helpdesk, requesters)] {
        let keys: Vec<String> = keys.iter().map(i64::to_string).collect();
        for chunk in keys.chunks(hub.engine.max_params() - 1) {
            let found = identity::links_by_source_keys(hub, &SqlTrace::default(), source, chunk).await;
            links.extend(found.map_err(at_hub)?);
        }
    }
    // Every shop account and requester of the changed customers, and whose it is.
    let (mut owners, mut customers) = (HashMap::new(), BTreeSet::new());
    for link in &links {
        customers.insert(link.customer_id.as_str());
        if let (Ok(source), Ok(key)) = (link.source.parse::<SourceName>(), link.source_key.parse::<i64>()) {
            owners.insert((source, key), link.customer_id.as_str());
        }
    }
    let keys = |source| owners.keys().filter(|(s, _)| *s == source).map(|(_, k)| *k).collect::<Vec<i64>>();
    let mut purchases: HashMap<&str, Vec<(NaiveDate, i64)>> = HashMap::new();
    for chunk in keys(SourceName::Shop).chunks(1000) {
        shop::purchase_days(shop, as_of, Some(chunk), |row| {
            if let Some(customer) = owners.get(&(SourceName::Shop, row.account_id)) {
                purchases.entry(customer).or_default().push((row.day, row.cents));
            }
        })
        .await
        .map_err(|e| RefreshError::Database(DbName::Shop, e))?;
    }
    let mut services: HashMap<&str, Service> = HashMap::new();
    let recent = as_of - chrono::Days::new(RECENT_SERVICE_DAYS - 1);
    for chunk in keys(SourceName::Helpdesk).chunks(1000) {
        helpdesk::service_figures(desk, recent, as_of, Some(chunk), |f| {
            if let Some(customer) = owners.get(&(SourceName::Helpdesk, f.requester_id)) {
                services.entry(customer).or_default().add(&service(&f));
            }
        })
        .await
        .map_err(|e| RefreshError::Database(DbName::Helpdesk, e))?;
    }
    let read_ms = elapsed_ms(started);

    let started = Instant::now();
    let scoring = Scoring {
        purchases: model.purchases.as_ref(),
        spend: model.spend.as_ref(),
        population_csat: cuts.population_csat,
        scored_on: Some(as_of),
    };
    let no_service = Service::default();
    let rows: Vec<(String, Scored)> = customers
        .iter()
        .filter_map(|&customer| {
            let summary = summarize(purchases.remove(customer)?, as_of)?;
            let scores = cuts.rfm.score(&summary.rfm);
            let tier = cuts.tiers.tier(summary.rfm.monetary_cents);
            let service = services.get(customer).unwrap_or(&no_service);
            Some((customer.to_owned(), scoring.score(&summary, scores, tier, service)))
        })
        .collect();
    let changed: Vec<String> = customers.iter().map(|c| (*c).to_owned()).collect();
    store::update(hub, &model.id, &changed, &rows, &next, &lease.fence()).await.map_err(at_hub)?;
    Ok(Some(UpdateReport {
        model_id: model.id,
        as_of,
        changed: changed.len(),
        scored: rows.len(),
        read_ms,
        write_ms: elapsed_ms(started),
    }))
}

fn elapsed_ms(since: Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}
