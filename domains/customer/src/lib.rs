//! The customer domain: serves `customer.profiles`, the 10 customer
//! attributes of the customer-spending file, one row per quarter and customer.

use mesh_runtime::ProductSpec;
use mesh_runtime::quality::QualityRule;
use woori_data::runtime::SourceDomain;

/// The id of the product the domain serves.
pub const PROFILES: &str = "customer.profiles";

/// The `customer.profiles` product.
pub fn profiles() -> ProductSpec {
    ProductSpec::new(PROFILES, "woori.customer.v1.CustomerProfileService", "profiles")
        .key(&["bas_yh", "seq"])
        .indexes(&["seq", "hous_sido_nm", "life_stage", "mbr_rk"])
}

/// The customer domain, on port 50051 by default.
pub fn domain() -> SourceDomain {
    SourceDomain {
        name: "customer",
        port: 50051,
        spec: profiles(),
        rules: code_rules,
        generate: woori_data::runtime::generated,
    }
}

/// Codes stay within their documented values.
fn code_rules() -> Vec<QualityRule> {
    vec![
        QualityRule::failing_when("sex_cd_is_1_or_2", "sex_cd is 1 or 2", "sex_cd NOT IN ('1', '2')".into()),
        QualityRule::failing_when(
            "mbr_rk_is_a_grade",
            "mbr_rk is one of 21 (VVIP) .. 25 (none)",
            "mbr_rk NOT IN ('21', '22', '23', '24', '25')".into(),
        ),
        QualityRule::failing_when(
            "digital_use_needs_registration",
            "digt_chnl_use_yn is Y only when digt_chnl_reg_yn is Y",
            "digt_chnl_use_yn = 'Y' AND digt_chnl_reg_yn != 'Y'".into(),
        ),
    ]
}
