//! Logging set-up and the shutdown signal of a mesh process.

use std::future::Future;

/// Logs to stderr with `RUST_LOG`, or `info` when unset (see
/// [`init_logging_at`]).
pub fn init_logging() {
    init_logging_at("info");
}

/// Logs to stderr with `RUST_LOG`, or `default` (e.g. `warn`) when unset,
/// exporting no traces (see [`crate::telemetry::init`] for those).
pub fn init_logging_at(default: &str) {
    let _ = crate::telemetry::init(default, "mesh", &crate::telemetry::TraceArgs::default());
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed
/// when this is called (not when first polled), so call it at start-up: a
/// signal that arrives while the service is still loading is not lost.
/// Needs a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::interrupt())
            .and_then(|interrupt| Ok((interrupt, signal(SignalKind::terminate())?)))
    };
    async move {
        #[cfg(unix)]
        match signals {
            Ok((mut interrupt, mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}
