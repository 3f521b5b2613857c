//! Rebuilding when the inputs change: insight follows the registry's
//! `mesh.data.loaded.v1` events on `Watch` and, once a burst of its inputs'
//! loads has been quiet for [`SETTLE`], rebuilds (after the rebuild running,
//! if any). A lost stream resumes after the last event it saw.

use std::time::Duration;

use mesh_contracts::catalog::WatchRequest;
use mesh_contracts::catalog::event_service_client::EventServiceClient;
use tokio::time::Instant;

use crate::Builder;
use crate::build::{CUSTOMER_PRODUCT, PAYMENT_PRODUCT};

/// How long the inputs' loads must be quiet before a rebuild: the two
/// sources often load one after the other.
const SETTLE: Duration = Duration::from_secs(2);
/// The longest a rebuild waits for the inputs to settle: inputs that load
/// more often than [`SETTLE`] still get rebuilt on.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long to wait before watching again after the stream was lost.
const RETRY: Duration = Duration::from_secs(2);
/// The event a new load writes.
const DATA_LOADED: &str = "mesh.data.loaded.v1";

/// Rebuilds on every settled burst of input loads, for ever.
pub(crate) async fn rebuild_on_input_loads(builder: Builder) {
    let channel = match mesh_grpc::client::stream_channel(
        &builder.sources.registry_url,
        Duration::from_secs(10),
        &builder.sources.credentials,
    ) {
        Ok(channel) => channel,
        Err(error) => return tracing::error!(%error, "cannot follow the inputs' loads"),
    };
    let mut events = EventServiceClient::new(channel);
    let mut after: Option<i64> = None;
    // When a rebuild is due, and when the first load it waits on came.
    let mut due: Option<(Instant, Instant)> = None;
    loop {
        let request = WatchRequest {
            after_sequence: after.unwrap_or(0),
            from_now: after.is_none(),
            types: vec![DATA_LOADED.to_owned()],
            ..Default::default()
        };
        let mut stream = match events.watch(request).await {
            Ok(stream) => stream.into_inner(),
            Err(status) => {
                tracing::debug!(reason = status.message(), "cannot watch the inputs' loads; trying again");
                if matches!(status.code(), tonic::Code::OutOfRange | tonic::Code::InvalidArgument) {
                    // Loads in the gap are not known: rebuild once to be sure.
                    after = None;
                    due = Some((Instant::now(), Instant::now()));
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(response)) => {
                        after = Some(response.resume_after);
                        let input = response.event.is_some_and(|e| [CUSTOMER_PRODUCT, PAYMENT_PRODUCT].contains(&e.subject.as_str()));
                        if input {
                            let first = due.map_or_else(Instant::now, |(_, first)| first);
                            due = Some(((Instant::now() + SETTLE).min(first + MAX_WAIT), first));
                        }
                    }
                    _ => break,
                },
                () = tokio::time::sleep_until(due.map_or_else(Instant::now, |(at, _)| at)), if due.is_some() => {
                    due = None;
                    match builder.rebuild_when_free().await {
                        Ok(_) => tracing::info!("rebuilt after the inputs loaded"),
                        Err(error) => tracing::warn!(%error, "rebuilding after the inputs loaded failed"),
                    }
                }
            }
        }
        // A rebuild still due happens once the next stream is up.
        tokio::time::sleep(RETRY).await;
    }
}
