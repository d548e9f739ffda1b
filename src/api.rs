//! GitLab runner REST API types (`/api/v4/runners*`, `/api/v4/jobs*`).
//!
//! Deserialisation is lenient the way real GitLab needs it to be: unknown
//! fields are ignored, `null` stands for "empty" almost everywhere, and old
//! servers send things like `"cache":[null]` or `"artifacts":null`.
//! Serialisation follows what GitLab itself sends, so the local coordinator
//! produces payloads that match the Rails request specs byte for byte.
//!
//! One file per part of the API: `lenient` deserialisers, the runner's
//! `version_info`, `registration`, `job_request`, `job_response`,
//! `job_update`, [`failure_reason`]s, [`headers`], `trace_range`
//! (`Content-Range`), `token` shortening. Every type is re-exported here:
//! callers use `termgate::api::X`.

pub mod failure_reason;
pub mod headers;
mod job_request;
mod job_response;
mod job_update;
mod lenient;
mod registration;
mod token;
mod trace_range;
mod version_info;

pub use job_request::{JobRequest, SessionInfo};
pub use job_response::{
    Artifact, ArtifactsFile, Cache, Credentials, Dependency, DockerExecutorOpts, ExecutorOpts,
    GitInfo, GitlabFeatures, Hook, Image, JobInfo, JobResponse, JobVariable,
    KubernetesExecutorOpts, Port, RunnerInfo, Service, Step, StepWhen,
};
pub use job_update::{trace_checksum, JobState, JobTraceOutput, UpdateJobRequest};
pub use lenient::{lenient_u64, lenient_vec, null_default};
pub use registration::{
    RegisterRunnerRequest, RegisterRunnerResponse, UnregisterRunnerRequest, VerifyRunnerRequest,
};
pub use token::short_token;
pub use trace_range::{format_content_range, parse_content_range, parse_range_size};
pub use version_info::{ConfigInfo, FeaturesInfo, VersionInfo};
