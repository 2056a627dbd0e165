#!/usr/bin/env bash
# Many concurrent connections: N connections open at once on each side, with RSS at most 64 MiB.
#
#   scripts/bench/connections.sh [--connections 10000] [--service 5] [--duration 20] [--limit-mb 64]
#                                [--port 18620] [--out DIR]
#
# How N connections are held open at once (not merely opened over time): qserve is a pure delay
# with a constant service time (M/D/inf: --servers inf --service const --mu 1/SERVICE), and qload
# runs a closed loop of N users (--users N -c N, think time Exp(200 ms)). A user's request takes
# SERVICE seconds (5 s), so within the first ~2 s (the users' first think times) all N users have a
# request in flight, each on its own connection: a user only reuses an idle connection, and none is
# idle while all N are waiting. From then on the N connections stay open (keep-alive, idle timeout
# raised to 120 s) until qload ends. qserve runs with --max-connections N + N/10 + 100, so nothing
# is refused.
#
# - qserve pinned to core 0, qload to core 1, both on 127.0.0.1; `ulimit -n` raised to 65536 (or
#   the hard limit, which must exceed N + 100).
# - Every second: both VmRSS (/proc/PID/status); qserve's qserve_connections gauge (minus the
#   scrape's own connection); the established TCP connections on each side of the port, counted by
#   `ss` (local port PORT: qserve's ends; remote port PORT: qload's ends, the scrape's excluded);
#   and each process's socket file descriptors (/proc/PID/fd; qserve's include its listener and
#   its signal socket pair) go to DIR/samples.csv.
# - Checks (markdown table on stdout, exit 1 on a violation, 2 on bad usage or a missing tool):
#   the peaks of qserve's gauge, of both `ss` counts and of qload's reported connections.peak all
#   reach N; the largest RSS sampled of each process is at most --limit-mb MiB (1 MiB = 1024 kB of
#   VmRSS); qload finished without errors; no connection was rejected.
# - Bounded: qload runs --duration seconds plus at most one timeout (service + 10 s); a watchdog
#   kills it after that plus 60 s; qserve gets SIGTERM, then SIGKILL; a trap kills both on exit.
#
# Loopback only. N connections from one client address to one port use N ephemeral ports: N must
# stay below the size of net.ipv4.ip_local_port_range (28,232 by default).
set -euo pipefail
cd "$(dirname "$0")/../.."

N=10000
SERVICE=5
DURATION=20
LIMIT_MB=64
PORT=18620
OUT=""
usage() { # usage EXIT_STATUS
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit "$1"
}
while (($#)); do
    case "$1" in
        --connections) N=${2:?}; shift 2 ;;
        --service) SERVICE=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --limit-mb) LIMIT_MB=${2:?}; shift 2 ;;
        --port) PORT=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        -h | --help) usage 0 ;;
        *) echo "connections.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
for v in N SERVICE DURATION LIMIT_MB PORT; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} == 0)); then
        echo "connections.sh: $v must be a positive integer" >&2
        exit 2
    fi
done
for tool in taskset curl jq awk ss; do
    command -v "$tool" >/dev/null || { echo "connections.sh needs $tool" >&2; exit 2; }
done
if (($(nproc) < 2)); then
    echo "connections.sh needs two cores (server on core 0, client on core 1)" >&2
    exit 2
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [[ "$nofile" != unlimited ]] && ((nofile < N + 100)); then
    echo "connections.sh: open-file limit $nofile is below $((N + 100)) and cannot be raised" >&2
    exit 2
fi
read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
if ((hi - lo + 1 <= N)); then
    echo "connections.sh: local port range $lo-$hi is too small for $N connections" >&2
    exit 2
fi
[[ -n "$OUT" ]] || OUT=results/connections-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

cargo build --release --quiet -p queuelab-server -p queuelab-client
QSERVE=$PWD/target/release/qserve
QLOAD=$PWD/target/release/qload
URL="http://127.0.0.1:$PORT/"
METRICS="http://127.0.0.1:$PORT/metrics"
MAXCONN=$((N + N / 10 + 100))
TIMEOUT=$((SERVICE + 10))
LIMIT_KB=$((LIMIT_MB * 1024))

