//! What this runner tells the coordinator about itself (`info` of register,
//! verify and job requests): name, version, platform, executor and features.

/// The `info` block for a runner with this executor and shell.
pub fn version_info(executor: &str, shell: &str) -> termgate::api::VersionInfo {
    let mut info = termgate::api::VersionInfo {
        name: "termgate-runner".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        revision: option_env!("TERMGATE_REVISION").unwrap_or("unknown").into(),
        platform: std::env::consts::OS.into(),
        architecture: match std::env::consts::ARCH {
            "x86_64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            a => a.into(),
        },
        executor: executor.into(),
        shell: shell.into(),
        ..Default::default()
    };
    let f = &mut info.features;
    f.variables = true;
    f.artifacts = false;
    f.masking = true;
    f.raw_variables = true;
    f.multi_build_steps = true;
    f.trace_reset = true;
    f.trace_checksum = true;
    f.trace_size = true;
    f.cancelable = true;
    f.return_exit_code = true;
    f.two_phase_job_commit = true;
    f.image = executor == "docker";
    // PowerShell has no interactive terminal (as upstream).
    let terminal = !matches!(shell, "pwsh" | "powershell");
    f.session = terminal;
    f.terminal = terminal;
    f.services = false;
    info
}
