//! What differs between the SQL of the two backends: placeholders, the
//! prefix match and column types. Everything else the query compiler emits
//! (row value comparisons, `ORDER BY`, `LIMIT`) both understand alike, and
//! text compares by bytes on both (SQLite's default, `COLLATE "C"` on
//! PostgreSQL), so a sort key — and so a resume token — means the same on
//! either.

use crate::values::Value;

use crate::values::schema::{ColumnKind, RowSchema};

/// The SQL dialect of a domain's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The embedded SQLite file.
    #[default]
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Dialect {
    /// The condition "`column` starts with `prefix`" (or does not, when
    /// `negate`), appending its bound values to `params`.
    pub(crate) fn prefix_match(
        self,
        column: &str,
        prefix: &str,
        negate: bool,
        params: &mut Vec<Value>,
    ) -> String {
        let not = if negate { "NOT " } else { "" };
        match self {
            // SQLite's LIKE ignores ASCII case; substr compares exactly.
            Self::Sqlite => {
                params.push(Value::Integer(prefix.chars().count() as i64));
                params.push(Value::Text(prefix.to_owned()));
                format!("{not}substr({column}, 1, ?) = ?")
            }
            // LIKE is exact under COLLATE "C" and can use the column's index.
            Self::Postgres => {
                let mut pattern = String::with_capacity(prefix.len() + 1);
                for c in prefix.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        pattern.push('\\');
                    }
                    pattern.push(c);
                }
                pattern.push('%');
                params.push(Value::Text(pattern));
                format!("{not}{column} LIKE ? ESCAPE '\\'")
            }
        }
    }

    /// `sql` with its `?` placeholders as this dialect writes them: on
    /// PostgreSQL numbered and typed by the value bound (`$2::int8`), so an
    /// integer column compared with a fraction compares as numbers, as in
    /// SQLite. The compiler writes no `?` but placeholders (names are
    /// identifiers and every value is bound).
    pub(crate) fn placeholders(self, sql: &str, params: &[Value]) -> String {
        if self == Self::Sqlite {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len() + params.len() * 8);
        let mut values = params.iter();
        for (i, piece) in sql.split('?').enumerate() {
            if i > 0 {
                let cast = match values.next() {
                    Some(Value::Integer(_)) => "int8",
                    Some(Value::Real(_)) => "float8",
                    Some(Value::Blob(_)) => "bytea",
                    _ => "text",
                };
                out.push_str(&format!("${i}::{cast}"));
            }
            out.push_str(piece);
        }
        out
    }

    /// An expression ordering rows by a keyed hash of `column` (of
    /// `kind`), the key bound to its one placeholder: the first 63 bits of
    /// SHA-256(key || the value's text in UTF-8), the same on both
    /// backends (SQLite computes it with `mesh_order`, registered on every
    /// scan connection; PostgreSQL with its own `sha256`).
    pub(crate) fn keyed_order(self, column: &str, kind: ColumnKind) -> String {
        match self {
            Self::Sqlite => format!("mesh_order(?, {column})"),
            Self::Postgres => {
                let text =
                    if kind == ColumnKind::String { column.to_owned() } else { format!("{column}::text") };
                format!(
                    "(('x' || encode(substring(sha256(? || convert_to({text}, 'UTF8')) FROM 1 FOR 8), 'hex'))\
                     ::bit(64)::bigint & 9223372036854775807)"
                )
            }
        }
    }

    /// The rows of `table` with rowid and the computed columns `extra`
    /// beside its own, as a source a statement can filter and sort by name.
    pub(crate) fn rows_with(self, table: &str, extra: &str) -> String {
        match self {
            Self::Sqlite => format!("(SELECT rowid AS rowid, *, {extra} FROM {table})"),
            Self::Postgres => format!("(SELECT *, {extra} FROM {table}) AS mesh_rows"),
        }
    }

    /// `CREATE TABLE` for `schema`'s rows named `table` and the index on the key,
    /// idempotent. PostgreSQL has no rowid: its tables get a `rowid` column
    /// numbered by the load, the last column of the key index, so the sort
    /// key (and a resume token) is the same on both.
    pub fn create_table(self, schema: &RowSchema, table: &str) -> String {
        let mut columns: Vec<String> = schema
            .columns
            .iter()
            .map(|c| format!("{} {} NOT NULL", c.name, self.column_type(c.kind)))
            .collect();
        let mut key: Vec<&str> = schema.key.iter().map(|&i| schema.columns[i].name.as_str()).collect();
        if self == Dialect::Postgres {
            columns.push("rowid BIGINT NOT NULL".into());
            key.push("rowid");
        }
        format!(
            "CREATE TABLE IF NOT EXISTS {table} ({columns});\n\
             CREATE INDEX IF NOT EXISTS {table}_by_key ON {table} ({key});",
            columns = columns.join(", "),
            key = key.join(", ")
        )
    }

    /// The column type of a value of `kind`.
    pub(crate) fn column_type(self, kind: ColumnKind) -> &'static str {
        match (self, kind) {
            (Self::Sqlite, ColumnKind::String) => "TEXT",
            (Self::Sqlite, ColumnKind::Integer | ColumnKind::Bool) => "INTEGER",
            (Self::Sqlite, ColumnKind::Real) => "REAL",
            (Self::Postgres, ColumnKind::String) => "TEXT COLLATE \"C\"",
            (Self::Postgres, ColumnKind::Integer | ColumnKind::Bool) => "BIGINT",
            (Self::Postgres, ColumnKind::Real) => "DOUBLE PRECISION",
        }
    }
}

