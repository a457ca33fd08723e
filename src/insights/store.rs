//! The hub store's insight tables: one row per fitted model, one row per customer scored
//! with it (`migrations/hub/*/0003_insights.sql`). Requests read the newest ready model.

use chrono::{DateTime, NaiveDate, Utc};

use super::Summary;
use super::affinity::{Affinity, Product};
use super::bgnbd::{self, History};
use super::gamma_gamma;
use super::rfm::{self, Figures, Scores, Segment};
use super::stage::{Lifecycle, Quadrant, Satisfaction, TierCuts, ValueTier, dissatisfied};
use crate::identity::store::{Narrowing, Rank};
use crate::sources::engine::in_list;
use crate::sources::engine::insert_rows;
use crate::sources::{Arg, Database, SqlTrace};

crate::row! {
    /// A model as stored.
    #[derive(Debug, Clone)]
    struct ModelRow {
        id: String,
        as_of: NaiveDate,
        finished_at: Option<DateTime<Utc>>,
        customers: i64,
        bgnbd_r: Option<f64>,
        bgnbd_alpha: Option<f64>,
        bgnbd_a: Option<f64>,
        bgnbd_b: Option<f64>,
        bgnbd_log_likelihood: Option<f64>,
        spend_p: Option<f64>,
        spend_q: Option<f64>,
        spend_v: Option<f64>,
        cuts: Option<String>,
        watermarks: Option<String>,
        updated_at: Option<DateTime<Utc>>,
    }
}

/// The newest change each source held when a model's rows were last read: the next
/// incremental refresh reads the changes after these. (A change stamped with the very
/// same time but committed after it was read waits for the next full refresh.)
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Watermarks {
    /// The orders' newest `updated_at`.
    pub(crate) orders: Option<DateTime<Utc>>,
    /// The tickets' newest `updated_at`.
    pub(crate) tickets: Option<DateTime<Utc>>,
    /// The identity links' newest `linked_at`.
    pub(crate) links: Option<DateTime<Utc>>,
}

/// Where a model's population placed its customers, so that an incremental refresh can
/// score a changed customer against it without ranking everyone again.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Cuts {
    pub(crate) rfm: rfm::Cuts,
    pub(crate) tiers: TierCuts,
    /// The mean of every CSAT answer of the population: service expectations start there.
    pub(crate) population_csat: f64,
}

/// A fitted model: what every customer's insights of one snapshot are computed with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    pub(crate) id: String,
    /// Purchases up to and including this day count.
    pub(crate) as_of: NaiveDate,
    pub(crate) fitted_at: DateTime<Utc>,
    /// Customers with a purchase up to `as_of`.
    pub(crate) customers: i64,
    /// The purchase model; `None` when no customer bought twice.
    pub(crate) purchases: Option<bgnbd::Params>,
    pub(crate) log_likelihood: Option<f64>,
    /// The spend model; `None` when it could not be fitted.
    pub(crate) spend: Option<gamma_gamma::Params>,
    /// The population's cut points; `None` for models fitted before incremental refreshes.
    pub(crate) cuts: Option<Cuts>,
    /// Source changes from these on are not in the model's rows yet; `None` for models
    /// fitted before incremental refreshes.
    pub(crate) watermarks: Option<Watermarks>,
    /// The last incremental refresh.
    pub(crate) updated_at: Option<DateTime<Utc>>,
}

impl From<ModelRow> for Model {
    fn from(m: ModelRow) -> Self {
        let purchases = match (m.bgnbd_r, m.bgnbd_alpha, m.bgnbd_a, m.bgnbd_b) {
            (Some(r), Some(alpha), Some(a), Some(b)) => Some(bgnbd::Params { r, alpha, a, b }),
            _ => None,
        };
        let spend = match (m.spend_p, m.spend_q, m.spend_v) {
            (Some(p), Some(q), Some(v)) => Some(gamma_gamma::Params { p, q, v }),
            _ => None,
        };
        Model {
            id: m.id,
            as_of: m.as_of,
            fitted_at: m.finished_at.unwrap_or_default(),
            customers: m.customers,
            purchases,
            log_likelihood: m.bgnbd_log_likelihood,
            spend,
            cuts: m.cuts.and_then(|c| serde_json::from_str(&c).ok()),
            watermarks: m.watermarks.and_then(|w| serde_json::from_str(&w).ok()),
            updated_at: m.updated_at,
        }
    }
}

