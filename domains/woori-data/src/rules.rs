//! The file's invariants as data-quality rules over a product table.

use mesh_domain_runtime::quality::QualityRule;

use crate::layout::{BROAD, CHECK, CREDIT, TOTAL};

/// The spending invariants: total = credit + check, total = sum of the
/// broad categories, each broad category = the sum of its detailed ones.
pub fn spending_rules() -> Vec<QualityRule> {
    let col = |c: &str| c.to_ascii_lowercase();
    let broad: Vec<String> = BROAD.iter().map(|b| col(b.column)).collect();
    let broad: Vec<&str> = broad.iter().map(String::as_str).collect();
    let mut rules = vec![
        QualityRule::sum_equals(
            "tot_equals_credit_plus_check",
            "tot_use_am = crdsl_use_am + cnf_use_am",
            &col(TOTAL),
            &[&col(CREDIT), &col(CHECK)],
        ),
        QualityRule::sum_equals(
            "tot_equals_sum_of_broad",
            "tot_use_am = the sum of the 10 broad categories",
            &col(TOTAL),
            &broad,
        ),
    ];
    for category in &BROAD {
        let parts: Vec<String> = category.detailed.iter().map(|d| col(d)).collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        rules.push(QualityRule::sum_equals(
            &format!("{}_equals_sum_of_detailed", col(category.column)),
            &format!("{} = {}", col(category.column), parts.join(" + ")),
            &col(category.column),
            &parts,
        ));
    }
    rules
}
