#!/usr/bin/env bash
# Soak: qload -> qserve at a fixed Poisson rate for a long time, with nothing lost and nothing growing.
#
#   scripts/soak.sh [--rate 20000] [--duration 600] [--sample 10] [--mu RATE] [--servers N|inf]
#                   [--port 18610] [--out DIR]
#
# - qserve on 127.0.0.1, pinned to core 0: M/M/1 with mu = 2 x rate by default (rho = 0.5; see
#   "Model" below), --seed 1, one I/O thread, --max-connections 12000: above qload's default cap
#   of 10,000 connections, with room for this script's scrapes and for connections qload has
#   closed that the server has not reaped yet (at the default 10,000 a client at its cap makes the
#   server refuse the scrapes).
# - qload pinned to core 1: open-loop Poisson at --rate for --duration seconds, --json.
# - Every --sample seconds: both processes' VmRSS (/proc/PID/status) and a /metrics scrape (served
#   count, open connections, requests in the system) go to DIR/samples.csv (the /metrics fields
#   stay empty when a scrape fails; the failures are counted and shown).
# - At the end, checks (a markdown verdict table on stdout; exit 1 on any violation, 2 on bad usage
#   or a missing tool):
#   * RSS flat after warm-up: over the samples taken after the first minute (the first 20% of a
#     run shorter than 5 minutes), max/min <= 1.05, for each process;
#   * zero errors, every answer 2xx, qload exited 0 within its bound;
#   * qload's own accounting: issued == sent == completed + errors;
#   * the server's /metrics (scraped after qload ended, before SIGTERM): the answers of every
#     outcome except `metrics` and `healthz` (the scrapes and readiness probes, which bypass the
#     queue) add up to qload's completed count; served == qload's 2xx; nothing unanswered; the
#     queue model's arrivals == served + blocked + overflow + unanswered; connections accepted ==
#     qload's connections opened + this script's own curl connections; none rejected;
#   * after SIGTERM qserve exits 0 within its grace period and its one-line summary agrees with
#     the last scrape (same served and accepted-connection counts, 0 unanswered, 0 refused);
#   * qload kept the schedule: achieved rate within 2% of the target.
# - Everything is bounded: qload stops by itself after duration + timeout; a watchdog kills it 60 s
#   after that; qserve gets SIGTERM then SIGKILL after its grace; a trap kills both on any exit.
#
# Model: an M/M/1 queue at rho = lambda/mu = 0.5 is stable with a wide margin. The number in the
# system is geometric, P(N >= n) = rho^n, so over 12 million arrivals the queue stays below
# ~log(1.2e7)/log(2) = 24 requests (expected max), and the mean sojourn is 1/(mu - lambda) = 50 us at
# 20,000/s. (Arrivals are timestamped when their heads are parsed: when the machine stalls the
# server, they bunch up and the queue grows far beyond that; samples.csv shows it in in_system.)
# It exercises the real queue (Lindley recursion, timer wheel) at the full rate, unlike
# --service zero, and keeps few connections busy (mean in system 1). --servers inf --mu 1000 (M/M/inf,
# 20 requests in service on average) is the alternative with more connections open at once.
#
# Files in DIR (default results/soak-<UTC time>): samples.csv, qload.json, qload.err, qserve.err,
# metrics.txt (the final scrape), verdict.md.
#
# The machine has two cores; anything else running (builds, other benchmarks) competes with the
# pinned processes and can make qload miss its schedule. Run the 10-minute soak on a quiet machine:
#   nohup scripts/soak.sh > soak.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=20000
DURATION=600
SAMPLE=10
MU=""
SERVERS=1
PORT=18610
OUT=""
usage() { # usage EXIT_STATUS
    sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit "$1"
}
while (($#)); do
    case "$1" in
        --rate) RATE=${2:?}; shift 2 ;;
        --duration) DURATION=${2:?}; shift 2 ;;
        --sample) SAMPLE=${2:?}; shift 2 ;;
        --mu) MU=${2:?}; shift 2 ;;
        --servers) SERVERS=${2:?}; shift 2 ;;
        --port) PORT=${2:?}; shift 2 ;;
        --out) OUT=${2:?}; shift 2 ;;
        -h | --help) usage 0 ;;
        *) echo "soak.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done
for v in RATE DURATION SAMPLE PORT; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} == 0)); then
        echo "soak.sh: --${v,,} must be a positive integer" >&2
        exit 2
    fi
done
[[ -n "$MU" ]] || MU=$((2 * RATE))
for tool in taskset curl jq awk; do
    command -v "$tool" >/dev/null || { echo "soak.sh needs $tool" >&2; exit 2; }
