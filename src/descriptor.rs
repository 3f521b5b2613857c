//! Reading a product's contract out of its descriptors: the product-service
//! convention, the governance options and the doc comments.
//!
//! The registry, the domains and the CLI all read contracts the same way, so
//! the rules live here once.

use prost_reflect::{
    DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, ServiceDescriptor,
};
use prost_types::FileDescriptorProto;

use crate::product::{Classification, ColumnOptions, ProductOptions};

/// Full name of the service option that carries a product's governance metadata.
pub const PRODUCT_OPTION: &str = "mesh.product.v1.product";
/// Full name of the field option that carries a column's annotations.
pub const COLUMN_OPTION: &str = "mesh.product.v1.column";
/// The request type every product's `Query` takes.
pub const QUERY_REQUEST: &str = "mesh.product.v1.QueryRequest";
/// The request type every product's `Describe` takes.
pub const DESCRIBE_REQUEST: &str = "mesh.product.v1.DescribeRequest";
/// The response type every product's `Describe` returns.
pub const DESCRIBE_RESPONSE: &str = "mesh.product.v1.DescribeResponse";
/// The field of a `Query` response batch that carries the resume token.
pub const RESUME_TOKEN_FIELD: &str = "resume_token";

/// The response header of a product's `Query` naming (comma separated) the
/// columns left out because the caller's agreement does not cover them.
pub const WITHHELD_COLUMNS_HEADER: &str = "mesh-withheld-columns";

/// Why a descriptor set does not describe a product service.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    /// The named service is not in the descriptor set.
    #[error("service `{service}` is not in the descriptor set{}", hint(.available))]
    ServiceNotFound {
        /// The service that was asked for.
        service: String,
        /// The services the set does contain.
        available: Vec<String>,
    },
    /// The service exists but breaks the product-service convention.
    #[error("service `{service}` does not follow the product convention: {}", .problems.join("; "))]
    Convention {
        /// The service that was checked.
        service: String,
        /// Each thing that is missing or wrong.
        problems: Vec<String>,
    },
}

fn hint(available: &[String]) -> String {
    if available.is_empty() {
        " (it holds no services)".to_owned()
    } else {
        format!(" (it holds: {})", available.join(", "))
    }
}

/// A product service that follows the convention, and its row type.
#[derive(Debug, Clone)]
pub struct ProductShape {
    /// The product service.
    pub service: ServiceDescriptor,
    /// Its server-streaming `Query` method.
    pub query: MethodDescriptor,
    /// The repeated field of the `Query` response that carries the rows.
    pub rows_field: FieldDescriptor,
    /// The row message.
    pub row_type: MessageDescriptor,
}

impl ProductShape {
    /// Finds `service_name` in `pool` and checks the product convention:
    /// `Query(QueryRequest) returns (stream R)` where `R` has exactly one
    /// repeated message field and a string `resume_token`, and
    /// `Describe(DescribeRequest) returns (DescribeResponse)`.
    pub fn find(pool: &DescriptorPool, service_name: &str) -> Result<Self, ShapeError> {
        let service = pool.get_service_by_name(service_name).ok_or_else(|| ShapeError::ServiceNotFound {
            service: service_name.to_owned(),
            available: pool.services().map(|s| s.full_name().to_owned()).collect(),
        })?;
        let mut problems = Vec::new();
        let query = service.methods().find(|m| m.name() == "Query");
        let mut rows = None;
        match &query {
            None => problems.push(format!(
                "it has no `Query` method (expected `rpc Query({QUERY_REQUEST}) returns (stream <Row>QueryResponse)`)"
            )),
            Some(query) => rows = check_query(query, &mut problems),
        }
        match service.methods().find(|m| m.name() == "Describe") {
            None => problems.push(format!(
                "it has no `Describe` method (expected `rpc Describe({DESCRIBE_REQUEST}) returns ({DESCRIBE_RESPONSE})`)"
            )),
            Some(describe) => check_describe(&describe, &mut problems),
        }
        if let Some(Kind::Message(row_type)) = rows.as_ref().map(|f| f.kind()) {
            check_identifiers(&row_type, &mut problems);
        }
        match (query, rows) {
            (Some(query), Some(rows_field)) if problems.is_empty() => {
                let Kind::Message(row_type) = rows_field.kind() else {
                    unreachable!("check_query only accepts message fields")
                };
                Ok(Self { service, query, rows_field, row_type })
            }
            _ => Err(ShapeError::Convention { service: service_name.to_owned(), problems }),
        }
    }

    /// The governance options written on the service.
    pub fn options(&self) -> ProductOptions {
        product_options(&self.service)
    }

    /// The catalog entry's fields that come from the contract: service, row
    /// type, options, description (the service's comment) and columns (with
    /// their annotations, or their comments as descriptions).
    pub fn catalog_entry(&self) -> crate::catalog::Product {
        let file = self.row_type.parent_file_descriptor_proto();
        let columns = self
            .row_type
            .fields()
            .map(|field| {
                let options = column_options(&field);
                let description = if options.description.is_empty() {
                    leading_comment(file, field.path())
                } else {
                    options.description.clone()
                };
                crate::catalog::Column {
                    name: field.name().to_owned(),
                    number: field.number() as i32,
                    r#type: type_name(&field),
                    repeated: field.is_list(),
                    description,
                    classification: options.classification,
                    source_column: options.source_column,
                    unit: options.unit,
                }
            })
            .collect();
        crate::catalog::Product {
            service: self.service.full_name().to_owned(),
            row_type: self.row_type.full_name().to_owned(),
            description: leading_comment(self.service.parent_file_descriptor_proto(), self.service.path()),
            columns,
            metadata: Some(self.options()),
            ..Default::default()
        }
    }
}

