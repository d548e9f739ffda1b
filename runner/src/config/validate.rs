//! The model as written ([`RawConfig`]) into [`Config`]: gitlab-runner's
//! defaults, termgate's validation, every problem with its line and key.

use super::ctx::{suggest, Ctx, Sec};
use super::doc::Step;
use super::model::{
    Checked, RawConfig, RawDocker, RawRunner, RawSessionServer, Section, Timestamp,
};
use super::schema::{
    has, DOCKER_IGNORED, DOCKER_KEYS, IMPLEMENTED_EXECUTORS, IMPLEMENTED_FEATURE_FLAGS,
    LOG_FORMATS, LOG_LEVELS, ROOT_IGNORED, ROOT_KEYS, RUNNER_IGNORED, RUNNER_KEYS, SESSION_KEYS,
    SHELLS, UPSTREAM_EXECUTORS,
};
use super::{
    Config, DockerConfig, Ignored, RunnerConfig, Secret, SessionServer, DEFAULT_CHECK_INTERVAL,
    DEFAULT_OUTPUT_LIMIT_KB, DEFAULT_SESSION_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_UNHEALTHY_REQUESTS_LIMIT,
};

pub(crate) fn config(ctx: &mut Ctx<'_>, raw: RawConfig) -> Config {
    let root = Sec {
        label: String::new(),
        scope: String::new(),
        dotted: "",
        path: Vec::new(),
        line: None,
    };
    let mut cfg = Config::default();
    if let Some(n) = ctx.usize(&root, "concurrent", raw.concurrent) {
        if n == 0 {
            let line = ctx.line(&root, "concurrent");
            ctx.problem(
                line,
                &root,
                "concurrent",
                "must be at least 1 (0 would never run a job)",
            );
        } else {
            cfg.concurrent = n;
        }
    }
    if let Some(n) = ctx.positive_or(
        &root,
        "check_interval",
        raw.check_interval,
        DEFAULT_CHECK_INTERVAL,
    ) {
        cfg.check_interval = n;
    }
    cfg.log_level = ctx.one_of(&root, "log_level", raw.log_level, LOG_LEVELS);
    cfg.log_format = ctx.one_of(&root, "log_format", raw.log_format, LOG_FORMATS);
    cfg.listen_address = listen_address(ctx, &root, raw.listen_address, raw.metrics_server);
    cfg.sentry_dsn = ctx.string(&root, "sentry_dsn", raw.sentry_dsn);
    if let Some(n) = ctx.positive_or(
        &root,
        "shutdown_timeout",
        raw.shutdown_timeout,
        DEFAULT_SHUTDOWN_TIMEOUT,
    ) {
        cfg.shutdown_timeout = n;
    }
    cfg.connection_max_age = ctx.duration(&root, "connection_max_age", raw.connection_max_age);
    if let Some(server) = ctx.section(&root, "session_server", raw.session_server) {
        let s = Sec {
            label: "[session_server]".to_string(),
            scope: "[session_server]".to_string(),
            dotted: "session_server",
            path: vec![Step::Key("session_server")],
            line: ctx.doc.header_line(&[], "session_server"),
        };
        cfg.session_server = Some(session_server(ctx, &s, server));
    }
    cfg.runners = runners(ctx, &root, raw.runners);
    cfg.ignored = Ignored(ctx.finish(&root, raw.other, ROOT_KEYS, ROOT_IGNORED));
    cfg
}

