//! What a consumer can learn, as properties, on both backends, over gRPC,
//! REST in every format and Arrow Flight.
//!
//! *Two worlds.* For random consumers (agreements with random columns, raw
//! grants and row scopes, stored as they might have been before scopes were
//! checked) and random queries (filter, select, order, limit, page size,
//! resumed mid-way), each query runs against two domains whose data differ
//! only in what that consumer may not see: every column it does not
//! receive re-drawn, every row outside its scope changed in every column
//! (and kept outside it), the rows loaded in another order, other
//! consumers' agreements different. The two
//! answers must be byte-identical (resume tokens aside, which are sealed
//! with each domain's own secret). Each case also reads the whole product,
//! which comes over Flight in parts on SQLite: the parts, their number and
//! what each holds must be the same too.
//!
//! *Identifiers.* Over answers of 1,000 rows and more delivered with
//! pseudonyms, a row's position tells nothing of its real identifier (rank
//! correlation under 0.1 for every order the consumer may ask for), and two
//! consumers' answers to the same query put the same customer at the same
//! position no more often than chance.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_flight::FlightDescriptor;
use common::{Backend, TestDomain, credentials, nowhere, on_database};
use mesh_contracts::catalog::{Agreement, AgreementState, ListAgreementsResponse};
use mesh_contracts::product::QueryRequest;
use mesh_contracts::woori::payment::v1::CardSpending;
use mesh_contracts::woori::payment::v1::card_spending_service_client::CardSpendingServiceClient;
use mesh_filter::{ColumnList, Columns, Filter, Kind, Value};
use mesh_grpc::Credentials;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use prost::Message;
use woori_data::Generator;

mesh_postgres::on_both_backends!(
    two_worlds_give_the_same_answer,
    pseudonymized_rows_come_in_an_order_that_tells_nothing
);

const PRODUCT: &str = "payment.card_spending";
const QUARTERS: [&str; 2] = ["2024Q1", "2024Q2"];

/// The source file as records: a header and rows of text.
#[derive(Clone)]
struct Data {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Data {
    fn generate(customers: u64) -> Self {
        let mut bytes = Vec::new();
        Generator { customers, quarters: 2, seed: 11 }.write_csv(&mut bytes).unwrap();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
        Self { header, rows }
    }

    fn write(&self, path: &Path) {
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_path(path).unwrap();
        writer.write_record(&self.header).unwrap();
        for row in &self.rows {
            writer.write_record(row).unwrap();
        }
        writer.flush().unwrap();
    }

    /// The file position of the product column `name`.
    fn position(&self, name: &str) -> usize {
        self.header.iter().position(|h| h.eq_ignore_ascii_case(name)).unwrap()
    }
}

/// The payment product's columns (the file's BAS_YH, SEQ and amounts).
fn product_columns(data: &Data) -> ColumnList {
    let columns = data.header.iter().filter(|h| *h == "BAS_YH" || *h == "SEQ" || h.ends_with("_AM"));
    ColumnList(
        columns
            .map(|h| {
                let kind = if h.ends_with("_AM") { Kind::Integer } else { Kind::String };
                (h.to_ascii_lowercase(), kind)
            })
            .collect(),
    )
}

/// The value of column `index` of `columns` in `row`.
fn cell(data: &Data, columns: &ColumnList, row: &[String], index: usize) -> Value {
    let text = &row[data.position(columns.name(index))];
    match columns.0[index].1 {
        Kind::Integer => Value::Integer(text.parse().unwrap()),
        _ => Value::Text(text.clone()),
    }
}

/// One consumer's agreement.
#[derive(Debug, Clone)]
struct Grant {
    subject: String,
    amounts: Vec<String>,
    raw_seq: bool,
    scope: String,
}

impl Grant {
    fn agreement(&self, id: u32) -> Agreement {
        let mut columns = vec!["bas_yh".to_owned(), "seq".to_owned()];
        columns.extend(self.amounts.iter().cloned());
        Agreement {
            name: format!("agreements/{id}"),
            product: PRODUCT.into(),
            principal: self.subject.clone(),
            issuer: mesh_grpc::auth::issuer::LOCAL_ISSUER.into(),
            purpose: "property test".into(),
            columns,
            raw_columns: if self.raw_seq { vec!["seq".into()] } else { Vec::new() },
            row_scope: self.scope.clone(),
            end_time: Some(prost_types::Timestamp { seconds: 4_102_444_800, nanos: 0 }),
            state: AgreementState::Approved.into(),
            ..Default::default()
        }
    }

