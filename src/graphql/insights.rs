//! Customer insights: what the models of the latest fit say of one customer (RFM,
//! lifecycle stage, churn risk, expected purchases, lifetime value, value tier). Served
//! from the hub store; a request never waits for a fit.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use strum::IntoEnumIterator as _;

use c360_macros::classified;

use super::common::{admin_only, request};
use crate::error::ApiError;
use crate::graphql::common::shared;
use crate::graphql::privacy::{PrivacyClass, decision};
use crate::insights::rfm::Segment;
use crate::insights::stage::{self, Lifecycle, Service, suppressed};
use crate::insights::store::{Group, GroupBy};
use crate::insights::store::{Model, ServiceScore};
use crate::insights::{actions, gamma_gamma, refresh};
use crate::loaders::insights::Insight;
use crate::policy::Decision;

/// The eleven standard RFM segments (the map of the 125 score codes is in README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::insights::rfm::Segment")]
pub(crate) enum RfmSegment {
    /// Bought recently, often and much.
    Champions,
    /// Buy often and spend well.
    LoyalCustomers,
    /// Recent customers with average frequency.
    PotentialLoyalist,
    /// Bought recently, not often.
    NewCustomers,
    /// Recent, with little spent so far.
    Promising,
    /// Above average in all three, but not recently.
    NeedAttention,
    /// Below average recency and frequency.
    AboutToSleep,
    /// Spent much and bought often, long ago.
    AtRisk,
    /// Were among the best, and have not come back for long.
    CantLoseThem,
    /// Long ago, seldom and little.
    Hibernating,
    /// The lowest recency, frequency and money.
    Lost,
}

/// The relationship's stage; the rules are in README ("Insights").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::insights::stage::Lifecycle")]
pub(crate) enum LifecycleStage {
    /// Not bought yet, or bought once in the last 90 days.
    Exploration,
    /// Buying again, in the first year.
    Formation,
    /// Buying again for more than a year, and likely active.
    Stability,
    /// A one-time buyer quiet for over 90 days, or a churn risk of one half or more.
    Decline,
    /// No purchase for a year, or a churn risk above 0.8.
    Lost,
}

/// The customer's share of revenue, by the 80/20 rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::insights::stage::ValueTier")]
pub(crate) enum ValueTier {
    /// Among the customers who bring the first 80% of revenue.
    Top,
    /// Among those who bring the next 15%.
    Core,
    /// The last 5% of revenue, and customers who have not bought.
    Tail,
}

/// Where a customer sits on the value × satisfaction matrix (high value: the top tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::insights::stage::Quadrant")]
pub(crate) enum Quadrant {
    /// High value and satisfied: keep them so.
    Retain,
    /// High value and dissatisfied: win them back.
    WinBack,
    /// Low value and satisfied.
    Maintain,
    /// Low value and dissatisfied.
    Deprioritize,
}

/// Service satisfaction as perception against expectation.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct SatisfactionScore {
    /// Mean CSAT (1–5) over the customer's answered tickets; null without answers.
    pub(crate) average_csat: Option<f64>,
    /// Complaints per ticket.
    pub(crate) complaint_rate: Option<f64>,
    /// Perceived service (the mean CSAT of the last 90 days, else of all answers) minus
    /// the expected (the customer's earlier answers, shrunk toward every customer's mean
    /// CSAT by two answers' weight), in CSAT points: below 0 is worse than expected.
    /// Null without answers.
    pub(crate) index: Option<f64>,
    /// Tickets opened.
    pub(crate) tickets: i64,
    /// Complaints still open or pending.
    pub(crate) open_complaints: i64,
    /// The value × satisfaction quadrant (dissatisfied: below expectation, or a complaint
    /// open); null with nothing to judge by.
    pub(crate) quadrant: Option<Quadrant>,
}

