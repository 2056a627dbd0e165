#!/usr/bin/env bash
# Offline checks of the container image recipe (Containerfile, .containerignore) and of the
# Kubernetes manifests (kube/), with no cluster, no container engine and no registry.
#
#   scripts/test-kube.sh            run every check; exit status 1 if any fails
#
# What it checks, in order:
#   1. `kubectl kustomize kube/` renders, and every rendered object passes
#      `kubernetes-validate --strict` for the oldest Kubernetes the manifests support (1.30: the
#      preStop sleep action) and for the newest the validator knows; a copy with an unknown field
#      must fail, so the validation cannot pass vacuously.
#   2. Policy the schema cannot see: probes on /healthz:8000, security context, resources, scrape
#      annotations, grace period >= preStop + QSERVE_GRACE, Service/HPA/Job wiring, distinct
#      seeds per Job index, no service-link variables leaking into QSERVE_*.
#   3. qserve accepts every QSERVE_* variable of the manifests: target/release/qserve started
#      with exactly that environment (QSERVE_LISTEN moved to loopback) answers /healthz, shows
#      the configured mu, c, K, threads and service on /metrics, and exits 0 on SIGTERM; a bad
#      value is refused.
#   4. qload accepts the Job's arguments, expanded the way the kubelet expands $(VAR) (duration,
#      warmup and URL port shortened/moved to the local qserve).
#   5. The image: the Containerfile's builder stage is run here step by step (its COPY and RUN
#      instructions, on this machine's toolchain, since the builder image cannot be pulled); the
#      runtime stage's files are laid into an empty root, and its entry point runs there under
#      chroot as its USER: /qserve serves, /qload runs the Job's arguments against it, also
#      resolving the Service name through /etc/resolv.conf as the kubelet writes it (a stub DNS
#      server on loopback answers); both binaries are static; their total size is < 20 MB; and
#      where podman is present, it builds the runtime stage itself (FROM scratch needs no
#      registry) from the builder's output, and the image's size, user, entry point and port
#      are read back.
#   6. scripts/kube-collect.sh against a stand-in kubectl: pod logs with stderr noise in them
#      are split into JSON results and merged with `qload merge`.
#
# Needs: kubectl (kustomize built in), python3 with PyYAML, kubernetes-validate (installed from
# PyPI if missing), cargo, curl, chroot, and root (chroot, the stub DNS server on port 53).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo" || exit 1

passed=0
failed=0
ok() {
    echo "ok   - $*"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL - $*"
    failed=$((failed + 1))
}
skipped=0
skip() {
    echo "skip - $*"
    skipped=$((skipped + 1))
}
# Prints a file indented under a failure.
show() {
    [ -s "$1" ] && sed 's/^/       | /' "$1" | tail -n 40
}

tmp="$(mktemp -d)"
chmod 755 "$tmp"
started=() # children still running, killed on exit
forget() {
    local keep=() p
    for p in "${started[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    started=("${keep[@]}")
}
cleanup() {
    for pid in "${started[@]}"; do
        kill -KILL "$pid" 2> /dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# ----------------------------------------------------------------------------------------------
# The helper: YAML and JSON handling, kubelet-style environment and $(VAR) expansion, the
# Containerfile runner and a stub DNS server.
cat > "$tmp/kube.py" << 'PY'
"""Helpers for scripts/test-kube.sh (see there)."""
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys

import yaml


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(objs, kind, name=None):
    for o in objs:
        if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name):
            return o
    raise SystemExit(f"no {kind} {name or ''} in the rendered manifests")


def container(pod_spec, name):
    for c in pod_spec["containers"]:
        if c["name"] == name:
            return c
    raise SystemExit(f"no container {name}")


