//! The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"): what a
//! customer will spend per purchase, from the mean `m` of their `x` repeat purchases,
//! shrunk toward the population's mean; and with BG/NBD, the customer's lifetime value.
//! Fitted on customers with repeat purchases only.

use statrs::function::gamma::{digamma, ln_gamma};

use super::bgnbd::{self, History};
use super::fit::{FitError, maximize};

/// Spend per transaction is gamma(p, ν) for each customer, ν gamma(q, v) across them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Params {
    pub(crate) p: f64,
    pub(crate) q: f64,
    pub(crate) v: f64,
}

/// A fitted spend model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub(crate) params: Params,
    pub(crate) log_likelihood: f64,
    /// Customers with repeat purchases it was fitted on.
    pub(crate) customers: u64,
    pub iterations: u64,
}

/// The log-likelihood of repeat spends `(x, m)` under `params`, with its gradient; with
/// many customers, on every core.
fn log_likelihood(spends: &[(f64, f64)], params: &Params) -> (f64, [f64; 3]) {
    const PARALLEL_FROM: usize = 50_000;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || spends.len() < PARALLEL_FROM {
        return terms(spends, params);
    }
    let plus =
        |(ll, g): (f64, [f64; 3]), (ll2, g2): (f64, [f64; 3])| (ll + ll2, [g[0] + g2[0], g[1] + g2[1], g[2] + g2[2]]);
    std::thread::scope(|scope| {
        let parts: Vec<_> = spends
            .chunks(spends.len().div_ceil(threads))
            .map(|part| scope.spawn(move || terms(part, params)))
            .collect();
        // A panicked part makes the cost infinite: the optimizer steps away from it.
        parts.into_iter().fold((0.0, [0.0; 3]), |acc, part| plus(acc, part.join().unwrap_or((f64::NAN, [0.0; 3]))))
    })
}

/// The log-likelihood terms of `spends`, summed, with their gradient.
fn terms(spends: &[(f64, f64)], params: &Params) -> (f64, [f64; 3]) {
    let Params { p, q, v } = *params;
    let (lg_q, dg_q, ln_v) = (ln_gamma(q), digamma(q), v.ln());
    let (mut ll, mut g) = (0.0, [0.0; 3]);
    for &(x, m) in spends {
        let px = p * x;
        let ln_xmv = (x * m + v).ln();
        ll += ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_v + (px - 1.0) * m.ln() + px * x.ln() - (px + q) * ln_xmv;
        let dg_pxq = digamma(px + q);
        g[0] += x * (dg_pxq - digamma(px) + m.ln() + x.ln() - ln_xmv);
        g[1] += dg_pxq - dg_q + ln_v - ln_xmv;
        g[2] += q / v - (px + q) / (x * m + v);
    }
    (ll, g)
}

/// Fits the model on customers' `(repeat purchases, mean repeat spend)`; customers
/// without repeat purchases (or spend) are left out, as the model requires.
pub fn fit(customers: impl IntoIterator<Item = (u32, f64)>) -> Result<Fit, FitError> {
    let spends: Vec<(f64, f64)> =
        customers.into_iter().filter(|&(x, m)| x > 0 && m > 0.0).map(|(x, m)| (f64::from(x), m)).collect();
    if spends.is_empty() {
        return Err(FitError::NoRepeatPurchases);
    }
    let at = |v: &[f64; 3]| Params { p: v[0], q: v[1], v: v[2] };
    let n = spends.len() as u64;
    let max = maximize(n, |v: &[f64; 3]| log_likelihood(&spends, &at(v)))?;
    Ok(Fit { params: at(&max.params), log_likelihood: max.log_likelihood, customers: n, iterations: max.iterations })
}

impl Params {
    /// The population's mean spend per transaction, `p·v / (q − 1)`.
    pub(crate) fn population_mean(&self) -> f64 {
        self.p * self.v / (self.q - 1.0)
    }

    /// Expected spend per transaction of a customer with `x` repeat purchases averaging
    /// `m`: the population mean and theirs, weighted by how much they have bought.
    pub(crate) fn expected_spend(&self, x: u32, m: f64) -> f64 {
        let w = self.p * f64::from(x) / (self.p * f64::from(x) + self.q - 1.0);
        (1.0 - w) * self.population_mean() + w * m
    }
}

/// Weeks per month in the lifetime value's monthly steps.
pub(crate) const WEEKS_PER_MONTH: f64 = 4.345;

/// Lifetime value over the next `months`: each month's expected purchases (BG/NBD) times
/// the expected spend, discounted at `monthly_discount_rate`.
pub(crate) fn lifetime_value(
    purchases: &bgnbd::Params,
    spend: &Params,
    history: &History,
    repeat_mean_spend: f64,
    months: u32,
    monthly_discount_rate: f64,
) -> f64 {
    let per_purchase = spend.expected_spend(history.x, repeat_mean_spend);
    let mut previous = 0.0;
    let mut value = 0.0;
    for k in 1..=months {
        let expected = purchases.expected_purchases(history, WEEKS_PER_MONTH * f64::from(k));
        value += per_purchase * (expected - previous) / (1.0 + monthly_discount_rate).powi(k as i32);
        previous = expected;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gradient_is_the_likelihoods() {
        let spends = [(1.0, 20.0), (3.0, 35.5), (7.0, 12.25)];
        let p = Params { p: 5.0, q: 3.0, v: 14.0 };
        let (_, g) = log_likelihood(&spends, &p);
        let h = 1e-6;
        for i in 0..3 {
            let shift = |d: f64| {
                let mut v = [p.p, p.q, p.v];
                v[i] += d;
                log_likelihood(&spends, &Params { p: v[0], q: v[1], v: v[2] }).0
            };
            let numeric = (shift(h) - shift(-h)) / (2.0 * h);
            assert!((numeric - g[i]).abs() < 1e-6 * numeric.abs().max(1.0), "{i}: {numeric} vs {}", g[i]);
        }
    }

    #[test]
    fn one_time_buyers_cannot_fit_it() {
        assert_eq!(fit([(0, 0.0), (0, 0.0)]), Err(FitError::NoRepeatPurchases));
    }
}
