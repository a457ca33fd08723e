//! Where a customer stands: the lifecycle stage of the relationship and the value tier
//! of the 80/20 rule. Both are rules over the models' figures, documented here and in
//! README ("Insights").

use strum::{EnumIter, EnumString, IntoStaticStr};

use super::Summary;
use super::store::ParetoPoint;

/// The relationship's stage (Dwyer, Schurr & Oh's exploration, formation, stability and
/// decline; lost once it has ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumString, IntoStaticStr, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Lifecycle {
    /// Not bought yet, or bought once recently.
    Exploration,
    /// Buying again, in the first year of the relationship.
    Formation,
    /// Buying again for more than a year, and likely still active.
    Stability,
    /// Activity falling: a one-time buyer gone quiet, or churn risk of one half or more.
    Decline,
    /// No purchase for a year, or hardly any chance of still being active.
    Lost,
}

/// A one-time buyer is still exploring within this many days of the purchase.
pub(crate) const RECENT_DAYS: i64 = 90;
/// A customer without a purchase for longer than this is lost.
pub(crate) const LOST_DAYS: i64 = 365;
/// Below this probability of being active, a customer is lost ...
pub(crate) const LOST_P_ALIVE: f64 = 0.2;
/// ... and below this one, declining.
pub(crate) const DECLINE_P_ALIVE: f64 = 0.5;
/// Repeat buyers form the relationship during its first year (in weeks).
pub(crate) const FORMATION_WEEKS: f64 = 52.0;

impl Lifecycle {
    /// The stage of a customer with `summary` and probability of being active `p_alive`
    /// (1 when no model could be fitted). Rules in order: lost (no purchase for
    /// [`LOST_DAYS`], or `p_alive` below [`LOST_P_ALIVE`]); one purchase: exploration
    /// within [`RECENT_DAYS`], else decline; decline (`p_alive` below
    /// [`DECLINE_P_ALIVE`]); formation (first [`FORMATION_WEEKS`]); stability.
    pub(crate) fn of(summary: &Summary, p_alive: f64) -> Lifecycle {
        let days = summary.rfm.recency_days;
        if days > LOST_DAYS || p_alive < LOST_P_ALIVE {
            Lifecycle::Lost
        } else if summary.history.x == 0 {
            if days <= RECENT_DAYS { Lifecycle::Exploration } else { Lifecycle::Decline }
        } else if p_alive < DECLINE_P_ALIVE {
            Lifecycle::Decline
        } else if summary.history.age < FORMATION_WEEKS {
            Lifecycle::Formation
        } else {
            Lifecycle::Stability
        }
    }

    pub(crate) fn name(self) -> &'static str {
        self.into()
    }
}

/// The value tier: customers ranked by money spent, most first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumString, IntoStaticStr, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ValueTier {
    /// The customers who bring the first 80% of revenue.
    Top,
    /// Those who bring the next 15% (up to 95%).
    Core,
    /// The last 5% of revenue, and customers who have not bought.
    Tail,
}

/// Where a customer sits on the value × satisfaction matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumString, IntoStaticStr, EnumIter)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Quadrant {
    /// High value and satisfied.
    Retain,
    /// High value and dissatisfied.
    WinBack,
    /// Low value and satisfied.
    Maintain,
    /// Low value and dissatisfied.
    Deprioritize,
}

impl Quadrant {
    pub(crate) fn name(self) -> &'static str {
        self.into()
    }
}

/// Weight, in answers, of the population's mean CSAT in a customer's expectation.
pub(crate) const PRIOR_ANSWERS: f64 = 2.0;

/// A customer's service, as the satisfaction model reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Service {
    pub(crate) tickets: i64,
    pub(crate) complaints: i64,
    pub(crate) open_complaints: i64,
    pub(crate) csat_sum: i64,
    pub(crate) csat_answers: i64,
    pub(crate) recent_csat_sum: i64,
    pub(crate) recent_csat_answers: i64,
}

/// Satisfaction as perception against expectation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Satisfaction {
    /// Mean CSAT (1–5) over answered tickets; `None` without answers.
    pub(crate) average_csat: Option<f64>,
    /// Complaints per ticket; `None` without tickets.
    pub(crate) complaint_rate: Option<f64>,
    /// Perceived service minus expected, in CSAT points; `None` without answers.
    pub(crate) index: Option<f64>,
    /// Dissatisfied: below expectation, or a complaint still open.
    pub(crate) dissatisfied: bool,
}

