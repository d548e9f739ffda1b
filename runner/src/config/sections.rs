//! The sections of `config.toml`, each key declared once: its type in the
//! file, the rule that reads it into the output field of the same name, and
//! the default. From one [`section!`] the model struct, its key lists and
//! its `read` are generated.

use serde::Deserialize;

use super::ctx::{Ctx, Sec};
use super::model::{Raw, Section, StringOrList, Table, Timestamp};
use super::schema::{LOG_FORMATS, LOG_LEVELS, SHELLS};
use super::{
    Config, DockerConfig, Ignored, RunnerConfig, SessionServer, DEFAULT_CHECK_INTERVAL,
    DEFAULT_CONCURRENT, DEFAULT_MAX_INPUT_FRAME, DEFAULT_MAX_OBSERVERS, DEFAULT_OUTPUT_LIMIT_KB,
    DEFAULT_SESSION_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_UNHEALTHY_REQUESTS_LIMIT,
};

/// Declares a section: `Raw -> Out, |c, s, raw, out| { keys }`, then the
/// gitlab-runner keys termgate does not implement (`=> field`: the `Out`
/// field that keeps them). Each key is
///
/// ```text
/// key = "spelling": Type => rule(args) or default,
/// ```
///
/// `Type` is what the file holds (`model::Declared`); `rule` is the `Ctx`
/// method that reads it, called as `c.rule(s, "key", raw.key, args)`, and
/// its result (`.unwrap_or(default)`) is `out.key`. A key without a rule is
/// read by another key's rule (`raw.key`); `= "spelling"` names a key that
/// is not a Rust name. Keys are read, and "did you mean" weighs equal
/// candidates, in the order given.
///
/// Generates `struct Raw` (serde; other keys land in `other`), `Raw::KEYS`,
/// `Raw::UNIMPLEMENTED` and `Raw::read(self, c, s) -> Out`.
macro_rules! section {
    (
        $(#[$doc:meta])*
        $raw:ident -> $out_ty:ident, |$c:ident, $s:ident, $r:ident, $out:ident| {
            $( $(#[$attr:meta])* $key:ident $(= $name:literal)? : $ty:ty
               $(=> $rule:ident $(($($arg:expr),*))? $(or $default:expr)?)? ),* $(,)?
        }
        unimplemented: $unimplemented:expr $(=> $kept:ident)?;
    ) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize)]
        pub(crate) struct $raw {
            $( $(#[$attr])* $(#[serde(rename = $name)])? pub $key: Raw<$ty>, )*
            #[serde(flatten)]
            pub other: toml::Table,
        }

        impl $raw {
            /// The keys, in the order they are read.
            pub(crate) const KEYS: &'static [&'static str] = &[$(key!($key $($name)?)),*];
            /// gitlab-runner keys termgate does not implement (a word list).
            pub(crate) const UNIMPLEMENTED: &'static str = $unimplemented;

            pub(crate) fn read(self, $c: &mut Ctx<'_>, $s: &Sec) -> $out_ty {
                let $r = self;
                let mut $out = $out_ty::default();
                $( read_key!($c, $s, $r, $out, $key [$($name)?]
                    $(=> $rule $(($($arg),*))? $(or $default)?)?); )*
                let _kept = $c.finish($s, $r.other, Self::KEYS, Self::UNIMPLEMENTED);
                $( $out.$kept = Ignored(_kept); )?
                $out
            }
        }
    };
}

/// A key's name in the file: its spelling if given, else the field's name.
macro_rules! key {
    ($key:ident) => {
        stringify!($key)
    };
    ($key:ident $name:literal) => {
        $name
    };
}

/// One key of [`section!`]'s `read`.
macro_rules! read_key {
    ($c:ident, $s:ident, $r:ident, $out:ident, $key:ident [$($name:literal)?]) => {};
    ($c:ident, $s:ident, $r:ident, $out:ident, $key:ident [$($name:literal)?]
        => $rule:ident $(($($arg:expr),*))? $(or $default:expr)?) => {
        $out.$key = $c.$rule($s, key!($key $($name)?), $r.$key $($(, $arg)*)?)
            $(.unwrap_or($default))?;
    };
}

section! {
    /// The root of `config.toml`.
    RawConfig -> Config, |c, s, raw, out| {
        concurrent: i64 => at_least_one or DEFAULT_CONCURRENT,
        check_interval: i64 => positive or DEFAULT_CHECK_INTERVAL,
        log_level: String => one_of(LOG_LEVELS),
        log_format: String => one_of(LOG_FORMATS),
        listen_address: String => listen_address(raw.metrics_server),
        /// Pre-2019 alias of `listen_address`.
        metrics_server: String,
        sentry_dsn: String => string,
        shutdown_timeout: i64 => positive or DEFAULT_SHUTDOWN_TIMEOUT,
        connection_max_age: String => duration,
        /// The user shell-executor jobs run as (`run --user` overrides it).
        user: String => string,
        session_server: Section<RawSessionServer> => session_server,
        runners: Section<Vec<Section<RawRunner>>> => runners,
    }
    unimplemented: "machine" => ignored;
}