/// `listen_address`, or the pre-2019 `metrics_server` alias with a warning.
fn listen_address(
    ctx: &mut Ctx<'_>,
    root: &Sec,
    current: Option<Checked<String>>,
    old: Option<Checked<String>>,
) -> Option<String> {
    let current = ctx.string(root, "listen_address", current);
    let old = ctx.string(root, "metrics_server", old);
    let old_line = ctx.doc.key_line(&[], "metrics_server");
    match (current, old) {
        (Some(_), Some(_)) => {
            ctx.problem(
                old_line,
                root,
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

fn session_server(ctx: &mut Ctx<'_>, s: &Sec, raw: RawSessionServer) -> SessionServer {
    let mut out = SessionServer {
        listen_address: ctx.string(s, "listen_address", raw.listen_address),
        ..SessionServer::default()
    };
    if let Some(adv) = ctx.string(s, "advertise_address", raw.advertise_address) {
        if adv.to_ascii_lowercase().contains("://") {
            let line = ctx.line(s, "advertise_address");
            let message = format!(
                "url not valid, scheme defined ({adv:?}); use host:port, \
                 the runner always adds https://"
            );
            ctx.problem(line, s, "advertise_address", message);
        } else {
            out.advertise_address = Some(adv);
        }
    }
    if let Some(n) = ctx.positive_or(
        s,
        "session_timeout",
        raw.session_timeout,
        DEFAULT_SESSION_TIMEOUT,
    ) {
        out.session_timeout = n;
    }
    out.cert_file = ctx.path(s, "cert_file", raw.cert_file);
    out.key_file = ctx.path(s, "key_file", raw.key_file);
    if out.cert_file.is_some() != out.key_file.is_some() {
        let key = if out.cert_file.is_some() {
            "key_file"
        } else {
            "cert_file"
        };
        ctx.problem(
            s.line,
            s,
            key,
            "cert_file and key_file must be set together",
        );
    }
    if let Some(n) = ctx.usize(s, "max_observers", raw.max_observers) {
        out.max_observers = n;
    }
    out.operators_file = ctx.path(s, "operators_file", raw.operators_file);
    out.recordings_dir = ctx.path(s, "recordings_dir", raw.recordings_dir);
    if let Some(n) = ctx.uint(s, "idle_timeout", raw.idle_timeout) {
        out.idle_timeout = n;
    }
    let _ = ctx.finish(s, raw.other, SESSION_KEYS, "");
    out
}

/// `[[runners]]` (or an inline array of tables).
fn runners(
    ctx: &mut Ctx<'_>,
    root: &Sec,
    raw: Option<Section<Vec<Section<RawRunner>>>>,
) -> Vec<RunnerConfig> {
    let Some(raw) = raw else { return Vec::new() };
    let entries = match raw {
        Section::Ok(entries) if ctx.doc.is_table_list(&[], "runners") => entries,
        _ => {
            ctx.type_error(root, "runners", "an array of tables ([[runners]])");
            return Vec::new();
        }
    };
    let mut tables = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            Section::Ok(t) => tables.push(t),
            Section::Not => {
                ctx.type_error(root, "runners", "an array of tables");
                return Vec::new();
            }
        }
    }
    let mut out = Vec::with_capacity(tables.len());
    for (i, raw) in tables.into_iter().enumerate() {
        let label = format!("[[runners]] #{}", i + 1);
        let s = Sec {
            scope: label.clone(),
            label,
            dotted: "runners",
            path: vec![Step::Key("runners"), Step::Index(i)],
            line: ctx.doc.entry_line("runners", i),
        };
        out.push(runner(ctx, &s, raw));
    }
    out
}

fn runner(ctx: &mut Ctx<'_>, s: &Sec, raw: RawRunner) -> RunnerConfig {
    let mut r = RunnerConfig {
        name: ctx.take(s, "name", raw.name).unwrap_or_default(),
        ..RunnerConfig::default()
    };
    match ctx.string(s, "url", raw.url) {
        Some(url) => {
            let lower = url.to_ascii_lowercase();
            let http = lower.starts_with("http://") || lower.starts_with("https://");
            if !http && !url.contains('$') {
                let line = ctx.line(s, "url");
                ctx.problem(
                    line,
                    s,
                    "url",
                    format!("{url:?} is not an http:// or https:// URL"),
                );
            }
            r.url = url;
        }
        None => ctx.problem(s.line, s, "url", "missing (the GitLab instance URL)"),
    }
    match ctx.string(s, "token", raw.token) {
        Some(t) => r.token = Secret::new(t),
        None => ctx.problem(
            s.line,
            s,
            "token",
            "missing (the runner authentication token)",
        ),
    }
    r.id = ctx.uint(s, "id", raw.id).unwrap_or_default();
    r.token_obtained_at = timestamp(ctx, s, "token_obtained_at", raw.token_obtained_at);
    r.token_expires_at = timestamp(ctx, s, "token_expires_at", raw.token_expires_at);
    r.tls_ca_file = ctx.path(s, "tls-ca-file", raw.tls_ca_file);
    r.tls_cert_file = ctx.path(s, "tls-cert-file", raw.tls_cert_file);
    r.tls_key_file = ctx.path(s, "tls-key-file", raw.tls_key_file);
    if let Some(exec) = executor(ctx, s, raw.executor) {
        r.executor = exec;
    }
    r.shell = ctx.one_of(s, "shell", raw.shell, SHELLS);
    r.builds_dir = ctx.path(s, "builds_dir", raw.builds_dir);
    r.cache_dir = ctx.path(s, "cache_dir", raw.cache_dir);
    r.clone_url = ctx.string(s, "clone_url", raw.clone_url);
    r.environment = ctx.strings(s, "environment", raw.environment);
    r.limit = ctx.usize(s, "limit", raw.limit).unwrap_or_default();
    r.request_concurrency = ctx
        .usize(s, "request_concurrency", raw.request_concurrency)
        .unwrap_or(1);
    if let Some(n) = ctx.positive_or(s, "output_limit", raw.output_limit, DEFAULT_OUTPUT_LIMIT_KB) {
        r.output_limit = n;
    }
    if let Some(n) = ctx.take(s, "unhealthy_requests_limit", raw.unhealthy_requests_limit) {
        r.unhealthy_requests_limit = usize::try_from(n)
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_UNHEALTHY_REQUESTS_LIMIT);
    }
    r.unhealthy_interval = ctx.duration(s, "unhealthy_interval", raw.unhealthy_interval);
    r.feature_flags = ctx
        .map(s, "feature_flags", "a boolean", raw.feature_flags)
        .unwrap_or_default();
    for flag in r.feature_flags.keys() {
        if !IMPLEMENTED_FEATURE_FLAGS.contains(&flag.as_str()) {
            let line = ctx.line(s, "feature_flags");
            ctx.ignored
                .push((line, format!("{} feature_flags.{flag}", s.label)));
        }
    }
    if let Some(docker) = ctx.section(s, "docker", raw.docker) {
        let mut path = s.path.clone();
        path.push(Step::Key("docker"));
        let d = Sec {
            label: format!("{} [runners.docker]", s.label),
            scope: s.label.clone(),
            dotted: "runners.docker",
            line: ctx.doc.header_line(&s.path, "docker"),
            path,
        };
        r.docker = Some(self::docker(ctx, &d, docker));
    }
    r.ignored = Ignored(ctx.finish(s, raw.other, RUNNER_KEYS, RUNNER_IGNORED));
    r
}

/// A timestamp; Go's zero time (year 1), which gitlab-runner writes for
/// "never", is `None`.
fn timestamp(
    ctx: &mut Ctx<'_>,
    s: &Sec,
    key: &str,
    value: Option<Checked<Timestamp>>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::Datelike;
    ctx.take(s, key, value)
        .map(|t| t.0)
        .filter(|t| t.year() > 1)
}

fn executor(ctx: &mut Ctx<'_>, s: &Sec, value: Option<Checked<String>>) -> Option<String> {
    let exec = ctx.string(s, "executor", value)?;
    if IMPLEMENTED_EXECUTORS.contains(&exec.as_str()) {
        return Some(exec);
    }
    let line = ctx.line(s, "executor");
    if has(UPSTREAM_EXECUTORS, &exec) {
        // A real gitlab-runner config loads; this runner just idles.
        ctx.warnings.push(format!(
            "{}:{}: {}: the {exec:?} executor is not implemented \
             (termgate implements shell and docker); this runner will not request jobs",
            ctx.origin,
            line.unwrap_or(0),
            s.label
        ));
        return Some(exec);
    }
    let all = IMPLEMENTED_EXECUTORS.iter().copied();
    let hint = match suggest(&exec, all.chain(UPSTREAM_EXECUTORS.split_whitespace())) {
        Some(h) => format!("; did you mean \"{h}\"?"),
        None => String::new(),
    };
    let message = format!("unknown executor {exec:?}; termgate implements shell and docker{hint}");
    ctx.problem(line, s, "executor", message);
    None
}

/// Builds `$ty` with each named field read from `$raw` by the `Ctx` method
/// given before it (the key is the field's name), in order, then `$rest`.
macro_rules! read {
    ($ty:ident, $c:ident, $s:ident, $raw:ident; $($how:ident $f:ident),+; $($rest:tt)*) => {
        $ty { $( $f: $c.$how($s, stringify!($f), $raw.$f), )+ $($rest)* }
    };
}

fn docker(c: &mut Ctx<'_>, d: &Sec, raw: RawDocker) -> DockerConfig {
    read!(DockerConfig, c, d, raw;
        string host, path tls_cert_path, bool tls_verify, string hostname, string image,
        string runtime, string memory, string memory_swap, string memory_reservation,
        string cpuset_cpus, string cpus, take cpu_shares, strings dns, strings dns_search,
        bool privileged, bool disable_entrypoint_overwrite, string user, strings group_add,
        string userns_mode, strings cap_add, strings cap_drop, strings security_opt,
        bool oom_kill_disable, take oom_score_adjust, take pids_limit, strings devices,
        string gpus, bool disable_cache, strings volumes, string volume_driver,
        strings volumes_from, path cache_dir, strings extra_hosts, string network_mode,
        uint network_mtu, bool enable_ipv6, string ipcmode, string mac_address,
        take wait_for_services_timeout, uint shm_size, strings_map tmpfs, strings_map sysctls,
        strings_map ulimit, strings_map container_labels, string helper_image,
        string helper_image_flavor, pull_policies pull_policy,
        pull_policies allowed_pull_policies, strings allowed_images,
        strings allowed_privileged_images, strings allowed_services;
        ignored: Ignored(c.finish(d, raw.other, DOCKER_KEYS, DOCKER_IGNORED)),
    )
}
