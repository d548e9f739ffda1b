//! `.gitlab-ci.yml` (and `.gitlab/.gitlab-webide.yml`) → job definitions →
//! the `/jobs/request` payload GitLab would send for them.
//!
//! Only the keys a runner sees are translated: `image`, `services`,
//! `before_script`/`script`/`after_script`, `run`, `variables`, `tags`,
//! `timeout`, `stage`. Pipeline keywords (`rules`, `needs`, `artifacts`…) are
//! ignored. `extends` and `include` are not supported; YAML merge keys are.

use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value as Yaml};
use termgate::api::{
    DockerExecutorOpts, ExecutorOpts, Image, JobVariable, KubernetesExecutorOpts, Port, Service,
};

/// Default job timeout (GitLab project default: 1 h).
pub const DEFAULT_TIMEOUT: u64 = 3600;

/// Top-level keys of a CI file that are not jobs.
const RESERVED: &[&str] = &[
    "stages",
    "types",
    "variables",
    "default",
    "image",
    "services",
    "before_script",
    "after_script",
    "cache",
    "include",
    "workflow",
    "spec",
];

#[derive(Debug, thiserror::Error)]
pub enum CiError {
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    #[error("the CI config must be a mapping")]
    NotAMapping,
    #[error("no job found{}", .0.as_deref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NoJob(Option<String>),
    #[error("job {job:?}: {msg}")]
    Invalid { job: String, msg: String },
}

/// A job as the coordinator queues it: everything needed to build the job
/// payload once a runner and a job token are known.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobDef {
    pub name: String,
    pub stage: String,
    pub tags: Vec<String>,
    pub image: Option<Image>,
    pub services: Vec<Service>,
    /// `before_script` + `script`.
    pub script: Vec<String>,
    pub after_script: Vec<String>,
    /// Step-runner steps as the JSON string GitLab sends.
    pub run: Option<String>,
    /// User variables (global, then job), without the predefined ones.
    pub variables: Vec<JobVariable>,
    pub timeout: Option<u64>,
    /// A Web IDE terminal job (`CI_PIPELINE_SOURCE=webide`).
    pub webide: bool,
    /// Hand out this JSON verbatim (with `id` and `token` filled in) instead
    /// of a built payload: for testing how runners handle bad payloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_payload: Option<serde_json::Value>,
}

/// Parse a CI file (or a Web IDE terminal config) and return its jobs, or
/// only the job named `only`.
pub fn parse_ci_yaml(text: &str, only: Option<&str>) -> Result<Vec<JobDef>, CiError> {
    let mut doc: Yaml = serde_norway::from_str(text)?;
    doc.apply_merge()?;
    let Yaml::Mapping(map) = doc else {
        return Err(CiError::NotAMapping);
    };
    jobs_from_mapping(&map, only)
}

/// Like [`parse_ci_yaml`] on an already parsed document.
pub fn jobs_from_mapping(map: &Mapping, only: Option<&str>) -> Result<Vec<JobDef>, CiError> {
    let webide = map.len() == 1 && map.contains_key("terminal");
    let globals = Globals::from_mapping(map, webide);
    let mut out = Vec::new();
    for (k, v) in map {
        let Some(name) = k.as_str() else { continue };
        if name.starts_with('.') || (!webide && RESERVED.contains(&name)) {
            continue;
        }
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let Yaml::Mapping(spec) = v else { continue };
        if !webide && !spec.contains_key("script") && !spec.contains_key("run") {
            continue; // trigger jobs, templates without a script, …
        }
        out.push(job_def(name, spec, &globals, webide)?);
    }
    if out.is_empty() {
        return Err(CiError::NoJob(only.map(str::to_owned)));
    }
    Ok(out)
}

/// One job from a mapping of CI keywords (the admin API's job spec uses it).
pub fn job_from_spec(name: &str, spec: &Mapping) -> Result<JobDef, CiError> {
    job_def(name, spec, &Globals::default(), false)
}

#[derive(Default)]
struct Globals {
    variables: Vec<JobVariable>,
    image: Option<Yaml>,
    services: Option<Yaml>,
    before_script: Option<Yaml>,
    after_script: Option<Yaml>,
    tags: Option<Yaml>,
    timeout: Option<Yaml>,
}

