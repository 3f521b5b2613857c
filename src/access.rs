//! How each column of a product reaches a consumer under an agreement: the
//! one rule the registry (checking row scopes) and the domains (enforcing
//! reads) share.

use crate::product::Classification;

/// How a column reaches a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The real value.
    Clear,
    /// A keyed pseudonym of the value (identifiers not granted raw).
    Pseudonym,
    /// Not at all.
    Withheld,
}

/// How the column `name` of `classification` reaches a consumer whose
/// agreement grants `columns` and, of the identifiers, `raw_columns` raw
/// (both empty without an agreement): PUBLIC and INTERNAL columns always;
/// identifiers always, as pseudonyms unless granted raw; every other
/// column only when granted.
pub fn delivery(
    classification: Classification,
    name: &str,
    columns: &[String],
    raw_columns: &[String],
) -> Delivery {
    let named = |list: &[String]| list.iter().any(|c| c == name);
    match classification {
        Classification::Public | Classification::Internal => Delivery::Clear,
        Classification::PiiIdentifier if named(raw_columns) => Delivery::Clear,
        Classification::PiiIdentifier => Delivery::Pseudonym,
        Classification::QuasiIdentifier | Classification::Sensitive | Classification::Unspecified => {
            if named(columns) { Delivery::Clear } else { Delivery::Withheld }
        }
    }
}

/// The domain of product `id`: `payment` of `payment.card_spending`.
pub fn domain_of(id: &str) -> &str {
    id.split_once('.').map_or(id, |(domain, _)| domain)
}

/// How long `agreement` lasts from its request to its end, in whole days.
pub fn days(agreement: &crate::catalog::Agreement) -> i64 {
    match (&agreement.create_time, &agreement.end_time) {
        (Some(start), Some(end)) => (end.seconds - start.seconds).max(0).div_euclid(86_400),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_classification_is_delivered_by_its_rule() {
        let granted = ["age".to_owned(), "seq".to_owned()];
        let raw = ["seq".to_owned()];
        assert_eq!(delivery(Classification::Public, "bas_yh", &[], &[]), Delivery::Clear);
        assert_eq!(delivery(Classification::Internal, "x", &[], &[]), Delivery::Clear);
        assert_eq!(delivery(Classification::PiiIdentifier, "seq", &granted, &[]), Delivery::Pseudonym);
        assert_eq!(delivery(Classification::PiiIdentifier, "seq", &granted, &raw), Delivery::Clear);
        assert_eq!(delivery(Classification::QuasiIdentifier, "age", &granted, &[]), Delivery::Clear);
        assert_eq!(delivery(Classification::QuasiIdentifier, "sex_cd", &granted, &[]), Delivery::Withheld);
        assert_eq!(delivery(Classification::Sensitive, "tot_use_am", &granted, &raw), Delivery::Withheld);
        assert_eq!(delivery(Classification::Unspecified, "note", &[], &[]), Delivery::Withheld);
    }
}
