#!/usr/bin/env bash
# The queueing lab on bare metal: start qserve, sweep the load with qload, compare with theory.
#
#   scripts/run-bench.sh [FLAGS]
#
# With no flags: the M/M/1 lab, mu = 1000/s, ten loads from 0.1 to 0.95, about ten minutes.
#
#   --mu RATE          service rate per server, requests/s (default 1000)
#   --servers N|inf    number of servers c (default 1)
#   --capacity K       capacity K, requests in the system (allows --rhos >= 1)
#   --service KIND     exp | const | uniform (default exp)
#   --rhos LIST        loads per server, comma-separated (default 0.1,0.2,...,0.9,0.95)
#   --duration DUR     measured time per point, e.g. 45s (default 45s)
#   --warmup DUR       warm-up per point (default: a few relaxation times of the queue)
#   --seed N           seed of the server's service times and of the arrivals (default 1)
#   --out DIR          results directory, created fresh (default results/YYYYmmdd-HHMMSS, UTC)
#   --url URL          drive a server that is already running (e.g. in minikube): no local
#                      server is started; the overhead is measured at URL's /healthz
#   --quick            the whole sweep in under a minute (precision traded for time)
#   --no-busy-poll     let qserve and qload sleep between events (see below; costs accuracy)
#   -h, --help         this text
#
# The script builds the release binaries when they are missing or stale (cargo build --release),
# pins qserve and its zero-service twin (which measures the fixed overhead of the path) to the
# first core this shell may use and qload to the others, listens on free loopback ports, waits
# for /healthz, runs `qlab sweep`, and always stops the servers on exit. qserve spins for 50us
# before each deadline (--spin 50us): a sleeping wake-up is late by tens of microseconds, which
# would add to every response time. For the same reason both sides busy-poll when they have cores
# of their own (qserve --busy-poll while a client is connected, qload --busy-poll while a request
# is in flight): a queued answer comes milliseconds after its request, when a sleeping client
# would pay a wake-up on every answer that the zero-service overhead run does not see. Each
# busy-polling process keeps its core fully busy during its runs. QLAB=path and QSERVE=path use those binaries instead of
# building. Results: results.json, results.csv, table.txt and SVG plots (see docs/lab.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "run-bench.sh: $*" >&2; exit 2; }

mu=1000 servers=1 capacity="" service=exp rhos="" duration="" warmup="" seed=1 out="" url="" quick=0
busy=1
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while (($#)); do
    case "$1" in
        --mu) need "$@"; mu="$2"; shift 2 ;;
        --servers) need "$@"; servers="$2"; shift 2 ;;
        --capacity) need "$@"; capacity="$2"; shift 2 ;;
        --service) need "$@"; service="$2"; shift 2 ;;
        --rhos) need "$@"; rhos="$2"; shift 2 ;;
        --duration) need "$@"; duration="$2"; shift 2 ;;
        --warmup) need "$@"; warmup="$2"; shift 2 ;;
        --seed) need "$@"; seed="$2"; shift 2 ;;
        --out) need "$@"; out="$2"; shift 2 ;;
        --url) need "$@"; url="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --no-busy-poll) busy=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
if ((quick)) && [[ -n "$duration$warmup" ]]; then
    die "--quick chooses the durations itself; drop --duration/--warmup or --quick"
fi
[[ "$service" != zero ]] || die "--service zero has no queue to sweep"

# --- binaries -----------------------------------------------------------------------------------
qload="${QLAB:-$root/target/release/qlab}"
qserve="${QSERVE:-$root/target/release/qserve}"
if [[ -z "${QLAB:-}" || ( -z "$url" && -z "${QSERVE:-}" ) ]]; then
    if command -v cargo >/dev/null; then
        echo "building release binaries (cargo build --release; quick when up to date)" >&2
        (cd "$root" && cargo build --release --quiet -p queuelab-server -p queuelab-lab)
    elif [[ ! -x "$qload" || ( -z "$url" && ! -x "$qserve" ) ]]; then
        die "cargo is not installed and the release binaries are missing (install Rust: rustup.rs)"
    else
        echo "warning: cargo not found; using the existing binaries, which may be stale" >&2
    fi
fi
[[ -x "$qload" ]] || die "no qlab binary at $qload"
[[ -n "$url" || -x "$qserve" ]] || die "no qserve binary at $qserve"

