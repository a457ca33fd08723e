//! Next best actions: a short ranked list of what to do for one customer, each with its
//! reason, from the customer's scores, what they bought and the model's product
//! statistics. The rules, in rank order:
//!
//! 1. service recovery: a valuable customer (top or core tier) with a complaint open;
//! 2. win-back: a valuable customer in decline;
//! 3. cross-sell (not for lost customers): the products most often bought with theirs,
//!    by co-purchase lift, that they do not have yet (two at most);
//! 4. up-sell (not for lost customers): in the category they spent most on, the next
//!    pricier product than the most they paid there.

use std::collections::{HashMap, HashSet};

use strum::IntoStaticStr;

use super::affinity::{Affinity, Product};
use super::stage::{Lifecycle, ValueTier};
use super::store::Scored;

/// What kind of action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ActionKind {
    ServiceRecovery,
    WinBack,
    CrossSell,
    UpSell,
}

/// One recommended action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Action {
    pub(crate) kind: ActionKind,
    /// The product to offer (cross-sell and up-sell): its sku and name.
    pub(crate) product: Option<(String, String)>,
    /// Why, in a sentence.
    pub(crate) reason: String,
}

/// A product the customer bought: its category and the most they paid (cents).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bought {
    pub(crate) sku: String,
    pub(crate) category: String,
    pub(crate) price_cents: i64,
}

/// At most this many actions.
pub(crate) const MAX_ACTIONS: usize = 5;
const MAX_CROSS_SELL: usize = 2;

/// The actions for a customer with `scored` insights who bought `bought`, given the
/// affinities of those products and the products of their categories (cheapest first).
pub(crate) fn next_best_actions(
    scored: &Scored,
    bought: &[Bought],
    affinities: &[Affinity],
    catalogue: &[Product],
) -> Vec<Action> {
    let mut actions = Vec::new();
    let valuable = matches!(scored.value_tier, ValueTier::Top | ValueTier::Core);
    let tier = scored.value_tier.name();
    if let Some(service) = scored.service.filter(|s| valuable && s.open_complaints > 0) {
        actions.push(Action {
            kind: ActionKind::ServiceRecovery,
            product: None,
            reason: format!(
                "{} open complaint(s) from a {tier}-tier customer: resolve them before anything else",
                service.open_complaints
            ),
        });
    }
    if valuable && scored.lifecycle == Lifecycle::Decline {
        let risk = scored.p_alive.map_or(String::new(), |p| format!(", churn risk {:.0}%", (1.0 - p) * 100.0));
        actions.push(Action {
            kind: ActionKind::WinBack,
            product: None,
            reason: format!("a {tier}-tier customer in decline{risk}: offer a win-back incentive"),
        });
    }
    if scored.lifecycle == Lifecycle::Lost {
        return actions;
    }
    let owned: HashSet<&str> = bought.iter().map(|b| b.sku.as_str()).collect();
    let names: HashMap<&str, &Product> = catalogue.iter().map(|p| (p.sku.as_str(), p)).collect();
    let mut candidates: Vec<&Affinity> = affinities.iter().filter(|a| !owned.contains(a.other_sku.as_str())).collect();
    candidates.sort_by(|a, b| b.lift.total_cmp(&a.lift).then_with(|| a.other_sku.cmp(&b.other_sku)));
    let mut offered: HashSet<&str> = HashSet::new();
    for a in candidates {
        if offered.len() == MAX_CROSS_SELL {
            break;
        }
        if !offered.insert(a.other_sku.as_str()) {
            continue;
        }
        let with = names.get(a.sku.as_str()).map_or(a.sku.as_str(), |p| p.name.as_str());
        actions.push(Action {
            kind: ActionKind::CrossSell,
            product: Some((a.other_sku.clone(), a.other_name.clone())),
            reason: format!("bought with {with} {:.1}× as often as chance would have it", a.lift),
        });
    }
    // Up-sell in the category they spent most on.
    let mut spent: HashMap<&str, i64> = HashMap::new();
    for b in bought {
        *spent.entry(b.category.as_str()).or_default() += b.price_cents;
    }
    if let Some((category, _)) = spent.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))) {
        let paid = bought.iter().filter(|b| b.category == *category).map(|b| b.price_cents).max().unwrap_or(0);
        let step_up = catalogue
            .iter()
            .filter(|p| p.category == *category && p.price_cents > paid && !owned.contains(p.sku.as_str()))
            .min_by_key(|p| (p.price_cents, p.sku.clone()));
        if let Some(product) = step_up {
            actions.push(Action {
                kind: ActionKind::UpSell,
                product: Some((product.sku.clone(), product.name.clone())),
                reason: format!(
                    "a step up in {category}: {:.2} against the {:.2} they paid at most",
                    product.price_cents as f64 / 100.0,
                    paid as f64 / 100.0
                ),
            });
        }
    }
    actions.truncate(MAX_ACTIONS);
    actions
}