/// Recency, frequency and money, each scored 1–5 against every customer who bought
/// (quintiles: 5 is the best fifth).
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub(crate) struct Rfm {
    /// 5: among the fifth who bought most recently.
    pub(crate) recency: i32,
    /// 5: among the fifth who bought on the most days.
    pub(crate) frequency: i32,
    /// 5: among the fifth who spent most.
    pub(crate) monetary: i32,
    /// The three scores as one code, `100·R + 10·F + M` (111 to 555).
    pub(crate) score: i32,
    /// The segment of the score code.
    pub(crate) segment: RfmSegment,
    #[graphql(skip)]
    pub(crate) days_since_last_purchase: i32,
    /// Days with a purchase (several orders on one day are one purchase).
    pub(crate) purchase_days: i32,
}

#[classified]
#[ComplexObject]
impl Rfm {
    /// Days from the last purchase to the model's date (whole months of 30 days where the
    /// policy masks times).
    #[class(timing, mask = month)]
    async fn days_since_last_purchase(&self) -> i32 {
        self.days_since_last_purchase
    }
}

/// What the insight models say of one customer, as of the latest fit.
pub(crate) struct CustomerInsights {
    pub(crate) insight: Arc<Insight>,
    /// The customer's shop accounts, for what they bought (next best actions).
    pub(crate) accounts: Vec<i64>,
    /// The customer's helpdesk requesters, for the satisfaction of customers who had not
    /// bought by the model's date.
    pub(crate) requesters: Vec<i64>,
}

/// What to offer or do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::insights::actions::ActionKind")]
pub(crate) enum ActionKind {
    /// Resolve the open complaints of a valuable customer.
    ServiceRecovery,
    /// Win back a valuable customer in decline.
    WinBack,
    /// A product often bought with what they bought.
    CrossSell,
    /// A pricier product of the category they spend most on.
    UpSell,
}

/// One recommended action, with its reason.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct NextBestAction {
    /// What kind of action.
    pub(crate) kind: ActionKind,
    /// The product to offer (cross-sell and up-sell).
    pub(crate) sku: Option<String>,
    /// Its name.
    pub(crate) product_name: Option<String>,
    /// Why, in a sentence.
    pub(crate) reason: String,
}

/// The longest horizon a prediction may ask for: ten years.
const MAX_DAYS: i32 = 3_650;
const MAX_MONTHS: i32 = 120;

/// What the insight models say of one customer, as of the latest fit.
#[classified]
#[Object]
impl CustomerInsights {
    /// The day the customer was scored as of: purchases up to and including it count.
    /// The model's date, or a later day when an incremental refresh scored the customer
    /// again after a change (against the same model).
    async fn as_of(&self) -> NaiveDate {
        self.insight.scored.as_ref().and_then(|s| s.scored_on).unwrap_or(self.insight.model.as_of)
    }

    /// When the model was fitted.
    async fn fitted_at(&self) -> DateTime<Utc> {
        self.insight.model.fitted_at
    }

    /// RFM scores and segment; null for a customer who had not bought by the model's date.
    /// Of class financial as well: its days and counts are the customer's purchases.
    #[class(financial)]
    async fn rfm(&self) -> Option<Rfm> {
        self.insight.scored.as_ref().map(|s| Rfm {
            recency: i32::from(s.scores.recency),
            frequency: i32::from(s.scores.frequency),
            monetary: i32::from(s.scores.monetary),
            score: i32::from(s.scores.code()),
            segment: s.segment.into(),
            days_since_last_purchase: i32::try_from(s.summary.rfm.recency_days).unwrap_or(i32::MAX),
            purchase_days: i32::try_from(s.summary.rfm.frequency).unwrap_or(i32::MAX),
        })
    }

    /// Where the relationship stands.
    async fn lifecycle_stage(&self) -> LifecycleStage {
        self.insight.scored.as_ref().map_or(LifecycleStage::Exploration, |s| s.lifecycle.into())
    }

    /// The probability that the customer is still active (BG/NBD, Fader, Hardie & Lee
    /// 2005); 1 for customers who bought once. Null without a purchase, or when no
    /// customer has bought twice (the model cannot be fitted).
    async fn probability_alive(&self) -> Option<f64> {
        self.insight.scored.as_ref().and_then(|s| s.p_alive)
    }