const MODEL_COLUMNS: &str = "id, as_of, finished_at, customers, bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b, \
                             bgnbd_log_likelihood, spend_p, spend_q, spend_v, cuts, watermarks, updated_at";

/// The newest ready model, if any fit has completed.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn current_model(hub: &Database, trace: &SqlTrace) -> Result<Option<Model>, sqlx::Error> {
    let sql = format!(
        "select {MODEL_COLUMNS} from insight_models where status = 'ready' order by finished_at desc, id desc limit 1"
    );
    let rows: Vec<ModelRow> = hub.fetch_all(trace, &sql, &[]).await?;
    Ok(rows.into_iter().next().map(Model::from))
}

crate::row! {
    /// A customer's stored insights.
    #[derive(Debug, Clone)]
    struct InsightRow {
        customer_id: String,
        frequency: i32,
        recency_weeks: f64,
        age_weeks: f64,
        recency_days: i32,
        monetary_cents: i64,
        repeat_mean_spend: f64,
        r_score: i16,
        f_score: i16,
        m_score: i16,
        segment: String,
        p_alive: Option<f64>,
        clv_12m: Option<f64>,
        lifecycle: String,
        value_tier: String,
        tickets: Option<i32>,
        open_complaints: Option<i32>,
        average_csat: Option<f64>,
        complaint_rate: Option<f64>,
        satisfaction_index: Option<f64>,
        quadrant: Option<String>,
        scored_on: Option<NaiveDate>,
    }
}

/// One customer's insights as a model scored them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scored {
    pub(crate) summary: Summary,
    pub(crate) scores: Scores,
    pub(crate) segment: Segment,
    /// P(alive); `None` when the model has no purchase model.
    pub(crate) p_alive: Option<f64>,
    /// Lifetime value over 12 months at 1% a month; `None` without both models.
    pub(crate) clv_12m: Option<f64>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) value_tier: ValueTier,
    /// From the helpdesk; `None` without tickets.
    pub(crate) service: Option<ServiceScore>,
    /// The day an incremental refresh scored the customer as of; `None`: the model's.
    pub(crate) scored_on: Option<NaiveDate>,
}

/// A customer's satisfaction as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ServiceScore {
    pub(crate) tickets: i64,
    pub(crate) open_complaints: i64,
    pub(crate) satisfaction: Satisfaction,
    pub(crate) quadrant: Option<Quadrant>,
}

impl TryFrom<InsightRow> for (String, Scored) {
    type Error = sqlx::Error;

    fn try_from(row: InsightRow) -> Result<Self, sqlx::Error> {
        let bad = |column: &str| sqlx::Error::Decode(format!("customer_insights.{column}").into());
        let score = |s: i16| u8::try_from(s).map_err(|_| bad("score"));
        let scored = Scored {
            summary: Summary {
                history: History {
                    x: u32::try_from(row.frequency).map_err(|_| bad("frequency"))?,
                    t_x: row.recency_weeks,
                    age: row.age_weeks,
                },
                rfm: Figures {
                    recency_days: i64::from(row.recency_days),
                    frequency: i64::from(row.frequency) + 1,
                    monetary_cents: row.monetary_cents,
                },
                repeat_mean_spend: row.repeat_mean_spend,
            },
            scores: Scores {
                recency: score(row.r_score)?,
                frequency: score(row.f_score)?,
                monetary: score(row.m_score)?,
            },
            segment: row.segment.parse().map_err(|_| bad("segment"))?,
            p_alive: row.p_alive,
            clv_12m: row.clv_12m,
            lifecycle: row.lifecycle.parse().map_err(|_| bad("lifecycle"))?,
            value_tier: row.value_tier.parse().map_err(|_| bad("value_tier"))?,
            service: match (row.tickets, row.open_complaints) {
                (Some(tickets), Some(open)) => Some(ServiceScore {
                    tickets: i64::from(tickets),
                    open_complaints: i64::from(open),
                    satisfaction: Satisfaction {
                        average_csat: row.average_csat,
                        complaint_rate: row.complaint_rate,
                        index: row.satisfaction_index,
                        dissatisfied: dissatisfied(i64::from(open), row.satisfaction_index),
                    },
                    quadrant: row.quadrant.map(|q| q.parse()).transpose().map_err(|_| bad("quadrant"))?,
                }),
                _ => None,
            },
            scored_on: row.scored_on,
        };
        Ok((row.customer_id, scored))
    }
}

