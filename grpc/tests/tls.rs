//! TLS on the one server builder and the client helpers, with certificates
//! made for this test by the certs module: a client trusting the server's CA connects,
//! one trusting another CA or speaking plaintext does not; with mutual TLS a
//! client needs a certificate from the client CA; plaintext is refused on an
//! address other than loopback unless the flag says otherwise. One test
//! function, since what a process's clients trust is set process-wide.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mesh_grpc::certs::{self, ServiceCert};
use mesh_grpc::{ClientTlsArgs, MeshServer, TlsArgs, set_client_tls};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A CA and, signed by it, certificates for `localhost` and `127.0.0.1`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path, name: &str) -> Pki {
    let hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let folder = dir.join(name);
    let files = certs::create(&folder, &[ServiceCert { name: name.to_owned(), hosts }]).unwrap();
    Pki { ca: folder.join("ca.pem"), cert: files[0].cert.clone(), key: files[0].key.clone() }
}

/// Serves health on `addr` as `tls` says; returns the bound address.
async fn serve(addr: &str, tls: TlsArgs) -> Result<std::net::SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let bound = listener.local_addr().unwrap();
    let server = MeshServer::new(&[], &[]).await.unwrap().tls(&tls);
    let serving = tokio::spawn(server.serve(listener, std::future::pending()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    if serving.is_finished() {
        return Err(serving.await.unwrap().unwrap_err().to_string());
    }
    Ok(bound)
}

async fn check(url: &str) -> Result<(), String> {
    check_as(url, &mesh_grpc::Credentials::none()).await
}

async fn check_as(url: &str, credentials: &mesh_grpc::Credentials) -> Result<(), String> {
    let channel =
        mesh_grpc::client::channel(url, Duration::from_secs(5), credentials).map_err(|e| e.to_string())?;
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map(|_| ())
        .map_err(|status| status.to_string())
}

fn trust(ca: &Path, client: Option<&Pki>) {
    set_client_tls(ClientTlsArgs {
        ca_file: Some(ca.to_owned()),
        client_cert: client.map(|c| c.cert.clone()),
        client_key: client.map(|c| c.key.clone()),
    });
}

#[tokio::test]
async fn tls_servers_and_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (server, other, client) =
        (pki(dir.path(), "server"), pki(dir.path(), "other"), pki(dir.path(), "client"));
    let tls = TlsArgs {
        tls_cert: Some(server.cert.clone()),
        tls_key: Some(server.key.clone()),
        ..TlsArgs::default()
    };

    // TLS: reached by name and by address with its CA; refused with another
    // CA or in plaintext.
    let addr = serve("127.0.0.1:0", tls.clone()).await.unwrap();
    trust(&server.ca, None);
    check(&format!("https://{addr}")).await.unwrap();
    check(&format!("https://localhost:{}", addr.port())).await.unwrap();
    assert!(check(&format!("http://{addr}")).await.is_err(), "plaintext to a TLS server");
    trust(&other.ca, None);
    assert!(check(&format!("https://{addr}")).await.is_err(), "a server whose CA is not trusted");

    // Mutual TLS: a client certificate from the client CA is required.
    let mutual = TlsArgs { tls_client_ca: Some(client.ca.clone()), ..tls.clone() };
    let addr = serve("127.0.0.1:0", mutual).await.unwrap();
    trust(&server.ca, None);
    assert!(check(&format!("https://{addr}")).await.is_err(), "no client certificate");
    trust(&server.ca, Some(&other));
    assert!(check(&format!("https://{addr}")).await.is_err(), "a certificate from another CA");
    trust(&server.ca, Some(&client));
    check(&format!("https://{addr}")).await.unwrap();

    // A missing file is named.
    let missing = TlsArgs { tls_cert: Some(dir.path().join("nope.pem")), ..tls.clone() };
    let error = serve("127.0.0.1:0", missing).await.unwrap_err();
    assert!(error.starts_with("TLS: cannot read the TLS certificate "), "{error}");

    // Plaintext: fine on loopback, refused elsewhere unless allowed.
    let addr = serve("127.0.0.1:0", TlsArgs::default()).await.unwrap();
    check(&format!("http://{addr}")).await.unwrap();
    let refused = serve("0.0.0.0:0", TlsArgs::default()).await.unwrap_err();
    assert!(
        refused.starts_with("refusing to serve plaintext on 0.0.0.0:")
            && refused.ends_with(
                ", which is not a loopback address: give --tls-cert and --tls-key (MESH_TLS_CERT, \
                 MESH_TLS_KEY), or --insecure-plaintext if a proxy in front terminates TLS"
            ),
        "{refused}"
    );
    serve("0.0.0.0:0", TlsArgs { insecure_plaintext: true, ..TlsArgs::default() }).await.unwrap();
    serve("0.0.0.0:0", tls).await.unwrap();

    // A token for one domain goes only to a server whose certificate names
    // that domain: another domain's endpoint, with a certificate from the
    // same CA valid for the same address, gets no connection.
    let folder = dir.path().join("domains");
    let hosts = |domain: &str| vec![domain.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = certs::create(
        &folder,
        &[
            ServiceCert { name: "payment".into(), hosts: hosts("payment") },
            ServiceCert { name: "customer".into(), hosts: hosts("customer") },
        ],
    )
    .unwrap();
    let serving = |i: usize| TlsArgs {
        tls_cert: Some(made[i].cert.clone()),
        tls_key: Some(made[i].key.clone()),
        ..TlsArgs::default()
    };
    let (payment, customer) =
        (serve("127.0.0.1:0", serving(0)).await.unwrap(), serve("127.0.0.1:0", serving(1)).await.unwrap());
    trust(&folder.join("ca.pem"), None);
    let for_payment = mesh_grpc::Credentials::token(&token_for("urn:woori-mesh:domain:payment")).unwrap();
    assert_eq!(for_payment.domain().as_deref(), Some("payment"));
    check_as(&format!("https://{payment}"), &for_payment).await.unwrap();
    check_as(&format!("https://localhost:{}", payment.port()), &for_payment).await.unwrap();
    let refused = check_as(&format!("https://{customer}"), &for_payment).await.unwrap_err();
    assert!(refused.contains("does not name domain `payment`"), "{refused}");
    // Without a domain's token, the usual check only.
    check(&format!("https://{customer}")).await.unwrap();
    let for_registry = mesh_grpc::Credentials::token(&token_for("woori-mesh")).unwrap();
    check_as(&format!("https://{customer}"), &for_registry).await.unwrap();
    // The certificate is still checked for the host, and against the CA.
    trust(&other.ca, None);
    assert!(check_as(&format!("https://{payment}"), &for_payment).await.is_err(), "an untrusted CA");
    // And with mutual TLS, the client's certificate is presented.
    let mutual = TlsArgs { tls_client_ca: Some(client.ca.clone()), ..serving(0) };
    let addr = serve("127.0.0.1:0", mutual).await.unwrap();
    trust(&folder.join("ca.pem"), None);
    assert!(check_as(&format!("https://{addr}"), &for_payment).await.is_err(), "no client certificate");
    trust(&folder.join("ca.pem"), Some(&client));
    check_as(&format!("https://{addr}"), &for_payment).await.unwrap();
}

/// A JWT (unsigned: these servers check no token) for `audience`.
fn token_for(audience: &str) -> String {
    use base64::Engine;
    let encode =
        |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = encode(serde_json::json!({"alg": "ES256", "kid": "k1"}));
    format!("{header}.{}.c2ln", encode(serde_json::json!({"sub": "kim", "aud": audience})))
}
