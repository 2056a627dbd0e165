#!/usr/bin/env bash
# qload against its peers, side by side; prints a markdown report on stdout.
#
#   scripts/bench/client.sh
#
# - Server: nginx, one worker, access_log off, an 11-byte static file, pinned to core 0.
# - Clients, pinned to core 1, 32 connections, one thread: `qload --max`, `wrk`, `oha` (if on
#   PATH or in ~/.cargo/bin), alternated A B C A B C ..., medians of requests/s and of client CPU
#   time (user + system, from /usr/bin/time) per request; ratios to wrk.
# - System calls per request (strace -c -f, a short separate run of each).
# - qload's open loop at 1,000, 20,000 and 50,000 requests/s: achieved rate error, send lag, and
#   at 1,000/s the mean latency minus the back-to-back round trip (`qload -c 1 --max` mean).
# - Locust FastHttpUser (headless, 32 users, no wait) for reference, if `locust` is installed.
#
# Environment: QLOAD_BENCH_SECONDS (per run, default 5), QLOAD_BENCH_ROUNDS (default 3),
# QLOAD_BENCH_PORT (default 18480). Needs nginx, wrk, taskset, strace, /usr/bin/time, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/bench/peers.sh
source scripts/bench/peers.sh
bench_init client.sh 18480 wrk taskset strace /usr/bin/time python3
URL="http://127.0.0.1:$PORT/"

start_nginx

# Each run appends "name requests cpu_seconds wall_seconds" to $tmp/runs.
run_qload() {
    taskset -c 1 /usr/bin/time -f "%U %S" -o "$tmp/time" \
        "$QLOAD" --max -c 32 -t 1 -d "${SECS}s" --json "$URL" >"$tmp/q.json"
    python3 - "$tmp/q.json" "$tmp/time" <<'PY' >>"$tmp/runs"
import json, sys
r = json.load(open(sys.argv[1])); u, s = map(float, open(sys.argv[2]).read().split()[-2:])
print("qload", r["requests"]["completed"], u + s, r["duration_s"])
PY
}

peers=(qload wrk)
[[ -n "$OHA" ]] && peers+=(oha)
: >"$tmp/runs"
for _ in $(seq "$ROUNDS"); do
    for p in "${peers[@]}"; do "run_$p"; done
done

# System calls per request: short separate runs under strace.
syscalls() { # name, requests, strace output
    python3 - "$@" <<'PY'
import re, sys
name, reqs, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = {}
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[-1] not in ("syscall", "total") and f[3].isdigit():
        calls[f[-1]] = int(f[3])
hot = {k: v for k, v in calls.items() if v >= reqs * 0.01}
total = sum(hot.values())
detail = ", ".join(f"{k} {v / reqs:.2f}" for k, v in sorted(hot.items(), key=lambda kv: -kv[1]))
print(f"| {name} | {total / reqs:.2f} | {detail} |")
PY
}
strace -c -f -o "$tmp/st-qload" taskset -c 1 "$QLOAD" --max -c 32 -t 1 -n 100000 --json "$URL" >"$tmp/sq.json"
q_reqs=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['requests']['completed'])" "$tmp/sq.json")
strace -c -f -o "$tmp/st-wrk" taskset -c 1 wrk -t1 -c32 -d2s "$URL" >"$tmp/sw.txt"
w_reqs=$(grep -oE '^ *[0-9]+ requests in' "$tmp/sw.txt" | grep -oE '[0-9]+')
syscall_rows="$(syscalls "qload --max" "$q_reqs" "$tmp/st-qload")"$'\n'"$(syscalls "wrk" "$w_reqs" "$tmp/st-wrk")"
if [[ -n "$OHA" ]]; then
    strace -c -f -o "$tmp/st-oha" taskset -c 1 "$OHA" -z 2s -c 32 --no-tui --output-format json "$URL" >"$tmp/so.json"
    o_reqs=$(python3 -c "import json,sys; print(sum(json.load(open(sys.argv[1]))['statusCodeDistribution'].values()))" "$tmp/so.json")
    syscall_rows+=$'\n'"$(syscalls "oha" "$o_reqs" "$tmp/st-oha")"
fi

# Open loop precision.
taskset -c 1 "$QLOAD" --max -c 1 -t 1 -d "${SECS}s" --json "$URL" >"$tmp/rtt.json"
for rate in 1000 20000 50000; do
    taskset -c 1 "$QLOAD" -R "$rate" -t 1 -d "${SECS}s" --json "$URL" >"$tmp/open-$rate.json"