/// The insights of these customers under `model` (customers without a row have not
/// bought up to the model's date).
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = customers.len()))]
pub(crate) async fn insights(
    hub: &Database,
    trace: &SqlTrace,
    model: &str,
    customers: &[String],
) -> Result<Vec<(String, Scored)>, sqlx::Error> {
    let sql = format!(
        "select customer_id, frequency, recency_weeks, age_weeks, recency_days, monetary_cents, repeat_mean_spend,
                r_score, f_score, m_score, segment, p_alive, clv_12m, lifecycle, value_tier,
                tickets, open_complaints, average_csat, complaint_rate, satisfaction_index, quadrant, scored_on
         from customer_insights where model_id = ? and customer_id in ({})",
        in_list(customers.len())
    );
    let mut args = vec![Arg::from(model)];
    args.extend(customers.iter().map(|c| Arg::from(c.as_str())));
    let rows: Vec<InsightRow> = hub.fetch_all(trace, &sql, &args).await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Opens a model: its row, `running` until [`publish`] (invisible to requests).
pub(crate) async fn begin(hub: &Database, id: &str, as_of: NaiveDate) -> Result<(), sqlx::Error> {
    hub.execute(
        &SqlTrace::default(),
        "insert into insight_models (id, status, as_of, started_at, customers, read_ms, fit_ms, write_ms)
         values (?, 'running', ?, ?, 0, 0, 0, 0)",
        &[id.into(), as_of.into(), Utc::now().into()],
    )
    .await
    .map(|_| ())
}

/// Writes scored customers under a running model, in one transaction per call.
pub(crate) async fn write(hub: &Database, model: &str, rows: &[(String, Scored)]) -> Result<(), sqlx::Error> {
    hub.transaction(&insert_statements(hub, model, rows)).await.map(|_| ())
}

/// The statements that insert scored customers under a model.
fn insert_statements(hub: &Database, model: &str, rows: &[(String, Scored)]) -> Vec<(String, Vec<Arg>)> {
    const COLUMNS: &[&str] = &[
        "model_id",
        "customer_id",
        "frequency",
        "recency_weeks",
        "age_weeks",
        "recency_days",
        "monetary_cents",
        "repeat_mean_spend",
        "r_score",
        "f_score",
        "m_score",
        "segment",
        "p_alive",
        "clv_12m",
        "lifecycle",
        "value_tier",
        "tickets",
        "open_complaints",
        "average_csat",
        "complaint_rate",
        "satisfaction_index",
        "quadrant",
        "scored_on",
    ];
    let values = rows
        .iter()
        .map(|(customer, s)| {
            vec![
                Arg::from(model),
                Arg::from(customer.as_str()),
                Arg::from(i64::from(s.summary.history.x)),
                Arg::from(s.summary.history.t_x),
                Arg::from(s.summary.history.age),
                Arg::from(s.summary.rfm.recency_days),
                Arg::from(s.summary.rfm.monetary_cents),
                Arg::from(s.summary.repeat_mean_spend),
                Arg::from(i64::from(s.scores.recency)),
                Arg::from(i64::from(s.scores.frequency)),
                Arg::from(i64::from(s.scores.monetary)),
                Arg::from(s.segment.name()),
                Arg::from(s.p_alive),
                Arg::from(s.clv_12m),
                Arg::from(s.lifecycle.name()),
                Arg::from(s.value_tier.name()),
                Arg::from(s.service.map(|v| v.tickets)),
                Arg::from(s.service.map(|v| v.open_complaints)),
                Arg::from(s.service.and_then(|v| v.satisfaction.average_csat)),
                Arg::from(s.service.and_then(|v| v.satisfaction.complaint_rate)),
                Arg::from(s.service.and_then(|v| v.satisfaction.index)),
                Arg::from(s.service.and_then(|v| v.quadrant).map(|q| q.name().to_owned())),
                Arg::OptDate(s.scored_on),
            ]
        })
        .collect();
    insert_rows(hub, "customer_insights", COLUMNS, values)
}

/// One point of a model's Pareto curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ParetoPoint {
    /// The share of customers, in thousandths (1..=1000).
    pub(crate) permille: i64,
    /// How many customers that is.
    pub(crate) customers: i64,
    /// The share of revenue they bring.
    pub(crate) revenue_share: f64,
}

