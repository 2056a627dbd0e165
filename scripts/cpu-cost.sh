#!/usr/bin/env bash
# The CPU price of a qserve (or qload) setting: CPU time per second of two variants at several
# open-loop rates, side by side, with what each buys in accuracy. A benchmark, not a test.
#
#   scripts/cpu-cost.sh [--duration SECONDS] [--rounds N] [--rates LIST] [--model FLAGS]
#                       [--qload-a FLAGS] [--qload-b FLAGS] [--server-core N] [--client-core N]
#                       [--] ["QSERVE FLAGS A" "QSERVE FLAGS B"]
#
# Variant A and B are qserve flag sets, by default "--spin 0" against "--spin 50us" (a set of one
# word, such as "--busy-poll", goes after `--`; "" is qserve's defaults). For each
# rate (default 100,1000,10000 requests/s) the runs alternate A B A B A B (--rounds, default 3),
# each with a fresh qserve pinned to one core (--server-core, default 0) and target/release/qload
# pinned to another (--client-core, default 1), open loop, Poisson arrivals, --duration seconds
# (default 10) after a 1 s warmup. Both get the same --model flags (default
# "--model M/M/inf --mu 1000": every request is delayed 1 ms on average, one departure timer per
# request at any rate), so qload compares each run's mean latency with the theory.
#
# Measured: qserve's CPU time (utime + stime from /proc/PID/stat before and after the qload run)
# per second of the run's wall time, as % of one core; qload's own (user + system of the child,
# from bash's `time`) likewise; qload's mean latency error against theory (rel_err_mean). The
# table gives the medians over the rounds and the ratio B/A of qserve's CPU. --qload-a and
# --qload-b add qload flags to one variant only (e.g. --qload-b "--busy-poll" with the same
# qserve flags on both sides measures qload's busy-poll).
#
# Loopback only (127.0.0.1); every run is bounded by --duration plus qload's drain. Needs taskset,
# python3 and 2 cores; builds the release binaries. Markdown goes to stdout, progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10
rounds=3
rates=100,1000,10000
model="--model M/M/inf --mu 1000"
qload_a=""
qload_b=""
server_core=0
client_core=1
variants=()
while (($#)); do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --rates) rates="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --qload-a) qload_a="$2"; shift 2 ;;
        --qload-b) qload_b="$2"; shift 2 ;;
        --server-core) server_core="$2"; shift 2 ;;
        --client-core) client_core="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        --) shift; variants+=("$@"); break ;;
        # A flag set of several words ("--spin 0"); one word would be taken for an option.
        -*" "*) variants+=("$1"); shift ;;
        -*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
        *) variants+=("$1"); shift ;;
    esac
done
case ${#variants[@]} in
    0) variants=("--spin 0" "--spin 50us") ;;
    2) ;;
    *) echo "give two qserve flag sets (A and B) or none (see --help)" >&2; exit 2 ;;
