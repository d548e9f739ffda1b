//! GitLab runner REST API types (`/api/v4/runners*`, `/api/v4/jobs*`).
//!
//! Deserialisation is lenient the way real GitLab needs it to be: unknown
//! fields are ignored, `null` stands for "empty" almost everywhere, and old
//! servers send things like `"cache":[null]` or `"artifacts":null`.
//! Serialisation follows what GitLab itself sends, so the local coordinator
//! produces payloads that match the Rails request specs byte for byte.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Deserialise `null` as `T::default()`.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserialise a list that may be `null` or contain `null` entries
/// (GitLab 11.x sends `"cache":[null]`): nulls are dropped.
pub fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v: Option<Vec<Option<T>>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().flatten().collect())
}

/// Accept a number or a numeric string (GitLab is not consistent).
pub fn lenient_u64<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

// ---------------------------------------------------------------- runner info

/// `info` object sent with register, verify, job request and job update.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct VersionInfo {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub revision: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub executor: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub shell: String,
    pub features: FeaturesInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigInfo>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ConfigInfo {
    pub gpus: String,
}

/// `info.features`: every key is always sent (as gitlab-runner does).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FeaturesInfo {
    pub variables: bool,
    pub image: bool,
    pub services: bool,
    pub artifacts: bool,
    pub cache: bool,
    pub fallback_cache_keys: bool,
    pub shared: bool,
    pub upload_multiple_artifacts: bool,
    pub upload_raw_artifacts: bool,
    pub session: bool,
    pub terminal: bool,
    pub refspecs: bool,
    pub masking: bool,
    pub proxy: bool,
    pub raw_variables: bool,
    pub artifacts_exclude: bool,
    pub multi_build_steps: bool,
    pub trace_reset: bool,
    pub trace_checksum: bool,
    pub trace_size: bool,
    pub vault_secrets: bool,
    pub cancelable: bool,
    pub return_exit_code: bool,
    pub service_variables: bool,
    pub service_multiple_aliases: bool,
    pub image_executor_opts: bool,
    pub service_executor_opts: bool,
    pub cancel_gracefully: bool,
    pub native_steps_integration: bool,
    pub two_phase_job_commit: bool,
    pub job_inputs: bool,
}

// ---------------------------------------------------------------- registration

/// `POST /api/v4/runners` (legacy registration with a registration token).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RegisterRunnerRequest {
    pub token: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub maintenance_note: String,
    pub info: VersionInfo,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tag_list: String,
    pub run_untagged: bool,
    pub locked: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub access_level: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub maximum_timeout: u64,
    pub paused: bool,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Answer to register (201) and verify (200).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RegisterRunnerResponse {
    pub id: u64,
    pub token: String,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub token_expires_at: String,
}

/// `POST /api/v4/runners/verify`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct VerifyRunnerRequest {
    pub token: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<VersionInfo>,
}

/// `DELETE /api/v4/runners` and `DELETE /api/v4/runners/managers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct UnregisterRunnerRequest {
    pub token: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_id: String,
}

// ---------------------------------------------------------------- job request

/// `session` object sent with a job request: where GitLab (Workhorse) can
/// reach this job's terminal. Each field is omitted when empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SessionInfo {
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub url: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub certificate: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub authorization: String,
}

/// `POST /api/v4/jobs/request`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobRequest {
    pub info: VersionInfo,
    pub token: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_id: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub last_update: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionInfo>,
}

// ---------------------------------------------------------------- job response

/// The 201 body of `POST /api/v4/jobs/request`: one job to run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobResponse {
    pub id: u64,
    pub token: String,
    pub allow_git_fetch: bool,
    pub job_info: JobInfo,
    pub git_info: GitInfo,
    pub runner_info: RunnerInfo,
    #[serde(deserialize_with = "lenient_vec")]
    pub variables: Vec<JobVariable>,
    #[serde(deserialize_with = "lenient_vec")]
    pub steps: Vec<Step>,
    #[serde(
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hooks: Vec<Hook>,
    /// `null` when the job has no image (GitLab sends `"image": null`).
    pub image: Option<Image>,
    #[serde(deserialize_with = "lenient_vec")]
    pub services: Vec<Service>,
    #[serde(deserialize_with = "lenient_vec")]
    pub artifacts: Vec<Artifact>,
    #[serde(deserialize_with = "lenient_vec")]
    pub cache: Vec<Cache>,
    #[serde(deserialize_with = "lenient_vec")]
    pub credentials: Vec<Credentials>,
    #[serde(deserialize_with = "lenient_vec")]
    pub dependencies: Vec<Dependency>,
    pub features: GitlabFeatures,
    /// Step-runner steps, sent as a JSON *string* instead of `steps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_options: Option<Value>,
}

