//! termgate: the operations console. Today: `termgate demo`.

pub mod cli;
pub mod config;
pub mod demo;
pub mod model;
pub mod scrape;
