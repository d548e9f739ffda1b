//! The session server: per-job sessions that GitLab (Workhorse) reaches at
//! `https://<advertise_address>/session/<id>/exec` to open an interactive
//! terminal inside a running job.
//!
//! - [`registry`]: sessions, their tokens, terminal seat and close reasons;
//!   shared by the job loop (creates, activates, holds, closes) and the
//!   server (routes, connects).

pub mod registry;

pub use registry::{PendingSession, SeatGuard, Session, SessionJob, SessionRegistry};
