//! placeholder: being written
pub mod ci_yaml;
pub mod payload;