fn check_query(query: &MethodDescriptor, problems: &mut Vec<String>) -> Option<FieldDescriptor> {
    if query.input().full_name() != QUERY_REQUEST {
        problems.push(format!("`Query` takes {} but must take {QUERY_REQUEST}", query.input().full_name()));
    }
    if query.is_client_streaming() {
        problems.push("`Query` must take a single request, not a stream".to_owned());
    }
    if !query.is_server_streaming() {
        problems.push("`Query` must stream its responses (`returns (stream ...)`)".to_owned());
    }
    let output = query.output();
    let row_fields: Vec<FieldDescriptor> =
        output.fields().filter(|f| f.is_list() && matches!(f.kind(), Kind::Message(_))).collect();
    if row_fields.len() != 1 {
        problems.push(format!(
            "the `Query` response {} must have exactly one repeated message field (the rows), it has {}",
            output.full_name(),
            row_fields.len()
        ));
    }
    let has_token = output
        .get_field_by_name(RESUME_TOKEN_FIELD)
        .is_some_and(|f| f.kind() == Kind::String && !f.is_list());
    if !has_token {
        problems.push(format!(
            "the `Query` response {} must have a string field `{RESUME_TOKEN_FIELD}`",
            output.full_name()
        ));
    }
    row_fields.into_iter().next().filter(|_| has_token)
}

/// Every PII_IDENTIFIER column must be one the domains can deliver as a
/// pseudonym (a string or an integer): any other would go out raw.
fn check_identifiers(row_type: &prost_reflect::MessageDescriptor, problems: &mut Vec<String>) {
    for field in row_type.fields() {
        // A pseudonym of an integer takes 63 bits: a 32-bit field would cut it.
        let pseudonymizable =
            matches!(field.kind(), Kind::String | Kind::Int64 | Kind::Uint64 | Kind::Sint64)
                && !field.is_list();
        if column_options(&field).classification() == Classification::PiiIdentifier && !pseudonymizable {
            problems.push(format!(
                "column `{}` is a PII_IDENTIFIER of type {}, which cannot be delivered as a pseudonym; make it a \
                 string or a 64-bit integer, or classify it otherwise",
                field.name(),
                type_name(&field)
            ));
        }
    }
}

fn check_describe(describe: &MethodDescriptor, problems: &mut Vec<String>) {
    if describe.input().full_name() != DESCRIBE_REQUEST {
        problems.push(format!(
            "`Describe` takes {} but must take {DESCRIBE_REQUEST}",
            describe.input().full_name()
        ));
    }
    if describe.output().full_name() != DESCRIBE_RESPONSE {
        problems.push(format!(
            "`Describe` returns {} but must return {DESCRIBE_RESPONSE}",
            describe.output().full_name()
        ));
    }
    if describe.is_client_streaming() || describe.is_server_streaming() {
        problems.push("`Describe` must be unary (no streams)".to_owned());
    }
}

/// The `(mesh.product.v1.product)` option of a service; empty when absent.
pub fn product_options(service: &ServiceDescriptor) -> ProductOptions {
    extension_value(service.parent_pool(), &service.options(), PRODUCT_OPTION)
}

/// The `(mesh.product.v1.column)` option of a field; empty when absent.
pub fn column_options(field: &FieldDescriptor) -> ColumnOptions {
    extension_value(field.parent_pool(), &field.options(), COLUMN_OPTION)
}

fn extension_value<T: prost::Message + Default>(
    pool: &DescriptorPool,
    options: &prost_reflect::DynamicMessage,
    extension: &str,
) -> T {
    let Some(extension) = pool.get_extension_by_name(extension) else {
        return T::default();
    };
    if !options.has_extension(&extension) {
        return T::default();
    }
    options
        .get_extension(&extension)
        .as_message()
        .and_then(|message| message.transcode_to::<T>().ok())
        .unwrap_or_default()
}

/// The doc comment written above a service, message or field, trimmed;
/// empty when the descriptor carries no source info.
pub fn leading_comment(file: &FileDescriptorProto, path: &[i32]) -> String {
    file.source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|loc| loc.path == path))
        .and_then(|loc| loc.leading_comments.as_deref())
        .map(|comment| comment.lines().map(str::trim).collect::<Vec<_>>().join("\n").trim().to_owned())
        .unwrap_or_default()
}

/// A field's protobuf type as written in a `.proto` file: `int64`,
/// `string`, or the full name of a message or enum.
pub fn type_name(field: &FieldDescriptor) -> String {
    match field.kind() {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(message) => message.full_name().to_owned(),
        Kind::Enum(enumeration) => enumeration.full_name().to_owned(),
    }
}

/// The encoded `FileDescriptorSet` of the file defining `service` and every
/// file it imports (dependencies first), custom options kept. Unrelated files
/// of the pool are left out, so the set changes only when the product's own
/// contract does.
pub fn service_descriptor_set(service: &ServiceDescriptor) -> Vec<u8> {
    fn visit(
        file: prost_reflect::FileDescriptor,
        seen: &mut std::collections::HashSet<String>,
        out: &mut Vec<Vec<u8>>,
    ) {
        if !seen.insert(file.name().to_owned()) {
            return;
        }
        for dependency in file.dependencies() {
            visit(dependency, seen, out);
        }
        out.push(file.encode_to_vec());
    }
    let mut files = Vec::new();
    visit(service.parent_file(), &mut Default::default(), &mut files);
    let set = RawFileDescriptorSet { file: files };
    prost::Message::encode_to_vec(&set)
}

/// A `FileDescriptorSet` whose files stay encoded, so no option is lost.
#[derive(Clone, PartialEq, prost::Message)]
struct RawFileDescriptorSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file: Vec<Vec<u8>>,
}
