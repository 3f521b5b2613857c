//! The file's invariants as data-quality rules over a product table.

use mesh_domain_runtime::quality::QualityRule;

use crate::layout::{BROAD, CHECK, CREDIT, TOTAL};

/// The spending invariants: total = credit + check, total = sum of the
/// broad categories, each broad category = the sum of its detailed ones.
pub fn spending_rules() -> Vec<QualityRule> {
    let col = |c: &str| c.to_ascii_lowercase();
    let mut rules = vec![
        QualityRule::failing_when(
            "tot_equals_credit_plus_check",
            "tot_use_am = crdsl_use_am + cnf_use_am",
            format!("{} != {} + {}", col(TOTAL), col(CREDIT), col(CHECK)),
        ),
        QualityRule::failing_when(
            "tot_equals_sum_of_broad",
            "tot_use_am = the sum of the 10 broad categories",
            format!(
                "{} != {}",
                col(TOTAL),
                BROAD.iter().map(|b| col(b.column)).collect::<Vec<_>>().join(" + ")
            ),
        ),
    ];
    for broad in &BROAD {
        let parts: Vec<String> = broad.detailed.iter().map(|d| col(d)).collect();
        rules.push(QualityRule::failing_when(
            &format!("{}_equals_sum_of_detailed", col(broad.column)),
            &format!("{} = {}", col(broad.column), parts.join(" + ")),
            format!("{} != {}", col(broad.column), parts.join(" + ")),
        ));
    }
    rules
}
