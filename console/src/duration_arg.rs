//! Durations typed by people (flags, console.toml): the shared parser
//! ([`termgate::duration::parse_cli`]) with a hint of what to type.

use std::time::Duration;

/// `10s`, `2m`, `1h30m`, `7d`, `500ms` or plain seconds: the shared parser,
/// with a hint of what to type.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    termgate::duration::parse_cli(s)
        .map_err(|e| format!("{e} (use ms, s, m, h or d, e.g. 10s, 1h30m, 7d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("x").is_err());
        let e = parse_duration("5y").unwrap_err();
        assert!(e.contains("use ms, s, m, h or d"), "{e}");
    }
}
