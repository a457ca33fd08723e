use clap::Parser;

/// mimalloc: a request allocates and frees many small values (documents, loader maps,
/// JSON); the system allocator spent about a fifth of the CPU on them (see BENCHMARKS.md).
/// The `system-allocator` feature leaves it out, for heap profiles (`heaptrack` sees only
/// the system allocator's calls).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Thin: the command line and the library's runtime (which is built in the library, so
/// the binary compiles in seconds, not minutes). Logging starts once the configuration
/// says how ([`c360::telemetry`]).
fn main() -> std::process::ExitCode {
    match c360::cli::main(c360::cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            // Before the configuration was read there is no subscriber yet.
            let _ = c360::telemetry::init(&Default::default());
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