impl Globals {
    fn from_mapping(map: &Mapping, webide: bool) -> Globals {
        if webide {
            return Globals::default();
        }
        let default = map.get("default").and_then(Yaml::as_mapping);
        let pick = |key: &str| {
            default
                .and_then(|d| d.get(key))
                .or_else(|| map.get(key))
                .cloned()
        };
        Globals {
            variables: map.get("variables").map(variables).unwrap_or_default(),
            image: pick("image"),
            services: pick("services"),
            before_script: pick("before_script"),
            after_script: pick("after_script"),
            tags: default.and_then(|d| d.get("tags")).cloned(),
            timeout: default.and_then(|d| d.get("timeout")).cloned(),
        }
    }
}

fn job_def(name: &str, spec: &Mapping, g: &Globals, webide: bool) -> Result<JobDef, CiError> {
    let invalid = |msg: String| CiError::Invalid {
        job: name.to_owned(),
        msg,
    };
    let get = |key: &str, global: &Option<Yaml>| spec.get(key).or(global.as_ref()).cloned();

    let mut script = get("before_script", &g.before_script)
        .map(|v| script_lines(&v))
        .unwrap_or_default();
    let main = spec.get("script").map(script_lines).unwrap_or_default();
    let run = spec.get("run").map(jsonb_string);
    if main.is_empty() && run.is_none() && !webide {
        return Err(invalid("no script".into()));
    }
    if main.is_empty() && webide {
        script.push("sleep 60".into());
    } else {
        script.extend(main);
    }
    let after_script = get("after_script", &g.after_script)
        .map(|v| script_lines(&v))
        .unwrap_or_default();

    let image = match get("image", &g.image) {
        None | Some(Yaml::Null) => None,
        Some(v) => Some(image(&v).map_err(invalid)?),
    };
    let services = match get("services", &g.services) {
        Some(Yaml::Sequence(s)) => s
            .iter()
            .map(service)
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?,
        _ => Vec::new(),
    };
    let tags = match get("tags", &g.tags) {
        Some(Yaml::Sequence(s)) => s.iter().filter_map(scalar_string).collect(),
        _ => Vec::new(),
    };
    let timeout = match get("timeout", &g.timeout) {
        None | Some(Yaml::Null) => None,
        Some(v) => Some(
            scalar_string(&v)
                .and_then(|s| parse_duration(&s))
                .ok_or_else(|| invalid(format!("invalid timeout {v:?}")))?,
        ),
    };
    let mut vars = if webide {
        Vec::new()
    } else {
        g.variables.clone()
    };
    if let Some(v) = spec.get("variables") {
        for var in variables(v) {
            vars.retain(|x| x.key != var.key);
            vars.push(var);
        }
    }
    let stage = if webide {
        "terminal".to_owned()
    } else {
        spec.get("stage")
            .and_then(scalar_string)
            .unwrap_or_else(|| "test".to_owned())
    };
    Ok(JobDef {
        name: name.to_owned(),
        stage,
        tags,
        image,
        services,
        script: if run.is_some() && script.is_empty() {
            Vec::new()
        } else {
            script
        },
        after_script,
        run,
        variables: vars,
        timeout,
        webide,
        raw_payload: None,
    })
}

/// GitLab durations: `3600`, `"90 minutes"`, `"1h 30m"`, `"2 hours 5 seconds"`.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let mut total = 0u64;
    let mut num: Option<u64> = None;
    let mut rest = s;
    let mut seen = false;
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            break;
        }
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            num = Some(rest[..digits].parse().ok()?);
            rest = &rest[digits..];
            continue;
        }
        let word_len = rest.len() - rest.trim_start_matches(|c: char| c.is_alphabetic()).len();
        if word_len == 0 {
            return None;
        }
        let unit = match &rest[..word_len] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86400,
            "w" | "week" | "weeks" => 604_800,
            "and" => {
                rest = &rest[word_len..];
                continue;
            }
            _ => return None,
        };
        total += num.take()? * unit;
        seen = true;
        rest = &rest[word_len..];
    }
    if num.is_some() || !seen {
        return None;
    }
    Some(total)
}

fn scalar_string(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A script: a string or a (nested) list of strings.
fn script_lines(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::Sequence(s) => s.iter().flat_map(script_lines).collect(),
        other => scalar_string(other).into_iter().collect(),
    }
}

fn string_list(v: &Yaml) -> Option<Vec<String>> {
    match v {
        Yaml::Null => None,
        Yaml::Sequence(s) => Some(s.iter().filter_map(scalar_string).collect()),
        other => scalar_string(other).map(|s| vec![s]),
    }
}

