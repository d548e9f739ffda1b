//! Engine connection, images (pull policies, allowed images) and the job's
//! labelled resources: container, network, volume.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateOptions};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::StreamExt;
use termgate::api::failure_reason;

use super::hardening;
use crate::config::DockerConfig;
use crate::executor::ExecError;
use crate::trace::JobTrace;

/// Label on everything termgate creates.
pub const LABEL_MANAGED: &str = "com.termgate.managed";
/// The runner's short token.
pub const LABEL_RUNNER: &str = "com.termgate.runner";
pub const LABEL_JOB: &str = "com.termgate.job.id";
pub const LABEL_PROJECT: &str = "com.termgate.project.id";

/// Where the job's build volume is mounted.
pub const BUILDS_DIR: &str = "/builds";

/// The long-lived init process: exits on SIGTERM, sleeps otherwise. Only
/// needs a POSIX `sh` and `sleep` (busybox has both).
pub const INIT_SCRIPT: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// `[runners.docker] host`, else `DOCKER_HOST`, else the local socket.
pub fn docker_host(cfg: &DockerConfig) -> String {
    cfg.host
        .clone()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// Connect and negotiate the API version (which also proves the engine
/// answers).
pub async fn connect(cfg: &DockerConfig) -> Result<Docker, ExecError> {
    let host = docker_host(cfg);
    let fail = |e: String| {
        ExecError::system(format!(
            "Cannot connect to the Docker daemon at {host}. Is the docker daemon running? ({e})"
        ))
    };
    let docker = if host.starts_with("unix://") || host.starts_with('/') {
        Docker::connect_with_unix(&host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(&host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else {
        return Err(ExecError {
            reason: failure_reason::RUNNER_CONFIGURATION_ERROR,
            message: format!("unsupported Docker host {host:?} (unix:// or tcp://)"),
        });
    }
    .map_err(|e| fail(e.to_string()))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version()).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail(format!("no answer in {CONNECT_TIMEOUT:?}"))),
    }
}

/// The engine refused or failed a cleanup request; the text is the
/// engine's own message ([`engine_message`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

impl From<bollard::errors::Error> for EngineError {
    fn from(e: bollard::errors::Error) -> Self {
        EngineError(engine_message(&e))
    }
}

/// A readable message for an engine error.
pub fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Split `name[:tag][@digest]` into `(repository, tag)`; no tag and no
/// digest means `latest`.
pub fn split_image(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            Some(image[slash + i + 1..].to_string()),
        ),
        None => (image.to_string(), Some("latest".to_string())),
    }
}

/// Glob as upstream's `allowed_images`: `*` within a path segment, `**`
/// across segments.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match p {
            [] => n.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=n.len()).any(|i| rec(rest, &n[i..])),
            [b'*', rest @ ..] => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| rec(rest, &n[i..])),
            [c, rest @ ..] => n.first() == Some(c) && rec(rest, &n[1..]),
        }
    }
    rec(pattern.as_bytes(), name.as_bytes())
}

fn config_error(message: String) -> ExecError {
    ExecError {
        reason: failure_reason::RUNNER_CONFIGURATION_ERROR,
        message,
    }
}

/// The job's image, checked against `allowed_images`.
pub fn job_image(
    cfg: &DockerConfig,
    job: Option<&termgate::api::Image>,
) -> Result<String, ExecError> {
    let from_job = job.map(|i| i.name.trim()).filter(|n| !n.is_empty());
    if let Some(name) = from_job {
        if !cfg.allowed_images.is_empty() && !cfg.allowed_images.iter().any(|p| glob_match(p, name))
        {
            return Err(config_error(format!(
                "the {name:?} image is not present on list of allowed images: {:?}",
                cfg.allowed_images
            )));
        }
        return Ok(name.to_string());
    }
    cfg.image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| config_error("no Docker image specified to run the build in".into()))
}

/// The pull policies in force: the job's (if any) or the config's, each
/// allowed by `allowed_pull_policies` (or, without it, by `pull_policy`).
pub fn pull_policies(
    cfg: &DockerConfig,
    job: Option<&termgate::api::Image>,
    image: &str,
) -> Result<Vec<String>, ExecError> {
    let configured = cfg.effective_pull_policies();
    let allowed = if cfg.allowed_pull_policies.is_empty() {
        configured.clone()
    } else {
        cfg.allowed_pull_policies.clone()
    };
    let requested = job
        .and_then(|i| i.pull_policy.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or(configured);
    let effective: Vec<String> = requested
        .iter()
        .filter(|p| allowed.contains(p))
        .cloned()
        .collect();
    if effective.is_empty() {
        return Err(config_error(format!(
            "invalid pull policy for image {image:?}: {requested:?} is not one of the allowed_pull_policies {allowed:?}"
        )));
    }
    Ok(effective)
}

async fn pull(docker: &Docker, image: &str) -> Result<(), String> {
    let (repo, tag) = split_image(image);
    let opts = CreateImageOptions {
        from_image: Some(repo),
        tag,
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(opts), None, None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(err);
                }
            }
            Err(e) => return Err(engine_message(&e)),
        }
    }
    Ok(())
}

