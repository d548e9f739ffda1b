//! `POST /api/v4/jobs/request` and the job's terminal `session` it offers.

use serde::{Deserialize, Serialize};

use super::lenient::null_default;
use super::VersionInfo;

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
