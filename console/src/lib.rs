//! termgate: the operations console. Today: `termgate demo`.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod event;
pub mod hub;
pub mod logs;
pub mod model;
pub mod scrape;
pub mod tally_cmd;
pub mod tui;
pub mod ui;
pub mod watch;