    /// Whether the consumer receives column `name` at all.
    fn receives(&self, name: &str) -> bool {
        name == "bas_yh" || name == "seq" || self.amounts.iter().any(|a| a == name)
    }
}

fn amount_names(columns: &ColumnList) -> Vec<String> {
    columns.0.iter().map(|(n, _)| n.clone()).filter(|n| n.ends_with("_am")).collect()
}

/// Random agreements: some amounts, the identifier raw or not, and a scope
/// over anything (a scope over what the agreement does not deliver in the
/// clear must read nothing).
fn grant(amounts: Vec<String>, subject: String) -> impl Strategy<Value = Grant> {
    let some = proptest::sample::subsequence(amounts.clone(), 0..5);
    let scope = prop_oneof![
        Just(String::new()),
        Just(r#"bas_yh = "2024Q1""#.to_owned()),
        (proptest::sample::select(amounts), 0..3_000_000i64).prop_map(|(a, t)| format!("{a} > {t}")),
        Just(r#"seq = "0000000003" OR seq = "0000000007""#.to_owned()),
        (0..2_000_000i64).prop_map(|t| format!(r#"bas_yh = "2024Q2" OR tot_use_am < {t}"#)),
    ];
    (some, any::<bool>(), scope).prop_map(move |(amounts, raw_seq, scope)| Grant {
        subject: subject.clone(),
        amounts,
        raw_seq,
        scope,
    })
}

/// A random query over the columns `grant` delivers in the clear (and, now
/// and then, over one it does not: both worlds must refuse alike).
#[derive(Debug, Clone)]
struct Query {
    filter: String,
    select: Vec<String>,
    order_by: String,
    limit: i64,
    page_size: u32,
}

fn query(grant: &Grant, all_amounts: Vec<String>) -> impl Strategy<Value = Query> + use<> {
    let mut clear: Vec<String> = vec!["bas_yh".into()];
    clear.extend(grant.amounts.iter().cloned());
    let numeric: Vec<String> = grant.amounts.clone();
    let comparison = {
        let numeric = numeric.clone();
        let any_amount = all_amounts.clone();
        prop_oneof![
            proptest::sample::select(QUARTERS.to_vec()).prop_map(|q| format!(r#"bas_yh = "{q}""#)),
            (
                proptest::sample::select(if numeric.is_empty() { any_amount.clone() } else { numeric }),
                0..4_000_000i64
            )
                .prop_map(|(a, t)| format!("{a} >= {t}")),
            (proptest::sample::select(any_amount), 0..4_000_000i64).prop_map(|(a, t)| format!("{a} < {t}")),
        ]
    };
    let filter = prop_oneof![
        Just(String::new()),
        comparison.clone(),
        (comparison.clone(), comparison.clone()).prop_map(|(a, b)| format!("{a} OR NOT ({b})")),
        (comparison.clone(), comparison).prop_map(|(a, b)| format!("({a}) AND {b}")),
    ];
    let mut selectable = clear.clone();
    selectable.push("seq".into());
    let most = selectable.len().min(3);
    let select = prop_oneof![Just(Vec::new()), proptest::sample::subsequence(selectable, 1..=most)];
    let order_by = prop_oneof![
        Just(String::new()),
        (proptest::sample::select(clear), any::<bool>())
            .prop_map(|(c, desc)| format!("{c}{}", if desc { " desc" } else { "" })),
    ];
    (filter, select, order_by, prop_oneof![Just(0i64), 1..300i64], 1..80u32).prop_map(
        |(filter, select, order_by, limit, page_size)| Query { filter, select, order_by, limit, page_size },
    )
}

/// World B for `grant`: the data with every column the consumer does not
/// receive re-drawn, every row outside its scope changed in every column
/// and kept outside it, and the rows loaded in another order.
fn world_b(data: &Data, columns: &ColumnList, grant: &Grant, seed: u64) -> Data {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let scope: Option<Filter> = mesh_filter::parse(&grant.scope, columns).ok();
    let matches = |row: &[String]| scope.as_ref().is_none_or(|s| s.matches(&|i| cell(data, columns, row, i)));
    let mut b = data.clone();
    for (n, row) in b.rows.iter_mut().enumerate() {
        let outside = !matches(row);
        for (name, _) in &columns.0 {
            if !grant.receives(name) {
                row[data.position(name)] = rng.random_range(0..5_000_000u32).to_string();
            }
        }
        if outside {
            for _ in 0..20 {
                let mut changed = row.clone();
                for (name, _) in &columns.0 {
                    let value = match name.as_str() {
                        "bas_yh" => QUARTERS[rng.random_range(0..2)].to_owned(),
                        "seq" => format!("X{n:09}"),
                        _ => rng.random_range(0..5_000_000u32).to_string(),
                    };
                    changed[data.position(name)] = value;
                }
                if !matches(&changed) {
                    *row = changed;
                    break;
                }
            }
        }
    }
    // The load's order is the source's, which may follow what the
    // consumer may not see: world B's rows come in another.
    b.rows.shuffle(&mut rng);
    b
}

/// Starts a payment domain over `data`, enforcing `agreements`, with the
/// mesh pseudonym key `key`.
async fn start_world(backend: Backend, data: &Data, agreements: &[Agreement], key: &[u8]) -> TestDomain {
    let dir = tempfile::tempdir().unwrap();
    let database = common::database_for(backend);
    let url = database.as_ref().map(|d| d.url().to_owned());
    data.write(&dir.path().join("source.csv"));
    let copy = ListAgreementsResponse { agreements: agreements.to_vec(), ..Default::default() };
    mesh_grpc::private_files::write_private(&dir.path().join("agreements.pb"), &copy.encode_to_vec())
        .unwrap();
    mesh_grpc::private_files::write_private(&dir.path().join("pseudonym.key"), key).unwrap();
    let mut domain = common::start_with(dir, move |dir| {
        let mut args = common::with_source(common::args(dir, 0, &nowhere()), &dir.join("source.csv"));
        // A whole read comes in parts over Flight (on SQLite).
        (args.domain.limits.flight_parts, args.domain.limits.flight_part_rows) = (3, 100);
        on_database(args, url.as_deref())
    })
    .await;
    domain.database = database;
    domain
}

/// Everything a consumer gets for one query: the gRPC rows (all, and
/// resumed after the first REST page), the REST pages with their tokens
/// blanked, NDJSON and CSV, the Arrow Flight schema and batches, or the
/// refusals.
async fn answer(domain: &TestDomain, subject: &str, query: &Query) -> Vec<String> {
    let who = credentials(domain.dir.path(), subject, &["analyst"]);
    let mut out = Vec::new();
    let request = QueryRequest {
        filter: query.filter.clone(),
        read_mask: (!query.select.is_empty()).then(|| prost_types::FieldMask { paths: query.select.clone() }),
        order_by: query.order_by.clone(),
        limit: query.limit,
        resume_token: String::new(),
    };
    out.push(grpc(domain, &who, request.clone()).await);
    let (head, page) = rest(domain, &who, query, "application/json", None).await;
    let token = serde_json::from_str::<serde_json::Value>(&page)
        .ok()
        .and_then(|v| v["next_page_token"].as_str().map(str::to_owned))
        .filter(|t| !t.is_empty());
    out.push(format!("{head} {}", blank_token(&page)));
    if let Some(token) = token {
        out.push(grpc(domain, &who, QueryRequest { resume_token: token.clone(), ..request }).await);
        let (head, page) = rest(domain, &who, query, "application/json", Some(&token)).await;
        out.push(format!("{head} {}", blank_token(&page)));
    }
    for accept in ["application/x-ndjson", "text/csv"] {
        let (head, body) = rest(domain, &who, query, accept, None).await;
        out.push(format!("{head} {body}"));
    }
    out.push(flight(domain, &who, query).await);
    out
}

/// A Flight answer: the schema `GetFlightInfo` gives (fields, types and
/// metadata, sorted) and the record batches `DoGet` streams for its
/// ticket, or the refusal.
async fn flight(domain: &TestDomain, who: &Credentials, query: &Query) -> String {
    let mut client = arrow_flight::FlightClient::new(common::connect(domain.addr, who.clone()).await);
    let command = serde_json::json!({
        "product": PRODUCT, "filter": query.filter, "select": query.select,
        "order_by": query.order_by, "limit": query.limit,
    });
    let refused = |e: arrow_flight::error::FlightError| match e {
        arrow_flight::error::FlightError::Tonic(status) => {
            format!("{:?}: {}", status.code(), status.message())
        }
        other => other.to_string(),
    };
    let info = match client.get_flight_info(FlightDescriptor::new_cmd(command.to_string())).await {
        Ok(info) => info,
        Err(e) => return format!("flight refused {}", refused(e)),
    };
    let schema = describe_schema(&info.clone().try_decode_schema().unwrap());
    let mut batches = Vec::new();
    for (part, endpoint) in info.endpoint.iter().enumerate() {
        let mut stream = match client.do_get(endpoint.ticket.clone().unwrap()).await {
            Ok(stream) => stream,
            Err(e) => return format!("flight {schema} refused at DoGet of part {part} {}", refused(e)),
        };
        batches.push(format!("part {part}"));
        while let Some(batch) = futures_util::StreamExt::next(&mut stream).await {
            match batch {
                Ok(batch) => batches.push(format!("{:?}", batch.columns())),
                Err(e) => return format!("flight {schema} cut {}", refused(e)),
            }
        }
    }
    format!("flight ordered {} {schema} batches {batches:?}", info.ordered)
}

/// A schema as text whatever order its metadata maps hold.
fn describe_schema(schema: &arrow_schema::Schema) -> String {
    fn sorted(map: &HashMap<String, String>) -> std::collections::BTreeMap<&String, &String> {
        map.iter().collect()
    }
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{} {} {:?}", f.name(), f.data_type(), sorted(f.metadata())))
        .collect();
    format!("{fields:?} {:?}", sorted(schema.metadata()))
}

async fn grpc(domain: &TestDomain, who: &Credentials, request: QueryRequest) -> String {
    let mut client = CardSpendingServiceClient::new(common::connect(domain.addr, who.clone()).await);
    let response = match client.query(request).await {
        Ok(response) => response,
        Err(status) => return format!("refused {:?}: {}", status.code(), status.message()),
    };
    let withheld = response.metadata().get("mesh-withheld-columns").map(|v| v.to_str().unwrap().to_owned());
    let mut stream = response.into_inner();
    let mut rows: Vec<u8> = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(batch)) => {
                for row in batch.rows {
                    rows.extend(row.encode_length_delimited_to_vec());
                }
            }
            Ok(None) => break,
            Err(status) => return format!("cut {:?}: {}", status.code(), status.message()),
        }
    }
    format!("withheld {withheld:?} rows {rows:?}")
}

/// A REST answer: its status and withheld columns, and its body.
async fn rest(
    domain: &TestDomain,
    who: &Credentials,
    query: &Query,
    accept: &str,
    token: Option<&str>,
) -> (String, String) {
    let mut url = reqwest::Url::parse(&format!("http://{}/v1/products/{PRODUCT}/rows", domain.addr)).unwrap();
    {
        let mut params = url.query_pairs_mut();
        params.append_pair("filter", &query.filter);
        if !query.select.is_empty() {
            params.append_pair("select", &query.select.join(","));
        }
        params.append_pair("order_by", &query.order_by);
        params.append_pair("limit", &query.limit.to_string());
        if accept == "application/json" {
            params.append_pair("page_size", &query.page_size.to_string());
        }
        if let Some(token) = token {
            params.append_pair("page_token", token);
        }
    }
    let header = who.header().unwrap().unwrap();
    let response = reqwest::Client::new()
        .get(url)
        .header("authorization", header.to_str().unwrap())
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let withheld = response.headers().get("mesh-withheld-columns").map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    (format!("{status} withheld {withheld:?}"), body)
}

/// `body` with its page token (sealed with each domain's own secret) blanked.
fn blank_token(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut value) if value.get("next_page_token").is_some() => {
            value["next_page_token"] = serde_json::Value::String("TOKEN".into());
            value.to_string()
        }
        _ => body.to_owned(),
    }
}

/// Cases per backend: each starts two domains.
const CASES: u32 = 12;
/// Queries per case.
const QUERIES: usize = 4;

async fn two_worlds_give_the_same_answer() {
    let backend = common::backend();
    let data = Data::generate(150);
    let columns = product_columns(&data);
    let amounts = amount_names(&columns);
    let key = b"4f1c9a0b6e2d8c7a5b3f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b\n".to_vec();
    let runtime = tokio::runtime::Handle::current();
    let consumer = grant(amounts.clone(), "consumer".into());
    let others = || proptest::collection::vec(grant(amounts.clone(), "other".into()), 2);
    let all = amounts.clone();
    let case = (consumer, others(), others(), any::<u64>()).prop_flat_map(move |(grant, a, b, seed)| {
        let queries = proptest::collection::vec(query(&grant, all.clone()), QUERIES);
        (Just(grant), Just(a), Just(b), Just(seed), queries)
    });
    let config =
        Config { cases: CASES, max_shrink_iters: 64, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let flights_with_rows = std::sync::atomic::AtomicUsize::new(0);
    let flights_in_parts = std::sync::atomic::AtomicUsize::new(0);
    let run_case =
        |(grant, others_a, others_b, seed, queries): (Grant, Vec<Grant>, Vec<Grant>, u64, Vec<Query>)| {
            let agreements = |others: &[Grant]| {
                let mut list = vec![grant.agreement(7)];
                for (i, other) in others.iter().enumerate() {
                    let other = Grant { subject: format!("other-{i}"), ..other.clone() };
                    list.push(other.agreement(100 + i as u32));
                }
                list
            };
            let b = world_b(&data, &columns, &grant, seed);
            runtime.block_on(async {
            let world_a = start_world(backend, &data, &agreements(&others_a), &key).await;
            let world_b = start_world(backend, &b, &agreements(&others_b), &key).await;
            // Every case reads the whole product too: over Flight, in parts.
            let whole = Query {
                filter: String::new(),
                select: vec![],
                order_by: String::new(),
                limit: 0,
                page_size: 40,
            };
            for query in queries.iter().chain([&whole]) {
                let in_a = answer(&world_a, "consumer", query).await;
                let in_b = answer(&world_b, "consumer", query).await;
                if in_a.last().is_some_and(|flight| flight.contains("\"part 0\", \"[")) {
                    flights_with_rows.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if in_a.last().is_some_and(|flight| flight.contains("\"part 1\", \"[")) {
                    flights_in_parts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if in_a != in_b {
                    let first = in_a.iter().zip(&in_b).position(|(a, b)| a != b).unwrap_or(in_a.len());
                    return Err(TestCaseError::fail(format!(
                        "the worlds differ for {query:?} under {grant:?} (answer {first}):\n A: {}\n B: {}",
                        in_a.get(first).map_or("", |s| &s[..s.len().min(600)]),
                        in_b.get(first).map_or("", |s| &s[..s.len().min(600)]),
                    )));
                }
            }
            Ok(())
        })
        };
    let result = tokio::task::block_in_place(|| -> Result<(), String> {
        runner.run(&case, run_case).map_err(|e| e.to_string())?;
        // Random grants may all keep a whole read in one part (raw
        // identifiers, or a scope leaving a part empty): one case surely
        // reads in parts with rows.
        if backend == Backend::Sqlite && flights_in_parts.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            let pseudonyms = Grant {
                subject: "consumer".into(),
                amounts: Vec::new(),
                raw_seq: false,
                scope: String::new(),
            };
            run_case((pseudonyms, Vec::new(), Vec::new(), 7, Vec::new())).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    assert!(flights_with_rows.into_inner() > 0, "no query was answered with rows over Flight");
    if backend == Backend::Sqlite {
        assert!(flights_in_parts.into_inner() > 0, "no whole read came in parts with rows over Flight");
    }
}

/// Spearman's rank correlation of two lists of distinct ranks.
fn rank_correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let mean = (n - 1.0) / 2.0;
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - mean) * (y - mean);
        va += (x - mean) * (x - mean);
        vb += (y - mean) * (y - mean);
    }
    cov / (va.sqrt() * vb.sqrt())
}

async fn pseudonymized_rows_come_in_an_order_that_tells_nothing() {
    let backend = common::backend();
    // One amount made distinct (a shuffled row number), to find each
    // delivered row in the data.
    let mut data = Data::generate(600);
    let marker = data.position("acdm_am");
    let mut numbers: Vec<usize> = (0..data.rows.len()).collect();
    {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        numbers.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(5));
    }
    for (row, number) in data.rows.iter_mut().zip(numbers) {
        row[marker] = number.to_string();
    }
    let columns = product_columns(&data);
    let amounts = amount_names(&columns);
    let key = b"0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c\n".to_vec();
    let consumer = |subject: &str| Grant {
        subject: subject.into(),
        amounts: amounts.clone(),
        raw_seq: false,
        scope: String::new(),
    };
    let world =
        start_world(backend, &data, &[consumer("ana").agreement(1), consumer("bob").agreement(2)], &key)
            .await;
    let seq_at = data.position("seq");
    let real: HashMap<i64, String> =
        data.rows.iter().map(|r| (r[marker].parse::<i64>().unwrap(), r[seq_at].clone())).collect();
    let mut ranks: Vec<String> = data.rows.iter().map(|r| r[seq_at].clone()).collect();
    ranks.sort();
    ranks.dedup();
    let rank_of: HashMap<String, f64> = ranks.into_iter().enumerate().map(|(i, s)| (s, i as f64)).collect();

    let read = |subject: &'static str, order_by: String| {
        let world = &world;
        let real = &real;
        async move {
            let who = credentials(world.dir.path(), subject, &["analyst"]);
            let request = QueryRequest { order_by, ..Default::default() };
            let mut client = CardSpendingServiceClient::new(common::connect(world.addr, who).await);
            let (rows, _): (Vec<CardSpending>, _) = common::query_all(&mut client, request).await.unwrap();
            rows.iter().map(|r| real[&r.acdm_am].clone()).collect::<Vec<String>>()
        }
    };
    // The keyed order is exact: read over REST in pages of 97 rows, each
    // resumed from the last page's token, the rows come as in one stream,
    // none lost or repeated.
    let whole = read("ana", String::new()).await;
    let who = credentials(world.dir.path(), "ana", &["analyst"]);
    let by_pages = Query {
        filter: String::new(),
        select: vec!["acdm_am".to_owned()],
        order_by: String::new(),
        limit: 0,
        page_size: 97,
    };
    let (mut pieces, mut token, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let (head, body) = rest(&world, &who, &by_pages, "application/json", token.as_deref()).await;
        assert!(head.starts_with("200"), "{head}: {body}");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        for row in page["rows"].as_array().unwrap() {
            let marker = match &row["acdm_am"] {
                serde_json::Value::String(text) => text.parse::<i64>().unwrap(),
                number => number.as_i64().unwrap(),
            };
            pieces.push(real[&marker].clone());
        }
        pages += 1;
        token = page["next_page_token"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
        if token.is_none() || pages > 1_000 {
            break;
        }
    }
    assert!(pages > 10, "{pages} pages");
    assert_eq!(pieces, whole, "pages resumed one after another give the one stream's rows in its order");

    let mut orders = vec![String::new(), "bas_yh".to_owned(), "bas_yh desc".to_owned()];
    orders.extend(["tot_use_am", "tot_use_am desc", "auto_am", "hotel_am desc"].map(str::to_owned));
    for order in orders {
        let ana = read("ana", order.clone()).await;
        assert!(ana.len() >= 1_000, "{}", ana.len());
        let positions: Vec<f64> = (0..ana.len()).map(|i| i as f64).collect();
        // Ranks of the real identifiers in delivery order; ties (one customer
        // in two quarters) share a rank, which the correlation tolerates.
        let seq_ranks: Vec<f64> = ana.iter().map(|s| rank_of[s]).collect();
        let rho = rank_correlation(&positions, &seq_ranks);
        assert!(rho.abs() < 0.1, "order `{order}`: position and real identifier correlate ({rho:.3})");
        if order.is_empty() || order.starts_with("bas_yh") {
            let bob = read("bob", order.clone()).await;
            let same = ana.iter().zip(&bob).filter(|(a, b)| a == b).count();
            // By chance: about one per quarter for two random orders.
            assert!(same <= 10, "order `{order}`: {same} positions hold the same customer for ana and bob");
        }
    }
}

/// An analyst's whole read over Flight comes in parts of its keyed order
/// (not ordered among themselves): every row the analyst's `Query` gives,
/// each in exactly one part, the parts of even size.
#[tokio::test(flavor = "multi_thread")]
async fn an_analysts_whole_read_comes_in_keyed_parts_each_row_once() {
    let data = Data::generate(300);
    let consumer = Grant {
        subject: "consumer".into(),
        amounts: vec!["tot_use_am".into()],
        raw_seq: false,
        scope: String::new(),
    };
    let key = b"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\n".to_vec();
    let domain = start_world(Backend::Sqlite, &data, &[consumer.agreement(7)], &key).await;
    let who = credentials(domain.dir.path(), "consumer", &["analyst"]);
    let mut flight = arrow_flight::FlightClient::new(common::connect(domain.addr, who.clone()).await);
    let info = flight.get_flight_info(FlightDescriptor::new_path(vec![PRODUCT.into()])).await.unwrap();
    assert_eq!(info.endpoint.len(), 3, "600 rows in parts of at least 100, at most 3");
    assert!(!info.ordered, "parts of a keyed order are not ordered among themselves");
    let mut got = Vec::new();
    for endpoint in &info.endpoint {
        let stream = flight.do_get(endpoint.ticket.clone().unwrap()).await.unwrap();
        let batches: Vec<_> = futures_util::StreamExt::collect::<Vec<_>>(stream).await;
        let mut part = Vec::new();
        for batch in batches {
            let batch = batch.unwrap();
            let column = |name: &str| batch.column_by_name(name).unwrap().clone();
            let (bas_yh, seq) = (column("bas_yh"), column("seq"));
            let amounts = column("tot_use_am");
            let (bas_yh, seq) = (bas_yh.as_string::<i32>(), seq.as_string::<i32>());
            let amounts = amounts.as_primitive::<arrow_array::types::Int64Type>();
            for i in 0..batch.num_rows() {
                part.push((bas_yh.value(i).to_owned(), seq.value(i).to_owned(), amounts.value(i)));
            }
        }
        assert!((100..=300).contains(&part.len()), "a part of {} rows of 600", part.len());
        got.extend(part);
    }
    let mut query = CardSpendingServiceClient::new(common::connect(domain.addr, who).await);
    let (rows, _) = common::query_all(&mut query, QueryRequest::default()).await.unwrap();
    let mut expected: Vec<_> = rows.into_iter().map(|r| (r.bas_yh, r.seq, r.tot_use_am)).collect();
    assert_eq!(expected.len(), 600);
    assert!(expected.iter().all(|(_, seq, _)| seq.len() == 32), "identifiers come as pseudonyms");
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "every row the analyst may read, each in exactly one part");
}
