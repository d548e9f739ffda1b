//! Reads a parsed `config.toml` into [`Config`], section by section, with
//! gitlab-runner's defaults and termgate's validation.

use std::path::PathBuf;

use super::duration::parse_go_duration;
use super::reader::{suggest, Ctx, Section};
use super::{
    Config, DockerConfig, Ignored, RunnerConfig, Secret, SessionServer, DEFAULT_CHECK_INTERVAL,
    DEFAULT_OUTPUT_LIMIT_KB, DEFAULT_SESSION_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_UNHEALTHY_REQUESTS_LIMIT,
};

/// Global keys gitlab-runner knows that termgate does not implement.
const ROOT_IGNORED: &[&str] = &["user", "machine"];

/// `[[runners]]` keys gitlab-runner knows that termgate does not implement.
const RUNNER_IGNORED: &[&str] = &[
    "strict_check_interval",
    "job_status_final_update_retry_limit",
    "pre_clone_script",
    "post_clone_script",
    "pre_get_sources_script",
    "post_get_sources_script",
    "pre_build_script",
    "post_build_script",
    "debug_trace_disabled",
    "safe_directory_checkout",
    "clean_git_config",
    "custom_build_dir",
    "referees",
    "cache",
    "instance",
    "ssh",
    "parallels",
    "virtualbox",
    "machine",
    "kubernetes",
    "custom",
    "autoscaler",
];

/// `[runners.docker]` keys gitlab-runner knows that termgate does not implement.
const DOCKER_IGNORED: &[&str] = &[
    "services",
    "services_privileged",
    "services_security_opt",
    "services_tmpfs",
    "services_limit",
    "services_devices",
    "service_memory",
    "service_memory_swap",
    "service_memory_reservation",
    "service_cpus",
    "service_cpuset_cpus",
    "service_cpu_shares",
    "service_gpus",
    "device_cgroup_rules",
    "volume_driver_ops",
    "allowed_privileged_services",
    "allowed_users",
    "cpuset_mems",
    "log_options",
    "helper_image_autoset_arch_and_os",
    "isolation",
    "links",
];

/// Feature flags termgate acts on; others are accepted, kept and reported.
const IMPLEMENTED_FEATURE_FLAGS: &[&str] = &[];

/// Executors termgate implements.
pub const IMPLEMENTED_EXECUTORS: &[&str] = &["shell", "docker"];

/// Executors gitlab-runner has (or had) that termgate does not implement.
const UPSTREAM_EXECUTORS: &[&str] = &[
    "docker-windows",
    "docker+machine",
    "docker-autoscaler",
    "docker-ssh",
    "docker-ssh+machine",
    "kubernetes",
    "custom",
    "virtualbox",
    "parallels",
    "ssh",
    "instance",
];

/// `shell` values gitlab-runner accepts.
pub const SHELLS: &[&str] = &["bash", "sh", "powershell", "pwsh"];

const LOG_LEVELS: &[&str] = &[
    "panic", "fatal", "error", "warn", "warning", "info", "debug",
];
const LOG_FORMATS: &[&str] = &["runner", "text", "json"];
const PULL_POLICIES: &[&str] = &["always", "if-not-present", "never"];

pub(crate) fn build(ctx: &mut Ctx<'_>, root: &mut Section<'_>) -> Config {
    let mut cfg = Config::default();

    if let Some(n) = root.usize(ctx, "concurrent") {
        if n == 0 {
            let line = root.line_of(ctx, "concurrent");
            ctx.problem(
                line,
                "",
                "concurrent",
                "must be at least 1 (0 would never run a job)",
            );
        } else {
            cfg.concurrent = n;
        }
    }
    if let Some(n) = root.int(ctx, "check_interval") {
        cfg.check_interval = u64::try_from(n)
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_CHECK_INTERVAL);
    }
    cfg.log_level = one_of(ctx, root, "log_level", LOG_LEVELS);
    cfg.log_format = one_of(ctx, root, "log_format", LOG_FORMATS);
    cfg.listen_address = listen_address(ctx, root);
    cfg.sentry_dsn = root.opt_string(ctx, "sentry_dsn");
    if let Some(n) = root.int(ctx, "shutdown_timeout") {
        cfg.shutdown_timeout = u64::try_from(n)
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT);
    }
    cfg.connection_max_age = duration_string(ctx, root, "connection_max_age");
    if let Some(mut s) = root.table(ctx, "session_server", "[session_server]".to_string()) {
        let server = session_server(ctx, &mut s);
        let _ = s.finish(ctx, &[]);
        cfg.session_server = Some(server);
    }
    for (i, (line, table, raw)) in root.tables(ctx, "runners").into_iter().enumerate() {
        let label = format!("[[runners]] #{}", i + 1);
        let mut s = Section::new(table, raw, label, "runners".to_string(), line);
        let mut runner = runner(ctx, &mut s);
        runner.ignored = Ignored(s.finish(ctx, RUNNER_IGNORED));
        cfg.runners.push(runner);
    }
    cfg.ignored = Ignored(root.finish(ctx, ROOT_IGNORED));
    cfg
}

