#!/usr/bin/env bash
# Collects the results of the qload Indexed Job (kube/qload-job.yaml) and merges them into one.
#
# Each pod of the Job sends lambda/N requests per second and prints one JSON result on stdout.
# This script saves every pod's log, extracts that JSON document (stderr lines that kubectl logs
# interleaves are left out), checks that every completion index 0..N-1 has one, and runs
# `qload merge --json` on them: counts and rates add, the HDR histograms merge, so the merged
# percentiles are exact over the union of all pods' requests.
#
# Usage: scripts/kube-collect.sh [OPTIONS]
#   --job NAME         the Job (default qload)
#   -n, --namespace NS its namespace (default: kubectl's current one)
#   --start            unsuspend the Job first (it is created suspended), then wait for it
#   --wait DURATION    wait up to DURATION (kubectl syntax: 90s, 15m) for the Job to finish;
#                      implied by --start with 15m
#   --out DIR          where to write the files (default results/kube/<job>-<UTC time>)
#   --qload PATH       the local qload used for the merge (default: $QLOAD, else
#                      target/release/qload of this checkout, else qload on PATH)
#   --partial          merge the indices that succeeded even if some did not
#
# Writes DIR/pod-<index>.log (the raw log), DIR/qload-<index>.json (the pod's result) and
# DIR/merged.json, and prints the merged result on stdout. Needs kubectl (or $KUBECTL).
set -euo pipefail

die() {
    echo "kube-collect: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

job=qload
ns_args=()
start=0
wait_for=""
out=""
qload="${QLOAD:-}"
partial=0
kubectl_cmd="${KUBECTL:-kubectl}"

while [ $# -gt 0 ]; do
    case "$1" in
        --job) job="${2:?--job needs a name}"; shift 2 ;;
        -n | --namespace) ns_args=(--namespace "${2:?--namespace needs a name}"); shift 2 ;;
        --start) start=1; shift ;;
        --wait) wait_for="${2:?--wait needs a duration}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --qload) qload="${2:?--qload needs a path}"; shift 2 ;;
        --partial) partial=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "$qload" ]; then
    if [ -x "$repo/target/release/qload" ]; then
        qload="$repo/target/release/qload"
    elif command -v qload > /dev/null; then
        qload="$(command -v qload)"
    else
        die "no qload to merge with: build it (cargo build --release -p queuelab-client) or pass --qload"
    fi
fi
[ -x "$qload" ] || die "qload '$qload' is not an executable"
command -v "$kubectl_cmd" > /dev/null || die "kubectl not found (set KUBECTL to use another)"

k() {
    "$kubectl_cmd" "$@" "${ns_args[@]}"
}

completions="$(k get job "$job" -o 'jsonpath={.spec.completions}')" ||
    die "cannot read job/$job"
case "$completions" in
    '' | *[!0-9]*) die "job/$job has no usable .spec.completions ('$completions')" ;;
esac

if [ "$start" = 1 ]; then
    k patch job "$job" --type=merge -p '{"spec":{"suspend":false}}' > /dev/null
    echo "kube-collect: started job/$job ($completions pods)" >&2
    [ -n "$wait_for" ] || wait_for=15m
fi

# Seconds in a kubectl-style duration: 90, 90s, 15m, 1h.
to_seconds() {
    case "$1" in
        *[!0-9smh]* | '') die "bad duration '$1' (use e.g. 90s, 15m, 1h)" ;;
        *h) echo $((${1%h} * 3600)) ;;
        *m) echo $((${1%m} * 60)) ;;
        *s) echo "${1%s}" ;;
        *) echo "$1" ;;
    esac
}

if [ -n "$wait_for" ]; then
    deadline=$(($(date +%s) + $(to_seconds "$wait_for")))
    while :; do
        read -r succeeded failed < <(k get job "$job" \
            -o 'jsonpath={.status.succeeded} {.status.failed}{"\n"}' | awk '{print ($1 == "" ? 0 : $1), ($2 == "" ? 0 : $2)}')
        succeeded="${succeeded:-0}" failed="${failed:-0}"
        [ "$succeeded" -ge "$completions" ] && break
        if [ "$failed" -gt 0 ]; then
            echo "kube-collect: job/$job has $failed failed pod(s)" >&2
            break
        fi
        [ "$(date +%s)" -lt "$deadline" ] ||
            die "job/$job not finished after $wait_for ($succeeded of $completions succeeded)"
        sleep 2
    done
fi

[ -n "$out" ] || out="$repo/results/kube/$job-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

# One succeeded pod per completion index (the Job never runs two successful pods for one index).
pods="$(k get pods -l "batch.kubernetes.io/job-name=$job" --field-selector=status.phase=Succeeded \
    -o 'jsonpath={range .items[*]}{.metadata.name}{"\t"}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{"\n"}{end}')"

# The JSON document in a log: either one line that starts with '{' and ends with '}' (compact) or
# the lines from a line that is just '{' to the next line that is just '}' (pretty-printed; the
# inner lines of such a document are indented, so stray lines cannot end it early).
extract_json() {
    awk '
        done { next }
        !inside && /^\{/ {
            if ($0 ~ /^\{[[:space:]]*$/) { inside = 1; print; next }
            if ($0 ~ /\}[[:space:]]*$/) { print; done = 1; next }
        }
        inside { print; if ($0 ~ /^\}[[:space:]]*$/) { inside = 0; done = 1 } }
        END { exit done ? 0 : 1 }
    ' "$1"
}

files=()
missing=()
for ((i = 0; i < completions; i++)); do
    pod="$(printf '%s\n' "$pods" | awk -F '\t' -v i="$i" '$2 == i { print $1; exit }')"
    if [ -z "$pod" ]; then
        missing+=("$i")
        continue
    fi
    k logs "$pod" > "$out/pod-$i.log" || die "cannot read the log of pod $pod"
    extract_json "$out/pod-$i.log" > "$out/qload-$i.json" ||
        die "pod $pod (index $i) printed no JSON result; its log is $out/pod-$i.log"
    files+=("$out/qload-$i.json")
done

if [ "${#missing[@]}" -gt 0 ]; then
    msg="no succeeded pod for index(es) ${missing[*]} of job/$job"
    [ "$partial" = 1 ] || die "$msg (pass --partial to merge the others)"
    echo "kube-collect: warning: $msg" >&2
fi
[ "${#files[@]}" -gt 0 ] || die "no results to merge"

"$qload" merge --json "${files[@]}" > "$out/merged.json" ||
    die "qload merge failed on ${files[*]}"
echo "kube-collect: merged ${#files[@]} of $completions results into $out/merged.json" >&2
cat "$out/merged.json"
