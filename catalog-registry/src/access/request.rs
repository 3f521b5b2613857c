//! Checking a request for access against the product it names, and
//! deciding whether one of the product's auto-approval rules grants it at
//! once.

use mesh_contracts::access::{Delivery, delivery};
use mesh_contracts::catalog::{Product, RequestAccessRequest};
use mesh_contracts::product::{AutoApproval, Classification};
use mesh_filter::{ColumnList, Columns};
use mesh_grpc::auth::Principal;

use crate::error::{RegistryError, Result};

/// Longest purpose accepted.
const MAX_PURPOSE: usize = 2000;
/// Longest row scope accepted.
const MAX_ROW_SCOPE: usize = 4096;
/// Days an agreement lasts when the request names no end.
pub(crate) const DEFAULT_DAYS: i64 = 90;
/// The longest agreement, in days.
pub(crate) const MAX_DAYS: i64 = 365;
const DAY_MS: i64 = 86_400_000;

/// A request checked against its product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedRequest {
    pub purpose: String,
    pub columns: Vec<String>,
    pub raw_columns: Vec<String>,
    pub row_scope: String,
    pub end_time: i64,
}

/// Checks `request` against `product` at `now` (ms): a purpose, columns the
/// product has (all when none are named), raw columns that are identifiers
/// among them, a bounded row scope and an end within a year.
pub(crate) fn check(request: &RequestAccessRequest, product: &Product, now: i64) -> Result<CheckedRequest> {
    let purpose = request.purpose.trim().to_owned();
    if purpose.is_empty() {
        return Err(RegistryError::invalid("purpose", "say what the data is for (--purpose)"));
    }
    if purpose.chars().count() > MAX_PURPOSE {
        return Err(RegistryError::invalid("purpose", format!("is longer than {MAX_PURPOSE} characters")));
    }
    let known: Vec<&str> = product.columns.iter().map(|c| c.name.as_str()).collect();
    let mut columns = Vec::new();
    for column in &request.columns {
        let column = column.trim().to_ascii_lowercase();
        if !known.contains(&column.as_str()) {
            return Err(RegistryError::invalid(
                "columns",
                format!(
                    "`{column}` is not a column of {}; its columns are {}",
                    product.product_id,
                    known.join(", ")
                ),
            ));
        }
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    if columns.is_empty() {
        columns = known.iter().map(|c| (*c).to_owned()).collect();
    }
    let mut raw_columns = Vec::new();
    for column in &request.raw_columns {
        let column = column.trim().to_ascii_lowercase();
        let identifier = product
            .columns
            .iter()
            .any(|c| c.name == column && c.classification() == Classification::PiiIdentifier);
        if !identifier {
            return Err(RegistryError::invalid(
                "raw_columns",
                format!(
                    "`{column}` is not an identifier column of {}; only identifiers are pseudonymized",
                    product.product_id
                ),
            ));
        }
        if !columns.contains(&column) {
            return Err(RegistryError::invalid(
                "raw_columns",
                format!("`{column}` is not among the columns asked for"),
            ));
        }
        if !raw_columns.contains(&column) {
            raw_columns.push(column);
        }
    }
    let row_scope = request.row_scope.trim().to_owned();
    if row_scope.len() > MAX_ROW_SCOPE {
        return Err(RegistryError::invalid("row_scope", format!("is longer than {MAX_ROW_SCOPE} bytes")));
    }
    check_scope(&row_scope, product, &columns, &raw_columns)?;
    let end_time = match &request.end_time {
        None => now + DEFAULT_DAYS * DAY_MS,
        Some(end) => end.seconds.saturating_mul(1000).saturating_add(i64::from(end.nanos) / 1_000_000),
    };
    if end_time <= now {
        return Err(RegistryError::invalid("end_time", "is in the past; name a date to come"));
    }
    if end_time > now + MAX_DAYS * DAY_MS {
        return Err(RegistryError::invalid(
            "end_time",
            format!("is more than {MAX_DAYS} days away; ask again later"),
        ));
    }
    Ok(CheckedRequest { purpose, columns, raw_columns, row_scope, end_time })
}

/// Checks that `scope` is a filter over `product` comparing only columns
/// an agreement granting `columns` (and `raw_columns` raw) delivers in the
/// clear: a scope on anything else would let the consumer learn, from
/// which rows it receives, values it was never granted.
fn check_scope(scope: &str, product: &Product, columns: &[String], raw_columns: &[String]) -> Result<()> {
    let list = ColumnList::from_proto(product.columns.iter().map(|c| (c.name.as_str(), c.r#type.as_str())));
    let parsed =
        mesh_filter::parse(scope, &list).map_err(|e| RegistryError::invalid("row_scope", e.message))?;
    for &index in &parsed.fields {
        let name = list.name(index);
        let Some(column) = product.columns.iter().find(|c| c.name == name) else { continue };
        let why = match delivery(column.classification(), name, columns, raw_columns) {
            Delivery::Clear => continue,
            Delivery::Pseudonym => format!(
                "the agreement delivers it as a pseudonym, so a scope on its real value would reveal it; add \
                 --raw {name} to ask for it raw"
            ),
            Delivery::Withheld => format!(
                "it is {} and not among the columns asked for, so a scope on it would reveal it; add it to \
                 --columns",
                column.classification().as_str_name().trim_start_matches("CLASSIFICATION_")
            ),
        };
        return Err(RegistryError::invalid(
            "row_scope",
            format!("compares `{name}`, which the agreement would not deliver in the clear: {why}"),
        ));
    }
    Ok(())
}

/// The first of `product`'s auto-approval rules that grants `request` to
/// `caller` at `now`, described for the record.
pub(crate) fn auto_approval(
    product: &Product,
    caller: &Principal,
    request: &CheckedRequest,
    now: i64,
) -> Option<String> {
    let rules = product.metadata.as_ref().map(|m| m.auto_approvals.as_slice()).unwrap_or_default();
    rules.iter().find(|rule| covers(rule, product, caller, request, now)).map(describe)
}

fn covers(
    rule: &AutoApproval,
    product: &Product,
    caller: &Principal,
    request: &CheckedRequest,
    now: i64,
) -> bool {
    let allowed = |name: &String| {
        product
            .columns
            .iter()
            .find(|c| &c.name == name)
            .is_some_and(|c| rule.classifications.contains(&c.classification))
    };
    !rule.role.is_empty()
        && caller.has_role(&rule.role)
        && (request.raw_columns.is_empty() || rule.raw_identifiers)
        && request.columns.iter().all(allowed)
        && request.end_time - now <= i64::from(rule.max_days) * DAY_MS
}

fn describe(rule: &AutoApproval) -> String {
    let classes: Vec<&str> = rule
        .classifications
        .iter()
        .filter_map(|c| Classification::try_from(*c).ok())
        .map(|c| c.as_str_name().trim_start_matches("CLASSIFICATION_"))
        .collect();
    format!(
        "approved by the product's rule: role `{}`, columns {}, identifiers {}, at most {} days",
        rule.role,
        classes.join("/"),
        if rule.raw_identifiers { "raw" } else { "as pseudonyms" },
        rule.max_days
    )
}

#[cfg(test)]
mod tests {
    use mesh_contracts::catalog::Column;
    use mesh_contracts::product::ProductOptions;

    use super::*;

    fn product() -> Product {
        let column = |name: &str, class: Classification| Column {
            name: name.into(),
            classification: class.into(),
            r#type: if name.ends_with("_am") { "int64" } else { "string" }.into(),
            ..Default::default()
        };
        Product {
            product_id: "payment.card_spending".into(),
            columns: vec![
                column("bas_yh", Classification::Public),
                column("seq", Classification::PiiIdentifier),
                column("tot_use_am", Classification::Sensitive),
            ],
            metadata: Some(ProductOptions {
                auto_approvals: vec![AutoApproval {
                    role: "analyst".into(),
                    classifications: vec![
                        Classification::Public.into(),
                        Classification::Internal.into(),
                        Classification::PiiIdentifier.into(),
                    ],
                    max_days: 90,
                    raw_identifiers: false,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn request(columns: &[&str], raw: &[&str]) -> RequestAccessRequest {
        RequestAccessRequest {
            product: "payment.card_spending".into(),
            purpose: "segment report".into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            raw_columns: raw.iter().map(|c| (*c).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn analyst() -> Principal {
        Principal { subject: "ana".into(), issuer: String::new(), roles: vec!["analyst".into()] }
    }

    #[test]
    fn a_rule_grants_non_sensitive_columns_with_pseudonyms_to_its_role() {
        let now = 1_000_000;
        let checked = check(&request(&["bas_yh", "seq"], &[]), &product(), now).unwrap();
        assert_eq!(checked.end_time, now + 90 * DAY_MS);
        assert!(auto_approval(&product(), &analyst(), &checked, now).is_some());
        // A sensitive column, a raw identifier, another role: an owner decides.
        let sensitive = check(&request(&["bas_yh", "tot_use_am"], &[]), &product(), now).unwrap();
        assert!(auto_approval(&product(), &analyst(), &sensitive, now).is_none());
        let raw = check(&request(&["seq"], &["seq"]), &product(), now).unwrap();
        assert!(auto_approval(&product(), &analyst(), &raw, now).is_none());
        let other = Principal { roles: vec!["viewer".into()], ..analyst() };
        assert!(auto_approval(&product(), &other, &checked, now).is_none());
        // Every column, by default, includes the sensitive ones.
        let all = check(&request(&[], &[]), &product(), now).unwrap();
        assert_eq!(all.columns, ["bas_yh", "seq", "tot_use_am"]);
        assert!(auto_approval(&product(), &analyst(), &all, now).is_none());
    }

    #[test]
    fn bad_requests_name_the_field() {
        let now = 1_000_000;
        let err = check(&RequestAccessRequest { purpose: " ".into(), ..request(&[], &[]) }, &product(), now);
        assert_eq!(err.unwrap_err().to_string(), "purpose: say what the data is for (--purpose)");
        let err = check(&request(&["nope"], &[]), &product(), now).unwrap_err().to_string();
        assert!(err.starts_with("columns: `nope` is not a column of payment.card_spending"), "{err}");
        let err = check(&request(&["bas_yh"], &["bas_yh"]), &product(), now).unwrap_err().to_string();
        assert!(err.starts_with("raw_columns: `bas_yh` is not an identifier column"), "{err}");
        let late = prost_types::Timestamp { seconds: (now / 1000) + 400 * 86_400, nanos: 0 };
        let err = check(&RequestAccessRequest { end_time: Some(late), ..request(&[], &[]) }, &product(), now);
        assert_eq!(err.unwrap_err().to_string(), "end_time: is more than 365 days away; ask again later");
        let past = prost_types::Timestamp { seconds: now / 1000 - 1, nanos: 0 };
        let err = check(&RequestAccessRequest { end_time: Some(past), ..request(&[], &[]) }, &product(), now);
        assert_eq!(err.unwrap_err().to_string(), "end_time: is in the past; name a date to come");
        let long = RequestAccessRequest { purpose: "x".repeat(2001), ..request(&[], &[]) };
        assert_eq!(
            check(&long, &product(), now).unwrap_err().to_string(),
            "purpose: is longer than 2000 characters"
        );
        let wide = RequestAccessRequest { row_scope: "a".repeat(4097), ..request(&[], &[]) };
        assert_eq!(
            check(&wide, &product(), now).unwrap_err().to_string(),
            "row_scope: is longer than 4096 bytes"
        );
        let err = check(&request(&["tot_use_am"], &["seq"]), &product(), now).unwrap_err().to_string();
        assert_eq!(err, "raw_columns: `seq` is not among the columns asked for");
    }

    fn scoped(columns: &[&str], raw: &[&str], scope: &str) -> Result<CheckedRequest> {
        check(
            &RequestAccessRequest { row_scope: scope.into(), ..request(columns, raw) },
            &product(),
            1_000_000,
        )
    }

    #[test]
    fn a_row_scope_compares_only_columns_delivered_in_the_clear() {
        // A public column, a granted sensitive one and a raw identifier may scope rows.
        assert!(scoped(&["bas_yh", "seq"], &[], r#"bas_yh = "2024Q1""#).is_ok());
        assert!(scoped(&["bas_yh", "tot_use_am"], &[], "tot_use_am > 50000000").is_ok());
        assert!(scoped(&["seq"], &["seq"], r#"seq = "0000000001""#).is_ok());
        // A withheld column: the scope would reveal its values.
        let err = scoped(&["bas_yh", "seq"], &[], "tot_use_am > 50000000").unwrap_err().to_string();
        assert_eq!(
            err,
            "row_scope: compares `tot_use_am`, which the agreement would not deliver in the clear: it is \
             SENSITIVE and not among the columns asked for, so a scope on it would reveal it; add it to --columns"
        );
        // A pseudonymized identifier's real value: the scope would link pseudonym and customer.
        let err = scoped(&["bas_yh", "seq"], &[], r#"bas_yh = "x" OR NOT seq = "0000000001""#).unwrap_err();
        assert!(err.to_string().starts_with("row_scope: compares `seq`, which the agreement would not deliver in the clear: the agreement delivers it as a pseudonym"), "{err}");
        // Not a filter at all, or a field the product lacks.
        let err = scoped(&["bas_yh"], &[], "bas_yh >").unwrap_err().to_string();
        assert_eq!(err, "row_scope: the filter ends early; expected a value at column 9");
        let err = scoped(&["bas_yh"], &[], "age = \"30\"").unwrap_err().to_string();
        assert_eq!(err, "row_scope: unknown field `age` at column 1; valid fields: bas_yh, seq, tot_use_am");
    }

    #[test]
    fn a_rule_approves_only_a_checked_scope() {
        let now = 1_000_000;
        let checked = scoped(&["bas_yh", "seq"], &[], r#"bas_yh = "2024Q1""#).unwrap();
        assert!(auto_approval(&product(), &analyst(), &checked, now).is_some());
        assert!(scoped(&["bas_yh", "seq"], &[], r#"seq = "1""#).is_err(), "never reaches the rule");
    }
}
