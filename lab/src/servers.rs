//! The servers a sweep starts for itself: `qserve` emulating the model, and its zero-service twin,
//! which measures the fixed cost of the path at every point's rate.
//!
//! Each server is a child process listening on a free loopback port (`--listen 127.0.0.1:0`: the
//! kernel picks, qserve prints the address on its first line of stderr). It is ready when
//! `/healthz` answers 200. Both are pinned to the first core the lab may use and the lab's own
//! threads to the others, so that the client and the servers never share a core (a child inherits
//! the CPU mask of the thread that spawns it; the load generator's workers inherit the main
//! thread's). [`LocalServer`] stops its process when dropped (SIGTERM, then SIGKILL after the
//! grace), so every way out of a sweep stops the servers: success, an error, a panic, and Ctrl-C,
//! which sets the stop flag the sweep polls and so also returns through the drops. Where no drop
//! runs (qlab killed, or a second Ctrl-C, which exits at once), each server has asked the kernel
//! for SIGTERM when the thread that started it ends (`PR_SET_PDEATHSIG`), so none is left behind.
use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use queuelab_common::model::{Discipline, Model};
use queuelab_os::affinity;

/// Lines of a server's stderr kept for an error message.
const LOG_LINES: usize = 40;
/// How long a server may take to print its address and answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM (its `--grace` is shorter).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// qserve's `--grace` for the lab's servers: nothing is queued once a sweep has ended.
const GRACE: &str = "2s";

/// How the lab starts its servers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerPlan {
    /// The qserve binary.
    pub qserve: PathBuf,
    /// The queue qserve emulates (given to it as `--mu` and `--model`, in Kendall notation).
    pub model: Model,
    /// qserve's `--seed`.
    pub seed: u64,
    /// qserve's `--spin`: busy-wait this long before each departure instead of sleeping.
    pub spin: String,
    /// qserve's `--busy-poll`: poll without sleeping while a client is connected.
    pub busy_poll: bool,
    /// The CPUs the servers run on (empty: not pinned).
    pub cpus: Vec<usize>,
}

/// Where the servers run and which CPUs go to whom, decided from the CPUs this thread may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSplit {
    /// For the servers.
    pub server: Vec<usize>,
    /// For the load generator.
    pub client: Vec<usize>,
}

impl CpuSplit {
    /// The first CPU for the servers, the rest for the client; `None` with fewer than two CPUs
    /// (then both share what there is, unpinned).
    pub fn of(allowed: &[usize]) -> Option<Self> {
        match allowed {
            [first, rest @ ..] if !rest.is_empty() => Some(CpuSplit {
                server: vec![*first],
                client: rest.to_vec(),
            }),
            _ => None,
        }
    }
}

/// The qserve binary: `explicit`, else `$QSERVE`, else `qserve` beside this executable, else
/// `qserve` on the `PATH`.
pub fn find_qserve(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("QSERVE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        let sibling = exe.with_file_name("qserve");
        if sibling.is_file() {
            return sibling;
        }
    }
    PathBuf::from("qserve")
}

/// A qserve child process; stopped when dropped.
#[derive(Debug)]
pub struct LocalServer {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    what: &'static str,
}

