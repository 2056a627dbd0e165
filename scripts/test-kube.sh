#!/usr/bin/env bash
# Checks of the Kubernetes manifests (kube/) and of the container image (Containerfile), with no
# cluster and no registry.
#
#   scripts/test-kube.sh            run every check; exit status 1 if any fails
#
#   1. `kubectl kustomize kube/` renders, and every object passes `kubernetes-validate --strict`
#      for the oldest Kubernetes the manifests support (1.30: the preStop sleep action) and for
#      the newest the validator knows; a copy with an unknown field must fail, so the validation
#      cannot pass vacuously. The same for the tandem overlay, kube/overlays/tandem/ (three
#      stations, each forwarding to the next).
#   2. `cargo test --test manifests` (server/tests/manifests.rs, client/tests/manifests.rs): the
#      policy the schema cannot see, qserve started with exactly the Deployment's environment,
#      qload run with the Job's arguments as the kubelet expands them, kube-collect.sh.
#   3. The image. The builder's Rust is at least the workspace's rust-version, and the build
#      context, as podman filters it, holds every workspace member and no .git or target/.
#      qserve and qload are built static on this machine with the builder stage's settings, and
#      podman builds the runtime stage from them (`--build-context builder=DIR` stands in for
#      the builder stage, whose base image cannot be pulled here). The image's user, entry
#      point, environment, port and size are read back; its root filesystem is exported, and the
#      entry point is started from it under chroot as the image's user, with the manifests'
#      QSERVE_* environment: /healthz, /metrics, two /qload runs against it (loopback, bounded;
#      one by the Service's name through /etc/hosts), exit 0 on SIGTERM. (`podman run` needs a
#      runtime with cgroups, which not every CI machine grants; chroot needs none.)
#
# Needs: kubectl (kustomize built in), kubernetes-validate (PyPI), cargo, podman, curl, readelf,
# chroot, and root (chroot).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo" || exit 1

passed=0 failed=0 skipped=0
ok() { echo "ok   - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }
skip() { echo "skip - $*"; skipped=$((skipped + 1)); }
show() { [ -s "$1" ] && sed 's/^/       | /' "$1" | tail -n 40; }
finish() {
    echo "kube: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit
}

tmp="$(mktemp -d)"
chmod 755 "$tmp" # the image's root lies below it and must be reachable by its user
tag="localhost/queuelab-test-$$:latest"
pids=() # children still running
cid=""   # the container created for the export
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null; done
    [ -z "$cid" ] || podman rm -f "$cid" > /dev/null 2>&1
    podman rmi -f "$tag" > /dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== queuelab kube/ and Containerfile checks"
for tool in kubectl kubernetes-validate cargo podman curl readelf chroot; do
    command -v "$tool" > /dev/null || fail "required tool $tool is missing"
done
[ "$failed" -eq 0 ] || finish

# ----------------------------------------------------------------------------------------------
# 1. Render and validate.
rendered="$tmp/rendered.yaml"
if kubectl kustomize kube/ > "$rendered" 2> "$tmp/kustomize.err"; then
    ok "kubectl kustomize kube/ renders ($(grep -c '^kind:' "$rendered") objects)"
else
    fail "kubectl kustomize kube/ does not render"
    show "$tmp/kustomize.err"
    finish
fi
newest="$(kubernetes-validate --help | tr -s ' \n' ' ' | sed -n 's/.*Defaults to \([0-9.]*[0-9]\).*/\1/p')"
for version in 1.30.0 "${newest:-1.37.0}"; do
    if kubernetes-validate --strict --quiet -k "$version" "$rendered" > "$tmp/validate.out" 2>&1; then
        ok "kubernetes-validate --strict, Kubernetes $version: every object valid"
    else
        fail "kubernetes-validate --strict, Kubernetes $version"
        show "$tmp/validate.out"
    fi
done
# The control: an unknown field in the first container (the Deployment's qserve), placed after its
# imagePullPolicy in kustomize's sorted output.
awk '!done && /^        imagePullPolicy: / { print; print "        bogusField: 1"; done = 1; next } 1' \
    "$rendered" > "$tmp/invalid.yaml"
if cmp -s "$rendered" "$tmp/invalid.yaml"; then
    fail "no place for the unknown field of the control (kustomize's output changed shape?)"
elif kubernetes-validate --strict --quiet -k "${newest:-1.37.0}" "$tmp/invalid.yaml" > /dev/null 2>&1; then
    fail "kubernetes-validate --strict accepted an unknown field (the validation is vacuous)"
else
    ok "kubernetes-validate --strict rejects an unknown field (control)"
fi

# The overlays: each renders and validates like kube/ itself (its policy and its stations started
# with its environment are server/tests/manifests.rs's).
for overlay in kube/overlays/*/; do
    overlay="${overlay%/}"
    out="$tmp/${overlay##*/}.yaml"
    if ! kubectl kustomize "$overlay" > "$out" 2> "$tmp/kustomize.err"; then
        fail "kubectl kustomize $overlay does not render"
        show "$tmp/kustomize.err"
        continue
    fi
    ok "kubectl kustomize $overlay renders ($(grep -c '^kind:' "$out") objects)"
    for version in 1.30.0 "${newest:-1.37.0}"; do
        if kubernetes-validate --strict --quiet -k "$version" "$out" > "$tmp/validate.out" 2>&1; then
            ok "kubernetes-validate --strict, Kubernetes $version: every object of $overlay valid"
        else
            fail "kubernetes-validate --strict, Kubernetes $version: $overlay"
            show "$tmp/validate.out"
        fi
    done
