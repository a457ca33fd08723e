use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc: a request allocates and frees many small values (documents, loader maps,
/// JSON); the system allocator spent about a fifth of the CPU on them (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Thin: logging, the command line, and the library's runtime (which is built in the
/// library, so the binary compiles in seconds, not minutes).
fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("C360_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match c360::cli::main(c360::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
