//! The Kubernetes manifests (kube/) against the policy a schema cannot see, and qserve against
//! the manifests: the binary started with exactly the Deployment's environment serves, shows its
//! configuration on /metrics and stops cleanly on SIGTERM.
//!
//! `kubectl kustomize` and `kubernetes-validate --strict` (scripts/test-kube.sh) check that the
//! objects are well formed; these tests check that they fit together and fit qserve. The qload
//! side (the Job's arguments run by qload, kube-collect.sh) is client/tests/manifests.rs.
#[path = "support/kube.rs"]
mod kube;
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kube::{Container, Env, Manifests, Overlay, PodSpec};
use queuelab_common::units::parse_duration;
use support::{PATIENCE, metric, read_response};

const BIN: &str = env!("CARGO_BIN_EXE_qserve");

/// The uid and gid the image runs as: the Containerfile's runtime `USER`.
fn image_user() -> (i64, i64) {
    let path = kube::repo_dir().join("Containerfile");
    let text = std::fs::read_to_string(&path).expect("read the Containerfile");
    let user = text
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER in the Containerfile");
    let (uid, gid) = user.trim().split_once(':').expect("USER uid:gid");
    (
        uid.parse().expect("a numeric uid"),
        gid.parse().expect("a numeric gid"),
    )
}

#[test]
fn kustomization_renders_two_config_maps_and_four_resources() {
    let m = Manifests::load();
    let mut kinds = m.kinds.clone();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Job",
            "Service"
        ]
    );
    assert_eq!(
        m.config_maps.keys().collect::<Vec<_>>(),
        ["qload-config", "qserve-config"]
    );
}

/// Non-root as the image's user, seccomp, no privileges, no service links or token, resources,
/// and the image as loaded into the cluster: the same for both pod templates.
fn check_pod_security(what: &str, image: &str, spec: &PodSpec, c: &Container) {
    let (uid, gid) = image_user();
    let sc = spec
        .security_context
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no pod securityContext"));
    assert_eq!(sc.run_as_non_root, Some(true), "{what}: runAsNonRoot");
    assert_eq!(
        sc.run_as_user,
        Some(uid),
        "{what}: runAsUser is the image's USER"
    );
    assert_eq!(
        sc.run_as_group,
        Some(gid),
        "{what}: runAsGroup is the image's USER"
    );
    assert!(uid > 0, "the image's USER is not root");
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|p| p.kind.as_str()),
        Some("RuntimeDefault"),
        "{what}: seccomp RuntimeDefault"
    );
    let csc = c
        .security_context
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no container securityContext"));
    assert_eq!(csc.allow_privilege_escalation, Some(false), "{what}");
    assert_eq!(csc.read_only_root_filesystem, Some(true), "{what}");
    assert!(
        csc.capabilities
            .as_ref()
            .is_some_and(|caps| caps.drop.iter().any(|d| d == "ALL")),
        "{what}: all capabilities dropped"
    );
    assert_eq!(
        spec.enable_service_links,
        Some(false),
        "{what}: enableServiceLinks false (else QSERVE_SERVICE_HOST, QSERVE_PORT... are injected)"
    );
    assert_eq!(
        spec.automount_service_account_token,
        Some(false),
        "{what}: no service account token"
    );
    let r = c
        .resources
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no resources"));
    for (kind, set) in [("requests", &r.requests), ("limits", &r.limits)] {
        for key in ["cpu", "memory"] {
            assert!(set.contains_key(key), "{what}: no {key} in {kind}");
        }
    }
    assert_eq!(image, "queuelab:latest", "{what}: image");
    assert_eq!(
        c.image_pull_policy.as_deref(),
        Some("IfNotPresent"),
        "{what}: the loaded image is used, never pulled"
    );
}

#[test]
fn both_pods_run_as_the_images_non_root_user_without_privileges() {
    let m = Manifests::load();
    let (qserve, qload) = (m.qserve(), m.qload());
    let spec = &m.deployment.spec.template.spec;
    check_pod_security("qserve", &m.image(qserve), spec, qserve);
    check_pod_security("qload", &m.image(qload), &m.job.spec.template.spec, qload);
}

