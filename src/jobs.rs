//! The work `serve` does beside requests: seeding the demo data, the start-up identity
//! resolution, the insight fits (each in a child process), and the background resolution
//! of new records (in the server).
//!
//! A job that reads whole sources peaks at hundreds of megabytes (a full fit of a
//! million customers: about 450 MiB), and an allocator keeps much of what a finished
//! job freed. Run in a child process (this binary, `c360 job <name>`, with the server's
//! configuration and environment), that memory goes back to the system when the job
//! exits, and the server keeps only what requests need: after the demo's first start,
//! about 26 MiB instead of about 221 MiB. A child reaches the data as another replica
//! would: through the databases, under the same leases.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::identity::Resolver;
use crate::insights::refresh::{self, RefreshError};
use crate::insights::store;
use crate::seed::{self, SeedOptions};
use crate::sources::Sources;

/// A job run in a child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Job {
    /// Seed the demo data (the configuration's `seed.customers` and `seed.seed`, as of
    /// today).
    Seed,
    /// Resolve the records not resolved yet.
    Resolve,
    /// Fit the insight models on the purchases up to today.
    Fit,
    /// Score again the customers whose data changed since the current model's last refresh.
    Update,
}

impl Job {
    /// Its name on the command line (`c360 job <name>`) and in the logs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Job::Seed => "seed",
            Job::Resolve => "resolve",
            Job::Fit => "fit",
            Job::Update => "update",
        }
    }
}

/// How a job ended; the child's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// An update found no model to update (a full fit is due).
    NoModel,
    /// Another replica holds the job's lease.
    Running,
    /// The job failed (the child logged why).
    Failed,
}

impl Outcome {
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Failed => 1,
            Outcome::NoModel => 3,
            Outcome::Running => 4,
        }
    }

    fn from_exit_code(code: Option<i32>) -> Self {
        match code {
            Some(0) => Outcome::Done,
            Some(3) => Outcome::NoModel,
            Some(4) => Outcome::Running,
            _ => Outcome::Failed,
        }
    }
}

/// Runs `job` here and logs what it did, in a `job` span with the job's name and this
/// process's id (the child's side of [`Children::run`]).
pub(crate) async fn run(config: &Config, sources: &Sources, resolver: &Resolver, job: Job) -> Outcome {
    use tracing::Instrument as _;
    let span = tracing::info_span!("job", job = job.name(), pid = std::process::id());
    run_here(config, sources, resolver, job).instrument(span).await
}

async fn run_here(config: &Config, sources: &Sources, resolver: &Resolver, job: Job) -> Outcome {
    let today = chrono::Utc::now().date_naive();
    match job {
        Job::Seed => {
            tracing::info!(customers = config.seed.customers, "empty sources: seeding demo data (once)");
            let options =
                SeedOptions { customers: config.seed.customers, seed: config.seed.seed, as_of: today, progress: true };
            match seed::seed(sources, &options).await {
                Ok(report) => {
                    tracing::info!(seconds = report.seconds, people = report.people, "demo data seeded");
                    Outcome::Done
                }
                Err(e) => {
                    tracing::error!(error = %e, "seeding the demo data failed");
                    Outcome::Failed
                }
            }
        }
        Job::Resolve => match resolver.run().await {
            Ok(r) => {
                tracing::info!(
                    read = r.read,
                    new_customers = r.new_customers,
                    conflicts = r.conflicts,
                    "identities resolved"
                );
                Outcome::Done
            }
            Err(e) => {
                tracing::error!(error = %e, "resolving identities failed");
                Outcome::Failed
            }
        },
        Job::Fit => match refresh::refresh(sources, today).await {
            Ok(r) => {
                tracing::info!(
                    customers = r.customers,
                    read_ms = r.read_ms,
                    fit_ms = r.fit_ms,
                    write_ms = r.write_ms,
                    "insight models fitted"
                );
                Outcome::Done
            }
            Err(RefreshError::Running) => {
                tracing::info!("another replica is fitting the insight models");
                Outcome::Running
            }
            Err(e) => {
                tracing::error!(error = %e, "fitting the insight models failed; the previous model stays");
                Outcome::Failed
            }
        },
        Job::Update => match refresh::update(sources, today).await {
            Ok(Some(r)) => {
                tracing::info!(changed = r.changed, read_ms = r.read_ms, write_ms = r.write_ms, "insights updated");
                Outcome::Done
            }
            Ok(None) => Outcome::NoModel,
            Err(RefreshError::Running) => {
                tracing::debug!("another replica is updating the insights");
                Outcome::Running
            }
            Err(e) => {
                tracing::error!(error = %e, "updating the insights failed; the model stays as it was");
                Outcome::Failed
            }
        },
    }
}