def expand(s, env):
    """Kubernetes $(VAR) expansion: known names are replaced, unknown ones stay as written,
    $$ is a literal $ (k8s.io/kubernetes third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "$" and i + 1 < len(s):
            if s[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if s[i + 1] == "(":
                j = s.find(")", i + 2)
                if j != -1:
                    name = s[i + 2 : j]
                    out.append(env[name] if name in env else s[i : j + 1])
                    i = j + 1
                    continue
        out.append(s[i])
        i += 1
    return "".join(out)


def container_env(objs, c, index=None):
    """The environment the kubelet gives container c: envFrom in order, then env (later wins);
    env values may refer to earlier variables. The completion index stands in for the Job's
    downward-API annotation."""
    env = {}
    for src in c.get("envFrom", []):
        if "configMapRef" not in src:
            raise SystemExit(f"unsupported envFrom {src}")
        cm = find(objs, "ConfigMap", src["configMapRef"]["name"])
        for k, v in cm.get("data", {}).items():
            env[src.get("prefix", "") + k] = str(v)
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = expand(str(e["value"]), env)
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == (
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        ):
            if index is None:
                raise SystemExit(f"{e['name']} needs a completion index")
            env[e["name"]] = str(index)
        else:
            raise SystemExit(f"unsupported env source {e}")
    return env


def seconds(d):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", d.strip())
    if not m:
        raise ValueError(f"cannot read duration {d!r}")
    return float(m.group(1)) * {"ms": 1e-3, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


def named_port(c, port):
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


# ---------------------------------------------------------------------------------------------
def policy(rendered):
    objs = load(rendered)
    results = []

    def check(cond, what):
        results.append((bool(cond), what))

    kinds = sorted(o["kind"] for o in objs)
    check(
        kinds == sorted(["ConfigMap", "ConfigMap", "Deployment", "Service",
                         "HorizontalPodAutoscaler", "Job"]),
        f"rendered objects are 2 ConfigMaps, Deployment, Service, HPA, Job ({', '.join(kinds)})",
    )

    def pod_security(what, spec, c):
        sc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
        check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) > 0
              and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
              f"{what}: pod runs as non-root uid {sc.get('runAsUser')} with seccomp RuntimeDefault")
        check(csc.get("allowPrivilegeEscalation") is False
              and csc.get("readOnlyRootFilesystem") is True
              and "ALL" in csc.get("capabilities", {}).get("drop", []),
              f"{what}: no privilege escalation, read-only root, all capabilities dropped")
        check(spec.get("enableServiceLinks") is False,
              f"{what}: enableServiceLinks false (no QSERVE_SERVICE_HOST, QSERVE_PORT... injected)")
        check(spec.get("automountServiceAccountToken") is False,
              f"{what}: no service account token mounted")
        r = c.get("resources", {})
        check(all(k in r.get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")),
              f"{what}: cpu and memory requests and limits set")
        check(c.get("image") == "queuelab:latest" and c.get("imagePullPolicy") == "IfNotPresent",
              f"{what}: image queuelab:latest, pulled only if not present")

    # qserve Deployment
    dep = find(objs, "Deployment", "qserve")
    spec = dep["spec"]["template"]["spec"]
    c = container(spec, "qserve")
    pod_security("qserve", spec, c)
    env = container_env(objs, c)
    stray = [k for k in env if not k.startswith("QSERVE_")]
    check(env and not stray, f"qserve: environment is QSERVE_* only ({len(env)} variables)")
    listen_port = int(env.get("QSERVE_LISTEN", "0.0.0.0:8000").rsplit(":", 1)[1])
    ports = [p["containerPort"] for p in c.get("ports", [])]
    check(ports == [8000] and listen_port == 8000,
          f"qserve: listens on and exposes port 8000 (QSERVE_LISTEN port {listen_port}, {ports})")
    for probe in ("readinessProbe", "livenessProbe"):
        g = c.get(probe, {}).get("httpGet", {})
        check(g.get("path") == "/healthz" and named_port(c, g.get("port")) == 8000,
              f"qserve: {probe} GET /healthz on 8000")
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "8000"
          and ann.get("prometheus.io/path") == "/metrics",
          "qserve: prometheus.io scrape/port/path annotations for /metrics")
    grace = seconds(env.get("QSERVE_GRACE", "0"))
    pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    tgps = spec.get("terminationGracePeriodSeconds", 30)
    check(tgps >= pre + grace + 1,
          f"qserve: terminationGracePeriodSeconds {tgps} >= preStop {pre} s + QSERVE_GRACE "
          f"{grace:g} s + 1 s margin")
    check("replicas" not in dep["spec"], "qserve: replica count left to the HPA")
    labels = dep["spec"]["template"]["metadata"]["labels"]

    # Service
    svc = find(objs, "Service", "qserve")
    sel = svc["spec"].get("selector", {})
    check(sel and all(labels.get(k) == v for k, v in sel.items()),
          f"Service qserve selects the qserve pods ({sel})")
    sp = svc["spec"]["ports"]
    check(svc["spec"].get("type") == "NodePort" and len(sp) == 1 and sp[0]["port"] == 8000
          and named_port(c, sp[0].get("targetPort", sp[0]["port"])) == 8000,
          "Service qserve: NodePort, port 8000 to the container's 8000")

    # HPA
    hpa = find(objs, "HorizontalPodAutoscaler", "qserve")
    ref = hpa["spec"]["scaleTargetRef"]
    check(hpa["apiVersion"] == "autoscaling/v2" and ref["kind"] == "Deployment"
          and ref["name"] == "qserve" and hpa["spec"].get("minReplicas") == 1
          and any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"]["metrics"]),
          "HPA (autoscaling/v2) scales Deployment qserve on CPU, minReplicas 1")

    # qload Job
    job = find(objs, "Job", "qload")
    js = job["spec"]
    jspec = js["template"]["spec"]
    jc = container(jspec, "qload")
    pod_security("qload", jspec, jc)
    n = js.get("completions")
    check(js.get("completionMode") == "Indexed" and n and js.get("parallelism") == n,
          f"qload Job: Indexed, completions = parallelism = {n}")
    check(js.get("suspend") is True and jspec.get("restartPolicy") == "Never",
          "qload Job: created suspended, pods never restarted")
    check(jc.get("command") == ["/qload"], "qload Job: runs /qload")
    argv = [expand(a, container_env(objs, jc, 0)) for a in jc.get("args", [])]
    unresolved = [a for a in argv if "$(" in a]
    check(not unresolved, f"qload Job: every $(VAR) in args resolves ({unresolved or argv})")
    check("--json" in argv, "qload Job: pods print a JSON result (--json)")
    seeds = []
    for i in range(n or 0):
        a = [expand(x, container_env(objs, jc, i)) for x in jc.get("args", [])]
        seeds.append(a[a.index("--seed") + 1] if "--seed" in a else None)
    check(None not in seeds and len(set(seeds)) == len(seeds) and all(s.isdigit() for s in seeds),
          f"qload Job: distinct numeric seed per index ({', '.join(map(str, seeds))})")
    url = argv[-1] if argv else ""
    m = re.fullmatch(r"http://([^/:]+):(\d+)/.*", url)
    check(m and m.group(1) == "qserve" and int(m.group(2)) == 8000,
          f"qload Job: targets the Service, http://qserve:8000/ ({url})")
    if "--rate" in argv:
        rate = float(argv[argv.index("--rate") + 1])
        mu = float(env.get("QSERVE_MU", "nan"))
        c_ = env.get("QSERVE_SERVERS", "1")
        print(f"info - load: {n} pods x {rate:g}/s = lambda {n * rate:g}/s; "
              f"mu {mu:g}/s, c {c_}: rho = {n * rate / (mu * (float(c_) if c_ != 'inf' else float('inf'))):.3g}")

    for good, what in results:
        print(("ok   - " if good else "FAIL - ") + what)


def env_cmd(rendered, kind, name, cname, index=None):
    objs = load(rendered)
    o = find(objs, kind, name)
    env = container_env(objs, container(o["spec"]["template"]["spec"], cname),
                        None if index is None else int(index))
    sys.stdout.write("".join(f"{k}={v}\0" for k, v in sorted(env.items())))


def args_cmd(rendered, name, cname, index, *overrides):
    """The qload Job container's argv for one index, with some variables overridden."""
    objs = load(rendered)
    c = container(find(objs, "Job", name)["spec"]["template"]["spec"], cname)
    env = container_env(objs, c, int(index))
    for o in overrides:
        k, v = o.split("=", 1)
        env[k] = v
    argv = [expand(a, env) for a in c.get("command", []) + c.get("args", [])]
    sys.stdout.write("".join(a + "\0" for a in argv))