#[test]
fn qserve_environment_is_qserve_settings_only_and_listens_on_8000() {
    let m = Manifests::load();
    let c = m.qserve();
    let env = m.env(c, None);
    assert!(!env.is_empty());
    let stray: Vec<_> = env.keys().filter(|k| !k.starts_with("QSERVE_")).collect();
    assert!(stray.is_empty(), "not QSERVE_*: {stray:?}");
    let listen = env.get("QSERVE_LISTEN").expect("QSERVE_LISTEN set");
    assert_eq!(listen.rsplit_once(':').map(|(_, p)| p), Some("8000"));
    let ports: Vec<u16> = c.ports.iter().map(|p| p.container_port).collect();
    assert_eq!(ports, [8000]);
}

/// Every variable name qserve reads: the `[env: NAME=...]` of its --help.
fn qserve_env_names() -> BTreeSet<String> {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run qserve --help");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split("[env: ")
        .skip(1)
        .filter_map(|s| s.split('=').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_qserve_variable_of_the_manifests_is_a_qserve_flag() {
    // qserve ignores a variable it does not know, so a misspelt name would silently be a default.
    let known = qserve_env_names();
    assert!(known.contains("QSERVE_MU"), "{known:?}");
    let m = Manifests::load();
    for name in m.env(m.qserve(), None).keys() {
        assert!(
            known.contains(name),
            "qserve does not read {name} ({known:?})"
        );
    }
}

#[test]
fn probes_get_healthz_on_8000() {
    let m = Manifests::load();
    let c = m.qserve();
    for (what, probe) in [
        ("readinessProbe", &c.readiness_probe),
        ("livenessProbe", &c.liveness_probe),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("no {what} httpGet"));
        assert_eq!(get.path.as_deref(), Some("/healthz"), "{what}");
        assert_eq!(c.port_number(&get.port), Some(8000), "{what}");
    }
}

#[test]
fn pod_template_carries_the_prometheus_scrape_annotations() {
    let m = Manifests::load();
    let a = &m.deployment.spec.template.metadata.annotations;
    for (k, v) in [
        ("prometheus.io/scrape", "true"),
        ("prometheus.io/port", "8000"),
        ("prometheus.io/path", "/metrics"),
    ] {
        assert_eq!(a.get(k).map(String::as_str), Some(v), "{k}");
    }
}

#[test]
fn grace_period_covers_pre_stop_and_qserve_grace() {
    let m = Manifests::load();
    let c = m.qserve();
    let env = m.env(c, None);
    let grace = parse_duration(env.get("QSERVE_GRACE").expect("QSERVE_GRACE set"))
        .expect("QSERVE_GRACE is a duration");
    let pre_stop = Duration::from_secs(c.pre_stop_sleep_s());
    assert!(pre_stop > Duration::ZERO, "a preStop sleep");
    // 30 s is the Kubernetes default; 1 s of margin for the kubelet's own steps.
    let period = Duration::from_secs(
        m.deployment
            .spec
            .template
            .spec
            .termination_grace_period_seconds
            .unwrap_or(30),
    );
    assert!(
        period >= pre_stop + grace + Duration::from_secs(1),
        "terminationGracePeriodSeconds {period:?} < preStop {pre_stop:?} + QSERVE_GRACE {grace:?} + 1 s"
    );
}

#[test]
fn replica_count_is_left_to_the_hpa() {
    let m = Manifests::load();
    assert_eq!(m.deployment.spec.replicas, None);
    let hpa = &m.hpa;
    assert_eq!(hpa.api_version, "autoscaling/v2");
    let target = &hpa.spec.scale_target_ref;
    assert_eq!(
        (target.kind.as_str(), target.name.as_str()),
        ("Deployment", "qserve")
    );
    assert_eq!(target.api_version.as_deref(), Some("apps/v1"));
    assert_eq!(hpa.spec.min_replicas, Some(1));
    assert!(hpa.spec.max_replicas >= 1);
    assert!(
        hpa.spec
            .metrics
            .iter()
            .any(|x| x.resource.as_ref().is_some_and(|r| r.name == "cpu")),
        "the HPA scales on CPU"
    );
}

#[test]
fn service_selects_the_qserve_pods_on_8000() {
    let m = Manifests::load();
    let labels = &m.deployment.spec.template.metadata.labels;
    let sel = &m.service.spec.selector;
    assert!(!sel.is_empty());
    for (k, v) in sel {
        assert_eq!(labels.get(k), Some(v), "the pods carry the Service's {k}");
    }
    for (k, v) in &m.deployment.spec.selector.match_labels {
        assert_eq!(
            labels.get(k),
            Some(v),
            "the pods carry the Deployment's {k}"
        );
    }
    assert_eq!(m.service.metadata.name.as_deref(), Some("qserve"));
    assert_eq!(m.service.spec.kind.as_deref(), Some("NodePort"));
    let [port] = m.service.spec.ports.as_slice() else {
        panic!("one Service port, not {:?}", m.service.spec.ports);
    };
    assert_eq!(port.port, 8000);
    let target = port
        .target_port
        .clone()
        .unwrap_or(kube::IntOrString::Int(port.port));
    assert_eq!(m.qserve().port_number(&target), Some(8000));
}

#[test]
fn job_is_indexed_suspended_and_never_retried() {
    let m = Manifests::load();
    let s = &m.job.spec;
    assert_eq!(s.completion_mode.as_deref(), Some("Indexed"));
    let n = s.completions.expect("completions");
    assert!(n >= 1);
    assert_eq!(s.parallelism, Some(n), "all N sources run at once");
    assert_eq!(s.suspend, Some(true), "created suspended");
    assert_eq!(
        s.backoff_limit,
        Some(0),
        "a retried pod would load at another time"
    );
    assert_eq!(s.template.spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(m.qload().command, ["/qload"]);
}

#[test]
fn job_arguments_resolve_to_distinct_seeds_and_target_the_service() {
    let m = Manifests::load();
    let c = m.qload();
    let n = m.job.spec.completions.expect("completions");
    let mut seeds = BTreeSet::new();
    for i in 0..n {
        let argv = m.argv(c, Some(i), &[]);
        let unresolved: Vec<_> = argv.iter().filter(|a| a.contains("$(")).collect();
        assert!(
            unresolved.is_empty(),
            "index {i}: unresolved {unresolved:?}"
        );
        assert!(
            argv.iter().any(|a| a == "--json"),
            "pods print JSON: {argv:?}"
        );
        let seed = argv
            .iter()
            .position(|a| a == "--seed")
            .and_then(|p| argv.get(p + 1))
            .unwrap_or_else(|| panic!("no --seed in {argv:?}"));
        let seed: u64 = seed
            .parse()
            .unwrap_or_else(|_| panic!("seed {seed:?} not numeric"));
        assert!(seeds.insert(seed), "index {i}: seed {seed} used twice");
        let url = argv.last().expect("a URL");
        let service = m.service.metadata.name.as_deref().expect("a Service name");
        let port = m.service.spec.ports[0].port;
        assert_eq!(
            *url,
            format!("http://{service}:{port}/"),
            "the Service's URL"
        );
    }
}

#[test]
fn the_default_load_keeps_the_queue_stable() {
    // N pods at QLOAD_RATE each against c servers of rate mu: rho = N rate / (c mu) < 1, or the
    // default experiment measures a queue that only grows.
    let m = Manifests::load();
    let qserve = m.env(m.qserve(), None);
    let qload = m.env(m.qload(), Some(0));
    let n = f64::from(m.job.spec.completions.expect("completions"));
    let rate: f64 = qload["QLOAD_RATE"].parse().expect("a plain QLOAD_RATE");
    let mu: f64 = qserve["QSERVE_MU"].parse().expect("a plain QSERVE_MU");
    let c: f64 = qserve["QSERVE_SERVERS"]
        .parse()
        .expect("a finite QSERVE_SERVERS");
    let rho = n * rate / (c * mu);
    assert!(rho > 0.0 && rho < 1.0, "rho = {rho}");
}

// ------------------------------------------------------------------------------------------------
// qserve started with the manifests' environment.

/// qserve with exactly `env` (no inherited variable), stderr piped.
fn spawn_qserve(env: &Env) -> Child {
    Command::new(BIN)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qserve")
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for qserve") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn get(addr: &str, path: &str) -> support::Response {
    let mut s = TcpStream::connect(addr).expect("connect to qserve");
    s.set_read_timeout(Some(PATIENCE)).expect("set a timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: qserve\r\n\r\n").expect("send");
    let mut pending = Vec::new();
    read_response(&mut s, &mut pending)
        .expect("read a response")
        .expect("a response")
}

/// The manifests' qserve environment, QSERVE_LISTEN moved to an ephemeral loopback port.
fn manifest_env_on_loopback() -> Env {
    let m = Manifests::load();
    let mut env = m.env(m.qserve(), None);
    env.insert("QSERVE_LISTEN".to_owned(), "127.0.0.1:0".to_owned());
    env
}

#[test]
fn qserve_refuses_a_malformed_value_in_the_manifest_environment() {
    // The control: the environment is read and validated at all.
    let mut env = manifest_env_on_loopback();
    env.insert("QSERVE_MU".to_owned(), "fast".to_owned());
    let mut child = spawn_qserve(&env);
    let status = wait_with_deadline(&mut child, PATIENCE).expect("qserve exits");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("fast"), "says which value: {err}");
}

#[test]
fn qserve_serves_with_the_manifest_environment_and_stops_on_sigterm() {
    let env = manifest_env_on_loopback();
    let mut child = spawn_qserve(&env);
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the start-up line");
    let Some(addr) = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
    else {
        let _ = child.kill();
        panic!("no address in the start-up line {line:?}");
    };
    // A pod's CPU limit is for the queue's work: the manifests keep qserve from polling.
    assert!(
        !line.contains("busy-poll"),
        "the manifests' qserve busy-polls: {line}"
    );
    // Keep reading, so that qserve's later lines never meet a full pipe.
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });

    let health = get(&addr, "/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    let metrics = get(&addr, "/metrics");
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    let setting = |k: &str| -> &str {
        env.get(k)
            .unwrap_or_else(|| panic!("{k} not in the manifests"))
    };
    let number = |k: &str| -> f64 {
        setting(k)
            .parse()
            .unwrap_or_else(|_| panic!("{k} not a number"))
    };
    assert_eq!(metric(&text, "qserve_mu"), number("QSERVE_MU"));
    assert_eq!(metric(&text, "qserve_servers"), number("QSERVE_SERVERS"));
    assert_eq!(metric(&text, "qserve_capacity"), number("QSERVE_CAPACITY"));
    assert_eq!(metric(&text, "qserve_threads"), number("QSERVE_THREADS"));
    let spin = parse_duration(setting("QSERVE_SPIN")).expect("QSERVE_SPIN is a duration");
    assert_eq!(metric(&text, "qserve_spin_seconds"), spin.as_secs_f64());
    let service = format!("service=\"{}\"", setting("QSERVE_SERVICE"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("qserve_info{") && l.contains(&service)),
        "no qserve_info with {service} in\n{text}"
    );

    // SAFETY: signals our own child, whose pid stays valid until it is waited for.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    // An idle qserve stops at once; QSERVE_GRACE bounds it when requests are queued.
    let grace = parse_duration(setting("QSERVE_GRACE")).expect("QSERVE_GRACE is a duration");
    let status = wait_with_deadline(&mut child, grace + PATIENCE);
    let rest = rest.join().expect("the stderr reader");
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "qserve on SIGTERM: {line}{rest}"
    );
}

