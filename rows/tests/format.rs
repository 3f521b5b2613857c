//! The row format against independent implementations: what prost writes,
//! the reader reads (every scalar kind, defaults left out, any field
//! order); what the CSV writer writes, the `csv` crate's reader reads back;
//! what the JSON writers write, serde_json parses to the same values.

use std::ops::ControlFlow;

use proptest::prelude::*;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};

use mesh_rows::{Cell, RowError, RowReader, RowWriter, TextFormat};

/// `test.Row` with one field of each scalar kind (numbers far apart, one
/// beyond the dense table), and `test.Batch { repeated Row rows = 1;
/// string resume_token = 2; }`.
fn pool() -> DescriptorPool {
    let field =
        |name: &str, number: i32, kind: Type, label: Label, type_name: Option<&str>| FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            label: Some(label as i32),
            r#type: Some(kind as i32),
            type_name: type_name.map(Into::into),
            json_name: Some(name.into()),
            ..Default::default()
        };
    let kinds = [
        ("s", 1, Type::String),
        ("i64", 2, Type::Int64),
        ("i32", 3, Type::Int32),
        ("si64", 4, Type::Sint64),
        ("u64", 5, Type::Uint64),
        ("b", 6, Type::Bool),
        ("d", 7, Type::Double),
        ("f", 8, Type::Float),
        ("sf64", 9, Type::Sfixed64),
        ("sf32", 10, Type::Sfixed32),
        ("fx64", 11, Type::Fixed64),
        ("fx32", 12, Type::Fixed32),
        ("far", 5000, Type::Int64),
    ];
    let row = DescriptorProto {
        name: Some("Row".into()),
        field: kinds.iter().map(|(n, num, t)| field(n, *num, *t, Label::Optional, None)).collect(),
        ..Default::default()
    };
    let batch = DescriptorProto {
        name: Some("Batch".into()),
        field: vec![
            field("rows", 1, Type::Message, Label::Repeated, Some(".test.Row")),
            field("resume_token", 2, Type::String, Label::Optional, None),
        ],
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("test.proto".into()),
        package: Some("test".into()),
        syntax: Some("proto3".into()),
        message_type: vec![row, batch],
        ..Default::default()
    };
    DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] }).unwrap()
}

#[derive(Debug, Clone)]
struct Row {
    s: String,
    i64: i64,
    i32: i32,
    si64: i64,
    u64: u64,
    b: bool,
    d: f64,
    f: f32,
    sf64: i64,
    sf32: i32,
    fx64: u64,
    fx32: u32,
    far: i64,
}

fn row() -> impl Strategy<Value = Row> {
    let numbers = (any::<i64>(), any::<i32>(), any::<i64>(), any::<u64>(), any::<bool>());
    let floats = (
        any::<f64>().prop_filter("comparable", |x| !x.is_nan()),
        any::<f32>().prop_filter("comparable", |x| !x.is_nan()),
    );
    let fixed = (any::<i64>(), any::<i32>(), any::<u64>(), any::<u32>(), any::<i64>());
    ("\\PC{0,12}", numbers, floats, fixed).prop_map(
        |(s, (i64, i32, si64, u64, b), (d, f), (sf64, sf32, fx64, fx32, far))| Row {
            s,
            i64,
            i32,
            si64,
            u64,
            b,
            d,
            f,
            sf64,
            sf32,
            fx64,
            fx32,
            far,
        },
    )
}

