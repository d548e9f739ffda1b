//! The values termgate accepts (the keys are declared in `sections`). Word
//! lists are whitespace-separated, read with [`has`] and `split_whitespace`.

/// Feature flags termgate acts on; others are accepted, kept and reported.
pub(crate) const IMPLEMENTED_FEATURE_FLAGS: &[&str] = &[];

/// Executors termgate implements.
pub const IMPLEMENTED_EXECUTORS: &[&str] = &["shell", "docker"];

/// Executors gitlab-runner has (or had) that termgate does not implement.
pub(crate) const UPSTREAM_EXECUTORS: &str =
    "docker-windows docker+machine docker-autoscaler docker-ssh docker-ssh+machine \
    kubernetes custom virtualbox parallels ssh instance";

/// `shell` values gitlab-runner accepts.
pub const SHELLS: &[&str] = &["bash", "sh", "powershell", "pwsh"];

pub(crate) const LOG_LEVELS: &[&str] = &[
    "panic", "fatal", "error", "warn", "warning", "info", "debug",
];
pub(crate) const LOG_FORMATS: &[&str] = &["runner", "text", "json"];
pub(crate) const PULL_POLICIES: &[&str] = &["always", "if-not-present", "never"];

/// Whether the word list `list` has `key`.
pub(crate) fn has(list: &str, key: &str) -> bool {
    list.split_whitespace().any(|k| k == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ctx::suggest;
    use crate::config::sections::RawRunner;

    #[test]
    fn suggests_close_keys_only() {
        let known = "builds_dir cache_dir executor";
        assert_eq!(
            suggest("buids_dir", known.split_whitespace()),
            Some("builds_dir")
        );
        assert_eq!(
            suggest("Executor", known.split_whitespace()),
            Some("executor")
        );
        assert_eq!(suggest("zzz", known.split_whitespace()), None);
        assert!(has(RawRunner::UNIMPLEMENTED, "cache") && !has(RawRunner::UNIMPLEMENTED, "cach"));
    }
}
