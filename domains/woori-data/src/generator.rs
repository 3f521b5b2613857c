//! A deterministic generator of the customer-spending file: the same seed
//! and scale give the same bytes, and every invariant of the real file holds.
//!
//! Each customer's attributes come from a random stream seeded by (seed,
//! customer) and each quarter's spending from one seeded by (seed, customer,
//! quarter), so any slice of the file can be generated on its own and two
//! domains generating their own columns agree row for row.

use std::io::Write;
use std::path::Path;

use csv::ByteRecord;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::layout::{BROAD, DETAILED_COLUMNS, GRADES, LIFE_STAGES, SIDO, header};

/// The default seed of the mesh's synthetic data.
pub const DEFAULT_SEED: u64 = 20_240_101;
/// The default number of customers.
pub const DEFAULT_CUSTOMERS: u64 = 100_000;
/// The default number of quarters (2024Q1 onwards).
pub const DEFAULT_QUARTERS: u32 = 4;

/// Scale and seed of a synthetic file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generator {
    /// Seed of the generated data: the same seed gives the same rows.
    pub seed: u64,
    /// Customers to generate (per quarter).
    pub customers: u64,
    /// Quarters to generate (from 2024Q1).
    pub quarters: u32,
}

impl Default for Generator {
    fn default() -> Self {
        Self { seed: DEFAULT_SEED, customers: DEFAULT_CUSTOMERS, quarters: DEFAULT_QUARTERS }
    }
}

/// Relative size of each detailed category in an average customer's spend,
/// in the order of `DETAILED_COLUMNS`.
const CATEGORY_WEIGHT: [f64; 32] = [
    1.5, 2.5, 2.0, 1.0, 0.8, 0.7, 1.2, 1.0, 1.5, 1.5, 2.5, 6.0, 4.0, 1.0, 0.8, 2.0, 2.5, 3.0, 6.0, 2.5, 8.0,
    6.0, 9.0, 5.0, 4.0, 12.0, 1.5, 1.0, 0.8, 0.7, 3.0, 2.0,
];

/// Customers by age band, per mille.
const AGE_BANDS: [(&str, u32); 7] =
    [("10", 30), ("20", 160), ("30", 200), ("40", 220), ("50", 200), ("60", 130), ("70", 60)];

impl Generator {
    /// The quarter labels, e.g. `2024Q1`.
    pub fn quarter_labels(&self) -> Vec<String> {
        (0..self.quarters).map(|q| format!("{}Q{}", 2024 + q / 4, q % 4 + 1)).collect()
    }

    /// Rows in the file.
    pub fn rows(&self) -> u64 {
        self.customers * u64::from(self.quarters)
    }

    /// The record source of the whole file, quarter by quarter, customers in order.
    pub fn source(&self) -> GeneratedSource {
        GeneratedSource::new(*self)
    }

    /// Writes the file: header row, CRLF line ends, comma separated.
    pub fn write_csv(&self, out: impl Write) -> std::io::Result<u64> {
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out);
        let mut source = self.source();
        writer.write_byte_record(source.header()).map_err(csv_error)?;
        let mut record = ByteRecord::new();
        let mut rows = 0;
        while source.read(&mut record) {
            writer.write_byte_record(&record).map_err(csv_error)?;
            rows += 1;
        }
        writer.flush()?;
        Ok(rows)
    }

    /// Writes the file to `path`.
    pub fn write_file(&self, path: &Path) -> std::io::Result<u64> {
        let file = std::fs::File::create(path)?;
        self.write_csv(std::io::BufWriter::with_capacity(1 << 20, file))
    }

    /// Fills `record` with customer `customer` (0-based) in quarter `quarter`.
    fn fill(
        &self,
        quarter: &str,
        quarter_index: u32,
        customer: u64,
        record: &mut ByteRecord,
        scratch: &mut Scratch,
    ) {
        let mut person = ChaCha8Rng::seed_from_u64(mix(self.seed, customer, u64::MAX));
        let age_index = pick(&mut person, &AGE_BANDS.map(|(_, w)| w));
        let age = AGE_BANDS[age_index].0;
        let sex = if person.random_bool(0.5) { "1" } else { "2" };
        let grade_weights: [u32; 5] = match age_index {
            0 | 1 => [2, 10, 60, 180, 748],
            2 | 3 => [10, 40, 120, 250, 580],
            _ => [15, 55, 140, 260, 530],
        };
        let grade_index = pick(&mut person, &grade_weights);
        let join_year = person.random_range(2005..=2023);
        let join_month = person.random_range(1..=12);
        let sido = SIDO[pick(&mut person, &SIDO.map(|(_, w)| w))].0;
        let digital_registered = person.random_bool(if age_index >= 5 { 0.45 } else { 0.8 });
        let stage = LIFE_STAGES[life_stage(age_index, &mut person)];

        let mut spend = ChaCha8Rng::seed_from_u64(mix(self.seed, customer, u64::from(quarter_index)));
        let digital_used = digital_registered && spend.random_bool(0.85);
        let total = quarterly_total(&mut spend, grade_index, age_index);
        let detailed = &mut scratch.detailed;
        split(&mut spend, total, detailed);
        let credit_share = if spend.random_bool(0.15) { 0.0 } else { spend.random_range(0.35..1.0) };
        let credit = (total as f64 * credit_share).round() as i64;

        record.clear();
        record.push_field(quarter.as_bytes());
        record.push_field(customer_number(customer, &mut scratch.seq));
        record.push_field(age.as_bytes());
        record.push_field(sex.as_bytes());
        record.push_field(GRADES[grade_index].as_bytes());
        record.push_field(format!("{join_year}{join_month:02}").as_bytes());
        record.push_field(sido.as_bytes());
        record.push_field(if digital_registered { b"Y" } else { b"N" });
        record.push_field(if digital_used { b"Y" } else { b"N" });
        record.push_field(stage.as_bytes());
        let mut push = |n: i64| record.push_field(scratch.number.format(n).as_bytes());
        push(total);
        push(credit);
        push(total - credit);
        for broad in &BROAD {
            push(broad.detailed.iter().map(|d| detailed[detailed_index(d)]).sum());
        }
        for amount in detailed.iter() {
            push(*amount);
        }
    }
}