qs_pid=""
ql_pid=""
cleanup() { # on any exit: nothing of ours may outlive the script
    set +e
    if [[ -n "$ql_pid" ]]; then kill -KILL "$ql_pid" 2>/dev/null; fi
    if [[ -n "$qs_pid" ]]; then kill -KILL "$qs_pid" 2>/dev/null; fi
    wait 2>/dev/null
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
sockets() { # sockets PID -> number of socket file descriptors (0 once it is gone)
    local n
    n=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l) || true
    echo "${n:-0}"
}
tcp() { # tcp sport|dport -> established TCP connections with that port on 127.0.0.1:PORT
    local n
    n=$(ss -Htn state established "( $1 = :$PORT )" 2>/dev/null | wc -l) || true
    echo "${n:-0}"
}
gauge() { # qserve_connections, minus the scrape's own connection
    curl -sf --max-time 5 "$METRICS" | awk '$1 == "qserve_connections" { print $2 - 1; exit }'
}
now() { printf '%s' "$EPOCHREALTIME"; }

echo "connections: $N users, service ${SERVICE}s, ${DURATION}s, ulimit -n $nofile -> $OUT" >&2
taskset -c 0 "$QSERVE" --listen "127.0.0.1:$PORT" --servers inf --service const \
    --mu "$(awk -v s="$SERVICE" 'BEGIN { print 1 / s }')" --max-connections "$MAXCONN" \
    --idle-timeout 120s --seed 1 </dev/null >/dev/null 2>"$OUT/qserve.err" &
qs_pid=$!
up=0
for _ in $(seq 100); do
    curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$PORT/healthz" && { up=1; break; }
    kill -0 "$qs_pid" 2>/dev/null || { echo "qserve exited at start:" >&2; cat "$OUT/qserve.err" >&2; exit 1; }
    sleep 0.1
done
((up)) || { echo "qserve did not answer /healthz within 10 s" >&2; exit 1; }

taskset -c 1 "$QLOAD" --users "$N" -c "$N" --think 200ms -d "${DURATION}s" --timeout "${TIMEOUT}s" \
    --seed 1 -q --json "$URL" </dev/null >"$OUT/qload.json" 2>"$OUT/qload.err" &
ql_pid=$!
t0=$(now)
deadline=$((DURATION + TIMEOUT + 60))
echo "t_s,qserve_rss_kb,qload_rss_kb,qserve_connections,qserve_tcp,qload_tcp,qserve_socket_fds,qload_socket_fds" >"$OUT/samples.csv"
overran=0
while kill -0 "$ql_pid" 2>/dev/null; do
    t=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
    ql_rss=$(rss_kb "$ql_pid")
    ql_sock=$(sockets "$ql_pid")
    qs_rss=$(rss_kb "$qs_pid")
    qs_sock=$(sockets "$qs_pid")
    qs_tcp=$(tcp sport)
    ql_tcp=$(tcp dport)
    conns=$(gauge || true)
    [[ -n "$ql_rss" ]] && echo "$t,$qs_rss,$ql_rss,$conns,$qs_tcp,$ql_tcp,$qs_sock,$ql_sock" >>"$OUT/samples.csv"
    if awk -v t="$t" -v d="$deadline" 'BEGIN { exit !(t > d) }'; then
        echo "qload still running ${deadline}s after start: killing it" >&2
        kill -KILL "$ql_pid" 2>/dev/null || true
        overran=1
        break
    fi
    sleep 1
done
ql_rc=0
wait "$ql_pid" || ql_rc=$?
ql_pid=""
rejected=$(curl -sf --max-time 5 "$METRICS" | awk '$1 == "qserve_connections_total{result=\"rejected\"}" { print $2 }' || true)
kill -TERM "$qs_pid" 2>/dev/null || true
for _ in $(seq 300); do
    kill -0 "$qs_pid" 2>/dev/null || break
    sleep 0.1
done
kill -KILL "$qs_pid" 2>/dev/null || true
qs_rc=0
wait "$qs_pid" || qs_rc=$?
qs_pid=""