crate::row! {
    struct ParetoRow {
        permille: i32,
        customers: i64,
        revenue_share: f64,
    }
}

/// Writes a running model's Pareto curve.
pub(crate) async fn write_pareto(hub: &Database, model: &str, curve: &[ParetoPoint]) -> Result<(), sqlx::Error> {
    let rows = curve
        .iter()
        .map(|p| vec![Arg::from(model), Arg::from(p.permille), Arg::from(p.customers), Arg::from(p.revenue_share)])
        .collect();
    let columns = ["model_id", "permille", "customers", "revenue_share"];
    hub.transaction(&insert_rows(hub, "insight_pareto", &columns, rows)).await.map(|_| ())
}

/// The points of a model's Pareto curve at these permilles (`None`: every point).
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn pareto(
    hub: &Database,
    trace: &SqlTrace,
    model: &str,
    permilles: Option<&[i64]>,
) -> Result<Vec<ParetoPoint>, sqlx::Error> {
    let only = match permilles {
        Some(permilles) => format!("and permille in ({})", in_list(permilles.len())),
        None => String::new(),
    };
    let sql = format!(
        "select permille, customers, revenue_share from insight_pareto
         where model_id = ? {only} order by permille"
    );
    let mut args = vec![Arg::from(model)];
    args.extend(permilles.into_iter().flatten().map(|p| Arg::from(*p)));
    let rows: Vec<ParetoRow> = hub.fetch_all(trace, &sql, &args).await?;
    Ok(rows
        .into_iter()
        .map(|r| ParetoPoint {
            permille: i64::from(r.permille),
            customers: r.customers,
            revenue_share: r.revenue_share,
        })
        .collect())
}

/// What the customers of a model have in common, per value of a grouping column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupBy {
    Segment,
    Lifecycle,
    ValueTier,
}

impl GroupBy {
    fn column(self) -> &'static str {
        match self {
            GroupBy::Segment => "segment",
            GroupBy::Lifecycle => "lifecycle",
            GroupBy::ValueTier => "value_tier",
        }
    }
}

crate::row! {
    /// One group's aggregates.
    #[derive(Debug, Clone)]
    pub(crate) struct Group {
        /// The group's value (a segment's name, a stage, a tier).
        pub(crate) value: String,
        pub(crate) customers: i64,
        pub(crate) monetary_cents: i64,
        /// Means over the customers who have them.
        pub(crate) mean_clv: Option<f64>,
        pub(crate) mean_p_alive: Option<f64>,
    }
}

/// Counts, money and means of a model's customers per group, as summed when the model
/// was fitted.
#[tracing::instrument(level = "debug", skip_all)]
pub(crate) async fn groups(
    hub: &Database,
    trace: &SqlTrace,
    model: &str,
    by: GroupBy,
) -> Result<Vec<Group>, sqlx::Error> {
    let sql = "select group_kind, value, customers, monetary_cents, clv_sum, clv_count, p_alive_sum, p_alive_count
               from insight_groups where model_id = ? and group_kind = ?";
    let rows: Vec<GroupSumRow> = hub.fetch_all(trace, sql, &[model.into(), by.column().into()]).await?;
    let mean = |sum: f64, n: i64| (n > 0).then(|| sum / n as f64);
    Ok(rows
        .into_iter()
        .map(|r| Group {
            value: r.value,
            customers: r.customers,
            monetary_cents: r.monetary_cents,
            mean_clv: mean(r.clv_sum, r.clv_count),
            mean_p_alive: mean(r.p_alive_sum, r.p_alive_count),
        })
        .collect())
}

