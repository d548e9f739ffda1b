//! The console's operator client against a small TLS test server that
//! speaks the runner's operator API: the client library, `termgate trust`
//! and `termgate sessions`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod client;
mod server;