impl JobResponse {
    /// Project URL without credentials and without `.git`
    /// (as `/debug/jobs/list` prints it).
    pub fn project_web_url(&self) -> String {
        let mut url = self.git_info.repo_url.clone();
        if let Some(scheme_end) = url.find("://") {
            let rest = &url[scheme_end + 3..];
            if let Some(at) = rest.find('@') {
                let slash = rest.find('/').unwrap_or(rest.len());
                if at < slash {
                    url = format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]);
                }
            }
        }
        url.strip_suffix(".git").map(str::to_owned).unwrap_or(url)
    }

    /// The job's timeout in seconds (`runner_info.timeout`), if set.
    pub fn timeout_secs(&self) -> Option<u64> {
        self.runner_info.timeout.filter(|t| *t > 0)
    }

    /// Value of a job variable by key, last one wins.
    pub fn variable(&self, key: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|v| v.key == key)
            .map(|v| v.value.as_str())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobInfo {
    #[serde(skip_serializing_if = "is_zero")]
    pub id: u64,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub stage: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub pipeline_id: u64,
    pub project_id: u64,
    #[serde(deserialize_with = "null_default")]
    pub project_name: String,
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub project_full_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_namespace_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_in_queue_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_jobs_running_on_instance_runners_count: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GitInfo {
    #[serde(deserialize_with = "null_default")]
    pub repo_url: String,
    #[serde(deserialize_with = "null_default", rename = "ref")]
    pub git_ref: String,
    #[serde(deserialize_with = "null_default")]
    pub sha: String,
    #[serde(deserialize_with = "null_default")]
    pub before_sha: String,
    #[serde(deserialize_with = "null_default")]
    pub ref_type: String,
    #[serde(
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub refspecs: Vec<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_u64"
    )]
    pub depth: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_object_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct RunnerInfo {
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_u64"
    )]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_session_url: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobVariable {
    pub key: String,
    #[serde(deserialize_with = "null_default")]
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<bool>,
}