impl LocalServer {
    /// Starts `qserve` with `args` (after the lab's own `--listen`, `--grace`) and waits until it
    /// answers `/healthz`. The server also stops when the calling thread ends (its parent-death
    /// signal follows the spawning thread), so call this from a thread that outlives its use.
    pub fn start(qserve: &Path, args: &[String], what: &'static str) -> anyhow::Result<Self> {
        let mut command = Command::new(qserve);
        // Should the lab end without its drops (killed, or a second Ctrl-C), the kernel stops
        // the server all the same.
        queuelab_os::process::terminate_with_parent(&mut command);
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--grace", GRACE])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} ({what})", qserve.display()))?;
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_LINES)));
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let log = Arc::clone(&log);
            // Reads the server's stderr to its end, so the pipe never fills and blocks it; keeps
            // the last lines for an error message and reports the address it listens on.
            std::thread::Builder::new()
                .name(format!("qlab-{what}-log"))
                .spawn(move || {
                    let mut tx = Some(tx);
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        if let Some(addr) = listening_addr(&line)
                            && let Some(tx) = tx.take()
                        {
                            let _ = tx.send(addr);
                        }
                        if let Ok(mut log) = log.lock() {
                            if log.len() == LOG_LINES {
                                log.pop_front();
                            }
                            log.push_back(line);
                        }
                    }
                })
                .context("starting a thread to read qserve's log")?;
        }
        let mut server = LocalServer {
            child,
            // Replaced below; the guard must exist before anything can fail, so that it stops
            // the process on the way out.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            what,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        server.addr = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(addr) => break addr,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        bail!("{what} exited at start ({status}){}", server.log_tail());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Its stderr closed without the line: it is exiting (or exited).
                    let deadline = Instant::now() + Duration::from_secs(1);
                    while Instant::now() < deadline {
                        if let Ok(Some(status)) = server.child.try_wait() {
                            bail!("{what} exited at start ({status}){}", server.log_tail());
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    bail!("{what} closed its stderr at start{}", server.log_tail());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "{what} did not say where it listens within {READY_TIMEOUT:?}{}",
                    server.log_tail()
                ),
            }
        };
        while !healthz(server.addr) {
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("{what} exited at start ({status}){}", server.log_tail());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{what} on {} does not answer /healthz{}",
                    server.addr,
                    server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// Its process id (to signal it: the tests stop and continue it to make a stall).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The first line it printed (the model and the theory), if any.
    pub fn banner(&self) -> Option<String> {
        self.log.lock().ok()?.front().cloned()
    }

    fn log_tail(&self) -> String {
        // Give the reader a moment to take the last lines of a process that just exited.
        std::thread::sleep(Duration::from_millis(100));
        match self.log.lock() {
            Ok(log) if !log.is_empty() => {
                let lines: Vec<&str> = log.iter().map(String::as_str).collect();
                format!("; its log:\n{}", lines.join("\n"))
            }
            _ => String::new(),
        }
    }
}

