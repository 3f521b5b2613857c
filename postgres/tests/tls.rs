//! TLS to PostgreSQL: a throwaway server serving a certificate of a CA made
//! for the test is reached with `sslmode=require` and that CA (the
//! connection is encrypted, as the server itself reports), and refused with
//! another CA.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mesh_grpc::certs::{self, ServiceCert};
use mesh_postgres::testing::TestServer;
use mesh_postgres::{Database, DatabaseArgs};

/// Certificates for 127.0.0.1 in `dir`, readable by the server: under root
/// the server runs as `postgres`, which must own its key.
fn server_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let made =
        certs::create(dir, &[ServiceCert { name: "db".into(), hosts: vec!["127.0.0.1".into()] }]).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (cert, key) = (made[0].cert.clone(), made[0].key.clone());
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    if running_as_root() {
        let owner = std::process::Command::new("id").args(["-u", "postgres"]).output().unwrap();
        let uid: u32 = String::from_utf8_lossy(&owner.stdout).trim().parse().unwrap();
        std::os::unix::fs::chown(&key, Some(uid), None).unwrap();
    }
    (dir.join("ca.pem"), cert, key)
}

fn running_as_root() -> bool {
    let output = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

#[test]
fn a_server_is_reached_with_tls_by_its_ca_and_refused_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = server_certificates(&dir.path().join("server"));
    let server = TestServer::start_with(&format!(
        "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        cert.display(),
        key.display()
    ));
    let url = format!("{}?sslmode=require", server.url());

    let args = DatabaseArgs { database_ca: Some(ca), ..DatabaseArgs::for_url(&url) };
    let db = Database::connect(&args, "tls_check", &[]).unwrap();
    let encrypted: bool = db.run(|pool| async move {
        let client = pool.get().await.unwrap();
        client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert!(encrypted, "the connection is encrypted");

    let other = certs::create(&dir.path().join("other"), &[]).unwrap();
    assert!(other.is_empty());
    let args =
        DatabaseArgs { database_ca: Some(dir.path().join("other/ca.pem")), ..DatabaseArgs::for_url(&url) };
    let refused = Database::connect(&args, "tls_check", &[]).unwrap_err().to_string();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
}
