//! `qserve`: parses flags into a validated [`Config`], runs the server until SIGTERM/SIGINT and maps
//! the outcome to an exit code (0 ok, 2 bad usage, 1 runtime failure).
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, CommandFactory, FromArgMatches, Parser};
use queuelab_common::model::{DEFAULT_MU, ModelArgs};
use queuelab_common::network::Network;
use queuelab_common::units::{parse_count, parse_duration};
use queuelab_server::{Config, Forward, run};

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn count_usize(s: &str) -> Result<usize, String> {
    let n = parse_count(s).map_err(|e| e.to_string())?;
    usize::try_from(n).map_err(|_| format!("{s:?} is too large"))
}

fn seed(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("invalid seed {s:?}: expected an integer 0..=18446744073709551615"))
}

/// An HTTP/1.1 server that is a queue: each request waits in an emulated FIFO queue with c
/// servers and random service times, so clients see an M/M/c (M/M/c/K, M/D/1, M/G/1, M/M/inf)
/// system with known theory.
#[derive(Debug, Parser)]
#[command(name = "qserve", version, max_term_width = 100)]
#[command(long_about = "\
An HTTP/1.1 server that is a queue. Every request (other than /metrics and /healthz) waits in an \
emulated queue with c servers and random service times, and is answered at its departure time, \
so a client sees an M/M/c (or M/M/c/K, M/D/1, M/G/1, M/M/inf) system whose theory is known. The \
queue serves first come, first served unless --discipline says otherwise; a request may name its \
priority class with the header X-Priority: N. The answer says how long the request waited and \
was served: {\"wait_us\":12,\"service_us\":845}.

Every flag can also be set in the environment as QSERVE_<NAME> (e.g. QSERVE_MU=500, \
QSERVE_MAX_CONNECTIONS=20000); a flag on the command line wins. SIGTERM or SIGINT stops \
accepting, answers what is queued within --grace, prints a one-line summary on stderr and exits 0 \
(a second signal stops at once). Exit codes: 0 ok, 2 bad usage, 1 runtime failure.")]
struct Args {
    /// Address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:8000",
        long_help = "Address and port to listen on (IPv4 or [IPv6]:port). Port 0 picks a free \
                     port; the start-up line on stderr shows the one chosen."
    )]
    listen: SocketAddr,

    /// The queue: --mu, --servers, --capacity, --service, or --model for the last three.
    #[command(flatten)]
    model: ModelArgs,

    /// Emulate an open network of stations from a TOML file instead of one queue.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["mu", "servers", "capacity", "service", "discipline", "classes", "model"],
        long_help = "Emulate an open network of queues described in a TOML file (stations with \
                     mu, servers, capacity, service and discipline as for one queue, classes at \
                     the top level, and a routing: where an arrival enters and where a request \
                     goes after each station, or exit). Each request visits stations until it \
                     exits and is answered then (200), or 503 when a station on its way is full; \
                     it keeps its class (X-Priority: N, else drawn) on its whole route. Exact \
                     and deterministic for a seed like one queue. /metrics adds the series of \
                     each station (label station), and Server-Timing lists every visit as \
                     NAME.wait and NAME.service. Cannot be combined with --mu, --servers, \
                     --capacity, --service, --discipline, --classes or --model (see \
                     docs/qserve.md, Networks)."
    )]
    network: Option<std::path::PathBuf>,

    /// I/O threads (event loops).
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        value_parser = count_usize,
        long_help = "Number of I/O threads, each an event loop with its own listening socket \
                     (SO_REUSEPORT). They share one logical queue, so the model stays exact at \
                     any thread count. Default 1."
    )]
    threads: usize,

    /// Seed of the service-time generator [default: from the clock, printed at start-up].
    #[arg(
        long,
        value_name = "N",
        value_parser = seed,
        long_help = "Seed of the service-time generator. Service times are drawn in arrival \
                     order from one generator, so a seed and a sequence of arrival times give \
                     the same departures. Default: taken from the clock and printed in the \
                     start-up line."
    )]
    seed: Option<u64>,

    /// Connections open at most; more are closed at once.
    #[arg(
        long,
        value_name = "N",
        default_value = "10000",
        value_parser = count_usize,
        long_help = "Most connections open at once, over all I/O threads. A connection beyond it \
                     is accepted and closed at once, and counted in \
                     qserve_connections_total{result=\"rejected\"}. Default 10000."
    )]
    max_connections: usize,

    /// Longest time a request head may take to arrive; then 408.
    #[arg(
        long,
        value_name = "DUR",
        default_value = "10s",
        value_parser = duration,
        long_help = "Longest time from the first byte of a request head to its end (250ms, 10s, \
                     1m; a bare number is seconds). A slower head is answered 408 and the \
                     connection closed. Default 10s."
    )]
    header_timeout: Duration,

    /// Idle keep-alive connections are closed after this.
    #[arg(
        long,
        value_name = "DUR",
        default_value = "60s",
        value_parser = duration,
        long_help = "A connection with no request in progress and nothing to send for this long \
                     is closed. Default 60s."
    )]
    idle_timeout: Duration,

    /// On SIGTERM/SIGINT, time to answer what is queued.
    #[arg(
        long,
        value_name = "DUR",
        default_value = "10s",
        value_parser = duration,
        long_help = "On SIGTERM or SIGINT the server stops accepting, answers 503 to new \
                     requests on open connections and answers what is queued; what is still \
                     unanswered after this long is counted and dropped. Default 10s."
    )]
    grace: Duration,

    /// Busy-wait this long before each departure instead of sleeping; 0 turns it off.
    #[arg(
        long,
        value_name = "DUR",
        default_value = "50us",
        value_parser = duration,
        long_help = "Busy-wait margin before each departure: the I/O thread sleeps on a timerfd \
                     until this long before the deadline, then stays awake (serving I/O, then \
                     spinning on the clock) until it. A sleeping wake-up is late by tens of \
                     microseconds (p99 80-180us on a virtual CPU), and that lateness adds to every \
                     response time; spinning takes it out. The cost is bounded: at most the \
                     margin per departure, i.e. rate x margin of one core (5% at 1,000 req/s with \
                     50us), up to a whole core under heavy load. --spin 0 never spins: use it \
                     where CPU time is scarce or billed, e.g. in a container with a CPU limit \
                     (QSERVE_SPIN=0). At most 100ms. Default 50us (see docs/qserve.md)."
    )]
    spin: Duration,

    /// Never sleep while a connection is open: poll without a timeout (costs a core) [default:
    /// on when a core is left over]
    #[arg(
        long,
        value_parser = clap::builder::BoolishValueParser::new(),
        conflicts_with = "no_busy_poll",
        long_help = "Poll for I/O with a zero timeout instead of sleeping in epoll_wait while any \
                     connection is open, so that an arrival is read, and a departure written, \
                     without a wake-up's delay (tens of microseconds; about 40us a wake-up on a \
                     virtual CPU, which lands in every response time). Costs the whole core while \
                     clients are connected; with no connection open the server sleeps as usual. \
                     On by default when the process can keep more CPUs busy than it has I/O \
                     threads (its allowed CPUs, fewer under a container's CPU limit), so that one \
                     is left for a client or the kernel; --no-busy-poll turns it off. \
                     QSERVE_BUSY_POLL=1 (or true, yes, on) sets it."
    )]
    busy_poll: bool,

    /// Sleep in epoll_wait between events even when a core is left over (see --busy-poll)
    #[arg(
        long,
        value_parser = clap::builder::BoolishValueParser::new(),
        long_help = "Sleep in epoll_wait between events, never busy-polling: for a server that \
                     must leave its CPU to other work, e.g. in a container whose CPU time is \
                     billed (QSERVE_NO_BUSY_POLL=1)."
    )]
    no_busy_poll: bool,

    /// Send each served request on to this downstream (http://host:port/) and relay its answer.
    #[arg(
        long,
        value_name = "URL",
        long_help = "Forwarding: after its own wait and service, each request (other than \
                     /metrics and /healthz) is sent on to the downstream at URL, http://host:port/ \
                     (the path must be /: the request keeps its own method, path, query and body; \
                     Host becomes the downstream's host:port), and answered when the downstream \
                     answers, with the downstream's status and body. The host is resolved once at \
                     start. Server-Timing lists this station's wait, service and late, then hop \
                     (the hop's time net of the downstream's own durations, so the sum of every \
                     dur stays this station's time), then the downstream's entries. A downstream \
                     that refuses, resets, closes early or answers garbage or too much gives 502, \
                     one that does not answer within --forward-timeout gives 504 (counted in \
                     qserve_forward_errors_total by kind). See docs/qserve.md."
    )]
    forward: Option<String>,

    /// Downstream connections per I/O thread (--forward).
    #[arg(
        long,
        value_name = "N",
        default_value = "64",
        value_parser = count_usize,
        long_help = "Most keep-alive connections to the --forward downstream per I/O thread, \
                     each with one request in flight; opened on demand and reused most recent \
                     first. 1 to 4096. Default 64."
    )]
    forward_connections: usize,

    /// Requests waiting for a downstream connection per I/O thread (then 502 forward_busy).
    #[arg(
        long,
        value_name = "N",
        default_value = "1024",
        value_parser = count_usize,
        long_help = "Most requests per I/O thread waiting for a free --forward connection; one \
                     over it is answered 502 {\"error\":\"forward_busy\"}. Default 1024."
    )]
    forward_queue: usize,

    /// Longest wait for the downstream's answer (then 504).
    #[arg(
        long,
        value_name = "DUR",
        default_value = "10s",
        value_parser = duration,
        long_help = "Longest time from a request's departure here to the --forward downstream's \
                     complete answer, waiting for a connection included; then it is answered 504 \
                     {\"error\":\"forward_timeout\"} and its downstream connection closed. \
                     Checked by the timeout sweep (an eighth of the shortest timeout, 1-100ms). \
                     Default 10s."
    )]
    forward_timeout: Duration,
}

