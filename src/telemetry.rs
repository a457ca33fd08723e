//! Logs and traces: one subscriber for the process, logging as text or as JSON lines on
//! stderr (filtered by `C360_LOG`), and, when configured, exporting spans to an
//! OpenTelemetry collector over OTLP/HTTP (the `otel` feature). A request runs in a
//! `graphql` span (request id, operation, role, outcome, milliseconds); each loader batch
//! in a `loader` span and each statement in an `sql` span (database, engine; never its
//! arguments). Nothing personal is logged or exported: no emails, phones, names,
//! addresses, note texts or tokens.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, TelemetryConfig};

/// The filter when `C360_LOG` is not set.
const DEFAULT_FILTER: &str = "info,sqlx=warn,sqlx::query=error,tower_http=warn";

type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

/// What keeps the export running; dropping it sends the spans still buffered.
#[must_use = "the export stops when this is dropped"]
#[derive(Default)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the process's subscriber (once; later calls, as in tests, change nothing).
/// Fails when an OTLP endpoint is configured in a build without the `otel` feature, or
/// the exporter cannot be built.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_env("C360_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only on a terminal: a log file or collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr);
    let log: Boxed = match config.log_format {
        LogFormat::Text => log.with_filter(filter).boxed(),
        LogFormat::Json => log.json().with_current_span(true).with_span_list(false).with_filter(filter).boxed(),
    };
    let mut telemetry = Telemetry::default();
    let mut layers = vec![log];
    if let Some(endpoint) = &config.otlp_endpoint {
        layers.push(export(endpoint, &config.otlp_filter, &mut telemetry)?);
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(telemetry)
}

#[cfg(not(feature = "otel"))]
fn export(_endpoint: &str, _filter: &str, _telemetry: &mut Telemetry) -> anyhow::Result<Boxed> {
    anyhow::bail!(
        "telemetry.otlp_endpoint needs a build with the `otel` feature (cargo build --release --features otel)"
    )
}

#[cfg(feature = "otel")]
fn export(endpoint: &str, filter: &str, telemetry: &mut Telemetry) -> anyhow::Result<Boxed> {
    let filter = EnvFilter::try_new(filter).map_err(|e| anyhow::anyhow!("telemetry.otlp_filter: {e}"))?;
    let (layer, provider) = otlp_layer(endpoint)?;
    telemetry.provider = Some(provider);
    Ok(layer.with_filter(filter).boxed())
}

/// A layer that exports spans to the OTLP/HTTP traces `endpoint` (protobuf, batched on a
/// thread of its own), and the provider that flushes them.
#[cfg(feature = "otel")]
pub fn otlp_layer<S>(
    endpoint: &str,
) -> anyhow::Result<(impl Layer<S> + Send + Sync + use<S>, opentelemetry_sdk::trace::SdkTracerProvider)>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| anyhow::anyhow!("telemetry.otlp_endpoint: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("c360").build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("c360");
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "otel"))]
    #[test]
    fn an_otlp_endpoint_needs_the_otel_feature() {
        let config =
            TelemetryConfig { otlp_endpoint: Some("http://127.0.0.1:4318/v1/traces".into()), ..Default::default() };
        let error = init(&config).err().expect("refused").to_string();
        assert!(error.contains("--features otel"), "{error}");
    }

    #[cfg(feature = "otel")]
    #[test]
    fn an_otlp_filter_must_parse() {
        let config = TelemetryConfig {
            otlp_endpoint: Some("http://127.0.0.1:4318/v1/traces".into()),
            otlp_filter: "c360=[".into(),
            ..Default::default()
        };
        assert!(init(&config).is_err());
    }
}
