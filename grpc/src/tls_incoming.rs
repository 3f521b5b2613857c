//! Accepting TLS connections for the one server builder: each TCP
//! connection's handshake runs in a task of its own, bounded in time and in
//! number, so a slow or silent client holds up no one else; connections
//! that complete it are handed to the server.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait to start theirs.
const MAX_HANDSHAKES: usize = 256;

/// The TLS connections completed over `incoming`.
pub(crate) fn accept(
    mut incoming: TcpIncoming,
    acceptor: TlsAcceptor,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (sender, receiver) = mpsc::channel(64);
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        while let Some(accepted) = incoming.next().await {
            let tcp = match accepted {
                Ok(tcp) => tcp,
                Err(error) => {
                    tracing::debug!(%error, "accepting a connection failed");
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else { return };
            let (acceptor, handed) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let peer = tcp.peer_addr().ok();
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = handed.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(?peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                }
            });
            if sender.is_closed() {
                return;
            }
        }
    });
    ReceiverStream::new(receiver)
}
