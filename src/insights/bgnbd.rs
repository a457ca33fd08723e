//! BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"): how many
//! purchases a customer will make, and the probability that they are still a customer,
//! from their repeat purchases `x`, the time of their last purchase `t_x` and their age
//! `T` (all in weeks since their first purchase).
//!
//! The model is fitted by maximum likelihood ([`super::fit`]) on sufficient statistics:
//! customers grouped by `(x, t_x, T)`.

use std::collections::BTreeMap;

use statrs::function::gamma::{digamma, ln_gamma};

use super::fit::{FitError, maximize};

/// One customer's purchase history, as the model reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// Repeat purchases: days with a purchase, minus the first.
    pub x: u32,
    /// Weeks from the first purchase to the last.
    pub(crate) t_x: f64,
    /// Weeks from the first purchase to the end of the data window.
    pub(crate) age: f64,
}

/// The model's four parameters: purchase rates are gamma(r, α) across customers, the
/// probability of dropping out after a purchase is beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Params {
    pub(crate) r: f64,
    pub(crate) alpha: f64,
    pub(crate) a: f64,
    pub(crate) b: f64,
}

/// A fitted model: its parameters and the data's log-likelihood under them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub(crate) params: Params,
    pub(crate) log_likelihood: f64,
    /// Customers the model was fitted on.
    pub(crate) customers: u64,
    /// Iterations of the optimizer.
    pub iterations: u64,
}

/// Customers grouped by `(x, t_x, T)`: the likelihood's sufficient statistics.
#[derive(Debug, Default, Clone)]
pub struct Sufficient {
    /// By `x`: each distinct `(t_x, T)` with its number of customers.
    by_x: BTreeMap<u32, Vec<(f64, f64, f64)>>,
    customers: u64,
}

impl Sufficient {
    pub fn new(histories: impl IntoIterator<Item = History>) -> Self {
        let mut counts: BTreeMap<(u32, u64, u64), u64> = BTreeMap::new();
        let mut customers = 0;
        for h in histories {
            *counts.entry((h.x, h.t_x.to_bits(), h.age.to_bits())).or_default() += 1;
            customers += 1;
        }
        let mut by_x: BTreeMap<u32, Vec<(f64, f64, f64)>> = BTreeMap::new();
        for ((x, t_x, age), n) in counts {
            by_x.entry(x).or_default().push((f64::from_bits(t_x), f64::from_bits(age), n as f64));
        }
        Sufficient { by_x, customers }
    }

    /// Distinct `(x, t_x, T)` groups.
    pub(crate) fn groups(&self) -> usize {
        self.by_x.values().map(Vec::len).sum()
    }

    /// The log-likelihood of the data under `p`, and its gradient in (r, α, a, b). With
    /// many groups (a large shop), evaluated on every core.
    pub(crate) fn log_likelihood(&self, p: &Params) -> (f64, [f64; 4]) {
        const CHUNK: usize = 4_096;
        const PARALLEL_FROM: usize = 50_000;
        let work: Vec<Cells<'_>> =
            self.by_x.iter().flat_map(|(&x, cells)| cells.chunks(CHUNK).map(move |c| (x, c))).collect();
        let shared = Shared::new(p);
        let sum = |part: &[Cells<'_>]| {
            part.iter().fold((0.0, [0.0; 4]), |acc, (x, cells)| plus(acc, shared.cells(p, *x, cells)))
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads < 2 || self.groups() < PARALLEL_FROM {
            return sum(&work);
        }
        std::thread::scope(|scope| {
            let parts: Vec<_> =
                work.chunks(work.len().div_ceil(threads)).map(|part| scope.spawn(move || sum(part))).collect();
            // A panicked part makes the cost infinite: the optimizer steps away from it.
            parts.into_iter().fold((0.0, [0.0; 4]), |acc, part| plus(acc, part.join().unwrap_or((f64::NAN, [0.0; 4]))))
        })
    }

    /// The maximum-likelihood parameters.
    pub fn fit(&self) -> Result<Fit, FitError> {
        if self.customers > 0 && self.by_x.keys().all(|&x| x == 0) {
            return Err(FitError::NoRepeatPurchases);
        }
        let at = |v: &[f64; 4]| Params { r: v[0], alpha: v[1], a: v[2], b: v[3] };
        let max = maximize(self.customers, |v: &[f64; 4]| self.log_likelihood(&at(v)))?;
        Ok(Fit {
            params: at(&max.params),
            log_likelihood: max.log_likelihood,
            customers: self.customers,
            iterations: max.iterations,
        })
    }
}

/// Groups `(t_x, T, customers)` with the same `x`: a piece of the likelihood's work.
type Cells<'a> = (u32, &'a [(f64, f64, f64)]);