fn one_of(
    ctx: &mut Ctx<'_>,
    s: &mut Section<'_>,
    key: &'static str,
    allowed: &[&str],
) -> Option<String> {
    let v = s.opt_string(ctx, key)?;
    if allowed.contains(&v.as_str()) {
        return Some(v);
    }
    let line = s.line_of(ctx, key);
    let hint = match suggest(&v, allowed.iter().copied()) {
        Some(h) => format!("; did you mean \"{h}\"?"),
        None => String::new(),
    };
    ctx.problem(
        line,
        &s.label,
        key,
        format!(
            "unsupported value {v:?}; allowed values: {}{hint}",
            allowed.join(", ")
        ),
    );
    None
}

/// `listen_address`, or the pre-2019 `metrics_server` alias with a warning.
fn listen_address(ctx: &mut Ctx<'_>, root: &mut Section<'_>) -> Option<String> {
    let current = root.opt_string(ctx, "listen_address");
    let old = root.opt_string(ctx, "metrics_server");
    let old_line = root.line_of(ctx, "metrics_server");
    match (current, old) {
        (Some(_), Some(_)) => {
            ctx.problem(
                old_line,
                "",
                "metrics_server",
                "both listen_address and its deprecated alias metrics_server are set; remove metrics_server",
            );
            None
        }
        (None, Some(old)) => {
            let at = old_line.map(|l| format!(":{l}")).unwrap_or_default();
            ctx.warnings.push(format!(
                "{}{at}: metrics_server is deprecated (removed from gitlab-runner in 2019); \
                 using it as listen_address = {old:?}, rename the key",
                ctx.origin
            ));
            Some(old)
        }
        (current, None) => current,
    }
}

fn duration_string(ctx: &mut Ctx<'_>, s: &mut Section<'_>, key: &'static str) -> Option<String> {
    let v = s.opt_string(ctx, key)?;
    match parse_go_duration(&v) {
        Ok(_) => Some(v),
        Err(e) => {
            let line = s.line_of(ctx, key);
            ctx.problem(
                line,
                &s.label,
                key,
                format!("{e}; expected a duration such as \"15m\" or \"1h30m\""),
            );
            None
        }
    }
}

fn path(ctx: &mut Ctx<'_>, s: &mut Section<'_>, key: &'static str) -> Option<PathBuf> {
    s.opt_string(ctx, key).map(PathBuf::from)
}

fn session_server(ctx: &mut Ctx<'_>, s: &mut Section<'_>) -> SessionServer {
    let mut out = SessionServer {
        listen_address: s.opt_string(ctx, "listen_address"),
        ..SessionServer::default()
    };
    if let Some(adv) = s.opt_string(ctx, "advertise_address") {
        if adv.to_ascii_lowercase().contains("://") {
            let line = s.line_of(ctx, "advertise_address");
            ctx.problem(
                line,
                &s.label,
                "advertise_address",
                format!(
                    "url not valid, scheme defined ({adv:?}); use host:port, \
                     the runner always adds https://"
                ),
            );
        } else {
            out.advertise_address = Some(adv);
        }
    }
    if let Some(n) = s.int(ctx, "session_timeout") {
        out.session_timeout = u64::try_from(n)
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_SESSION_TIMEOUT);
    }
    out.cert_file = path(ctx, s, "cert_file");
    out.key_file = path(ctx, s, "key_file");
    if out.cert_file.is_some() != out.key_file.is_some() {
        let key = if out.cert_file.is_some() {
            "key_file"
        } else {
            "cert_file"
        };
        ctx.problem(
            s.line,
            &s.label,
            key,
            "cert_file and key_file must be set together",
        );
    }
    if let Some(n) = s.usize(ctx, "max_observers") {
        out.max_observers = n;
    }
    out.operators_file = path(ctx, s, "operators_file");
    out.recordings_dir = path(ctx, s, "recordings_dir");
    if let Some(n) = s.uint(ctx, "idle_timeout") {
        out.idle_timeout = n;
    }
    out
}