def add_invalid(rendered, out):
    """A copy of the manifests with an unknown field in the Deployment's container."""
    objs = load(rendered)
    container(find(objs, "Deployment", "qserve")["spec"]["template"]["spec"],
              "qserve")["bogusField"] = 1
    with open(out, "w") as f:
        yaml.safe_dump_all(objs, f)


# ---------------------------------------------------------------------------------------------
# The Containerfile, run without an engine.
def parse_containerfile(path):
    lines, cur = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                cur += line[:-1]  # Docker joins continued lines with nothing in between
                continue
            cur += line
            if cur.strip():
                lines.append(cur.strip())
            cur = ""
    args, stages = {}, []
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            k, _, v = rest.strip().partition("=")
            args[k] = v
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append({"name": name, "base": base, "steps": []})
        else:
            if not stages:
                raise SystemExit(f"instruction before FROM: {line}")
            stages[-1]["steps"].append((word, rest.strip()))
    return stages


def ignore_rules(context):
    rules = []
    path = os.path.join(context, ".containerignore")
    if not os.path.exists(path):
        return rules
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = os.path.normpath(line[1:].strip() if neg else line).strip("/")
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**/", i):
                rx += "(?:.*/)?"
                i += 3
            elif pat.startswith("**", i):
                rx += ".*"
                i += 2
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            else:
                rx += re.escape(pat[i])
                i += 1
        rules.append((neg, re.compile(rx)))
    return rules


def excluded(rules, rel):
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = rel.split("/")
    verdict = False
    for neg, rx in rules:
        if any(rx.fullmatch("/".join(parts[:k])) for k in range(1, len(parts) + 1)):
            verdict = not neg
    return verdict


def copy_in(src, dest, rules=None, context=None):
    if os.path.isdir(src):
        os.makedirs(dest, exist_ok=True)
        for entry in sorted(os.listdir(src)):
            s = os.path.join(src, entry)
            if rules is not None and excluded(rules, os.path.relpath(s, context)):
                continue
            copy_in(s, os.path.join(dest, entry), rules, context)
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(src, dest)


def run_containerfile(containerfile, context, work, cache):
    """Runs the builder stage's steps in work/<stage> (WORKDIR mapped inside it, its target/
    a link to the persistent cache) and lays the final stage's files into work/runtime."""
    stages = parse_containerfile(containerfile)
    rules = ignore_rules(context)
    roots = {}
    image = {}
    for n, st in enumerate(stages):
        last = n == len(stages) - 1
        root = os.path.join(work, "runtime" if last else f"stage-{st['name']}")
        os.makedirs(root, exist_ok=True)
        roots[st["name"]] = root
        if last and st["base"] != "scratch":
            raise SystemExit(f"the runtime stage must start FROM scratch, not {st['base']}")
        workdir, env = "/", {}
        image = {"root": root, "user": "0", "env": {}, "entrypoint": [], "expose": [],
                 "base": st["base"], "stages": [s["base"] for s in stages]}
        for word, rest in st["steps"]:
            if word == "WORKDIR":
                workdir = os.path.join(workdir, rest)
                os.makedirs(root + workdir, exist_ok=True)
                if not last and not os.path.exists(root + workdir + "/target"):
                    os.makedirs(cache, exist_ok=True)
                    os.symlink(cache, root + workdir + "/target")
            elif word == "ENV":
                for item in shlex.split(rest):
                    k, sep, v = item.partition("=")
                    if not sep:
                        raise SystemExit(f"ENV needs KEY=VALUE: {rest}")
                    env[k] = v
            elif word == "COPY":
                words = shlex.split(rest)
                frm = None
                while words and words[0].startswith("--"):
                    flag = words.pop(0)
                    if flag.startswith("--from="):
                        frm = flag.split("=", 1)[1]
                    else:
                        raise SystemExit(f"unsupported COPY flag {flag}")
                *srcs, dest = words
                dest_path = root + (dest if dest.startswith("/") else os.path.join(workdir, dest))
                into_dir = dest.endswith("/") or len(srcs) > 1
                for s in srcs:
                    if frm is None:
                        rel = os.path.normpath(s)
                        if excluded(rules, rel) or not os.path.exists(os.path.join(context, rel)):
                            raise SystemExit(f"COPY {s}: not in the context or excluded by "
                                             ".containerignore")
                        src = os.path.join(context, rel)
                        r, ctx = rules, context
                    else:
                        src = roots[frm] + s
                        r, ctx = None, None
                        if not os.path.exists(src):
                            raise SystemExit(f"COPY --from={frm} {s}: no such file in that stage")
                    if os.path.isdir(src):
                        copy_in(src, dest_path, r, ctx)
                    else:
                        copy_in(src, os.path.join(dest_path, os.path.basename(s))
                                if into_dir else dest_path)
            elif word == "RUN":
                if rest.startswith("["):
                    raise SystemExit("RUN in exec form is not supported here")
                run_env = {k: os.environ[k] for k in ("PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME")
                           if k in os.environ}
                run_env.update(env)
                print(f"    RUN ({st['name']}) {rest[:90]} ...", file=sys.stderr)
                r = subprocess.run(["sh", "-c", rest], cwd=root + workdir, env=run_env)
                if r.returncode != 0:
                    raise SystemExit(f"RUN failed with status {r.returncode}")
            elif word == "USER":
                image["user"] = rest
            elif word == "EXPOSE":
                image["expose"] += rest.split()
            elif word == "ENTRYPOINT":
                image["entrypoint"] = json.loads(rest)
            elif word in ("LABEL", "ARG"):
                pass
            else:
                raise SystemExit(f"unsupported instruction {word}")
        image["env"] = env
    os.chmod(image["root"], 0o755)
    with open(os.path.join(work, "runtime.json"), "w") as f:
        json.dump(image, f, indent=1)