impl Row {
    fn message(&self, descriptor: &MessageDescriptor) -> DynamicMessage {
        let mut message = DynamicMessage::new(descriptor.clone());
        let values = [
            ("s", Value::String(self.s.clone())),
            ("i64", Value::I64(self.i64)),
            ("i32", Value::I32(self.i32)),
            ("si64", Value::I64(self.si64)),
            ("u64", Value::U64(self.u64)),
            ("b", Value::Bool(self.b)),
            ("d", Value::F64(self.d)),
            ("f", Value::F32(self.f)),
            ("sf64", Value::I64(self.sf64)),
            ("sf32", Value::I32(self.sf32)),
            ("fx64", Value::U64(self.fx64)),
            ("fx32", Value::U32(self.fx32)),
            ("far", Value::I64(self.far)),
        ];
        for (name, value) in values {
            message.set_field_by_name(name, value);
        }
        message
    }

    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            Cell::Text(self.s.as_bytes()),
            Cell::Integer(self.i64),
            Cell::Integer(i64::from(self.i32)),
            Cell::Integer(self.si64),
            Cell::Unsigned(self.u64),
            Cell::Bool(self.b),
            // proto3 leaves out a zero, -0.0 included: the reader gives 0.0.
            Cell::Real(if self.d == 0.0 { 0.0 } else { self.d }),
            Cell::Float(if self.f == 0.0 { 0.0 } else { self.f }),
            Cell::Integer(self.sf64),
            Cell::Integer(i64::from(self.sf32)),
            Cell::Unsigned(self.fx64),
            Cell::Unsigned(u64::from(self.fx32)),
            Cell::Integer(self.far),
        ]
    }
}

proptest! {
    #[test]
    fn what_prost_writes_the_reader_reads(rows in proptest::collection::vec(row(), 0..8), token in "[a-zA-Z0-9]{0,20}") {
        let pool = pool();
        let (row_type, batch_type) = (pool.get_message_by_name("test.Row").unwrap(), pool.get_message_by_name("test.Batch").unwrap());
        let mut batch = DynamicMessage::new(batch_type);
        batch.set_field_by_name("rows", Value::List(rows.iter().map(|r| Value::Message(r.message(&row_type))).collect()));
        batch.set_field_by_name("resume_token", Value::String(token.clone()));
        let bytes = batch.encode_to_vec();
        let columns: Vec<_> = row_type.fields().collect();
        let reader = RowReader::new(1, Some(2), &columns).unwrap();
        let mut seen = Vec::new();
        let read = reader.read(&bytes, |cells| {
            seen.push(cells.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>());
            Ok::<_, RowError>(ControlFlow::Continue(()))
        }).unwrap();
        let expected: Vec<Vec<String>> = rows.iter().map(|r| r.cells().iter().map(|c| format!("{c:?}")).collect()).collect();
        prop_assert_eq!(seen, expected);
        prop_assert!(!read.stopped);
        let expected_token = (!token.is_empty()).then_some(token.as_bytes());
        prop_assert_eq!(read.token, expected_token);

        // Read in another column order, the cells follow it.
        let reversed: Vec<_> = columns.iter().rev().cloned().collect();
        let reader = RowReader::new(1, Some(2), &reversed).unwrap();
        let mut firsts = Vec::new();
        reader.read(&bytes, |cells| {
            firsts.push(format!("{:?}", cells[0]));
            Ok::<_, RowError>(ControlFlow::Break(()))
        }).unwrap();
        prop_assert_eq!(firsts, rows.first().map(|r| format!("{:?}", Cell::Integer(r.far))).into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn csv_written_is_what_a_csv_reader_reads_back(rows in proptest::collection::vec(("\\PC{0,10}|[\",\\r\\n a]{0,6}", any::<i64>(), any::<bool>()), 0..10)) {
        let mut writer = RowWriter::new(TextFormat::Csv, &["text", "number", "flag"]);
        writer.begin().unwrap();
        for (text, number, flag) in &rows {
            writer.row(&[Cell::Text(text.as_bytes()), Cell::Integer(*number), Cell::Bool(*flag)]).unwrap();
        }
        let mut out = Vec::new();
        writer.take(&mut out).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        prop_assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), ["text", "number", "flag"]);
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        prop_assert_eq!(records.len(), rows.len());
        for (record, (text, number, flag)) in records.iter().zip(&rows) {
            prop_assert_eq!(&record[0], text.as_str());
            prop_assert_eq!(record[1].parse::<i64>().unwrap(), *number);
            prop_assert_eq!(record[2].parse::<bool>().unwrap(), *flag);
        }
    }

    #[test]
    fn json_written_parses_to_the_same_values(rows in proptest::collection::vec(("\\PC{0,10}", any::<i64>(), any::<f64>()), 0..6)) {
        for format in [TextFormat::Json, TextFormat::Ndjson, TextFormat::JsonPage] {
            let mut writer = RowWriter::new(format, &["text", "number", "real"]);
            writer.begin().unwrap();
            for (text, number, real) in &rows {
                writer.row(&[Cell::Text(text.as_bytes()), Cell::Integer(*number), Cell::Real(*real)]).unwrap();
            }
            writer.end(b"next");
            let mut out = Vec::new();
            writer.take(&mut out).unwrap();
            let objects: Vec<serde_json::Value> = match format {
                TextFormat::Ndjson => out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect(),
                TextFormat::Json => serde_json::from_slice::<Vec<serde_json::Value>>(&out).unwrap(),
                _ => {
                    let page: serde_json::Value = serde_json::from_slice(&out).unwrap();
                    prop_assert_eq!(&page["next_page_token"], "next");
                    page["rows"].as_array().unwrap().clone()
                }
            };
            prop_assert_eq!(objects.len(), rows.len());
            for (object, (text, number, real)) in objects.iter().zip(&rows) {
                prop_assert_eq!(object["text"].as_str().unwrap(), text.as_str());
                prop_assert_eq!(object["number"].as_i64().unwrap(), *number);
                if real.is_finite() {
                    // serde_json's parser may round the last digit (its
                    // exact mode is a feature the mesh does not enable).
                    let parsed = object["real"].as_f64().unwrap();
                    prop_assert!((parsed - real).abs() <= real.abs() * 1e-15, "{} != {}", parsed, real);
                } else {
                    prop_assert!(object["real"].is_null());
                }
            }
        }
    }
}

