//! A small row type for the runtime's unit tests, with one column of each
//! kind a product table supports.

use prost_reflect::DescriptorPool;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet};

use crate::values::schema::RowSchema;

/// `test.v1.Row`: `name` (string), `amount` (int64), `score` (double),
/// `flag` (bool), `seq` (string), keyed by `seq`, stored in table `t`.
pub(crate) fn schema() -> RowSchema {
    let field = |name: &str, number: i32, kind: Type| FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(kind as i32),
        json_name: Some(name.to_owned()),
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("test/v1/row.proto".to_owned()),
        package: Some("test.v1".to_owned()),
        syntax: Some("proto3".to_owned()),
        message_type: vec![DescriptorProto {
            name: Some("Row".to_owned()),
            field: vec![
                field("name", 1, Type::String),
                field("amount", 2, Type::Int64),
                field("score", 3, Type::Double),
                field("flag", 4, Type::Bool),
                field("seq", 5, Type::String),
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let pool = DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] })
        .expect("the test row type is valid");
    let message = pool.get_message_by_name("test.v1.Row").expect("the test row type exists");
    RowSchema::new("t", message, &["seq"], &["amount"]).expect("the test row type is a table")
}
