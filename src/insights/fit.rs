//! Maximum likelihood for the insight models: BFGS (argmin) over the parameters'
//! logarithms, so that every parameter stays positive, on the mean log-likelihood and its
//! analytic gradient; Nelder-Mead where BFGS gives up.

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::BFGS;

/// Why a fit did not give a model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    #[error("no customers to fit on")]
    NoData,
    #[error("no customer bought twice: the model cannot be fitted")]
    NoRepeatPurchases,
    #[error("the optimizer failed: {0}")]
    Optimizer(String),
}

/// Parameters at the maximum of a log-likelihood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Maximum<const N: usize> {
    pub(crate) params: [f64; N],
    pub(crate) log_likelihood: f64,
    pub(crate) iterations: u64,
}

/// Maximizes `log_likelihood` (the total over `n` customers, with its gradient in the
/// parameters) over positive parameters, starting from all ones.
///
/// BFGS first: fast and precise on well-posed data such as CDNOW. Where its line search
/// gives up (small or degenerate data, where the maximum may lie far out or on a flat
/// ridge), Nelder-Mead, which needs no gradient, finds the region, and BFGS is tried
/// again from there; if it still gives up, the simplex's best point is the answer.
pub(crate) fn maximize<const N: usize, F>(n: u64, log_likelihood: F) -> Result<Maximum<N>, FitError>
where
    F: Fn(&[f64; N]) -> (f64, [f64; N]),
{
    if n == 0 {
        return Err(FitError::NoData);
    }
    let objective =
        || Objective::<N, F> { log_likelihood: &log_likelihood, scale: 1.0 / n as f64, last: RefCell::new(None) };
    let (theta, iterations) = match bfgs(objective(), vec![0.0; N]) {
        Ok(found) => found,
        Err(first) => {
            let (start, simplex_iterations) = nelder_mead(objective(), N).map_err(|_| first)?;
            match bfgs(objective(), start.clone()) {
                Ok((theta, iterations)) => (theta, simplex_iterations + iterations),
                Err(_) => (start, simplex_iterations),
            }
        }
    };
    let params: [f64; N] = std::array::from_fn(|i| theta[i].exp());
    let (log_likelihood, _) = log_likelihood(&params);
    if !log_likelihood.is_finite() || params.iter().any(|p| !p.is_finite()) {
        return Err(FitError::Optimizer("the likelihood is not finite".into()));
    }
    Ok(Maximum { params, log_likelihood, iterations })
}

fn failed(e: argmin::core::Error) -> FitError {
    FitError::Optimizer(e.to_string())
}

/// BFGS from `start`: the best point and the iterations it took.
fn bfgs<const N: usize, F>(problem: Objective<'_, N, F>, start: Vec<f64>) -> Result<(Vec<f64>, u64), FitError>
where
    F: Fn(&[f64; N]) -> (f64, [f64; N]),
{
    let identity: Vec<Vec<f64>> = (0..N).map(|i| (0..N).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    let solver = BFGS::new(MoreThuenteLineSearch::new()).with_tolerance_grad(1e-10).map_err(failed)?;
    let result = Executor::new(problem, solver)
        .configure(|state| state.param(start).inv_hessian(identity).max_iters(500))
        .run()
        .map_err(failed)?;
    let state = result.state();
    let theta = state.get_best_param().ok_or_else(|| FitError::Optimizer("no parameters".into()))?;
    Ok((theta.clone(), state.get_iter()))
}

/// Nelder-Mead from a unit simplex around all ones (the logarithms' zero).
fn nelder_mead<const N: usize, F>(problem: Objective<'_, N, F>, n: usize) -> Result<(Vec<f64>, u64), FitError>
where
    F: Fn(&[f64; N]) -> (f64, [f64; N]),
{
    let mut simplex = vec![vec![0.0; n]];
    simplex.extend((0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()));
    let solver = NelderMead::new(simplex).with_sd_tolerance(1e-12).map_err(failed)?;
    let result = Executor::new(problem, solver).configure(|state| state.max_iters(5_000)).run().map_err(failed)?;
    let state = result.state();
    let theta = state.get_best_param().ok_or_else(|| FitError::Optimizer("no parameters".into()))?;
    Ok((theta.clone(), state.get_iter()))
}

/// A point (the parameters' logarithms) with its cost and gradient.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The mean negative log-likelihood over the parameters' logarithms.
struct Objective<'a, const N: usize, F> {
    log_likelihood: &'a F,
    scale: f64,
    /// The last point evaluated, with its cost and gradient: the line search asks for both
    /// at each point, and one pass computes both.
    last: RefCell<Option<Evaluated>>,
}

impl<const N: usize, F: Fn(&[f64; N]) -> (f64, [f64; N])> Objective<'_, N, F> {
    /// The cost and gradient at `theta` (the parameters' logarithms).
    fn at(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        if let Some((at, cost, gradient)) = &*self.last.borrow()
            && at == theta
        {
            return (*cost, gradient.clone());
        }
        let p: [f64; N] = std::array::from_fn(|i| theta[i].exp());
        let (ll, g) = (self.log_likelihood)(&p);
        let cost = if ll.is_finite() { -ll * self.scale } else { f64::INFINITY };
        let gradient: Vec<f64> = (0..N).map(|i| -g[i] * p[i] * self.scale).collect();
        *self.last.borrow_mut() = Some((theta.to_vec(), cost, gradient.clone()));
        (cost, gradient)
    }
}

impl<const N: usize, F: Fn(&[f64; N]) -> (f64, [f64; N])> CostFunction for Objective<'_, N, F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self.at(theta).0)
    }
}

impl<const N: usize, F: Fn(&[f64; N]) -> (f64, [f64; N])> Gradient for Objective<'_, N, F> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.at(theta).1)
    }
}