#[test]
fn a_record_of_one_empty_field_is_not_a_blank_line() {
    let mut writer = RowWriter::new(TextFormat::Csv, &["name"]);
    writer.begin().unwrap();
    writer.row(&[Cell::Text(b"")]).unwrap();
    let mut out = Vec::new();
    writer.take(&mut out).unwrap();
    assert_eq!(out, b"name\n\"\"\n");
}

#[test]
fn an_empty_array_and_page_are_valid_json() {
    for (format, expected) in
        [(TextFormat::Json, "[]\n"), (TextFormat::JsonPage, "{\"rows\":[],\"next_page_token\":\"\"}\n")]
    {
        let mut writer = RowWriter::new(format, &["a"]);
        writer.begin().unwrap();
        writer.end(b"");
        let mut out = Vec::new();
        writer.take(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

#[test]
fn a_huge_field_number_is_read_without_a_table_that_large() {
    let pool = pool();
    let row_type = pool.get_message_by_name("test.Row").unwrap();
    let far = row_type.get_field_by_name("far").unwrap();
    let reader = RowReader::new(1, None, &[far]).unwrap();
    let mut row = DynamicMessage::new(row_type);
    row.set_field_by_name("far", Value::I64(9));
    let mut batch = Vec::new();
    mesh_rows::wire::put_len_field(&mut batch, 1, &row.encode_to_vec());
    let mut seen = Vec::new();
    reader
        .read(&batch, |cells| {
            seen.push(cells.to_vec());
            Ok::<_, RowError>(ControlFlow::Continue(()))
        })
        .unwrap();
    assert_eq!(seen, [vec![Cell::Integer(9)]]);
}

#[test]
fn a_cut_batch_is_an_error_not_a_panic() {
    let pool = pool();
    let row_type = pool.get_message_by_name("test.Row").unwrap();
    let columns: Vec<_> = row_type.fields().collect();
    let reader = RowReader::new(1, Some(2), &columns).unwrap();
    let mut row = DynamicMessage::new(row_type);
    row.set_field_by_name("s", Value::String("hello".into()));
    let mut batch = Vec::new();
    mesh_rows::wire::put_len_field(&mut batch, 1, &row.encode_to_vec());
    for end in 0..batch.len() {
        let read = reader.read(&batch[..end], |_| Ok::<_, RowError>(ControlFlow::Continue(())));
        assert!(end == 0 || read.is_err(), "{end}");
    }
}
