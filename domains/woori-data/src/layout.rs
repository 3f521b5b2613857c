//! The layout of the customer-spending file: its 55 columns in order, and
//! the category hierarchy its invariants are stated in. Defined once here.

/// The key columns: reference quarter and customer number.
pub const KEY_COLUMNS: [&str; 2] = ["BAS_YH", "SEQ"];

/// The customer attribute columns (after the key).
pub const CUSTOMER_COLUMNS: [&str; 8] = [
    "AGE",
    "SEX_CD",
    "MBR_RK",
    "ATT_YM",
    "HOUS_SIDO_NM",
    "DIGT_CHNL_REG_YN",
    "DIGT_CHNL_USE_YN",
    "LIFE_STAGE",
];

/// Total spend and its split into credit and check card.
pub const TOTAL: &str = "TOT_USE_AM";
/// Credit card spend.
pub const CREDIT: &str = "CRDSL_USE_AM";
/// Check card spend.
pub const CHECK: &str = "CNF_USE_AM";

/// A broad spending category and the detailed categories it sums.
#[derive(Debug, Clone, Copy)]
pub struct Broad {
    /// The broad column, e.g. `AUTO_AM`.
    pub column: &'static str,
    /// Its detailed columns, e.g. `FUEL_AM`, `AUTOMNT_AM`, `AUTOSL_AM`.
    pub detailed: &'static [&'static str],
}

/// The 10 broad categories, in file order, each with its detailed ones.
/// Every detailed category belongs to exactly one broad category.
pub const BROAD: [Broad; 10] = [
    Broad {
        column: "INTERIOR_AM",
        detailed: &["FUNITR_AM", "APPLNC_AM", "KITWR_AM", "FABRIC_AM", "BLDMNG_AM", "ARCHIT_AM"],
    },
    Broad { column: "INSUHOS_AM", detailed: &["INSU_AM", "HOS_AM"] },
    Broad { column: "OFFEDU_AM", detailed: &["OFFCOM_AM", "BOOK_AM", "ACDM_AM"] },
    Broad {
        column: "TRVLEC_AM",
        detailed: &["TRVL_AM", "HOTEL_AM", "LEISURE_S_AM", "LEISURE_P_AM", "CULTURE_AM"],
    },
    Broad { column: "FSBZ_AM", detailed: &["RESTRNT_AM"] },
    Broad { column: "SVCARC_AM", detailed: &["SVC_AM", "RPR_AM", "MBRSHOP_AM"] },
    Broad { column: "DIST_AM", detailed: &["DISTBNP_AM", "DISTBP_AM", "GROCERY_AM", "AGRICTR_AM"] },
    Broad { column: "PLSANIT_AM", detailed: &["HLTHFS_AM", "SANIT_AM", "OPTIC_AM"] },
    Broad { column: "CLOTHGDS_AM", detailed: &["CLOTH_AM", "GOODS_AM"] },
    Broad { column: "AUTO_AM", detailed: &["FUEL_AM", "AUTOMNT_AM", "AUTOSL_AM"] },
];

/// The 10 broad columns, in file order.
pub const BROAD_COLUMNS: [&str; 10] = {
    let mut columns = [""; 10];
    let mut i = 0;
    while i < BROAD.len() {
        columns[i] = BROAD[i].column;
        i += 1;
    }
    columns
};

/// Every amount column (KRW, never negative): total, credit, check, the
/// broad and the detailed categories, in file order.
pub const AMOUNT_COLUMNS: [&str; 45] =
    concat(concat::<3, 10, 13>([TOTAL, CREDIT, CHECK], BROAD_COLUMNS), DETAILED_COLUMNS);

/// `a` followed by `b`, at compile time (`N` must be `A + B`).
pub const fn concat<const A: usize, const B: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "concat: N must be A + B");
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// The 32 detailed columns in file order.
pub const DETAILED_COLUMNS: [&str; 32] = [
    "FUNITR_AM",
    "APPLNC_AM",
    "HLTHFS_AM",
    "BLDMNG_AM",
    "ARCHIT_AM",
    "OPTIC_AM",
    "AGRICTR_AM",
    "LEISURE_S_AM",
    "LEISURE_P_AM",
    "CULTURE_AM",
    "SANIT_AM",
    "INSU_AM",
    "OFFCOM_AM",
    "BOOK_AM",
    "RPR_AM",
    "HOTEL_AM",
    "GOODS_AM",
    "TRVL_AM",
    "FUEL_AM",
    "SVC_AM",
    "DISTBNP_AM",
    "DISTBP_AM",
    "GROCERY_AM",
    "HOS_AM",
    "CLOTH_AM",
    "RESTRNT_AM",
    "AUTOMNT_AM",
    "AUTOSL_AM",
    "KITWR_AM",
    "FABRIC_AM",
    "ACDM_AM",
    "MBRSHOP_AM",
];

/// All 55 columns, in file order.
pub fn header() -> Vec<&'static str> {
    let mut columns: Vec<&'static str> = KEY_COLUMNS.to_vec();
    columns.extend(CUSTOMER_COLUMNS);
    columns.extend(AMOUNT_COLUMNS);
    columns
}

/// The 17 provinces and metropolitan cities (시도), with the share of
/// customers living there (per mille; more in 서울 and 경기).
pub const SIDO: [(&str, u32); 17] = [
    ("서울", 230),
    ("경기", 260),
    ("인천", 55),
    ("부산", 60),
    ("대구", 40),
    ("광주", 25),
    ("대전", 28),
    ("울산", 20),
    ("세종", 8),
    ("강원", 28),
    ("충북", 30),
    ("충남", 40),
    ("전북", 32),
    ("전남", 32),
    ("경북", 48),
    ("경남", 60),
    ("제주", 14),
];

/// Membership grades: 21 VVIP, 22 VIP, 23 Platinum, 24 Gold, 25 none.
pub const GRADES: [&str; 5] = ["21", "22", "23", "24", "25"];

/// The life stages of the file.
pub const LIFE_STAGES: [&str; 10] = [
    "UNI",
    "NEW_JOB",
    "NEW_WED",
    "CHILD_BABY",
    "CHILD_TEEN",
    "CHILD_UNI",
    "GOLLIFE",
    "SECLIFE",
    "RETIR",
    "TEEN",
];