/// Sums of a group's customers, as `insight_groups` keeps them.
#[derive(Debug, Clone, Default, PartialEq)]
struct Sums {
    customers: i64,
    cents: i64,
    clv: (f64, i64),
    p_alive: (f64, i64),
}

/// The sums per (grouping, value) of a model's customers.
type GroupSums = std::collections::BTreeMap<(String, String), Sums>;

/// Adds scored customers to group sums (`sign` 1), or takes them away (`sign` −1).
fn add<'a>(sums: &mut GroupSums, scored: impl Iterator<Item = &'a Scored>, sign: i64) {
    for s in scored {
        for (grouping, value) in [
            (GroupBy::Segment.column(), s.segment.name()),
            (GroupBy::Lifecycle.column(), s.lifecycle.name()),
            (GroupBy::ValueTier.column(), s.value_tier.name()),
        ] {
            let g = sums.entry((grouping.to_owned(), value.to_owned())).or_default();
            g.customers += sign;
            g.cents += sign * s.summary.rfm.monetary_cents;
            if let Some(clv) = s.clv_12m {
                g.clv = (g.clv.0 + sign as f64 * clv, g.clv.1 + sign);
            }
            if let Some(p) = s.p_alive {
                g.p_alive = (g.p_alive.0 + sign as f64 * p, g.p_alive.1 + sign);
            }
        }
    }
}

/// The statements that write a model's group sums (groups left empty are not written).
fn group_statements(hub: &Database, model: &str, sums: GroupSums) -> Vec<(String, Vec<Arg>)> {
    let rows = sums
        .into_iter()
        .filter(|(_, g)| g.customers > 0)
        .map(|((grouping, value), g)| {
            vec![
                Arg::from(model),
                Arg::from(grouping),
                Arg::from(value),
                Arg::from(g.customers),
                Arg::from(g.cents),
                Arg::from(g.clv.0),
                Arg::from(g.clv.1),
                Arg::from(g.p_alive.0),
                Arg::from(g.p_alive.1),
            ]
        })
        .collect();
    let columns = [
        "model_id",
        "group_kind",
        "value",
        "customers",
        "monetary_cents",
        "clv_sum",
        "clv_count",
        "p_alive_sum",
        "p_alive_count",
    ];
    insert_rows(hub, "insight_groups", &columns, rows)
}

/// Sums scored customers per segment, stage and tier and writes them under a running
/// model.
pub(crate) async fn write_groups<'a>(
    hub: &Database,
    model: &str,
    scored: impl Iterator<Item = &'a Scored>,
) -> Result<(), sqlx::Error> {
    let mut sums = GroupSums::new();
    add(&mut sums, scored, 1);
    hub.transaction(&group_statements(hub, model, sums)).await.map(|_| ())
}

crate::row! {
    struct GroupSumRow {
        group_kind: String,
        value: String,
        customers: i64,
        monetary_cents: i64,
        clv_sum: f64,
        clv_count: i64,
        p_alive_sum: f64,
        p_alive_count: i64,
    }
}

