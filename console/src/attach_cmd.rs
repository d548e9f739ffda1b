//! `termgate attach RUNNER SESSION|JOB_ID [--observe|--join|--shell]`: find
//! the runner in console.toml and the session in its `/sessions`, ask for a
//! reason when join or shell has none, attach on this terminal, and print
//! how it ended on a line of its own.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};

use crate::attach::{attach, resolve, AttachRequest};
use crate::cli::AttachArgs;
use crate::config::ConsoleConfig;
use crate::operator_client::OperatorEndpoint;

/// console.toml (the token is there).
pub fn load_config(args: &AttachArgs) -> Result<ConsoleConfig> {
    // The error names the file.
    Ok(ConsoleConfig::load(&args.config.path)?)
}

/// Ask for the reason of a join or shell on `out`, read it from `input`;
/// an empty answer is refused.
pub fn ask_reason(
    input: &mut impl BufRead,
    out: &mut impl Write,
    req: &AttachRequest,
) -> Result<String> {
    let what = match req.mode {
        termgate::operator::Mode::Join => "joining",
        _ => "a shell in",
    };
    write!(
        out,
        "Reason for {what} job {} on {} (the runner audits it): ",
        req.job_id, req.runner
    )?;
    out.flush()?;
    let mut line = String::new();
    input.read_line(&mut line).context("reading the reason")?;
    let reason = line.trim();
    if reason.is_empty() {
        bail!("a reason is required for --join and --shell (the runner audits it); give one, or --reason TEXT");
    }
    Ok(reason.to_string())
}

/// Run the command; `cfg` is [`load_config`]'s.
pub fn run(args: AttachArgs, cfg: &ConsoleConfig) -> Result<()> {
    let entry = cfg.runner(&args.runner, &args.config.path)?;
    let endpoint = OperatorEndpoint::from_entry(entry, args.insecure)?;
    let detach = args.detach_key.or(cfg.detach_key).unwrap_or_default();
    let mode = args.mode();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let list = rt.block_on(endpoint.sessions())?;
    let session = resolve::resolve(&args.runner, &list, &args.session)?;
    let mut req = AttachRequest {
        runner: args.runner.clone(),
        session: session.id.clone(),
        job_id: session.job_id,
        mode,
        reason: args
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string),
    };
    if mode.needs_reason() && req.reason.is_none() {
        if !std::io::stdin().is_terminal() {
            bail!(
                "--{} needs a reason (the runner audits it): pass --reason TEXT",
                mode.as_str()
            );
        }
        let reason = ask_reason(&mut std::io::stdin().lock(), &mut std::io::stderr(), &req)?;
        req.reason = Some(reason);
    }
    let ended = rt.block_on(attach(&endpoint, &req, detach));
    // Do not wait for the keyboard reader or a stuck close.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    let end = ended?;
    println!("{}", end.summary());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use termgate::operator::Mode;

    fn req(mode: Mode) -> AttachRequest {
        AttachRequest {
            runner: "prm-5".into(),
            session: "9f1c".into(),
            job_id: 4711,
            mode,
            reason: None,
        }
    }

    #[test]
    fn the_reason_is_asked_and_empty_is_refused() {
        let mut out = Vec::new();
        let r = ask_reason(
            &mut &b"  disk full on /builds \n"[..],
            &mut out,
            &req(Mode::Shell),
        );
        assert_eq!(r.unwrap(), "disk full on /builds");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Reason for a shell in job 4711 on prm-5 (the runner audits it): "
        );
        for empty in [&b"\n"[..], b"   \n", b""] {
            let e = ask_reason(&mut &empty[..], &mut Vec::new(), &req(Mode::Join)).unwrap_err();
            assert!(e.to_string().starts_with("a reason is required"), "{e}");
        }
    }

    #[test]
    fn a_runner_without_operator_access_is_an_error_before_the_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("console.toml");
        std::fs::write(
            &config,
            "[[runners]]\nname = \"a\"\nmetrics_url = \"a:1\"\n[[runners]]\nname = \"b\"\nmetrics_url = \"b:1\"\n",
        )
        .unwrap();
        let args = |runner: &str| AttachArgs {
            config: crate::cli::ConsoleFile {
                path: config.clone(),
            },
            runner: runner.into(),
            session: "1".into(),
            observe: false,
            join: false,
            shell: false,
            reason: None,
            insecure: false,
            detach_key: None,
        };
        let cfg = load_config(&args("a")).unwrap();
        let e = run(args("prm-5"), &cfg).unwrap_err().to_string();
        assert!(
            e.contains("prm-5") && e.contains('a') && e.contains('b'),
            "{e}"
        );
        // No session_url: the operator client says what is missing.
        let e = run(args("a"), &cfg).unwrap_err().to_string();
        assert!(e.contains("session_url"), "{e}");
        let missing = AttachArgs {
            config: crate::cli::ConsoleFile {
                path: dir.path().join("nope.toml"),
            },
            ..args("a")
        };
        assert!(load_config(&missing)
            .unwrap_err()
            .to_string()
            .contains("nope.toml"));
    }
}
