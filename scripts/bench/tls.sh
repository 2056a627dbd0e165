#!/usr/bin/env bash
# qload against its peers over HTTPS, side by side; prints a markdown report on stdout.
#
#   scripts/bench/tls.sh
#
# - Server: nginx, one worker, TLS 1.3 (and 1.2) with a certificate from a CA made by openssl for
#   this run, keep-alive, access_log off, an 11-byte static file, pinned to core 0.
# - Clients, pinned to core 1, 32 connections, one thread, certificate verification off (as a
#   self-signed site needs): `qload --max --insecure`, `wrk`, `oha --insecure` (if on PATH or
#   in ~/.cargo/bin), alternated A B C A B C ..., medians of requests/s and of client CPU time
#   (user + system, from /usr/bin/time) per request; ratios to wrk.
# - qload trusting the run's CA through --cacert instead (the verifying path), for reference.
# - The handshakes: qload's `tls` phase (median and p99 over the connections it opened) with 32
#   connections opened at once.
#
# Environment: QLOAD_BENCH_SECONDS (per run, default 5), QLOAD_BENCH_ROUNDS (default 3),
# QLOAD_BENCH_PORT (default 18483). Needs nginx, wrk, openssl, taskset, /usr/bin/time, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/bench/peers.sh
source scripts/bench/peers.sh
bench_init tls.sh 18483 wrk openssl taskset /usr/bin/time python3
URL="https://127.0.0.1:$PORT/"

# A certificate for 127.0.0.1 and localhost (P-256: what most sites serve), issued by a CA made
# for this run: --cacert trusts the CA (a self-signed certificate from `openssl req -x509` says
# CA:TRUE, which a verifying client refuses as a server's own certificate).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=queuelab bench CA" -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout "$tmp/key.pem" -out "$tmp/leaf.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$tmp/leaf.ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" -CAcreateserial \
    -days 2 -extfile "$tmp/leaf.ext" -out "$tmp/cert.pem" 2>/dev/null

start_nginx ssl "ssl_certificate $tmp/cert.pem; ssl_certificate_key $tmp/key.pem; ssl_protocols TLSv1.2 TLSv1.3;"

# Each run appends "name requests cpu_seconds wall_seconds" to $tmp/runs.
qload_row() { # name, json, time file
    python3 - "$@" <<'PY' >>"$tmp/runs"
import json, sys
r = json.load(open(sys.argv[2])); u, s = map(float, open(sys.argv[3]).read().split()[-2:])
assert r["requests"]["errors"] == 0, f"qload over TLS had errors: {r['requests']['errors_by_kind']}"
print(sys.argv[1], r["requests"]["completed"], u + s, r["duration_s"])
PY
}
run_qload() {
    taskset -c 1 /usr/bin/time -f "%U %S" -o "$tmp/time" \
        "$QLOAD" --max -c 32 -t 1 -d "${SECS}s" --insecure --json "$URL" >"$tmp/q.json"
    qload_row qload "$tmp/q.json" "$tmp/time"
}
run_qverify() {
    taskset -c 1 /usr/bin/time -f "%U %S" -o "$tmp/time" \
        "$QLOAD" --max -c 32 -t 1 -d "${SECS}s" --cacert "$tmp/ca.pem" --json "$URL" >"$tmp/qv.json"
    qload_row qverify "$tmp/qv.json" "$tmp/time"
}

# oha over TLS to a certificate of our own CA: without verification, like qload --insecure.
OHA_ARGS=(--insecure)
peers=(qload wrk)
[[ -n "$OHA" ]] && peers+=(oha)
peers+=(qverify)
: >"$tmp/runs"
for _ in $(seq "$ROUNDS"); do
    for p in "${peers[@]}"; do "run_$p"; done
done

python3 - "$tmp" "$SECS" "$ROUNDS" <<'PY'
import json, statistics, sys
tmp, secs, rounds = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for line in open(f"{tmp}/runs"):
    name, reqs, cpu, wall = line.split()
    runs.setdefault(name, []).append((int(reqs) / float(wall), float(cpu) / int(reqs) * 1e6))
med = {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v), len(v))
       for k, v in runs.items()}
wrk_rps, wrk_cpu, _ = med["wrk"]
label = {"qload": "qload --max -c 32 -t 1 --insecure", "wrk": "wrk -t1 -c32",
         "oha": "oha -c 32 --insecure", "qverify": "qload --max -c 32 -t 1 --cacert (verifying)"}
print(f"nginx (1 worker, core 0, TLS, P-256 certificate from a CA made for the run) serving 11 bytes; clients on "
      f"core 1; {secs} s runs, {rounds} rounds alternated, medians.\n")
print("| client | requests/s | vs wrk | CPU µs/request | vs wrk | runs |")
print("|---|---:|---:|---:|---:|---:|")
for k in ("qload", "wrk", "oha", "qverify"):
    if k in med:
        rps, cpu, n = med[k]
        print(f"| {label[k]} | {rps:,.0f} | {rps / wrk_rps:.2f}x | {cpu:.2f} | {cpu / wrk_cpu:.2f}x | {n} |")
r = json.load(open(f"{tmp}/qv.json"))
phases = r.get("phases") or {}
tls, conn = phases.get("tls_us"), phases.get("connect_us")
if tls and conn:
    print(f"\nqload's handshakes in the last verifying run ({tls['count']} connections): "
          f"connect p50 {conn['p50']:.0f} µs, p99 {conn['p99']:.0f} µs; "
          f"tls p50 {tls['p50']:.0f} µs, p99 {tls['p99']:.0f} µs.")
PY