impl Service {
    /// Adds another requester record's service of the same customer.
    pub(crate) fn add(&mut self, other: &Service) {
        self.tickets += other.tickets;
        self.complaints += other.complaints;
        self.open_complaints += other.open_complaints;
        self.csat_sum += other.csat_sum;
        self.csat_answers += other.csat_answers;
        self.recent_csat_sum += other.recent_csat_sum;
        self.recent_csat_answers += other.recent_csat_answers;
    }

    /// Satisfaction against `population_csat`, the mean CSAT of every answer. Perceived
    /// service is the mean of the recent answers (all of them when none is recent); the
    /// expectation is the mean of the customer's earlier answers, shrunk toward the
    /// population's mean by [`PRIOR_ANSWERS`] answers' weight (the population's mean
    /// alone for a first answer). `None` without tickets.
    pub(crate) fn satisfaction(&self, population_csat: f64) -> Option<Satisfaction> {
        if self.tickets == 0 {
            return None;
        }
        let mean = |sum: i64, n: i64| (n > 0).then(|| sum as f64 / n as f64);
        let average_csat = mean(self.csat_sum, self.csat_answers);
        let index = average_csat.map(|all| {
            let (recent, earlier_n) = match mean(self.recent_csat_sum, self.recent_csat_answers) {
                Some(recent) => (recent, self.csat_answers - self.recent_csat_answers),
                None => (all, 0),
            };
            let earlier_sum = if earlier_n > 0 { (self.csat_sum - self.recent_csat_sum) as f64 } else { 0.0 };
            let expectation = (earlier_sum + PRIOR_ANSWERS * population_csat) / (earlier_n as f64 + PRIOR_ANSWERS);
            recent - expectation
        });
        Some(Satisfaction {
            average_csat,
            complaint_rate: Some(self.complaints as f64 / self.tickets as f64),
            index,
            dissatisfied: dissatisfied(self.open_complaints, index),
        })
    }
}

/// Dissatisfied: a complaint still open, or service below expectation.
pub(crate) fn dissatisfied(open_complaints: i64, index: Option<f64>) -> bool {
    open_complaints > 0 || index.is_some_and(|i| i < 0.0)
}

impl Satisfaction {
    /// The quadrant of a customer in `tier`: high value is the top tier. `None` when there
    /// is nothing to judge satisfaction by (no answer and no open complaint).
    pub(crate) fn quadrant(&self, tier: ValueTier) -> Option<Quadrant> {
        if self.index.is_none() && !self.dissatisfied {
            return None;
        }
        Some(match (tier == ValueTier::Top, self.dissatisfied) {
            (true, false) => Quadrant::Retain,
            (true, true) => Quadrant::WinBack,
            (false, false) => Quadrant::Maintain,
            (false, true) => Quadrant::Deprioritize,
        })
    }
}

impl ValueTier {
    pub(crate) fn name(self) -> &'static str {
        self.into()
    }
}

/// The tier of each customer, from `(tie-breaker, money spent)`: ranked by money, most
/// first (ties by key ascending), a customer is in the top tier while the revenue of
/// those ranked before them is under 80% of the total (the top tier brings 80% of the
/// revenue), in the core tier while it is under 95%, else in the tail. In the same order as given.
pub(crate) fn value_tiers<K: Ord>(customers: &[(K, i64)]) -> Vec<ValueTier> {
    let total: i128 = customers.iter().map(|(_, cents)| i128::from((*cents).max(0))).sum();
    let mut order: Vec<usize> = (0..customers.len()).collect();
    order.sort_by(|&i, &j| customers[j].1.cmp(&customers[i].1).then_with(|| customers[i].0.cmp(&customers[j].0)));
    let mut tiers = vec![ValueTier::Tail; customers.len()];
    let mut before: i128 = 0;
    for i in order {
        let cents = i128::from(customers[i].1.max(0));
        if total > 0 && cents > 0 {
            // Integer shares: `before / total < 0.80` as `100·before < 80·total`.
            tiers[i] = if before * 100 < total * 80 {
                ValueTier::Top
            } else if before * 100 < total * 95 {
                ValueTier::Core
            } else {
                ValueTier::Tail
            };
        }
        before += cents;
    }
    tiers
}

/// The least money a customer of the top and of the core tier spent in a population, for
/// placing a customer in a tier scored earlier (an incremental refresh).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct TierCuts {
    pub(crate) top_cents: Option<i64>,
    pub(crate) core_cents: Option<i64>,
}

impl TierCuts {
    /// The cut points of a population (`cents` spent and the `tiers` it gave, in order).
    pub(crate) fn of(cents: &[i64], tiers: &[ValueTier]) -> TierCuts {
        let least = |tier: ValueTier| cents.iter().zip(tiers).filter(|(_, t)| **t == tier).map(|(c, _)| *c).min();
        TierCuts { top_cents: least(ValueTier::Top), core_cents: least(ValueTier::Core) }
    }