    /// `1 − probabilityAlive`.
    async fn churn_risk(&self) -> Option<f64> {
        self.insight.scored.as_ref().and_then(|s| s.p_alive).map(|p| 1.0 - p)
    }

    /// Purchases (purchase days) expected in the next `days` days (1 to 3650), by BG/NBD.
    async fn expected_purchases(&self, days: i32) -> Result<Option<f64>> {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::BadInput(format!("`days` must be between 1 and {MAX_DAYS}")).into());
        }
        let (Some(scored), Some(model)) = (&self.insight.scored, &self.insight.model.purchases) else {
            return Ok(None);
        };
        Ok(Some(model.expected_purchases(&scored.summary.history, f64::from(days) / 7.0)))
    }

    /// Predicted lifetime value over the next `months` (1 to 120), discounted at
    /// `monthlyDiscountRate` (0 to 1): expected purchases per month (BG/NBD) times the
    /// expected spend per purchase (Gamma-Gamma), in the shop's currency. Null without a
    /// purchase or a fitted model.
    async fn predicted_clv(
        &self,
        #[graphql(default = 12)] months: i32,
        #[graphql(default = 0.01)] monthly_discount_rate: f64,
    ) -> Result<Option<f64>> {
        if !(1..=MAX_MONTHS).contains(&months) {
            return Err(ApiError::BadInput(format!("`months` must be between 1 and {MAX_MONTHS}")).into());
        }
        if !(0.0..=1.0).contains(&monthly_discount_rate) {
            return Err(ApiError::BadInput("`monthlyDiscountRate` must be between 0 and 1".into()).into());
        }
        let model = &self.insight.model;
        let (Some(scored), Some(purchases), Some(spend)) = (&self.insight.scored, &model.purchases, &model.spend)
        else {
            return Ok(None);
        };
        let (history, mean) = (&scored.summary.history, scored.summary.repeat_mean_spend);
        let months = u32::try_from(months).unwrap_or(1);
        Ok(Some(gamma_gamma::lifetime_value(purchases, spend, history, mean, months, monthly_discount_rate)))
    }

    /// Money spent up to the model's date (orders neither cancelled nor returned), in the
    /// shop's currency. Of class financial as well: it is the customer's purchases, summed.
    #[class(financial)]
    async fn historical_value(&self) -> f64 {
        self.insight.scored.as_ref().map_or(0.0, |s| s.summary.rfm.monetary_cents as f64 / 100.0)
    }

    /// The customer's value tier by money spent.
    async fn value_tier(&self) -> ValueTier {
        self.insight.scored.as_ref().map_or(ValueTier::Tail, |s| s.value_tier.into())
    }

    /// What to do next for the customer, ranked, each with its reason (at most five):
    /// service recovery for a valuable customer with a complaint open, a win-back offer
    /// for a valuable customer in decline, cross-sell (the products most often bought
    /// with theirs, by co-purchase lift over every order of the shop) and up-sell (the
    /// next pricier product in the category they spend most on). Also of class
    /// financial: the offers follow from what the customer bought.
    #[class(financial)]
    async fn next_best_actions(&self, ctx: &Context<'_>) -> Result<Vec<NextBestAction>> {
        let Some(scored) = &self.insight.scored else { return Ok(Vec::new()) };
        let loaders = &request(ctx).loaders;
        let bought: Vec<actions::Bought> = loaders
            .bought
            .load_many(self.accounts.iter().copied())
            .await?
            .values()
            .flat_map(|rows| rows.iter())
            .map(|b| actions::Bought { sku: b.sku.clone(), category: b.category.clone(), price_cents: b.price_cents })
            .collect();
        let skus: BTreeSet<String> = bought.iter().map(|b| b.sku.clone()).collect();
        let categories: BTreeSet<String> = bought.iter().map(|b| b.category.clone()).collect();
        let (affinities, catalogue) =
            tokio::join!(loaders.affinities.load_many(skus), loaders.category_products.load_many(categories));
        let affinities: Vec<_> = affinities?.into_values().flat_map(|rows| rows.as_ref().clone()).collect();
        let catalogue: Vec<_> = catalogue?.into_values().flat_map(|rows| rows.as_ref().clone()).collect();
        Ok(actions::next_best_actions(scored, &bought, &affinities, &catalogue)
            .into_iter()
            .map(|a| NextBestAction {
                kind: a.kind.into(),
                sku: a.product.as_ref().map(|p| p.0.clone()),
                product_name: a.product.map(|p| p.1),
                reason: a.reason,
            })
            .collect())
    }

    /// Service satisfaction from the helpdesk: up to the model's date for customers who
    /// had bought by then, read now (against the model's population) for the others,
    /// who are in the tail tier. Null for customers without tickets. Of class service as
    /// well: its scores and counts are the customer's tickets.
    #[class(service)]
    async fn satisfaction(&self, ctx: &Context<'_>) -> Result<Option<SatisfactionScore>> {
        let score = |service: ServiceScore| SatisfactionScore {
            average_csat: service.satisfaction.average_csat,
            complaint_rate: service.satisfaction.complaint_rate,
            index: service.satisfaction.index,
            tickets: service.tickets,
            open_complaints: service.open_complaints,
            quadrant: service.quadrant.map(Into::into),
        };
        if let Some(scored) = &self.insight.scored {
            return Ok(scored.service.map(score));
        }
        let Some(cuts) = &self.insight.model.cuts else { return Ok(None) };
        if self.requesters.is_empty() {
            return Ok(None);
        }
        let figures = request(ctx).loaders.service_now.load_many(self.requesters.iter().copied()).await?;
        let mut service = Service::default();
        for f in figures.values() {
            service.add(&refresh::service(f));
        }
        Ok(service.satisfaction(cuts.population_csat).map(|satisfaction| {
            score(ServiceScore {
                tickets: service.tickets,
                open_complaints: service.open_complaints,
                satisfaction,
                quadrant: satisfaction.quadrant(stage::ValueTier::Tail),
            })
        }))
    }
}