/// Starts jobs as child processes of this binary with the server's configuration.
#[derive(Debug, Clone)]
pub(crate) struct Children {
    /// The `--config` the server was started with (the environment is inherited).
    pub(crate) config_file: Option<PathBuf>,
}

impl Children {
    /// Runs `job` in a child process and waits for it. The child's logs go where the
    /// server's go. If the server is killed, the child finishes its job.
    pub(crate) async fn run(&self, job: Job) -> Outcome {
        let name = job.name();
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                tracing::error!(error = %e, job = %name, "cannot find this program to run a job");
                return Outcome::Failed;
            }
        };
        let mut command = tokio::process::Command::new(exe);
        if let Some(file) = &self.config_file {
            command.arg("--config").arg(file);
        }
        command.args(["job", name]).stdin(std::process::Stdio::null());
        // Its own process group: a Ctrl-C in the terminal stops the server, which waits for
        // the job, rather than killing the job half done.
        #[cfg(unix)]
        command.process_group(0);
        match command.status().await {
            Ok(status) => Outcome::from_exit_code(status.code()),
            Err(e) => {
                tracing::error!(error = %e, job = %name, "cannot start a job");
                Outcome::Failed
            }
        }
    }
}

/// The insight refreshes of `serve`, each in a child process: a full fit on the
/// purchases up to today (UTC) on start when the current model is missing or older than
/// `every`, then every `every`; between them, every `changes_every`, an incremental
/// refresh ([`refresh::update`]). A zero interval turns that kind off. A failed refresh
/// is logged and leaves the current model in place. Returns when `stop` turns true (a
/// refresh under way finishes first).
pub(crate) async fn fit_periodically(
    sources: Sources,
    children: Children,
    every: Duration,
    changes_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let age = |model: &store::Model| (chrono::Utc::now() - model.fitted_at).to_std().unwrap_or_default();
    loop {
        let full_due = if every.is_zero() {
            Duration::MAX
        } else {
            match store::current_model(sources.hub(), &Default::default()).await {
                Ok(Some(model)) => every.saturating_sub(age(&model)),
                Ok(None) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the current insight model; fitting now");
                    Duration::ZERO
                }
            }
        };
        let full = changes_every.is_zero() || full_due <= changes_every;
        tokio::select! {
            _ = tokio::time::sleep(if full { full_due } else { changes_every }) => {}
            _ = stop.changed() => return,
        }
        if !full {
            match children.run(Job::Update).await {
                // No model to update: the full fit below, if full fits are on.
                Outcome::NoModel if !every.is_zero() => {}
                _ => continue,
            }
        }
        if matches!(children.run(Job::Fit).await, Outcome::Running | Outcome::Failed) {
            // Tried again after one interval, not at once (by then the other replica's
            // model is current, or its lease has expired).
            let retry = if changes_every.is_zero() { every } else { changes_every };
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// The background resolver: picks up new and changed records without a restart.
pub(crate) async fn resolve_periodically(resolver: Resolver, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match resolver.run().await {
            Ok(r) if r.read > 0 => {
                tracing::info!(read = r.read, linked = r.linked, merged = r.merged, "resolved new records")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "background resolution failed; retrying next round"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parent names the job as the child's command line parses it.
    #[test]
    fn jobs_are_named_as_the_command_line_parses_them() {
        use clap::ValueEnum as _;
        for job in Job::value_variants() {
            assert_eq!(Job::from_str(job.name(), false), Ok(*job));
        }
    }

    /// The parent reads the child's outcome from its exit status alone.
    #[test]
    fn outcomes_survive_the_exit_status() {
        for outcome in [Outcome::Done, Outcome::NoModel, Outcome::Running, Outcome::Failed] {
            assert_eq!(Outcome::from_exit_code(Some(i32::from(outcome.exit_code()))), outcome);
        }
        // Killed by a signal: no code.
        assert_eq!(Outcome::from_exit_code(None), Outcome::Failed);
        // anyhow's error exit (a configuration the child could not read).
        assert_eq!(Outcome::from_exit_code(Some(1)), Outcome::Failed);
    }
}
