#!/usr/bin/env bash
# The queueing lab on bare metal: builds the release binaries, then runs `qlab sweep`, which
# starts qserve and its zero-service twin, sweeps the load and compares every point with theory.
#
#   scripts/run-bench.sh [FLAGS]
#
# With no flags: the M/M/1 lab, mu = 1000/s, ten loads from 0.1 to 0.95, about ten minutes.
# Every flag goes to `qlab sweep` as it is (`target/release/qlab sweep --help` lists them all):
#
#   --mu RATE          service rate per server, requests/s (default 1000)
#   --servers N|inf    number of servers c (default 1)
#   --capacity K       capacity K, requests in the system (allows --rhos >= 1)
#   --service KIND     exp | const | uniform (default exp)
#   --rhos LIST        loads per server, comma-separated (default 0.1,0.2,...,0.9,0.95)
#   --duration DUR     measured time per point, e.g. 45s (default 45s)
#   --warmup DUR       warm-up per point (default: a few relaxation times of the queue)
#   --seed N           seed of the server's service times and of the arrivals (default 1)
#   --out DIR          results directory, created fresh (default results/YYYYmmdd-HHMMSS, UTC,
#                      in the repository)
#   --url URL          drive a server that is already running (e.g. in minikube): no local
#                      server is started; the overhead is measured at URL's /healthz
#   --quick            the whole sweep in under a minute (precision traded for time)
#   --no-busy-poll     let qserve and qload sleep between events (costs accuracy)
#   -h, --help         this text
#
# qlab pins the servers to the first core this shell may use and its own threads to the others,
# listens on free loopback ports, waits for /healthz, and stops the servers on every way out
# (Ctrl-C included). QLAB=path and QSERVE=path use those binaries instead of building.
# Results: results.json, results.csv, table.txt, SVG plots and index.html, the page to open (see
# docs/lab.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

for arg in "$@"; do
    case "$arg" in
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
    esac
done

qlab="${QLAB:-$root/target/release/qlab}"
if [[ -z "${QLAB:-}" ]]; then
    if command -v cargo > /dev/null; then
        echo "building release binaries (cargo build --release; quick when up to date)" >&2
        (cd "$root" && cargo build --release --quiet -p queuelab-server -p queuelab-lab)
    elif [[ ! -x "$qlab" ]]; then
        echo "run-bench.sh: cargo is not installed and the release binaries are missing" \
            "(install Rust: rustup.rs)" >&2
        exit 2
    else
        echo "warning: cargo not found; using the existing binaries, which may be stale" >&2
    fi
    export QSERVE="${QSERVE:-$root/target/release/qserve}"
fi
[[ -x "$qlab" ]] || { echo "run-bench.sh: no qlab binary at $qlab" >&2; exit 2; }

# The default results directory is in the repository, wherever the script is called from.
out=()
case " $* " in
    *" --out "* | *" --out="*) ;;
    *) out=(--out "$root/results/$(date -u +%Y%m%d-%H%M%S)") ;;
esac

exec "$qlab" sweep ${out[@]+"${out[@]}"} "$@"
