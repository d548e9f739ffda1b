//! Running jobs: [`supervisor`] requests jobs within `concurrent`, `limit`
//! and `request_concurrency`; [`run`] takes one job through acknowledge,
//! steps, trace upload and the final update.

pub mod hold;
pub mod run;
pub mod slots;
pub mod supervisor;

pub use supervisor::{Supervisor, SupervisorHandle};