/// A fitted model: its date, when it was fitted, and its parameters.
pub(crate) struct InsightModel(pub Arc<Model>);

/// BG/NBD's parameters (Fader, Hardie & Lee 2005): purchase rates are gamma(r, α) across
/// customers, the chance of dropping out after a purchase beta(a, b).
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct PurchaseModel {
    /// Shape of the purchase rates' gamma distribution.
    pub(crate) r: f64,
    /// Scale of the purchase rates' gamma distribution (in weeks).
    pub(crate) alpha: f64,
    /// First shape of the dropout probability's beta distribution.
    pub(crate) a: f64,
    /// Second shape of the dropout probability's beta distribution.
    pub(crate) b: f64,
    /// The log-likelihood at these parameters.
    pub(crate) log_likelihood: Option<f64>,
}

/// The Gamma-Gamma spend model's parameters.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct SpendModel {
    /// Shape of the spend per purchase (gamma) of each customer.
    pub(crate) p: f64,
    /// Shape of the customers' spend scales (gamma across customers).
    pub(crate) q: f64,
    /// Scale of the customers' spend scales.
    pub(crate) v: f64,
    /// The population's mean spend per purchase, `p·v / (q − 1)`.
    pub(crate) population_mean_spend: f64,
}

/// A fitted insight model.
#[Object]
impl InsightModel {
    /// The model's id: each fit makes a new one.
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.clone())
    }

    /// Purchases up to and including this day count.
    async fn as_of(&self) -> NaiveDate {
        self.0.as_of
    }

    /// When the fit completed.
    async fn fitted_at(&self) -> DateTime<Utc> {
        self.0.fitted_at
    }

    /// When an incremental refresh last scored changed customers again under this model;
    /// null before the first.
    async fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.0.updated_at
    }

    /// Customers with a purchase by `asOf`: the population scored.
    async fn customers(&self) -> i64 {
        self.0.customers
    }

    /// Null when no customer had bought twice (the model cannot be fitted).
    async fn purchase_model(&self) -> Option<PurchaseModel> {
        self.0.purchases.map(|p| PurchaseModel {
            r: p.r,
            alpha: p.alpha,
            a: p.a,
            b: p.b,
            log_likelihood: self.0.log_likelihood,
        })
    }

    /// Null when it could not be fitted.
    async fn spend_model(&self) -> Option<SpendModel> {
        self.0.spend.map(|s| SpendModel { p: s.p, q: s.q, v: s.v, population_mean_spend: s.population_mean() })
    }
}

