//! Logs and traces of every mesh process: log lines to stderr (`RUST_LOG`),
//! and, when `--otlp-endpoint` names a collector, OpenTelemetry spans made
//! from the same `tracing` spans and exported over OTLP/gRPC in batches.
//! Off by default: without an endpoint no OpenTelemetry layer is installed
//! and a span costs what a log span costs.
//!
//! W3C trace context: each call a server answers runs in a `call` span whose
//! parent is the `traceparent` the caller sent (gRPC metadata or an HTTP
//! header), with the trace id as a field, so every log line of the call
//! carries it; calls a [`crate::MeshChannel`] makes carry the current
//! span's `traceparent` on (see [`inject`]).

use std::task::{Context, Poll};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::error::{GrpcError, Result};
use crate::unary::BoxFuture;

/// The longest request path a span names (what follows is cut).
const MAX_SPAN_PATH: usize = 128;

/// Where traces go.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Tracing")]
pub struct TraceArgs {
    /// Export OpenTelemetry traces over OTLP/gRPC to this collector, e.g.
    /// `http://127.0.0.1:4317` (off by default; calls then carry W3C
    /// `traceparent` on to the services they make).
    #[arg(long, global = true, env = "MESH_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// What keeps traces flowing until the process ends: dropping it (or
/// [`Telemetry::shutdown`]) sends the spans still waiting.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// The exporter's own runtime: the batch processor exports from a
    /// thread of its own, and the gRPC channel needs a reactor to run on.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Telemetry {
    /// Sends the spans still waiting and stops exporting.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: the last spans were not all exported: {error}");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Logs to stderr with `RUST_LOG`, or `default` (e.g. `warn`) when unset;
/// with `args.otlp_endpoint`, exports spans as `service` too. Only the first
/// call in a process installs anything.
pub fn init(default: &str, service: &str, args: &TraceArgs) -> Result<Telemetry> {
    use std::io::IsTerminal;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A closed log pipe must not take the service down: the subscriber's
        // own error report would panic writing to that same stderr.
        .log_internal_errors(false)
        .with_filter(filter);
    let mut telemetry = Telemetry::default();
    let spans = match &args.otlp_endpoint {
        Some(endpoint) => {
            let (provider, runtime) = exporter(endpoint, service)?;
            let tracer = provider.tracer("mesh");
            telemetry = Telemetry { provider: Some(provider), runtime: Some(runtime) };
            // The mesh's own spans, whatever RUST_LOG keeps in the log.
            let ours = Targets::new().with_default(tracing::Level::INFO);
            Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(ours))
        }
        None => None,
    };
    let _ = Registry::default().with(fmt).with(spans).try_init();
    Ok(telemetry)
}

/// A batch exporter of spans to `endpoint`, on a runtime of its own.
fn exporter(endpoint: &str, service: &str) -> Result<(SdkTracerProvider, tokio::runtime::Runtime)> {
    let bad = |e: &dyn std::fmt::Display| GrpcError::Config(format!("--otlp-endpoint `{endpoint}`: {e}"));
    let uri: http::Uri = endpoint.parse().map_err(|e: http::uri::InvalidUri| bad(&e))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(bad(
            &"write the collector's OTLP/gRPC address as http://HOST:PORT (e.g. http://127.0.0.1:4317)",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-export")
        .enable_all()
        .build()
        .map_err(|e| bad(&e))?;
    let built = {
        let _entered = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()
    };
    let exporter = match built {
        Ok(exporter) => exporter,
        Err(error) => {
            // Dropped here it would block inside the caller's runtime.
            runtime.shutdown_background();
            return Err(bad(&error));
        }
    };
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service.to_owned()).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    Ok((provider, runtime))
}

/// Reads `traceparent` from HTTP headers.
struct HeaderReader<'a>(&'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes `traceparent` into HTTP headers.
struct HeaderWriter<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(key.as_bytes()), value.parse()) {
            self.0.insert(name, value);
        }
    }
}

/// Puts the current span's trace context on an outgoing call's headers
/// (nothing when no span is being exported).
pub fn inject(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderWriter(headers));
    }
}

/// The layer running each call in a `call` span, child of the caller's
/// `traceparent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceCalls;

impl<S> tower::Layer<S> for TraceCalls {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Traced { inner }
    }
}

/// A service behind [`TraceCalls`].
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for Traced<S>
where
    S: tower::Service<http::Request<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let parent = TraceContextPropagator::new().extract(&HeaderReader(request.headers()));
        let path = request.uri().path();
        let path = &path[..path.floor_char_boundary(MAX_SPAN_PATH)];
        let span = tracing::info_span!("call", path, trace_id = tracing::field::Empty);
        let _ = span.set_parent(parent.clone());
        // The exported span's trace, else the caller's (not exporting).
        let own = span.context().span().span_context().trace_id();
        let sent = parent.span().span_context().trace_id();
        let trace = if own != opentelemetry::trace::TraceId::INVALID { own } else { sent };
        if trace != opentelemetry::trace::TraceId::INVALID {
            span.record("trace_id", tracing::field::display(trace));
        }
        Box::pin(self.inner.call(request).instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_that_is_no_plain_grpc_address_is_refused_with_what_to_write() {
        for endpoint in ["ftp://127.0.0.1:4317", "127.0.0.1:4317", "https://collector:4317", "http://"] {
            let args = TraceArgs { otlp_endpoint: Some(endpoint.to_owned()) };
            let error = init("warn", "test", &args).unwrap_err().to_string();
            assert!(error.starts_with(&format!("--otlp-endpoint `{endpoint}`: ")), "{error}");
        }
        let args = TraceArgs { otlp_endpoint: Some("ftp://127.0.0.1:4317".to_owned()) };
        assert_eq!(
            init("warn", "test", &args).unwrap_err().to_string(),
            "--otlp-endpoint `ftp://127.0.0.1:4317`: write the collector's OTLP/gRPC address as http://HOST:PORT \
             (e.g. http://127.0.0.1:4317)"
        );
    }
}
