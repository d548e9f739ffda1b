//! Runner tokens as gitlab-runner shows them.

/// Shorten a runner token as gitlab-runner does for the `runner` label and
/// log field: strip a known prefix, keep the first 9 characters.
pub fn short_token(token: &str) -> String {
    const PREFIXES: [&str; 7] = [
        "glrt-",
        "glrtr-",
        "glcbt-",
        "t1_",
        "t2_",
        "t3_",
        "GR1348941",
    ];
    let mut t = token;
    for p in PREFIXES {
        if let Some(rest) = t.strip_prefix(p) {
            t = rest;
            break;
        }
    }
    t.chars().take(9).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens() {
        assert_eq!(short_token("glrt-abcdefghijklmn"), "abcdefghi");
        assert_eq!(short_token("GR1348941xyzxyzxyzxyz"), "xyzxyzxyz");
        assert_eq!(short_token("6i2MzLuX"), "6i2MzLuX");
    }
}