#[cfg(test)]
mod tests {
    use super::super::Summary;
    use super::super::bgnbd::History;
    use super::super::rfm::{Figures, Scores, Segment};
    use super::super::stage::Satisfaction;
    use super::super::store::ServiceScore;
    use super::*;

    fn scored(tier: ValueTier, lifecycle: Lifecycle, open_complaints: i64) -> Scored {
        Scored {
            summary: Summary {
                history: History { x: 2, t_x: 10.0, age: 30.0 },
                rfm: Figures { recency_days: 40, frequency: 3, monetary_cents: 30_000 },
                repeat_mean_spend: 100.0,
            },
            scores: Scores { recency: 3, frequency: 3, monetary: 3 },
            segment: Segment::NeedAttention,
            p_alive: Some(0.4),
            clv_12m: Some(50.0),
            lifecycle,
            value_tier: tier,
            service: Some(ServiceScore {
                tickets: 2,
                open_complaints,
                satisfaction: Satisfaction {
                    average_csat: Some(2.0),
                    complaint_rate: Some(0.5),
                    index: Some(-1.0),
                    dissatisfied: true,
                },
                quadrant: None,
            }),
            scored_on: None,
        }
    }

    fn product(sku: &str, category: &str, price_cents: i64) -> Product {
        Product { sku: sku.into(), name: format!("{sku} name"), category: category.into(), price_cents, orders: 50 }
    }

    fn affinity(sku: &str, other: &str, lift: f64) -> Affinity {
        Affinity { sku: sku.into(), other_sku: other.into(), other_name: format!("{other} name"), orders: 20, lift }
    }

    #[test]
    fn actions_come_in_rank_order_with_reasons() {
        let bought = [Bought { sku: "tent".into(), category: "camping".into(), price_cents: 10_000 }];
        let affinities = [affinity("tent", "stove", 3.0), affinity("tent", "mat", 5.0), affinity("tent", "lamp", 1.5)];
        let catalogue = [
            product("tent", "camping", 10_000),
            product("tent-pro", "camping", 15_000),
            product("tent-xl", "camping", 20_000),
        ];
        let kinds = |actions: &[Action]| actions.iter().map(|a| a.kind).collect::<Vec<_>>();
        use ActionKind::*;
        let actions =
            next_best_actions(&scored(ValueTier::Top, Lifecycle::Decline, 1), &bought, &affinities, &catalogue);
        assert_eq!(kinds(&actions), [ServiceRecovery, WinBack, CrossSell, CrossSell, UpSell]);
        // The strongest lift first; the next pricier product of the category, not the priciest.
        assert_eq!(actions[2].product.as_ref().map(|p| p.0.as_str()), Some("mat"));
        assert!(actions[2].reason.contains("tent name") && actions[2].reason.contains("5.0×"), "{}", actions[2].reason);
        assert_eq!(actions[4].product.as_ref().map(|p| p.0.as_str()), Some("tent-pro"));
        assert!(actions[1].reason.contains("churn risk 60%"), "{}", actions[1].reason);

        // Low value: no recovery or win-back; lost: nothing to sell either.
        let tail = next_best_actions(&scored(ValueTier::Tail, Lifecycle::Decline, 1), &bought, &affinities, &catalogue);
        assert_eq!(kinds(&tail), [CrossSell, CrossSell, UpSell]);
        let lost = next_best_actions(&scored(ValueTier::Top, Lifecycle::Lost, 0), &bought, &affinities, &catalogue);
        assert!(lost.is_empty());
        // What they have is not offered again.
        let owned = [bought[0].clone(), Bought { sku: "mat".into(), category: "camping".into(), price_cents: 500 }];
        let again =
            next_best_actions(&scored(ValueTier::Core, Lifecycle::Formation, 0), &owned, &affinities, &catalogue);
        assert_eq!(again[0].product.as_ref().map(|p| p.0.as_str()), Some("stove"));
    }
}
