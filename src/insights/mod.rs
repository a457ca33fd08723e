//! Customer insights: the numerics, apart from where the data comes from and where the
//! results are kept. [`summarize`] turns one customer's purchases into what the models
//! read; [`rfm`] scores recency, frequency and money against the population;
//! [`bgnbd`] fits and evaluates the BG/NBD purchase model, [`gamma_gamma`] the spend
//! model and, with BG/NBD, lifetime value; [`fit`] is their maximum likelihood;
//! [`stage`] places customers in the lifecycle and the value tiers; [`affinity`] finds
//! what sells together (co-purchase lift) and what sells for more.
//!
//! Around the numerics: [`refresh`] is the job that reads every customer's purchases,
//! fits, scores and keeps the result in the hub store ([`store`]), which requests read;
//! [`import`] loads purchase files into the shop.
//!
//! Checked against the CDNOW sample of the BG/NBD paper and its golden outputs
//! (`tests/fixtures/cdnow/`, whose README gives the exact definitions used here).

pub(crate) mod actions;
pub(crate) mod affinity;
pub mod bgnbd;
pub mod cdnow;
pub(crate) mod fit;
pub mod gamma_gamma;
pub mod import;
pub mod refresh;
pub(crate) mod rfm;
pub(crate) mod stage;
pub(crate) mod store;

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// Days per time unit of the purchase models: they count in weeks.
const DAYS_PER_WEEK: f64 = 7.0;

/// What the models read of one customer's purchases up to the analysis date.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub history: bgnbd::History,
    pub(crate) rfm: rfm::Figures,
    /// Mean spend on the repeat purchase days (all but the first), in currency units; 0
    /// for customers who bought once.
    pub repeat_mean_spend: f64,
}

/// Summarizes purchases `(day, amount in cents)` as of `as_of` (inclusive; later ones
/// are ignored). Purchases on the same day are one transaction. `None` without a
/// purchase in the window.
pub fn summarize(purchases: impl IntoIterator<Item = (NaiveDate, i64)>, as_of: NaiveDate) -> Option<Summary> {
    let mut days: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for (day, cents) in purchases.into_iter().filter(|(day, _)| *day <= as_of) {
        *days.entry(day).or_default() += cents;
    }
    let (&first, _) = days.first_key_value()?;
    let (&last, _) = days.last_key_value()?;
    let weeks = |from: NaiveDate, to: NaiveDate| (to - from).num_days() as f64 / DAYS_PER_WEEK;
    let x = u32::try_from(days.len() - 1).unwrap_or(u32::MAX);
    let total: i64 = days.values().sum();
    let repeat: i64 = days.values().skip(1).sum();
    Some(Summary {
        history: bgnbd::History { x, t_x: weeks(first, last), age: weeks(first, as_of) },
        rfm: rfm::Figures {
            recency_days: (as_of - last).num_days(),
            frequency: i64::from(x) + 1,
            monetary_cents: total,
        },
        repeat_mean_spend: if x == 0 { 0.0 } else { repeat as f64 / 100.0 / f64::from(x) },
    })
}

#[cfg(test)]
mod golden {
    //! The golden files of the CDNOW sample, as the reference README defines them.

    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use chrono::NaiveDate;

    use super::bgnbd::{Params, Sufficient};
    use super::*;

