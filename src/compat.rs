//! Comparing two schemas of a product: which changes break consumers (the
//! registry's check of a new version, and a team's own before it registers).

use std::collections::HashSet;

use crate::descriptor::{ProductShape, column_options, product_options, type_name};
use prost_reflect::{Kind, MessageDescriptor};

/// The differences between an old and a new schema, in words.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    /// Changes that break generated clients or stored data of consumers:
    /// fields or methods removed, renumbered, renamed or retyped.
    pub breaking: Vec<String>,
    /// Changes consumers can ignore: fields or methods added, annotations edited.
    pub compatible: Vec<String>,
}

/// Compares the schema a product had with the one it registers now.
pub fn compare(old: &ProductShape, new: &ProductShape) -> SchemaDiff {
    let mut diff = SchemaDiff::default();
    if old.service.full_name() != new.service.full_name() {
        diff.breaking.push(format!(
            "service renamed from `{}` to `{}`",
            old.service.full_name(),
            new.service.full_name()
        ));
    }
    for method in old.service.methods() {
        let Some(now) = new.service.methods().find(|m| m.name() == method.name()) else {
            diff.breaking.push(format!("method `{}` removed", method.name()));
            continue;
        };
        if method.input().full_name() != now.input().full_name() {
            diff.breaking.push(format!(
                "method `{}` now takes `{}` instead of `{}`",
                method.name(),
                now.input().full_name(),
                method.input().full_name()
            ));
        }
        if method.output().full_name() != now.output().full_name() {
            diff.breaking.push(format!(
                "method `{}` now returns `{}` instead of `{}`",
                method.name(),
                now.output().full_name(),
                method.output().full_name()
            ));
        }
        if method.is_server_streaming() != now.is_server_streaming()
            || method.is_client_streaming() != now.is_client_streaming()
        {
            diff.breaking.push(format!("method `{}` changed its streaming", method.name()));
        }
    }
    for method in new.service.methods() {
        if !old.service.methods().any(|m| m.name() == method.name()) {
            diff.compatible.push(format!("method `{}` added", method.name()));
        }
    }
    if old.row_type.full_name() != new.row_type.full_name() {
        diff.breaking.push(format!(
            "row type renamed from `{}` to `{}`",
            old.row_type.full_name(),
            new.row_type.full_name()
        ));
    }
    let mut seen = HashSet::new();
    compare_messages(&old.query.output(), &new.query.output(), &mut seen, &mut diff);
    if product_options(&old.service) != product_options(&new.service) {
        diff.compatible.push("product options changed".to_owned());
    }
    diff
}

/// Compares two versions of a message field by field (matched by number),
/// then the message types of fields present in both.
fn compare_messages(
    old: &MessageDescriptor,
    new: &MessageDescriptor,
    seen: &mut HashSet<String>,
    diff: &mut SchemaDiff,
) {
    if !seen.insert(old.full_name().to_owned()) {
        return;
    }
    let owner = new.name();
    for field in old.fields() {
        let label = format!("`{owner}.{}`", field.name());
        match new.get_field(field.number()) {
            None => match new.get_field_by_name(field.name()) {
                Some(moved) => diff.breaking.push(format!(
                    "field {label} renumbered from {} to {}",
                    field.number(),
                    moved.number()
                )),
                None => diff.breaking.push(format!("field {label} ({}) removed", field.number())),
            },
            Some(now) => {
                if now.name() != field.name() {
                    diff.breaking.push(format!(
                        "field {label} ({}) renamed to `{}`",
                        field.number(),
                        now.name()
                    ));
                }
                let (was, is) = (type_name(&field), type_name(&now));
                if was != is {
                    diff.breaking.push(format!("field {label} retyped from {was} to {is}"));
                }
                if field.is_list() != now.is_list() || field.is_map() != now.is_map() {
                    diff.breaking.push(format!("field {label} changed between singular and repeated"));
                }
                if column_options(&field) != column_options(&now) {
                    diff.compatible.push(format!("annotations of field {label} changed"));
                }
                if let (Kind::Message(a), Kind::Message(b)) = (field.kind(), now.kind())
                    && was == is
                {
                    compare_messages(&a, &b, seen, diff);
                }
            }
        }
    }
    for field in new.fields() {
        if old.get_field(field.number()).is_none() && old.get_field_by_name(field.name()).is_none() {
            diff.compatible.push(format!("field `{owner}.{}` ({}) added", field.name(), field.number()));
        }
    }
}