impl JobVariable {
    pub fn is_masked(&self) -> bool {
        self.masked.unwrap_or(false)
    }
    pub fn is_file(&self) -> bool {
        self.file.unwrap_or(false)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepWhen {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Step {
    pub name: String,
    #[serde(deserialize_with = "lenient_vec")]
    pub script: Vec<String>,
    #[serde(deserialize_with = "lenient_u64")]
    pub timeout: Option<u64>,
    #[serde(deserialize_with = "null_default")]
    pub when: StepWhen,
    #[serde(deserialize_with = "null_default")]
    pub allow_failure: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Hook {
    pub name: String,
    #[serde(deserialize_with = "lenient_vec")]
    pub script: Vec<String>,
}

/// `executor_opts` of an image or service. Unknown keys are kept so the
/// runner can fail the job with "unsupported options" naming them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExecutorOpts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerExecutorOpts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesExecutorOpts>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DockerExecutorOpts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// A user name or a numeric uid: kept as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct KubernetesExecutorOpts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Value>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

impl ExecutorOpts {
    /// Every option this runner does not know, as `section.key` names.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out: Vec<String> = self.unknown.keys().cloned().collect();
        if let Some(d) = &self.docker {
            out.extend(d.unknown.keys().map(|k| format!("docker.{k}")));
        }
        if let Some(k) = &self.kubernetes {
            out.extend(k.unknown.keys().map(|u| format!("kubernetes.{u}")));
        }
        out
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Port {
    pub number: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The job's `image`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Image {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    pub entrypoint: Option<Vec<String>>,
    #[serde(deserialize_with = "null_default")]
    pub executor_opts: ExecutorOpts,
    #[serde(deserialize_with = "lenient_vec")]
    pub ports: Vec<Port>,
    pub pull_policy: Option<Vec<String>>,
}

/// One of the job's `services`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Service {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    pub alias: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    #[serde(deserialize_with = "null_default")]
    pub executor_opts: ExecutorOpts,
    #[serde(deserialize_with = "lenient_vec")]
    pub ports: Vec<Port>,
    pub pull_policy: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient_vec")]
    pub variables: Vec<JobVariable>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Artifact {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub untracked: bool,
    #[serde(deserialize_with = "lenient_vec")]
    pub paths: Vec<String>,
    #[serde(
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub when: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_in: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Cache {
    #[serde(deserialize_with = "null_default")]
    pub key: String,
    #[serde(deserialize_with = "null_default")]
    pub untracked: bool,
    #[serde(deserialize_with = "null_default")]
    pub policy: String,
    #[serde(deserialize_with = "lenient_vec")]
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fallback_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Credentials {
    #[serde(rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub url: String,
    #[serde(deserialize_with = "null_default")]
    pub username: String,
    #[serde(deserialize_with = "null_default")]
    pub password: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Dependency {
    pub id: u64,
    #[serde(deserialize_with = "null_default")]
    pub token: String,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts_file: Option<ArtifactsFile>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ArtifactsFile {
    #[serde(deserialize_with = "null_default")]
    pub filename: String,
    pub size: u64,
}

/// `features` of the job response (what GitLab supports).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GitlabFeatures {
    #[serde(
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "null_default"
    )]
    pub trace_sections: bool,
    #[serde(
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub token_mask_prefixes: Vec<String>,
    #[serde(
        deserialize_with = "lenient_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub failure_reasons: Vec<String>,
}

// ---------------------------------------------------------------- job update

/// Job states the runner reports.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Success,
    Failed,
    /// Never sent by a runner; the coordinator uses it for its own records.
    Canceled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Success => "success",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Success | JobState::Failed | JobState::Canceled
        )
    }
}

/// Failure reasons (GitLab `failure_reason`).
pub mod failure_reason {
    pub const SCRIPT_FAILURE: &str = "script_failure";
    pub const RUNNER_SYSTEM_FAILURE: &str = "runner_system_failure";
    pub const JOB_EXECUTION_TIMEOUT: &str = "job_execution_timeout";
    pub const IMAGE_PULL_FAILURE: &str = "image_pull_failure";
    pub const RUNNER_CONFIGURATION_ERROR: &str = "runner_configuration_error";
    pub const RUNNER_EXTERNAL_DEPENDENCY_FAILURE: &str = "runner_external_dependency_failure";
    pub const RUNNER_INTERRUPTED: &str = "runner_interrupted";
    pub const UNKNOWN_FAILURE: &str = "unknown_failure";

    /// Map a reason to one GitLab supports, as gitlab-runner does when the
    /// job's `features.failure_reasons` does not list it.
    pub fn compatible(reason: &str, supported: &[String]) -> &'static str {
        let always = [SCRIPT_FAILURE, RUNNER_SYSTEM_FAILURE, JOB_EXECUTION_TIMEOUT];
        let known = [
            SCRIPT_FAILURE,
            RUNNER_SYSTEM_FAILURE,
            JOB_EXECUTION_TIMEOUT,
            IMAGE_PULL_FAILURE,
            RUNNER_CONFIGURATION_ERROR,
            RUNNER_EXTERNAL_DEPENDENCY_FAILURE,
            RUNNER_INTERRUPTED,
            UNKNOWN_FAILURE,
        ];
        let Some(reason) = known.iter().copied().find(|r| *r == reason) else {
            return UNKNOWN_FAILURE;
        };
        if always.contains(&reason) || supported.iter().any(|s| s == reason) {
            return reason;
        }
        match reason {
            IMAGE_PULL_FAILURE | RUNNER_EXTERNAL_DEPENDENCY_FAILURE => RUNNER_SYSTEM_FAILURE,
            RUNNER_CONFIGURATION_ERROR => SCRIPT_FAILURE,
            _ => UNKNOWN_FAILURE,
        }
    }
}

/// `output` of a job update: size and checksum of the whole trace.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct JobTraceOutput {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub checksum: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub bytesize: u64,
}

/// `PUT /api/v4/jobs/:id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpdateJobRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<VersionInfo>,
    pub token: String,
    pub state: JobState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Deprecated top-level checksum, still sent by gitlab-runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    #[serde(default)]
    pub output: JobTraceOutput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// The trace checksum format GitLab expects: `crc32:` + 8 lowercase hex.
pub fn trace_checksum(crc: u32) -> String {
    format!("crc32:{crc:08x}")
}

// ---------------------------------------------------------------- headers

/// HTTP header names of the runner API.
pub mod headers {
    pub const RUNNER_TOKEN: &str = "RUNNER-TOKEN";
    pub const JOB_TOKEN: &str = "JOB-TOKEN";
    pub const LAST_UPDATE: &str = "X-GitLab-Last-Update";
    pub const JOB_STATUS: &str = "Job-Status";
    pub const TRACE_UPDATE_INTERVAL: &str = "X-GitLab-Trace-Update-Interval";
    pub const REQUEST_ID: &str = "X-Request-Id";
    pub const CONTENT_RANGE: &str = "Content-Range";
    pub const RANGE: &str = "Range";
}

/// `Content-Range` of a trace patch: `start-end`, end inclusive, no `bytes `
/// prefix, no total.
pub fn format_content_range(start: u64, len: u64) -> String {
    format!("{}-{}", start, start + len.saturating_sub(1))
}

/// Parse a trace patch `Content-Range` (`start-end`, end inclusive).
pub fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let (a, b) = v.split_once('-')?;
    let b = b.split('/').next()?;
    let start = a.trim().parse().ok()?;
    let end = b.trim().parse().ok()?;
    (end >= start).then_some((start, end))
}