impl Drop for LocalServer {
    /// SIGTERM (qserve finishes what is queued within its grace and exits), then SIGKILL.
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = queuelab_os::process::terminate(self.child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        eprintln!(
            "qlab: {} did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it",
            self.what
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The queue and its zero-service twin, running for the lab.
#[derive(Debug)]
pub struct LocalServers {
    /// The queue under test.
    pub queue: LocalServer,
    /// The same server with `--service zero`: the path without the queue.
    pub twin: LocalServer,
}

impl LocalServers {
    /// Starts both, pinned to `plan.cpus`: the calling thread is restricted to them while it
    /// spawns the servers (which inherit its mask), so the caller moves it on afterwards.
    pub fn start(plan: &ServerPlan) -> anyhow::Result<Self> {
        let mut common = vec![
            "--seed".to_owned(),
            plan.seed.to_string(),
            "--spin".to_owned(),
            plan.spin.clone(),
        ];
        // Said either way: qserve's own default depends on the cores it finds.
        common.push(if plan.busy_poll {
            "--busy-poll".to_owned()
        } else {
            "--no-busy-poll".to_owned()
        });
        if !plan.cpus.is_empty() {
            affinity::set_current(&plan.cpus).context("pinning the servers")?;
        }
        let mut queue_args = common.clone();
        queue_args.extend(model_args(&plan.model));
        let queue = LocalServer::start(&plan.qserve, &queue_args, "qserve")?;
        let mut twin_args = common;
        twin_args.extend(["--service".to_owned(), "zero".to_owned()]);
        let twin = LocalServer::start(&plan.qserve, &twin_args, "the zero-service twin")?;
        Ok(LocalServers { queue, twin })
    }
}

/// qserve's flags for `model`: `--mu`, `--servers`, `--service` in its flag spelling (which
/// keeps a parameter such as `h2:4` or `erlang:4` that the Kendall name has not), `--capacity`
/// if any, and `--discipline` and `--classes` when they are not the defaults.
pub fn model_args(model: &Model) -> Vec<String> {
    let mut a = vec![
        "--mu".to_owned(),
        model.mu.to_string(),
        "--servers".to_owned(),
        model.servers.to_string(),
        "--service".to_owned(),
        model.service.to_string(),
    ];
    if let Some(k) = model.capacity {
        a.extend(["--capacity".to_owned(), k.to_string()]);
    }
    if model.discipline != Discipline::default() {
        a.extend(["--discipline".to_owned(), model.discipline.to_string()]);
    }
    if model.classes.len() > 1 {
        a.extend(["--classes".to_owned(), model.classes.to_string()]);
    }
    a
}

/// The address in qserve's start-up line `qserve: listening on ADDR with …`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split_once("listening on ")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

/// Whether `GET /healthz` on `addr` answers 200.
fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match s.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    head[..n].starts_with(b"HTTP/1.1 200") || head[..n].starts_with(b"HTTP/1.0 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[command(flatten)]
        model: queuelab_common::model::ModelArgs,
    }

    #[test]
    fn the_model_flags_describe_the_model_they_came_from() {
        use clap::Parser as _;
        use queuelab_common::model::{Classes, Discipline, Servers, ServiceKind};
        let models = [
            Model::default(),
            Model::new(250.0, Servers::Finite(3))
                .with_capacity(Some(9))
                .with_service(ServiceKind::H2 { cv2: 4.5 }),
            Model::new(1000.0, Servers::Infinite).with_service(ServiceKind::Erlang(4)),
            Model::default()
                .with_service(ServiceKind::Pareto {
                    alpha: 1.5,
                    ratio: 1000.0,
                })
                .with_discipline(Discipline::PriorityPreemptive)
                .with_classes(Classes::new(&[0.25, 0.75]).expect("classes")),
            Model::default()
                .with_service(ServiceKind::Lognormal { cv2: 10.0 })
                .with_discipline(Discipline::Ps),
        ];
        for m in models {
            let mut argv = vec!["qserve".to_owned()];
            argv.extend(model_args(&m));
            let back = Flags::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
                .model
                .model_or(1.0);
            assert_eq!(back, m, "{argv:?}");
        }
    }

    #[test]
    fn the_first_cpu_goes_to_the_servers_and_the_rest_to_the_client() {
        assert_eq!(CpuSplit::of(&[]), None);
        assert_eq!(CpuSplit::of(&[3]), None);
        assert_eq!(
            CpuSplit::of(&[0, 1]),
            Some(CpuSplit {
                server: vec![0],
                client: vec![1]
            })
        );
        assert_eq!(
            CpuSplit::of(&[2, 4, 5, 7]),
            Some(CpuSplit {
                server: vec![2],
                client: vec![4, 5, 7]
            })
        );
    }

    #[test]
    fn the_address_is_read_from_the_start_up_line() {
        for (line, want) in [
            (
                "qserve: listening on 127.0.0.1:40123 with 1 I/O thread; model M/M/1",
                Some("127.0.0.1:40123"),
            ),
            ("qserve: listening on [::1]:8000 with 2", Some("[::1]:8000")),
            ("qserve: warning: something else", None),
            ("qserve: listening on nowhere", None),
        ] {
            assert_eq!(
                listening_addr(line),
                want.map(|w| w.parse().expect("test address")),
                "{line}"
            );
        }
    }

    #[test]
    fn a_missing_binary_is_an_error_naming_it() {
        let err = LocalServer::start(Path::new("/nonexistent/qserve"), &[], "qserve")
            .expect_err("no such binary");
        assert!(
            format!("{err:#}").contains("/nonexistent/qserve"),
            "{err:#}"
        );
    }
}
