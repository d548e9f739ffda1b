//! Registration: register (legacy registration token), verify, unregister.

use serde::{Deserialize, Serialize};

use super::lenient::{is_zero, null_default};
use super::VersionInfo;

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
