//! The job a request receives (`JobResponse`) and everything in it: job,
//! git and runner info, variables, steps, image, services, artifacts,
//! cache, credentials, dependencies, GitLab's features.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient::{is_zero, lenient_u64, lenient_vec, null_default};

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

#[cfg(test)]
mod tests {
    use super::*;

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
