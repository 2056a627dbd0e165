//! CPU affinity: which CPUs a thread may run on, and restricting it to some of them.
//!
//! `qload` runs one worker per CPU the process may use and pins each to its own, so workers do
//! not migrate and their caches stay warm; the lab restricts the thread that spawns a child process
//! to a list of CPUs, since a child inherits its spawning thread's mask. A CPU is its kernel
//! number (as in `/proc/cpuinfo` or `taskset`).
use std::io;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// The CPUs the current thread may run on, in ascending order (at start-up, those of the process:
/// its cpuset, `taskset` or container limits).
pub fn allowed() -> io::Result<Vec<usize>> {
    let set = sched_getaffinity(None)?;
    Ok((0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect())
}

/// How many CPUs the process can keep busy at once: the CPUs it may run on ([`allowed`]), fewer
/// when a CPU quota (a container's CPU limit, cgroup `cpu.max`) allows less, as
/// [`std::thread::available_parallelism`] reports it. At least 1. A program that would poll
/// without sleeping asks this, so that a pod limited to one CPU is not throttled by it.
pub fn usable_cores() -> usize {
    let allowed = allowed().map_or(0, |a| a.len());
    let quota = std::thread::available_parallelism().map_or(usize::MAX, |n| n.get());
    match allowed {
        0 => quota.min(1024),
        n => n.min(quota),
    }
    .max(1)
}

/// Restricts the current thread to the CPUs in `cpus`. An empty list, or a CPU number the kernel
/// cannot represent, is an `InvalidInput` error; the kernel refuses (`EINVAL`) a list with no CPU
/// the thread's cpuset allows.
pub fn set_current(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty CPU list",
        ));
    }
    let mut set = CpuSet::new();
    for &c in cpus {
        if c >= CpuSet::MAX_CPU {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "CPU {c} is beyond the largest CPU number {}",
                    CpuSet::MAX_CPU - 1
                ),
            ));
        }
        set.set(c);
    }
    sched_setaffinity(None, &set)?;
    Ok(())
}

/// Pins the current thread to the one CPU `cpu`.
pub fn pin_current(cpu: usize) -> io::Result<()> {
    set_current(&[cpu])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_cores_are_at_most_the_allowed_ones() {
        let n = usable_cores();
        let allowed = allowed().expect("sched_getaffinity").len();
        assert!(n >= 1 && n <= allowed, "{n} usable of {allowed} allowed");
    }

    #[test]
    fn pins_a_thread_and_leaves_the_others_alone() {
        let all = allowed().expect("sched_getaffinity");
        assert!(!all.is_empty(), "a running thread may run somewhere");
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
        let (first, last) = (all[0], *all.last().expect("not empty"));
        // On a thread of its own: pinning changes only that thread's mask.
        let (pinned, pair) = std::thread::spawn(move || {
            pin_current(last).expect("pin");
            let pinned = allowed().expect("sched_getaffinity");
            set_current(&[first, last]).expect("set");
            (pinned, allowed().expect("sched_getaffinity"))
        })
        .join()
        .expect("thread");
        assert_eq!(pinned, vec![last]);
        let mut want = vec![first, last];
        want.dedup();
        assert_eq!(pair, want);
        assert_eq!(
            allowed().expect("this thread"),
            all,
            "this thread's mask changed"
        );
    }

    #[test]
    fn refuses_what_cannot_be_a_cpu_list() {
        let e = set_current(&[]).expect_err("empty");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = pin_current(CpuSet::MAX_CPU).expect_err("too large");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
