//! End-to-end tests: real `termgate-coordinator` and `termgate-runner
//! run` processes on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod certificate;
mod clidocs;
mod config_errors;
mod dashboard;
mod docker;
mod doctor;
mod job_user;
mod jobs;
mod lifecycle;
mod operator_cmd;
mod operators;
mod registration;
mod sentry_dsn;
mod support;
mod systemd;
mod term_client;
mod terminals;
