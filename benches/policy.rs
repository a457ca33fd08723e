//! What the privacy policy and the audit log cost on the customer-360 query.
//!
//! `cargo bench --bench policy` seeds SQLite sources in a temp dir, then runs the same
//! customer-360 page (20 customers with orders, tickets, campaign responses and both
//! summaries) through three hubs built over the same databases, interleaved round by
//! round so that machine noise hits them alike:
//! - baseline: no policy guard, no audit (the schema alone);
//! - admin: the shipped policy (every field passes the guard) and every email and phone
//!   shown, so every response writes audit entries;
//! - frontend: the shipped policy masking contact data (nothing audited). Frontends do not
//!   see campaign responses, so this pair runs the query without them, against a
//!   baseline of its own.
//!
//! Prints the median time per request of each, and each as a ratio to its baseline.

use std::time::{Duration, Instant};

use c360::auth::{Role, Viewer};
use c360::config::Config;
use c360::identity::Resolver;
use c360::request::Engine;
use c360::seed::{SeedOptions, seed};
use c360::sources::Sources;

const QUERY: &str = r#"
query Page($first: Int!) { customers(first: $first) { edges { node {
    id displayName email phone
    purchaseSummary { orderCount totalSpent { amount currency } lastOrderAt }
    orders(first: 5) { edges { node { number orderedAt status total { amount currency }
                                      lines { sku productName quantity unitPrice { amount currency } } } } }
    tickets(first: 5) { edges { node { openedAt category status csat } } }
    serviceSummary { openTickets complaintCount averageCsat }
    campaignResponses(first: 5) { edges { node { campaign { name channel } sentAt openedAt clickedAt convertedAt } } }
} } } }"#;

/// The page a frontend may ask for: the same, without campaign responses.
fn frontend_query() -> String {
    let start = QUERY.find("    campaignResponses").unwrap_or(QUERY.len());
    let end = QUERY[start..].find('\n').map_or(QUERY.len(), |i| start + i + 1);
    format!("{}{}", &QUERY[..start], &QUERY[end..])
}

const ROUNDS: usize = 15;
const PER_ROUND: usize = 20;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    let sources = Sources::connect(&config, c360::sources::Migrate::All).await?;
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
    seed(&sources, &SeedOptions { customers: 2_000, seed: 7, as_of, progress: false }).await?;
    Resolver::new(sources.clone(), config.identity.default_region.clone(), 5_000).run().await?;

    let guarded = Engine::new(config.clone(), sources.clone())?;
    let baseline = Engine::unguarded(config.clone(), sources.clone()).expect("ids key");
    let admin = Viewer::with_role(Role::Admin, None);
    let frontend = Viewer::with_role(Role::Frontend, None);
    let narrow = frontend_query();
    // (name, hub, viewer, query, index of its baseline)
    let variants: [(&str, &Engine, &Viewer, &str, usize); 4] = [
        ("baseline (no policy, no audit)", &baseline, &admin, QUERY, 0),
        ("admin (policy + audit)", &guarded, &admin, QUERY, 0),
        ("baseline, frontend's query", &baseline, &admin, &narrow, 2),
        ("frontend (policy, masked)", &guarded, &frontend, &narrow, 2),
    ];

    // Warm up caches and pools, and check each variant answers without errors.
    for (name, hub, viewer, query, _) in variants {
        let response = once(hub, viewer, query).await;
        anyhow::ensure!(response.errors.is_empty(), "{name}: {:?}", response.errors);
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for _ in 0..ROUNDS {
        for (i, (_, hub, viewer, query, _)) in variants.iter().enumerate() {
            for _ in 0..PER_ROUND {
                let started = Instant::now();
                once(hub, viewer, query).await;
                samples[i].push(started.elapsed());
            }
        }
    }
    let medians: Vec<Duration> = samples.iter_mut().map(|s| median(s)).collect();
    println!("customer-360 page of 20, {} requests per variant, SQLite, 2,000 customers", ROUNDS * PER_ROUND);
    for ((name, _, _, _, base), m) in variants.iter().zip(&medians) {
        let ratio = m.as_secs_f64() / medians[*base].as_secs_f64();
        println!("{name:32} median {:>8.2} ms   ratio {ratio:.3}", m.as_secs_f64() * 1e3);
    }
    guarded.close().await;
    Ok(())
}

async fn once(hub: &Engine, viewer: &Viewer, query: &str) -> async_graphql::Response {
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(serde_json::json!({ "first": 20 })));
    hub.execute(viewer.clone(), request).await.0
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