done

# The data of the rendered ConfigMap generated as $1 (its name has a hash suffix), as KEY=VALUE
# lines. kustomize writes one `  KEY: VALUE` line per key under `data:`, quoting numbers.
configmap() {
    awk -v want="$1" '
        function flush() { if (name ~ ("^" want "-[a-z0-9]+$")) printf "%s", data; data = name = "" }
        /^---$/ { flush(); next }
        /^[a-z]/ { section = $1 }
        section == "metadata:" && /^  name: / { name = $2 }
        section == "data:" && /^  [A-Za-z_][A-Za-z0-9_]*: / {
            k = $1; sub(/:$/, "", k); v = $0; sub(/^  [^:]*: /, "", v)
            if (v ~ /^".*"$/ || v ~ /^\047.*\047$/) v = substr(v, 2, length(v) - 2)
            data = data k "=" v "\n"
        }
        END { flush() }' "$rendered"
}
mapfile -t qserve_env < <(configmap qserve-config)
mapfile -t qload_env < <(configmap qload-config)
setting() { printf '%s\n' "${qserve_env[@]}" "${qload_env[@]}" | sed -n "s/^$1=//p"; }
if [ "${#qserve_env[@]}" -gt 0 ] && [ -n "$(setting QSERVE_MU)" ] && [ -n "$(setting QLOAD_RATE)" ]; then
    ok "rendered ConfigMaps read: ${#qserve_env[@]} QSERVE_* and ${#qload_env[@]} QLOAD_* settings"
else
    fail "could not read the qserve-config and qload-config ConfigMaps from the rendered output"
fi

# ----------------------------------------------------------------------------------------------
# 2. The manifests against policy, qserve and qload (Rust tests).
if cargo test --quiet -p queuelab-server -p queuelab-client --test manifests > "$tmp/test.out" 2>&1; then
    ok "cargo test --test manifests: $(awk '/^test result: ok/ { n += $4 } END { print n }' "$tmp/test.out") tests passed"
else
    fail "cargo test -p queuelab-server -p queuelab-client --test manifests"
    show "$tmp/test.out"
fi

