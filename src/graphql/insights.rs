//! Customer insights: what the models of the latest fit say of one customer (RFM,
//! lifecycle stage, churn risk, expected purchases, lifetime value, value tier). Served
//! from the hub store; a request never waits for a fit.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};

use c360_macros::classified;

use super::common::{admin_only, request};
use crate::error::ApiError;
use crate::insights::gamma_gamma;
use crate::insights::store::Model;
use crate::loaders::insights::Insight;

/// The eleven standard RFM segments (the map of the 125 score codes is in README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::insights::rfm::Segment")]
pub enum RfmSegment {
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
pub enum LifecycleStage {
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
pub enum ValueTier {
    /// Among the customers who bring the first 80% of revenue.
    Top,
    /// Among those who bring the next 15%.
    Core,
    /// The last 5% of revenue, and customers who have not bought.
    Tail,
}

/// Recency, frequency and money, each scored 1–5 against every customer who bought
/// (quintiles: 5 is the best fifth).
#[derive(Debug, Clone, SimpleObject)]
pub struct Rfm {
    /// 5: among the fifth who bought most recently.
    pub recency: i32,
    /// 5: among the fifth who bought on the most days.
    pub frequency: i32,
    /// 5: among the fifth who spent most.
    pub monetary: i32,
    /// The three scores as one code, `100·R + 10·F + M` (111 to 555).
    pub score: i32,
    /// The segment of the score code.
    pub segment: RfmSegment,
    /// Days from the last purchase to the model's date.
    pub days_since_last_purchase: i32,
    /// Days with a purchase (several orders on one day are one purchase).
    pub purchase_days: i32,
}

/// What the insight models say of one customer, as of the latest fit.
pub struct CustomerInsights(pub Arc<Insight>);

/// The longest horizon a prediction may ask for: ten years.
const MAX_DAYS: i32 = 3_650;
const MAX_MONTHS: i32 = 120;

/// What the insight models say of one customer, as of the latest fit.
#[Object]
impl CustomerInsights {
    /// The model's date: purchases up to and including this day count.
    async fn as_of(&self) -> NaiveDate {
        self.0.model.as_of
    }

    /// When the model was fitted.
    async fn fitted_at(&self) -> DateTime<Utc> {
        self.0.model.fitted_at
    }

    /// RFM scores and segment; null for a customer who had not bought by the model's date.
    async fn rfm(&self) -> Option<Rfm> {
        self.0.scored.as_ref().map(|s| Rfm {
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
        self.0.scored.as_ref().map_or(LifecycleStage::Exploration, |s| s.lifecycle.into())
    }

    /// The probability that the customer is still active (BG/NBD, Fader, Hardie & Lee
    /// 2005); 1 for customers who bought once. Null without a purchase, or when no
    /// customer has bought twice (the model cannot be fitted).
    async fn probability_alive(&self) -> Option<f64> {
        self.0.scored.as_ref().and_then(|s| s.p_alive)
    }

    /// `1 − probabilityAlive`.
    async fn churn_risk(&self) -> Option<f64> {
        self.0.scored.as_ref().and_then(|s| s.p_alive).map(|p| 1.0 - p)
    }

    /// Purchases (purchase days) expected in the next `days` days (1 to 3650), by BG/NBD.
    async fn expected_purchases(&self, days: i32) -> Result<Option<f64>> {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::BadInput(format!("`days` must be between 1 and {MAX_DAYS}")).into());
        }
        let (Some(scored), Some(model)) = (&self.0.scored, &self.0.model.purchases) else { return Ok(None) };
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
        let model = &self.0.model;
        let (Some(scored), Some(purchases), Some(spend)) = (&self.0.scored, &model.purchases, &model.spend) else {
            return Ok(None);
        };
        let (history, mean) = (&scored.summary.history, scored.summary.repeat_mean_spend);
        let months = u32::try_from(months).unwrap_or(1);
        Ok(Some(gamma_gamma::lifetime_value(purchases, spend, history, mean, months, monthly_discount_rate)))
    }

    /// Money spent up to the model's date (orders neither cancelled nor returned), in the
    /// shop's currency.
    async fn historical_value(&self) -> f64 {
        self.0.scored.as_ref().map_or(0.0, |s| s.summary.rfm.monetary_cents as f64 / 100.0)
    }

    /// The customer's value tier by money spent.
    async fn value_tier(&self) -> ValueTier {
        self.0.scored.as_ref().map_or(ValueTier::Tail, |s| s.value_tier.into())
    }
}

/// A fitted model: its date, when it was fitted, and its parameters.
pub struct InsightModel(pub Arc<Model>);

/// BG/NBD's parameters (Fader, Hardie & Lee 2005): purchase rates are gamma(r, α) across
/// customers, the chance of dropping out after a purchase beta(a, b).
#[derive(Debug, Clone, SimpleObject)]
pub struct PurchaseModel {
    /// Shape of the purchase rates' gamma distribution.
    pub r: f64,
    /// Scale of the purchase rates' gamma distribution (in weeks).
    pub alpha: f64,
    /// First shape of the dropout probability's beta distribution.
    pub a: f64,
    /// Second shape of the dropout probability's beta distribution.
    pub b: f64,
    /// The log-likelihood at these parameters.
    pub log_likelihood: Option<f64>,
}

/// The Gamma-Gamma spend model's parameters.
#[derive(Debug, Clone, SimpleObject)]
pub struct SpendModel {
    /// Shape of the spend per purchase (gamma) of each customer.
    pub p: f64,
    /// Shape of the customers' spend scales (gamma across customers).
    pub q: f64,
    /// Scale of the customers' spend scales.
    pub v: f64,
    /// The population's mean spend per purchase, `p·v / (q − 1)`.
    pub population_mean_spend: f64,
}

/// A fitted insight model.
#[Object]
impl InsightModel {
    /// Purchases up to and including this day count.
    async fn as_of(&self) -> NaiveDate {
        self.0.as_of
    }

    /// When the fit completed.
    async fn fitted_at(&self) -> DateTime<Utc> {
        self.0.fitted_at
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
pub struct InsightQuery;

#[classified]
#[Object]
impl InsightQuery {
    /// The model the insights are currently served from; `MODEL_NOT_READY` before the
    /// first fit.
    #[class(insight)]
    async fn insight_model(&self, ctx: &Context<'_>) -> Result<InsightModel> {
        Ok(InsightModel(request(ctx).loaders.admin().insight_model().await?))
    }
}

/// Insight mutations.
#[derive(Default)]
pub struct InsightMutation;

#[classified]
#[Object]
impl InsightMutation {
    /// Fits the insight models now on the purchases up to `asOf` (today by default) and
    /// serves them from the next request on; the previous model stays current if the fit
    /// fails. Admins only. Takes as long as the fit (seconds for a million customers).
    #[class(insight)]
    async fn refresh_insights(&self, ctx: &Context<'_>, as_of: Option<NaiveDate>) -> Result<InsightModel> {
        admin_only(ctx)?;
        let as_of = as_of.unwrap_or_else(|| Utc::now().date_naive());
        let admin = request(ctx).loaders.admin();
        admin.refresh_insights(as_of).await?;
        // The newest ready model: this one, unless another fit completed after it.
        Ok(InsightModel(admin.insight_model().await?))
    }
}