/// Parse GitLab's reply `Range` header (`0-<size>`, end exclusive) into the
/// stored size.
pub fn parse_range_size(v: &str) -> Option<u64> {
    let (_, b) = v.trim().split_once('-')?;
    b.trim().parse().ok()
}

/// Shorten a runner token as gitlab-runner does for the `runner` label and
/// log field: strip a known prefix, keep the first 9 characters.
pub fn short_token(token: &str) -> String {
    const PREFIXES: [&str; 7] = [
        "glrt-",
        "glrtr-",
        "glcbt-",
        "t1_",
        "t2_",
        "t3_",
        "GR1348941",
    ];
    let mut t = token;
    for p in PREFIXES {
        if let Some(rest) = t.strip_prefix(p) {
            t = rest;
            break;
        }
    }
    t.chars().take(9).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_round_trip() {
        assert_eq!(format_content_range(0, 10), "0-9");
        assert_eq!(format_content_range(10, 1), "10-10");
        assert_eq!(parse_content_range("0-9"), Some((0, 9)));
        assert_eq!(parse_content_range("9-0"), None);
        assert_eq!(parse_content_range("x-9"), None);
        assert_eq!(parse_range_size("0-42"), Some(42));
    }

    #[test]
    fn checksum_format() {
        assert_eq!(trace_checksum(0x295921ca), "crc32:295921ca");
        assert_eq!(trace_checksum(0xab), "crc32:000000ab");
    }

    #[test]
    fn short_tokens() {
        assert_eq!(short_token("glrt-abcdefghijklmn"), "abcdefghi");
        assert_eq!(short_token("GR1348941xyzxyzxyzxyz"), "xyzxyzxyz");
        assert_eq!(short_token("6i2MzLuX"), "6i2MzLuX");
    }

    #[test]
    fn failure_reason_mapping() {
        use failure_reason::*;
        let none: Vec<String> = vec![];
        assert_eq!(compatible(IMAGE_PULL_FAILURE, &none), RUNNER_SYSTEM_FAILURE);
        assert_eq!(
            compatible(IMAGE_PULL_FAILURE, &[IMAGE_PULL_FAILURE.to_string()]),
            IMAGE_PULL_FAILURE
        );
        assert_eq!(
            compatible(RUNNER_CONFIGURATION_ERROR, &none),
            SCRIPT_FAILURE
        );
        assert_eq!(compatible(RUNNER_INTERRUPTED, &none), UNKNOWN_FAILURE);
        assert_eq!(compatible(SCRIPT_FAILURE, &none), SCRIPT_FAILURE);
        assert_eq!(compatible("bogus", &none), UNKNOWN_FAILURE);
    }

    #[test]
    fn project_url_strips_credentials() {
        let mut j = JobResponse::default();
        j.git_info.repo_url =
            "https://gitlab-ci-token:abc@gitlab.example.com/acme/webapp.git".into();
        assert_eq!(
            j.project_web_url(),
            "https://gitlab.example.com/acme/webapp"
        );
    }
}