/// Whether qserve busy-polls when neither `--busy-poll` nor `--no-busy-poll` is given: when the
/// process can keep more CPUs busy than it has I/O threads, so that polling leaves one for the
/// client and the kernel.
fn busy_poll_by_default(threads: usize, usable_cores: usize) -> bool {
    usable_cores > threads
}

impl Args {
    fn into_config(self) -> Config {
        let seed = self.seed.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            t ^ u64::from(std::process::id()).rotate_left(32)
        });
        Config {
            listen: self.listen,
            model: self.model.model_or(DEFAULT_MU),
            threads: self.threads,
            seed,
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            grace: self.grace,
            spin: self.spin,
            busy_poll: self.busy_poll
                || (!self.no_busy_poll
                    && busy_poll_by_default(self.threads, queuelab_os::affinity::usable_cores())),
            forward: self.forward.map(|url| Forward {
                connections: self.forward_connections,
                queue: self.forward_queue,
                timeout: self.forward_timeout,
                ..Forward::new(&url)
            }),
            ..Config::default()
        }
    }
}

/// The capacity's help, with what qserve does without one.
const CAPACITY_HELP: &str = "Capacity K of the system, counting requests waiting and in service \
(M/M/c/K). An arrival that finds K present is answered 503 at once and counted as blocked. Must \
be at least --servers. Default: no capacity, but memory stays bounded: above 100000 requests in \
the system arrivals get 503 and are counted as overflow.";

