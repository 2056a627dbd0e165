#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer) on the nightly toolchain.
#
#   scripts/fuzz.sh --smoke               build every target unoptimised (with debug assertions) and
#                                         run each for 10 s, two at a time (the test command)
#   scripts/fuzz.sh TARGET [SECONDS]      one long run (default 600 s), e.g. scripts/fuzz.sh server_stream 3600
#   scripts/fuzz.sh --list                the targets
#
# Targets: server_stream (the server's request path, reads cut at arbitrary points),
# client_response (qload's response parser: Content-Length, chunked, close-delimited),
# units (rates, counts, durations, model names), url (qload's URL parser), tls_records (qload's
# TLS record layer after the handshake: raw bytes and sealed records from a hostile server).
# Runs start from the committed seed corpus in fuzz/corpus/TARGET; a long run keeps what it finds in
# fuzz/corpus/TARGET (commit what is worth keeping), a smoke run works on a temporary copy.
# Crashes land in fuzz/artifacts/TARGET with the command to reproduce them.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzzing needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --quiet
fi

targets=(server_stream client_response units url tls_records)
# Each run is bounded: -max_total_time stops libFuzzer, `timeout` guards the build-and-run as a whole.
# FUZZ_BUILD holds cargo-fuzz's build flags: none for the long runs (optimised), --dev for the
# smoke run, which builds in half the time and exercises the same code with debug assertions.
FUZZ_BUILD=()
run() {
    local target=$1 seconds=$2 corpus=$3
    timeout --signal=INT $((seconds + 120)) \
        cargo +nightly fuzz run --fuzz-dir fuzz ${FUZZ_BUILD[@]+"${FUZZ_BUILD[@]}"} "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1
}

SMOKE_SECONDS=10
# One smoke run of a target on a copy of its corpus, its output in $2; exits non-zero on a
# finding (the caller shows the log).
smoke_one() {
    local t=$1 log=$2 tmp
    tmp=$(mktemp -d)
    cp -r "fuzz/corpus/$t/." "$tmp/"
    local rc=0
    run "$t" "$SMOKE_SECONDS" "$tmp" >"$log" 2>&1 || rc=$?
    rm -rf "$tmp"
    return "$rc"
}

case "${1:-}" in
    --list) printf '%s\n' "${targets[@]}" ;;
    --smoke)
        FUZZ_BUILD=(--dev)
        cargo +nightly fuzz build --fuzz-dir fuzz "${FUZZ_BUILD[@]}"
        # Two targets at a time: each libFuzzer run is one process on one core.
        logs=$(mktemp -d)
        trap 'rm -rf "$logs"' EXIT
        for ((i = 0; i < ${#targets[@]}; i += 2)); do
            pair=("${targets[@]:i:2}")
            pids=()
            for t in "${pair[@]}"; do
                echo "fuzz $t: $SMOKE_SECONDS s"
                smoke_one "$t" "$logs/$t.log" &
                pids+=($!)
            done
            # Both runs end before either is judged, so a failure leaves nothing running.
            rcs=()
            for pid in "${pids[@]}"; do
                rc=0
                wait "$pid" || rc=$?
                rcs+=("$rc")
            done
            for k in "${!pair[@]}"; do
                t=${pair[k]} rc=${rcs[k]}
                grep -E '^(stat::number_of_executed_runs|Done|SUMMARY)' "$logs/$t.log" | sed "s/^/$t: /" || true
                if ((rc != 0)); then
                    tail -n 40 "$logs/$t.log" >&2
                    echo "fuzz target $t failed (exit $rc); see fuzz/artifacts/$t" >&2
                    exit 1
                fi
            done
        done
        ;;
    "" | -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' ;;
    *)
        t=$1
        [[ " ${targets[*]} " == *" $t "* ]] || { echo "unknown target $t (see --list)" >&2; exit 2; }
        run "$t" "${2:-600}" "fuzz/corpus/$t"
        ;;
esac