/// Scores customers again under the current `model`, in place and in one transaction:
/// their rows are replaced by `rows` (customers in `customers` without a row in `rows`
/// lose theirs), the group sums follow, and the model's watermark moves to
/// `watermarks`. One update at a time: the group sums are read, then written.
pub(crate) async fn update(
    hub: &Database,
    model: &str,
    customers: &[String],
    rows: &[(String, Scored)],
    watermarks: &Watermarks,
    fence: &(String, Vec<Arg>),
) -> Result<(), sqlx::Error> {
    let trace = SqlTrace::default();
    let mut old = Vec::new();
    for chunk in customers.chunks(1000) {
        old.extend(insights(hub, &trace, model, chunk).await?);
    }
    let sql = "select group_kind, value, customers, monetary_cents, clv_sum, clv_count, p_alive_sum, p_alive_count
               from insight_groups where model_id = ?";
    let stored: Vec<GroupSumRow> = hub.fetch_all(&trace, sql, &[model.into()]).await?;
    let mut sums: GroupSums = stored
        .into_iter()
        .map(|r| {
            let sums = Sums {
                customers: r.customers,
                cents: r.monetary_cents,
                clv: (r.clv_sum, r.clv_count),
                p_alive: (r.p_alive_sum, r.p_alive_count),
            };
            ((r.group_kind, r.value), sums)
        })
        .collect();
    add(&mut sums, old.iter().map(|(_, s)| s), -1);
    add(&mut sums, rows.iter().map(|(_, s)| s), 1);
    let scored_customers = i64::try_from(rows.len()).unwrap_or(i64::MAX) - i64::try_from(old.len()).unwrap_or(0);

    let mut statements = Vec::new();
    for chunk in customers.chunks(hub.engine.max_params() - 1) {
        let mut args = vec![Arg::from(model)];
        args.extend(chunk.iter().map(|c| Arg::from(c.as_str())));
        let sql =
            format!("delete from customer_insights where model_id = ? and customer_id in ({})", in_list(chunk.len()));
        statements.push((sql, args));
    }
    statements.extend(insert_statements(hub, model, rows));
    statements.push(("delete from insight_groups where model_id = ?".to_owned(), vec![model.into()]));
    statements.extend(group_statements(hub, model, sums));
    statements.push((
        "update insight_models set customers = customers + ?, watermarks = ?, updated_at = ? where id = ?".to_owned(),
        vec![scored_customers.into(), json(watermarks).into(), Utc::now().into(), model.into()],
    ));
    // The sums were read outside this transaction: written only while the update's lease
    // is still this take's, so no other replica's update ran in between.
    hub.fenced(fence, &statements).await.map(|_| ())
}

/// Which customers a list keeps, by their insights under one model. Customers without a
/// row (who had not bought by the model's date) are exploring and in the tail tier, as
/// their insights say.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Criteria {
    pub(crate) segment: Option<Segment>,
    pub(crate) lifecycle: Option<Lifecycle>,
    pub(crate) value_tier: Option<ValueTier>,
    /// Churn risk (1 − P(alive)) at least this.
    pub(crate) min_churn_risk: Option<f64>,
    /// Predicted 12-month lifetime value at least this.
    pub(crate) min_clv: Option<f64>,
    pub(crate) quadrant: Option<Quadrant>,
    /// List in this order (customers who have the value only).
    pub(crate) order: Option<(RankBy, bool)>,
}

/// What a list of customers can be ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RankBy {
    PredictedClv,
    ChurnRisk,
}

impl Criteria {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Criteria::default()
    }

    /// The join on `customers c` and the conditions that keep the customers matching
    /// under `model`. When a criterion excludes customers without a row, an inner join
    /// led by the model's indexes; else a left join reading a missing row as exploring
    /// and tail.
    pub(crate) fn narrowing(&self, model: &str) -> Narrowing {
        let buyers_only = self.segment.is_some()
            || self.quadrant.is_some()
            || self.order.is_some()
            || self.min_churn_risk.is_some()
            || self.min_clv.is_some()
            || self.lifecycle.is_some_and(|l| l != Lifecycle::Exploration)
            || self.value_tier.is_some_and(|t| t != ValueTier::Tail);
        let on = "customer_insights i on i.customer_id = c.id and i.model_id = ?";
        let mut n = Narrowing {
            join: if buyers_only { format!("join {on}") } else { format!("left join {on}") },
            join_args: vec![Arg::from(model)],
            ..Narrowing::default()
        };
        let mut when = |condition: &str, arg: Arg| {
            n.conditions.push(condition.to_owned());
            n.args.push(arg);
        };
        if let Some(segment) = self.segment {
            when("i.segment = ?", segment.name().into());
        }
        if let Some(stage) = self.lifecycle {
            when("coalesce(i.lifecycle, 'EXPLORATION') = ?", stage.name().into());
        }
        if let Some(tier) = self.value_tier {
            when("coalesce(i.value_tier, 'TAIL') = ?", tier.name().into());
        }
        if let Some(risk) = self.min_churn_risk {
            when("i.p_alive <= ?", (1.0 - risk).into());
        }
        if let Some(clv) = self.min_clv {
            when("i.clv_12m >= ?", clv.into());
        }
        if let Some(quadrant) = self.quadrant {
            when("i.quadrant = ?", quadrant.name().into());
        }
        n.rank = self.order.map(|(by, descending)| match by {
            RankBy::PredictedClv => Rank { column: "i.clv_12m", descending },
            // Churn risk falls as P(alive) rises.
            RankBy::ChurnRisk => Rank { column: "i.p_alive", descending: !descending },
        });
        if let Some(rank) = &n.rank {
            n.conditions.push(format!("{} is not null", rank.column));
        }
        n
    }
}

