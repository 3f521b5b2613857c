//! The report: one line per figure, measured against its baseline.

use std::time::Duration;

/// One line of the report.
pub(crate) struct Figure {
    pub name: &'static str,
    pub measured: String,
    pub baseline: String,
    pub ratio: Option<f64>,
    pub target: &'static str,
    pub met: Option<bool>,
}

/// Prints the report of `figures` measured at `scale`.
pub(crate) fn print(figures: &[Figure], scale: &str) {
    println!("\nmesh-bench, {scale}, {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!("{:<58} {:>22} {:>22} {:>8}  {:<10}", "figure", "measured", "baseline", "ratio", "target");
    for f in figures {
        let ratio = f.ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let verdict = match f.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<58} {:>22} {:>22} {:>8}  {:<10} {}",
            f.name, f.measured, f.baseline, ratio, f.target, verdict
        );
    }
}

/// A rate as rows per second.
pub(crate) fn per_second(value: f64) -> String {
    format!("{:.0} rows/s", value)
}

/// A duration in milliseconds.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
