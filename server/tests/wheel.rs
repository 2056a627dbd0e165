//! The timer wheel against a reference (a plain list of pending deadlines): nothing fires early,
//! nothing fires late, answers come in deadline order, far deadlines and cascades work, many
//! timers share a tick, and a warm wheel allocates nothing.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use queuelab_server::wheel::{Expired, MAX_SPAN, Wheel};

/// Counts allocations made by the current thread (tests run on several threads at once).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator unchanged; the counter is a thread-local
// `Cell` with a const initializer, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

/// SplitMix64: a tiny deterministic generator for test inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn next_u64(r: &mut SplitMix) -> u64 {
    r.next()
}

fn rng(seed: u64, _stream: u64) -> SplitMix {
    SplitMix(seed)
}

/// Drives a wheel and a reference list with the same operations and checks every expiry.
struct Checked {
    wheel: Wheel<u64>,
    pending: Vec<(u64, u64, u64)>, // (deadline, id, now at insertion)
    now: u64,
    next_id: u64,
    out: Vec<Expired<u64>>,
    fired: u64,
}

impl Checked {
    fn new() -> Self {
        Checked {
            wheel: Wheel::new(),
            pending: Vec::new(),
            now: 0,
            next_id: 0,
            out: Vec::new(),
            fired: 0,
        }
    }

    fn insert(&mut self, deadline: u64) {
        self.wheel.insert(deadline, self.next_id);
        self.pending.push((deadline, self.next_id, self.now));
        self.next_id += 1;
    }

    fn advance(&mut self, now: u64) {
        let before = self.now;
        if let Some(next) = self.wheel.next_deadline() {
            let earliest = self.pending.iter().map(|p| p.0).min().expect("pending");
            assert!(
                next <= earliest.max(before),
                "next_deadline {next} after the earliest deadline {earliest}"
            );
        } else {
            assert!(self.pending.is_empty());
        }
        self.out.clear();
        self.wheel.advance(now, &mut self.out);
        self.now = now.max(before);
        for w in self.out.windows(2) {
            assert!(w[0].deadline <= w[1].deadline, "fired out of order: {w:?}");
        }
        for e in &self.out {
            let idx = self
                .pending
                .iter()
                .position(|p| p.1 == e.value)
                .expect("fired once, and only what was inserted");
            let (deadline, _, inserted_at) = self.pending.swap_remove(idx);
            assert_eq!(e.deadline, deadline);
            assert!(
                deadline <= self.now,
                "fired early: deadline {deadline} at {}",
                self.now
            );
            assert!(
                deadline > before || inserted_at >= before,
                "fired late: deadline {deadline} was due at the previous advance to {before}"
            );
        }
        if let Some(p) = self.pending.iter().find(|p| p.0 <= self.now) {
            panic!("deadline {} not fired by {}", p.0, self.now);
        }
        self.fired += self.out.len() as u64;
        assert_eq!(self.wheel.len(), self.pending.len());
    }
}

#[test]
fn random_operations_match_the_reference() {
    let mut r = rng(2024, 0);
    let mut c = Checked::new();
    for round in 0..20_000u64 {
        let inserts = next_u64(&mut r) % 4;
        for _ in 0..inserts {
            // Deadlines from "already due" to far beyond the wheel's span, at every scale.
            let scale = next_u64(&mut r) % 44;
            let offset = next_u64(&mut r) % (1u64 << scale).max(1);
            let deadline = if next_u64(&mut r) % 16 == 0 {
                c.now.saturating_sub(offset % 100)
            } else {
                c.now + offset
            };
            c.insert(deadline);
        }
        let step = match round % 7 {
            0 => 0,
            1..=3 => next_u64(&mut r) % 64,
            4 | 5 => next_u64(&mut r) % 100_000,
            _ => next_u64(&mut r) % (1u64 << 38),
        };
        c.advance(c.now + step);
    }
    // Everything left fires eventually, in order, none early.
    while let Some(next) = c.wheel.next_deadline() {
        c.advance(next);
    }
    assert!(c.pending.is_empty());
    assert!(c.fired > 10_000);
}

#[test]
fn advancing_one_tick_at_a_time_fires_each_at_its_tick() {
    let mut c = Checked::new();
    let mut r = rng(7, 0);
    for _ in 0..2_000 {
        let d = 1 + next_u64(&mut r) % 300_000;
        c.insert(d);
    }
    let mut t = 0;
    while !c.pending.is_empty() {
        // Jump straight to the next deadline, and check nothing fires one tick before it.
        let next = c.wheel.next_deadline().expect("pending entries");
        if next > t + 1 {
            c.advance(next - 1);
            assert!(c.out.is_empty(), "nothing is due before {next}");
        }
        t = next;
        c.advance(t);
    }
}

#[test]
fn many_timers_in_one_tick() {
    let mut c = Checked::new();
    for _ in 0..10_000 {
        c.insert(123_456);
    }
    c.advance(123_455);
    assert!(c.out.is_empty());
    c.advance(123_456);
    assert_eq!(c.out.len(), 10_000);
}

#[test]
fn cascading_keeps_deadlines_exact() {
    // Each deadline starts on a high level and must cascade down to fire at its exact tick.
    for level in 1..6u32 {
        let d = (1u64 << (6 * level)) + 37;
        let mut c = Checked::new();
        c.insert(d);
        c.advance(d / 2);
        c.advance(d - 1);
        assert!(c.out.is_empty(), "level {level}: early");
        c.advance(d);
        assert_eq!(c.out.len(), 1, "level {level}: not fired at {d}");
    }
}

#[test]
fn deadlines_beyond_the_span_wait_their_turn() {
    let far = 5 * MAX_SPAN + 12_345;
    let mut c = Checked::new();
    c.insert(far);
    c.insert(3);
    let mut steps = 0;
    while let Some(next) = c.wheel.next_deadline() {
        assert!(next <= far);
        c.advance(next);
        steps += 1;
        assert!(steps < 100, "too many intermediate wake-ups");
    }
    assert_eq!(c.now, far);
    assert!(c.pending.is_empty());
}

#[test]
fn a_warm_wheel_does_not_allocate() {
    let mut w: Wheel<u64> = Wheel::new();
    let mut out = Vec::with_capacity(1024);
    let mut r = rng(11, 0);
    let mut now = 0u64;
    let mut round = |w: &mut Wheel<u64>, out: &mut Vec<Expired<u64>>, now: &mut u64| {
        for i in 0..100 {
            w.insert(*now + 1 + next_u64(&mut r) % 50_000, i);
        }
        *now += 500;
        out.clear();
        w.advance(*now, out);
    };
    // Warm up: every slot's vector grows to its working size (vectors move between slots as
    // slots are emptied, so this takes a while to settle).
    for _ in 0..40_000 {
        round(&mut w, &mut out, &mut now);
    }
    let before = allocations();
    for _ in 0..5_000 {
        round(&mut w, &mut out, &mut now);
    }
    let allocated = allocations() - before;
    // 500,000 inserts: a few slot vectors may still meet a new peak, but nothing like one
    // allocation per insert (or per thousand).
    assert!(
        allocated < 50,
        "{allocated} allocations for 500,000 inserts"
    );
}
