//! How long the insight models take to fit on the CDNOW sample (2,357 customers).
//!
//! `cargo bench --bench insights` reads `tests/fixtures/cdnow/CDNOW_sample.txt`, and
//! times, as the median of 50 runs each: preparing the customers (same-day merge, the
//! calibration window to 1997-09-30), the BG/NBD fit on the grouped sufficient
//! statistics, and the Gamma-Gamma fit. `bash bench/lifetimes.sh` runs this and the
//! Python `lifetimes` package's fits on the same data in one run and prints the ratios
//! (the reference README's figure for lifetimes' BG/NBD fit is about 50 ms).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use c360::insights::bgnbd::Sufficient;
use c360::insights::{Summary, cdnow, gamma_gamma, summarize};
use chrono::NaiveDate;

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(std::hint::black_box(f()));
        times.push(start.elapsed());
    }
    (median(times), last.expect("one run"))
}

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cdnow/CDNOW_sample.txt");
    let text = std::fs::read_to_string(path).expect("the CDNOW sample");
    let as_of = NaiveDate::from_ymd_opt(1997, 9, 30).expect("date");
    let (prepare, summaries) = time(50, || {
        let mut by_customer: BTreeMap<String, Vec<(NaiveDate, i64)>> = BTreeMap::new();
        for p in cdnow::parse(&text).expect("CDNOW") {
            by_customer.entry(p.customer).or_default().push((p.day, p.cents));
        }
        by_customer.into_values().filter_map(|p| summarize(p, as_of)).collect::<Vec<Summary>>()
    });
    let (bgnbd, fit) = time(50, || Sufficient::new(summaries.iter().map(|s| s.history)).fit().expect("BG/NBD"));
    let (spend, spend_fit) = time(50, || {
        gamma_gamma::fit(summaries.iter().map(|s| (s.history.x, s.repeat_mean_spend))).expect("Gamma-Gamma")
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("CDNOW sample: {} customers", summaries.len());
    println!("prepare            {:8.3} ms", ms(prepare));
    println!("BG/NBD fit         {:8.3} ms  ({} iterations, {fit:?})", ms(bgnbd), fit.iterations);
    println!("Gamma-Gamma fit    {:8.3} ms  ({} iterations)", ms(spend), spend_fit.iterations);
    println!("BG/NBD: lifetimes' ~50 ms / c360's = {:.0}x", 50.0 / ms(bgnbd));
}
