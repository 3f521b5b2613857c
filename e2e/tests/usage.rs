//! Usage for owners: what `mesh usage`, `GetUsage` and the REST usage path
//! sum from the read log match the reads the test made (served and refused,
//! by reason, rows and bytes on today's line, the slowest reads); only
//! owners and admins may ask; a period out of bounds is refused with its
//! message.

use crate::common;

use std::time::Duration;

use common::Mesh;
use mesh_contracts::product::GetUsageRequest;
use mesh_contracts::product::QueryRequest;
use mesh_contracts::product::audit_service_client::AuditServiceClient;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_grpc::MeshChannel;

fn usage_client(mesh: &Mesh, subject: &str, roles: &[&str]) -> AuditServiceClient<MeshChannel> {
    AuditServiceClient::new(mesh.channel_as(&mesh.payment_url, subject, roles))
}

// Multi-threaded: the CLI run at the end blocks one thread while the mesh answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_see_reads_rows_bytes_and_refusals_per_day() {
    let mesh = Mesh::start(200, false).await;
    let mut bytes = 0;
    for limit in [5, 7] {
        let mut client =
            CardSpendingServiceClient::new(mesh.channel_as(&mesh.payment_url, "lee", &["admin"]));
        let request = QueryRequest { limit, ..Default::default() };
        let mut stream = client.query(request).await.unwrap().into_inner();
        while let Some(batch) = stream.message().await.unwrap() {
            bytes += prost::Message::encoded_len(&batch) as i64;
        }
    }
    for _ in 0..3 {
        let mut client =
            CardSpendingServiceClient::new(mesh.channel_as(&mesh.payment_url, "kim", &["analyst"]));
        let refused = client.query(QueryRequest::default()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    }
    let mut client = CardSpendingServiceClient::new(mesh.channel_as(&mesh.payment_url, "lee", &["admin"]));
    let bad = QueryRequest { filter: "no_such_column = 1".into(), ..Default::default() };
    assert_eq!(client.query(bad).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    // The log commits within its flush period.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let request = GetUsageRequest { product: "payment.card_spending".into(), ..Default::default() };
    let usage =
        usage_client(&mesh, "ana", &["owner:payment"]).get_usage(request.clone()).await.unwrap().into_inner();
    assert_eq!(usage.days.len(), 31, "30 days back and today: {:?}", usage.days);
    let today = usage.days.last().unwrap();
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    assert_eq!(today.day, date[..10]);
    // The load's own reads are none: only what the test did.
    assert_eq!((today.reads, today.rows, today.refusals), (2, 12, 4), "{today:?}");
    assert!(today.bytes > 0 && today.bytes <= bytes, "{} of {bytes}", today.bytes);
    let reasons: Vec<(&str, i64)> = usage.refusals.iter().map(|r| (r.reason.as_str(), r.count)).collect();
    assert_eq!(reasons, [("PERMISSION_DENIED", 3), ("INVALID_ARGUMENT", 1)]);
    assert_eq!(usage.slowest.len(), 2);
    assert!(usage.slowest.iter().all(|r| r.principal == "lee"));

    let denied = usage_client(&mesh, "kim", &["analyst"]).get_usage(request.clone()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "`kim` may not read the usage of payment.card_spending: only its owners may, which needs the role \
         `owner:payment` or `admin` (mesh whoami shows your roles)"
    );
    // Out of bounds, including times whose milliseconds overflow.
    for seconds in [0, -9_223_372_036_000_000, i64::MIN, i64::MAX] {
        let out =
            GetUsageRequest { since: Some(prost_types::Timestamp { seconds, nanos: 0 }), ..request.clone() };
        let refused = usage_client(&mesh, "ana", &["owner:payment"]).get_usage(out).await.unwrap_err();
        assert_eq!(
            (refused.code(), refused.message()),
            (
                tonic::Code::InvalidArgument,
                "since: give a time in the last 400 days (usage is summed per day)"
            ),
            "{seconds}"
        );
    }

    let too_many = GetUsageRequest { slowest: 101, ..request.clone() };
    let refused = usage_client(&mesh, "ana", &["owner:payment"]).get_usage(too_many).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (tonic::Code::InvalidArgument, "slowest: give 1 to 100 (or 0 for 10)")
    );

    // REST answers the same, in protobuf's JSON mapping, to owners alone.
    let rest = |subject: &str, roles: &[&str], query: &str| {
        let token = mesh.domain_token_as("payment", subject, roles);
        let url = format!("{}/v1/products/payment.card_spending/usage{query}", mesh.payment_url);
        async move {
            let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
            (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = rest("ana", &["owner:payment"], "?since=7d&slowest=1").await;
    assert_eq!(status, 200, "{body}");
    let days = body["days"].as_array().unwrap();
    assert_eq!(days.len(), 8, "{body}");
    let last = &days[7];
    assert_eq!(
        (last["day"].as_str(), last["reads"].as_str(), last["rows"].as_str(), last["refusals"].as_str()),
        (Some(&date[..10]), Some("2"), Some("12"), Some("4")),
        "{body}"
    );
    assert_eq!(body["refusals"][0]["reason"], "PERMISSION_DENIED", "{body}");
    assert_eq!(body["slowest"].as_array().map(Vec::len), Some(1), "{body}");
    let (status, body) = rest("ana", &["owner:payment"], "?since=2026-01-01").await;
    assert_eq!(status, 200, "a day alone is a time: {body}");
    let (status, body) = rest("kim", &["analyst"], "").await;
    assert_eq!((status, body["error"]["message"].as_str()), (403, Some(denied.message())), "{body}");
    let (status, body) = rest("ana", &["owner:payment"], "?since=yesterday").await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (
            400,
            Some(
                "since: `yesterday` is neither a duration back from now (`30d`, `12h`) nor a day or UTC time \
                 (`2026-11-01`, `2026-11-01T09:00:00Z`)"
            )
        )
    );
    let (status, body) = rest("ana", &["owner:payment"], "?since=500d").await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (400, Some("since: give a time in the last 400 days (usage is summed per day)"))
    );

    // The CLI prints the same.
    let output = mesh.mesh().args(["usage", "payment.card_spending", "--since", "7days"]).output().unwrap();
    let printed = common::stdout(&output);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let line = printed.lines().find(|l| l.contains(&date[..10])).unwrap_or_else(|| panic!("{printed}"));
    let cells: Vec<&str> =
        line.split(|c: char| c.is_whitespace() || "│┆|".contains(c)).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells[..3], [&date[..10], "2", "12"], "{printed}");
    assert_eq!(cells[4], "4", "{printed}");
    assert!(printed.contains("PERMISSION_DENIED") && printed.contains("slowest reads"), "{printed}");
}