/// What the likelihood's terms share for one `p`.
struct Shared {
    ln_alpha: f64,
    lg_r: f64,
    dg_r: f64,
    lg_ab: f64,
    dg_ab: f64,
    lg_b: f64,
    dg_b: f64,
}

impl Shared {
    fn new(p: &Params) -> Self {
        let Params { r, alpha, a, b } = *p;
        Shared {
            ln_alpha: alpha.ln(),
            lg_r: ln_gamma(r),
            dg_r: digamma(r),
            lg_ab: ln_gamma(a + b),
            dg_ab: digamma(a + b),
            lg_b: ln_gamma(b),
            dg_b: digamma(b),
        }
    }

    /// The log-likelihood and gradient of the `(t_x, T, n)` groups `cells` with `x`
    /// repeat purchases.
    fn cells(&self, p: &Params, x: u32, cells: &[(f64, f64, f64)]) -> (f64, [f64; 4]) {
        let Params { r, alpha, a, b } = *p;
        let Shared { ln_alpha, lg_r, dg_r, lg_ab, dg_ab, lg_b, dg_b } = *self;
        let (mut ll, mut g) = (0.0, [0.0; 4]);
        let xf = f64::from(x);
        let s = r + xf;
        let a1 = ln_gamma(s) - lg_r + r * ln_alpha;
        let a2 = lg_ab + ln_gamma(b + xf) - lg_b - ln_gamma(a + b + xf);
        let (dg_s, dg_bx, dg_abx) = (digamma(s), digamma(b + xf), digamma(a + b + xf));
        let d_r1 = dg_s - dg_r + ln_alpha;
        let d_alpha1 = r / alpha;
        let d_a2 = dg_ab - dg_abx;
        let d_b2 = dg_ab + dg_bx - dg_b - dg_abx;
        let ln_ratio = if x > 0 { a.ln() - (b + xf - 1.0).ln() } else { 0.0 };
        for &(t_x, age, n) in cells {
            let l3 = (alpha + age).ln();
            let a3 = -s * l3;
            let (l, dr, dalpha, da, db) = if x == 0 {
                (a3, -l3, -s / (alpha + age), 0.0, 0.0)
            } else {
                let l4 = (alpha + t_x).ln();
                let a4 = ln_ratio - s * l4;
                // ln(e^a3 + e^a4) and the two terms' weights, with one exp and one ln.
                let (high, low) = if a3 >= a4 { (a3, a4) } else { (a4, a3) };
                let e = (low - high).exp();
                let l = high + e.ln_1p();
                let (w_high, w_low) = (1.0 / (1.0 + e), e / (1.0 + e));
                let (w3, w4) = if a3 >= a4 { (w_high, w_low) } else { (w_low, w_high) };
                (l, -w3 * l3 - w4 * l4, -w3 * s / (alpha + age) - w4 * s / (alpha + t_x), w4 / a, -w4 / (b + xf - 1.0))
            };
            ll += n * (a1 + a2 + l);
            g[0] += n * (d_r1 + dr);
            g[1] += n * (d_alpha1 + dalpha);
            g[2] += n * (d_a2 + da);
            g[3] += n * (d_b2 + db);
        }
        (ll, g)
    }
}

fn plus((ll, g): (f64, [f64; 4]), (ll2, g2): (f64, [f64; 4])) -> (f64, [f64; 4]) {
    (ll + ll2, std::array::from_fn(|i| g[i] + g2[i]))
}

