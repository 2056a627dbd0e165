//! Micro-benchmarks of the per-request work: parsing a head, the queue model and the timer wheel.
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use queuelab_common::model::{Model, Servers};
use queuelab_server::http::{ConnHeader, RequestReader, ServerTiming, write_served};
use queuelab_server::queue::QueueModel;
use queuelab_server::wheel::Wheel;

const WRK_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n";
const BROWSER_GET: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n";

fn parse(c: &mut Criterion) {
    for (name, req) in [("parse/wrk", WRK_GET), ("parse/browser", BROWSER_GET)] {
        c.bench_function(name, |b| {
            let mut reader = RequestReader::new();
            b.iter(|| black_box(reader.next(black_box(req))))
        });
    }
    c.bench_function("render/served", |b| {
        let date = *b"Thu, 01 Jan 1970 00:00:00 GMT";
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            out.clear();
            write_served(
                &mut out,
                &date,
                ServerTiming {
                    wait_ns: black_box(12_345),
                    service_ns: 845_000,
                    late_ns: 3_000,
                    class: None,
                },
                ConnHeader::Default,
                false,
            );
            black_box(out.len())
        })
    });
}

fn queue(c: &mut Criterion) {
    for (name, servers) in [
        ("queue/mm1", Servers::Finite(1)),
        ("queue/mm8", Servers::Finite(8)),
    ] {
        c.bench_function(name, |b| {
            let mut m = QueueModel::new(&Model::new(1000.0, servers), 1, 100_000);
            // Arrivals at 90% load of one server.
            let mut t = 0u64;
            b.iter(|| {
                t += 1_111_111;
                black_box(m.arrive(t, None))
            })
        });
    }
}

fn wheel(c: &mut Criterion) {
    c.bench_function("wheel/insert+advance", |b| {
        let mut w: Wheel<u32> = Wheel::new();
        let mut out = Vec::with_capacity(64);
        let mut now = 0u64;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        // Keep about 1000 timers 0..4 ms (16,000 ticks) ahead; advance one tick per insert.
        for i in 0..1000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            w.insert(now + (x >> 50) % 16_000 + 1, i);
        }
        b.iter(|| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            w.insert(now + (x >> 50) % 16_000 + 1, 0);
            now += 16;
            out.clear();
            w.advance(now, &mut out);
            black_box(out.len())
        })
    });
}

criterion_group!(benches, parse, queue, wheel);
criterion_main!(benches);
