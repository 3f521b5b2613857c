//! The payment domain: serves `payment.card_spending`, the 45 amount
//! columns of the customer-spending file, one row per quarter and customer.

use mesh_runtime::ProductSpec;
use woori_data::runtime::SourceDomain;

/// The id of the product the domain serves.
pub const CARD_SPENDING: &str = "payment.card_spending";

/// The `payment.card_spending` product.
pub fn card_spending() -> ProductSpec {
    ProductSpec::new(CARD_SPENDING, "woori.payment.v1.CardSpendingService", "card_spending")
        .key(&["bas_yh", "seq"])
        .indexes(&["seq"])
        .amounts(&woori_data::layout::AMOUNT_COLUMNS)
}

/// The payment domain, on port 50052 by default; its quality rules are the
/// file's spending invariants.
pub fn domain() -> SourceDomain {
    SourceDomain {
        name: "payment",
        port: 50052,
        spec: card_spending(),
        rules: woori_data::runtime::spending_quality_rules,
        generate: woori_data::runtime::generated,
    }
}
