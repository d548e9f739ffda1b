//! termgate: the operations console. Today: `termgate demo`.

pub mod cli;
pub mod demo;
pub mod logs;
pub mod model;
pub mod tally_cmd;
