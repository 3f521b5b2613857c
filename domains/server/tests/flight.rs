//! Arrow Flight on the payment domain, through a real Flight client: the
//! rows as stored, the contract in the schema, batches that resume from
//! their `app_metadata`, tickets only their caller can redeem, and the
//! same refusals as `Query`. (What an analyst under an agreement receives
//! is in the two-worlds property, `noninterference.rs`.)

use crate::common;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_flight::decode::DecodedPayload;
use arrow_flight::error::FlightError;
use arrow_flight::{FlightClient, FlightDescriptor, FlightInfo, Ticket};
use arrow_schema::DataType;
use common::{Backend, TestDomain, credentials, nowhere, reader, start_on};
use futures_util::StreamExt;
use mesh_contracts::product::{FlightTicket, QueryRequest};
use mesh_contracts::woori::payment::v1::CardSpending;
use mesh_grpc::{Credentials, MeshChannel};
use mesh_runtime::ServeLimits;
use prost::Message;

mesh_postgres::on_both_backends!(
    the_owner_reads_every_row_as_stored_with_the_contract_in_the_schema,
    a_read_goes_on_from_a_batch_app_metadata
);

const PRODUCT: &str = "payment.card_spending";

async fn client(domain: &TestDomain, who: Credentials) -> FlightClient<MeshChannel> {
    FlightClient::new(common::connect(domain.addr, who).await)
}

fn whole_product() -> FlightDescriptor {
    FlightDescriptor::new_path(vec![PRODUCT.to_owned()])
}

fn status(error: FlightError) -> tonic::Status {
    match error {
        FlightError::Tonic(status) => *status,
        other => panic!("not a gRPC status: {other}"),
    }
}

/// The ticket of the info's one endpoint.
fn ticket(info: &FlightInfo) -> Ticket {
    assert_eq!(info.endpoint.len(), 1, "one endpoint: every location serves the same rows");
    info.endpoint[0].ticket.clone().unwrap()
}

/// The first batch of a ticket's stream and its resume token, the stream
/// dropped after it (as by a client whose replica died).
async fn first_batch(flight: &mut FlightClient<MeshChannel>, ticket: Ticket) -> (RecordBatch, String) {
    let mut decoder = flight.do_get(ticket).await.unwrap().into_inner();
    loop {
        let data = decoder.next().await.unwrap().unwrap();
        let token = String::from_utf8(data.app_metadata().to_vec()).unwrap();
        if let DecodedPayload::RecordBatch(batch) = data.payload {
            return (batch, token);
        }
    }
}

/// The compared columns of the rows of `batches`, as the reference reads them.
fn rows(batches: &[arrow_array::RecordBatch]) -> Vec<CardSpending> {
    let mut rows = Vec::new();
    for batch in batches {
        let text = |name: &str| batch.column_by_name(name).unwrap().as_string::<i32>().clone();
        let number = |name: &str| batch.column_by_name(name).unwrap().as_primitive::<Int64Type>().clone();
        let (bas_yh, seq) = (text("bas_yh"), text("seq"));
        let (tot, crdsl, cnf, auto) =
            (number("tot_use_am"), number("crdsl_use_am"), number("cnf_use_am"), number("auto_am"));
        for i in 0..batch.num_rows() {
            rows.push(CardSpending {
                bas_yh: bas_yh.value(i).to_owned(),
                seq: seq.value(i).to_owned(),
                tot_use_am: tot.value(i),
                crdsl_use_am: crdsl.value(i),
                cnf_use_am: cnf.value(i),
                auto_am: auto.value(i),
                ..Default::default()
            });
        }
    }
    rows
}