/// Insight queries that are not about one customer.
#[derive(Default)]
pub(crate) struct InsightQuery;

#[classified]
#[Object]
impl InsightQuery {
    /// The model the insights are currently served from; `MODEL_NOT_READY` before the
    /// first fit.
    #[class(insight)]
    async fn insight_model(&self, ctx: &Context<'_>) -> Result<InsightModel> {
        Ok(InsightModel(request(ctx).loaders.population()?.model().await?))
    }

    /// What identity resolution found in the data: duplicate CRM records merged,
    /// conflicts and shared keys, and per source the records no customer links to.
    /// Counts over the whole data, never about one customer.
    #[class(insight)]
    async fn data_quality(&self, ctx: &Context<'_>) -> Result<DataQuality> {
        let found = request(ctx).loaders.population()?.data_quality().await?;
        let counts =
            |list: Vec<(String, i64)>| list.into_iter().map(|(kind, count)| KindCount { kind, count }).collect();
        Ok(DataQuality {
            customers: found.customers,
            merged_customers: found.merged,
            conflicts: counts(found.conflicts),
            shared_keys: counts(found.shared_keys),
            sources: found
                .sources
                .into_iter()
                .map(|s| SourceQuality {
                    source: s.source,
                    records: s.records,
                    unlinked: (s.records - s.linked).max(0),
                    invalid_emails: s.invalid_emails,
                    invalid_phones: s.invalid_phones,
                })
                .collect(),
        })
    }

    /// Every RFM segment with its customers, share of revenue, mean predicted lifetime
    /// value and mean churn risk, under the current model. For viewers who may not see
    /// who customers are, segments of fewer than `insights.min_group_size` customers are
    /// suppressed (and, when that is one segment alone, the next smallest too).
    #[class(insight)]
    async fn segments(&self, ctx: &Context<'_>) -> Result<Vec<SegmentSummary>> {
        let population = request(ctx).loaders.population()?;
        let model = population.model().await?;
        let mut groups: HashMap<String, Group> =
            population.groups(&model, GroupBy::Segment).await?.into_iter().map(|g| (g.value.clone(), g)).collect();
        let total: i64 = groups.values().map(|g| g.monetary_cents).sum();
        let all: Vec<(Segment, Option<Group>)> = Segment::iter().map(|s| (s, groups.remove(s.name()))).collect();
        let counts: Vec<i64> = all.iter().map(|(_, g)| g.as_ref().map_or(0, |g| g.customers)).collect();
        let hidden = suppressed(&counts, min_group(ctx));
        Ok(all
            .into_iter()
            .zip(hidden)
            .map(|((segment, group), suppressed)| {
                let shown = group.filter(|_| !suppressed);
                SegmentSummary {
                    segment: segment.into(),
                    customers: if suppressed { None } else { Some(shown.as_ref().map_or(0, |g| g.customers)) },
                    revenue_share: (!suppressed).then(|| {
                        let money = shown.as_ref().map_or(0, |g| g.monetary_cents);
                        if total > 0 { money as f64 / total as f64 } else { 0.0 }
                    }),
                    average_predicted_clv: shown.as_ref().and_then(|g| g.mean_clv),
                    average_churn_risk: shown.as_ref().and_then(|g| g.mean_p_alive).map(|p| 1.0 - p),
                    suppressed,
                }
            })
            .collect())
    }

