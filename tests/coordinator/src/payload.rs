//! The `/jobs/request` 201 body GitLab would build for a queued job.

use termgate::api::{
    GitInfo, GitlabFeatures, JobInfo, JobResponse, JobVariable, RunnerInfo, Step, StepWhen,
};

use super::ci_yaml::{JobDef, DEFAULT_TIMEOUT};

/// Where a job runs: what the coordinator knows when it hands a job out.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    pub job_id: u64,
    pub token: String,
    pub pipeline_id: u64,
    /// `group/project`.
    pub project_path: String,
    /// `http://host:port` of the coordinator.
    pub server_url: String,
    /// The runner's `maximum_timeout` (0 = none).
    pub max_timeout: u64,
    pub session_url: Option<String>,
}

/// Build the `/jobs/request` 201 body for a job.
pub fn build_response(def: &JobDef, ctx: &BuildContext) -> JobResponse {
    let mut timeout = def.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if ctx.max_timeout > 0 {
        timeout = timeout.min(ctx.max_timeout);
    }
    let host = ctx
        .server_url
        .split_once("://")
        .map(|(_, h)| h)
        .unwrap_or(&ctx.server_url)
        .trim_end_matches('/')
        .to_owned();
    let scheme = ctx.server_url.split_once("://").map_or("http", |(s, _)| s);
    let repo_url = format!(
        "{scheme}://gitlab-ci-token:{}@{host}/{}.git",
        ctx.token, ctx.project_path
    );
    let project_name = ctx
        .project_path
        .rsplit('/')
        .next()
        .unwrap_or(&ctx.project_path)
        .to_owned();
    let namespace = ctx
        .project_path
        .rsplit_once('/')
        .map_or("", |(n, _)| n)
        .to_owned();
    let sha = fake_sha(&ctx.project_path);
    let project_url = format!(
        "{}/{}",
        ctx.server_url.trim_end_matches('/'),
        ctx.project_path
    );
    let source = if def.webide { "webide" } else { "push" };

    let public = |k: &str, v: String| JobVariable {
        key: k.to_owned(),
        value: v,
        public: Some(true),
        masked: Some(false),
        ..JobVariable::default()
    };
    let mut variables = vec![
        public("CI_PIPELINE_ID", ctx.pipeline_id.to_string()),
        public(
            "CI_PIPELINE_URL",
            format!("{project_url}/-/pipelines/{}", ctx.pipeline_id),
        ),
        public("CI_JOB_ID", ctx.job_id.to_string()),
        public("CI_JOB_URL", format!("{project_url}/-/jobs/{}", ctx.job_id)),
        JobVariable {
            key: "CI_JOB_TOKEN".into(),
            value: ctx.token.clone(),
            public: Some(false),
            masked: Some(true),
            ..JobVariable::default()
        },
        public("CI_JOB_NAME", def.name.clone()),
        public("CI_JOB_STAGE", def.stage.clone()),
        public("CI_PIPELINE_SOURCE", source.into()),
        public("CI", "true".into()),
        public("GITLAB_CI", "true".into()),
        public("CI_SERVER_URL", ctx.server_url.clone()),
        public(
            "CI_SERVER_HOST",
            host.split(':').next().unwrap_or("").into(),
        ),
        public("CI_PROJECT_ID", "1".into()),
        public("CI_PROJECT_NAME", project_name.clone()),
        public("CI_PROJECT_PATH", ctx.project_path.clone()),
        public("CI_PROJECT_NAMESPACE", namespace),
        public("CI_PROJECT_URL", project_url),
        JobVariable {
            key: "CI_REPOSITORY_URL".into(),
            value: repo_url.clone(),
            public: Some(false),
            masked: Some(false),
            ..JobVariable::default()
        },
        public("CI_COMMIT_SHA", sha.clone()),
        public("CI_COMMIT_REF_NAME", "main".into()),
        public("CI_COMMIT_BRANCH", "main".into()),
        public("CI_DEFAULT_BRANCH", "main".into()),
    ];
    variables.extend(def.variables.iter().cloned());

    let mut steps = Vec::new();
    if !def.script.is_empty() {
        steps.push(Step {
            name: "script".into(),
            script: def.script.clone(),
            timeout: Some(timeout),
            when: StepWhen::OnSuccess,
            allow_failure: false,
        });
    }
    if !def.after_script.is_empty() {
        steps.push(Step {
            name: "after_script".into(),
            script: def.after_script.clone(),
            timeout: Some(timeout),
            when: StepWhen::Always,
            allow_failure: true,
        });
    }
    JobResponse {
        id: ctx.job_id,
        token: ctx.token.clone(),
        allow_git_fetch: true,
        job_info: JobInfo {
            id: ctx.job_id,
            name: def.name.clone(),
            stage: def.stage.clone(),
            pipeline_id: ctx.pipeline_id,
            project_id: 1,
            project_name,
            project_full_path: ctx.project_path.clone(),
            namespace_id: Some(1),
            root_namespace_id: Some(1),
            organization_id: Some(1),
            user_id: Some(1),
            time_in_queue_seconds: None,
            project_jobs_running_on_instance_runners_count: Some("0".into()),
            queue_size: Some(0),
            queue_depth: Some(0),
        },
        git_info: GitInfo {
            repo_url,
            git_ref: "main".into(),
            sha: sha.clone(),
            before_sha: if def.webide { "0".repeat(40) } else { sha },
            ref_type: "branch".into(),
            refspecs: vec![
                format!("+refs/pipelines/{0}:refs/pipelines/{0}", ctx.pipeline_id),
                "+refs/heads/main:refs/remotes/origin/main".into(),
            ],
            depth: Some(20),
            repo_object_format: Some("sha1".into()),
            protected: Some(true),
        },
        runner_info: RunnerInfo {
            timeout: Some(timeout),
            runner_session_url: ctx.session_url.clone(),
        },
        variables,
        steps,
        hooks: Vec::new(),
        image: def.image.clone(),
        services: def.services.clone(),
        artifacts: Vec::new(),
        cache: Vec::new(),
        credentials: Vec::new(),
        dependencies: Vec::new(),
        features: GitlabFeatures {
            trace_sections: true,
            token_mask_prefixes: vec!["glcbt-".into(), "glrt-".into()],
            failure_reasons: [
                "unknown_failure",
                "script_failure",
                "api_failure",
                "stuck_or_timeout_failure",
                "runner_system_failure",
                "missing_dependency_failure",
                "runner_unsupported",
                "job_execution_timeout",
                "archived_failure",
                "unmet_prerequisites",
                "scheduler_failure",
                "data_integrity_failure",
                "runner_configuration_error",
                "image_pull_failure",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        },
        run: def.run.clone(),
        secrets: None,
        inputs: None,
        policy_options: None,
    }
}

/// A stable, made-up commit SHA for a project.
fn fake_sha(project: &str) -> String {
    let a = crc32fast::hash(project.as_bytes());
    let b = crc32fast::hash(format!("{project}#sha").as_bytes());
    format!("{a:08x}{b:08x}{a:08x}{b:08x}{a:08x}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ci_yaml::parse_ci_yaml;

    pub(crate) fn ctx() -> BuildContext {
        BuildContext {
            job_id: 7,
            token: "glcbt-abc".into(),
            pipeline_id: 3,
            project_path: "acme/webapp".into(),
            server_url: "http://127.0.0.1:8080".into(),
            max_timeout: 0,
            session_url: None,
        }
    }

    #[test]
    fn webide_terminal_config() {
        let text = "terminal:\n  image: alpine:3.19\n  before_script: [ls]\n  variables: {KEY: value}\n  tags: [webide]\n";
        let jobs = parse_ci_yaml(text, None).unwrap();
        assert_eq!(jobs.len(), 1);
        let j = &jobs[0];
        assert!(j.webide);
        assert_eq!(j.name, "terminal");
        assert_eq!(j.stage, "terminal");
        assert_eq!(j.tags, vec!["webide"]);
        let r = build_response(j, &ctx());
        assert_eq!(r.steps.len(), 1);
        assert_eq!(r.steps[0].script, vec!["ls", "sleep 60"]);
        assert_eq!(r.variable("CI_PIPELINE_SOURCE"), Some("webide"));
        assert_eq!(r.variable("KEY"), Some("value"));
        assert_eq!(r.git_info.before_sha, "0".repeat(40));
        assert_eq!(r.image.unwrap().name, "alpine:3.19");
        let tok = r
            .variables
            .iter()
            .find(|v| v.key == "CI_JOB_TOKEN")
            .unwrap();
        assert_eq!((tok.public, tok.masked), (Some(false), Some(true)));
        assert_eq!(
            r.git_info.repo_url,
            "http://gitlab-ci-token:glcbt-abc@127.0.0.1:8080/acme/webapp.git"
        );
    }

    #[test]
    fn max_timeout_caps() {
        let jobs = parse_ci_yaml("j: {script: x, timeout: 7200}", None).unwrap();
        let mut c = ctx();
        c.max_timeout = 600;
        assert_eq!(build_response(&jobs[0], &c).runner_info.timeout, Some(600));
    }
}
