//! A hierarchical timer wheel (Varghese & Lauck, "Hashed and hierarchical timing wheels", 1987).
//!
//! Time is an integer count of *ticks* since a start instant chosen by the caller (`qserve` uses
//! [`TICK_NS`] = 250 ns per tick on its clock). A deadline is the first tick at which an entry may
//! fire; callers round real deadlines *up* to a tick ([`tick_ceil`]), so an entry never fires
//! early, and at most one tick (250 ns) late from rounding.
//!
//! Layout: [`LEVELS`] levels of 64 slots. Level `L` slot `s` covers `64^L` ticks; an entry sits at
//! the lowest level whose slot range separates its deadline from the current time, found from the
//! highest bit in which `elapsed` and the deadline differ. Each level keeps an `occupied: u64`
//! bitmap, so the next occupied slot is one `rotate_right` and one `trailing_zeros`. When a slot at
//! level `L > 0` comes due its entries *cascade*: each is placed again, relative to the slot's start,
//! at a lower level (or fires if due). With six levels the wheel spans `2^36` ticks (about 4.8 hours
//! at 250 ns); a deadline further away is parked in the top level and placed again when its parked
//! slot comes due, so no deadline is too far.
//!
//! Invariants (checked by the tests, stated for the maintainer):
//! - every occupied slot starts strictly after `elapsed`;
//! - a lower level's occupied slots all start before a higher level's, so the earliest slot is the
//!   first occupied one found searching upwards from level 0;
//! - `min[slot]` is the smallest placement deadline in a slot, so the next deadline to arm a timer
//!   for is `min` of the earliest slot (never later than any entry's real deadline).
//!
//! Entries are small `Copy` payloads (slab keys with a generation in `qserve`) stored in per-slot
//! `Vec`s that keep their capacity, so after warm-up inserting and expiring allocate nothing.
//! Cancellation is lazy: the owner ignores an expired entry whose generation no longer matches.

/// Nanoseconds per tick in `qserve`.
pub const TICK_NS: u64 = 250;

/// The first tick at or after `ns` (where a deadline at `ns` goes).
#[inline]
pub fn tick_ceil(ns: u64) -> u64 {
    ns.div_ceil(TICK_NS)
}

/// The last tick at or before `ns` (how far the wheel may advance at `ns`).
#[inline]
pub fn tick_floor(ns: u64) -> u64 {
    ns / TICK_NS
}

/// Number of levels.
pub const LEVELS: usize = 6;
/// Bits of a tick count per level (64 slots).
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Farthest a placement may lie ahead of `elapsed`: far enough to use the whole top level but never
/// wrapping onto the current top-level slot.
pub const MAX_SPAN: u64 = (1 << (SLOT_BITS as u64 * LEVELS as u64)) - (1 << (SLOT_BITS as u64 * 5));

/// An entry: its deadline (ticks) and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired<T> {
    /// The tick the entry was due at (its deadline as inserted).
    pub deadline: u64,
    /// The payload.
    pub value: T,
}

#[derive(Debug)]
struct Level<T> {
    occupied: u64,
    slots: Vec<Vec<Expired<T>>>,
    /// Smallest placement deadline per slot (`u64::MAX` when empty).
    min: [u64; SLOTS],
}

impl<T> Level<T> {
    fn new(per_slot: usize) -> Self {
        Level {
            occupied: 0,
            slots: (0..SLOTS).map(|_| Vec::with_capacity(per_slot)).collect(),
            min: [u64::MAX; SLOTS],
        }
    }
}

/// A hierarchical timer wheel of `Copy` payloads; see the [module docs](self).
#[derive(Debug)]
pub struct Wheel<T> {
    /// Ticks up to and including `elapsed` have been processed.
    elapsed: u64,
    levels: Vec<Level<T>>,
    /// Entries inserted with a deadline already passed; they fire at the next [`Wheel::advance`].
    ready: Vec<Expired<T>>,
    /// Reused buffer for the entries of a slot being processed.
    scratch: Vec<Expired<T>>,
    len: usize,
}

impl<T: Copy> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The level at which a placement deadline `p > elapsed` belongs.
#[inline]
fn level_for(elapsed: u64, p: u64) -> usize {
    let masked = (elapsed ^ p) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    ((significant / SLOT_BITS) as usize).min(LEVELS - 1)
}

impl<T: Copy> Wheel<T> {
    /// An empty wheel at tick 0.
    pub fn new() -> Self {
        Self::with_slot_capacity(0)
    }

    /// An empty wheel whose slots start with room for `per_slot` entries each, so that a fresh
    /// wheel does not allocate until a slot holds more than that.
    pub fn with_slot_capacity(per_slot: usize) -> Self {
        Wheel {
            elapsed: 0,
            levels: (0..LEVELS).map(|_| Level::new(per_slot)).collect(),
            ready: Vec::with_capacity(per_slot),
            scratch: Vec::with_capacity(per_slot),
            len: 0,
        }
    }

