//! Token exchange (RFC 8693, RFC 8707) at the registry of a real mesh: the
//! sign-in token traded for a five-minute token for one domain, which that
//! domain accepts and the registry and the other domains refuse; every bad
//! request refused with its OAuth error; `mesh token print --for`.

use crate::common;

use base64::Engine;
use common::Mesh;
use mesh_contracts::catalog::GetProductRequest;
use mesh_contracts::catalog::catalog_service_client::CatalogServiceClient;
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::customer::v1::customer_profile_service_client::CustomerProfileServiceClient;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_grpc::Credentials;
use mesh_grpc::auth::exchange::{ACCESS_TOKEN_TYPE, GRANT_TYPE};
use tonic::Code;

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap())
        .unwrap()
}

async fn post(mesh: &Mesh, form: &[(String, String)]) -> (u16, serde_json::Value, Option<String>) {
    let response =
        reqwest::Client::new().post(format!("{}/v1/token", mesh.registry)).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_token_is_exchanged_for_a_token_good_at_one_domain() {
    let mesh = Mesh::start(400, false).await;
    let out = mesh.mesh().args(["token", "print", "--for", "payment"]).output().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let token = common::stdout(&out).trim().to_owned();
    let claims = claims(&token);
    assert_eq!(claims["aud"], "urn:woori-mesh:domain:payment");
    assert_eq!((claims["sub"].as_str(), claims["iss"].as_str()), (Some("e2e-admin"), Some("mesh-local")));
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 300, "{claims}");

    // Good at payment; refused by the registry and by customer.
    let credentials = Credentials::token(&token).unwrap();
    let channel =
        |url: &str| mesh_grpc::client::channel(url, std::time::Duration::from_secs(10), &credentials);
    let mut payment = CardSpendingServiceClient::new(channel(&mesh.payment_url).unwrap());
    let mut rows = payment.query(QueryRequest { limit: 3, ..Default::default() }).await.unwrap().into_inner();
    assert!(rows.message().await.unwrap().is_some_and(|b| b.rows.len() == 3));
    let mut registry = CatalogServiceClient::new(channel(&mesh.registry).unwrap());
    let request = GetProductRequest { name: "payment.card_spending".into(), ..Default::default() };
    let refused = registry.get_product(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.message().contains("another audience"), "{}", refused.message());
    let mut customer = CustomerProfileServiceClient::new(channel(&mesh.customer_url).unwrap());
    let refused = customer.query(QueryRequest { limit: 1, ..Default::default() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");

    // Every bad request gets its OAuth error, and nothing is cached.
    let sign_in = mesh.token.as_str();
    let form = |resource: &str, subject: Option<&str>| {
        let mut form = vec![
            ("grant_type".to_owned(), GRANT_TYPE.to_owned()),
            ("subject_token_type".to_owned(), ACCESS_TOKEN_TYPE.to_owned()),
            ("resource".to_owned(), resource.to_owned()),
        ];
        form.extend(subject.map(|s| ("subject_token".to_owned(), s.to_owned())));
        form
    };
    let (status, answer, cache) = post(&mesh, &form("urn:woori-mesh:domain:customer", Some(sign_in))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["token_type"].as_str(), answer["expires_in"].as_u64()), (Some("Bearer"), Some(300)));
    assert_eq!(cache.as_deref(), Some("no-store"));
    let mut twice = form("urn:woori-mesh:domain:payment", Some(sign_in));
    twice.push(("resource".into(), "x".into()));
    let mut saml = form("urn:woori-mesh:domain:payment", Some(sign_in));
    saml[1].1 = "saml".into();
    let mut password = form("urn:woori-mesh:domain:payment", Some(sign_in));
    password[0].1 = "password".into();
    let cases = [
        (password, "unsupported_grant_type", "grant_type must be"),
        (form("urn:woori-mesh:domain:payment", None), "invalid_request", "subject_token is missing"),
        (form("urn:woori-mesh:domain:nope", Some(sign_in)), "invalid_target", "no domain `nope`"),
        (form("woori-mesh", Some(sign_in)), "invalid_target", "is no domain of the mesh"),
        (form("urn:woori-mesh:domain:payment", Some("not.a.token")), "invalid_request", "is not accepted"),
        (twice, "invalid_request", "given twice"),
        (saml, "invalid_request", "subject_token_type must be"),
        // An exchanged token is no sign-in token: it cannot be exchanged again.
        (form("urn:woori-mesh:domain:customer", Some(&token)), "invalid_request", "another audience"),
    ];
    for (form, error, description) in cases {
        let (got, answer, cache) = post(&mesh, &form).await;
        assert_eq!((got, answer["error"].as_str()), (400, Some(error)), "{form:?}: {answer}");
        assert!(answer["error_description"].as_str().unwrap().contains(description), "{form:?}: {answer}");
        assert_eq!(cache.as_deref(), Some("no-store"));
    }

    let out = mesh.mesh().args(["token", "print", "--for", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("cannot get a token for the domain `nope`"),
        "{}",
        common::stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_keeps_domain_tokens_in_its_profile_and_reads_on_while_the_registry_is_down() {
    use std::os::unix::fs::PermissionsExt;
    let mesh = Mesh::start(400, false).await;
    // A profile for the registry holding the sign-in token, as `mesh login` writes it.
    let profiles = mesh.cache.path().join("config").join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let key = &blake3::hash(mesh.registry.trim_end_matches('/').as_bytes()).to_hex()[..32];
    let path = profiles.join(format!("{key}.json"));
    let profile = serde_json::json!({ "registry": mesh.registry, "token": mesh.token });
    std::fs::write(&path, profile.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let query = |mesh: &Mesh| {
        let mut command = mesh.mesh();
        command.env_remove("MESH_TOKEN").args([
            "query",
            "payment.card_spending",
            "--limit",
            "2",
            "--format",
            "csv",
        ]);
        command.output().unwrap()
    };
    let out = query(&mesh);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let token =
        kept["domain_tokens"]["urn:woori-mesh:domain:payment"]["token"].as_str().expect("a kept token");
    assert_eq!(claims(token)["aud"], "urn:woori-mesh:domain:payment");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    // The registry stops: the catalog cache finds the product, the kept token reads it.
    mesh.stop_registry().await;
    let out = query(&mesh);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::stdout(&out).lines().count(), 3, "{}", common::stdout(&out));
}