    fn fixture(name: &str) -> String {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", "cdnow", name].iter().collect();
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Sample id → summary as of 1997-09-30.
    fn summaries() -> BTreeMap<u32, Summary> {
        let mut purchases: BTreeMap<u32, Vec<(NaiveDate, i64)>> = BTreeMap::new();
        for p in super::cdnow::parse(&fixture("CDNOW_sample.txt")).expect("CDNOW") {
            purchases.entry(p.sample.expect("the sample layout")).or_default().push((p.day, p.cents));
        }
        let as_of = NaiveDate::from_ymd_opt(1997, 9, 30).expect("date");
        purchases.into_iter().map(|(id, p)| (id, summarize(p, as_of).expect("a purchase"))).collect()
    }

    /// The rows of a golden CSV, by its header's names.
    fn golden(name: &str) -> Vec<BTreeMap<String, String>> {
        let text = fixture(name);
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().expect("header").split(',').map(str::to_owned).collect();
        lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_owned)).collect()).collect()
    }

    fn num(row: &BTreeMap<String, String>, column: &str) -> f64 {
        row[column].parse().unwrap_or_else(|_| panic!("{column}: {}", row[column]))
    }

    const REFERENCE: Params =
        Params { r: 0.24259454342106726, alpha: 4.413602716077381, a: 0.7929218333479484, b: 2.4259057287220465 };

    #[test]
    fn preparation_and_rfm_match_the_golden_files() {
        let summaries = summaries();
        assert_eq!(summaries.len(), 2357);
        let btyd = golden("cdnow_sample_btyd.csv");
        for row in &btyd {
            let s = &summaries[&(num(row, "customer_id") as u32)];
            assert_eq!(f64::from(s.history.x), num(row, "frequency"), "{row:?}");
            assert!((s.history.t_x - num(row, "recency")).abs() <= 1e-12, "{row:?}");
            assert!((s.history.age - num(row, "T")).abs() <= 1e-12, "{row:?}");
            assert!((s.repeat_mean_spend - num(row, "monetary_value")).abs() <= 1e-9, "{row:?}");
        }

        let customers: Vec<(u32, rfm::Figures)> = summaries.iter().map(|(id, s)| (*id, s.rfm)).collect();
        let scores = rfm::score(&customers);
        let golden = golden("cdnow_sample_rfm.csv");
        assert_eq!(golden.len(), customers.len());
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (((id, figures), score), row) in customers.iter().zip(&scores).zip(&golden) {
            assert_eq!(f64::from(*id), num(row, "customer_id"));
            assert_eq!(figures.recency_days as f64, num(row, "recency_days"), "{row:?}");
            assert_eq!(figures.frequency as f64, num(row, "frequency_count"), "{row:?}");
            assert_eq!(figures.monetary_cents as f64, num(row, "monetary_total_cents"), "{row:?}");
            let found = (score.recency, score.frequency, score.monetary, score.code());
            let expected = (num(row, "r_score") as u8, num(row, "f_score") as u8, num(row, "m_score") as u8);
            assert_eq!(found, (expected.0, expected.1, expected.2, num(row, "rfm_code") as u16), "{row:?}");
            assert_eq!(score.segment().name(), row["rfm_segment"], "{row:?}");
            *counts.entry(score.segment().name()).or_default() += 1;
        }
        assert_eq!(counts["Champions"], 539);
        assert_eq!(counts["Lost"], 272);
    }

    #[test]
    fn formulas_with_the_reference_parameters_agree() {
        let summaries = summaries();
        for row in golden("cdnow_sample_btyd.csv") {
            let h = summaries[&(num(&row, "customer_id") as u32)].history;
            let p_alive = REFERENCE.probability_alive(&h);
            assert!((p_alive - num(&row, "p_alive")).abs() <= 1e-12, "{row:?}: {p_alive}");
            for (weeks, column) in
                [(12.0, "exp_purchases_12w"), (39.0, "exp_purchases_39w"), (52.0, "exp_purchases_52w")]
            {
                let expected = num(&row, column);
                let found = REFERENCE.expected_purchases(&h, weeks);
                assert!((found - expected).abs() <= 1e-9 * expected.abs(), "{column} {row:?}: {found}");
            }
        }
    }

    const SPEND: gamma_gamma::Params =
        gamma_gamma::Params { p: 6.249572277636094, q: 3.7442246747582546, v: 15.443521018361462 };

    #[test]
    fn spend_and_lifetime_value_with_the_reference_parameters_agree() {
        let summaries = summaries();
        assert!((SPEND.population_mean() - 35.17037133045399).abs() <= 1e-9);
        for row in golden("cdnow_sample_btyd.csv") {
            let s = summaries[&(num(&row, "customer_id") as u32)];
            let spend = SPEND.expected_spend(s.history.x, s.repeat_mean_spend);
            let expected = num(&row, "exp_avg_spend");
            assert!((spend - expected).abs() <= 1e-9 * expected, "{row:?}: {spend}");
            let clv = gamma_gamma::lifetime_value(&REFERENCE, &SPEND, &s.history, s.repeat_mean_spend, 12, 0.01);
            let expected = num(&row, "clv_12m");
            assert!((clv - expected).abs() <= 1e-9 * expected, "{row:?}: {clv}");
        }
    }

    #[test]
    fn the_fit_matches_the_reference() {
        let summaries = summaries();
        let data = Sufficient::new(summaries.values().map(|s| s.history));
        let fit = data.fit().expect("fit");
        let found = [fit.params.r, fit.params.alpha, fit.params.a, fit.params.b];
        let expected = [REFERENCE.r, REFERENCE.alpha, REFERENCE.a, REFERENCE.b];
        for (f, e) in found.iter().zip(expected) {
            assert!((f - e).abs() <= 1e-4 * e, "{fit:?}");
        }
        assert!(fit.log_likelihood >= -9582.429206673936 - 1e-6, "{fit:?}");
        for row in golden("cdnow_sample_btyd.csv") {
            let h = summaries[&(num(&row, "customer_id") as u32)].history;
            assert!((fit.params.probability_alive(&h) - num(&row, "p_alive")).abs() <= 1e-4, "{row:?}");
            let expected = num(&row, "exp_purchases_52w");
            assert!((fit.params.expected_purchases(&h, 52.0) - expected).abs() <= 1e-3 * expected, "{row:?}");
        }

        let spend = gamma_gamma::fit(summaries.values().map(|s| (s.history.x, s.repeat_mean_spend))).expect("fit");
        assert_eq!(spend.customers, 946);
        let found = [spend.params.p, spend.params.q, spend.params.v];
        for (f, e) in found.iter().zip([SPEND.p, SPEND.q, SPEND.v]) {
            assert!((f - e).abs() <= 1e-4 * e, "{spend:?}");
        }
        assert!(spend.log_likelihood >= -4055.917694801869 - 1e-6, "{spend:?}");
        for row in golden("cdnow_sample_btyd.csv") {
            let s = summaries[&(num(&row, "customer_id") as u32)];
            let clv =
                gamma_gamma::lifetime_value(&fit.params, &spend.params, &s.history, s.repeat_mean_spend, 12, 0.01);
            let expected = num(&row, "clv_12m");
            assert!((clv - expected).abs() <= 1e-3 * expected, "{row:?}: {clv}");
        }
    }
}