done
if (($(nproc) < 2)); then
    echo "soak.sh needs two cores (server on core 0, client on core 1)" >&2
    exit 2
fi
[[ -n "$OUT" ]] || OUT=results/soak-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
# Room for the connections of a high rate (the default 1024 is enough for this load, but be safe).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --quiet -p queuelab-server -p queuelab-client
QSERVE=$PWD/target/release/qserve
QLOAD=$PWD/target/release/qload
URL="http://127.0.0.1:$PORT/"
METRICS="http://127.0.0.1:$PORT/metrics"
GRACE=10
MAXCONN=12000
QLOAD_TIMEOUT=10

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

curls=0 # connections this script opened to qserve (each curl is one)
scrape() { # scrape FILE: /metrics into FILE
    curl -sf --max-time 5 -o "$1" "$METRICS" && curls=$((curls + 1))
}
metric() { # metric FILE 'name{labels}' -> value (empty if absent)
    awk -v n="$2" '$1 == n { print $2; exit }' "$1"
}
rss_kb() { # rss_kb PID -> VmRSS in kB (empty if gone)
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || true
}
now() { printf '%s' "$EPOCHREALTIME"; }

echo "soak: rate $RATE/s for ${DURATION}s, M/M/$SERVERS mu $MU, samples every ${SAMPLE}s -> $OUT" >&2
taskset -c 0 "$QSERVE" --listen "127.0.0.1:$PORT" --mu "$MU" --servers "$SERVERS" --seed 1 \
    --grace "${GRACE}s" --max-connections "$MAXCONN" </dev/null >/dev/null 2>"$OUT/qserve.err" &
qs_pid=$!
for _ in $(seq 100); do
    curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$PORT/healthz" && { curls=$((curls + 1)); break; }
    kill -0 "$qs_pid" 2>/dev/null || { echo "qserve exited at start:" >&2; cat "$OUT/qserve.err" >&2; exit 1; }
    sleep 0.1
done
((curls == 1)) || { echo "qserve did not answer /healthz within 10 s" >&2; exit 1; }

taskset -c 1 "$QLOAD" -R "$RATE" -d "${DURATION}s" --timeout "${QLOAD_TIMEOUT}s" --seed 1 -q --json "$URL" \
    </dev/null >"$OUT/qload.json" 2>"$OUT/qload.err" &
ql_pid=$!
t0=$(now)
deadline=$((DURATION + QLOAD_TIMEOUT + 60))
echo "t_s,qserve_rss_kb,qload_rss_kb,served,connections,in_system" >"$OUT/samples.csv"
k=0
overran=0
missed=0
while kill -0 "$ql_pid" 2>/dev/null; do
    t=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
    next_t=$((k * SAMPLE))
    if awk -v t="$t" -v n="$next_t" 'BEGIN { exit !(t >= n) }'; then
        qs_rss=$(rss_kb "$qs_pid")
        ql_rss=$(rss_kb "$ql_pid")
        if [[ -n "$ql_rss" ]]; then
            if scrape "$OUT/sample.txt"; then
                m="$(metric "$OUT/sample.txt" 'qserve_requests_total{outcome="served"}'),$(metric "$OUT/sample.txt" qserve_connections),$(metric "$OUT/sample.txt" qserve_in_system)"
            else
                m=",,"
                missed=$((missed + 1))
            fi
            echo "$t,$qs_rss,$ql_rss,$m" >>"$OUT/samples.csv"
        fi
        k=$((k + 1))
    fi
    if awk -v t="$t" -v d="$deadline" 'BEGIN { exit !(t > d) }'; then
        echo "qload still running ${deadline}s after start: killing it" >&2
        kill -KILL "$ql_pid" 2>/dev/null || true
        overran=1
        break
    fi
    sleep 0.2
done
rm -f "$OUT/sample.txt"
ql_rc=0
wait "$ql_pid" || ql_rc=$?
ql_pid=""
ql_elapsed=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')

# The final scrape: after qload is done, before SIGTERM.
scrape "$OUT/metrics.txt" || { echo "final /metrics scrape failed" >&2; : >"$OUT/metrics.txt"; }
kill -TERM "$qs_pid" 2>/dev/null || true
qs_rc=""
for _ in $(seq $(((GRACE + 10) * 10))); do
    kill -0 "$qs_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$qs_pid" 2>/dev/null; then
    echo "qserve still running $((GRACE + 10))s after SIGTERM: killing it" >&2
    kill -KILL "$qs_pid" 2>/dev/null || true
