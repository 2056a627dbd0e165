#!/usr/bin/env bash
# The networks' benchmark: qserve --network and qserve --forward against the theory of open
# networks, then one summary table.
#
#   scripts/network-bench.sh [--duration D] [--seeds "1 2"] [--attempts N] [--out DIR]
#
# --attempts bounds the measurements of a point whose self-checks fail (the lab's default: 3).
# The summary counts the points that passed their checks, and on a second line every point.
#
# Every part runs once per seed.
# 1. web/db (docs/networks/web-db.toml, lambda_max = 850/s) at entry rates 100 ... 700/s, one
#    qlab sweep --network per seed: per-station rho and W against the product form, the
#    end-to-end mean error and coverage.
# 2. The same network with a preemptive-priority web, a processor-sharing db with h2 service and
#    two classes (docs/networks/web-db-classes.toml): the same product form, and the classes'
#    end-to-end means against the simulator.
# 3. A tandem mu1 = mu2 = 1000/s in one process at rho = 0.5 and 0.8: the same, and Burke's KS of
#    the first station's departures (D against its noise level); and the same tandem with an
#    M/D/1 first station, where Burke's check must fail.
# 4. The tandem across two processes: qserve A (mu 1000) --forward to qserve B (mu 1000), qload
#    at lambda against A: the end-to-end mean against 1/(mu1 - lambda) + 1/(mu2 - lambda) plus
#    the measured hop (the Server-Timing `hop` entry, the forwarding overhead).
# qserve runs on core 0 and qload (or qlab's client) on core 1, as scripts/models-bench.sh does.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="10s"
seeds="1 2"
attempts=()
out="$root/results/network-$(date -u +%Y%m%d-%H%M%S)"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --attempts) attempts=(--attempts "$2"); shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "network-bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

(cd "$root" && cargo build --release --quiet -p queuelab-server -p queuelab-lab -p queuelab-client)
bin="$root/target/release"
export QSERVE="$bin/qserve"
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"

cat >"$out/tandem.toml" <<'EOF'
[[station]]
name = "a"
mu = 1000
[[station]]
name = "b"
mu = 1000
[routing]
entry = { a = 1.0 }
a = { b = 1.0 }
b = { exit = 1.0 }
EOF
# The same with a constant service at the first station (M/D/1): not Poisson departures.
awk 'NR == 3 { print; print "service = \"const\""; next } { print }' "$out/tandem.toml" \
    >"$out/tandem-md1.toml"

# One summary block per sweep directory, from its results.csv.
summarise() {
    local name="$1" dir="$2"
    python3 - "$name" "$dir/results.csv" "$dir/results.json" >>"$summary" <<'PY'
import csv, json, sys
name, path, js = sys.argv[1:4]
rows = list(csv.DictReader(open(path)))
failed = sorted({r["lambda"] for r in rows if r.get("verdict") == "failed"}, key=float)
def err(r):
    try: return float(r["w_us"]) / float(r["ref_w_us"]) - 1
    except: return None
def block(rows):
    st = [r for r in rows if r["station"] != "end-to-end" and not r["station"].startswith("class-")]
    e2e = [r for r in rows if r["station"] == "end-to-end"]
    cls = [r for r in rows if r["station"].startswith("class-")]
    cov = [r["covered"] == "true" for r in st if r["covered"]]
    ecov = [r["covered"] == "true" for r in e2e if r["covered"]]
    ccov = [r["covered"] == "true" for r in cls if r["covered"]]
    ks = [float(r["ks"]) <= float(r["ks_noise"]) for r in e2e if r.get("ks") and r.get("ks_noise")]
    werr = [e for e in map(err, st) if e is not None]
    eerr = [e for e in map(err, e2e) if e is not None]
    rho = [abs(float(r["utilisation"]) - float(r["rho"])) for r in st if r["utilisation"]]
    return (f"W_j covered {sum(cov)}/{len(cov)}, mean |W err| {100*sum(map(abs,werr))/max(len(werr),1):.1f}%, "
            f"max |util - rho| {max(rho or [0]):.3f}; end to end covered {sum(ecov)}/{len(ecov)}, "
            f"mean err {100*sum(eerr)/max(len(eerr),1):+.1f}%, KS within noise {sum(ks)}/{len(ks)}"
            + (f"; classes covered {sum(ccov)}/{len(ccov)}" if cls else ""))
kept = [r for r in rows if r.get("verdict") != "failed"]
reruns = sum(int(r["attempts"]) > 1 for r in kept if r["station"] == "end-to-end" and r.get("attempts"))
print(f"{name:<14} passed points: {block(kept)}; re-run {reruns}, failed {len(failed)}"
      + (f" ({', '.join(failed)}/s)" if failed else ""))
if failed:
    print(f"{'':<14} every point, failed ones too: {block(rows)}")
cls = [r for r in rows if r["station"].startswith("class-")]
for r in cls:
    e = err(r)
    print(f"{'':<14} {r['station']} at {float(r['lambda']):.0f}/s: {float(r['w_us']):.1f} µs against {float(r['ref_w_us']):.1f} µs"
          f" ({100*e:+.1f}%), covered: {r['covered']}{' (point failed its checks)' if r.get('verdict') == 'failed' else ''}" if e is not None else f"{'':<14} {r['station']} at {r['lambda']}/s: no reference")
for p in json.load(open(js))["points"]:
    for b in p["burke"]:
        print(f"{'':<14} Burke {b['station']} at rho {p['rho']:.2f}: D = {b['d']:.4f}, noise {b['noise_001']:.4f} "
              f"(n = {b['n']}): {'within' if b['d'] <= b['noise_001'] else 'BEYOND'} noise"
              f"{'' if b['expected_poisson'] else ' (Burke does not apply: expected beyond)'}"
              f"{' (point failed its checks)' if p.get('verdict') == 'failed' else ''}")
PY
}

