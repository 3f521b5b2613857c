//! The catalog's events as CloudEvents 1.0 in JSON (structured content
//! mode): what `mesh watch` prints, the registry's pull feed and webhooks
//! send. The event's sequence number travels as the extension attribute
//! `sequence` (a string, as the CloudEvents sequence extension defines it),
//! and `data` is the event's JSON object itself, not a string.

use serde_json::{Map, Value, json};

use crate::catalog::Event;

/// The `source` of every event the catalog writes.
pub const SOURCE: &str = "urn:mesh:catalog";

/// `event` as a CloudEvents JSON object.
pub fn to_json(event: &Event) -> Value {
    let time = event.time.as_ref().map(crate::time::ms).unwrap_or_default();
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(time).unwrap_or(0));
    // Data the registry wrote is a JSON object; anything else goes as text.
    let data =
        serde_json::from_str::<Value>(&event.data).unwrap_or_else(|_| Value::String(event.data.clone()));
    let mut out = Map::new();
    for (key, value) in [
        ("specversion", json!("1.0")),
        ("id", json!(event.id)),
        ("source", json!(event.source)),
        ("type", json!(event.r#type)),
        ("subject", json!(event.subject)),
        ("time", json!(humantime::format_rfc3339_millis(time).to_string())),
        ("datacontenttype", json!("application/json")),
        ("sequence", json!(event.sequence.to_string())),
        ("data", data),
    ] {
        out.insert(key.to_owned(), value);
    }
    Value::Object(out)
}

/// An event's details on one line: `key=value` pairs, values as JSON (text
/// quoted, so a value cannot pass for more fields).
pub fn summary(data: &str) -> String {
    match serde_json::from_str::<Value>(data) {
        Ok(Value::Object(fields)) => {
            fields.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join(" ")
        }
        _ => data.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_has_every_required_attribute_and_its_data_as_json() {
        let event = Event {
            sequence: 42,
            id: "abc".into(),
            source: SOURCE.into(),
            r#type: "mesh.product.deprecated.v1".into(),
            subject: "payment.card_spending".into(),
            time: Some(crate::time::timestamp(1_700_000_000_123)),
            data: r#"{"message":"use v2"}"#.into(),
        };
        let json = to_json(&event);
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json["sequence"], "42");
        assert_eq!(json["data"]["message"], "use v2");
        assert_eq!(json["subject"], "payment.card_spending");
    }

    #[test]
    fn a_summary_is_one_line_of_fields() {
        assert_eq!(
            summary(r#"{"version":2,"breaking":true,"by":"lee state=x"}"#),
            r#"version=2 breaking=true by="lee state=x""#
        );
        assert_eq!(summary("not json"), "not json");
    }
}