# ---------------------------------------------------------------------------------------------
def dns(addr, name, ip, lifetime):
    """A stub DNS server: A records for `name` (any search-domain form of it) point to ip; AAAA
    gets an empty answer; any other name is NXDOMAIN."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    s.settimeout(float(lifetime))
    print("ready", flush=True)
    while True:
        try:
            q, peer = s.recvfrom(512)
        except socket.timeout:
            return
        i, labels = 12, []
        while i < len(q) and q[i] != 0:
            labels.append(q[i + 1 : i + 1 + q[i]].decode(errors="replace"))
            i += 1 + q[i]
        qtype = struct.unpack("!H", q[i + 1 : i + 3])[0]
        question = q[12 : i + 5]
        qname = ".".join(labels).lower()
        known = qname == name or qname.startswith(name + ".")
        answers = b""
        count = 0
        if known and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(ip)
            count = 1
        flags = 0x8180 if known else 0x8183
        s.sendto(q[:2] + struct.pack("!HHHHH", flags, 1, count, 0, 0) + question + answers, peer)


def get(path, key):
    v = json.load(open(path))
    for k in key.split("."):
        v = v[k]
    print(json.dumps(v) if isinstance(v, (dict, list)) else v)


def check_result(path):
    """A qload --json result that measured something."""
    r = json.load(open(path))
    req = r["requests"]
    assert req["completed"] > 0, f"no request completed: {req}"
    assert req["errors"] == 0, f"errors: {req}"
    assert r["achieved_rate"] > 0 and r["latency_us"]["p50"] > 0, "no rate or latency"
    print(f"{req['completed']} completed at {r['achieved_rate']:.1f}/s, "
          f"p50 {r['latency_us']['p50']} us, p99 {r['latency_us']['p99']} us")


def check_merge(merged, *parts):
    m = json.load(open(merged))
    ps = [json.load(open(p)) for p in parts]
    for k in ("sent", "completed", "errors"):
        want = sum(p["requests"][k] for p in ps)
        assert m["requests"][k] == want, f"requests.{k}: merged {m['requests'][k]}, parts sum {want}"
    for q in ("p50", "p99", "max"):
        lo = min(p["latency_us"][q] for p in ps)
        hi = max(p["latency_us"][q] for p in ps)
        assert lo <= m["latency_us"][q] <= hi, f"latency_us.{q} {m['latency_us'][q]} not in [{lo}, {hi}]"
    print(f"merged {len(ps)} results: {m['requests']['completed']} completed, "
          f"p99 {m['latency_us']['p99']} us")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    {
        "policy": policy,
        "env": env_cmd,
        "args": args_cmd,
        "add-invalid": add_invalid,
        "containerfile": run_containerfile,
        "dns": dns,
        "get": get,
        "check-result": check_result,
        "check-merge": check_merge,
        "free-port": free_port,
    }[cmd](*rest)
PY
py() {
    python3 "$tmp/kube.py" "$@"
}

# Waits until GET URL answers 200 or the deadline passes (the process must stay alive).
wait_http() {
    local url="$1" pid="$2" deadline=$((SECONDS + 20))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$pid" 2> /dev/null || return 1
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# Sends SIGTERM to a child and waits (bounded) for it; sets stop_status to "exit status N" or to
# what went wrong. (Not for $(...): a subshell cannot wait for its parent's children.)
stop() {
    local pid="$1" limit="$2" deadline
    kill -TERM "$pid" 2> /dev/null
    deadline=$((SECONDS + limit))
    while kill -0 "$pid" 2> /dev/null && [ $SECONDS -lt $deadline ]; do
        sleep 0.1
    done
    if kill -0 "$pid" 2> /dev/null; then
        kill -KILL "$pid" 2> /dev/null
        wait "$pid" 2> /dev/null
        forget "$pid"
        stop_status="still running ${limit}s after SIGTERM"
        return 1
    fi
    wait "$pid"
    stop_status="exit status $?"
    forget "$pid"
}

# Checks /metrics at base URL $1 for the configured mu, c, K, threads and service from the
# environment file $2 (NUL-separated KEY=VALUE).
check_metrics() {
    local metrics="$tmp/metrics.txt" envfile="$2" want name value mu c k threads service
    curl -s --max-time 5 "$1/metrics" > "$metrics" || return 1
    setting() { tr '\0' '\n' < "$envfile" | sed -n "s/^$1=//p"; }
    mu="$(setting QSERVE_MU)" c="$(setting QSERVE_SERVERS)" k="$(setting QSERVE_CAPACITY)"
    threads="$(setting QSERVE_THREADS)" service="$(setting QSERVE_SERVICE)"
    if [ -n "$service" ] && ! grep -q "^qserve_info{.*service=\"$service\"" "$metrics"; then
        echo "/metrics does not show service=\"$service\":"
        grep '^qserve_info' "$metrics"
        return 1
    fi
    for want in "qserve_mu:$mu" "qserve_servers:${c:-1}" "qserve_capacity:$k" "qserve_threads:$threads"; do
        name="${want%%:*}" value="${want#*:}"
        [ -n "$value" ] || continue
        if ! awk -v n="$name" -v v="$value" '
            $1 == n || index($1, n "{") == 1 { found = 1; if ($2 + 0 == v + 0) ok = 1 }
            END { exit ok ? 0 : 1 }' "$metrics"; then
            echo "/metrics does not show $name $value:"
            grep -E '^qserve_(mu|servers|capacity|threads|info)' "$metrics"
            return 1
        fi
    done
}

echo "== queuelab kube/ and Containerfile checks (offline)"
# `env -i` clears PATH: the programs it starts are named by absolute path.
chroot_bin="$(command -v chroot)"
timeout_bin="$(command -v timeout)"

# ----------------------------------------------------------------------------------------------
# 1. Render and validate.
for tool in kubectl python3 cargo curl chroot; do
    command -v "$tool" > /dev/null || { fail "required tool $tool is missing"; }
done
if ! python3 -c 'import yaml' 2> /dev/null || ! command -v kubernetes-validate > /dev/null; then
    echo "     (installing kubernetes-validate from PyPI)"
    python3 -m pip install --quiet kubernetes-validate > "$tmp/pip.log" 2>&1 || show "$tmp/pip.log"
    hash -r
fi

rendered="$tmp/rendered.yaml"
if kubectl kustomize kube/ > "$rendered" 2> "$tmp/kustomize.err"; then
    ok "kubectl kustomize kube/ renders ($(grep -c '^kind:' "$rendered") objects)"
else
    fail "kubectl kustomize kube/ does not render"
    show "$tmp/kustomize.err"
    echo "kube: $passed passed, $failed failed, $skipped skipped"
    exit 1
fi

newest="$(python3 -c 'from kubernetes_validate import utils; print(utils.latest_version())' 2> /dev/null)"
for version in 1.30.0 "${newest:-1.37.0}"; do
    if kubernetes-validate --strict --quiet -k "$version" "$rendered" > "$tmp/validate.out" 2>&1; then
        ok "kubernetes-validate --strict, Kubernetes $version: every object valid"
    else
        fail "kubernetes-validate --strict, Kubernetes $version"
        show "$tmp/validate.out"
    fi
done
py add-invalid "$rendered" "$tmp/invalid.yaml"
if kubernetes-validate --strict --quiet -k "${newest:-1.37.0}" "$tmp/invalid.yaml" > "$tmp/validate.out" 2>&1; then
    fail "kubernetes-validate --strict accepted an unknown field (the validation is vacuous)"
else
    ok "kubernetes-validate --strict rejects an unknown field (control)"
fi

# ----------------------------------------------------------------------------------------------
# 2. Policy.
if py policy "$rendered" > "$tmp/policy.out" 2>&1; then :; fi
while IFS= read -r line; do
    case "$line" in
        "ok   - "*) ok "${line#ok   - }" ;;
        "FAIL - "*) fail "${line#FAIL - }" ;;
        "info - "*) echo "     ${line#info - }" ;;
        *) fail "policy check: $line" ;;
    esac
done < "$tmp/policy.out"

# The Containerfile and its ignore file, read.
cf=Containerfile
rust_image="$(sed -n 's/^ARG RUST_IMAGE=//p' "$cf")"
rust_pin="$(printf '%s' "$rust_image" | sed -n 's/.*:\([0-9]*\.[0-9]*\).*/\1/p')"
rust_min="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
if [ -n "$rust_pin" ] && [ "$(printf '%s\n%s\n' "$rust_min" "$rust_pin" | sort -V | head -n 1)" = "$rust_min" ]; then
    ok "Containerfile pins its builder ($rust_image) at or above rust-version $rust_min"
else
    fail "Containerfile builder '$rust_image' is not pinned at or above rust-version $rust_min"
fi
members="$(cargo metadata --no-deps --format-version 1 --offline 2> /dev/null |
    python3 -c 'import json,sys,os; m=json.load(sys.stdin); r=m["workspace_root"]; print(" ".join(sorted(os.path.relpath(os.path.dirname(p["manifest_path"]), r) for p in m["packages"])))')"
missing_members=""
for m in $members; do
    grep -q "^COPY $m/Cargo.toml $m/" "$cf" && grep -q "^COPY $m $m\$" "$cf" &&
        grep -q "for crate in .*\\b$m\\b" "$cf" && grep -q "find .*\\b$m\\b.* -name" "$cf" ||
        missing_members="$missing_members $m"
done
if [ -n "$members" ] && [ -z "$missing_members" ]; then
    ok "Containerfile copies, stubs and touches every workspace member ($members)"
else
    fail "Containerfile misses workspace member(s):${missing_members:- (cargo metadata failed)}"
fi
if [ "$(grep -v '^#' .containerignore | grep -v '^$' | head -n 1)" = '*' ]; then
    ok ".containerignore is an allowlist (starts with *)"
else
    fail ".containerignore does not start with * (not an allowlist)"
fi
if grep -q '^ENV QSERVE_LISTEN=0.0.0.0:8000$' "$cf" && grep -q '^EXPOSE 8000$' "$cf" &&
    grep -q '^ENTRYPOINT \["/qserve"\]$' "$cf" && grep -q '^USER 65532:65532$' "$cf"; then
    ok "Containerfile runtime: USER 65532:65532, QSERVE_LISTEN=0.0.0.0:8000, EXPOSE 8000, ENTRYPOINT /qserve"
else
    fail "Containerfile runtime settings (USER 65532:65532, ENV QSERVE_LISTEN, EXPOSE 8000, ENTRYPOINT [\"/qserve\"])"
fi
uid="$(python3 -c 'import sys,yaml; d=[o for o in yaml.safe_load_all(open(sys.argv[1])) if o and o["kind"]=="Deployment"][0]; print(d["spec"]["template"]["spec"]["securityContext"]["runAsUser"])' "$rendered")"
if [ "$uid" = 65532 ]; then
    ok "Deployment runAsUser equals the image's USER (65532)"
else
    fail "Deployment runAsUser $uid differs from the image's USER 65532"
fi

# ----------------------------------------------------------------------------------------------
# 3. and 4. The release binaries against the manifests.
echo "     (cargo build --release -p queuelab-server -p queuelab-client)"
target_dir="$(cargo metadata --no-deps --format-version 1 --offline 2> /dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
target_dir="${target_dir:-$repo/target}"
qserve_bin="$target_dir/release/qserve"
qload_bin="$target_dir/release/qload"
if cargo build --release --quiet -p queuelab-server -p queuelab-client > "$tmp/build.log" 2>&1 &&
    [ -x "$qserve_bin" ] && [ -x "$qload_bin" ]; then
    ok "release binaries built"
    have_bins=1
else
    fail "cargo build --release -p queuelab-server -p queuelab-client"
    show "$tmp/build.log"
    have_bins=0
fi

qserve_env="$tmp/qserve.env"
py env "$rendered" Deployment qserve qserve > "$qserve_env"
mapfile -d '' manifest_env < "$qserve_env"
grace_s="$(tr '\0' '\n' < "$qserve_env" | sed -n 's/^QSERVE_GRACE=//p' | sed 's/s$//')"
stop_limit=$((${grace_s%%.*} + 10))

results=()
if [ "$have_bins" = 1 ]; then
    # A value qserve must refuse: proves the environment is read and validated at all.
    if env -i "${manifest_env[@]}" QSERVE_LISTEN=127.0.0.1:0 QSERVE_MU=fast \
        "$timeout_bin" 10 "$qserve_bin" > "$tmp/bad.out" 2>&1; then
        fail "qserve accepted QSERVE_MU=fast (is the environment read?)"
    else
        ok "qserve refuses a malformed QSERVE_MU (control): $(head -n 1 "$tmp/bad.out" | cut -c1-100)"
    fi

    port="$(py free-port)"
    env -i "${manifest_env[@]}" QSERVE_LISTEN="127.0.0.1:$port" \
        "$qserve_bin" > "$tmp/qserve.out" 2>&1 &
    qpid=$!
    started+=("$qpid")
    if wait_http "http://127.0.0.1:$port/healthz" "$qpid"; then
        ok "qserve with exactly the manifest's ${#manifest_env[@]} QSERVE_* variables serves /healthz (200)"
        if check_metrics "http://127.0.0.1:$port" "$qserve_env" > "$tmp/metrics.out" 2>&1; then
            ok "qserve /metrics shows the configured mu, c, K, threads and service"
        else
            fail "qserve /metrics does not show the configured mu, c, K, threads and service"
            show "$tmp/metrics.out"
        fi
        for i in 0 1; do
            mapfile -d '' argv < <(py args "$rendered" qload qload "$i" \
                QLOAD_DURATION=2s QLOAD_WARMUP=1s QLOAD_URL="http://127.0.0.1:$port/")
            argv[0]="$qload_bin"
            if timeout 60 "${argv[@]}" > "$tmp/job-$i.json" 2> "$tmp/job-$i.err" &&
                py check-result "$tmp/job-$i.json" > "$tmp/job-$i.check" 2>&1; then
                ok "qload accepts the Job's args for index $i (${argv[*]:1}): $(cat "$tmp/job-$i.check")"
                results+=("$tmp/job-$i.json")
            else
                fail "qload with the Job's args for index $i: ${argv[*]}"
                show "$tmp/job-$i.err"
                show "$tmp/job-$i.check"
            fi
        done
    else
        fail "qserve with the manifest's QSERVE_* variables does not serve /healthz"
        show "$tmp/qserve.out"
    fi
    stop "$qpid" "$stop_limit"
    if [ "$stop_status" = "exit status 0" ]; then
        ok "qserve exits 0 on SIGTERM (within QSERVE_GRACE + 10 s)"
    else
        fail "qserve on SIGTERM: $stop_status"
        show "$tmp/qserve.out"
    fi
fi

# ----------------------------------------------------------------------------------------------
# 5. The image, built from the Containerfile's own steps and run in an otherwise empty root.
echo "     (running the Containerfile's builder stage on this machine; the static build takes a while)"
if py containerfile "$cf" "$repo" "$tmp/image" "$target_dir/containerfile" > "$tmp/image.log" 2>&1; then
    root="$(py get "$tmp/image/runtime.json" root)"
    user="$(py get "$tmp/image/runtime.json" user)"
    mapfile -d '' entry < <(python3 -c 'import json,sys; sys.stdout.write("".join(a+"\0" for a in json.load(open(sys.argv[1]))["entrypoint"]))' "$tmp/image/runtime.json")
    mapfile -d '' image_env < <(python3 -c 'import json,sys; sys.stdout.write("".join(f"{k}={v}\0" for k,v in json.load(open(sys.argv[1]))["env"].items()))' "$tmp/image/runtime.json")
    contents="$(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')"
    ok "Containerfile builder stage ran; runtime root holds: $contents"
    dynamic=""
    for f in "$root"/*; do
        if readelf -l "$f" 2> /dev/null | grep -q 'Requesting program interpreter' ||
            readelf -d "$f" 2> /dev/null | grep -q '(NEEDED)'; then
            dynamic="$dynamic ${f##*/}"
        fi
    done
    if [ -z "$dynamic" ]; then
        ok "runtime binaries are static (no interpreter, no shared libraries)"
    else
        fail "runtime binaries are dynamically linked:$dynamic"
    fi
    size="$(du -cb "$root"/* | tail -n 1 | cut -f1)"
    sizes="$(cd "$root" && du -b -- * | awk '{printf "%s %.2f MB, ", $2, $1 / 1e6}')"
    if [ "$size" -lt 20000000 ]; then
        ok "runtime image content $(awk -v s="$size" 'BEGIN { printf "%.2f MB", s / 1e6 }') < 20 MB (${sizes%, })"
    else
        fail "runtime image content $size bytes >= 20 MB (${sizes%, })"
    fi

    # The runtime stage, built for real by podman where it can run: FROM scratch needs no
    # registry. Its COPY --from=builder reads the builder stage's files run above.
    if command -v podman > /dev/null; then
        awk '/^FROM /{ n++ } n == 2' "$cf" | sed 's/^COPY --from=builder /COPY --from=stage /' \
            > "$tmp/Containerfile.runtime"
        mkdir -p "$tmp/emptyctx"
        tag="localhost/queuelab-test-$$:latest"
        if timeout 300 podman build --quiet --pull=never --build-context "stage=$tmp/image/stage-builder" \
            -f "$tmp/Containerfile.runtime" -t "$tag" "$tmp/emptyctx" > "$tmp/podman.log" 2>&1 &&
            podman image inspect "$tag" --format \
                '{{.Size}} {{.Config.User}} {{join .Config.Entrypoint " "}} {{range $p, $v := .Config.ExposedPorts}}{{$p}}{{end}}' \
                > "$tmp/inspect.out" 2>> "$tmp/podman.log"; then
            read -r isize iuser ientry iport < "$tmp/inspect.out"
            if [ "$isize" -lt 20000000 ] && [ "$iuser" = 65532:65532 ] && [ "$ientry" = /qserve ] &&
                [ "$iport" = 8000/tcp ]; then
                ok "podman builds the runtime stage offline: image $(awk -v s="$isize" 'BEGIN { printf "%.2f MB", s / 1e6 }') < 20 MB, user $iuser, entry point $ientry, port $iport"
            else
                fail "podman image of the runtime stage: size $isize, user $iuser, entry point $ientry, port $iport"
            fi
        else
            fail "podman build of the runtime stage"
            show "$tmp/podman.log"
        fi
        podman rmi -f "$tag" > /dev/null 2>&1
    else
        skip "podman build of the runtime stage (no podman)"
    fi

    if [ "$(id -u)" != 0 ]; then
        skip "image start in an empty root: chroot and the stub DNS server need root"
    else
        port="$(py free-port)"
        env -i "${image_env[@]}" "${manifest_env[@]}" QSERVE_LISTEN="127.0.0.1:$port" \
            "$chroot_bin" --userspec="$user" "$root" "${entry[@]}" > "$tmp/chroot-qserve.out" 2>&1 &
        cpid=$!
        started+=("$cpid")
        if wait_http "http://127.0.0.1:$port/healthz" "$cpid"; then
            ok "image entry point ${entry[*]} serves /healthz in an empty root as user $user"
            if check_metrics "http://127.0.0.1:$port" "$qserve_env" > "$tmp/metrics.out" 2>&1; then
                ok "image qserve /metrics shows the configured mu, c, K, threads and service"
            else
                fail "image qserve /metrics"
                show "$tmp/metrics.out"
            fi
            mapfile -d '' argv < <(py args "$rendered" qload qload 2 \
                QLOAD_DURATION=2s QLOAD_WARMUP=1s QLOAD_URL="http://127.0.0.1:$port/")
            if env -i "$timeout_bin" 60 "$chroot_bin" --userspec="$user" "$root" "${argv[@]}" > "$tmp/job-2.json" 2> "$tmp/job-2.err" &&
                py check-result "$tmp/job-2.json" > "$tmp/job-2.check" 2>&1; then
                ok "image /qload runs the Job's args (index 2) in the empty root: $(cat "$tmp/job-2.check")"
                results+=("$tmp/job-2.json")
            else
                fail "image /qload with the Job's args in the empty root"
                show "$tmp/job-2.err"
                show "$tmp/job-2.check"
            fi

            # The Service name, resolved as in a pod: the kubelet mounts /etc/resolv.conf (cluster
            # DNS, search domains, ndots:5) and /etc/hosts into the container; nothing else.
            dns_ip=127.0.83.53
            dnsroot="$tmp/dnsroot"
            mkdir -p "$dnsroot/etc"
            chmod 755 "$dnsroot" "$dnsroot/etc"
            cp -p "$root"/* "$dnsroot/"
            printf 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5\n' \
                "$dns_ip" > "$dnsroot/etc/resolv.conf"
            printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$dnsroot/etc/hosts"
            chmod 644 "$dnsroot/etc/resolv.conf" "$dnsroot/etc/hosts"
            coproc DNS { exec python3 "$tmp/kube.py" dns "$dns_ip" qserve.default.svc.cluster.local 127.0.0.1 60 2>&1; }
            started+=("$DNS_PID")
            read -r -t 10 dns_ready <&"${DNS[0]}"
            if [ "${dns_ready:-}" = ready ]; then
                svc_url="$(py args "$rendered" qload qload 3 | tr '\0' '\n' | tail -n 1 |
                    sed -E "s#^(http://[^/:]+):[0-9]+#\\1:$port#")"
                mapfile -d '' argv < <(py args "$rendered" qload qload 3 \
                    QLOAD_DURATION=2s QLOAD_WARMUP=1s QLOAD_URL="$svc_url")
                if env -i "$timeout_bin" 60 "$chroot_bin" --userspec="$user" "$dnsroot" "${argv[@]}" > "$tmp/job-3.json" 2> "$tmp/job-3.err" &&
                    py check-result "$tmp/job-3.json" > "$tmp/job-3.check" 2>&1; then
                    ok "image /qload resolves the Service name through resolv.conf ($svc_url): $(cat "$tmp/job-3.check")"
                    results+=("$tmp/job-3.json")
                else
                    fail "image /qload with the Service name $svc_url through a stub cluster DNS"
                    show "$tmp/job-3.err"
                    show "$tmp/job-3.check"
                fi
            else
                fail "stub DNS server on $dns_ip:53 did not start (needs root)"
            fi
            dns_pid="$DNS_PID"
            kill "$dns_pid" 2> /dev/null
            wait "$dns_pid" 2> /dev/null
            forget "$dns_pid"
        else
            fail "image entry point does not serve /healthz in the empty root"
            show "$tmp/chroot-qserve.out"
        fi
        stop "$cpid" "$stop_limit"
        if [ "$stop_status" = "exit status 0" ]; then
            ok "image qserve exits 0 on SIGTERM"
        else
            fail "image qserve on SIGTERM: $stop_status"
            show "$tmp/chroot-qserve.out"
        fi
    fi
else
    fail "the Containerfile's builder stage failed"
    show "$tmp/image.log"
fi

# ----------------------------------------------------------------------------------------------
# 6. kube-collect.sh against a stand-in kubectl serving the results above as pod logs.
if [ "${#results[@]}" -ge 2 ]; then
    fake="$tmp/fakebin"
    logs="$tmp/podlogs"
    mkdir -p "$fake" "$logs"
    n=0
    for r in "${results[@]}"; do
        # kubectl logs interleaves stderr: put a diagnostic line before and after the JSON.
        { echo "qload: warning: pinned to no core"; cat "$r"; echo "qload: done"; } > "$logs/qload-$n-x7k2p"
        n=$((n + 1))
    done
    cat > "$fake/kubectl" << EOF
#!/usr/bin/env bash
# Stand-in kubectl: the Job has $n succeeded pods whose logs are in $logs.
case "\$*" in
    "get job qload -o jsonpath={.spec.completions}"*) echo $n ;;
    "get pods -l batch.kubernetes.io/job-name=qload --field-selector=status.phase=Succeeded "*)
        for f in "$logs"/*; do p="\${f##*/}"; i="\${p#qload-}"; printf '%s\t%s\n' "\$p" "\${i%%-*}"; done ;;
    "logs "*) set -- \$*; cat "$logs/\$2" ;;
    *) echo "stand-in kubectl: unexpected: \$*" >&2; exit 1 ;;
esac
EOF
    chmod +x "$fake/kubectl"
    if PATH="$fake:$PATH" scripts/kube-collect.sh --out "$tmp/collected" --qload "$qload_bin" \
        > "$tmp/collect.out" 2> "$tmp/collect.err" &&
        py check-merge "$tmp/collected/merged.json" "${results[@]}" > "$tmp/merge.check" 2>&1; then
        ok "kube-collect.sh splits $n pod logs into results and merges them: $(cat "$tmp/merge.check")"
    else
        fail "kube-collect.sh on $n stand-in pod logs"
        show "$tmp/collect.err"
        show "$tmp/merge.check"
    fi
else
    fail "kube-collect.sh not checked: fewer than two qload results above"
fi

echo "kube: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