    /// How the customers in the hub spread over the lifecycle stages under the current
    /// model; customers who had not bought by its date count as exploring. Small groups
    /// are suppressed as in `segments`.
    #[class(insight)]
    async fn lifecycle_distribution(&self, ctx: &Context<'_>) -> Result<Vec<LifecycleShare>> {
        let population = request(ctx).loaders.population()?;
        let model = population.model().await?;
        let (groups, everyone) = tokio::join!(population.groups(&model, GroupBy::Lifecycle), population.customers());
        let mut counts: HashMap<String, i64> = groups?.into_iter().map(|g| (g.value, g.customers)).collect();
        let scored: i64 = counts.values().sum();
        *counts.entry(Lifecycle::Exploration.name().to_owned()).or_default() += (everyone? - scored).max(0);
        let total: i64 = counts.values().sum();
        let all: Vec<(Lifecycle, i64)> =
            Lifecycle::iter().map(|stage| (stage, counts.get(stage.name()).copied().unwrap_or(0))).collect();
        let hidden = suppressed(&all.iter().map(|(_, n)| *n).collect::<Vec<_>>(), min_group(ctx));
        Ok(all
            .into_iter()
            .zip(hidden)
            .map(|((stage, n), suppressed)| LifecycleShare {
                stage: stage.into(),
                customers: (!suppressed).then_some(n),
                share: (!suppressed).then(|| if total > 0 { n as f64 / total as f64 } else { 0.0 }),
                suppressed,
            })
            .collect())
    }

    /// The Pareto curve of revenue: `points` (1 to 100) equal steps of the customers who
    /// bought, biggest spenders first, each with the share of revenue the customers up
    /// to it bring (the 80/20 rule reads off it). For viewers who may not see who
    /// customers are, the points are taken from one fixed grid whose steps cover at
    /// least `insights.min_group_size` customers each, whatever `points` asks for: fewer
    /// points when there are too few customers for as many, and no two curves that differ
    /// by fewer customers.
    #[class(insight)]
    async fn pareto_curve(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] points: i32,
    ) -> Result<Vec<ParetoPointView>> {
        if !(1..=100).contains(&points) {
            return Err(ApiError::BadInput("`points` must be between 1 and 100".into()).into());
        }
        let population = request(ctx).loaders.population()?;
        let model = population.model().await?;
        let k = min_group(ctx);
        let curve = if k <= 1 {
            let points = i64::from(points).min(model.customers);
            let permilles: Vec<i64> = (1..=points).map(|i| (1000 * i + points / 2) / points).collect();
            population.pareto(&model, Some(&permilles)).await?
        } else {
            // Steps picked from one grid, the same whatever `points` is: neighbouring
            // curves (21 and 22 points) would otherwise differ by one customer's share.
            let grid = stage::pareto_grid(&population.pareto(&model, None).await?, k);
            let (m, p) = (grid.len(), usize::try_from(points).unwrap_or(1).min(grid.len()));
            (1..=p).map(|i| grid[(i * m).div_ceil(p) - 1]).collect()
        };
        Ok(curve
            .into_iter()
            .map(|p| ParetoPointView {
                customer_share: p.permille as f64 / 1000.0,
                customers: p.customers,
                revenue_share: p.revenue_share,
            })
            .collect())
    }
}

/// One RFM segment of the current model's customers.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct SegmentSummary {
    /// The segment.
    pub(crate) segment: RfmSegment,
    /// Customers in the segment; null when suppressed.
    pub(crate) customers: Option<i64>,
    /// The segment's share of the revenue of all customers who bought.
    pub(crate) revenue_share: Option<f64>,
    /// Mean predicted 12-month lifetime value (1% a month).
    pub(crate) average_predicted_clv: Option<f64>,
    /// Mean churn risk.
    pub(crate) average_churn_risk: Option<f64>,
    /// Withheld: too few customers for a viewer who may not know who they are (see
    /// README, "k-anonymity"). The numbers above are null.
    pub(crate) suppressed: bool,
}

