//! Prints the end-to-end figure for two large synthetic documents (parse + compare + render):
//! `cargo run --release -p compat-check --example bench_figure`.

#[path = "../benches/common/synth.rs"]
mod synth;

use std::time::Instant;

use compat_check::{Document, Format, Options, compare_documents};

fn main() {
    let old_text = synth::document(&synth::LARGE, false);
    let new_text = synth::document(&synth::LARGE, true);
    println!(
        "documents: old {:.1} MB, new {:.1} MB",
        old_text.len() as f64 / 1e6,
        new_text.len() as f64 / 1e6
    );
    let mut runs = Vec::new();
    let iterations = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for _ in 0..iterations {
        let t0 = Instant::now();
        let (old, new) =
            match Document::from_str_pair(("old.yaml", &old_text), ("new.yaml", &new_text)) {
                Ok(pair) => pair,
                Err(e) => {
                    eprintln!("synthetic document failed to load: {e}");
                    std::process::exit(2);
                }
            };
        let t_parse = t0.elapsed();
        let report = compare_documents(&old, &new, &Options::default());
        let t_compare = t0.elapsed() - t_parse;
        let text = report.render(Format::Text);
        let total = t0.elapsed();
        println!(
            "parse {:>6.0} ms  compare+positions {:>6.0} ms  total {:>6.0} ms  ({}, {} bytes of text)",
            t_parse.as_secs_f64() * 1e3,
            t_compare.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3,
            report.summary_line(),
            text.len()
        );
        runs.push(total.as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    // The minimum is the figure least disturbed by other load on the machine.
    println!(
        "end-to-end over {} runs: min {:.0} ms, median {:.0} ms",
        runs.len(),
        runs[0] * 1e3,
        runs[runs.len() / 2] * 1e3
    );
}
