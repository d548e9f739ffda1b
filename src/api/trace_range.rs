//! Trace patch ranges: the `Content-Range` a runner sends (`start-end`, end
//! inclusive) and the `Range` GitLab answers (`0-<size>`, end exclusive).

/// `Content-Range` of a trace patch: `start-end`, end inclusive, no `bytes `
/// prefix, no total.
pub fn format_content_range(start: u64, len: u64) -> String {
    format!("{}-{}", start, start + len.saturating_sub(1))
}

/// Parse a trace patch `Content-Range` (`start-end`, end inclusive).
pub fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let (a, b) = v.split_once('-')?;
    let b = b.split('/').next()?;
    let start = a.trim().parse().ok()?;
    let end = b.trim().parse().ok()?;
    (end >= start).then_some((start, end))
}

/// Parse GitLab's reply `Range` header (`0-<size>`, end exclusive) into the
/// stored size.
pub fn parse_range_size(v: &str) -> Option<u64> {
    let (_, b) = v.trim().split_once('-')?;
    b.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_round_trip() {
        assert_eq!(format_content_range(0, 10), "0-9");
        assert_eq!(format_content_range(10, 1), "10-10");
        assert_eq!(parse_content_range("0-9"), Some((0, 9)));
        assert_eq!(parse_content_range("9-0"), None);
        assert_eq!(parse_content_range("x-9"), None);
        assert_eq!(parse_range_size("0-42"), Some(42));
    }
}
