//! Trace patch ranges: the `Content-Range` a runner sends (`start-end`, end
//! inclusive) and the `Range` GitLab answers (`0-<size>`, end exclusive).

/// `Content-Range` of a trace patch: `start-end`, end inclusive, no `bytes `
/// prefix, no total. An end past `u64::MAX` is `u64::MAX` (it overflowed,
/// a panic in debug builds, until the fuzz pass found it).
pub fn format_content_range(start: u64, len: u64) -> String {
    format!("{}-{}", start, start.saturating_add(len.saturating_sub(1)))
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

    /// Found by `fuzz_content_range_round_trips`: `start + len - 1`
    /// overflowed.
    #[test]
    fn content_range_at_the_end_of_u64_does_not_overflow() {
        let (start, len) = (7_701_944_448_417_816_293, 10_744_799_625_291_735_324);
        assert_eq!(
            format_content_range(start, len),
            format!("{start}-{}", u64::MAX)
        );
        assert_eq!(
            parse_content_range(&format_content_range(u64::MAX, 1)),
            Some((u64::MAX, u64::MAX))
        );
    }
}

/// Property tests (issue 20, item 7; `PROPTEST_CASES`, `scripts/fuzz-long.sh`).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Header values near the real ones, and noise.
    fn range_text() -> impl Strategy<Value = String> {
        let num = prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..1000).prop_map(|n| n.to_string()),
            Just("18446744073709551616".to_string()),
            Just("-1".to_string()),
            Just("+5".to_string()),
            Just(String::new()),
            Just(" 7 ".to_string()),
        ];
        prop_oneof![
            (
                prop::sample::select(vec!["", "bytes ", " bytes ", "Bytes "]),
                num.clone(),
                num.clone(),
                prop::sample::select(vec!["", "/", "/*", "/100"]),
            )
                .prop_map(|(p, a, b, t)| format!("{p}{a}-{b}{t}")),
            "[0-9 /*bytes-]{0,30}",
            "\\PC{0,30}",
        ]
    }

    proptest! {
        /// Any header value: a range with end ≥ start, or `None`.
        #[test]
        fn fuzz_content_range_parse(v in range_text()) {
            if let Some((start, end)) = parse_content_range(&v) {
                prop_assert!(end >= start, "{v:?} → {start}-{end}");
            }
            let _ = parse_range_size(&v);
        }

        /// What the runner sends parses back to its first and last byte
        /// (any offset, any non-empty length).
        #[test]
        fn fuzz_content_range_round_trips(start in any::<u64>(), len in 1u64..=u64::MAX) {
            let v = format_content_range(start, len);
            let (a, b) = parse_content_range(&v).unwrap_or_else(|| panic!("{v:?} does not parse"));
            prop_assert_eq!(a, start);
            prop_assert_eq!(b, start.saturating_add(len - 1));
        }

        /// GitLab's `Range: 0-<size>` reply round-trips.
        #[test]
        fn fuzz_range_size_round_trips(size in any::<u64>()) {
            prop_assert_eq!(parse_range_size(&format!("0-{size}")), Some(size));
        }
    }
}
