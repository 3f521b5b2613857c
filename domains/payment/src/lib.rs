//! The payment domain: serves `payment.card_spending`, the 45 amount
//! columns of the customer-spending file, one row per quarter and customer.

use mesh_runtime::ProductSpec;
use woori_data::runtime::SourceDomain;

/// The `payment.card_spending` product.
pub const CARD_SPENDING: ProductSpec = ProductSpec {
    id: "payment.card_spending",
    service: "woori.payment.v1.CardSpendingService",
    table: "card_spending",
    key: &["bas_yh", "seq"],
    indexes: &["seq"],
    amounts: &woori_data::layout::AMOUNT_COLUMNS,
};

/// The payment domain, on port 50052 by default; its quality rules are the
/// file's spending invariants.
pub const DOMAIN: SourceDomain = SourceDomain {
    name: "payment",
    port: 50052,
    spec: CARD_SPENDING,
    rules: woori_data::runtime::spending_quality_rules,
    generate: woori_data::runtime::generated,
};