async fn the_owner_reads_every_row_as_stored_with_the_contract_in_the_schema() {
    let domain = start_on(common::backend(), 3_000, &nowhere()).await;
    let mut flight = client(&domain, reader(domain.dir.path())).await;
    let info = flight.get_flight_info(whole_product()).await.unwrap();
    assert_eq!(info.endpoint[0].location[0].uri, format!("grpc+tcp://{}", domain.addr));
    let schema = info.clone().try_decode_schema().unwrap();
    assert_eq!(schema.fields().len(), 47, "the owner receives every column");
    assert_eq!(schema.metadata()["mesh.product"], PRODUCT);
    let amount = schema.field_with_name("tot_use_am").unwrap();
    assert_eq!(amount.data_type(), &DataType::Int64);
    assert!(!amount.is_nullable(), "a contract column has no null");
    assert_eq!(amount.metadata()["mesh.unit"], "KRW");
    assert!(!amount.metadata()["mesh.description"].is_empty());
    let seq = schema.field_with_name("seq").unwrap();
    assert_eq!(seq.metadata()["mesh.classification"], "CLASSIFICATION_PII_IDENTIFIER");
    assert!(!seq.metadata().contains_key("mesh.pseudonymized"), "the owner reads identifiers raw");

    let stream = flight.do_get(ticket(&info)).await.unwrap();
    let batches: Vec<_> = stream.map(|b| b.unwrap()).collect().await;
    assert!(batches.len() >= 2, "6,000 rows of 47 columns come in several batches");
    assert_eq!(batches[0].schema().fields(), schema.fields());
    assert_eq!(rows(&batches), domain.stored_rows().await, "row for row as stored, in key order");

    // A query: filter, columns, order and limit as `Query` takes them.
    let command = serde_json::json!({
        "product": PRODUCT, "filter": "tot_use_am > 1000000 AND bas_yh = \"2024Q2\"",
        "select": ["seq", "tot_use_am"], "order_by": "tot_use_am desc", "limit": 7,
    });
    let info = flight.get_flight_info(FlightDescriptor::new_cmd(command.to_string())).await.unwrap();
    let batches: Vec<_> = flight.do_get(ticket(&info)).await.unwrap().map(|b| b.unwrap()).collect().await;
    let got: Vec<(String, i64)> = batches
        .iter()
        .flat_map(|b| {
            let seq = b.column(0).as_string::<i32>().clone();
            let amount = b.column(1).as_primitive::<Int64Type>().clone();
            (0..b.num_rows()).map(move |i| (seq.value(i).to_owned(), amount.value(i)))
        })
        .collect();
    let request = QueryRequest {
        filter: command["filter"].as_str().unwrap().to_owned(),
        read_mask: Some(prost_types::FieldMask { paths: vec!["seq".into(), "tot_use_am".into()] }),
        order_by: "tot_use_am desc".into(),
        limit: 7,
        resume_token: String::new(),
    };
    let mut expected = Vec::new();
    let mut query = domain.client.clone().query(request).await.unwrap().into_inner();
    while let Some(batch) = query.message().await.unwrap() {
        expected.extend(batch.rows.into_iter().map(|r| (r.seq, r.tot_use_am)));
    }
    assert_eq!(got.len(), 7);
    assert_eq!(got, expected, "the same rows as Query gives");
}

async fn a_read_goes_on_from_a_batch_app_metadata() {
    let domain = start_on(common::backend(), 3_000, &nowhere()).await;
    let mut flight = client(&domain, reader(domain.dir.path())).await;
    let info = flight.get_flight_info(whole_product()).await.unwrap();
    let all: Vec<_> = flight.do_get(ticket(&info)).await.unwrap().map(|b| b.unwrap()).collect().await;
    let all = rows(&all);

    // Read the first batch only, as a client whose replica died after it.
    let (first, token) = first_batch(&mut flight, ticket(&info)).await;
    assert!(!token.is_empty(), "each batch carries its resume token");
    let mut resumed = FlightTicket::decode(ticket(&info).ticket).unwrap();
    resumed.resume_token = token;
    let rest: Vec<_> = flight
        .do_get(Ticket::new(resumed.encode_to_vec()))
        .await
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
        .await;
    let mut joined = rows(&[first]);
    joined.extend(rows(&rest));
    assert_eq!(joined, all, "every row exactly once");

    // A resume token that is not one of this query's is refused.
    resumed.resume_token = "not-a-token".into();
    let refused = flight.do_get(Ticket::new(resumed.encode_to_vec())).await.map(|_| ()).unwrap_err();
    let refused = status(refused);
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().starts_with("resume_token:"), "{}", refused.message());
}