/// Writes a running model's products and affinities.
pub(crate) async fn write_products(
    hub: &Database,
    model: &str,
    products: &[Product],
    affinities: &[Affinity],
) -> Result<(), sqlx::Error> {
    let products = products
        .iter()
        .map(|p| {
            vec![
                Arg::from(model),
                Arg::from(p.sku.as_str()),
                Arg::from(p.name.as_str()),
                Arg::from(p.category.as_str()),
                Arg::from(p.price_cents),
                Arg::from(p.orders),
            ]
        })
        .collect();
    let affinities = affinities
        .iter()
        .map(|a| {
            vec![
                Arg::from(model),
                Arg::from(a.sku.as_str()),
                Arg::from(a.other_sku.as_str()),
                Arg::from(a.other_name.as_str()),
                Arg::from(a.orders),
                Arg::from(a.lift),
            ]
        })
        .collect();
    let mut statements = insert_rows(
        hub,
        "insight_products",
        &["model_id", "sku", "name", "category", "price_cents", "orders"],
        products,
    );
    statements.extend(insert_rows(
        hub,
        "insight_affinities",
        &["model_id", "sku", "other_sku", "other_name", "orders", "lift"],
        affinities,
    ));
    hub.transaction(&statements).await.map(|_| ())
}

crate::row! {
    struct AffinityRow {
        sku: String,
        other_sku: String,
        other_name: String,
        orders: i64,
        lift: f64,
    }
}

/// The affinities of these products under `model`.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = skus.len()))]
pub(crate) async fn affinities(
    hub: &Database,
    trace: &SqlTrace,
    model: &str,
    skus: &[String],
) -> Result<Vec<Affinity>, sqlx::Error> {
    let sql = format!(
        "select sku, other_sku, other_name, orders, lift from insight_affinities
         where model_id = ? and sku in ({})",
        in_list(skus.len())
    );
    let mut args = vec![Arg::from(model)];
    args.extend(skus.iter().map(|s| Arg::from(s.as_str())));
    let rows: Vec<AffinityRow> = hub.fetch_all(trace, &sql, &args).await?;
    Ok(rows
        .into_iter()
        .map(|r| Affinity {
            sku: r.sku,
            other_sku: r.other_sku,
            other_name: r.other_name,
            orders: r.orders,
            lift: r.lift,
        })
        .collect())
}

crate::row! {
    struct ProductRow {
        sku: String,
        name: String,
        category: String,
        price_cents: i64,
        orders: i64,
    }
}

/// The products of these categories under `model`, cheapest first.
#[tracing::instrument(level = "debug", skip_all, fields(db.ids = categories.len()))]
pub(crate) async fn products_in(
    hub: &Database,
    trace: &SqlTrace,
    model: &str,
    categories: &[String],
) -> Result<Vec<Product>, sqlx::Error> {
    let sql = format!(
        "select sku, name, category, price_cents, orders from insight_products
         where model_id = ? and category in ({}) order by category, price_cents, sku",
        in_list(categories.len())
    );
    let mut args = vec![Arg::from(model)];
    args.extend(categories.iter().map(|c| Arg::from(c.as_str())));
    let rows: Vec<ProductRow> = hub.fetch_all(trace, &sql, &args).await?;
    Ok(rows
        .into_iter()
        .map(|r| Product {
            sku: r.sku,
            name: r.name,
            category: r.category,
            price_cents: r.price_cents,
            orders: r.orders,
        })
        .collect())
}