/// Make `image` available under `policies`, trying each in turn (upstream's
/// fallback). A failure is `image_pull_failure` with the engine's message.
pub async fn ensure_image(
    docker: &Docker,
    image: &str,
    policies: &[String],
    trace: &JobTrace,
) -> Result<(), ExecError> {
    let mut last = String::new();
    for policy in policies {
        let present = match docker.inspect_image(image).await {
            Ok(_) => true,
            Err(e) if is_not_found(&e) => false,
            Err(e) => {
                return Err(ExecError::system(format!(
                    "inspecting image {image:?}: {}",
                    engine_message(&e)
                )))
            }
        };
        let result = match policy.as_str() {
            "if-not-present" if present => {
                trace.line(
                    "Using locally found image version due to \"if-not-present\" pull policy",
                );
                return Ok(());
            }
            "never" if present => return Ok(()),
            "never" => Err(format!(
                "image {image:?} not found locally and the pull policy is \"never\""
            )),
            _ => {
                trace.line(&format!("Pulling docker image {image} ..."));
                pull(docker, image).await
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) => {
                trace.warning(&format!(
                    "Failed to pull image with policy \"{policy}\": {e}"
                ));
                last = e;
            }
        }
    }
    Err(ExecError {
        reason: failure_reason::IMAGE_PULL_FAILURE,
        message: format!(
            "failed to pull image {image:?} with specified policies {policies:?}: {last}"
        ),
    })
}

/// Names and labels of one job's resources.
#[derive(Debug, Clone)]
pub struct JobResources {
    pub name: String,
    pub labels: HashMap<String, String>,
}

impl JobResources {
    pub fn new(runner_short: &str, job_id: u64, project_id: u64) -> JobResources {
        let suffix: String = {
            use rand::Rng;
            let mut rng = rand::thread_rng();
            (0..6)
                .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
                .collect()
        };
        let short: String = runner_short
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let labels = HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_RUNNER.to_string(), runner_short.to_string()),
            (LABEL_JOB.to_string(), job_id.to_string()),
            (LABEL_PROJECT.to_string(), project_id.to_string()),
        ]);
        JobResources {
            name: format!("termgate-{short}-job-{job_id}-{suffix}"),
            labels,
        }
    }
}

/// Everything the job container needs.
pub struct ContainerSpec<'a> {
    pub cfg: &'a DockerConfig,
    pub image: &'a str,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub network: Option<String>,
    pub volume: String,
}

/// Create and start the job container; returns its id.
pub async fn create_container(
    docker: &Docker,
    res: &JobResources,
    spec: &ContainerSpec<'_>,
) -> Result<String, ExecError> {
    let cfg = spec.cfg;
    let mut host = hardening::host_config(cfg).map_err(|e| config_error(e.to_string()))?;
    let mut binds = vec![format!("{}:{BUILDS_DIR}", spec.volume)];
    let mut anon: HashMap<String, HashMap<(), ()>> = HashMap::new();
    for v in &cfg.volumes {
        if v.contains(':') {
            binds.push(v.clone());
        } else {
            anon.insert(v.clone(), HashMap::new());
        }
    }
    host.binds = Some(binds);
    host.network_mode = cfg.network_mode.clone().or_else(|| spec.network.clone());
    let init = vec!["sh".to_string(), "-c".to_string(), INIT_SCRIPT.to_string()];
    // The image's own entrypoint would not keep the container alive: use
    // the job's (which must exec its arguments) or ours.
    let (entrypoint, cmd) = match &spec.entrypoint {
        _ if cfg.disable_entrypoint_overwrite => (None, Some(init)),
        Some(ep) if !ep.is_empty() => (Some(ep.clone()), Some(init)),
        _ => (Some(init), None),
    };
    let mut labels = res.labels.clone();
    for (k, v) in &cfg.container_labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let body = ContainerCreateBody {
        image: Some(spec.image.to_string()),
        entrypoint,
        cmd,
        labels: Some(labels),
        working_dir: Some(spec.working_dir.clone()),
        user: cfg.user.clone(),
        hostname: cfg.hostname.clone(),
        mac_address: cfg.mac_address.clone(),
        volumes: (!anon.is_empty()).then_some(anon),
        stop_timeout: Some(1),
        host_config: Some(host),
        ..Default::default()
    };
    let opts = CreateContainerOptions {
        name: Some(res.name.clone()),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| {
            ExecError::system(format!(
                "creating the build container: {}",
                engine_message(&e)
            ))
        })?;
    docker
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|e| {
            ExecError::system(format!(
                "starting the build container: {}",
                engine_message(&e)
            ))
        })?;
    Ok(created.id)
}