/// One lifecycle stage's share of the customers.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct LifecycleShare {
    /// The stage.
    pub(crate) stage: LifecycleStage,
    /// Customers in the stage; null when suppressed.
    pub(crate) customers: Option<i64>,
    /// Their share of all customers.
    pub(crate) share: Option<f64>,
    /// Withheld: too few customers for a viewer who may not know who they are.
    pub(crate) suppressed: bool,
}

/// A point of the Pareto curve: the customers who spent most, and their share of revenue.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ParetoPoint")]
pub(crate) struct ParetoPointView {
    /// The share of customers (who bought), biggest spenders first.
    pub(crate) customer_share: f64,
    /// How many customers that is.
    pub(crate) customers: i64,
    /// The share of revenue they bring.
    pub(crate) revenue_share: f64,
}

/// What identity resolution found in the data: duplicates, conflicts, shared keys and
/// records no customer links to.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct DataQuality {
    /// Golden customers.
    pub(crate) customers: i64,
    /// Customers found to be duplicates of another and merged into it (their old ids
    /// still answer).
    pub(crate) merged_customers: i64,
    /// What resolution reported instead of merging, or merged and flagged, by kind.
    pub(crate) conflicts: Vec<KindCount>,
    /// Emails and phones held by more than one person (never used to match), by kind.
    pub(crate) shared_keys: Vec<KindCount>,
    /// Per source: records, and those no customer links to.
    pub(crate) sources: Vec<SourceQuality>,
}

/// A count of one kind.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct KindCount {
    /// shared_email, shared_phone, merge_blocked, duplicate_record; email, phone.
    pub(crate) kind: String,
    /// How many.
    pub(crate) count: i64,
}

/// One source's records and their links.
#[derive(Debug, Clone, SimpleObject)]
pub(crate) struct SourceQuality {
    /// The source.
    pub(crate) source: crate::sources::SourceName,
    /// Records that can belong to a person (CRM customers, shop accounts, requesters,
    /// contacts).
    pub(crate) records: i64,
    /// Of those, records no customer links to (not resolved yet).
    pub(crate) unlinked: i64,
    /// Records with an email address that cannot be read (no domain, stray characters):
    /// they match on their other keys only. Counted as the resolver reads records.
    pub(crate) invalid_emails: i64,
    /// Records with a phone number that is not a valid number for its region.
    pub(crate) invalid_phones: i64,
}

/// Every number an aggregate shows this viewer covers at least this many customers: the
/// configured k for viewers who may not see who customers are, 1 for the others.
pub(crate) fn min_group(ctx: &Context<'_>) -> i64 {
    match decision(ctx, PrivacyClass::Identity) {
        Decision::Show => 1,
        _ => shared(ctx).config.insights.min_group_size.max(1),
    }
}

/// Insight mutations.
#[derive(Default)]
pub(crate) struct InsightMutation;

#[classified]
#[Object]
impl InsightMutation {
    /// Fits the insight models now on the purchases up to `asOf` (today by default) and
    /// serves them from the next request on; the previous model stays current if the fit
    /// fails. With `changedOnly`, scores again only the customers whose orders, tickets or
    /// identity links changed since the model's last refresh, as of `asOf`, against the
    /// current model (a full fit when there is none to update). Admins only. Takes as
    /// long as the work (about a minute for a full fit of a million customers).
    #[class(insight)]
    async fn refresh_insights(
        &self,
        ctx: &Context<'_>,
        as_of: Option<NaiveDate>,
        #[graphql(default = false)] changed_only: bool,
    ) -> Result<InsightModel> {
        admin_only(ctx, "refreshInsights")?;
        let as_of = as_of.unwrap_or_else(|| Utc::now().date_naive());
        let loaders = &request(ctx).loaders;
        loaders.admin().refresh_insights(as_of, changed_only).await?;
        // The newest ready model: this one, unless another fit completed after it.
        Ok(InsightModel(loaders.population()?.model().await?))
    }
}
