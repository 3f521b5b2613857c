//! Starting the in-process mesh: refused with advice when a port is taken.

use std::time::Duration;

use mesh_local::{LocalMesh, MeshConfig, Ports};

#[tokio::test]
async fn a_taken_port_is_refused_with_advice() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = MeshConfig {
        ports: Ports::Base(port),
        ready_timeout: Duration::from_secs(5),
        ..MeshConfig::new(dir.path())
    };
    let error = LocalMesh::start(config).await.unwrap_err().to_string();
    assert!(error.starts_with(&format!("cannot listen on 127.0.0.1:{port}: ")), "{error}");
    assert!(error.ends_with("; is another mesh running? (--base-port picks other ports)"), "{error}");
}
