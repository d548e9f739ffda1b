//! The schema: which keys gitlab-runner has, which termgate implements,
//! and the values it accepts. Key lists are whitespace-separated words
//! (read with [`has`] and `split_whitespace`); the `*_KEYS` lists are the
//! model's fields in the order the loader reads them, which is the order
//! "did you mean" weighs equal candidates in (a test checks them against
//! the model).

/// Global keys gitlab-runner knows that termgate does not implement.
pub(crate) const ROOT_IGNORED: &str = "user machine";

/// `[[runners]]` keys gitlab-runner knows that termgate does not implement.
pub(crate) const RUNNER_IGNORED: &str =
    "strict_check_interval job_status_final_update_retry_limit pre_clone_script \
    post_clone_script pre_get_sources_script post_get_sources_script pre_build_script \
    post_build_script debug_trace_disabled safe_directory_checkout clean_git_config \
    custom_build_dir referees cache instance ssh parallels virtualbox machine kubernetes \
    custom autoscaler";

/// `[runners.docker]` keys gitlab-runner knows that termgate does not implement.
pub(crate) const DOCKER_IGNORED: &str =
    "services services_privileged services_security_opt services_tmpfs services_limit \
    services_devices service_memory service_memory_swap service_memory_reservation \
    service_cpus service_cpuset_cpus service_cpu_shares service_gpus device_cgroup_rules \
    volume_driver_ops allowed_privileged_services allowed_users cpuset_mems log_options \
    helper_image_autoset_arch_and_os isolation links";

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

/// Global keys the model reads.
pub(crate) const ROOT_KEYS: &str =
    "concurrent check_interval log_level log_format listen_address metrics_server sentry_dsn \
    shutdown_timeout connection_max_age session_server runners";

/// `[session_server]` keys the model reads.
pub(crate) const SESSION_KEYS: &str =
    "listen_address advertise_address session_timeout cert_file key_file max_observers \
    operators_file recordings_dir idle_timeout";

/// `[[runners]]` keys the model reads.
pub(crate) const RUNNER_KEYS: &str =
    "name url token id token_obtained_at token_expires_at tls-ca-file tls-cert-file \
    tls-key-file executor shell builds_dir cache_dir clone_url environment limit \
    request_concurrency output_limit unhealthy_requests_limit unhealthy_interval \
    feature_flags docker";

/// `[runners.docker]` keys the model reads.
pub(crate) const DOCKER_KEYS: &str =
    "host tls_cert_path tls_verify hostname image runtime memory memory_swap \
    memory_reservation cpuset_cpus cpus cpu_shares dns dns_search privileged \
    disable_entrypoint_overwrite user group_add userns_mode cap_add cap_drop security_opt \
    oom_kill_disable oom_score_adjust pids_limit devices gpus disable_cache volumes \
    volume_driver volumes_from cache_dir extra_hosts network_mode network_mtu enable_ipv6 \
    ipcmode mac_address wait_for_services_timeout shm_size tmpfs sysctls ulimit \
    container_labels helper_image helper_image_flavor pull_policy allowed_pull_policies \
    allowed_images allowed_privileged_images allowed_services";

/// Whether the word list `list` has `key`.
pub(crate) fn has(list: &str, key: &str) -> bool {
    list.split_whitespace().any(|k| k == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ctx::suggest;
    use crate::config::model::{RawConfig, RawDocker, RawRunner, RawSessionServer};

    fn every_key(keys: &str) -> String {
        keys.split_whitespace()
            .map(|k| format!("\"{k}\" = 0\n"))
            .collect()
    }

    /// Each `*_KEYS` word is a field of the model: none lands in `other`.
    #[test]
    fn key_lists_are_the_models_fields() {
        let root: RawConfig = toml::from_str(&every_key(ROOT_KEYS)).unwrap();
        assert!(root.other.is_empty(), "{:?}", root.other);
        let s: RawSessionServer = toml::from_str(&every_key(SESSION_KEYS)).unwrap();
        assert!(s.other.is_empty(), "{:?}", s.other);
        let r: RawRunner = toml::from_str(&every_key(RUNNER_KEYS)).unwrap();
        assert!(r.other.is_empty(), "{:?}", r.other);
        let d: RawDocker = toml::from_str(&every_key(DOCKER_KEYS)).unwrap();
        assert!(d.other.is_empty(), "{:?}", d.other);
        let d: RawDocker = toml::from_str(&every_key(DOCKER_IGNORED)).unwrap();
        assert_eq!(d.other.len(), DOCKER_IGNORED.split_whitespace().count());
    }

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
        assert!(has(RUNNER_IGNORED, "cache") && !has(RUNNER_IGNORED, "cach"));
    }
}