# --- cores --------------------------------------------------------------------------------------
# The CPUs this shell may run on, e.g. "0-3,6" -> 0 1 2 3 6.
cpus=()
list=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status 2>/dev/null || true)
IFS=',' read -ra parts <<<"${list:-}"
for p in "${parts[@]}"; do
    if [[ "$p" == *-* ]]; then
        for ((c = ${p%-*}; c <= ${p#*-}; c++)); do cpus+=("$c"); done
    elif [[ -n "$p" ]]; then
        cpus+=("$p")
    fi
done
server_pin=() client_pin=()
if ! command -v taskset >/dev/null; then
    echo "warning: taskset not found (util-linux): server and client run unpinned" >&2
elif ((${#cpus[@]} < 2)); then
    echo "warning: only one core available: server and client share it, expect more overhead" >&2
else
    rest=$(IFS=','; echo "${cpus[*]:1}")
    server_pin=(taskset -c "${cpus[0]}")
    client_pin=(taskset -c "$rest")
    echo "pinning: qserve on core ${cpus[0]}, qload on core(s) $rest" >&2
fi
# Busy-polling only pays when each side has a core of its own: sharing one, a spinning process
# takes the time slices the other needs to answer.
if ((busy)) && ((${#client_pin[@]} == 0)); then
    echo "warning: no core of its own for each side: busy-polling is off" >&2
    busy=0
fi
server_busy=()
((busy)) && server_busy=(--busy-poll)

# --- servers ------------------------------------------------------------------------------------
pids=()
logs=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((${#logs[@]})); then rm -f "${logs[@]}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# GET /healthz on host:port; true on a 200.
healthz() {
    local host=${1%:*} port=${1##*:} line
    if command -v curl >/dev/null; then
        curl -fsS -m 2 -o /dev/null "http://$1/healthz" 2>/dev/null
        return
    fi
    exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || return 1
    printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" >&3
    IFS= read -r -t 2 line <&3 || line=""
    exec 3<&- 3>&-
    [[ "$line" == "HTTP/1."?" 200"* ]]
}

# Starts qserve with extra flags on a free loopback port; sets `started` to its host:port.
# (Not run in a subshell: the pid and log must reach the cleanup.)
started=""
start_qserve() {
    local log addr="" pid
    log=$(mktemp)
    logs+=("$log")
    "${server_pin[@]}" "$qserve" --listen 127.0.0.1:0 --seed "$seed" --spin 50us --grace 2s \
        ${server_busy[@]+"${server_busy[@]}"} "$@" 2>"$log" &
    pid=$!
    pids+=("$pid")
    # qserve prints "qserve: listening on ADDR ..." once it is bound (port 0: the kernel picks).
    for _ in $(seq 100); do
        addr=$(grep -o 'listening on [^ ]*' "$log" | head -1 | awk '{print $3}' || true)
        [[ -n "$addr" ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "qserve $* exited at start"; }
        sleep 0.1
    done
    [[ -n "$addr" ]] || { cat "$log" >&2; die "qserve did not say where it listens"; }
    for _ in $(seq 100); do
        healthz "$addr" && { started="$addr"; return; }
        sleep 0.1
    done
    cat "$log" >&2
    die "qserve on $addr does not answer /healthz"
}

sweep_args=(--mu "$mu" --servers "$servers" --service "$service" --seed "$seed")
[[ -n "$capacity" ]] && sweep_args+=(--capacity "$capacity")
[[ -n "$rhos" ]] && sweep_args+=(--rhos "$rhos")
[[ -n "$duration" ]] && sweep_args+=(--duration "$duration")
[[ -n "$warmup" ]] && sweep_args+=(--warmup "$warmup")
((quick)) && sweep_args+=(--quick)
((busy)) && sweep_args+=(--busy-poll)

if [[ -z "$url" ]]; then
    server_flags=(--mu "$mu" --servers "$servers" --service "$service")
    [[ -n "$capacity" ]] && server_flags+=(--capacity "$capacity")
    start_qserve "${server_flags[@]}"
    addr="$started"
    start_qserve --service zero
    twin="$started"
    url="http://$addr/"
    sweep_args+=(--overhead-url "http://$twin/")
    echo "qserve $(grep -o 'model .*' "${logs[0]}" | cut -d';' -f1) at $url; zero-service twin at http://$twin/" >&2
fi

if [[ -z "$out" ]]; then
    out="$root/results/$(date -u +%Y%m%d-%H%M%S)"
fi
mkdir -p "$(dirname "$out")"
sweep_args+=(--out "$out")

status=0
"${client_pin[@]}" "$qload" sweep "${sweep_args[@]}" "$url" || status=$?
if ((status == 0)); then
    echo >&2
    echo "results in $out: table.txt, results.csv, results.json and the plots (*.svg)" >&2
    echo "redraw with: $qload report $out" >&2
else
    echo "run-bench.sh: the sweep failed (exit $status); partial results, if any, are in $out" >&2
fi
exit "$status"