fi
qs_rc=0
wait "$qs_pid" || qs_rc=$?
qs_pid=""

# ---- checks -------------------------------------------------------------------------------------
fails=0
rows=()
check() { # check NAME EXPECTED MEASURED OK(0/1)
    local v=PASS
    (($4)) || { v=FAIL; fails=$((fails + 1)); }
    rows+=("| $1 | $2 | $3 | $v |")
}
is() { [[ "$1" == "$2" ]] && echo 1 || echo 0; }

j() { jq -r "$1 // empty" "$OUT/qload.json" 2>/dev/null || true; }
issued=$(j .requests.issued); sent=$(j .requests.sent); completed=$(j .requests.completed)
errors=$(j .requests.errors); ok2xx=$(j '.requests.status."2xx"')
errkinds=$(j '.requests.errors_by_kind | to_entries | map(select(.value > 0) | "\(.key)=\(.value)") | join(" ")')
achieved=$(j .achieved_rate); opened=$(j .connections.opened); peak=$(j .connections.peak)
warnings=$(j '.warnings | join("; ")')
m() { metric "$OUT/metrics.txt" "$1"; }
served=$(m 'qserve_requests_total{outcome="served"}')
scrapes_seen=$(m 'qserve_requests_total{outcome="metrics"}')
healthz_seen=$(m 'qserve_requests_total{outcome="healthz"}')
answered=$(awk '$1 ~ /^qserve_requests_total\{/ && $1 !~ /"(metrics|healthz)"/ { s += $2 } END { print s + 0 }' "$OUT/metrics.txt")
non_served=$((answered - ${served:-0}))
blocked=$(m 'qserve_requests_total{outcome="blocked"}'); overflow=$(m 'qserve_requests_total{outcome="overflow"}')
abandoned=$(m 'qserve_requests_unanswered_total{reason="abandoned"}')
grace_exp=$(m 'qserve_requests_unanswered_total{reason="grace_expired"}')
arrivals=$(m qserve_arrivals_total)
accepted=$(m 'qserve_connections_total{result="accepted"}')
idle_closed=$(m 'qserve_connections_closed_total{reason="idle"}')
conn_max=$(awk -F, 'NR > 1 && $5 != "" && $5 + 0 > m { m = $5 + 0 } END { print m + 0 }' "$OUT/samples.csv")
rejected=$(m 'qserve_connections_total{result="rejected"}')
summary=$(grep '^qserve: stopped' "$OUT/qserve.err" | tail -n 1 || true)
sum_served=$(sed -n 's/.*: \([0-9]*\) served,.*/\1/p' <<<"$summary")
sum_unans=$(sed -n 's/.* \([0-9]*\) unanswered .*/\1/p' <<<"$summary")
sum_refused=$(sed -n 's/.* \([0-9]*\) refused while shutting down.*/\1/p' <<<"$summary")
sum_conns=$(sed -n 's/.*; \([0-9]*\) connections (.*/\1/p' <<<"$summary")

check "qload exit status, within its bound" "0, ≤ ${deadline}s" "$ql_rc, ${ql_elapsed}s" \
    "$(( ql_rc == 0 && overran == 0 ))"
check "qload errors" "0" "${errors:-missing}${errkinds:+ ($errkinds)}" "$(is "${errors:-x}" 0)"
check "qload 2xx == completed" "$completed" "${ok2xx:-missing}" "$(is "${ok2xx:-x}" "${completed:-y}")"
check "qload issued == sent == completed + errors" "$issued" "sent $sent, completed + errors $(( ${completed:-0} + ${errors:-0} ))" \
    "$(( ${issued:-0} > 0 && ${issued:-0} == ${sent:--1} && ${sent:--1} == ${completed:-0} + ${errors:-0} ))"
check "server answers (all outcomes but metrics/healthz) == qload completed" "${completed:-missing}" \
    "$answered (served $served, other $non_served)" "$(( ${completed:--1} == answered ))"
check "server served == qload 2xx" "${ok2xx:-missing}" "${served:-missing}" "$(is "${served:-x}" "${ok2xx:-y}")"
check "server unanswered (abandoned + grace expired)" "0" "${abandoned:-?} + ${grace_exp:-?}" \
    "$(( ${abandoned:-1} == 0 && ${grace_exp:-1} == 0 ))"
