//! Micro-benchmarks of the per-request work: parsing a head, the queue model and the timer wheel.
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use queuelab_common::model::{Classes, Discipline, Model, Servers};
use queuelab_server::http::{ConnHeader, RequestReader, ServerTiming, write_served};
use queuelab_server::queue::{Outcome, Poll, QueueModel, Ticket};
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
    // The other disciplines: one arrival per iteration at 90% load, and the polls of the
    // tickets whose timers are due, as the I/O threads make them.
    for (name, discipline, servers) in [
        ("queue/lcfs1", Discipline::Lcfs, 1),
        ("queue/ps1", Discipline::Ps, 1),
        ("queue/ps8", Discipline::Ps, 8),
        ("queue/np1", Discipline::Priority, 1),
        ("queue/pr8", Discipline::PriorityPreemptive, 8),
    ] {
        c.bench_function(name, |b| {
            let model = Model::new(1000.0, Servers::Finite(servers))
                .with_discipline(discipline)
                .with_classes(Classes::new(&[0.2, 0.3, 0.5]).expect("valid classes"));
            let mut m = QueueModel::new(&model, 1, 100_000);
            let mut timers: BinaryHeap<Reverse<(u64, u32, u32, u8)>> = BinaryHeap::new();
            let gap = 1_111_111 / u64::from(servers);
            let mut t = 0u64;
            b.iter(|| {
                t += gap;
                while let Some(&Reverse((due, id, generation, class))) = timers.peek() {
                    if due > t {
                        break;
                    }
                    timers.pop();
                    let ticket = Ticket {
                        id,
                        generation,
                        tentative_ns: due,
                        class,
                    };
                    if let Poll::Pending(next) = m.poll(ticket, due) {
                        timers.push(Reverse((next, id, generation, class)));
                    }
                }
                if let Outcome::Queued(k) = m.arrive(t, None) {
                    timers.push(Reverse((k.tentative_ns, k.id, k.generation, k.class)));
                }
                black_box(timers.len())
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
