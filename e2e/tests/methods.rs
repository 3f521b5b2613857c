//! Every route of every service, called without a token with every HTTP
//! method, as gRPC and as plain HTTP, and as a CORS preflight: each is
//! refused (UNAUTHENTICATED, or 401 with a JSON error) or gets an empty
//! preflight answer. No handler answers: a server decides by path, never by
//! method. Open routes (health, reflection, the OpenAPI documents, the web
//! catalog's pages with their own sign-in) are left out.

use crate::common;

use common::Mesh;
use prost_reflect::DescriptorPool;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "OPTIONS"];

/// Every gRPC method path of the mesh's contracts but health and reflection.
fn grpc_paths() -> Vec<String> {
    let pool = DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET).unwrap();
    let paths: Vec<String> = pool
        .services()
        .flat_map(|service| {
            let name = service.full_name().to_owned();
            service.methods().map(move |m| format!("/{name}/{}", m.name())).collect::<Vec<_>>()
        })
        .collect();
    assert!(paths.iter().any(|p| p == "/mesh.catalog.v1.CatalogService/GetProduct"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "/woori.payment.v1.CardSpendingService/Describe"), "{paths:?}");
    paths
}

/// The REST paths of a service's OpenAPI document, parameters filled in.
async fn rest_paths(base: &str) -> Vec<String> {
    let document: serde_json::Value =
        reqwest::get(format!("{base}/openapi.json")).await.unwrap().json().await.unwrap();
    let paths: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|path| {
            path.replace("{id}", "payment.card_spending").replace("{product}", "payment.card_spending")
        })
        .filter(|path| !path.contains('{'))
        .collect();
    assert!(paths.iter().any(|p| p.starts_with("/v1/products")), "{paths:?}");
    paths
}

/// What came back for one request.
struct Answer {
    status: u16,
    grpc_status: Option<String>,
    body: Vec<u8>,
}

async fn call(client: &reqwest::Client, url: &str, method: &str, grpc: bool, preflight: bool) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method, url);
    if grpc {
        // A gRPC frame holding an empty message: what Describe or GetProduct take.
        request =
            request.header("content-type", "application/grpc").header("te", "trailers").body(vec![0u8; 5]);
    } else {
        request = request.body(vec![0u8; 5]);
    }
    if preflight {
        request = request
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type");
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let grpc_status = response.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
    let body = response.bytes().await.unwrap().to_vec();
    Answer { status, grpc_status, body }
}

/// Whether `answer` is a refusal by the authentication layer, or an empty
/// preflight answer.
fn refused(answer: &Answer, preflight: bool) -> bool {
    let unauthenticated_grpc = answer.grpc_status.as_deref() == Some("16") && answer.body.is_empty();
    let unauthenticated_http = answer.status == 401
        && serde_json::from_slice::<serde_json::Value>(&answer.body)
            .is_ok_and(|v| v["error"]["status"] == "UNAUTHENTICATED");
    let empty_preflight = preflight && answer.body.is_empty() && answer.grpc_status.is_none();
    unauthenticated_grpc || unauthenticated_http || empty_preflight
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_route_answers_without_a_token_whatever_the_method() {
    let mesh = Mesh::start(400, true).await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let h1 = reqwest::Client::builder().http1_only().build().unwrap();
    let grpc = grpc_paths();
    let servers = [
        mesh.registry.clone(),
        mesh.payment_url.clone(),
        mesh.customer_url.clone(),
        mesh.insight_url.clone().unwrap(),
    ];
    let mut tried = 0;
    let mut leaks = Vec::new();
    for base in &servers {
        let mut paths = grpc.clone();
        paths.extend(rest_paths(base).await);
        for path in &paths {
            let url = format!("{base}{path}");
            for method in METHODS {
                for (client, as_grpc) in [(&h2, true), (&h2, false), (&h1, false)] {
                    for preflight in [false, true] {
                        let answer = call(client, &url, method, as_grpc, preflight).await;
                        tried += 1;
                        if !refused(&answer, preflight) {
                            leaks.push(format!(
                                "{method} {url} (grpc {as_grpc}, preflight {preflight}): {} grpc-status {:?}, {} bytes",
                                answer.status,
                                answer.grpc_status,
                                answer.body.len()
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(tried > 1000, "{tried}");
    assert!(leaks.is_empty(), "answered without a token:\n{}", leaks.join("\n"));
}
