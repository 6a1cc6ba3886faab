//! Criterion benchmark: parse and compare two large synthetic documents end to end.

#[path = "common/synth.rs"]
mod synth;

use std::hint::black_box;

use compat_check::{Document, Format, Options, compare_documents};
use criterion::{Criterion, criterion_group, criterion_main};

fn end_to_end(c: &mut Criterion) {
    let old_text = synth::document(&synth::LARGE, false);
    let new_text = synth::document(&synth::LARGE, true);
    let mut group = c.benchmark_group("compat-check");
    group.sample_size(10);
    group.bench_function("large documents, parse + compare + render", |b| {
        b.iter(|| {
            let pair = Document::from_str_pair(("old.yaml", &old_text), ("new.yaml", &new_text));
            if let Ok((old, new)) = pair {
                let report = compare_documents(&old, &new, &Options::default());
                black_box(report.render(Format::Text));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