#[tokio::test]
async fn a_ticket_is_good_for_its_caller_only_and_refusals_match_query() {
    let domain = start_on(Backend::Sqlite, 50, &nowhere()).await;
    let dir = domain.dir.path();
    let mut owner = client(&domain, reader(dir)).await;
    let info = owner.get_flight_info(whole_product()).await.unwrap();

    // Another caller, even one who may read the product, cannot redeem it.
    let mut other = client(&domain, credentials(dir, "payment-owner-2", &["owner:payment"])).await;
    let replayed = status(other.do_get(ticket(&info)).await.map(|_| ()).unwrap_err());
    assert_eq!(replayed.code(), tonic::Code::PermissionDenied);
    assert!(replayed.message().contains("issued to another caller"), "{}", replayed.message());

    // An altered ticket opens nowhere.
    let mut altered = FlightTicket::decode(ticket(&info).ticket).unwrap();
    let flipped = if altered.sealed.as_bytes()[20] == b'A' { "B" } else { "A" };
    altered.sealed.replace_range(20..21, flipped);
    let forged = status(owner.do_get(Ticket::new(altered.encode_to_vec())).await.map(|_| ()).unwrap_err());
    assert_eq!(forged.code(), tonic::Code::InvalidArgument);
    assert!(forged.message().starts_with("ticket: not one this domain issued"));

    // An analyst without an agreement gets Query's refusal, word for word.
    let analyst = credentials(dir, "analyst-kim", &["analyst"]);
    let refused =
        status(client(&domain, analyst.clone()).await.get_flight_info(whole_product()).await.unwrap_err());
    let mut query =
        mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient::new(
            common::connect(domain.addr, analyst).await,
        );
    let by_query = query.query(QueryRequest::default()).await.unwrap_err();
    assert_eq!((refused.code(), refused.message()), (by_query.code(), by_query.message()));
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // A bad filter names its field as Query does.
    let command = serde_json::json!({"product": PRODUCT, "filter": "nope > 1"});
    let bad =
        status(owner.get_flight_info(FlightDescriptor::new_cmd(command.to_string())).await.unwrap_err());
    let by_query = domain
        .client
        .clone()
        .query(QueryRequest { filter: "nope > 1".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((bad.code(), bad.message()), (by_query.code(), by_query.message()));
    assert_eq!(mesh_grpc::bad_request::field_problem(&bad).map(|p| p.field), Some("filter".to_owned()));

    // Descriptors that ask nothing readable, and methods a domain does not serve.
    let unknown = FlightDescriptor::new_path(vec!["payment.nothing".into()]);
    let missing = status(owner.get_flight_info(unknown).await.unwrap_err());
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert!(missing.message().contains("serves no product `payment.nothing`"), "{}", missing.message());
    let garbled = status(owner.get_flight_info(FlightDescriptor::new_cmd("{")).await.unwrap_err());
    assert_eq!(garbled.code(), tonic::Code::InvalidArgument);
    assert!(garbled.message().starts_with("descriptor.cmd:"), "{}", garbled.message());
    let actions = status(owner.list_actions().await.map(|_| ()).unwrap_err());
    assert_eq!(actions.code(), tonic::Code::Unimplemented);
    assert!(actions.message().contains("GetFlightInfo, GetSchema and DoGet"));

    // GetSchema answers what GetFlightInfo's schema says.
    let schema = owner.get_schema(whole_product()).await.unwrap();
    assert_eq!(schema, info.try_decode_schema().unwrap());
}

/// Every batch of a ticket's stream.
async fn batches(
    flight: &mut FlightClient<MeshChannel>,
    ticket: Ticket,
) -> Result<Vec<RecordBatch>, tonic::Status> {
    let stream = flight.do_get(ticket).await.map_err(status)?;
    stream.map(|b| b.map_err(status)).collect::<Vec<_>>().await.into_iter().collect()
}

#[tokio::test]
async fn a_whole_product_comes_in_parts_read_side_by_side() {
    let limits = ServeLimits { flight_parts: 3, flight_part_rows: 1_000, ..Default::default() };
    // PostgreSQL keeps no index on rowid alone: its reads stay whole.
    let on_postgres = common::start_under(Backend::Postgres, 3_000, limits.clone()).await;
    let mut flight = client(&on_postgres, reader(on_postgres.dir.path())).await;
    assert_eq!(flight.get_flight_info(whole_product()).await.unwrap().endpoint.len(), 1);
    drop(on_postgres);

    let domain = common::start_under(Backend::Sqlite, 3_000, limits).await;
    let mut flight = client(&domain, reader(domain.dir.path())).await;
    let info = flight.get_flight_info(whole_product()).await.unwrap();
    assert_eq!(info.endpoint.len(), 3, "6,000 rows in parts of at least 1,000, at most 3");
    let owner = reader(domain.dir.path());
    let reads = info.endpoint.iter().map(|endpoint| {
        let (ticket, owner) = (endpoint.ticket.clone().unwrap(), owner.clone());
        let domain = &domain;
        async move { batches(&mut client(domain, owner).await, ticket).await.unwrap() }
    });
    let parts: Vec<Vec<RecordBatch>> = futures_util::future::join_all(reads).await;
    assert!(parts.iter().all(|part| !part.is_empty()), "each part holds rows");
    let mut got: Vec<CardSpending> = parts.iter().flat_map(|part| rows(part)).collect();
    let key = |r: &CardSpending| (r.bas_yh.clone(), r.seq.clone());
    got.sort_by_key(key);
    assert_eq!(got, domain.stored_rows().await, "every row exactly once across the parts");

    // A part goes on from its own batches' resume tokens, and only its own.
    let part = FlightTicket::decode(info.endpoint[1].ticket.clone().unwrap().ticket).unwrap();
    let (first, token) = first_batch(&mut flight, Ticket::new(part.encode_to_vec())).await;
    let resumed = FlightTicket { resume_token: token.clone(), ..part };
    let mut joined = rows(&[first]);
    joined.extend(rows(&batches(&mut flight, Ticket::new(resumed.encode_to_vec())).await.unwrap()));
    assert_eq!(joined, rows(&parts[1]), "the part again, every row once");
    let elsewhere = FlightTicket::decode(info.endpoint[2].ticket.clone().unwrap().ticket).unwrap();
    let crossed = FlightTicket { resume_token: token, ..elsewhere };
    let refused = batches(&mut flight, Ticket::new(crossed.encode_to_vec())).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{}", refused.message());

    // A filtered or ordered read, or one with a limit, stays whole.
    for command in [
        serde_json::json!({"product": PRODUCT, "filter": "tot_use_am > 0"}),
        serde_json::json!({"product": PRODUCT, "order_by": "tot_use_am desc"}),
        serde_json::json!({"product": PRODUCT, "limit": 5000}),
    ] {
        let info = flight.get_flight_info(FlightDescriptor::new_cmd(command.to_string())).await.unwrap();
        assert_eq!(info.endpoint.len(), 1, "{command}");
    }

    // Parts planned on one load are not read on the next.
    domain.reload(3_000).await;
    let stale = batches(&mut flight, info.endpoint[0].ticket.clone().unwrap()).await.unwrap_err();
    assert_eq!(stale.code(), tonic::Code::Aborted);
    assert_eq!(
        stale.message(),
        "ticket: the data of payment.card_spending changed since GetFlightInfo split this read into parts (it \
         was reloaded or rebuilt); ask GetFlightInfo for new tickets"
    );
}

/// A read in parts whose tickets expire before its later parts start (a
/// slow reader) plans again at the domain and goes on, every row once;
/// the domain refuses an expired ticket with a message naming its lifetime.
#[tokio::test]
async fn a_read_outliving_its_tickets_plans_again_and_every_row_arrives_once() {
    use mesh_sql::Replicas;
    use mesh_sql::flight::{FlightQuery, FlightRead, ReadSettings};

    let lifetime = std::time::Duration::from_secs(1);
    let limits = ServeLimits {
        flight_parts: 3,
        flight_part_rows: 1_000,
        flight_ticket_lifetime: lifetime,
        ..Default::default()
    };
    let domain = common::start_under(Backend::Sqlite, 3_000, limits).await;
    let owner = reader(domain.dir.path());
    let mut flight = client(&domain, owner.clone()).await;
    let info = flight.get_flight_info(whole_product()).await.unwrap();
    assert_eq!(info.endpoint.len(), 3);
    tokio::time::sleep(lifetime + std::time::Duration::from_millis(200)).await;
    let expired = batches(&mut flight, info.endpoint[1].ticket.clone().unwrap()).await.unwrap_err();
    assert_eq!(expired.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        expired.message(),
        "ticket: it expired 1s after it was issued; ask GetFlightInfo for a new one"
    );

    let replicas =
        Replicas { endpoint: format!("http://{}", domain.addr), fallbacks: Vec::new(), credentials: owner };
    let settings = ReadSettings {
        timeout: std::time::Duration::from_secs(10),
        idle_timeout: std::time::Duration::from_secs(10),
        on_failover: std::sync::Arc::new(|_| {}),
    };
    let query = FlightQuery { product: PRODUCT.to_owned(), ..Default::default() };
    let mut read = FlightRead::plan(replicas.clone(), &query, settings.clone()).await.unwrap();
    let mut got = Vec::new();
    while let Some(batch) = read.next().await.unwrap() {
        got.extend(rows(&[batch]));
        // Slower than the tickets last: each later part starts after its
        // ticket expired.
        tokio::time::sleep(lifetime + std::time::Duration::from_millis(100)).await;
    }
    got.sort_by_key(|r: &CardSpending| (r.bas_yh.clone(), r.seq.clone()));
    assert_eq!(got, domain.stored_rows().await, "every row exactly once across the parts");

    // Planned again after a reload, the parts left would be of another
    // load: the read stops rather than mix two.
    let mut read = FlightRead::plan(replicas, &query, settings).await.unwrap();
    assert!(read.next().await.unwrap().is_some());
    domain.reload(3_000).await;
    tokio::time::sleep(lifetime + std::time::Duration::from_millis(100)).await;
    let stopped = loop {
        match read.next().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a read in parts of two loads went to its end"),
            Err(stopped) => break stopped,
        }
    };
    assert_eq!(stopped.code(), tonic::Code::Aborted);
    assert_eq!(
        stopped.message(),
        "payment.card_spending changed while the query ran (its columns or its data); run the query again"
    );
}
