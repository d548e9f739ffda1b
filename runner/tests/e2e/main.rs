//! End-to-end tests: real `termgate-runner coordinator` and `termgate-runner
//! run` processes on loopback.

mod config_errors;
mod jobs;
mod lifecycle;
mod registration;
mod support;
