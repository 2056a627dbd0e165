//! The Kubernetes manifests of kube/, read as `kubectl kustomize` renders them and with each
//! container's environment and arguments as the kubelet builds them.
//!
//! Shared by the server's and the client's `manifests` tests (included by path: the server's
//! test spawns qserve, the client's spawns qload, and a test can only spawn its own package's
//! binaries). Only the fields the tests check are modelled; the schema of every field, unknown
//! ones included, is `kubernetes-validate --strict`'s job in scripts/test-kube.sh.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// kube/, from either crate (both sit one level below the workspace root).
pub fn kube_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kube")
}

/// The workspace root.
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An environment: variable name to value, as the kubelet hands it to a container.
pub type Env = BTreeMap<String, String>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kustomization {
    pub namespace: Option<String>,
    pub resources: Vec<String>,
    #[serde(default)]
    pub config_map_generator: Vec<ConfigMapGenerator>,
    #[serde(default)]
    pub images: Vec<ImageOverride>,
}

#[derive(Debug, Deserialize)]
pub struct ConfigMapGenerator {
    pub name: String,
    #[serde(default)]
    pub literals: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageOverride {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Kind {
    pub kind: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub metadata: Metadata,
    pub spec: DeploymentSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub replicas: Option<u32>,
    pub selector: LabelSelector,
    pub template: PodTemplate,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct PodTemplate {
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: PodSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub containers: Vec<Container>,
    pub security_context: Option<PodSecurityContext>,
    pub enable_service_links: Option<bool>,
    pub automount_service_account_token: Option<bool>,
    pub termination_grace_period_seconds: Option<u64>,
    pub restart_policy: Option<String>,
}

impl PodSpec {
    pub fn container(&self, name: &str) -> &Container {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    pub run_as_non_root: Option<bool>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub seccomp_profile: Option<SeccompProfile>,
}

#[derive(Debug, Deserialize)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
    pub image_pull_policy: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env_from: Vec<EnvFromSource>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    pub readiness_probe: Option<Probe>,
    pub liveness_probe: Option<Probe>,
    pub lifecycle: Option<Lifecycle>,
    pub resources: Option<Resources>,
    pub security_context: Option<ContainerSecurityContext>,
}

impl Container {
    /// A port given by number or by the name of one of this container's ports.
    pub fn port_number(&self, port: &IntOrString) -> Option<u16> {
        match port {
            IntOrString::Int(n) => Some(*n),
            IntOrString::Str(name) => self
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port),
        }
    }

    /// The seconds of the preStop sleep action (0 without one).
    pub fn pre_stop_sleep_s(&self) -> u64 {
        self.lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| h.sleep.as_ref())
            .map_or(0, |s| s.seconds)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvFromSource {
    pub config_map_ref: Option<NameRef>,
    pub secret_ref: Option<NameRef>,
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NameRef {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
    pub value_from: Option<EnvVarSource>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    pub field_ref: Option<FieldRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    pub field_path: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(u16),
    Str(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub http_get: Option<HttpGet>,
}

#[derive(Debug, Deserialize)]
pub struct HttpGet {
    pub path: Option<String>,
    pub port: IntOrString,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub pre_stop: Option<LifecycleHandler>,
}

#[derive(Debug, Deserialize)]
pub struct LifecycleHandler {
    pub sleep: Option<SleepAction>,
}

#[derive(Debug, Deserialize)]
pub struct SleepAction {
    pub seconds: u64,
}

#[derive(Debug, Deserialize)]
pub struct Resources {
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSecurityContext {
    pub allow_privilege_escalation: Option<bool>,
    pub read_only_root_filesystem: Option<bool>,
    pub capabilities: Option<Capabilities>,
}

#[derive(Debug, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Service {
    pub metadata: Metadata,
    pub spec: ServiceSpec,
}

#[derive(Debug, Deserialize)]
pub struct ServiceSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub port: u16,
    pub target_port: Option<IntOrString>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hpa {
    pub api_version: String,
    pub metadata: Metadata,
    pub spec: HpaSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaSpec {
    pub scale_target_ref: ScaleTargetRef,
    pub min_replicas: Option<u32>,
    pub max_replicas: u32,
    #[serde(default)]
    pub metrics: Vec<HpaMetric>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    pub api_version: Option<String>,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct HpaMetric {
    pub resource: Option<ResourceMetric>,
}

#[derive(Debug, Deserialize)]
pub struct ResourceMetric {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Job {
    pub metadata: Metadata,
    pub spec: JobSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    pub suspend: Option<bool>,
    pub completion_mode: Option<String>,
    pub completions: Option<u32>,
    pub parallelism: Option<u32>,
    pub backoff_limit: Option<u32>,
    pub template: PodTemplate,
}

/// The downward-API field the Job controller fills with a pod's completion index.
pub const COMPLETION_INDEX_FIELD: &str =
    "metadata.annotations['batch.kubernetes.io/job-completion-index']";

/// kube/ as one rendered set: the kustomization, its generated ConfigMaps and its resources.
#[derive(Debug)]
pub struct Manifests {
    pub kustomization: Kustomization,
    /// Generated ConfigMaps by generator name (kustomize appends a hash to the name and rewrites
    /// every reference to it, so a reference by generator name is a reference to it).
    pub config_maps: BTreeMap<String, Env>,
    /// The kind of every object, generated ones included, in rendering order.
    pub kinds: Vec<String>,
    pub deployment: Deployment,
    pub service: Service,
    pub hpa: Hpa,
    pub job: Job,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> T {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl Manifests {
    /// Reads kube/kustomization.yaml and the resources it lists. Panics (fails the test) on a
    /// file that does not parse, a resource of a kind the tests do not know, or a missing one.
    pub fn load() -> Self {
        let dir = kube_dir();
        let kustomization: Kustomization =
            parse("kustomization.yaml", &read(&dir.join("kustomization.yaml")));
        let config_maps = generated_config_maps(&kustomization);
        let mut kinds = vec!["ConfigMap".to_owned(); config_maps.len()];
        let (mut deployment, mut service, mut hpa, mut job) = (None, None, None, None);
        for file in &kustomization.resources {
            let text = read(&dir.join(file));
            let kind: Kind = parse(file, &text);
            match kind.kind.as_str() {
                "Deployment" => deployment = Some(parse(file, &text)),
                "Service" => service = Some(parse(file, &text)),
                "HorizontalPodAutoscaler" => hpa = Some(parse(file, &text)),
                "Job" => job = Some(parse(file, &text)),
                other => panic!("{file}: a {other} the manifest tests do not check"),
            }
            kinds.push(kind.kind);
        }
        Manifests {
            kustomization,
            config_maps,
            kinds,
            deployment: deployment.expect("a Deployment among the resources"),
            service: service.expect("a Service among the resources"),
            hpa: hpa.expect("a HorizontalPodAutoscaler among the resources"),
            job: job.expect("a Job among the resources"),
        }
    }

    /// The qserve container of the Deployment.
    pub fn qserve(&self) -> &Container {
        self.deployment.spec.template.spec.container("qserve")
    }

    /// The qload container of the Job.
    pub fn qload(&self) -> &Container {
        self.job.spec.template.spec.container("qload")
    }

    /// The image a container runs once the kustomization's `images` overrides are applied.
    pub fn image(&self, c: &Container) -> String {
        overridden_image(&self.kustomization, c)
    }

    /// The environment the kubelet gives container `c` (see [`container_env`]).
    pub fn env(&self, c: &Container, index: Option<u32>) -> Env {
        container_env(&self.config_maps, c, index)
    }

    /// The container's argv for completion index `index` (see [`container_argv`]).
    pub fn argv(
        &self,
        c: &Container,
        index: Option<u32>,
        overrides: &[(&str, &str)],
    ) -> Vec<String> {
        container_argv(&self.config_maps, c, index, overrides)
    }
}

/// The image a container runs once a kustomization's `images` overrides are applied.
pub fn overridden_image(k: &Kustomization, c: &Container) -> String {
    let image = c.image.as_deref().expect("a container image");
    let (name, tag) = image.split_once(':').unwrap_or((image, "latest"));
    match k.images.iter().find(|o| o.name == name) {
        Some(o) => format!(
            "{}:{}",
            o.new_name.as_deref().unwrap_or(name),
            o.new_tag.as_deref().unwrap_or(tag)
        ),
        None => image.to_owned(),
    }
}

/// The environment the kubelet gives container `c`: `envFrom` in order (a later source wins),
/// then `env` (which wins over `envFrom`), each `env` value expanded against the variables
/// defined before it. `index` stands in for the Job's completion-index annotation.
pub fn container_env(
    config_maps: &BTreeMap<String, Env>,
    c: &Container,
    index: Option<u32>,
) -> Env {
    let mut env = Env::new();
    for source in &c.env_from {
        let cm = source
            .config_map_ref
            .as_ref()
            .unwrap_or_else(|| panic!("unsupported envFrom source {source:?}"));
        let data = config_maps
            .get(&cm.name)
            .unwrap_or_else(|| panic!("envFrom names ConfigMap {}, not generated", cm.name));
        let prefix = source.prefix.as_deref().unwrap_or("");
        for (k, v) in data {
            env.insert(format!("{prefix}{k}"), v.clone());
        }
    }
    for var in &c.env {
        let value = match (&var.value, &var.value_from) {
            (Some(v), None) => expand(v, &env),
            (None, Some(EnvVarSource { field_ref: Some(f) }))
                if f.field_path == COMPLETION_INDEX_FIELD =>
            {
                index
                    .unwrap_or_else(|| panic!("{} needs a completion index", var.name))
                    .to_string()
            }
            _ => panic!("unsupported env source for {}", var.name),
        };
        env.insert(var.name.clone(), value);
    }
    env
}

/// The container's argv (`command` then `args`) for completion index `index`, every `$(VAR)`
/// expanded after `overrides` replaced some variables.
pub fn container_argv(
    config_maps: &BTreeMap<String, Env>,
    c: &Container,
    index: Option<u32>,
    overrides: &[(&str, &str)],
) -> Vec<String> {
    let mut env = container_env(config_maps, c, index);
    for (k, v) in overrides {
        assert!(
            env.contains_key(*k),
            "override of {k}, which the container does not have"
        );
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    c.command
        .iter()
        .chain(&c.args)
        .map(|a| expand(a, &env))
        .collect()
}

/// The ConfigMaps a kustomization generates, by generator name, as KEY=VALUE literals.
fn generated_config_maps(k: &Kustomization) -> BTreeMap<String, Env> {
    let mut config_maps = BTreeMap::new();
    for g in &k.config_map_generator {
        let mut data = Env::new();
        for literal in &g.literals {
            let (key, v) = literal
                .split_once('=')
                .unwrap_or_else(|| panic!("literal {literal:?} of {} is not KEY=VALUE", g.name));
            assert!(
                data.insert(key.to_owned(), v.to_owned()).is_none(),
                "{key} twice in ConfigMap {}",
                g.name
            );
        }
        assert!(
            config_maps.insert(g.name.clone(), data).is_none(),
            "ConfigMap {} generated twice",
            g.name
        );
    }
    config_maps
}

fn from_value<T: serde::de::DeserializeOwned>(
    file: &str,
    what: &str,
    v: serde_yaml_ng::Value,
) -> T {
    serde_yaml_ng::from_value(v).unwrap_or_else(|e| panic!("{file} ({what}): {e}"))
}

/// An overlay of kube/overlays/: a kustomization of its own whose resource files may hold
/// several objects each (`---`). Only the kinds the tests know are accepted.
#[derive(Debug)]
pub struct Overlay {
    pub kustomization: Kustomization,
    pub config_maps: BTreeMap<String, Env>,
    /// The kind of every object, generated ConfigMaps included.
    pub kinds: Vec<String>,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub jobs: Vec<Job>,
}

impl Overlay {
    /// Reads kube/overlays/`name`/kustomization.yaml and its resources.
    pub fn load(name: &str) -> Self {
        use serde::Deserialize as _;
        let dir = kube_dir().join("overlays").join(name);
        let kustomization: Kustomization =
            parse("kustomization.yaml", &read(&dir.join("kustomization.yaml")));
        let config_maps = generated_config_maps(&kustomization);
        let mut kinds = vec!["ConfigMap".to_owned(); config_maps.len()];
        let (mut deployments, mut services, mut jobs) = (Vec::new(), Vec::new(), Vec::new());
        for file in &kustomization.resources {
            let text = read(&dir.join(file));
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let value = serde_yaml_ng::Value::deserialize(doc)
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                let kind: Kind = from_value(file, "kind", value.clone());
                let what = kind.kind.as_str();
                match what {
                    "Deployment" => deployments.push(from_value(file, what, value)),
                    "Service" => services.push(from_value(file, what, value)),
                    "Job" => jobs.push(from_value(file, what, value)),
                    "Namespace" => {}
                    other => panic!("{file}: a {other} the manifest tests do not check"),
                }
                kinds.push(kind.kind);
            }
        }
        Overlay {
            kustomization,
            config_maps,
            kinds,
            deployments,
            services,
            jobs,
        }
    }

    /// The container's environment (see [`container_env`]).
    pub fn env(&self, c: &Container, index: Option<u32>) -> Env {
        container_env(&self.config_maps, c, index)
    }

    /// The container's argv (see [`container_argv`]).
    pub fn argv(
        &self,
        c: &Container,
        index: Option<u32>,
        overrides: &[(&str, &str)],
    ) -> Vec<String> {
        container_argv(&self.config_maps, c, index, overrides)
    }

    /// The image a container runs (see [`overridden_image`]).
    pub fn image(&self, c: &Container) -> String {
        overridden_image(&self.kustomization, c)
    }

    /// The Deployment of this name.
    pub fn deployment(&self, name: &str) -> &Deployment {
        self.deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Deployment {name}"))
    }

    /// The Service of this name.
    pub fn service(&self, name: &str) -> &Service {
        self.services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Service {name}"))
    }

    /// The Deployments whose pods a Service selects.
    pub fn selected_by(&self, service: &Service) -> Vec<&Deployment> {
        let sel = &service.spec.selector;
        assert!(!sel.is_empty(), "a Service without a selector");
        self.deployments
            .iter()
            .filter(|d| {
                sel.iter()
                    .all(|(k, v)| d.spec.template.metadata.labels.get(k) == Some(v))
            })
            .collect()
    }
}

/// Kubernetes' `$(VAR)` expansion of `env` values, `command` and `args`: a defined name is
/// replaced by its value, an undefined one stays as written, `$$` is a literal `$`, and any other
/// `$` is kept (k8s.io/kubernetes third_party/forked/golang/expansion).
pub fn expand(s: &str, env: &Env) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        if let Some(after) = tail.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&rest[at..at + 2 + end + 1]),
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str(&rest[at..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn expansion_follows_the_kubelet() {
    let env: Env = [("A", "1"), ("B", "two")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (input, want) in [
        ("$(A)$(B)", "1two"),
        ("x$(A)y", "x1y"),
        ("$(C)", "$(C)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$1"),
        ("$A", "$A"),
        ("a$", "a$"),
        ("$(A", "$(A"),
        ("$()", "$()"),
        ("no dollar", "no dollar"),
    ] {
        assert_eq!(expand(input, &env), want, "expand({input:?})");
    }
}
