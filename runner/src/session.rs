//! The session server: per-job sessions that GitLab (Workhorse) reaches at
//! `https://<advertise_address>/session/<id>/exec` to open an interactive
//! terminal inside a running job.
//!
//! - [`registry`]: sessions, their tokens, terminal seat and close reasons;
//!   shared by the job loop (creates, activates, holds, closes) and the
//!   server (routes, connects).
//! - [`tls`]: the self-signed (or configured) certificate and the
//!   advertise-address checks.
//! - [`server`]: the HTTPS server and `GET /session/{id}/exec`, in
//!   gitlab-runner's order and with its status codes.
//! - [`operators`]: the operators file and operator authentication
//!   (`Authorization: Bearer`, hashed tokens, a per-peer throttle).
//! - [`bridge`]: one WebSocket ↔ terminal connection (framing, back-pressure,
//!   keepalive, close reasons, metrics), and operators' mirrors of one.
//! - [`share`]: a session's interactive terminal shared with operators
//!   (replay, bounded watcher queues, the joiners' writer inbox).
//! - [`recording`]: terminals recorded as asciicast v2 files, masked, never
//!   slowing the terminal; old recordings pruned.

pub mod bridge;
pub mod operators;
pub mod recording;
pub mod registry;
pub mod server;
pub mod share;
pub mod tls;

pub use registry::{
    ClientEntry, ClientGuard, PendingSession, SeatGuard, Session, SessionJob, SessionRegistry,
};
