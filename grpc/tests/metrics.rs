//! `/metrics` of a server built with the one server builder: refused
//! without a token and to a token without the role `metrics` (with the
//! JSON error and its message), served to `metrics` and `admin` over
//! HTTP/1.1 and HTTP/2, open only with `--insecure-open-metrics`; the calls
//! it answered and the tokens it refused are counted with bounded labels,
//! and Debian's `promtool check metrics` accepts what it serves.

use std::sync::Arc;
use std::time::Duration;

use mesh_grpc::auth::test_tokens::TestIssuer;
use mesh_grpc::unary::RawUnaryRoute;
use mesh_grpc::{AuthArgs, Credentials, MeshServer};

async fn serve(auth: AuthArgs) -> String {
    let echo = RawUnaryRoute::new(Arc::new(|request| Box::pin(async move { Ok(request.into_inner()) })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = MeshServer::new(&[], &[]).await.unwrap().route("/test.Echo/Ping", echo);
    let server = server.authenticate(auth.layer().unwrap());
    tokio::spawn(server.serve(listener, std::future::pending()));
    url
}

async fn ping(
    url: &str,
    credentials: Credentials,
    path: &'static str,
) -> Result<bytes::Bytes, tonic::Status> {
    let channel = mesh_grpc::client::channel(url, Duration::from_secs(5), &credentials).unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = tonic::Request::new(bytes::Bytes::from_static(b"ping"));
    grpc.unary(request, http::uri::PathAndQuery::from_static(path), mesh_grpc::codec::RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// GET /metrics with `token`, over HTTP/2 when `h2`: status and body.
async fn scrape(url: &str, token: Option<&str>, h2: bool) -> (u16, String) {
    let client = if h2 {
        reqwest::Client::builder().http2_prior_knowledge().build().unwrap()
    } else {
        reqwest::Client::builder().http1_only().build().unwrap()
    };
    let mut request = client.get(format!("{url}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    if h2 {
        assert_eq!(response.version(), http::Version::HTTP_2);
    }
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The value of the series `series` (its name and labels as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_need_the_metrics_role_and_count_calls_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::new(dir.path());
    let url = serve(issuer.auth_args()).await;

    let (status, body) = scrape(&url, None, false).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("the call carries no bearer token"), "{body}");
    let analyst = issuer.token("kim", &["analyst"]);
    let (status, body) = scrape(&url, Some(&analyst), false).await;
    assert_eq!(status, 403, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["error"]["message"],
        "`kim` may not read this service's metrics: that needs the role `metrics` or `admin` (mesh whoami shows your roles)"
    );

    // Calls answered and refused, then scraped by each role over both protocols.
    let good = Credentials::token(&analyst).unwrap();
    for _ in 0..3 {
        ping(&url, good.clone(), "/test.Echo/Ping").await.unwrap();
    }
    ping(&url, Credentials::none(), "/test.Echo/Ping").await.unwrap_err();
    let expired = issuer.bad_tokens().into_iter().find(|(what, ..)| what.contains("expired")).unwrap().1;
    ping(&url, Credentials::token(&expired).unwrap(), "/test.Echo/Ping").await.unwrap_err();
    for invented in ["/test.Echo/Invented", "/made.Up/Path"] {
        ping(&url, good.clone(), invented).await.unwrap_err();
    }
    for (roles, h2) in [(&["metrics"][..], false), (&["admin"][..], true)] {
        let (status, text) = scrape(&url, Some(&issuer.token("prometheus", roles)), h2).await;
        assert_eq!(status, 200, "{text}");
        assert_eq!(value(&text, r#"mesh_auth_refusals_total{reason="missing"}"#), Some(2.0), "{text}");
        assert_eq!(value(&text, r#"mesh_auth_refusals_total{reason="expired"}"#), Some(1.0), "{text}");
        assert!(text.contains("mesh_process_resident_memory_bytes"), "{text}");
        assert!(text.contains("mesh_call_duration_seconds_bucket"), "{text}");
        mesh_grpc::metrics::promtool::check(&text)
            .unwrap_or_else(|problems| panic!("promtool: {problems}\n{text}"));
        // A path the server does not know is `other`, whatever its name.
        assert!(!text.contains("Invented") && !text.contains("made.Up"), "{text}");
        assert!(
            text.contains(r#"mesh_calls_total{code="UNIMPLEMENTED",method="other",service="other"} 2"#),
            "{text}"
        );
    }
    // The refused scrapes are counted as HTTP calls on the route.
    let (_, text) = scrape(&url, Some(&issuer.token("prometheus", &["metrics"])), false).await;
    assert_eq!(
        value(&text, r#"mesh_calls_total{code="403",method="/metrics",service="http"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"mesh_authorization_denials_total{method="/metrics",service="http"}"#),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_answer_get_alone() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::new(dir.path());
    let url = serve(issuer.auth_args()).await;
    let response = reqwest::Client::new()
        .post(format!("{url}/metrics"))
        .bearer_auth(issuer.token("prometheus", &["metrics"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["message"], "/metrics answers GET only, not POST");
}

#[tokio::test]
async fn metrics_are_open_only_when_the_loud_flag_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TestIssuer::new(dir.path());
    let url = serve(AuthArgs { insecure_open_metrics: true, ..issuer.auth_args() }).await;
    let (status, text) = scrape(&url, None, false).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("mesh_process_open_fds"), "{text}");
    // Nothing else opens with it.
    let refused = ping(&url, Credentials::none(), "/test.Echo/Ping").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}