    /// Number of entries not yet expired.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last tick processed by [`Wheel::advance`].
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Adds an entry due at tick `deadline`. A deadline at or before [`Wheel::elapsed`] fires at the
    /// next [`Wheel::advance`].
    pub fn insert(&mut self, deadline: u64, value: T) {
        self.len += 1;
        let e = Expired { deadline, value };
        if deadline <= self.elapsed {
            self.ready.push(e);
        } else {
            self.place(e);
        }
    }

    /// Puts an entry with `deadline > elapsed` into its slot.
    fn place(&mut self, e: Expired<T>) {
        debug_assert!(
            e.deadline > self.elapsed,
            "placing deadline {} at elapsed {}",
            e.deadline,
            self.elapsed
        );
        let p = e.deadline.min(self.elapsed.saturating_add(MAX_SPAN));
        let level = level_for(self.elapsed, p);
        let slot = ((p >> (SLOT_BITS * level as u32)) & (SLOTS as u64 - 1)) as usize;
        let lv = &mut self.levels[level];
        lv.slots[slot].push(e);
        lv.occupied |= 1 << slot;
        if p < lv.min[slot] {
            lv.min[slot] = p;
        }
    }

    /// The earliest occupied slot: (level, slot, first tick of the slot).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, lv) in self.levels.iter().enumerate() {
            if lv.occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level as u32;
            let now_slot = ((self.elapsed >> shift) & (SLOTS as u64 - 1)) as u32;
            let zeros = lv.occupied.rotate_right(now_slot).trailing_zeros();
            let slot = ((now_slot + zeros) as usize) & (SLOTS - 1);
            let slot_range = 1u64 << shift;
            let level_range = slot_range << SLOT_BITS;
            let level_start = self.elapsed & !(level_range - 1);
            let mut start = level_start + slot as u64 * slot_range;
            if start <= self.elapsed {
                start += level_range;
            }
            return Some((level, slot, start));
        }
        None
    }

    /// The earliest tick at which [`Wheel::advance`] may expire an entry or must cascade one, or
    /// `None` when the wheel is empty. Never later than the earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.ready.is_empty() {
            return Some(self.elapsed);
        }
        self.next_slot()
            .map(|(level, slot, start)| self.levels[level].min[slot].max(start))
    }

    /// Processes every tick up to and including `now`, appending each entry with a deadline
    /// `<= now` to `out` in deadline order (ties in no particular order). Entries still in the
    /// future move down a level (cascade). `now` before [`Wheel::elapsed`] processes nothing.
    pub fn advance(&mut self, now: u64, out: &mut Vec<Expired<T>>) {
        let first = out.len();
        self.len -= self.ready.len();
        out.append(&mut self.ready);
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = start;
            let lv = &mut self.levels[level];
            lv.occupied &= !(1u64 << slot);
            lv.min[slot] = u64::MAX;
            let mut entries = std::mem::take(&mut self.scratch);
            std::mem::swap(&mut entries, &mut lv.slots[slot]);
            for e in entries.drain(..) {
                if e.deadline <= now {
                    self.len -= 1;
                    out.push(e);
                } else {
                    self.place(e);
                }
            }
            self.scratch = entries;
        }
        if now > self.elapsed {
            self.elapsed = now;
        }
        out[first..].sort_unstable_by_key(|e| e.deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_deadlines_up_and_now_down() {
        assert_eq!(tick_ceil(0), 0);
        assert_eq!(tick_ceil(1), 1);
        assert_eq!(tick_ceil(TICK_NS), 1);
        assert_eq!(tick_ceil(TICK_NS + 1), 2);
        assert_eq!(tick_floor(TICK_NS - 1), 0);
        assert_eq!(tick_floor(TICK_NS), 1);
    }

    #[test]
    fn level_for_separates_by_highest_differing_bit() {
        let cases = [
            (0, 1, 0),
            (0, 63, 0),
            (0, 64, 1),
            (63, 64, 1),
            (0, 4095, 1),
            (0, 4096, 2),
            (0, 1 << 30, 5),
            (0, 1 << 40, 5),
        ];
        for (elapsed, p, level) in cases {
            assert_eq!(level_for(elapsed, p), level, "elapsed {elapsed}, p {p}");
        }
    }

    #[test]
    fn empty_wheel_has_no_deadline() {
        let mut w: Wheel<u32> = Wheel::new();
        assert_eq!(w.next_deadline(), None);
        let mut out = Vec::new();
        w.advance(1_000_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(w.elapsed(), 1_000_000);
    }

    #[test]
    fn past_deadline_fires_at_next_advance() {
        let mut w = Wheel::new();
        let mut out = Vec::new();
        w.advance(100, &mut out);
        w.insert(50, 7u32);
        assert_eq!(w.next_deadline(), Some(100));
        w.advance(100, &mut out);
        assert_eq!(
            out,
            vec![Expired {
                deadline: 50,
                value: 7
            }]
        );
        assert!(w.is_empty());
    }
}
