//! termgate: the operations console. Today: `termgate demo`.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod event;
pub mod model;
pub mod scrape;
pub mod tui;
pub mod ui;
