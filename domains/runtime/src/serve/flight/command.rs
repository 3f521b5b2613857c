//! What a Flight descriptor asks a domain for: a product, by path
//! (`["payment.card_spending"]`: every row and column the caller may read),
//! or a product and a query as a JSON command, in the mesh's filter
//! language and with the names `mesh query` and REST use:
//!
//! ```json
//! {"product": "payment.card_spending", "filter": "bas_yh = \"2024Q1\"",
//!  "select": ["seq", "tot_use_am"], "order_by": "tot_use_am desc", "limit": 100}
//! ```

use arrow_flight::FlightDescriptor;
use arrow_flight::flight_descriptor::DescriptorType;
use mesh_contracts::product::QueryRequest;
use serde::Deserialize;
use tonic::Status;

/// Most bytes a command may have: a query's filter is bounded far below.
pub(crate) const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// Most bytes of a product id.
const MAX_PRODUCT_BYTES: usize = 256;
/// Most columns a command may select.
const MAX_SELECTED: usize = 1024;

/// An example command, for error messages.
const EXAMPLE: &str = r#"{"product": "payment.card_spending", "filter": "bas_yh = \"2024Q1\"", "select": ["seq", "tot_use_am"], "limit": 100}"#;

/// A product and the query asked of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Asked {
    /// The product's id.
    pub product: String,
    /// The query (no resume token).
    pub query: QueryRequest,
}

/// The JSON command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Command {
    product: String,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    select: Option<Select>,
    #[serde(default)]
    order_by: String,
    #[serde(default)]
    limit: i64,
}

/// Columns as a list, or comma separated as REST takes them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Select {
    List(Vec<String>),
    Text(String),
}

/// Reads `descriptor`; a descriptor that asks nothing readable is an
/// INVALID_ARGUMENT naming the part and showing what to send.
pub(crate) fn asked(descriptor: &FlightDescriptor) -> Result<Asked, Status> {
    let asked = read(descriptor)?;
    if asked.product.len() > MAX_PRODUCT_BYTES {
        return Err(Status::invalid_argument(format!(
            "descriptor: a product id has at most {MAX_PRODUCT_BYTES} bytes, e.g. payment.card_spending"
        )));
    }
    if asked.query.read_mask.as_ref().is_some_and(|m| m.paths.len() > MAX_SELECTED) {
        return Err(Status::invalid_argument(format!(
            "descriptor.cmd: select names at most {MAX_SELECTED} columns; leave it out for every column"
        )));
    }
    Ok(asked)
}

fn read(descriptor: &FlightDescriptor) -> Result<Asked, Status> {
    match DescriptorType::try_from(descriptor.r#type) {
        Ok(DescriptorType::Path) => match descriptor.path.as_slice() {
            [product] => Ok(Asked { product: product.clone(), query: QueryRequest::default() }),
            _ => Err(Status::invalid_argument(format!(
                "descriptor.path: give one element, the product id (e.g. [\"payment.card_spending\"]), not {}; \
                 or send a command: {EXAMPLE}",
                descriptor.path.len()
            ))),
        },
        Ok(DescriptorType::Cmd) if descriptor.cmd.len() > MAX_COMMAND_BYTES => {
            Err(Status::invalid_argument(format!(
                "descriptor.cmd: {} bytes is over the limit of {MAX_COMMAND_BYTES}",
                descriptor.cmd.len()
            )))
        }
        Ok(DescriptorType::Cmd) => {
            let command: Command = serde_json::from_slice(&descriptor.cmd).map_err(|e| {
                Status::invalid_argument(format!("descriptor.cmd: {e}; send a JSON object such as {EXAMPLE}"))
            })?;
            let paths = match command.select {
                None => Vec::new(),
                Some(Select::List(paths)) => paths,
                Some(Select::Text(text)) => text.split(',').map(|p| p.trim().to_owned()).collect(),
            };
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err(Status::invalid_argument(
                    "descriptor.cmd: select holds an empty column name; list columns, e.g. \"select\": \
                     [\"seq\", \"tot_use_am\"]",
                ));
            }
            let query = QueryRequest {
                filter: command.filter,
                read_mask: (!paths.is_empty()).then_some(prost_types::FieldMask { paths }),
                order_by: command.order_by,
                limit: command.limit,
                resume_token: String::new(),
            };
            Ok(Asked { product: command.product, query })
        }
        _ => {
            Err(Status::invalid_argument(format!("descriptor.type: give PATH [product id] or CMD {EXAMPLE}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(json: &str) -> Result<Asked, Status> {
        asked(&FlightDescriptor::new_cmd(json.to_owned()))
    }

    #[test]
    fn a_path_names_the_whole_product_and_a_command_its_query() {
        let whole = asked(&FlightDescriptor::new_path(vec!["payment.card_spending".into()])).unwrap();
        assert_eq!(whole, Asked { product: "payment.card_spending".into(), query: QueryRequest::default() });
        let asked = command(
            r#"{"product": "p.q", "filter": "a > 1", "select": "a, b", "order_by": "a desc", "limit": 5}"#,
        )
        .unwrap();
        assert_eq!(asked.product, "p.q");
        assert_eq!(asked.query.filter, "a > 1");
        assert_eq!(asked.query.read_mask.unwrap().paths, ["a", "b"]);
        assert_eq!((asked.query.order_by.as_str(), asked.query.limit), ("a desc", 5));
        let listed = command(r#"{"product": "p.q", "select": ["a"]}"#).unwrap();
        assert_eq!(listed.query.read_mask.unwrap().paths, ["a"]);
    }

    #[test]
    fn a_descriptor_asking_nothing_readable_names_what_is_wrong() {
        let message = |r: Result<Asked, Status>| r.unwrap_err().message().to_owned();
        let garbled = message(command("[1, 2"));
        assert!(garbled.starts_with("descriptor.cmd: ") && garbled.contains("line 1 column"), "{garbled}");
        assert!(garbled.ends_with(EXAMPLE), "{garbled}");
        assert!(message(command(r#"{"product": "p.q", "colums": []}"#)).contains("unknown field `colums`"));
        assert!(message(command(r#"{"filter": "a > 1"}"#)).contains("missing field `product`"));
        assert!(message(command(r#"{"product": "p.q", "select": "a,,b"}"#)).contains("empty column name"));
        assert!(message(asked(&FlightDescriptor::new_path(vec![]))).starts_with("descriptor.path: give one"));
        let unknown = FlightDescriptor { r#type: 0, ..Default::default() };
        assert!(message(asked(&unknown)).starts_with("descriptor.type"));
        let huge = format!(r#"{{"product": "p.q", "filter": "{}"}}"#, "x".repeat(MAX_COMMAND_BYTES));
        assert!(message(command(&huge)).contains("over the limit of 65536"));
        let long = "p.".to_owned() + &"q".repeat(MAX_PRODUCT_BYTES);
        assert!(message(asked(&FlightDescriptor::new_path(vec![long]))).contains("at most 256 bytes"));
        let many = serde_json::json!({"product": "p.q", "select": vec!["a"; MAX_SELECTED + 1]}).to_string();
        assert!(message(command(&many)).contains("at most 1024 columns"));
    }
}
