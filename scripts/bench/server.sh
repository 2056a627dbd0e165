#!/usr/bin/env bash
# qserve against nginx, and qserve's timer lateness in both wait modes. A benchmark, not a test.
#
#   scripts/bench/server.sh [--duration SECONDS] [--runs N] [--connections N] [--nice N]
#                           [--rt PRIO] [--part throughput|lateness]
#
# 1. Throughput: `qserve --service zero` against nginx with one worker answering a fixed body of
#    the same size (`return 200`, access_log off, keep-alive unlimited), each pinned to core 0 with
#    taskset, wrk pinned to core 1 (-t1 -c32 by default). Runs alternate A B A B A B; the table
#    gives medians of requests/s and of the server's CPU time per request (utime+stime from
#    /proc/PID/stat before and after each run), with ratios qserve/nginx.
# 2. Timer lateness at about 20,000 requests/s: `qserve --servers inf --mu 1000` (every request
#    sleeps 1 ms on average) under wrk -c20, with --spin 0 and --spin 50us, alternated; p50/p99 of
#    qserve_timer_lateness_seconds from /metrics, medians over the runs.
#
# --nice N runs both servers and wrk at that nice level (negative needs root): on a machine where
# other processes share the cores, their time slices otherwise dominate the tails (a descheduled
# server thread is milliseconds late whatever its wait mode). --rt PRIO runs the servers in the
# SCHED_FIFO class instead (root; not preempted by ordinary processes at all; a server spinning at
# 100% CPU would then meet the kernel's real-time throttling, 50 ms pauses each second).
#
# Needs nginx and wrk (Debian packages nginx-light or nginx, and wrk), taskset, curl, python3 and
# at least 2 cores; installs nothing. Builds qserve in release mode. Markdown goes to stdout,
# progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=8
runs=3
conns=32
niceness=0
rt=0
part=all
while (($#)); do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --connections) conns="$2"; shift 2 ;;
        --nice) niceness="$2"; shift 2 ;;
        --part) part="$2"; shift 2 ;;
        --rt) rt="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

NGINX=$(command -v nginx || true)
[[ -z "$NGINX" && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
for tool in wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "server.sh needs $tool" >&2; exit 2; }
done
[[ -n "$NGINX" ]] || { echo "server.sh needs nginx (apt-get install nginx-light)" >&2; exit 2; }
(( $(nproc) >= 2 )) || { echo "server.sh needs 2 cores (server on 0, wrk on 1)" >&2; exit 2; }

log() { echo "server.sh: $*" >&2; }
# Command prefixes pinning to a core at the chosen nice level (nice and taskset exec the program,
# so `$!` of a backgrounded command is the program's own pid).
core0=(nice -n "$niceness" taskset -c 0)
if ((rt > 0)); then
    core0=(chrt -f "$rt" taskset -c 0)
fi
sched="nice level $niceness"
((rt > 0)) && sched="servers SCHED_FIFO priority $rt, wrk at nice level $niceness"
core1=(nice -n "$niceness" taskset -c 1)
# Fails unless pid $1 runs the program named $2.
expect_comm() {
    local comm
    comm=$(cat "/proc/$1/comm" 2>/dev/null || true)
    [[ "$comm" == "$2"* ]] || { echo "pid $1 is '$comm', expected $2" >&2; exit 1; }
}

cargo build --release --quiet -p queuelab-server
QSERVE=target/release/qserve

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# A loopback port nothing listens on: random ones from the ephemeral range until a connect fails.
free_port() {
    local p
    while :; do
        p=$((32768 + RANDOM % 28000))
        (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null || { echo "$p"; return; }
    done
}
clk_tck=$(getconf CLK_TCK)
# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

wait_http() {
    local url=$1
    for _ in $(seq 100); do
        curl -s -o /dev/null "$url" && return 0
        sleep 0.05
    done
    echo "server at $url did not come up" >&2
    return 1
}

# --- nginx: one worker, a fixed 29-byte body like qserve's, no access log -----------------------
body='{"wait_us":0,"service_us":0}'
nginx_port=$(free_port)
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 65;
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            default_type application/json;
            return 200 '$body\n';
        }
    }
}
EOF