/// Reused buffers of the generator.
struct Scratch {
    number: itoa::Buffer,
    seq: [u8; 10],
    detailed: [i64; 32],
}

/// The customer number of 0-based `customer`: 10 digits, zero padded.
fn customer_number(customer: u64, out: &mut [u8; 10]) -> &[u8] {
    let mut n = customer + 1;
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out
}

fn csv_error(e: csv::Error) -> std::io::Error {
    std::io::Error::other(e)
}

/// One 64-bit seed from three numbers (SplitMix64 finaliser on a combination).
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An index drawn with the given integer weights.
fn pick(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// A life stage that fits the age band.
fn life_stage(age_index: usize, rng: &mut ChaCha8Rng) -> usize {
    // Indexes into LIFE_STAGES with weights, per age band.
    let options: &[(usize, u32)] = match age_index {
        0 => &[(9, 80), (0, 20)],
        1 => &[(0, 45), (1, 40), (2, 15)],
        2 => &[(1, 25), (2, 40), (3, 35)],
        3 => &[(3, 25), (4, 50), (5, 25)],
        4 => &[(5, 45), (6, 55)],
        5 => &[(6, 40), (7, 35), (8, 25)],
        _ => &[(8, 70), (7, 30)],
    };
    options[pick(rng, &options.iter().map(|o| o.1).collect::<Vec<_>>())].0
}

/// A quarter's total spend in KRW: log-normal, larger for higher grades and
/// middle age, zero for some inactive customers.
fn quarterly_total(rng: &mut ChaCha8Rng, grade_index: usize, age_index: usize) -> i64 {
    if rng.random_bool(0.08) {
        return 0;
    }
    let grade_factor = [8.0, 4.0, 2.2, 1.3, 0.7][grade_index];
    let age_factor = [0.3, 0.8, 1.1, 1.3, 1.2, 0.9, 0.6][age_index];
    let median: f64 = 1_200_000.0 * grade_factor * age_factor;
    // Box-Muller standard normal.
    let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    ((median.ln() + 0.9 * normal).exp()).round().min(5.0e10) as i64
}

/// Splits `total` over the 32 detailed categories exactly (integer won).
fn split(rng: &mut ChaCha8Rng, total: i64, out: &mut [i64; 32]) {
    let mut weights = [0.0f64; 32];
    for (w, base) in weights.iter_mut().zip(CATEGORY_WEIGHT) {
        *w = if rng.random_bool(0.35) { 0.0 } else { base * -rng.random_range(f64::EPSILON..1.0f64).ln() };
    }
    let sum: f64 = weights.iter().sum();
    if total == 0 || sum == 0.0 {
        out.fill(0);
        if total > 0 {
            out[25] = total; // restaurants
        }
        return;
    }
    let mut allocated = 0;
    let mut largest = 0;
    for i in 0..32 {
        out[i] = (total as f64 * weights[i] / sum).floor() as i64;
        allocated += out[i];
        if weights[i] > weights[largest] {
            largest = i;
        }
    }
    out[largest] += total - allocated;
}

fn detailed_index(column: &str) -> usize {
    DETAILED_COLUMNS.iter().position(|d| *d == column).expect("every detailed column is in the layout")
}

/// The generated file, record by record.
pub struct GeneratedSource {
    generator: Generator,
    header: ByteRecord,
    quarters: Vec<String>,
    next: u64,
    scratch: Scratch,
}

impl GeneratedSource {
    fn new(generator: Generator) -> Self {
        Self {
            generator,
            header: ByteRecord::from(header()),
            quarters: generator.quarter_labels(),
            next: 0,
            scratch: Scratch { number: itoa::Buffer::new(), seq: [b'0'; 10], detailed: [0; 32] },
        }
    }

    /// The 55 column names.
    pub fn header(&self) -> &ByteRecord {
        &self.header
    }

    /// Fills `record` with the next row; false after the last one.
    pub fn read(&mut self, record: &mut ByteRecord) -> bool {
        if self.next >= self.generator.rows() {
            return false;
        }
        let quarter = (self.next / self.generator.customers) as u32;
        let customer = self.next % self.generator.customers;
        self.generator.fill(&self.quarters[quarter as usize], quarter, customer, record, &mut self.scratch);
        self.next += 1;
        true
    }

    /// The line number of the record last read, as in the file (1 is the header).
    pub fn line(&self) -> u64 {
        self.next + 1
    }

    /// The generator behind it.
    pub fn generator(&self) -> Generator {
        self.generator
    }

    /// Where the records come from, in words.
    pub fn describe(&self) -> String {
        let g = self.generator;
        format!("generated (seed {}, {} customers x {} quarters)", g.seed, g.customers, g.quarters)
    }
}
