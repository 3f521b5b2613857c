//! What every mesh process does the same way: logging, signals, reflection
//! and health, and hosting product services on a listener.

use std::future::Future;
use std::io::IsTerminal;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tracing_subscriber::EnvFilter;

use crate::error::{DomainError, Result};
use crate::service::ProductService;

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

/// The connections `listener` accepts, with Nagle's algorithm off: a gRPC
/// answer is written as several small frames, and without `TCP_NODELAY`
/// each one after the first waits for the peer's delayed ACK (~40 ms).
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Reflection v1 (buf curl) and v1alpha (grpcurl) advertising `services`
/// and health, described from the contracts' descriptor set.
pub fn reflection_routes(services: &[&str]) -> Result<Routes> {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(mesh_contracts::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for service in services {
            builder = builder.with_service_name(*service);
        }
        builder
    };
    let v1 = builder().build_v1().map_err(|e| DomainError::Internal(format!("reflection v1: {e}")))?;
    let v1alpha =
        builder().build_v1alpha().map_err(|e| DomainError::Internal(format!("reflection v1alpha: {e}")))?;
    Ok(Routes::new(v1).add_service(v1alpha))
}

/// Serves `services` with health and reflection on `listener` until
/// `shutdown` completes; in-flight calls are drained first.
pub async fn serve_products(
    listener: TcpListener,
    services: Vec<ProductService>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let names: Vec<&str> = services.iter().map(ProductService::name).collect();
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in &names {
        health.set_service_status(*name, ServingStatus::Serving).await;
    }
    let mut routes = reflection_routes(&names)?.add_service(health_service);
    for service in services {
        let path = format!("/{}/{{*method}}", service.name());
        let router = std::mem::take(routes.axum_router_mut());
        *routes.axum_router_mut() = router.route_service(&path, service);
    }
    let addr = listener.local_addr()?;
    tracing::info!(%addr, products = ?names, "serving");
    Server::builder()
        .initial_stream_window_size(Some(4 * 1024 * 1024))
        .initial_connection_window_size(Some(8 * 1024 * 1024))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming(listener), async {
            shutdown.await;
            for name in &names {
                health.set_service_status(*name, ServingStatus::NotServing).await;
            }
        })
        .await
        .map_err(|e| DomainError::Internal(format!("serving failed: {e}")))
}

/// Serves `services` on `listener` and keeps them registered in the registry
/// at `registry` as `advertise`, until `shutdown` completes; then
/// deregisters and drains. Serving does not wait for the registry.
pub async fn run_domain(
    listener: TcpListener,
    services: Vec<ProductService>,
    registry: String,
    advertise: String,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let registrations =
        services.iter().map(|s| crate::registration::Registration { product: s.product() }).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let registration =
        tokio::spawn(crate::registration::keep_registered(registry, advertise, registrations, stopped));
    let served = serve_products(listener, services, async {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    let _ = registration.await;
    served
}

/// The services a server advertises through reflection v1 (for clients
/// that discover what an endpoint serves).
pub async fn reflected_services(channel: tonic::transport::Channel) -> Result<Vec<String>> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut client = ServerReflectionClient::new(channel);
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await?.into_inner();
    match responses.message().await?.and_then(|r| r.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => Err(DomainError::Internal(format!("unexpected reflection answer: {other:?}"))),
    }
}
