//! What sells together and what sells for more: co-purchase lift over every order (the
//! cross-sell half of next best actions) and each product's selling price (the up-sell
//! half), counted from the order lines as they stream by.

use std::collections::{BTreeSet, HashMap};

/// A product as sold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Product {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) category: String,
    /// Mean unit price over its order lines, in cents.
    pub(crate) price_cents: i64,
    /// Orders holding it.
    pub(crate) orders: i64,
}

/// Two products bought together more often than chance.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Affinity {
    pub(crate) sku: String,
    pub(crate) other_sku: String,
    pub(crate) other_name: String,
    /// Orders holding both.
    pub(crate) orders: i64,
    /// `P(both) / (P(sku) · P(other))` over all orders: above 1, they go together.
    pub(crate) lift: f64,
}

/// A pair needs this many orders holding both to count: fewer is chance, and would name
/// what a handful of customers bought.
pub(crate) const MIN_PAIR_ORDERS: i64 = 10;
/// Affinities kept per product, strongest first.
pub(crate) const PER_PRODUCT: usize = 5;

/// Counts orders, products and pairs from order lines in order-id order.
#[derive(Debug, Default)]
pub(crate) struct Baskets {
    orders: i64,
    /// By sku: the sum of unit prices, order lines, orders.
    products: HashMap<String, (i64, i64, i64)>,
    pairs: HashMap<(String, String), i64>,
    current: Option<i64>,
    basket: BTreeSet<String>,
}

impl Baskets {
    /// One order line: its order, product and unit price (cents).
    pub(crate) fn add(&mut self, order: i64, sku: &str, unit_price_cents: i64) {
        if self.current != Some(order) {
            self.close();
            self.current = Some(order);
        }
        let entry = match self.products.get_mut(sku) {
            Some(entry) => entry,
            None => self.products.entry(sku.to_owned()).or_default(),
        };
        entry.0 += unit_price_cents;
        entry.1 += 1;
        if !self.basket.contains(sku) {
            self.basket.insert(sku.to_owned());
        }
    }

    fn close(&mut self) {
        if self.current.take().is_none() {
            return;
        }
        self.orders += 1;
        let basket: Vec<String> = std::mem::take(&mut self.basket).into_iter().collect();
        for (i, a) in basket.iter().enumerate() {
            if let Some(p) = self.products.get_mut(a) {
                p.2 += 1;
            }
            for b in &basket[i + 1..] {
                *self.pairs.entry((a.clone(), b.clone())).or_default() += 1;
            }
        }
    }

    /// The products sold (those of `catalogue`, sku → name and category), and for each
    /// the others bought with it with a lift above 1 in at least [`MIN_PAIR_ORDERS`]
    /// orders, [`PER_PRODUCT`] at most, strongest first.
    pub(crate) fn finish(mut self, catalogue: &HashMap<String, (String, String)>) -> (Vec<Product>, Vec<Affinity>) {
        self.close();
        self.products.retain(|sku, _| catalogue.contains_key(sku));
        let orders = self.orders.max(1) as f64;
        let products: Vec<Product> = self
            .products
            .iter()
            .map(|(sku, (price_sum, lines, orders))| Product {
                sku: sku.clone(),
                name: catalogue[sku].0.clone(),
                category: catalogue[sku].1.clone(),
                price_cents: price_sum / (*lines).max(1),
                orders: *orders,
            })
            .collect();
        let count = |sku: &str| self.products.get(sku).map_or(0, |p| p.2) as f64;
        let mut by_product: HashMap<&str, Vec<Affinity>> = HashMap::new();
        for ((a, b), &both) in &self.pairs {
            if both < MIN_PAIR_ORDERS || !catalogue.contains_key(a) || !catalogue.contains_key(b) {
                continue;
            }
            let lift = both as f64 * orders / (count(a) * count(b));
            if lift <= 1.0 {
                continue;
            }
            for (x, y) in [(a, b), (b, a)] {
                by_product.entry(x.as_str()).or_default().push(Affinity {
                    sku: x.clone(),
                    other_sku: y.clone(),
                    other_name: catalogue[y].0.clone(),
                    orders: both,
                    lift,
                });
            }
        }
        let mut affinities = Vec::new();
        for (_, mut list) in by_product {
            list.sort_by(|p, q| q.lift.total_cmp(&p.lift).then_with(|| p.other_sku.cmp(&q.other_sku)));
            affinities.extend(list.into_iter().take(PER_PRODUCT));
        }
        (products, affinities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lift_finds_what_sells_together() {
        let mut baskets = Baskets::default();
        let mut order = 0;
        let mut buy = |skus: &[&str], baskets: &mut Baskets| {
            order += 1;
            for sku in skus {
                baskets.add(order, sku, 1000);
            }
        };
        // Tent and stove go together in 20 of 100 orders; the lamp goes everywhere.
        for _ in 0..20 {
            buy(&["tent", "stove", "lamp"], &mut baskets);
        }
        for _ in 0..40 {
            buy(&["tent", "lamp"], &mut baskets);
        }
        for _ in 0..40 {
            buy(&["stove", "lamp"], &mut baskets);
        }
        let (products, affinities) = baskets.finish(&catalogue(&["tent", "stove", "lamp"]));
        assert_eq!(products.len(), 3);
        assert!(products.iter().all(|p| p.name == format!("{} name", p.sku)));
        assert!(products.iter().all(|p| p.price_cents == 1000));
        // P(tent) = P(stove) = 0.6, P(both) = 0.2: lift 0.56, not together. The lamp is
        // in every order: lift 1, no affinity either.
        assert!(affinities.is_empty(), "{affinities:?}");

        let mut baskets = Baskets::default();
        for order in 0..100 {
            let skus: &[&str] = if order < 15 {
                &["tent", "stove"]
            } else if order < 50 {
                &["lamp"]
            } else {
                &["mug"]
            };
            for sku in skus {
                baskets.add(order, sku, 500);
            }
        }
        let (_, affinities) = baskets.finish(&catalogue(&["tent", "stove", "lamp", "mug"]));
        // P(tent) = P(stove) = P(both) = 0.15: lift 1 / 0.15 = 6.67, both ways.
        assert_eq!(affinities.len(), 2);
        assert!(affinities.iter().all(|a| (a.lift - 100.0 / 15.0).abs() < 1e-9 && a.orders == 15));
    }

    #[test]
    fn rare_pairs_do_not_count() {
        let mut baskets = Baskets::default();
        for order in 0..100 {
            let skus: &[&str] = if order < 3 { &["a", "b"] } else { &["c"] };
            for sku in skus {
                baskets.add(order, sku, 100);
            }
        }
        assert!(baskets.finish(&catalogue(&["a", "b", "c"])).1.is_empty());
    }

    fn catalogue(skus: &[&str]) -> HashMap<String, (String, String)> {
        skus.iter().map(|s| (s.to_string(), (format!("{s} name"), "cat".to_owned()))).collect()
    }
}
