//! A product's row type as a table: its columns and their kinds, key and
//! amounts, derived from the row message's descriptor (each dialect writes
//! the table's DDL: `query/dialect.rs`).

use mesh_contracts::descriptor::column_options;
use mesh_contracts::product::Classification;
use prost_reflect::{Kind, MessageDescriptor};

use crate::error::{DomainError, Result};

/// The value kinds a row column may have (the filter language's own).
pub use mesh_filter::Kind as ColumnKind;

/// One column of a product table: a field of the row message.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Field and SQL column name, e.g. `tot_use_am`.
    pub name: String,
    /// The protobuf field number.
    pub number: u32,
    /// The protobuf wire type detail needed to encode it.
    pub kind: ColumnKind,
    /// Whether the protobuf field is signed 32-bit (encoded sign-extended,
    /// like int64) or zig-zag (`sint*`).
    pub zigzag: bool,
    /// Whether the field is `float` (4 bytes) rather than `double`.
    pub float32: bool,
    /// The source column name from the contract, e.g. `TOT_USE_AM`.
    pub source_column: String,
    /// The unit from the contract, e.g. `KRW`.
    pub unit: String,
    /// What the column means, from the contract.
    pub description: String,
    /// Whether the product's spec lists this column as an amount, which is
    /// never negative.
    pub amount: bool,
    /// How sensitive the column is, from the contract: what the access
    /// rules grant depends on it.
    pub classification: Classification,
}

/// A product's row type as a table.
#[derive(Debug, Clone)]
pub struct RowSchema {
    /// The table name in the domain's database (SQLite or PostgreSQL).
    pub table: String,
    /// The row message.
    pub message: MessageDescriptor,
    /// The columns in field order.
    pub columns: Vec<ColumnDef>,
    /// The columns that identify a row and give the natural order.
    pub key: Vec<usize>,
}

