//! Asking another process to stop: the lab's guard over the servers it starts sends SIGTERM
//! (qserve then finishes what is queued within its grace and exits) before it falls back on
//! `std::process::Child::kill`'s SIGKILL; and, for the ways out where no guard runs (the lab
//! killed, or a second Ctrl-C that exits at once), the servers get SIGTERM from the kernel when
//! the thread that started them ends (`PR_SET_PDEATHSIG`).
use std::io;
use std::process::Command;

/// Sends SIGTERM to the process `pid` (as `std::process::Child::id` gives it).
pub fn terminate(pid: u32) -> io::Result<()> {
    signal(pid, rustix::process::Signal::TERM)
}

/// Sends SIGINT to the process `pid`, as Ctrl-C in its terminal would.
pub fn interrupt(pid: u32) -> io::Result<()> {
    signal(pid, rustix::process::Signal::INT)
}

/// Makes the child that `cmd` spawns receive SIGTERM when the thread that spawned it ends,
/// however it ends (the kernel sends it: Linux's parent-death signal, which follows the spawning
/// thread, not the process). Spawn from a thread that lives as long as the child should.
pub fn terminate_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // work is allowed: it makes one prctl system call, allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(io::Error::from)
        })
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no process {pid}")))?;
    rustix::process::kill_process(pid, sig).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_stops_on_terminate() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        terminate(child.id()).expect("the signal is sent");
        let status = child.wait().expect("it exits");
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(15), "{status:?}");
    }

    #[test]
    fn a_child_is_terminated_when_the_thread_that_spawned_it_ends() {
        let mut child = std::thread::spawn(|| {
            terminate_with_parent(std::process::Command::new("sleep").arg("30"))
                .spawn()
                .expect("sleep starts")
        })
        .join()
        .expect("the spawning thread ends");
        let status = child.wait().expect("it exits");
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(15), "{status:?}");
    }

    #[test]
    fn pid_zero_is_refused_rather_than_signalling_the_group() {
        assert_eq!(
            terminate(0)
                .expect_err("0 would mean the whole process group")
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