/// `variables:` → job variables. Values are strings or
/// `{value, description, expand, masked, file}` (`masked`/`file` are a
/// termgate extension for tests).
fn variables(v: &Yaml) -> Vec<JobVariable> {
    let Yaml::Mapping(m) = v else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, v)| {
            let key = scalar_string(k)?;
            let mut var = JobVariable {
                key,
                public: Some(true),
                masked: Some(false),
                ..JobVariable::default()
            };
            match v {
                Yaml::Mapping(o) => {
                    var.value = o.get("value").and_then(scalar_string).unwrap_or_default();
                    if o.get("masked").and_then(Yaml::as_bool) == Some(true) {
                        var.masked = Some(true);
                        var.public = Some(false);
                    }
                    if o.get("file").and_then(Yaml::as_bool) == Some(true) {
                        var.file = Some(true);
                    }
                    if o.get("expand").and_then(Yaml::as_bool) == Some(false) {
                        var.raw = Some(true);
                    }
                }
                other => var.value = scalar_string(other).unwrap_or_default(),
            }
            Some(var)
        })
        .collect()
}

fn yaml_to_json(v: &Yaml) -> Result<serde_json::Value, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
}

fn executor_opts(m: &Mapping) -> Result<ExecutorOpts, String> {
    let mut opts = ExecutorOpts::default();
    if let Some(d) = m.get("docker") {
        opts.docker = Some(
            serde_json::from_value::<DockerExecutorOpts>(yaml_to_json(d)?)
                .map_err(|e| format!("docker options: {e}"))?,
        );
    }
    if let Some(k) = m.get("kubernetes") {
        opts.kubernetes = Some(
            serde_json::from_value::<KubernetesExecutorOpts>(yaml_to_json(k)?)
                .map_err(|e| format!("kubernetes options: {e}"))?,
        );
    }
    Ok(opts)
}

fn ports(v: Option<&Yaml>) -> Vec<Port> {
    let Some(Yaml::Sequence(s)) = v else {
        return Vec::new();
    };
    s.iter()
        .filter_map(|p| match p {
            Yaml::Number(n) => Some(Port {
                number: u16::try_from(n.as_u64()?).ok()?,
                ..Port::default()
            }),
            Yaml::Mapping(m) => Some(Port {
                number: u16::try_from(m.get("number")?.as_u64()?).ok()?,
                protocol: m.get("protocol").and_then(scalar_string),
                name: m.get("name").and_then(scalar_string),
            }),
            _ => None,
        })
        .collect()
}

fn image(v: &Yaml) -> Result<Image, String> {
    match v {
        Yaml::Mapping(m) => Ok(Image {
            name: m
                .get("name")
                .and_then(scalar_string)
                .ok_or("image without name")?,
            entrypoint: m.get("entrypoint").and_then(string_list),
            executor_opts: executor_opts(m)?,
            ports: ports(m.get("ports")),
            pull_policy: m.get("pull_policy").and_then(string_list),
        }),
        other => Ok(Image {
            name: scalar_string(other).ok_or("invalid image")?,
            ..Image::default()
        }),
    }
}