impl Params {
    /// P(alive | x, t_x, T): the probability that the customer has not dropped out. 1 for
    /// customers who bought once (in the model, dropping out happens after a repeat
    /// purchase).
    pub(crate) fn probability_alive(&self, h: &History) -> f64 {
        if h.x == 0 {
            return 1.0;
        }
        let s = self.r + f64::from(h.x);
        let odds = self.a / (self.b + f64::from(h.x) - 1.0) * ((self.alpha + h.age) / (self.alpha + h.t_x)).powf(s);
        1.0 / (1.0 + odds)
    }

    /// Expected purchases in the next `weeks` (equation 10 of the paper).
    pub(crate) fn expected_purchases(&self, h: &History, weeks: f64) -> f64 {
        if weeks <= 0.0 {
            return 0.0;
        }
        let Params { r, alpha, a, b } = *self;
        let x = f64::from(h.x);
        let s = r + x;
        let horizon = alpha + h.age + weeks;
        let hyp = hyp2f1(s, b + x, a + b + x - 1.0, weeks / horizon);
        let head = (a + b + x - 1.0) / (a - 1.0) * (1.0 - ((alpha + h.age) / horizon).powf(s) * hyp);
        let tail = if h.x > 0 { a / (b + x - 1.0) * ((alpha + h.age) / (alpha + h.t_x)).powf(s) } else { 0.0 };
        head / (1.0 + tail)
    }
}

/// The Gaussian hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its power
/// series (the argument of the conditional expectation is `t / (α + T + t)`, below 1).
pub(crate) fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 0..1_000_000u32 {
        let n = f64::from(n);
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() <= sum.abs() * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypergeometric_known_values() {
        for z in [0.0_f64, 0.1, 0.5, 0.9, 0.99] {
            // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z
            let expected = if z == 0.0 { 1.0 } else { -(1.0 - z).ln() / z };
            assert!((hyp2f1(1.0, 1.0, 2.0, z) - expected).abs() <= 1e-12 * expected, "z = {z}");
            // ₂F₁(a, b; b; z) = (1 − z)^−a
            let expected = (1.0 - z).powf(-0.7);
            assert!((hyp2f1(0.7, 2.5, 2.5, z) - expected).abs() <= 1e-12 * expected, "z = {z}");
        }
        // ₂F₁(1/2, 1/2; 3/2; z²) = arcsin(z) / z
        let z: f64 = 0.8;
        assert!((hyp2f1(0.5, 0.5, 1.5, z * z) - z.asin() / z).abs() <= 1e-12);
    }

    #[test]
    fn the_gradient_is_the_likelihoods() {
        let data = Sufficient::new([
            History { x: 0, t_x: 0.0, age: 30.0 },
            History { x: 2, t_x: 10.0, age: 35.0 },
            History { x: 5, t_x: 30.0, age: 38.0 },
            History { x: 1, t_x: 2.0, age: 38.0 },
        ]);
        let p = Params { r: 0.3, alpha: 4.0, a: 0.8, b: 2.5 };
        let (_, g) = data.log_likelihood(&p);
        let h = 1e-6;
        for i in 0..4 {
            let shift = |d: f64| {
                let mut v = [p.r, p.alpha, p.a, p.b];
                v[i] += d;
                data.log_likelihood(&Params { r: v[0], alpha: v[1], a: v[2], b: v[3] }).0
            };
            let numeric = (shift(h) - shift(-h)) / (2.0 * h);
            assert!((numeric - g[i]).abs() < 1e-6 * numeric.abs().max(1.0), "{i}: {numeric} vs {}", g[i]);
        }
    }

    #[test]
    fn refuses_data_it_cannot_fit() {
        assert_eq!(Sufficient::new([]).fit(), Err(FitError::NoData));
        let once = [History { x: 0, t_x: 0.0, age: 10.0 }];
        assert_eq!(Sufficient::new(once).fit(), Err(FitError::NoRepeatPurchases));
    }
}
