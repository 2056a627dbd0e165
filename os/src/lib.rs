//! The operating-system layer of queuelab: everything `qserve` and `qload` ask of Linux beyond
//! sockets, written once, so that both binaries share one clock, one timer and one wait policy.
//!
//! - [`clock`]: the monotonic clock in integer nanoseconds, with one convention for its zero (a
//!   [`clock::Clock`] counts from the moment it was made), and the wall clock for `Date` headers.
//! - [`timer`]: a non-blocking `CLOCK_MONOTONIC` timerfd armed at absolute times on a clock, and
//!   registered in a mio poll like a socket.
//! - [`wait`]: the spin-then-poll policy of an event loop that must act at a given nanosecond.
//! - [`limits`]: raising the open-file limit (`RLIMIT_NOFILE`) for many connections.
//! - [`affinity`]: the CPUs a thread may run on, and pinning a thread to some of them.
//! - [`memory`]: returning freed heap memory to the system (`malloc_trim`).
//! - [`process`]: signalling a child process to stop (the lab's servers).
//!
//! Why a timerfd: mio's poll timeout is whole milliseconds (rounded up), far too coarse for an
//! arrival schedule with gaps of tens of microseconds or a departure due at a given 250 ns tick.
//! A timerfd armed at an absolute monotonic time (`TFD_TIMER_ABSTIME`) wakes the poll to the
//! nanosecond the kernel can manage, and no wake-up is shifted by the time spent computing it.
//!
//! The system calls go through rustix, a safe wrapper; the one call it lacks (`malloc_trim`, a
//! glibc function, not a system call) is the only `unsafe` code here.
#![deny(missing_docs)]

pub mod affinity;
pub mod clock;
pub mod limits;
pub mod memory;
pub mod process;
pub mod timer;
pub mod wait;
