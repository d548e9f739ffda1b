//! Running jobs: [`supervisor`] requests jobs within `concurrent`, `limit`
//! and `request_concurrency`; [`run`] takes one job through acknowledge,
//! [`steps`] in the executor, trace upload and the final update; [`outcome`]
//! says how it ended; [`health`] pauses a runner whose job requests keep
//! failing.

pub mod health;
pub mod hold;
pub mod outcome;
pub mod run;
pub mod slots;
pub mod supervisor;

pub use supervisor::{Supervisor, SupervisorHandle};