// ------------------------------------------------------------------------------------------------
// The tandem overlay (kube/overlays/tandem/): three stations, each forwarding to the next.

/// The tandem's stations in the order a request visits them: from the Service the Job's URL
/// names, through each station's QSERVE_FORWARD (a Service's URL), to the one that forwards
/// nowhere. Each as (Deployment name, its qserve environment).
fn tandem_line(t: &Overlay) -> Vec<(String, Env)> {
    let [job] = t.jobs.as_slice() else {
        panic!("one Job in the tandem, not {}", t.jobs.len());
    };
    let qload = job.spec.template.spec.container("qload");
    let mut url = Some(t.argv(qload, Some(0), &[]).last().expect("a URL").clone());
    let mut line: Vec<(String, Env)> = Vec::new();
    while let Some(u) = url {
        assert!(line.len() <= t.deployments.len(), "a loop: {line:?}");
        let rest = u
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix('/'))
            .unwrap_or_else(|| panic!("{u:?} is not http://service:port/"));
        let (name, port) = rest
            .split_once(':')
            .unwrap_or_else(|| panic!("{u:?}: no port"));
        let service = t.service(name);
        let [sp] = service.spec.ports.as_slice() else {
            panic!("Service {name}: one port");
        };
        assert_eq!(port, sp.port.to_string(), "{u:?}: the Service's port");
        let selected = t.selected_by(service);
        let [d] = selected.as_slice() else {
            panic!("Service {name} selects one Deployment");
        };
        let c = d.spec.template.spec.container("qserve");
        let target = sp
            .target_port
            .clone()
            .unwrap_or(kube::IntOrString::Int(sp.port));
        assert_eq!(
            c.port_number(&target),
            Some(8000),
            "Service {name}: qserve's port"
        );
        let env = t.env(c, None);
        url = env.get("QSERVE_FORWARD").cloned();
        line.push((d.metadata.name.clone().expect("a Deployment name"), env));
    }
    line
}