# ----------------------------------------------------------------------------------------------
# 3. The image.
rust_image="$(sed -n 's/^ARG RUST_IMAGE=//p' Containerfile)"
rust_pin="$(printf '%s' "$rust_image" | sed -n 's/.*:\([0-9]*\.[0-9]*\).*/\1/p')"
rust_min="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
if [ -n "$rust_pin" ] && [ "$(printf '%s\n%s\n' "$rust_min" "$rust_pin" | sort -V | head -n 1)" = "$rust_min" ]; then
    ok "the builder image $rust_image is pinned at or above rust-version $rust_min"
else
    fail "the builder image '$rust_image' is not pinned at or above rust-version $rust_min"
fi

# The build context as podman filters it by .containerignore: every workspace member's manifest
# and the lock file are in it, .git and target/ are not.
printf 'FROM scratch\nCOPY . /context/\n' > "$tmp/Containerfile.context"
members="$(cargo metadata --no-deps --format-version 1 | grep -o '"manifest_path":"[^"]*"' |
    sed "s#^\"manifest_path\":\"$repo/##; s#\"\$##" | sort | tr '\n' ' ')"
ctx_tag="localhost/queuelab-context-$$:latest"
if podman build --pull=never --quiet --layers=false -f "$tmp/Containerfile.context" -t "$ctx_tag" . \
    > "$tmp/context.log" 2>&1 && cid="$(podman create "$ctx_tag" /none)" &&
    podman export "$cid" | tar -t > "$tmp/context.txt" && podman rm "$cid" > /dev/null && cid=""; then
    missing="" extra=""
    for f in Cargo.lock $members; do grep -qx "context/$f" "$tmp/context.txt" || missing="$missing $f"; done
    extra="$(grep -E '^context/(.*/)?(\.git|target)(/|$)' "$tmp/context.txt" | head -n 3 | tr '\n' ' ')"
    if [ -n "$members" ] && [ -z "$missing" ] && [ -z "$extra" ]; then
        ok "the build context holds Cargo.lock and every member (${members% }), no .git or target/"
    else
        fail "the build context: missing${missing:- nothing}; should not hold: ${extra:-nothing}"
    fi
else
    fail "podman build of the bare build context"
    show "$tmp/context.log"
fi
podman rmi -f "$ctx_tag" > /dev/null 2>&1

