#!/usr/bin/env bash
# The models' fidelity benchmark: one lab sweep per model and seed, then one summary table.
#
#   scripts/models-bench.sh [--seeds "1 2"] [--duration 12s] [--out DIR] [--only NAME]
#
# Models (mu = 1000/s, the default ten loads 0.1 ... 0.95 for the open ones):
#   e4        M/E4/1                      --service erlang:4
#   h2        M/H2/1, C^2 = 4             --service h2:4
#   ln        M/LN/1, C^2 = 10            --service lognormal:10
#   bp        M/BP/1 (alpha 1.5, 1000:1)  --service pareto:1.5
#   h2ps      M/H2/1-PS, C^2 = 4          --service h2:4 --discipline ps
#   np        two classes, non-preemptive --discipline priority --classes 0.3,0.7
#   pr        two classes, preemptive     --discipline priority-preemptive --classes 0.3,0.7
#   closed    M/M/1//N, N = 1 ... 32      --users 1,2,4,8,16,32 --think 5ms
#   var       M/G/1 over C^2 at rho = 0.7 --cv2 0,0.25,1,4,16 --rho 0.7 (the h2 family)
# For each sweep and seed it prints: the points whose reference the net 95% interval covers,
# the mean net error against the reference, the points whose KS distance is within its noise,
# Little's ratio L/(X·W) (mean, min, max), the points re-run and the points that failed their
# checks; for the closed sweep, the coverage of X(N) and R(N) against MVA and their mean errors.
# Every sweep's own results (results.json, table.txt, plots, index.html) stay in DIR/NAME-sSEED.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seeds="1 2"
duration="12s"
out="$root/results/models-$(date -u +%Y%m%d-%H%M%S)"
only=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seeds) seeds="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "models-bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

(cd "$root" && cargo build --release --quiet -p queuelab-server -p queuelab-lab)
export QSERVE="$root/target/release/qserve"
qlab="$root/target/release/qlab"
mkdir -p "$out"

declare -A flags=(
    [e4]="--service erlang:4"
    [h2]="--service h2:4"
    [ln]="--service lognormal:10"
    [bp]="--service pareto:1.5"
    [h2ps]="--service h2:4 --discipline ps"
    [np]="--discipline priority --classes 0.3,0.7"
    [pr]="--discipline priority-preemptive --classes 0.3,0.7"
    [closed]="--users 1,2,4,8,16,32 --think 5ms"
    [var]="--cv2 0,0.25,1,4,16 --rho 0.7"
)
order="e4 h2 ln bp h2ps np pr closed var"
for name in $order; do
    [[ -n "$only" && "$only" != "$name" ]] && continue
    for seed in $seeds; do
        dir="$out/$name-s$seed"
        echo "== $name seed $seed: qlab sweep ${flags[$name]} --duration $duration --seed $seed" >&2
        # shellcheck disable=SC2086
        "$qlab" sweep ${flags[$name]} --duration "$duration" --seed "$seed" --attempts 2 \
            --out "$dir" > "$dir.log" 2>&1 || echo "   (exit $?; see $dir.log)" >&2
    done
done

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for d in sorted(os.listdir(out)):
    f = os.path.join(out, d, "results.json")
    if not os.path.isfile(f):
        continue
    r = json.load(open(f))
    if r.get("variability"):
        summary = [l for l in open(os.path.join(out, d, "table.txt")) if l.startswith("Summary")]
        rows.append(f"{d:<12} variability: {summary[0].strip() if summary else '-'}")
        continue
    if r.get("closed"):
        a = r["closed"]["analysis"]
        ok = [p for p in a if p.get("verdict") != "failed"]
        cx = sum(1 for p in ok if p.get("covers_throughput"))
        cr = sum(1 for p in ok if p.get("covers_response"))
        ex = [p["err_throughput"] for p in ok if p.get("err_throughput") is not None]
        er = [p["err_response"] for p in ok if p.get("err_response") is not None]
        src = a[0]["reference"]["source"] if a and a[0].get("reference") else "-"
        rows.append(f"{d:<12} closed: X covered {cx}/{len(ok)}, mean err {100*sum(ex)/max(len(ex),1):+.2f}%; "
                    f"R covered {cr}/{len(ok)}, mean err {100*sum(er)/max(len(er),1):+.2f}%; "
                    f"failed {len(a)-len(ok)}; reference {src}")
        continue
    a = r["analysis"]
    ok = [p for p in a if p.get("verdict") != "failed"]
    cov = [p for p in ok if p.get("covers_net") is not None]
    covered = sum(1 for p in cov if p["covers_net"])
    errs = [p["err_net"] for p in ok if p.get("err_net") is not None]
    ks = [p for p in ok if p.get("ks_net") is not None and p.get("ks_noise") is not None]
    ks_in = sum(1 for p in ks if p["ks_net"] <= p["ks_noise"])
    lit = [p["little"]["ratio"] for p in ok if p.get("little")]
    reruns = sum(1 for p in a if (p.get("attempts") or 1) > 1)
    refs = sorted({(p.get("reference") or {}).get("kind", "theory") for p in ok})
    lit_s = (f"{sum(lit)/len(lit):.4f} [{min(lit):.4f}, {max(lit):.4f}]" if lit else "-")
    per_class = {}
    for p in ok:
        for c in p.get("classes") or []:
            if c.get("reference_us"):
                per_class.setdefault(c["class"], []).append(c["mean_us"] / c["reference_us"] - 1)
    classes = "".join(f", class {k} mean err {100*sum(v)/len(v):+.2f}%" for k, v in sorted(per_class.items()))
    rows.append(f"{d:<12} covered {covered}/{len(cov)}, mean net err {100*sum(errs)/max(len(errs),1):+.2f}% "
                f"(|err| {100*sum(abs(e) for e in errs)/max(len(errs),1):.2f}%), KS in noise {ks_in}/{len(ks)}, "
                f"L/XW {lit_s}, re-run {reruns}, failed {len(a)-len(ok)}, ref {','.join(refs)}{classes}")
print("\n".join(rows))
PY