#[test]
fn tandem_is_three_stations_in_a_line_from_the_job_to_the_last() {
    let t = Overlay::load("tandem");
    let mut kinds = t.kinds.clone();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            vec!["ConfigMap"; 5],
            vec!["Deployment"; 3],
            vec!["Job", "Namespace"],
            vec!["Service"; 3]
        ]
        .concat()
    );
    assert!(
        t.kustomization.namespace.is_some(),
        "a namespace of its own"
    );
    let line = tandem_line(&t);
    let names: Vec<&str> = line.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["station-1", "station-2", "station-3"]);
    let known = qserve_env_names();
    for (name, env) in &line {
        let d = t.deployment(name);
        assert_eq!(d.spec.replicas, Some(1), "{name}: one replica is one queue");
        for (k, v) in &d.spec.selector.match_labels {
            assert_eq!(
                d.spec.template.metadata.labels.get(k),
                Some(v),
                "{name}: {k}"
            );
        }
        for k in env.keys() {
            assert!(known.contains(k), "{name}: qserve does not read {k}");
        }
        let listen = env.get("QSERVE_LISTEN").expect("QSERVE_LISTEN set");
        assert_eq!(
            listen.rsplit_once(':').map(|(_, p)| p),
            Some("8000"),
            "{name}"
        );
        let spec = &d.spec.template.spec;
        let c = spec.container("qserve");
        check_pod_security(name, &t.image(c), spec, c);
        let grace = parse_duration(env.get("QSERVE_GRACE").expect("QSERVE_GRACE set"))
            .expect("QSERVE_GRACE is a duration");
        let period = Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30));
        let pre_stop = Duration::from_secs(c.pre_stop_sleep_s());
        assert!(pre_stop > Duration::ZERO, "{name}: a preStop sleep");
        assert!(
            period >= pre_stop + grace + Duration::from_secs(1),
            "{name}: terminationGracePeriodSeconds {period:?} < preStop + QSERVE_GRACE + 1 s"
        );
    }
    let job = &t.jobs[0];
    let s = &job.spec;
    assert_eq!(s.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!(s.parallelism, s.completions, "all N sources run at once");
    assert_eq!(s.suspend, Some(true), "created suspended");
    assert_eq!(s.backoff_limit, Some(0));
    let qload = job.spec.template.spec.container("qload");
    check_pod_security("qload", &t.image(qload), &job.spec.template.spec, qload);
}