/// A row's place in a consumer's order: the first 63 bits of
/// SHA-256(`key` || `value`), `value` being the identifier's text in UTF-8,
/// as [`Dialect::keyed_order`] writes it in SQL (SQLite calls this through
/// its `mesh_order` function).
pub(crate) fn keyed_order(key: &[u8], value: &[u8]) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(key).chain_update(value).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) & i64::MAX as u64) as i64
}

#[cfg(test)]
mod tests {
    use crate::values::Value::{Integer, Real, Text};

    use super::*;
    use crate::values::test_schema::schema;

    #[test]
    fn the_table_is_created_with_its_key_and_postgres_numbers_its_rows() {
        assert_eq!(
            Dialect::Sqlite.create_table(&schema(), "t"),
            "CREATE TABLE IF NOT EXISTS t (name TEXT NOT NULL, amount INTEGER NOT NULL, score REAL NOT NULL, \
             flag INTEGER NOT NULL, seq TEXT NOT NULL);\nCREATE INDEX IF NOT EXISTS t_by_key ON t (seq);"
        );
        let postgres = Dialect::Postgres.create_table(&schema(), "t_1");
        assert!(postgres.contains("rowid BIGINT NOT NULL);"), "{postgres}");
        assert!(postgres.ends_with("ON t_1 (seq, rowid);"), "{postgres}");
    }

    #[test]
    fn the_keyed_order_is_a_non_negative_function_of_key_and_value() {
        let (a, b) = (keyed_order(b"k1", b"0000000001"), keyed_order(b"k2", b"0000000001"));
        assert!(a >= 0 && b >= 0);
        assert_eq!(a, keyed_order(b"k1", b"0000000001"));
        assert_ne!(a, b, "another consumer's key, another order");
        assert_ne!(a, keyed_order(b"k1", b"0000000002"));
    }

    #[test]
    fn postgres_placeholders_are_numbered_and_typed_by_their_values() {
        let sql = "(a > ?) AND (b, rowid) > (?, ?) AND c IN (?)";
        let params = [Real(1.5), Text("x".into()), Integer(3), Integer(4)];
        assert_eq!(Dialect::Sqlite.placeholders(sql, &params), sql);
        assert_eq!(
            Dialect::Postgres.placeholders(sql, &params),
            "(a > $1::float8) AND (b, rowid) > ($2::text, $3::int8) AND c IN ($4::int8)"
        );
    }

    #[test]
    fn a_postgres_prefix_match_escapes_the_pattern_characters() {
        let mut params = Vec::new();
        let sql = Dialect::Postgres.prefix_match("name", "50%_a\\b", true, &mut params);
        assert_eq!(sql, "NOT name LIKE ? ESCAPE '\\'");
        assert_eq!(params, [Text("50\\%\\_a\\\\b%".into())]);
        let mut params = Vec::new();
        assert_eq!(
            Dialect::Sqlite.prefix_match("name", "서울", false, &mut params),
            "substr(name, 1, ?) = ?"
        );
        assert_eq!(params, [Integer(2), Text("서울".into())]);
    }
}
