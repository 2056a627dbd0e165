//! End to end: N closed-loop clients with no think time against M/M/c must see throughput c·μ and
//! mean response time N/(c·μ).
//!
//! Derivation of the bounds. With N = 64 clients and c = 2 servers the waiting line holds about
//! N − c = 62 requests, 124 ms of work at c·μ = 500/s: a client's round trip outside the server
//! (tens of µs, a few ms on a loaded machine) never lets the line run dry, so both servers are
//! busy all the time. Departures from c busy exponential servers form a Poisson process of rate
//! c·μ (memorylessness), so the time T between the W-th and the (W+n)-th completion is a sum of n
//! independent Exp(c·μ) gaps: Gamma(n, c·μ), mean n/(c·μ), standard deviation √n/(c·μ). Hence
//! `X̂⁻¹·c·μ = T·c·μ/n` has mean 1 and standard deviation 1/√n; for n = 5000 that is 1.41%, and
//! 5.5 σ = 7.8% (two-sided normal tail 3.8·10⁻⁸; the Gamma's skewness 2/√n = 0.03 is negligible).
//! The observed completion times are the departures plus the timer lateness, the network and the
//! client's wake-up (µs, at worst tens of ms): at both ends of a 10 s window that is at most 0.4%;
//! we allow 1%.
//!
//! Response time: in a closed loop without think time, Little's law over the window gives
//! Σ (R_i + Z_i) = N·T ± (edge terms), where Z_i is the client's own time between an answer and
//! the next request. So R̄ = N·T/n − Z̄ ± edge, and `R̄·c·μ/N` deviates from 1 by the same
//! 1/√n-scaled Gamma fluctuation as above, plus Z̄·c·μ/N (0.1 ms of client time is 0.08%) and the
//! edge terms (the ages of the N requests in flight at the two ends of the window, which mostly
//! cancel; at worst N·R_max/(n·R̄) ≈ 2%). Allowance 3%.
//!
//! The service times are seeded, so on a correct server the outcome hardly varies at all; the
//! bounds are what a correct server must meet for any seed.
mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use queuelab_common::samplers::ServiceKind;
use queuelab_common::theory::Servers;
use support::*;

const CLIENTS: usize = 64;
const SERVERS: u32 = 2;
const MU: f64 = 250.0;
const WARMUP: usize = 300;
const N: usize = 5_000;

#[test]
#[ignore = "end to end and timing-dependent: scripts/test.sh runs it (cargo test -- --ignored)"]
fn closed_loop_clients_see_c_mu_and_littles_law() {
    let h = server(|c| {
        c.model.servers = Servers::Finite(SERVERS);
        c.model.mu = MU;
        c.model.service = ServiceKind::Exp;
        c.seed = 20_240_601;
        c.max_connections = 1000;
    });
    let done = Arc::new(AtomicUsize::new(0));
    let target = WARMUP + N + CLIENTS;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut s = connect(&h);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let req = get("/work");
                let mut pending = Vec::new();
                let mut records = Vec::new();
                while done.load(Ordering::Relaxed) < target {
                    let sent = Instant::now();
                    s.write_all(&req).expect("send");
                    let r = read_response(&mut s, &mut pending)
                        .expect("read")
                        .expect("an answer");
                    let finished = Instant::now();
                    assert_eq!(r.status, 200);
                    records.push((finished, finished - sent));
                    done.fetch_add(1, Ordering::Relaxed);
                }
                records
            })
        })
        .collect();
    let mut records: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("a client thread"))
        .collect();
    records.sort_by_key(|r| r.0);
    assert!(records.len() > WARMUP + N);
    let window = &records[WARMUP..=WARMUP + N];
    let t = (window[N].0 - window[0].0).as_secs_f64();
    let c_mu = f64::from(SERVERS) * MU;
    let mean_rt = window[1..].iter().map(|r| r.1.as_secs_f64()).sum::<f64>() / N as f64;

    let sigma = 1.0 / (N as f64).sqrt();
    let throughput_ratio = N as f64 / t / c_mu;
    let rt_ratio = mean_rt * c_mu / CLIENTS as f64;
    let tp_tol = 5.5 * sigma + 0.01;
    let rt_tol = 5.5 * sigma + 0.03;
    assert!(
        (1.0 / throughput_ratio - 1.0).abs() <= tp_tol,
        "throughput {:.1}/s, expected c*mu = {c_mu}/s (ratio {throughput_ratio:.4}, tolerance {tp_tol:.4})",
        N as f64 / t
    );
    assert!(
        (rt_ratio - 1.0).abs() <= rt_tol,
        "mean response time {:.2} ms, expected N/(c*mu) = {:.2} ms (ratio {rt_ratio:.4}, tolerance {rt_tol:.4})",
        mean_rt * 1e3,
        CLIENTS as f64 / c_mu * 1e3
    );

    h.shutdown();
    let summary = h.join().expect("clean shutdown");
    assert!(summary.counters.served as usize >= WARMUP + N);
    assert_eq!(summary.counters.blocked + summary.counters.overflow, 0);
    eprintln!(
        "closed loop: throughput ratio {throughput_ratio:.4}, response time ratio {rt_ratio:.4} \
         (tolerances {tp_tol:.4}, {rt_tol:.4}); timer lateness p50 {:.1}us p99 {:.1}us",
        summary.lateness.p50, summary.lateness.p99
    );
}