# ---- checks -------------------------------------------------------------------------------------
col_max() { awk -F, -v c="$1" 'NR > 1 && $c != "" && $c + 0 > m { m = $c + 0 } END { print m + 0 }' "$OUT/samples.csv"; }
qs_rss_max=$(col_max 2); ql_rss_max=$(col_max 3)
gauge_max=$(col_max 4); qs_tcp_max=$(col_max 5); ql_tcp_max=$(col_max 6)
qs_sock_max=$(col_max 7); ql_sock_max=$(col_max 8)
# The row with the most connections on the server: both RSS there.
read -r peak_t peak_qs peak_ql <<<"$(awk -F, 'NR > 1 && $4 + 0 >= m { m = $4 + 0; r = $1 " " $2 " " $3 } END { print r }' "$OUT/samples.csv")"
j() { jq -r "$1 // empty" "$OUT/qload.json" 2>/dev/null || true; }
ql_peak=$(j .connections.peak); errors=$(j .requests.errors); completed=$(j .requests.completed)
errkinds=$(j '.requests.errors_by_kind | to_entries | map(select(.value > 0) | "\(.key)=\(.value)") | join(" ")')
summary=$(grep '^qserve: stopped' "$OUT/qserve.err" | tail -n 1 || true)

fails=0
rows=()
check() { # check NAME EXPECTED MEASURED OK(0/1)
    local v=PASS
    (($4)) || { v=FAIL; fails=$((fails + 1)); }
    rows+=("| $1 | $2 | $3 | $v |")
}
check "qserve open connections (gauge, peak)" "≥ $N" "$gauge_max" "$((gauge_max >= N))"
# `ss` counts the scrape's connection only when a sample's scrape and `ss` overlap, which they do not.
check "qserve established TCP connections (ss, peak)" "≥ $N" "$qs_tcp_max (socket fds $qs_sock_max)" "$((qs_tcp_max >= N))"
check "qload established TCP connections (ss, peak)" "≥ $N" "$ql_tcp_max (socket fds $ql_sock_max)" "$((ql_tcp_max >= N))"
check "qload connections.peak (JSON)" "≥ $N" "${ql_peak:-missing}" "$((${ql_peak:-0} >= N))"
check "qserve RSS (max sampled)" "≤ $LIMIT_KB kB" "$qs_rss_max kB" "$((qs_rss_max > 0 && qs_rss_max <= LIMIT_KB))"
check "qload RSS (max sampled)" "≤ $LIMIT_KB kB" "$ql_rss_max kB" "$((ql_rss_max > 0 && ql_rss_max <= LIMIT_KB))"
check "qload exit status, within its bound" "0, ≤ ${deadline}s" "$ql_rc$( ((overran)) && echo ', killed')" "$((ql_rc == 0 && overran == 0))"
check "qload errors" "0" "${errors:-missing}${errkinds:+ ($errkinds)}" "$([[ "${errors:-x}" == 0 ]] && echo 1 || echo 0)"
check "qserve connections rejected" "0" "${rejected:-missing}" "$([[ "${rejected:-x}" == 0 ]] && echo 1 || echo 0)"
check "qserve exit after SIGTERM" "0" "$qs_rc" "$((qs_rc == 0))"

{
    echo "## $N concurrent connections: qload (closed loop, $N users) -> qserve (M/D/inf, ${SERVICE}s service)"
    echo
    echo "qserve on core 0 (--max-connections $MAXCONN), qload on core 1, 127.0.0.1:$PORT, ulimit -n $nofile; files in $OUT"
    echo
    echo "| check | expected | measured | verdict |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "At the peak (t = ${peak_t:-?} s, most server connections): qserve RSS ${peak_qs:-?} kB, qload RSS ${peak_ql:-?} kB."
    echo "qload: completed ${completed:-?}, errors ${errors:-?}; qserve summary: ${summary:-missing}"
    echo
    if ((fails)); then echo "**FAIL**: $fails violation(s)"; else echo "**PASS**"; fi
} | tee "$OUT/verdict.md"
((fails == 0))
