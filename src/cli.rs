//! The command line: `c360 [serve] | migrate | check | seed | resolve | fit |
//! import-transactions | schema | token`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::auth::token::TokenRequest;
use crate::auth::{self, Role};
use crate::config::{Config, Environment};
use crate::http::Application;
use crate::identity::{self, Resolver};
use crate::jobs::{self, Children, Job};
use crate::request::{Engine, Layer, Layers};
use crate::seed::{self, SeedOptions};
use crate::sources::{Migrate, SourceName, Sources, SqlTrace};

#[derive(Debug, Parser)]
#[command(name = "c360", version, about = "Customer 360 hub: one privacy-safe GraphQL view of each customer")]
pub struct Cli {
    /// Configuration file (TOML); `C360_*` environment variables override it.
    #[arg(long, global = true, env = "C360_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on (overrides config and `C360_LISTEN`).
    #[arg(long, global = true)]
    pub(crate) listen: Option<std::net::SocketAddr>,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Migrate, seed demo data if the sources are empty (embedded default), resolve
    /// identities, and serve GraphQL. The default command.
    Serve,
    /// Bring the hub store's schema up to date, and in development the sources' too; exit.
    Migrate {
        /// Also migrate the source databases in production (they are the company's; c360
        /// leaves them alone unless told to here).
        #[arg(long)]
        sources: bool,
    },
    /// Check that every configured source has the tables and columns c360 reads (the
    /// source contract, see README), and report what is missing or of the wrong type.
    Check,
    /// Write deterministic demo data into empty sources, then resolve identities.
    Seed {
        /// How many demo customers.
        #[arg(long, default_value_t = 10_000)]
        customers: u64,
        /// Random seed: the same seed and date give the same data.
        #[arg(long, default_value_t = 360)]
        seed: u64,
        /// The data set's "today" (YYYY-MM-DD); defaults to today.
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Skip identity resolution after seeding.
        #[arg(long)]
        no_resolve: bool,
    },
    /// Resolve new and changed source records into customers now.
    Resolve {
        /// Also measure precision and recall against the seeder's ground truth.
        #[arg(long)]
        evaluate: bool,
    },
    /// Fit the insight models (RFM, BG/NBD, Gamma-Gamma) on every customer's purchases
    /// and keep the scores in the hub store, where a running hub picks them up.
    Fit {
        /// The analysis date (YYYY-MM-DD): purchases up to and including it count;
        /// today by default.
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Score again only the customers whose orders, tickets or links changed since
        /// the current model's last refresh, against its parameters (a full fit when
        /// there is no model to update).
        #[arg(long)]
        changed: bool,
    },
    /// Load purchases from a file into the shop (one account per customer key, one order
    /// per row), then resolve identities. In a directory with no data, this makes the
    /// embedded deployment without demo data.
    ImportTransactions {
        #[arg(long, value_enum)]
        format: crate::insights::import::Format,
        /// ISO 4217 currency of the amounts.
        #[arg(long, default_value = "USD")]
        currency: String,
        file: PathBuf,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Serve without some layers of the request path, a comma-separated list of `audit`,
    /// `policy`, `limits`, `rates`, `metrics`, `gate`, `order`, `spans` and `inputs`: the
    /// baselines and the ladder of `bench/compare.py` (`policy,audit` is the hub
    /// unguarded). Refused in production; not in help.
    #[command(hide = true)]
    ServeWithout {
        #[arg(value_delimiter = ',', required = true)]
        layers: Vec<Layer>,
    },
    /// Run one of `serve`'s jobs and exit (`serve` runs them in child processes, so
    /// that their memory goes back to the system when they are done). Exits with 0 when
    /// done, 1 when failed, 3 when an update found no model, 4 when another replica holds
    /// the job's lease. Not in help.
    #[command(hide = true)]
    Job { job: Job },
    /// Mint a token signed with the development key (development only), e.g.
    /// `c360 token --role agent`.
    Token {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Space-separated scopes; the role's usual scopes when left out.
        #[arg(long)]
        scope: Option<String>,
        /// Partner id (required for, and only allowed with, role `partner`).
        #[arg(long)]
        partner: Option<String>,
        /// Limit a partner token to consents for this purpose.
        #[arg(long)]
        purpose: Option<String>,
        /// Token subject.
        #[arg(long, default_value = "developer")]
        subject: String,
        /// How long the token is valid, e.g. `30m`, `8h`; at most `auth.max_token_lifetime`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Print the global id of each key read from standard input (one a line) for objects
    /// of `kind` (`Customer`, `Order`, `Ticket`, `Campaign`), sealed with this
    /// configuration's ids key: for tools that start from golden ids or source keys (the
    /// benchmark). Not in help.
    #[command(hide = true)]
    Ids { kind: String },
    /// Revoke a token by its id, or every token of a subject or of a partner issued up to
    /// now; running hubs refuse them within seconds.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["token_id", "subject", "partner"])))]
    Revoke {
        /// The token's id (its `jti` claim).
        #[arg(long)]
        token_id: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        partner: Option<String>,
        /// Why, kept with the revocation.
        #[arg(long)]
        reason: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|_| "one of admin, agent, frontend, analyst, partner".to_owned())
}

/// Runs the command line on a new multi-threaded runtime, and returns when it is done.
///
/// The runtime's `block_on` and the whole future are instantiated here, in the library:
/// an `async fn main` in the binary made the binary compile every future again (two of
/// the ten minutes of a cold release build).
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))
}

