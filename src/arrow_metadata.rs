//! The Arrow metadata keys a product's Flight schema carries: the
//! contract's column options on each field, and on the schema the product
//! and the columns the caller's agreement left out.

/// What the column means (the contract's description).
pub const DESCRIPTION: &str = "mesh.description";
/// How sensitive it is, e.g. `CLASSIFICATION_PII_IDENTIFIER`.
pub const CLASSIFICATION: &str = "mesh.classification";
/// The unit of a measure, e.g. `KRW`.
pub const UNIT: &str = "mesh.unit";
/// `true` when the caller receives the column's values as pseudonyms.
pub const PSEUDONYMIZED: &str = "mesh.pseudonymized";
/// Schema metadata: the product read.
pub const PRODUCT: &str = "mesh.product";
/// Schema metadata: columns left out because the grant does not cover
/// them, comma separated.
pub const WITHHELD_COLUMNS: &str = "mesh.withheld_columns";