impl RowSchema {
    /// The schema of `message` stored in `table`, ordered naturally by
    /// `key`; the fields named in `amounts` (compared without case) hold
    /// amounts, which are never negative.
    pub fn new(
        table: &str,
        message: MessageDescriptor,
        key: &[impl AsRef<str>],
        amounts: &[impl AsRef<str>],
    ) -> Result<Self> {
        if !is_table_name(table) {
            return Err(DomainError::Schema(format!(
                "table name `{table}` is not allowed: use lower-case letters, digits and _, \
                 starting with a letter, at most 48 characters, not starting with `mesh_` (the \
                 domain's own bookkeeping)"
            )));
        }
        let amounts: Vec<&str> = amounts.iter().map(AsRef::as_ref).collect();
        if let Some(unknown) =
            amounts.iter().find(|a| message.fields().all(|f| !f.name().eq_ignore_ascii_case(a)))
        {
            return Err(DomainError::Schema(format!(
                "amount column `{unknown}` is not a field of {}",
                message.full_name()
            )));
        }
        let mut columns = Vec::new();
        for field in message.fields() {
            if field.is_list() || field.is_map() {
                return Err(DomainError::Schema(format!(
                    "field `{}` of {} is repeated; product rows must be flat",
                    field.name(),
                    message.full_name()
                )));
            }
            let (kind, zigzag, float32) = match field.kind() {
                Kind::String => (ColumnKind::String, false, false),
                Kind::Int64 | Kind::Int32 | Kind::Uint32 | Kind::Uint64 => {
                    (ColumnKind::Integer, false, false)
                }
                Kind::Sint64 | Kind::Sint32 => (ColumnKind::Integer, true, false),
                Kind::Double => (ColumnKind::Real, false, false),
                Kind::Float => (ColumnKind::Real, false, true),
                Kind::Bool => (ColumnKind::Bool, false, false),
                other => {
                    return Err(DomainError::Schema(format!(
                        "field `{}` of {} has type {other:?}, which product tables do not support",
                        field.name(),
                        message.full_name()
                    )));
                }
            };
            let options = column_options(&field);
            let classification = options.classification();
            columns.push(ColumnDef {
                name: field.name().to_owned(),
                number: field.number(),
                kind,
                zigzag,
                float32,
                source_column: options.source_column,
                unit: options.unit,
                description: options.description,
                amount: amounts.iter().any(|a| field.name().eq_ignore_ascii_case(a)),
                classification,
            });
        }
        let key = key
            .iter()
            .map(|name| {
                let name = name.as_ref();
                columns.iter().position(|c| c.name == *name).ok_or_else(|| {
                    DomainError::Schema(format!(
                        "key column `{name}` is not a field of {}",
                        message.full_name()
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { table: table.to_owned(), message, columns, key })
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<(usize, &ColumnDef)> {
        self.columns.iter().enumerate().find(|(_, c)| c.name == name)
    }

    /// The column names, comma separated, for error messages.
    pub fn field_list(&self) -> String {
        self.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// `CREATE INDEX` statements for extra single-column indexes.
    pub fn index_sql(&self, indexed: &[String]) -> String {
        self.indexes_sql(&self.table, indexed)
    }

    /// `CREATE INDEX` statements for extra single-column indexes of `table`.
    pub(crate) fn indexes_sql(&self, table: &str, indexed: &[String]) -> String {
        indexed
            .iter()
            .map(|column| format!("CREATE INDEX IF NOT EXISTS {table}_by_{column} ON {table} ({column});\n"))
            .collect()
    }
}

/// Whether `name` may name a table: lower-case letters, digits and `_`,
/// starting with a letter, short enough for PostgreSQL's generation
/// suffixes and index names, and not one of the store's own (`mesh_*`).
fn is_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 48
        && !name.starts_with("mesh_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::test_schema::schema;

    #[test]
    fn columns_follow_the_row_message_with_their_kinds() {
        let schema = schema();
        let kinds: Vec<(&str, ColumnKind, bool)> =
            schema.columns.iter().map(|c| (c.name.as_str(), c.kind, c.amount)).collect();
        assert_eq!(
            kinds,
            [
                ("name", ColumnKind::String, false),
                ("amount", ColumnKind::Integer, true),
                ("score", ColumnKind::Real, false),
                ("flag", ColumnKind::Bool, false),
                ("seq", ColumnKind::String, false),
            ]
        );
        assert_eq!(schema.key, [4]);
        assert_eq!(schema.column("score").map(|(i, _)| i), Some(2));
        assert!(schema.column("nope").is_none());
        assert_eq!(schema.field_list(), "name, amount, score, flag, seq");
    }

    #[test]
    fn extra_indexes_are_created_one_column_each() {
        let schema = schema();
        assert_eq!(
            schema.index_sql(&["name".to_owned()]),
            "CREATE INDEX IF NOT EXISTS t_by_name ON t (name);\n"
        );
    }

    #[test]
    fn a_key_or_amount_that_is_not_a_field_is_refused() {
        let message = schema().message;
        let err = RowSchema::new("t", message.clone(), &["missing"], &[] as &[&str]).unwrap_err().to_string();
        assert_eq!(err, "product schema: key column `missing` is not a field of test.v1.Row");
        let err = RowSchema::new("t", message.clone(), &["seq"], &["cost"]).unwrap_err().to_string();
        assert_eq!(err, "product schema: amount column `cost` is not a field of test.v1.Row");
        // Amount names are matched without case, as the file's layout writes them.
        let upper = RowSchema::new("t", message, &["seq"], &["AMOUNT"]).unwrap();
        assert!(upper.columns[1].amount);
    }

    #[test]
    fn a_table_is_a_plain_name_of_its_own() {
        let message = schema().message;
        for bad in ["mesh_meta", "Shops", "1shops", "shops; DROP TABLE x", "", &"t".repeat(49)] {
            let err = RowSchema::new(bad, message.clone(), &["seq"], &[] as &[&str]).unwrap_err().to_string();
            assert!(err.contains("is not allowed"), "{bad}: {err}");
        }
        assert!(RowSchema::new("shop_sales_2", message, &["seq"], &[] as &[&str]).is_ok());
    }
}