/// Runs the command line.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Schema) = cli.command {
        print!("{}", crate::graphql::sdl());
        return Ok(ExitCode::SUCCESS);
    }
    let mut config = Config::load(cli.config.as_deref()).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    let _telemetry = crate::telemetry::init(&config.telemetry)?;
    if let Some(Command::Token { role, scope, partner, purpose, subject, ttl }) = cli.command {
        if (role == Role::Partner) != partner.is_some() {
            anyhow::bail!("--partner is required for role partner and only allowed with it");
        }
        if let Some(partner) = partner.as_ref().filter(|p| !config.partners.contains(p)) {
            anyhow::bail!("no partner `{partner}`: the hub knows {:?} (config `partners`)", config.partners);
        }
        let longest = config.auth.max_token_lifetime;
        if ttl > longest {
            anyhow::bail!(
                "--ttl {} is longer than auth.max_token_lifetime ({}): the hub would refuse the token",
                humantime::format_duration(ttl),
                humantime::format_duration(longest)
            );
        }
        let scope = scope.unwrap_or_else(|| role.default_scopes().to_owned());
        let request = TokenRequest { subject, role, scope, partner, purpose, ttl };
        println!("{}", auth::token::mint_development(&config, &request)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(Command::Ids { kind }) = &cli.command {
        let kind: crate::graphql::ids::Kind =
            kind.parse().map_err(|_| anyhow::anyhow!("no kind of object `{kind}`"))?;
        let ids = crate::graphql::ids::Ids::load(&config)?;
        for key in std::io::stdin().lines() {
            println!("{}", ids.global_id(kind, key?.trim()).as_str());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if config.uses_data_dir() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    }
    let production = config.environment == Environment::Production;
    let command = cli.command.unwrap_or(Command::Serve);
    // The sources are the company's systems: in production c360 only reads them (and
    // writes consents, notes and erasures), never migrates or seeds them unasked.
    let migrate = match command {
        Command::Seed { .. } | Command::ImportTransactions { .. } | Command::Job { job: Job::Seed } if production => {
            anyhow::bail!("`c360 seed` and `import-transactions` write into the sources; refused in production")
        }
        Command::ServeWithout { .. } if production => {
            anyhow::bail!("serving without a layer of the request path is refused in production")
        }
        // A job's server has migrated what it may.
        Command::Check | Command::Job { .. } => Migrate::Nothing,
        Command::Migrate { sources: true } => Migrate::All,
        _ if production => Migrate::Hub,
        _ => Migrate::All,
    };
    let sources = Sources::connect(&config, migrate).await.map_err(|e| anyhow::anyhow!("cannot start: {e}"))?;
    let resolver = Resolver::new(sources.clone(), config.identity.default_region.clone(), config.identity.batch_size)
        .with_lease(config.identity.lease);
    match command {
        Command::Serve | Command::ServeWithout { .. } => {
            let served = match command {
                Command::ServeWithout { layers } => Layers::of(&layers),
                _ => Layers::default(),
            };
            let children = Children { config_file: cli.config };
            serve(config, sources, resolver, children, served).await.map(|()| ExitCode::SUCCESS)
        }
        Command::Job { job } => {
            let outcome = jobs::run(&config, &sources, &resolver, job).await;
            sources.close().await;
            Ok(ExitCode::from(outcome.exit_code()))
        }
        Command::Migrate { .. } => {
            match migrate {
                Migrate::All => tracing::info!("the hub store and the sources are migrated"),
                _ => tracing::info!("the hub store is migrated (sources: `c360 migrate --sources`)"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => check(&sources).await.map(|()| ExitCode::SUCCESS),
        Command::Seed { customers, seed, as_of, no_resolve } => {
            let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let report = seed::seed(&sources, &SeedOptions { customers, seed, as_of, progress: true }).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !no_resolve {
                let started = std::time::Instant::now();
                let report = resolver.run().await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
                println!("resolved in {:.1}s", started.elapsed().as_secs_f64());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Resolve { evaluate } => {
            let report = resolver.run().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if evaluate {
                let quality = identity::quality::measure(sources.hub()).await?;
                println!("{}", serde_json::to_string_pretty(&quality)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Revoke { token_id, subject, partner, reason } => {
            use crate::revocations::RevocationKind;
            let (kind, value) = match (token_id, subject, partner) {
                (Some(jti), _, _) => (RevocationKind::Jti, jti),
                (_, Some(subject), _) => (RevocationKind::Subject, subject),
                (_, _, Some(partner)) => (RevocationKind::Partner, partner),
                _ => unreachable!("clap requires one"),
            };
            let trace = crate::sources::SqlTrace::default();
            let by = auth::Viewer { subject: "cli".to_owned(), ..auth::Viewer::with_role(Role::Admin, None) };
            let request_id = uuid::Uuid::now_v7().to_string();
            let at =
                crate::revocations::revoke(sources.hub(), &trace, kind, &value, &by, &request_id, reason.as_deref())
                    .await?;
            // Running replicas hear it at once over the bus (NATS, or a PostgreSQL hub
            // store); without one, within 3 s.
            let bus = crate::sources::bus::Bus::new(sources.hub().clone(), &config.bus)?;
            bus.publish(crate::sources::bus::Topic::Revocations).await;
            bus.flush().await;
            println!("revoked {kind} {value} at {at}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Fit { as_of, changed } => {
            let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            if changed {
                match crate::insights::refresh::update(&sources, as_of).await? {
                    Some(report) => {
                        println!("{}", serde_json::to_string_pretty(&report)?);
                        return Ok(ExitCode::SUCCESS);
                    }
                    None => eprintln!("no model to update: fitting in full"),
                }
            }
            let report = crate::insights::refresh::refresh(&sources, as_of).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::ImportTransactions { format, currency, file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let purchases = crate::insights::import::parse(format, &text)?;
            let report = crate::insights::import::import(&sources, &purchases, &currency).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            let report = resolver.run().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema | Command::Token { .. } | Command::Ids { .. } => unreachable!("handled above"),
    }
}

/// Prints, per source, what of the source contract is missing; fails when anything is.
async fn check(sources: &Sources) -> anyhow::Result<()> {
    let mut failed = 0;
    for source in SourceName::ALL {
        let contract = crate::sources::contract(source);
        let problems = crate::sources::contract::check(sources.source(source), contract)
            .await
            .with_context(|| format!("cannot read the {source} database's schema"))?;
        if problems.is_empty() {
            println!("{source}: ok ({} tables)", contract.len());
        }
        for problem in &problems {
            println!("{source}: {problem}");
        }
        failed += problems.len();
    }
    if failed > 0 {
        anyhow::bail!("{failed} problem(s) with the source contract (see README, \"Source contract\")");
    }
    Ok(())
}

/// Serves until a signal.
async fn serve(
    config: Config,
    sources: Sources,
    resolver: Resolver,
    children: Children,
    served: Layers,
) -> anyhow::Result<()> {
    let production = config.environment == Environment::Production;
    if production && config.seed.on_empty {
        tracing::warn!("seed.on_empty is ignored in production: c360 never writes demo data into the sources there");
    }
    // Empty: no CRM customers and no shop accounts (an import of transactions alone
    // is data too, and gets no demo people beside it).
    let empty = || async {
        let trace = SqlTrace::default();
        let crm = sources.crm().fetch_count(&trace, "select count(*) as n from customers", &[]).await?;
        let shop = sources.shop().fetch_count(&trace, "select count(*) as n from accounts", &[]).await?;
        Ok::<_, sqlx::Error>(crm == 0 && shop == 0)
    };
    if !production && config.seed.on_empty && empty().await? && children.run(Job::Seed).await != jobs::Outcome::Done {
        anyhow::bail!("cannot seed the demo data (see the log above)");
    }
    if children.run(Job::Resolve).await != jobs::Outcome::Done {
        anyhow::bail!("cannot resolve identities (see the log above)");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let interval = config.identity.resolve_interval;
    let job =
        (!interval.is_zero()).then(|| tokio::spawn(jobs::resolve_periodically(resolver, interval, stop_rx.clone())));
    let (every, changes_every) = (config.insights.refresh_interval, config.insights.update_interval);
    let fits = (!every.is_zero() || !changes_every.is_zero())
        .then(|| tokio::spawn(jobs::fit_periodically(sources.clone(), children, every, changes_every, stop_rx)));

    let app_uses_development_key = config.auth.development_key;
    if !served.is_empty() {
        tracing::warn!(without = ?served, "serving WITHOUT layers of the request path: for benchmarks only");
    }
    let hub = Engine::without(config.clone(), sources.clone(), served)?;
    let app = Application::build(config, hub).await?;
    if app_uses_development_key {
        tracing::warn!(
            "the development signing key is accepted (mint tokens with `c360 token`); turn it off in production"
        );
    }
    tracing::info!(address = %app.local_addr()?, replica = crate::sources::lease::holder(), "serving GraphQL at /graphql");
    app.run_until(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await?;
    for job in [job, fits].into_iter().flatten() {
        let _ = job.await;
    }
    sources.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The benchmark's baseline serves everything to everyone: never in production, where
    /// it is refused before any database is opened.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own large error
    fn serving_without_the_policy_is_refused_in_production() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("C360_ENVIRONMENT", "production");
            jail.set_env("C360_HUB", "postgres://nobody@127.0.0.1:1/none");
            let cli = Cli::parse_from(["c360", "serve-without", "policy,audit"]);
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            let error = runtime.block_on(run(cli)).expect_err("refused");
            assert!(error.to_string().contains("refused in production"), "{error}");
            Ok(())
        });
    }

    /// The hub refuses tokens valid longer than `auth.max_token_lifetime`: `c360 token`
    /// does not mint them.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own large error
    fn tokens_are_minted_within_the_longest_lifetime() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("C360_DATA_DIR", jail.directory().display().to_string());
            jail.set_env("C360_AUTH__MAX_TOKEN_LIFETIME", "8h");
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            let cli = Cli::parse_from(["c360", "token", "--role", "admin", "--ttl", "9h"]);
            let error = runtime.block_on(run(cli)).expect_err("refused");
            assert!(error.to_string().contains("auth.max_token_lifetime (8h)"), "{error}");
            let cli = Cli::parse_from(["c360", "token", "--role", "admin", "--ttl", "8h"]);
            assert!(runtime.block_on(run(cli)).is_ok());
            Ok(())
        });
    }
}
