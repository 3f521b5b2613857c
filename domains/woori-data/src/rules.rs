//! The file's invariants as plain data: which amount equals the sum of
//! which others. The shipped payment product file states them as quality
//! rules (a test holds the two together); the generator keeps them by
//! construction.

use crate::layout::{BROAD, CHECK, CREDIT, TOTAL};

/// One invariant: `total` equals the sum of `parts` (field names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumRule {
    /// Stable name, e.g. `tot_equals_credit_plus_check`.
    pub name: String,
    /// The rule in words.
    pub description: String,
    /// The column that holds the sum.
    pub total: String,
    /// The columns it is the sum of.
    pub parts: Vec<String>,
}

/// The spending invariants: total = credit + check, total = sum of the
/// broad categories, each broad category = the sum of its detailed ones.
pub fn spending_rules() -> Vec<SumRule> {
    let col = |c: &str| c.to_ascii_lowercase();
    let broad: Vec<String> = BROAD.iter().map(|b| col(b.column)).collect();
    let mut rules = vec![
        SumRule {
            name: "tot_equals_credit_plus_check".into(),
            description: "tot_use_am = crdsl_use_am + cnf_use_am".into(),
            total: col(TOTAL),
            parts: vec![col(CREDIT), col(CHECK)],
        },
        SumRule {
            name: "tot_equals_sum_of_broad".into(),
            description: format!("tot_use_am = the sum of the {} broad categories", BROAD.len()),
            total: col(TOTAL),
            parts: broad,
        },
    ];
    for category in &BROAD {
        let parts: Vec<String> = category.detailed.iter().map(|d| col(d)).collect();
        rules.push(SumRule {
            name: format!("{}_equals_sum_of_detailed", col(category.column)),
            description: format!("{} = {}", col(category.column), parts.join(" + ")),
            total: col(category.column),
            parts,
        });
    }
    rules
}