    /// The tier of a customer who spent `cents`.
    pub(crate) fn tier(&self, cents: i64) -> ValueTier {
        let reaches = |cut: Option<i64>| cents > 0 && cut.is_some_and(|c| cents >= c);
        if reaches(self.top_cents) {
            ValueTier::Top
        } else if reaches(self.core_cents) {
            ValueTier::Core
        } else {
            ValueTier::Tail
        }
    }
}

/// The Pareto curve in thousandths: customers ranked by money spent, most first, and
/// for each share `m/1000` of them (rounded up to whole customers) the share of revenue
/// they bring. Empty without customers; shares are 0 when nothing was spent.
pub(crate) fn pareto_curve(cents: &[i64]) -> Vec<ParetoPoint> {
    let mut sorted: Vec<i64> = cents.iter().map(|c| (*c).max(0)).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let n = sorted.len();
    let total: i128 = sorted.iter().map(|c| i128::from(*c)).sum();
    if n == 0 {
        return Vec::new();
    }
    let mut cumulative: i128 = 0;
    let mut taken = 0usize;
    (1..=1000usize)
        .map(|permille| {
            let customers = (permille * n).div_ceil(1000);
            while taken < customers {
                cumulative += i128::from(sorted[taken]);
                taken += 1;
            }
            let revenue_share = if total > 0 { cumulative as f64 / total as f64 } else { 0.0 };
            ParetoPoint { permille: permille as i64, customers: customers as i64, revenue_share }
        })
        .collect()
}

/// The points of a Pareto curve (every permille, in order) that a viewer who may not
/// know who the customers are may be shown: a grid fixed by the data alone, whose steps
/// (from none to the first point, and between points) each cover at least `k`
/// customers, ending at everyone. Every curve such a viewer gets is taken from it, so no
/// two numbers shown, in one answer or in two, differ by fewer than `k` customers.
pub(crate) fn pareto_grid(curve: &[ParetoPoint], k: i64) -> Vec<ParetoPoint> {
    let mut grid: Vec<ParetoPoint> = Vec::new();
    for point in curve {
        if point.customers >= grid.last().map_or(0, |p| p.customers) + k {
            grid.push(*point);
        }
    }
    // The last step ends at everyone: what is left after the last point (fewer than k)
    // joins it, else 100% would tell that remainder's share.
    if let (Some(last), Some(end)) = (grid.last_mut(), curve.last())
        && last.permille != end.permille
    {
        *last = *end;
    }
    grid
}