/// What a completed fit records of itself.
#[derive(Debug, Clone)]
pub(crate) struct Fitted {
    pub(crate) customers: i64,
    pub(crate) purchases: Option<bgnbd::Params>,
    pub(crate) log_likelihood: Option<f64>,
    pub(crate) spend: Option<gamma_gamma::Params>,
    pub(crate) read_ms: i64,
    pub(crate) fit_ms: i64,
    pub(crate) write_ms: i64,
    pub(crate) cuts: Cuts,
    /// The sources' newest changes before the fit read them.
    pub(crate) watermarks: Watermarks,
}

/// Makes a running model the current one, in one transaction: older ready models are
/// superseded. Their rows are deleted afterwards ([`prune`]).
pub(crate) async fn publish(
    hub: &Database,
    id: &str,
    fitted: &Fitted,
    fence: &(String, Vec<Arg>),
) -> Result<(), sqlx::Error> {
    let p = fitted.purchases;
    let s = fitted.spend;
    let statements = vec![
        ("update insight_models set status = 'superseded' where status = 'ready'".to_owned(), vec![]),
        (
            "update insight_models set status = 'ready', finished_at = ?, customers = ?,
                    bgnbd_r = ?, bgnbd_alpha = ?, bgnbd_a = ?, bgnbd_b = ?, bgnbd_log_likelihood = ?,
                    spend_p = ?, spend_q = ?, spend_v = ?, read_ms = ?, fit_ms = ?, write_ms = ?,
                    cuts = ?, watermarks = ?
             where id = ?"
                .to_owned(),
            vec![
                Utc::now().into(),
                fitted.customers.into(),
                p.map(|p| p.r).into(),
                p.map(|p| p.alpha).into(),
                p.map(|p| p.a).into(),
                p.map(|p| p.b).into(),
                fitted.log_likelihood.into(),
                s.map(|s| s.p).into(),
                s.map(|s| s.q).into(),
                s.map(|s| s.v).into(),
                fitted.read_ms.into(),
                fitted.fit_ms.into(),
                fitted.write_ms.into(),
                json(&fitted.cuts).into(),
                json(&fitted.watermarks).into(),
                id.into(),
            ],
        ),
    ];
    hub.fenced(fence, &statements).await.map(|_| ())
}

/// Marks a model that did not complete as failed and deletes what it wrote.
pub(crate) async fn fail(hub: &Database, id: &str) -> Result<(), sqlx::Error> {
    let statements = vec![
        ("update insight_models set status = 'failed' where id = ?".to_owned(), vec![Arg::from(id)]),
        ("delete from customer_insights where model_id = ?".to_owned(), vec![Arg::from(id)]),
        ("delete from insight_pareto where model_id = ?".to_owned(), vec![Arg::from(id)]),
        ("delete from insight_products where model_id = ?".to_owned(), vec![Arg::from(id)]),
        ("delete from insight_affinities where model_id = ?".to_owned(), vec![Arg::from(id)]),
        ("delete from insight_groups where model_id = ?".to_owned(), vec![Arg::from(id)]),
    ];
    hub.transaction(&statements).await.map(|_| ())
}

/// Deletes the rows of superseded and failed models (the models' own rows stay, as the
/// history of fits; a fit running elsewhere keeps its rows).
pub(crate) async fn prune(hub: &Database) -> Result<u64, sqlx::Error> {
    let old = "(select id from insight_models where status in ('superseded', 'failed'))";
    let statements =
        ["customer_insights", "insight_pareto", "insight_products", "insight_affinities", "insight_groups"]
            .map(|table| (format!("delete from {table} where model_id in {old}"), vec![]));
    Ok(hub.transaction(&statements).await?.iter().sum())
}

/// A value stored as JSON text (only the hub's own types, which always serialise).
fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