start_nginx() {
    "${core0[@]}" "$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>>"$tmp/nginx/logs/stderr" &
    nginx_master=$!
    pids+=("$nginx_master")
    wait_http "http://127.0.0.1:$nginx_port/"
    nginx_worker=$(pgrep -P "$nginx_master" | head -1)
    expect_comm "$nginx_master" nginx
    expect_comm "$nginx_worker" nginx
}

# Starts qserve pinned to core 0 with the given flags; sets qs_pid and qs_url.
start_qserve() {
    local err="$tmp/qserve.$RANDOM.err"
    "${core0[@]}" "$QSERVE" --listen 127.0.0.1:0 --max-connections 4096 "$@" 2>"$err" &
    qs_pid=$!
    pids+=("$qs_pid")
    for _ in $(seq 100); do
        grep -q "listening on" "$err" 2>/dev/null && break
        sleep 0.05
    done
    local addr
    addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$err" | head -1)
    [[ -n "$addr" ]] || { cat "$err" >&2; echo "qserve did not start" >&2; exit 1; }
    qs_url="http://$addr"
    wait_http "$qs_url/healthz"
    expect_comm "$qs_pid" qserve
}

stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Runs wrk against $1 for $2 seconds with $3 connections, measuring CPU of pid $4.
# Prints "requests_per_s cpu_us_per_request".
measure() {
    local url=$1 secs=$2 c=$3 pid=$4 before after out reqs rps
    before=$(cpu_ticks "$pid")
    out=$("${core1[@]}" wrk -t1 -c"$c" -d"${secs}s" "$url")
    after=$(cpu_ticks "$pid")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
        log "wrk reported errors against $url:"; echo "$out" >&2
    fi
    awk -v r="$rps" -v n="$reqs" -v t="$((after - before))" -v hz="$clk_tck" \
        'BEGIN {printf "%.0f %.3f\n", r, (t / hz) * 1e6 / n}'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# --- 1. throughput -----------------------------------------------------------------------------
if [[ "$part" == all || "$part" == throughput ]]; then
log "throughput: nginx vs qserve --service zero, ${runs}x ${duration}s each, wrk -t1 -c$conns"
start_nginx
start_qserve --service zero
nginx_qs_pid=$qs_pid
zero_url=$qs_url
# Warm-up (page cache, TCP, CPU frequency).
measure "http://127.0.0.1:$nginx_port/" 1 "$conns" "$nginx_worker" >/dev/null
measure "$zero_url/" 1 "$conns" "$nginx_qs_pid" >/dev/null
n_rps=(); n_cpu=(); q_rps=(); q_cpu=()
for i in $(seq "$runs"); do
    read -r r c < <(measure "http://127.0.0.1:$nginx_port/" "$duration" "$conns" "$nginx_worker")
    n_rps+=("$r"); n_cpu+=("$c"); log "run $i nginx:  $r req/s, $c us CPU/request"
    read -r r c < <(measure "$zero_url/" "$duration" "$conns" "$nginx_qs_pid")
    q_rps+=("$r"); q_cpu+=("$c"); log "run $i qserve: $r req/s, $c us CPU/request"
done
stop "$nginx_qs_pid"
stop "$nginx_master"

nr=$(median "${n_rps[@]}"); nc=$(median "${n_cpu[@]}")
qr=$(median "${q_rps[@]}"); qc=$(median "${q_cpu[@]}")
echo "### qserve --service zero against nginx"
echo
echo "Server pinned to core 0, \`wrk -t1 -c$conns -d${duration}s\` on core 1, $runs alternations; medians;"\
     "$sched; load average before: $load_before."
echo
echo "| server | requests/s | CPU per request (µs) | runs (requests/s) |"
echo "|---|---:|---:|---|"
echo "| nginx, 1 worker, \`return 200\` | $nr | $nc | ${n_rps[*]} |"
echo "| qserve --service zero | $qr | $qc | ${q_rps[*]} |"
awk -v nr="$nr" -v qr="$qr" -v nc="$nc" -v qc="$qc" \
    'BEGIN {printf "| **qserve / nginx** | **%.2f×** | **%.2f×** | goal ≥ 1.10× and ≤ 0.85× |\n", qr/nr, qc/nc}'
echo
fi

# --- 2. timer lateness -------------------------------------------------------------------------
[[ "$part" == all || "$part" == lateness ]] || exit 0
lat_conns=20
log "timer lateness: qserve --servers inf --mu 1000 under wrk -c$lat_conns, with --spin 0 and --spin 50us"
# One run of qserve with extra flags "$@"; sets lat (p50_us p99_us requests_per_s cpu_us_per_s).
# Runs in the main shell, so the cleanup trap knows the server's pid.
lateness_run() {
    start_qserve --servers inf --mu 1000 --seed 1 "$@"
    local pid=$qs_pid url=$qs_url r c metrics p50 p99
    read -r r c < <(measure "$url/" "$duration" "$lat_conns" "$pid")
    metrics=$(curl -s "$url/metrics")
    stop "$pid"
    p50=$(awk '/^qserve_timer_lateness_seconds\{quantile="0.5"\}/ {printf "%.1f", $2 * 1e6}' <<<"$metrics")
    p99=$(awk '/^qserve_timer_lateness_seconds\{quantile="0.99"\}/ {printf "%.1f", $2 * 1e6}' <<<"$metrics")
    # CPU per second of wall time: the price of spinning.
    lat=$(awk -v p50="$p50" -v p99="$p99" -v r="$r" -v c="$c" \
        'BEGIN {printf "%s %s %s %.0f\n", p50, p99, r, c * r}')
}
s_p50=(); s_p99=(); s_rps=(); s_cpu=(); p_p50=(); p_p99=(); p_rps=(); p_cpu=()
for i in $(seq "$runs"); do
    lateness_run --spin 0
    read -r a b r c <<<"$lat"
    s_p50+=("$a"); s_p99+=("$b"); s_rps+=("$r"); s_cpu+=("$c")
    log "run $i timerfd sleep: p50 ${a}us p99 ${b}us at $r req/s"
    lateness_run --spin 50us
    read -r a b r c <<<"$lat"
    p_p50+=("$a"); p_p99+=("$b"); p_rps+=("$r"); p_cpu+=("$c")
    log "run $i spin 50us:     p50 ${a}us p99 ${b}us at $r req/s"
done
echo "### Timer lateness (fire time minus departure time)"
echo
echo "\`qserve --servers inf --mu 1000\` on core 0 (each request is delayed 1 ms on average),"\
     "\`wrk -t1 -c$lat_conns -d${duration}s\` on core 1; $runs alternations, medians; $sched."
echo
echo "| wait mode | lateness p50 (µs) | lateness p99 (µs) | requests/s | server CPU (ms per s) | runs p99 (µs) |"
echo "|---|---:|---:|---:|---:|---|"
echo "| timerfd sleep (--spin 0) | $(median "${s_p50[@]}") | $(median "${s_p99[@]}") | $(median "${s_rps[@]}") | $(awk -v c="$(median "${s_cpu[@]}")" 'BEGIN {printf "%.0f", c/1000}') | ${s_p99[*]} |"
echo "| --spin 50us | $(median "${p_p50[@]}") | $(median "${p_p99[@]}") | $(median "${p_rps[@]}") | $(awk -v c="$(median "${p_cpu[@]}")" 'BEGIN {printf "%.0f", c/1000}') | ${p_p99[*]} |"