check "queue arrivals == served + blocked + overflow + unanswered" "${arrivals:-missing}" \
    "$(( ${served:-0} + ${blocked:-0} + ${overflow:-0} + ${abandoned:-0} + ${grace_exp:-0} ))" \
    "$(( ${arrivals:--1} == ${served:-0} + ${blocked:-0} + ${overflow:-0} + ${abandoned:-0} + ${grace_exp:-0} ))"
# A scrape counts itself before its text is rendered: metrics == curls - healthz probes.
check "server's own scrapes (bypass the queue)" "metrics $((curls - ${healthz_seen:-0})), healthz 1" \
    "metrics ${scrapes_seen:-?}, healthz ${healthz_seen:-?}" \
    "$(( ${scrapes_seen:--1} == curls - ${healthz_seen:-0} && ${healthz_seen:-0} == 1 ))"
check "connections accepted == qload opened + script's curls; none rejected" "$(( ${opened:-0} + curls )), 0" \
    "${accepted:-?}, ${rejected:-?}" "$(( ${accepted:--1} == ${opened:-0} + curls && ${rejected:-1} == 0 ))"
check "qserve exit after SIGTERM" "0" "$qs_rc" "$(is "$qs_rc" 0)"
check "summary line: served, unanswered, refused, connections" "$served, 0, 0, $accepted" \
    "${sum_served:-?}, ${sum_unans:-?}, ${sum_refused:-?}, ${sum_conns:-?}" \
    "$(( ${sum_served:--1} == ${served:--2} && ${sum_unans:-1} == 0 && ${sum_refused:-1} == 0 && ${sum_conns:--1} == ${accepted:--2} ))"
rate_ok=$(awk -v a="${achieved:-0}" -v r="$RATE" 'BEGIN { d = (a - r) / r; if (d < 0) d = -d; print (d <= 0.02) ? 1 : 0 }')
check "achieved rate (±2%)" "$RATE/s" "$(printf '%.1f' "${achieved:-0}")/s" "$rate_ok"

# RSS: warm-up = the first minute, or the first 20% of the run when that is shorter.
warm=$(awk -v d="$DURATION" 'BEGIN { w = d / 5; if (w > 60) w = 60; print w }')
rss_stats() { # rss_stats COLUMN -> "n first warm_min warm_max last"
    awk -F, -v c="$1" -v w="$warm" 'NR > 1 && $c != "" {
            if (first == "") first = $c; last = $c
            if ($1 + 0 >= w) { n++; if (min == "" || $c < min) min = $c; if ($c > max) max = $c }
        }
        END { print n + 0, first, min, max, last }' "$OUT/samples.csv"
}
rss_rows=()
for p in qserve:2 qload:3; do
    name=${p%%:*}
    read -r n first lo hi last <<<"$(rss_stats "${p##*:}")"
    if ((n >= 2)); then
        ratio=$(awk -v a="$hi" -v b="$lo" 'BEGIN { printf "%.4f", a / b }')
        flat=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.05) ? 1 : 0 }')
    else
        ratio="n/a"; flat=0
    fi
    check "$name RSS flat after ${warm}s (max/min)" "≤ 1.05 over ≥ 2 samples" "$ratio over $n samples" "$flat"
    rss_rows+=("| $name | ${first:-?} | ${lo:-?} | ${hi:-?} | ${last:-?} | $ratio |")
done

{
    echo "## Soak: qload -> qserve, $RATE req/s for ${DURATION}s"
    echo
    echo "qserve M/M/$SERVERS mu=$MU (core 0), qload Poisson $RATE/s (core 1), 127.0.0.1:$PORT; samples every ${SAMPLE}s; files in $OUT"
    echo
    echo "| check | expected | measured | verdict |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "RSS (kB): first sample, then min/max over the samples after ${warm}s, and the last"
    echo
    echo "| process | first | min | max | last | max/min |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${rss_rows[@]}"
    echo
    echo "qload: issued $issued, completed $completed, errors $errors, achieved $(printf '%.1f' "${achieved:-0}")/s, connections opened $opened (peak $peak)"
    echo "qserve: connections accepted $accepted, rejected $rejected, closed idle $idle_closed; most open at a sample $conn_max; failed scrapes $missed"
    echo "qload latency_us: $(j '.latency_us | "mean \(.mean|floor) p50 \(.p50) p99 \(.p99) max \(.max)"'); send lag p99 $(j .send_lag_us.p99) us"
    [[ -n "$warnings" ]] && echo "qload warnings: $warnings"
    echo "qserve summary: ${summary:-missing}"
    echo
    if ((fails)); then echo "**FAIL**: $fails violation(s)"; else echo "**PASS**"; fi
} | tee "$OUT/verdict.md"
((fails == 0))