/// Which groups of an aggregate to withhold from a viewer who may not know who the
/// customers are, so that every number shown covers at least `k` customers: groups of
/// 1 to k−1 customers (empty ones reveal no one), and when that is a single group, the
/// next smallest too, so that it cannot be worked out from a total.
pub(crate) fn suppressed(counts: &[i64], k: i64) -> Vec<bool> {
    let mut out: Vec<bool> = counts.iter().map(|&c| c > 0 && c < k).collect();
    if out.iter().filter(|s| **s).count() == 1
        && let Some((i, _)) =
            counts.iter().enumerate().filter(|(i, c)| **c > 0 && !out[*i]).min_by_key(|(i, c)| (**c, *i))
    {
        out[i] = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{bgnbd::History, rfm::Figures};
    use super::*;

    fn summary(x: u32, age: f64, recency_days: i64) -> Summary {
        Summary {
            history: History { x, t_x: 0.0, age },
            rfm: Figures { recency_days, frequency: i64::from(x) + 1, monetary_cents: 1000 },
            repeat_mean_spend: 10.0,
        }
    }

    #[test]
    fn lifecycle_rules_apply_in_order() {
        assert_eq!(Lifecycle::of(&summary(0, 4.0, 20), 1.0), Lifecycle::Exploration);
        assert_eq!(Lifecycle::of(&summary(0, 30.0, 200), 1.0), Lifecycle::Decline);
        assert_eq!(Lifecycle::of(&summary(0, 80.0, 400), 1.0), Lifecycle::Lost);
        assert_eq!(Lifecycle::of(&summary(3, 30.0, 10), 0.9), Lifecycle::Formation);
        assert_eq!(Lifecycle::of(&summary(3, 80.0, 10), 0.9), Lifecycle::Stability);
        assert_eq!(Lifecycle::of(&summary(3, 80.0, 10), 0.4), Lifecycle::Decline);
        assert_eq!(Lifecycle::of(&summary(3, 80.0, 10), 0.1), Lifecycle::Lost);
        // A long silence ends the relationship whatever the model says.
        assert_eq!(Lifecycle::of(&summary(3, 80.0, 366), 0.9), Lifecycle::Lost);
    }

    #[test]
    fn the_top_tier_brings_the_first_80_percent() {
        // 50 + 30 = 80: the third customer starts at 80% and is core; 95% reached
        // after the fourth, so the last two are tail.
        let customers = [(1, 5000), (2, 3000), (3, 1000), (4, 500), (5, 300), (6, 200)];
        use ValueTier::*;
        assert_eq!(value_tiers(&customers), [Top, Top, Core, Core, Tail, Tail]);
        // Cut points place each of them, and newcomers, as the ranking did.
        let cents: Vec<i64> = customers.iter().map(|(_, c)| *c).collect();
        let cuts = TierCuts::of(&cents, &value_tiers(&customers));
        assert_eq!(cents.iter().map(|c| cuts.tier(*c)).collect::<Vec<_>>(), [Top, Top, Core, Core, Tail, Tail]);
        assert_eq!(
            (cuts.tier(3000), cuts.tier(2999), cuts.tier(500), cuts.tier(499), cuts.tier(0)),
            (Top, Core, Core, Tail, Tail)
        );
        // Ties by key; nothing spent is tail.
        assert_eq!(value_tiers(&[(2, 100), (1, 100), (3, 0)]), [Top, Top, Tail]);
        assert_eq!(value_tiers::<u8>(&[]), []);
    }

    #[test]
    fn the_pareto_curve_accumulates_the_biggest_spenders_first() {
        let curve = pareto_curve(&[100, 700, 0, 200]);
        assert_eq!(curve.len(), 1000);
        // A quarter of the customers (one) brings 70%, half of them 90%, all of them 100%.
        let at = |permille: usize| (curve[permille - 1].customers, curve[permille - 1].revenue_share);
        assert_eq!(at(250), (1, 0.7));
        assert_eq!(at(251), (2, 0.9));
        assert_eq!(at(500), (2, 0.9));
        assert_eq!(at(1000), (4, 1.0));
        assert!(pareto_curve(&[]).is_empty());
        assert_eq!(pareto_curve(&[0, 0])[999].revenue_share, 0.0);
    }

    #[test]
    fn satisfaction_is_perception_against_expectation() {
        let service = |csat: &[(i64, bool)], open_complaints| {
            let mut s = Service { tickets: csat.len().max(1) as i64, open_complaints, ..Service::default() };
            for &(score, recent) in csat {
                s.csat_sum += score;
                s.csat_answers += 1;
                if recent {
                    s.recent_csat_sum += score;
                    s.recent_csat_answers += 1;
                }
            }
            s
        };
        // A first answer of 4 where everyone gives 4 on average meets expectation.
        let first = service(&[(4, true)], 0).satisfaction(4.0).expect("tickets");
        assert_eq!((first.average_csat, first.index, first.dissatisfied), (Some(4.0), Some(0.0), false));
        // Used to 5s, now a 3: below expectation (5·2 + 4·2) / 4 = 4.5, by 1.5.
        let fallen = service(&[(5, false), (5, false), (3, true)], 0).satisfaction(4.0).expect("tickets");
        assert_eq!(fallen.index, Some(-1.5));
        assert_eq!(fallen.quadrant(ValueTier::Top), Some(Quadrant::WinBack));
        assert_eq!(fallen.quadrant(ValueTier::Tail), Some(Quadrant::Deprioritize));
        // An open complaint is dissatisfaction whatever the scores; no answer and no
        // complaint says nothing.
        let open = service(&[], 1).satisfaction(4.0).expect("tickets");
        assert_eq!((open.index, open.quadrant(ValueTier::Core)), (None, Some(Quadrant::Deprioritize)));
        let silent = service(&[], 0).satisfaction(4.0).expect("tickets");
        assert_eq!(silent.quadrant(ValueTier::Top), None);
        assert_eq!(
            service(&[(5, true)], 0).satisfaction(4.0).and_then(|s| s.quadrant(ValueTier::Top)),
            Some(Quadrant::Retain)
        );
        assert!(Service::default().satisfaction(4.0).is_none());
    }

    #[test]
    fn small_groups_are_withheld_with_a_second_one_when_alone() {
        // One small group: the next smallest goes too, or the total would give it away.
        assert_eq!(suppressed(&[50, 3, 20, 0], 10), [false, true, true, false]);
        // Two small groups cover each other; empty groups reveal no one.
        assert_eq!(suppressed(&[50, 3, 4, 0], 10), [false, true, true, false]);
        assert_eq!(suppressed(&[50, 30, 20], 10), [false, false, false]);
        assert_eq!(suppressed(&[5], 10), [true]);
    }
}