fn runner(ctx: &mut Ctx<'_>, s: &mut Section<'_>) -> RunnerConfig {
    let mut r = RunnerConfig {
        name: s.string(ctx, "name").unwrap_or_default(),
        ..RunnerConfig::default()
    };
    match s.opt_string(ctx, "url") {
        Some(url) => {
            let lower = url.to_ascii_lowercase();
            let http = lower.starts_with("http://") || lower.starts_with("https://");
            if !http && !url.contains('$') {
                let line = s.line_of(ctx, "url");
                ctx.problem(
                    line,
                    &s.label,
                    "url",
                    format!("{url:?} is not an http:// or https:// URL"),
                );
            }
            r.url = url;
        }
        None => ctx.problem(s.line, &s.label, "url", "missing (the GitLab instance URL)"),
    }
    match s.opt_string(ctx, "token") {
        Some(t) => r.token = Secret::new(t),
        None => ctx.problem(
            s.line,
            &s.label,
            "token",
            "missing (the runner authentication token)",
        ),
    }
    r.id = s.uint(ctx, "id").unwrap_or_default();
    r.token_obtained_at = s.datetime(ctx, "token_obtained_at").filter(not_zero_time);
    r.token_expires_at = s.datetime(ctx, "token_expires_at").filter(not_zero_time);
    r.tls_ca_file = path(ctx, s, "tls-ca-file");
    r.tls_cert_file = path(ctx, s, "tls-cert-file");
    r.tls_key_file = path(ctx, s, "tls-key-file");

    if let Some(exec) = s.opt_string(ctx, "executor") {
        if IMPLEMENTED_EXECUTORS.contains(&exec.as_str()) {
            r.executor = exec;
        } else {
            let line = s.line_of(ctx, "executor");
            if UPSTREAM_EXECUTORS.contains(&exec.as_str()) {
                // A real gitlab-runner config loads; this runner just idles.
                ctx.warnings.push(format!(
                    "{}:{}: {}: the {exec:?} executor is not implemented \
                     (termgate implements shell and docker); this runner will not request jobs",
                    ctx.origin,
                    line.or(s.line).unwrap_or(0),
                    s.label
                ));
                r.executor = exec;
            } else {
                let all = IMPLEMENTED_EXECUTORS.iter().chain(UPSTREAM_EXECUTORS);
                let hint = match suggest(&exec, all.copied()) {
                    Some(h) => format!("; did you mean \"{h}\"?"),
                    None => String::new(),
                };
                let message = format!(
                    "unknown executor {exec:?}; termgate implements shell and docker{hint}"
                );
                ctx.problem(line, &s.label, "executor", message);
            }
        }
    }
    r.shell = one_of(ctx, s, "shell", SHELLS);
    r.builds_dir = path(ctx, s, "builds_dir");
    r.cache_dir = path(ctx, s, "cache_dir");
    r.clone_url = s.opt_string(ctx, "clone_url");
    r.environment = s.strings(ctx, "environment").unwrap_or_default();
    r.limit = s.usize(ctx, "limit").unwrap_or_default();
    r.request_concurrency = s.usize(ctx, "request_concurrency").unwrap_or(1);
    if let Some(n) = s.int(ctx, "output_limit") {
        r.output_limit = u64::try_from(n)
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_OUTPUT_LIMIT_KB);
    }
    if let Some(n) = s.int(ctx, "unhealthy_requests_limit") {
        r.unhealthy_requests_limit = usize::try_from(n)
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_UNHEALTHY_REQUESTS_LIMIT);
    }
    r.unhealthy_interval = duration_string(ctx, s, "unhealthy_interval");
    r.feature_flags = s.bool_map(ctx, "feature_flags").unwrap_or_default();
    for flag in r.feature_flags.keys() {
        if !IMPLEMENTED_FEATURE_FLAGS.contains(&flag.as_str()) {
            let line = s.line_of(ctx, "feature_flags");
            ctx.ignored
                .push((line, format!("{} feature_flags.{flag}", s.label)));
        }
    }
    let docker_label = format!("{} [runners.docker]", s.label);
    if let Some(d) = s.table(ctx, "docker", docker_label) {
        let mut d = d.with_scope(s.label.clone());
        let mut docker = docker(ctx, &mut d);
        docker.ignored = Ignored(d.finish(ctx, DOCKER_IGNORED));
        r.docker = Some(docker);
    }
    r
}