fn service(v: &Yaml) -> Result<Service, String> {
    let base = image(v)?;
    let mut s = Service {
        name: base.name,
        entrypoint: base.entrypoint,
        executor_opts: base.executor_opts,
        ports: base.ports,
        pull_policy: base.pull_policy,
        ..Service::default()
    };
    if let Yaml::Mapping(m) = v {
        s.alias = m.get("alias").and_then(scalar_string);
        s.command = m.get("command").and_then(string_list);
        s.variables = m
            .get("variables")
            .map(|v| {
                variables(v)
                    .into_iter()
                    .map(|var| JobVariable {
                        key: var.key,
                        value: var.value,
                        ..JobVariable::default()
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(s)
}

/// Serialise as GitLab does for `run`: it comes out of a PostgreSQL `jsonb`
/// column, whose objects order keys by length, then bytewise.
fn jsonb_string(v: &Yaml) -> String {
    let mut out = String::new();
    write_jsonb(v, &mut out);
    out
}

fn write_jsonb(v: &Yaml, out: &mut String) {
    match v {
        Yaml::Mapping(m) => {
            let mut entries: Vec<(String, &Yaml)> = m
                .iter()
                .filter_map(|(k, v)| scalar_string(k).map(|k| (k, v)))
                .collect();
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                write_jsonb(v, out);
            }
            out.push('}');
        }
        Yaml::Sequence(s) => {
            out.push('[');
            for (i, v) in s.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_jsonb(v, out);
            }
            out.push(']');
        }
        Yaml::Tagged(t) => write_jsonb(&t.value, out),
        other => out.push_str(
            &serde_json::to_value(other)
                .unwrap_or(serde_json::Value::Null)
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{build_response, tests::ctx};
    use std::path::PathBuf;
    use termgate::api::StepWhen;

    /// The repo's `tests/fixtures/gitlab/job-request-yamls`.
    fn fixtures_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/gitlab/job-request-yamls")
    }

    /// Upstream `spec/requests/api/ci/runner/yamls/*.yml`: every top-level
    /// key of `request_response` must be in the payload, exactly equal.
    #[test]
    fn conformance_with_rails_yamls() {
        let mut n = 0;
        let mut entries: Vec<_> = std::fs::read_dir(fixtures_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yml"))
            .collect();
        entries.sort();
        for path in entries {
            let text = std::fs::read_to_string(&path).unwrap();
            let doc: Yaml = serde_norway::from_str(&text).unwrap();
            let ci = doc.get("gitlab_ci").unwrap().as_mapping().unwrap();
            let expected = serde_json::to_value(doc.get("request_response").unwrap()).unwrap();
            let jobs = jobs_from_mapping(ci, None).unwrap();
            assert_eq!(jobs.len(), 1, "{}", path.display());
            let got = serde_json::to_value(build_response(&jobs[0], &ctx())).unwrap();
            for (k, v) in expected.as_object().unwrap() {
                assert_eq!(got.get(k), Some(v), "{}: key {k}", path.display());
            }
            n += 1;
        }
        assert_eq!(n, 12);
    }

    #[test]
    fn regular_ci_file_with_globals() {
        let text = r#"
stages: [build, test]
variables:
  GLOBAL: g
  OVER: global
default:
  image: ruby:3.3
  before_script: ["echo before"]
.hidden:
  script: nope
build:
  stage: build
  script: ["make", ["make install"]]
  after_script: cleanup
  timeout: 1h 30m
  variables:
    OVER: job
    SECRET: {value: s3cr3t, masked: true}
    RAW: {value: "$x", expand: false, description: d}
test:
  image: {name: alpine, entrypoint: [""], pull_policy: if-not-present, ports: [80]}
  services:
    - name: postgres:16
      alias: db
      command: ["postgres", "-c", "fsync=off"]
      variables: {POSTGRES_PASSWORD: x}
  tags: [a, b]
  script: true
deploy:
  trigger: other/project
"#;
        let jobs = parse_ci_yaml(text, None).unwrap();
        let names: Vec<_> = jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, vec!["build", "test"]);
        let b = build_response(&jobs[0], &ctx());
        assert_eq!(
            b.steps[0].script,
            vec!["echo before", "make", "make install"]
        );
        assert_eq!(b.steps[0].timeout, Some(5400));
        assert_eq!(b.runner_info.timeout, Some(5400));
        assert_eq!(b.steps[1].name, "after_script");
        assert_eq!(b.steps[1].when, StepWhen::Always);
        assert!(b.steps[1].allow_failure);
        assert_eq!(b.image.as_ref().unwrap().name, "ruby:3.3");
        assert_eq!(b.variable("GLOBAL"), Some("g"));
        assert_eq!(b.variable("OVER"), Some("job"));
        let s = b.variables.iter().find(|v| v.key == "SECRET").unwrap();
        assert_eq!((s.public, s.masked), (Some(false), Some(true)));
        let r = b.variables.iter().find(|v| v.key == "RAW").unwrap();
        assert_eq!((r.value.as_str(), r.raw), ("$x", Some(true)));
        assert_eq!(b.variable("CI_JOB_STAGE"), Some("build"));
        assert_eq!(b.variable("CI_PIPELINE_SOURCE"), Some("push"));

        let t = build_response(&jobs[1], &ctx());
        let img = t.image.unwrap();
        assert_eq!(img.entrypoint, Some(vec![String::new()]));
        assert_eq!(img.pull_policy, Some(vec!["if-not-present".to_string()]));
        assert_eq!(img.ports[0].number, 80);
        assert_eq!(t.services[0].alias.as_deref(), Some("db"));
        assert_eq!(t.services[0].variables[0].key, "POSTGRES_PASSWORD");
        assert_eq!(t.steps[0].script, vec!["echo before", "true"]);
        assert_eq!(jobs[1].tags, vec!["a", "b"]);

        let only = parse_ci_yaml(text, Some("test")).unwrap();
        assert_eq!(only.len(), 1);
        assert!(parse_ci_yaml(text, Some("nope")).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Some(3600));
        assert_eq!(parse_duration("1h 30m"), Some(5400));
        assert_eq!(parse_duration("2 hours and 5 seconds"), Some(7205));
        assert_eq!(parse_duration("10 minutes"), Some(600));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5"), Some(5));
        assert_eq!(parse_duration("5 5"), None);
    }
}