#[test]
fn tandem_default_load_keeps_every_station_stable() {
    // Every station of a tandem sees the whole arrival rate lambda = N x QLOAD_RATE, so each
    // needs rho_i = lambda / (c_i mu_i) < 1, or the default experiment measures a queue that
    // only grows.
    let t = Overlay::load("tandem");
    let job = &t.jobs[0];
    let qload = t.env(job.spec.template.spec.container("qload"), Some(0));
    let n = f64::from(job.spec.completions.expect("completions"));
    let lambda = n * qload["QLOAD_RATE"]
        .parse::<f64>()
        .expect("a plain QLOAD_RATE");
    let mut mean = 0.0;
    for (name, env) in tandem_line(&t) {
        let mu: f64 = env["QSERVE_MU"].parse().expect("a plain QSERVE_MU");
        let c: f64 = env["QSERVE_SERVERS"]
            .parse()
            .expect("a finite QSERVE_SERVERS");
        let rho = lambda / (c * mu);
        assert!(rho > 0.0 && rho < 1.0, "{name}: rho = {rho}");
        mean += 1.0 / (mu - lambda);
    }
    // kube/README.md quotes this figure for the defaults (Σ 1/(μ_i − λ), M/M/1 stations).
    assert!((mean * 1e3 - 6.54).abs() < 0.005, "{} ms", mean * 1e3);
}