esac
[[ "$duration" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "--duration takes seconds" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds takes a positive count" >&2; exit 2; }
for tool in taskset python3; do
    command -v "$tool" >/dev/null || { echo "cpu-cost.sh needs $tool" >&2; exit 2; }
done
(($(nproc) >= 2)) || { echo "cpu-cost.sh needs 2 cores (server on one, qload on another)" >&2; exit 2; }

log() { echo "cpu-cost.sh: $*" >&2; }

cargo build --release --quiet -p queuelab-server -p queuelab-client
QSERVE=$PWD/target/release/qserve
QLOAD=$PWD/target/release/qload

tmp=$(mktemp -d)
qs_pid=""
cleanup() {
    [[ -n "$qs_pid" ]] && kill "$qs_pid" 2>/dev/null && wait "$qs_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

clk_tck=$(getconf CLK_TCK)
# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now() { date +%s.%N; }

# Starts qserve pinned to the server core with the model and flags "$@"; sets qs_pid and qs_addr.
start_qserve() {
    local err="$tmp/qserve.err"
    # shellcheck disable=SC2086 # the model flags are words
    taskset -c "$server_core" "$QSERVE" --listen 127.0.0.1:0 --seed 1 $model "$@" 2>"$err" &
    qs_pid=$!
    for _ in $(seq 200); do
        grep -q "listening on" "$err" 2>/dev/null && break
        kill -0 "$qs_pid" 2>/dev/null || break
        sleep 0.05
    done
    qs_addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$err" | head -1)
    [[ -n "$qs_addr" ]] || { cat "$err" >&2; echo "qserve did not start" >&2; exit 1; }
    [[ "$(cat "/proc/$qs_pid/comm" 2>/dev/null)" == qserve* ]] \
        || { echo "pid $qs_pid is not qserve" >&2; exit 1; }
}

stop_qserve() {
    kill -TERM "$qs_pid" 2>/dev/null || true
    wait "$qs_pid" 2>/dev/null || true
    qs_pid=""
}

# One run: variant $1 (A or B), rate $2, round $3. Appends
# "variant rate round qserve_cpu_pct qload_cpu_pct rel_err_mean_pct errors" to $tmp/runs.
run() {
    local v=$1 rate=$2 round=$3 flags extra t0 t1 c0 c1
    if [[ "$v" == A ]]; then flags=${variants[0]}; extra=$qload_a; else flags=${variants[1]}; extra=$qload_b; fi
    # shellcheck disable=SC2086 # flag sets are words
    start_qserve $flags
    c0=$(cpu_ticks "$qs_pid")
    t0=$(now)
    local TIMEFORMAT='%U %S'
    # shellcheck disable=SC2086 # flag sets are words
    { time taskset -c "$client_core" "$QLOAD" -R "$rate" -d "${duration}s" --warmup 1s -t 1 \
        --seed "$round" $model $extra --json "http://$qs_addr/" \
        >"$tmp/q.json" 2>"$tmp/q.err" ; } 2>"$tmp/time" \
        || { cat "$tmp/q.err" >&2; echo "qload failed (variant $v, $rate/s)" >&2; exit 1; }
    c1=$(cpu_ticks "$qs_pid")
    t1=$(now)
    stop_qserve
    python3 - "$tmp/q.json" "$tmp/time" "$v" "$rate" "$round" "$c0" "$c1" "$t0" "$t1" \
        "$clk_tck" <<'PY' >>"$tmp/runs"
import json, sys
q, timef, v, rate, rnd = sys.argv[1:6]
c0, c1, t0, t1, hz = map(float, sys.argv[6:11])
r = json.load(open(q))
user, system = map(float, open(timef).read().split()[-2:])
wall = t1 - t0
theory = r.get("theory") or {}
err = theory.get("rel_err_mean")
print(v, rate, rnd,
      f"{(c1 - c0) / hz / wall * 100:.2f}",
      f"{(user + system) / wall * 100:.2f}",
      "nan" if err is None else f"{err * 100:.3f}",
      r["requests"]["errors"])
PY
    read -r _ _ _ qcpu lcpu err errors < <(tail -1 "$tmp/runs")
    log "round $round $v at $rate/s: qserve ${qcpu}% of a core, qload ${lcpu}%, mean error ${err}%, $errors errors"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "A: qserve ${variants[0]} ${qload_a:+(qload $qload_a)}; B: qserve ${variants[1]} ${qload_b:+(qload $qload_b)}"
: >"$tmp/runs"
IFS=, read -r -a rate_list <<<"$rates"
for rate in "${rate_list[@]}"; do
    for round in $(seq "$rounds"); do
        run A "$rate" "$round"
        run B "$rate" "$round"
    done
done

python3 - "$tmp/runs" "${variants[0]}" "${variants[1]}" "$qload_a" "$qload_b" "$model" \
    "$duration" "$rounds" "$load_before" <<'PY'
import statistics, sys
runs_file, a, b, qa, qb, model, duration, rounds, load = sys.argv[1:]
rows = [l.split() for l in open(runs_file) if l.strip()]
def med(v, rate, col):
    xs = [float(r[col]) for r in rows if r[0] == v and r[1] == rate]
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")
def desc(flags, extra):
    return f"`qserve {flags}`" + (f" with `qload {extra}`" if extra else "")
print(f"### CPU cost: A = {desc(a, qa)}, B = {desc(b, qb)}")
print()
print(f"Model `{model}`; qserve on one core, qload (open loop, Poisson, one thread) on another; "
      f"{duration} s per run after 1 s of warmup, A and B alternated over {rounds} round(s), medians; "
      f"load average before: {load}. CPU is % of one core per second of the run.")
print()
print("| rate/s | qserve A CPU % | qserve B CPU % | B/A | qload A CPU % | qload B CPU % "
      "| mean error A | mean error B | errors A, B |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
seen = []
for r in rows:
    if r[1] not in seen:
        seen.append(r[1])
for rate in seen:
    qa_, qb_ = med("A", rate, 3), med("B", rate, 3)
    ratio = qb_ / qa_ if qa_ > 0 else float("inf")
    errs = lambda v: sum(int(r[6]) for r in rows if r[0] == v and r[1] == rate)
    print(f"| {int(float(rate)):,} | {qa_:.2f} | {qb_:.2f} | {ratio:.2f}× "
          f"| {med('A', rate, 4):.2f} | {med('B', rate, 4):.2f} "
          f"| {med('A', rate, 5):+.2f}% | {med('B', rate, 5):+.2f}% | {errs('A')}, {errs('B')} |")
PY
