//! Latency histogram costs on the hot path (recording) and at report time (summary, serialization).
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use queuelab_common::samplers::{ServiceKind, ServiceSampler, rng};
use queuelab_common::stats::{
    histogram_from_string, histogram_to_string, new_histogram, record_ns, summarize,
};
use std::hint::black_box;

/// 100 000 exponential latencies with mean 1 ms, in nanoseconds.
fn latencies() -> Vec<u64> {
    let mut r = rng(1, 0);
    let s = ServiceSampler::new(ServiceKind::Exp, 1_000.0);
    (0..100_000).map(|_| s.sample_ns(&mut r)).collect()
}

fn bench(c: &mut Criterion) {
    let values = latencies();
    let mut full = new_histogram();
    for &v in &values {
        record_ns(&mut full, v);
    }

    let mut g = c.benchmark_group("histogram");
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("record_ns x100k", |b| {
        b.iter_batched_ref(
            new_histogram,
            |h| {
                for &v in &values {
                    record_ns(h, black_box(v));
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    c.bench_function("summarize", |b| b.iter(|| summarize(black_box(&full))));
    c.bench_function("histogram_to_string", |b| {
        b.iter(|| histogram_to_string(black_box(&full)))
    });
    let encoded = histogram_to_string(&full);
    c.bench_function("histogram_from_string", |b| {
        b.iter(|| histogram_from_string(black_box(&encoded)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