/// gitlab-runner writes Go's zero time (year 1) for "never".
fn not_zero_time(t: &chrono::DateTime<chrono::Utc>) -> bool {
    use chrono::Datelike;
    t.year() > 1
}

fn pull_policies(ctx: &mut Ctx<'_>, d: &mut Section<'_>, key: &'static str) -> Vec<String> {
    let values = d.string_or_strings(ctx, key).unwrap_or_default();
    for v in &values {
        if !PULL_POLICIES.contains(&v.as_str()) {
            let line = d.line_of(ctx, key);
            ctx.problem(
                line,
                &d.label,
                key,
                format!(
                    "unsupported pull policy {v:?}; allowed values: {}",
                    PULL_POLICIES.join(", ")
                ),
            );
        }
    }
    values
}

fn docker(ctx: &mut Ctx<'_>, d: &mut Section<'_>) -> DockerConfig {
    let c = ctx;
    DockerConfig {
        host: d.opt_string(c, "host"),
        tls_cert_path: path(c, d, "tls_cert_path"),
        tls_verify: d.bool(c, "tls_verify").unwrap_or_default(),
        hostname: d.opt_string(c, "hostname"),
        image: d.opt_string(c, "image"),
        runtime: d.opt_string(c, "runtime"),
        memory: d.opt_string(c, "memory"),
        memory_swap: d.opt_string(c, "memory_swap"),
        memory_reservation: d.opt_string(c, "memory_reservation"),
        cpuset_cpus: d.opt_string(c, "cpuset_cpus"),
        cpus: d.opt_string(c, "cpus"),
        cpu_shares: d.int(c, "cpu_shares"),
        dns: d.strings(c, "dns").unwrap_or_default(),
        dns_search: d.strings(c, "dns_search").unwrap_or_default(),
        privileged: d.bool(c, "privileged").unwrap_or_default(),
        disable_entrypoint_overwrite: d
            .bool(c, "disable_entrypoint_overwrite")
            .unwrap_or_default(),
        user: d.opt_string(c, "user"),
        group_add: d.strings(c, "group_add").unwrap_or_default(),
        userns_mode: d.opt_string(c, "userns_mode"),
        cap_add: d.strings(c, "cap_add").unwrap_or_default(),
        cap_drop: d.strings(c, "cap_drop").unwrap_or_default(),
        security_opt: d.strings(c, "security_opt").unwrap_or_default(),
        oom_kill_disable: d.bool(c, "oom_kill_disable").unwrap_or_default(),
        oom_score_adjust: d.int(c, "oom_score_adjust"),
        pids_limit: d.int(c, "pids_limit"),
        devices: d.strings(c, "devices").unwrap_or_default(),
        gpus: d.opt_string(c, "gpus"),
        disable_cache: d.bool(c, "disable_cache").unwrap_or_default(),
        volumes: d.strings(c, "volumes").unwrap_or_default(),
        volume_driver: d.opt_string(c, "volume_driver"),
        volumes_from: d.strings(c, "volumes_from").unwrap_or_default(),
        cache_dir: path(c, d, "cache_dir"),
        extra_hosts: d.strings(c, "extra_hosts").unwrap_or_default(),
        network_mode: d.opt_string(c, "network_mode"),
        network_mtu: d.uint(c, "network_mtu"),
        enable_ipv6: d.bool(c, "enable_ipv6").unwrap_or_default(),
        ipcmode: d.opt_string(c, "ipcmode"),
        mac_address: d.opt_string(c, "mac_address"),
        wait_for_services_timeout: d.int(c, "wait_for_services_timeout"),
        shm_size: d.uint(c, "shm_size"),
        tmpfs: d.string_map(c, "tmpfs").unwrap_or_default(),
        sysctls: d.string_map(c, "sysctls").unwrap_or_default(),
        ulimit: d.string_map(c, "ulimit").unwrap_or_default(),
        container_labels: d.string_map(c, "container_labels").unwrap_or_default(),
        helper_image: d.opt_string(c, "helper_image"),
        helper_image_flavor: d.opt_string(c, "helper_image_flavor"),
        pull_policy: pull_policies(c, d, "pull_policy"),
        allowed_pull_policies: pull_policies(c, d, "allowed_pull_policies"),
        allowed_images: d.strings(c, "allowed_images").unwrap_or_default(),
        allowed_privileged_images: d
            .strings(c, "allowed_privileged_images")
            .unwrap_or_default(),
        allowed_services: d.strings(c, "allowed_services").unwrap_or_default(),
        ignored: Ignored::default(),
    }
}
