//! Durations in `config.toml` are Go's (`"5s"`, `"1h30m"`): the shared
//! parser, [`termgate::duration::parse_go`].

pub use termgate::duration::parse_go as parse_go_duration;
