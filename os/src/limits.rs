//! Resource limits: the open-file limit, which bounds how many connections a process can hold.
//!
//! A distribution's default soft limit on open files is often 1024, and each connection is a
//! descriptor. The soft limit may be raised by any process up to the hard limit, so both binaries
//! raise it at start-up as far as they need.
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) towards `wanted`, as far as the hard
/// limit allows, and returns the soft limit then in effect (`u64::MAX` for unlimited). A soft
/// limit already at or above `wanted` is left alone; `u64::MAX` asks for the hard limit. When
/// the limit cannot be raised it stays as it was, which is what is returned.
pub fn raise_open_files(wanted: u64) -> u64 {
    let lim = getrlimit(Resource::Nofile);
    let cur = lim.current.unwrap_or(u64::MAX);
    let hard = lim.maximum.unwrap_or(u64::MAX);
    let target = wanted.min(hard);
    if cur >= target {
        return cur;
    }
    let raised = Rlimit {
        current: (target != u64::MAX).then_some(target),
        maximum: lim.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => target,
        Err(_) => cur,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_to_what_is_wanted_within_the_hard_limit() {
        let before = getrlimit(Resource::Nofile);
        let cur = before.current.unwrap_or(u64::MAX);
        let hard = before.maximum.unwrap_or(u64::MAX);
        // Asking for less than the soft limit changes nothing.
        assert_eq!(raise_open_files(0), cur);
        assert_eq!(getrlimit(Resource::Nofile), before);
        // Asking for everything reaches the hard limit (or, if the kernel refuses that, keeps
        // the soft limit); either way the result is what getrlimit then reports.
        let got = raise_open_files(u64::MAX);
        assert!(got >= cur && got <= hard, "{got} outside [{cur}, {hard}]");
        assert_eq!(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX), got);
        // Once raised, asking for less again keeps it.
        assert_eq!(raise_open_files(cur), got);
    }
}