echo "     (static release build of qserve and qload with the builder stage's settings)"
host="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="$(cargo metadata --no-deps --format-version 1 | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
# A target directory of its own: other settings there would invalidate the ordinary release build.
static_dir="${target_dir:-$repo/target}/static"
# The builder stage's ENV, which the Containerfile must still have.
builder_env=(CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_PROFILE_RELEASE_DEBUG=false
    "RUSTFLAGS=-C target-feature=+crt-static")
for kv in "${builder_env[@]}"; do
    grep -qF -e "${kv}" -e "${kv%%=*}=\"${kv#*=}\"" Containerfile ||
        fail "the Containerfile's builder no longer sets $kv (update this script with it)"
done
ctx="$tmp/builder"
mkdir -p "$ctx/src/out"
if env "${builder_env[@]}" CARGO_TARGET_DIR="$static_dir" cargo build --release --locked --quiet \
    --target "$host" -p queuelab-server -p queuelab-client > "$tmp/build.log" 2>&1 &&
    cp "$static_dir/$host/release/qserve" "$static_dir/$host/release/qload" "$ctx/src/out/"; then
    ok "static build of qserve and qload for $host"
else
    fail "static build of qserve and qload"
    show "$tmp/build.log"
    finish
fi

if podman build --pull=never --quiet --layers=false --target runtime --build-context "builder=$ctx" \
    -f Containerfile -t "$tag" . > "$tmp/podman.log" 2>&1; then
    ok "podman builds the runtime stage from them ($(podman --version))"
else
    fail "podman build --target runtime --build-context builder=DIR"
    show "$tmp/podman.log"
    finish
fi
inspect() { podman image inspect "$tag" --format "$1"; }
user="$(inspect '{{.Config.User}}')"
mapfile -t entry < <(inspect '{{range .Config.Entrypoint}}{{println .}}{{end}}' | sed '/^$/d')
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
ports="$(inspect '{{range $p, $v := .Config.ExposedPorts}}{{$p}} {{end}}')"
title="$(inspect '{{index .Config.Labels "org.opencontainers.image.title"}}')"
size="$(inspect '{{.Size}}')"
if [ "$user" = 65532:65532 ] && [ "${entry[*]}" = /qserve ] && [ "$ports" = "8000/tcp " ] &&
    printf '%s\n' "${image_env[@]}" | grep -qx 'QSERVE_LISTEN=0.0.0.0:8000' && [ "$title" = queuelab ]; then
    ok "image: user $user, entry point ${entry[*]}, port ${ports% }, QSERVE_LISTEN=0.0.0.0:8000, title $title"
else
    fail "image: user '$user', entry point '${entry[*]}', ports '$ports', env '${image_env[*]}', title '$title'"
fi
if [ "$size" -lt 20000000 ]; then
    ok "image size $(awk -v s="$size" 'BEGIN { printf "%.2f MB", s / 1e6 }') < 20 MB"
else
    fail "image size $size bytes >= 20 MB"
fi

root="$tmp/root"
mkdir -p "$root"
chmod 755 "$root"
if cid="$(podman create "$tag" 2> "$tmp/create.err")" &&
    podman export "$cid" | tar -C "$root" -xf - && podman rm "$cid" > /dev/null && cid=""; then
    contents="$(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')"
    if [ "$contents" = "./qload ./qserve " ]; then
        ok "exported root filesystem holds only /qload and /qserve"
    else
        fail "exported root filesystem holds $contents"
    fi
else
    fail "podman create + export of the image"
    show "$tmp/create.err"
    finish
fi
dynamic=""
for f in "$root"/qserve "$root"/qload; do
    if readelf -l "$f" 2> /dev/null | grep -q 'Requesting program interpreter' ||
        readelf -d "$f" 2> /dev/null | grep -q '(NEEDED)'; then
        dynamic="$dynamic ${f##*/}"
    fi
done
if [ -z "$dynamic" ]; then
    ok "both binaries are static (no interpreter, no shared libraries)"
else
    fail "dynamically linked:$dynamic"
fi

if [ "$(id -u)" != 0 ]; then
    skip "starting the image's entry point in its root: chroot needs root"
    finish
fi
# `env -i` clears PATH: the programs it starts are named by absolute path.
chroot_bin="$(command -v chroot)"
timeout_bin="$(command -v timeout)"
# As a container runtime would: the image's environment, then the pod's (the manifests'),
# QSERVE_LISTEN moved to an ephemeral loopback port.
env -i "${image_env[@]}" "${qserve_env[@]}" QSERVE_LISTEN=127.0.0.1:0 \
    "$chroot_bin" --userspec="$user" "$root" "${entry[@]}" > /dev/null 2> "$tmp/qserve.err" &
qpid=$!
pids+=("$qpid")
addr=""
for _ in $(seq 200); do # up to 20 s for the start-up line
    addr="$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$tmp/qserve.err")"
    if [ -n "$addr" ] || ! kill -0 "$qpid" 2> /dev/null; then break; fi
    sleep 0.1
done
uid="$(awk '/^Uid:/ { print $2 }' "/proc/$qpid/status" 2> /dev/null)"
if [ -n "$addr" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$addr/healthz")" = 200 ] &&
    [ "$uid" = "${user%%:*}" ]; then
    ok "image ${entry[*]} serves /healthz as uid $uid in its root, with the manifests' ${#qserve_env[@]} QSERVE_* settings"
else
    fail "image ${entry[*]} does not serve /healthz in its root as uid ${user%%:*} (uid '$uid')"
    show "$tmp/qserve.err"
    finish
fi