done

# Locust FastHttpUser, for reference.
locust_row=""
if command -v locust >/dev/null; then
    cat >"$tmp/locustfile.py" <<'PY'
from locust import FastHttpUser, constant, task

class Client(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/")
PY
    if (cd "$tmp" && taskset -c 1 /usr/bin/time -f "%U %S" -o "$tmp/time" \
        locust -f locustfile.py --headless -u 32 -r 32 -t "${SECS}s" --host "http://127.0.0.1:$PORT" \
        --csv "$tmp/locust" --only-summary --loglevel ERROR >/dev/null 2>&1); then
        locust_row=$(python3 - "$tmp/locust_stats.csv" "$tmp/time" <<'PY'
import csv, sys
rows = {r["Name"]: r for r in csv.DictReader(open(sys.argv[1]))}
agg = rows["Aggregated"]
u, s = map(float, open(sys.argv[2]).read().split()[-2:])
n = int(agg["Request Count"])
print(f"{float(agg['Requests/s']):.0f} {(u + s) / max(n, 1) * 1e6:.1f}")
PY
)
    fi
fi

python3 - "$tmp" "$SECS" "$ROUNDS" "$locust_row" <<'PY'
import json, statistics, sys
tmp, secs, rounds, locust = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs = {}
for line in open(f"{tmp}/runs"):
    name, reqs, cpu, wall = line.split()
    runs.setdefault(name, []).append((int(reqs) / float(wall), float(cpu) / int(reqs) * 1e6))
med = {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v), len(v))
       for k, v in runs.items()}
wrk_rps, wrk_cpu, _ = med["wrk"]
label = {"qload": "qload --max -c 32 -t 1", "wrk": "wrk -t1 -c32", "oha": "oha -c 32"}
print(f"nginx (1 worker, core 0) serving 11 bytes; clients on core 1; {secs} s runs, "
      f"{rounds} rounds alternated, medians.\n")
print("| client | requests/s | vs wrk | CPU µs/request | vs wrk | runs |")
print("|---|---:|---:|---:|---:|---:|")
for k in ("qload", "wrk", "oha"):
    if k in med:
        rps, cpu, n = med[k]
        print(f"| {label[k]} | {rps:,.0f} | {rps / wrk_rps:.2f}x | {cpu:.2f} | {cpu / wrk_cpu:.2f}x | {n} |")
if locust:
    rps, cpu = locust.split()
    print(f"| Locust FastHttpUser, 32 users (reference) | {float(rps):,.0f} | {float(rps) / wrk_rps:.2f}x | {float(cpu):.2f} | {float(cpu) / wrk_cpu:.2f}x | 1 |")
print()
print("System calls per request (strace -c -f; calls made at least once per 100 requests):\n")
print("| client | syscalls/request | breakdown |")
print("|---|---:|---|")
PY
echo "$syscall_rows"
echo
python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
rtt = json.load(open(f"{tmp}/rtt.json"))["latency_us"]["mean"]
print("qload open loop (Poisson, one thread on core 1):\n")
print("| target req/s | achieved req/s | vs target (Poisson sd) | sent on time / scheduled | send lag p50 µs | send lag p99 µs | latency mean µs | latency p99 µs | errors |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for rate in (1000, 20000, 50000):
    r = json.load(open(f"{tmp}/open-{rate}.json"))
    err = (r["achieved_rate"] - rate) / rate
    sd = 1 / (rate * r["duration_s"]) ** 0.5
    q = r["requests"]
    kept = q["sent_in_window"] / max(q["issued"], 1)
    print(f"| {rate:,} | {r['achieved_rate']:,.0f} | {100 * err:+.2f}% ({100 * sd:.2f}%) | {100 * kept:.2f}% | "
          f"{r['send_lag_us']['p50']:.1f} | {r['send_lag_us']['p99']:.1f} | {r['latency_us']['mean']:.1f} | "
          f"{r['latency_us']['p99']:.1f} | {q['errors']} |")
m1000 = json.load(open(f"{tmp}/open-1000.json"))["latency_us"]["mean"]
print(f"\nBack-to-back round trip (`qload -c 1 --max`, mean): {rtt:.1f} µs; "
      f"at 1,000 req/s the mean latency exceeds it by {m1000 - rtt:.1f} µs.")
PY
