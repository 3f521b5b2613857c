//! Logging set-up and the shutdown signal of a mesh process.

use std::future::Future;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Logs to stderr with `RUST_LOG` (default `info`), colour only on a terminal.
pub fn init_logging() {
    init_logging_at("info");
}

/// Logs to stderr with `RUST_LOG`, or `default` (e.g. `warn`) when unset.
pub fn init_logging_at(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A closed log pipe must not take the service down: the subscriber's
        // own error report would panic writing to that same stderr.
        .log_internal_errors(false)
        .try_init();
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
