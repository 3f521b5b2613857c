//! The generator: determinism, the exact layout, and every invariant.

use sha2::{Digest, Sha256};
use woori_data::Generator;
use woori_data::layout::{BROAD, CHECK, CREDIT, GRADES, LIFE_STAGES, SIDO, TOTAL, header};

fn csv_bytes(generator: Generator) -> Vec<u8> {
    let mut out = Vec::new();
    generator.write_csv(&mut out).unwrap();
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let generator = Generator { seed: 42, customers: 500, quarters: 3 };
    let a = Sha256::digest(csv_bytes(generator));
    let b = Sha256::digest(csv_bytes(generator));
    assert_eq!(a, b);
    let c = Sha256::digest(csv_bytes(Generator { seed: 43, ..generator }));
    assert_ne!(a, c);
    // A slice generated alone equals the same slice of a bigger file: the
    // first quarter's 500 customers do not depend on the number of quarters.
    let small = csv_bytes(Generator { quarters: 1, ..generator });
    let big = csv_bytes(generator);
    assert!(big.starts_with(&small));
}

#[test]
fn layout_is_the_real_files() {
    let bytes = csv_bytes(Generator { seed: 1, customers: 50, quarters: 2 });
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.ends_with("\r\n"));
    assert_eq!(text.matches("\r\n").count(), 101, "header + 100 rows, CRLF ends");
    assert_eq!(text.matches('\n').count(), 101, "no bare LF");
    let first = text.lines().next().unwrap();
    let columns: Vec<&str> = first.split(',').collect();
    assert_eq!(columns.len(), 55);
    assert_eq!(columns, header());
    assert_eq!(&columns[..3], ["BAS_YH", "SEQ", "AGE"]);
    assert_eq!(columns[54], "MBRSHOP_AM");
}

#[test]
fn every_row_keeps_every_invariant() {
    let bytes = csv_bytes(Generator { seed: 9, customers: 3000, quarters: 2 });
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut keys = std::collections::HashSet::new();
    let mut seoul_gyeonggi = 0;
    let mut rows = 0;
    let mut totals = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        rows += 1;
        let amount = |name: &str| -> i64 { record[at(name)].parse().unwrap() };
        for (i, name) in header.iter().enumerate().skip(10) {
            assert!(record[i].parse::<i64>().unwrap() >= 0, "{name} negative");
        }
        assert_eq!(amount(TOTAL), amount(CREDIT) + amount(CHECK));
        assert_eq!(amount(TOTAL), BROAD.iter().map(|b| amount(b.column)).sum::<i64>());
        for broad in &BROAD {
            assert_eq!(
                amount(broad.column),
                broad.detailed.iter().map(|d| amount(d)).sum::<i64>(),
                "{}",
                broad.column
            );
        }
        assert!(keys.insert((record[0].to_owned(), record[1].to_owned())), "duplicate key");
        assert_eq!(record[0].len(), 6);
        assert!(["1", "2"].contains(&&record[at("SEX_CD")]));
        assert!(GRADES.contains(&&record[at("MBR_RK")]));
        assert!(LIFE_STAGES.contains(&&record[at("LIFE_STAGE")]));
        assert!(SIDO.iter().any(|(s, _)| *s == &record[at("HOUS_SIDO_NM")]));
        if ["서울", "경기"].contains(&&record[at("HOUS_SIDO_NM")]) {
            seoul_gyeonggi += 1;
        }
        if record[at("DIGT_CHNL_USE_YN")] == *"Y" {
            assert_eq!(&record[at("DIGT_CHNL_REG_YN")], "Y");
        }
        totals.push(amount(TOTAL));
    }
    assert_eq!(rows, 6000);
    // Realistic shape: about half the customers live in 서울/경기, spend is skewed.
    assert!(seoul_gyeonggi > rows * 2 / 5, "{seoul_gyeonggi} of {rows} in 서울/경기");
    totals.sort_unstable();
    let median = totals[totals.len() / 2];
    let mean = totals.iter().sum::<i64>() / totals.len() as i64;
    assert!(mean > median * 3 / 2, "mean {mean} vs median {median}: not skewed");
}