section! {
    /// `[session_server]`: gitlab-runner's three keys plus termgate's.
    RawSessionServer -> SessionServer, |c, s, raw, out| {
        listen_address: String => string,
        advertise_address: String => advertise_address,
        session_timeout: i64 => positive or DEFAULT_SESSION_TIMEOUT,
        cert_file: String => path,
        key_file: String => key_file(out.cert_file.is_some()),
        max_observers: i64 => usize or DEFAULT_MAX_OBSERVERS,
        operators_file: String => path,
        operator_listen_address: String => string,
        recordings_dir: String => path,
        record_input: bool => bool,
        recordings_max_age: String => duration,
        recordings_max_size_mb: i64 => uint or 0,
        idle_timeout: i64 => uint or 0,
        max_pending: i64 => pending_limit,
        max_pending_per_peer: i64 => pending_limit,
        max_input_frame: i64 => frame_limit or DEFAULT_MAX_INPUT_FRAME,
    }
    unimplemented: "";
}

section! {
    /// One `[[runners]]` entry.
    RawRunner -> RunnerConfig, |c, s, raw, out| {
        name: String => take or String::new(),
        url: String => url,
        token: String => token,
        id: i64 => uint or 0,
        token_obtained_at: Timestamp => timestamp,
        token_expires_at: Timestamp => timestamp,
        tls_ca_file = "tls-ca-file": String => path,
        tls_cert_file = "tls-cert-file": String => path,
        tls_key_file = "tls-key-file": String => path,
        executor: String => executor or "shell".to_string(),
        shell: String => one_of(SHELLS),
        /// termgate: this runner's shell jobs run as this user (over the
        /// global `user` and `run --user`).
        user: String => string,
        builds_dir: String => path,
        cache_dir: String => path,
        clone_url: String => string,
        environment: Vec<String> => strings,
        limit: i64 => usize or 0,
        request_concurrency: i64 => usize or 1,
        output_limit: i64 => positive or DEFAULT_OUTPUT_LIMIT_KB,
        unhealthy_requests_limit: i64 => positive or DEFAULT_UNHEALTHY_REQUESTS_LIMIT,
        unhealthy_interval: String => duration,
        feature_flags: Table<bool> => feature_flags,
        docker: Section<RawDocker> => docker,
    }
    unimplemented: "strict_check_interval job_status_final_update_retry_limit pre_clone_script \
        post_clone_script pre_get_sources_script post_get_sources_script pre_build_script \
        post_build_script debug_trace_disabled safe_directory_checkout clean_git_config \
        custom_build_dir referees cache instance ssh parallels virtualbox machine kubernetes \
        custom autoscaler" => ignored;
}

section! {
    /// `[runners.docker]`.
    RawDocker -> DockerConfig, |c, s, raw, out| {
        host: String => string,
        tls_cert_path: String => path,
        tls_verify: bool => bool,
        hostname: String => string,
        image: String => string,
        runtime: String => string,
        memory: String => string,
        memory_swap: String => string,
        memory_reservation: String => string,
        cpuset_cpus: String => string,
        cpus: String => string,
        cpu_shares: i64 => take,
        dns: Vec<String> => strings,
        dns_search: Vec<String> => strings,
        privileged: bool => bool,
        disable_entrypoint_overwrite: bool => bool,
        user: String => string,
        group_add: Vec<String> => strings,
        userns_mode: String => string,
        cap_add: Vec<String> => strings,
        cap_drop: Vec<String> => strings,
        security_opt: Vec<String> => strings,
        oom_kill_disable: bool => bool,
        oom_score_adjust: i64 => take,
        pids_limit: i64 => take,
        devices: Vec<String> => strings,
        gpus: String => string,
        disable_cache: bool => bool,
        volumes: Vec<String> => strings,
        volume_driver: String => string,
        volumes_from: Vec<String> => strings,
        cache_dir: String => path,
        extra_hosts: Vec<String> => strings,
        network_mode: String => string,
        network_mtu: i64 => uint,
        enable_ipv6: bool => bool,
        ipcmode: String => string,
        mac_address: String => string,
        wait_for_services_timeout: i64 => take,
        shm_size: i64 => uint,
        tmpfs: Table<String> => strings_map,
        sysctls: Table<String> => strings_map,
        ulimit: Table<String> => strings_map,
        container_labels: Table<String> => strings_map,
        helper_image: String => string,
        helper_image_flavor: String => string,
        pull_policy: StringOrList => pull_policies,
        allowed_pull_policies: StringOrList => pull_policies,
        allowed_images: Vec<String> => strings,
        allowed_privileged_images: Vec<String> => strings,
        allowed_services: Vec<String> => strings,
    }
    unimplemented: "services services_privileged services_security_opt services_tmpfs \
        services_limit services_devices service_memory service_memory_swap \
        service_memory_reservation service_cpus service_cpuset_cpus service_cpu_shares \
        service_gpus device_cgroup_rules volume_driver_ops allowed_privileged_services \
        allowed_users cpuset_mems log_options helper_image_autoset_arch_and_os isolation links"
        => ignored;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::has;

    /// A key is either read or unimplemented, never both.
    #[test]
    fn read_and_unimplemented_keys_are_disjoint() {
        for (keys, unimplemented) in [
            (RawConfig::KEYS, RawConfig::UNIMPLEMENTED),
            (RawSessionServer::KEYS, RawSessionServer::UNIMPLEMENTED),
            (RawRunner::KEYS, RawRunner::UNIMPLEMENTED),
            (RawDocker::KEYS, RawDocker::UNIMPLEMENTED),
        ] {
            for key in keys {
                assert!(!has(unimplemented, key), "{key}");
            }
        }
    }
}