/// The start-up line's address of a qserve just spawned (stderr is then drained on a thread).
fn listening(child: &mut Child) -> (String, std::thread::JoinHandle<String>) {
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("the start-up line");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned);
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        line + &rest
    });
    match addr {
        Some(a) => (a, rest),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no address in the start-up line: {}",
                rest.join().unwrap_or_default()
            );
        }
    }
}

#[test]
fn tandem_stations_with_the_overlays_environment_forward_end_to_end() {
    // The three stations started with exactly their manifests' environment, last first, each
    // Service name of a QSERVE_FORWARD replaced by the loopback address of that station (what
    // cluster DNS and kube-proxy do in the cluster). A request to station 1 visits all three.
    let t = Overlay::load("tandem");
    let line = tandem_line(&t);
    let mut addrs: Vec<String> = Vec::new();
    let mut children = Vec::new();
    for (name, env) in line.iter().rev() {
        let mut env = env.clone();
        env.insert("QSERVE_LISTEN".to_owned(), "127.0.0.1:0".to_owned());
        if env.contains_key("QSERVE_FORWARD") {
            let next = addrs.last().expect("the next station runs");
            env.insert("QSERVE_FORWARD".to_owned(), format!("http://{next}/"));
        }
        let mut child = spawn_qserve(&env);
        let (addr, rest) = listening(&mut child);
        addrs.push(addr);
        children.push((name.clone(), env, child, rest));
    }
    addrs.reverse();
    children.reverse();
    let n = 20;
    let mut s = TcpStream::connect(&addrs[0]).expect("connect to station 1");
    s.set_read_timeout(Some(PATIENCE)).expect("set a timeout");
    let mut pending = Vec::new();
    for i in 0..n {
        write!(s, "GET /t?i={i} HTTP/1.1\r\nHost: station-1\r\n\r\n").expect("send");
        let r = read_response(&mut s, &mut pending)
            .expect("read a response")
            .expect("a response");
        assert_eq!(r.status, 200, "{}", r.text());
        let timing = r.header("server-timing").expect("Server-Timing").to_owned();
        let names: Vec<&str> = timing
            .split(',')
            .filter_map(|e| e.trim().split(';').next())
            .collect();
        assert_eq!(
            names,
            [
                "wait", "service", "late", "hop", "wait", "service", "late", "hop", "wait",
                "service", "late"
            ],
            "three visits and two hops: {timing}"
        );
    }
    drop(s);
    for (i, (name, env, _, _)) in children.iter().enumerate() {
        let text = get(&addrs[i], "/metrics").text();
        let mu: f64 = env["QSERVE_MU"].parse().expect("a plain QSERVE_MU");
        assert_eq!(metric(&text, "qserve_mu"), mu, "{name}");
        let forwards = env.contains_key("QSERVE_FORWARD");
        let outcome = if forwards { "forwarded" } else { "served" };
        assert_eq!(
            metric(
                &text,
                &format!("qserve_requests_total{{outcome=\"{outcome}\"}}")
            ),
            f64::from(n),
            "{name}"
        );
        if forwards {
            assert_eq!(
                metric(&text, "qserve_forward_requests_total"),
                f64::from(n),
                "{name}"
            );
        }
    }
    for (name, env, mut child, rest) in children {
        // SAFETY: signals our own child, whose pid stays valid until it is waited for.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let grace = parse_duration(&env["QSERVE_GRACE"]).expect("QSERVE_GRACE is a duration");
        let status = wait_with_deadline(&mut child, grace + PATIENCE);
        let log = rest.join().expect("the stderr reader");
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{name}: {log}");
    }
}