/// The per-job bridge network.
pub async fn create_network(docker: &Docker, res: &JobResources) -> Result<String, ExecError> {
    let req = NetworkCreateRequest {
        name: res.name.clone(),
        driver: Some("bridge".into()),
        labels: Some(res.labels.clone()),
        ..Default::default()
    };
    docker.create_network(req).await.map_err(|e| {
        ExecError::system(format!("creating the job network: {}", engine_message(&e)))
    })?;
    Ok(res.name.clone())
}

/// The job's build volume (mounted at [`BUILDS_DIR`]).
pub async fn create_volume(docker: &Docker, res: &JobResources) -> Result<String, ExecError> {
    let name = format!("{}-builds", res.name);
    let req = VolumeCreateOptions {
        name: Some(name.clone()),
        labels: Some(res.labels.clone()),
        ..Default::default()
    };
    docker.create_volume(req).await.map_err(|e| {
        ExecError::system(format!("creating the build volume: {}", engine_message(&e)))
    })?;
    Ok(name)
}

/// Kill and remove a container with its anonymous volumes.
pub async fn remove_container(docker: &Docker, id: &str) -> Result<(), EngineError> {
    let opts = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_network(docker: &Docker, name: &str) -> Result<(), EngineError> {
    match docker.remove_network(name).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_volume(docker: &Docker, name: &str) -> Result<(), EngineError> {
    match docker
        .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What [`remove_labelled`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

/// Remove every container, network and volume labelled for `runner_short`
/// (left over by a crashed runner).
pub async fn remove_labelled(docker: &Docker, runner_short: &str) -> Result<Removed, EngineError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_RUNNER}={runner_short}"),
        ],
    )]);
    let mut removed = Removed::default();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await?;
    for c in containers {
        if let Some(id) = c.id {
            remove_container(docker, &id).await?;
            removed.containers += 1;
        }
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await?;
    for n in networks {
        if let Some(name) = n.name {
            remove_network(docker, &name).await?;
            removed.networks += 1;
        }
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await?;
    for v in volumes.volumes.unwrap_or_default() {
        remove_volume(docker, &v.name).await?;
        removed.volumes += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use termgate::api::Image;

    #[test]
    fn image_names() {
        assert_eq!(
            split_image("alpine"),
            ("alpine".into(), Some("latest".into()))
        );
        assert_eq!(
            split_image("reg:5000/a/b:1.2"),
            ("reg:5000/a/b".into(), Some("1.2".into()))
        );
        assert_eq!(
            split_image("reg:5000/a/b"),
            ("reg:5000/a/b".into(), Some("latest".into()))
        );
        assert_eq!(split_image("a@sha256:00"), ("a@sha256:00".into(), None));
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "termgate-test/*",
            "termgate-test/busybox:latest"
        ));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("**", "a/b:c"));
        assert!(glob_match("ruby:*", "ruby:3.3"));
        assert!(!glob_match("ruby:*", "python:3"));
    }

    fn img(name: &str, pp: Option<&[&str]>) -> Image {
        Image {
            name: name.into(),
            pull_policy: pp.map(|p| p.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn images_and_allow_lists() {
        let cfg = DockerConfig {
            image: Some("default:1".into()),
            allowed_images: vec!["termgate-test/*".into()],
            ..Default::default()
        };
        assert_eq!(job_image(&cfg, None).unwrap(), "default:1");
        assert_eq!(
            job_image(&cfg, Some(&img("termgate-test/busybox", None))).unwrap(),
            "termgate-test/busybox"
        );
        let e = job_image(&cfg, Some(&img("evil/img", None))).unwrap_err();
        assert_eq!(e.reason, failure_reason::RUNNER_CONFIGURATION_ERROR);
        assert!(job_image(&DockerConfig::default(), None).is_err());
    }

    #[test]
    fn pull_policy_resolution() {
        let cfg = DockerConfig::default();
        assert_eq!(pull_policies(&cfg, None, "x").unwrap(), vec!["always"]);
        // The job may only ask for what is allowed (default: the config's).
        assert!(pull_policies(&cfg, Some(&img("x", Some(&["never"]))), "x").is_err());
        let cfg = DockerConfig {
            pull_policy: vec!["always".into()],
            allowed_pull_policies: vec!["always".into(), "if-not-present".into()],
            ..Default::default()
        };
        assert_eq!(
            pull_policies(
                &cfg,
                Some(&img("x", Some(&["if-not-present", "never"]))),
                "x"
            )
            .unwrap(),
            vec!["if-not-present"]
        );
    }
}
