//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): each
//! parser or decoder of untrusted input, over the payment product's row
//! type. Every input must come back as a value or an error, never a panic.

use std::sync::OnceLock;

use mesh_contracts::product::QueryRequest;
use prost_reflect::DescriptorPool;

use crate::query::resume::ResumeTokens;
use crate::values::schema::RowSchema;

/// The payment row type as a table.
fn schema() -> &'static RowSchema {
    static SCHEMA: OnceLock<RowSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let pool = DescriptorPool::decode(mesh_contracts::FILE_DESCRIPTOR_SET).expect("contracts decode");
        let row = pool.get_message_by_name("woori.payment.v1.CardSpending").expect("the payment row type");
        RowSchema::new("card_spending", row, &["bas_yh", "seq"], &["tot_use_am"]).expect("a table")
    })
}

fn tokens() -> ResumeTokens {
    ResumeTokens::new(b"fuzzing secret".to_vec(), "payment.card_spending")
}

/// Parses and compiles a filter; checks that placeholders and values agree.
pub fn filter(input: &str) {
    if let Ok(compiled) =
        crate::query::filter::compile(input, schema(), crate::query::dialect::Dialect::Sqlite)
    {
        assert_eq!(compiled.sql.matches('?').count(), compiled.params.len());
    }
}

/// Parses an `order_by`.
pub fn order_by(input: &str) {
    let _ = crate::query::plan::order_by(input, schema());
}

/// Plans a query whose read mask holds `paths`.
pub fn read_mask(paths: Vec<String>) {
    let request = QueryRequest { read_mask: Some(prost_types::FieldMask { paths }), ..Default::default() };
    let _ = crate::query::plan::plan(
        &request,
        schema(),
        &tokens(),
        &crate::query::grant::Grant::full(schema()),
        Default::default(),
        None,
    );
}

/// Checks a resume token, then the same bytes signed as a genuine token's
/// payload (so the decoding behind the signature is reached too).
pub fn resume_token(input: &[u8]) {
    let tokens = tokens();
    let request =
        QueryRequest { resume_token: String::from_utf8_lossy(input).into_owned(), ..Default::default() };
    let _ = crate::query::plan::plan(
        &request,
        schema(),
        &tokens,
        &crate::query::grant::Grant::full(schema()),
        Default::default(),
        None,
    );
    let signed = mesh_grpc::SealedTokens::new(b"fuzzing secret".to_vec()).seal(input);
    let _ = crate::query::plan::plan(
        &QueryRequest { resume_token: signed, ..Default::default() },
        schema(),
        &tokens,
        &crate::query::grant::Grant::full(schema()),
        Default::default(),
        None,
    );
}