# /metrics shows the configured mu, c, K, threads and service.
curl -s --max-time 5 "http://$addr/metrics" > "$tmp/metrics.txt"
wrong=""
for want in qserve_mu=QSERVE_MU qserve_servers=QSERVE_SERVERS qserve_capacity=QSERVE_CAPACITY \
    qserve_threads=QSERVE_THREADS; do
    value="$(setting "${want#*=}")"
    awk -v n="${want%%=*}" -v v="$value" '$1 == n && $2 + 0 == v + 0 { found = 1 } END { exit !found }' \
        "$tmp/metrics.txt" || wrong="$wrong ${want%%=*}!=$value"
done
grep -q "^qserve_info{.*service=\"$(setting QSERVE_SERVICE)\"" "$tmp/metrics.txt" || wrong="$wrong service"
if [ -z "$wrong" ]; then
    ok "image qserve's /metrics shows the configured mu, c, K, threads and service"
else
    fail "image qserve's /metrics:$wrong"
    grep -E '^qserve_(mu|servers|capacity|threads|info)' "$tmp/metrics.txt" | sed 's/^/       | /'
fi

# Two load pods at once, as the Job runs them (its arguments, shortened; seeds base + index).
# The second targets the Service's name, as in the Job's QLOAD_URL: a pod's kubelet-written
# /etc/hosts resolves it here, read by the static glibc's built-in `files` lookup (there is no
# /etc/nsswitch.conf in the image either).
rate="$(setting QLOAD_RATE)" seed="$(setting QLOAD_SEED)"
service_host="$(setting QLOAD_URL | sed -n 's#^http://\([^/:]*\).*#\1#p')"
mkdir -p "$root/etc"
printf '127.0.0.1\tlocalhost\n127.0.0.1\t%s\n' "$service_host" > "$root/etc/hosts"
chmod 755 "$root/etc" && chmod 644 "$root/etc/hosts"
urls=("http://$addr/" "http://$service_host:${addr##*:}/")
runs=()
for i in 0 1; do
    env -i "$timeout_bin" 60 "$chroot_bin" --userspec="$user" "$root" /qload --json --no-pin \
        --threads 1 --rate "$rate" --duration 2s --warmup 1s --seed "$seed$i" "${urls[$i]}" \
        > "$tmp/qload-$i.json" 2> "$tmp/qload-$i.err" &
    runs+=($!)
done
for i in 0 1; do
    wait "${runs[$i]}"
    status=$?
    # The run's counts: the first "completed" and "errors" of the document are its requests'.
    completed="$(grep -m1 -o '"completed": [0-9]*' "$tmp/qload-$i.json" | grep -o '[0-9]*$')"
    errors="$(grep -m1 -o '"errors": [0-9]*' "$tmp/qload-$i.json" | grep -o '[0-9]*$')"
    if [ "$status" = 0 ] && [ "${completed:-0}" -gt 0 ] && [ "$errors" = 0 ]; then
        ok "image /qload ${urls[$i]} (seed $seed$i, $rate/s for 2 s): $completed completed, no errors"
    else
        fail "image /qload run $i: exit status $status, completed '${completed:-}', errors '${errors:-}'"
        show "$tmp/qload-$i.err"
    fi
done

# An idle qserve exits at once (server/tests/manifests.rs bounds it by QSERVE_GRACE); the limit
# only keeps this script finite.
kill -TERM "$qpid"
limit=30
for _ in $(seq $((limit * 10))); do
    kill -0 "$qpid" 2> /dev/null || break
    sleep 0.1
done
if kill -0 "$qpid" 2> /dev/null; then
    fail "image qserve still running ${limit}s after SIGTERM"
else
    wait "$qpid"
    status=$?
    pids=()
    if [ "$status" = 0 ]; then
        ok "image qserve exits 0 on SIGTERM"
    else
        fail "image qserve on SIGTERM: exit status $status"
        show "$tmp/qserve.err"
    fi
fi
finish
