//! Logs and spans: one subscriber for the process, as text or as JSON lines on stderr,
//! filtered by `C360_LOG`. A request runs in a `graphql` span (request id, operation,
//! role, outcome, milliseconds); each loader batch in a `loader` span and each statement
//! in an `sql` span (database, engine; never its arguments). Nothing personal is logged:
//! no emails, phones, names, addresses, note texts or tokens.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};

/// The filter when `C360_LOG` is not set.
const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn";

/// Installs the process's subscriber (once; later calls, as in tests, change nothing).
pub fn init(config: &LoggingConfig) {
    let filter = || EnvFilter::try_from_env("C360_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}