sweep() {
    local name="$1"; shift
    echo "== $name: qlab sweep $*" >&2
    "$bin/qlab" sweep "$@" ${attempts[@]+"${attempts[@]}"} --duration "$duration" --out "$out/$name" >"$out/$name.txt" 2>"$out/$name.log" \
        || { echo "$name: the sweep failed (see $out/$name.log)" | tee -a "$summary"; return 0; }
    summarise "$name" "$out/$name"
}

for seed in $seeds; do
    sweep "web-db-s$seed" --network "$root/docs/networks/web-db.toml" \
        --rates 100,200,300,400,500,600,700 --seed "$seed"
    sweep "classes-s$seed" --network "$root/docs/networks/web-db-classes.toml" \
        --rates 200,400,600 --seed "$seed"
    sweep "tandem-s$seed" --network "$out/tandem.toml" --rhos 0.5,0.8 --seed "$seed"
    sweep "tandem-md1-s$seed" --network "$out/tandem-md1.toml" --rhos 0.5,0.8 --seed "$seed"
done

# 4. Two processes, A --forward B.
start() { # LOGFILE ARGS...: starts qserve on core 0, prints its address
    local log="$1"; shift
    # Its stdout elsewhere: inherited, it would keep the caller's $(start …) open.
    taskset -c 0 "$bin/qserve" --listen 127.0.0.1:0 --grace 2s --spin 50us "$@" >/dev/null 2>"$log" &
    echo $! >>"$out/pids"
    for _ in $(seq 100); do
        addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | head -1 || true)
        [[ -n "$addr" ]] && { echo "$addr"; return; }
        sleep 0.1
    done
    echo "qserve did not start: $(cat "$log")" >&2; exit 1
}
: >"$out/pids"
trap 'while read -r p; do kill "$p" 2>/dev/null || true; done <"$out/pids"' EXIT
for seed in $seeds; do
    b=$(start "$out/b-s$seed.log" --mu 1000 --seed "$((2 * seed + 5))")
    a=$(start "$out/a-s$seed.log" --mu 1000 --seed "$((2 * seed + 6))" --forward "http://$b/")
    for lambda in 500 800; do
        res="$out/forward-s$seed-$lambda.json"
        taskset -c 1 "$bin/qload" --rate "$lambda" --duration "$duration" --warmup 2s --seed "$seed" --json \
            "http://$a/" >"$res" 2>>"$out/forward.log"
        python3 - "$lambda" "$res" "$seed" >>"$summary" <<'PY'
import json, sys
lam = float(sys.argv[1]); r = json.load(open(sys.argv[2])); seed = sys.argv[3]
mean = r["latency_us"]["mean"]; ci = (r["latency_us"]["ci95_low"], r["latency_us"]["ci95_high"])
hop = r.get("server_timing", {}).get("hop", {}).get("mean", 0.0)
th = 1e6 / (1000 - lam) * 2
print(f"forward-s{seed} λ={lam:<4.0f} end to end {mean:.1f} µs [{ci[0]:.1f}, {ci[1]:.1f}], theory 2/(μ−λ) {th:.1f} µs + hop {hop:.1f} µs "
      f"= {th + hop:.1f} µs: err {100*(mean/(th+hop)-1):+.1f}%, in: {'yes' if ci[0] <= th + hop <= ci[1] else 'NO'}")
PY
    done
    # This seed's two servers go before the next seed's start.
    tail -n 2 "$out/pids" | while read -r p; do kill "$p" 2>/dev/null || true; done
done

echo
cat "$summary"
echo "(every run's own output is in $out)" >&2
