//! Sort keys as bytes: each row's sort columns written so that comparing
//! the bytes compares the rows as SQLite's `ORDER BY` does (NULL first,
//! integers and reals by their numeric value, text by its bytes), each
//! column inverted when it descends. Resuming a sorted stream relies on
//! this: the resume condition is SQL, so the order must be SQLite's.

use crate::values::cell::Cell;

const NULL: u8 = 0x01;
const NUMBER: u8 = 0x02;
const TEXT: u8 = 0x03;

/// Appends the key bytes of `cell`, inverted when `descending`.
pub(super) fn put(key: &mut Vec<u8>, cell: Cell<'_>, descending: bool) {
    let start = key.len();
    match cell {
        Cell::Null => key.push(NULL),
        Cell::Integer(n) => put_number(key, n as f64, i128::from(n)),
        Cell::Unsigned(n) => put_number(key, n as f64, i128::from(n)),
        Cell::Bool(b) => put_number(key, f64::from(u8::from(b)), i128::from(b)),
        Cell::Float(x) => put_number(key, if x == 0.0 { 0.0 } else { f64::from(x) }, x as i128),
        // -0.0 and 0.0 are one value to SQLite.
        Cell::Real(x) => put_number(key, if x == 0.0 { 0.0 } else { x }, x as i128),
        Cell::Text(text) => {
            key.push(TEXT);
            // 0x00 is escaped so that the terminator sorts below any byte:
            // a text sorts before every longer text it begins.
            for &byte in text {
                key.push(byte);
                if byte == 0 {
                    key.push(0xFF);
                }
            }
            key.extend_from_slice(&[0, 0]);
        }
    }
    if descending {
        for byte in &mut key[start..] {
            *byte = !*byte;
        }
    }
}

/// A number as its value rounded to a float (an order-preserving image of
/// the IEEE bits), then its integer part exact: the float decides unless
/// an integer and a real round to the same float, when both are integral
/// and the exact part decides as SQLite does.
fn put_number(key: &mut Vec<u8>, rounded: f64, exact: i128) {
    key.push(NUMBER);
    let bits = rounded.to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | 1 << 63 };
    key.extend_from_slice(&ordered.to_be_bytes());
    key.extend_from_slice(&((exact as u128) ^ 1 << 127).to_be_bytes());
}

/// The first 16 bytes of `key` as a number that orders as the bytes do
/// (zero-padded): most comparisons end here.
pub(super) fn prefix(key: &[u8]) -> u128 {
    let mut first = [0u8; 16];
    let n = key.len().min(16);
    first[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rusqlite::types::Value;

    use super::*;

    fn cell(value: &Value) -> Cell<'_> {
        match value {
            Value::Integer(n) => Cell::Integer(*n),
            Value::Real(x) => Cell::Real(*x),
            Value::Text(t) => Cell::Text(t.as_bytes()),
            _ => Cell::Null,
        }
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Integer),
            (-3i64..3).prop_map(Value::Integer),
            prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(1 << 53), Just((1 << 53) + 1)]
                .prop_map(Value::Integer),
            any::<f64>().prop_filter("SQLite stores NaN as NULL", |x| !x.is_nan()).prop_map(Value::Real),
            prop_oneof![Just(-0.0), Just(0.5), Just(9.223_372_036_854_776e18), Just(9_007_199_254_740_992.0)]
                .prop_map(Value::Real),
            "[a\\x00\u{e9}]{0,3}".prop_map(Value::Text),
        ]
    }

    proptest! {
        /// Rows of two columns, the second descending, sorted by their key
        /// bytes come out in the order SQLite's ORDER BY gives them.
        #[test]
        fn key_bytes_sort_as_sqlite_orders(rows in prop::collection::vec((value(), value()), 1..40)) {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            conn.execute_batch("CREATE TABLE t (id INTEGER, a, b)").unwrap();
            for (id, (a, b)) in rows.iter().enumerate() {
                conn.execute("INSERT INTO t VALUES (?, ?, ?)", rusqlite::params![id as i64, a, b]).unwrap();
            }
            let mut statement = conn.prepare("SELECT id FROM t ORDER BY a, b DESC, id").unwrap();
            let by_sqlite: Vec<i64> = statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();

            let mut keyed: Vec<(Vec<u8>, i64)> = rows.iter().enumerate().map(|(id, (a, b))| {
                let mut key = Vec::new();
                put(&mut key, cell(a), false);
                put(&mut key, cell(b), true);
                put(&mut key, Cell::Integer(id as i64), false);
                (key, id as i64)
            }).collect();
            keyed.sort_by(|x, y| (prefix(&x.0), &x.0).cmp(&(prefix(&y.0), &y.0)));
            let by_key: Vec<i64> = keyed.into_iter().map(|(_, id)| id).collect();
            prop_assert_eq!(by_key, by_sqlite);
        }
    }
}
