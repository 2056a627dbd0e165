//! The response parser on the answers a load test sees most: a small keep-alive answer with
//! `Content-Length` in one read, a chunked one, and the same split over many reads.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use queuelab_client::http::{Progress, ResponseParser};

const LENGTH: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 26 Nov 2025 16:00:00 GMT\r\n\
Content-Type: text/html\r\nContent-Length: 11\r\nLast-Modified: Wed, 26 Nov 2025 15:00:00 GMT\r\n\
Connection: keep-alive\r\nETag: \"6927a0f0-b\"\r\nAccept-Ranges: bytes\r\n\r\nhello world";
const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

/// Parses `input` fed `step` bytes at a time, as the engine does; returns the status.
fn parse(p: &mut ResponseParser, input: &[u8], step: usize) -> u16 {
    let mut buf = [0u8; 1024];
    let (mut len, mut fed) = (0, 0);
    loop {
        let end = (fed + step).min(input.len());
        buf[len..len + end - fed].copy_from_slice(&input[fed..end]);
        len += end - fed;
        fed = end;
        let (n, progress) = p.advance(&buf[..len], false);
        buf.copy_within(n..len, 0);
        len -= n;
        match progress {
            Progress::Done { status, .. } => return status,
            Progress::NeedMore if fed < input.len() => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("response");
    for (name, input, step) in [
        ("content-length, one read", LENGTH, LENGTH.len()),
        ("chunked, one read", CHUNKED, CHUNKED.len()),
        ("content-length, 16-byte reads", LENGTH, 16),
    ] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        let mut p = ResponseParser::new();
        g.bench_function(name, |b| {
            b.iter(|| parse(&mut p, std::hint::black_box(input), step))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
