//! The product-service convention, checked on services compiled from proto
//! source: what passes, and the message for each way of breaking it.

use mesh_contracts::descriptor::ProductShape;
use prost_reflect::DescriptorPool;

/// Compiles a file holding `body` (after the imports of the shared shapes)
/// and checks `shop.v1.OrdersService`.
fn check(body: &str) -> Result<ProductShape, String> {
    let source = format!(
        "syntax = \"proto3\";\npackage shop.v1;\nimport \"mesh/product/v1/query.proto\";\n\
         message Order {{ string id = 1; int64 amount = 2; }}\n{body}\n"
    );
    ProductShape::find(&compiled(&source), "shop.v1.OrdersService").map_err(|e| e.to_string())
}

/// `source` compiled as `shop.proto` beside the mesh's own files.
fn compiled(source: &str) -> DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop.proto"), source).unwrap();
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let mut compiler = protox::Compiler::new([dir.path().to_path_buf(), proto]).unwrap();
    compiler.include_imports(true);
    compiler.open_file("shop.proto").unwrap();
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap()
}

const RESPONSE: &str = "message QueryResponse { repeated Order rows = 1; string resume_token = 2; }";
const QUERY: &str = "rpc Query(mesh.product.v1.QueryRequest) returns (stream QueryResponse);";
const DESCRIBE: &str =
    "rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse);";

fn service(methods: &str) -> String {
    format!("{RESPONSE}\nservice OrdersService {{ {methods} }}")
}

const PREFIX: &str = "service `shop.v1.OrdersService` does not follow the product convention: ";

#[test]
fn a_service_that_follows_the_convention_is_found_with_its_rows() {
    let shape = check(&service(&format!("{QUERY} {DESCRIBE} rpc Refresh(Order) returns (Order);"))).unwrap();
    assert_eq!(shape.rows_field.name(), "rows");
    assert_eq!(shape.row_type.full_name(), "shop.v1.Order");
    assert_eq!(shape.query.output().full_name(), "shop.v1.QueryResponse");
}

#[test]
fn each_broken_rule_is_named() {
    let cases = [
        (
            service(DESCRIBE),
            "it has no `Query` method (expected `rpc Query(mesh.product.v1.QueryRequest) returns (stream <Row>QueryResponse)`)",
        ),
        (
            service(QUERY),
            "it has no `Describe` method (expected `rpc Describe(mesh.product.v1.DescribeRequest) returns (mesh.product.v1.DescribeResponse)`)",
        ),
        (
            service(&format!("rpc Query(mesh.product.v1.QueryRequest) returns (QueryResponse); {DESCRIBE}")),
            "`Query` must stream its responses (`returns (stream ...)`)",
        ),
        (
            format!(
                "message QueryResponse {{ repeated Order rows = 1; repeated Order more = 2; string resume_token = 3; }}\n\
                 service OrdersService {{ {QUERY} {DESCRIBE} }}"
            ),
            "the `Query` response shop.v1.QueryResponse must have exactly one repeated message field (the rows), it has 2",
        ),
        (
            format!(
                "message QueryResponse {{ repeated Order rows = 1; }}\nservice OrdersService {{ {QUERY} {DESCRIBE} }}"
            ),
            "the `Query` response shop.v1.QueryResponse must have a string field `resume_token`",
        ),
        (
            service(&format!("{QUERY} rpc Describe(Order) returns (mesh.product.v1.DescribeResponse);")),
            "`Describe` takes shop.v1.Order but must take mesh.product.v1.DescribeRequest",
        ),
        (
            service(&format!("{QUERY} rpc Describe(mesh.product.v1.DescribeRequest) returns (Order);")),
            "`Describe` returns shop.v1.Order but must return mesh.product.v1.DescribeResponse",
        ),
        (
            service(&format!(
                "{QUERY} rpc Describe(mesh.product.v1.DescribeRequest) returns (stream mesh.product.v1.DescribeResponse);"
            )),
            "`Describe` must be unary (no streams)",
        ),
    ];
    for (body, problem) in cases {
        assert_eq!(check(&body).unwrap_err(), format!("{PREFIX}{problem}"), "{body}");
    }
}

#[test]
fn every_problem_is_listed_at_once() {
    let body = "message QueryResponse { repeated Order rows = 1; }\n\
                service OrdersService { rpc Query(mesh.product.v1.QueryRequest) returns (QueryResponse); }";
    let error = check(body).unwrap_err();
    assert!(error.contains("must stream its responses"), "{error}");
    assert!(error.contains("`resume_token`"), "{error}");
    assert!(error.contains("no `Describe` method"), "{error}");
}

#[test]
fn a_missing_service_names_the_ones_there() {
    let error = check("service OtherService {}").unwrap_err();
    assert_eq!(
        error,
        "service `shop.v1.OrdersService` is not in the descriptor set (it holds: shop.v1.OtherService)"
    );
    let error = check("").unwrap_err();
    assert_eq!(error, "service `shop.v1.OrdersService` is not in the descriptor set (it holds no services)");
}

#[test]
fn an_identifier_that_cannot_be_pseudonymized_is_refused() {
    let source = format!(
        "syntax = \"proto3\";\npackage shop.v1;\nimport \"mesh/product/v1/query.proto\";\n\
         import \"mesh/product/v1/options.proto\";\n\
         message Order {{ double card_no = 1 [(mesh.product.v1.column) = {{ classification: \
         CLASSIFICATION_PII_IDENTIFIER }}]; int64 amount = 2; }}\n{}\n",
        service(&format!("{QUERY} {DESCRIBE}"))
    );
    let err =
        ProductShape::find(&compiled(&source), "shop.v1.OrdersService").map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{PREFIX}column `card_no` is a PII_IDENTIFIER of type double, which cannot be delivered as a \
             pseudonym; make it a string or a 64-bit integer, or classify it otherwise"
        )
    );
}
