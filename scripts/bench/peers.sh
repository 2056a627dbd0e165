# Shared by scripts/bench/client.sh and tls.sh (sourced, not run): nginx on core 0 serving an
# 11-byte file, and the peer clients on core 1, each run appending
# "name requests cpu_seconds wall_seconds" to $tmp/runs.
#
# The sourcing script calls bench_init first, then sets URL, and optionally OHA_ARGS.

nginx_pid=""

# bench_init NAME DEFAULT_PORT TOOL...: what every side-by-side run needs. Sets SECS, ROUNDS and
# PORT from QLOAD_BENCH_SECONDS (default 5), QLOAD_BENCH_ROUNDS (default 3) and QLOAD_BENCH_PORT
# (default DEFAULT_PORT); NGINX and OHA (empty when oha is neither on PATH nor in ~/.cargo/bin);
# checks nginx and each TOOL and that there are two cores (server on core 0, client on core 1),
# exiting with 2 and NAME's needs otherwise; builds qload (QLOAD); makes the scratch folder tmp,
# removed at exit with nginx stopped.
bench_init() {
    local name="$1" port="$2"
    shift 2
    SECS=${QLOAD_BENCH_SECONDS:-5}
    ROUNDS=${QLOAD_BENCH_ROUNDS:-3}
    PORT=${QLOAD_BENCH_PORT:-$port}
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    OHA=$(command -v oha || { [[ -x "$HOME/.cargo/bin/oha" ]] && echo "$HOME/.cargo/bin/oha"; } || true)
    local tool
    for tool in "$NGINX" "$@"; do
        command -v "$tool" >/dev/null || { echo "$name needs $tool" >&2; exit 2; }
    done
    if (($(nproc) < 2)); then
        echo "$name needs two cores (server on core 0, client on core 1)" >&2
        exit 2
    fi
    cargo build --release --quiet -p queuelab-client
    QLOAD=$PWD/target/release/qload
    tmp=$(mktemp -d)
    trap 'stop_nginx; rm -rf "$tmp"' EXIT
}

# start_nginx [EXTRA_LISTEN [SERVER_LINES]]: writes $tmp/nginx.conf (one worker, keep-alive,
# access_log off), starts nginx pinned to core 0 and waits until it accepts. EXTRA_LISTEN goes
# after `listen 127.0.0.1:$PORT` (e.g. `ssl`), SERVER_LINES into the server block.
start_nginx() {
    local extra_listen="${1:-}" server_lines="${2:-}"
    mkdir -p "$tmp/html"
    printf 'hello world' >"$tmp/html/index.html"
    cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp;
    uwsgi_temp_path $tmp; scgi_temp_path $tmp;
    server {
        listen 127.0.0.1:$PORT $extra_listen;
        $server_lines
        root $tmp/html;
        location / { }
    }
}
CONF
    taskset -c 0 "$NGINX" -c "$tmp/nginx.conf" -p "$tmp" &
    nginx_pid=$!
    for _ in $(seq 50); do
        (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null && break
        sleep 0.1
    done
}

stop_nginx() {
    if [[ -n "$nginx_pid" ]]; then
        kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    fi
    return 0
}

# run_wrk: wrk -t1 -c32 for SECS seconds against $URL.
run_wrk() {
    taskset -c 1 /usr/bin/time -f "%U %S" -o "$tmp/time" \
        wrk -t1 -c32 -d"${SECS}s" "$URL" >"$tmp/wrk.txt"
    python3 - "$tmp/wrk.txt" "$tmp/time" <<'PY' >>"$tmp/runs"
import re, sys
t = open(sys.argv[1]).read(); u, s = map(float, open(sys.argv[2]).read().split()[-2:])
m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", t)
assert m, f"wrk printed no request count:\n{t}"
secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
print("wrk", m.group(1), u + s, secs)
PY
}

# run_oha: oha -c 32 for SECS seconds against $URL, with the array OHA_ARGS if set (e.g.
# --insecure).
run_oha() {
    taskset -c 1 /usr/bin/time -f "%U %S" -o "$tmp/time" \
        "$OHA" -z "${SECS}s" -c 32 ${OHA_ARGS[@]+"${OHA_ARGS[@]}"} --no-tui --output-format json "$URL" >"$tmp/oha.json"
    python3 - "$tmp/oha.json" "$tmp/time" <<'PY' >>"$tmp/runs"
import json, sys
d = json.load(open(sys.argv[1])); u, s = map(float, open(sys.argv[2]).read().split()[-2:])
print("oha", sum(d["statusCodeDistribution"].values()), u + s, d["summary"]["total"])
PY
}