/// The classes' help, with what they mean to qserve under each discipline.
const CLASSES_HELP: &str = "The probabilities of the priority classes, class 0 the highest, e.g. \
`0.3,0.7`: each request's class is drawn at arrival (seeded, from a stream of its own) unless it \
carries `X-Priority: N` (N from 0 to 7; anything else is answered 400). Up to 8 classes; they \
must sum to 1. Classes change the order of service only under --discipline priority or \
priority-preemptive, but are allowed with any: there they only label the requests. Either way \
Server-Timing names each answer's class and /metrics has the sojourn by class. Default: one \
class.";

/// Every flag of `arg`'s command also read from `QSERVE_<NAME>` (`--max-connections`:
/// `QSERVE_MAX_CONNECTIONS`), in this one place so that no flag is left out, the shared model
/// flags included (qload and qlab flatten those too, and must not read QSERVE_*).
fn with_env(arg: Arg) -> Arg {
    let id = arg.get_id().as_str().to_owned();
    if matches!(id.as_str(), "help" | "version") {
        return arg;
    }
    let env = format!("QSERVE_{}", id.to_ascii_uppercase().replace('-', "_"));
    let arg = arg.env(env);
    match id.as_str() {
        // Shown in --help like the other defaults; `model_or` applies the same value.
        "mu" => arg.default_value(DEFAULT_MU.to_string()),
        "capacity" => arg.long_help(CAPACITY_HELP),
        "classes" => arg.long_help(CLASSES_HELP),
        _ => arg,
    }
}

/// The flags from the command line and the environment.
fn parse_args() -> Result<Args, clap::Error> {
    let mut cmd = Args::command().mut_args(with_env);
    let matches = cmd.try_get_matches_from_mut(std::env::args_os())?;
    Args::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let network = match &args.network {
        Some(path) => match Network::load(path) {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!("qserve: invalid --network {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut config = args.into_config();
    config.network = network;
    if let Err(e) = config.validate() {
        eprintln!("qserve: {e:#}");
        return ExitCode::from(2);
    }
    match run(config) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qserve: {e:#}");
            ExitCode::from(1)
        }
    }
}
