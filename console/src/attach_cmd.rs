//! `termgate attach RUNNER SESSION|JOB_ID [--observe|--join|--shell]`: find
//! the runner in console.toml and the session in its `/sessions`, ask for a
//! reason when join or shell has none, attach on this terminal, and print
//! how it ended on a line of its own.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::attach::{attach, resolve, AttachRequest};
use crate::cli::AttachArgs;
use crate::config::{ConsoleConfig, RunnerEntry};
use crate::operator_client::OperatorEndpoint;

/// console.toml, which attach cannot do without (the token is there).
pub fn load_config(args: &AttachArgs) -> Result<ConsoleConfig> {
    let Some(path) = args.config.as_deref() else {
        bail!(
            "termgate attach needs console.toml with the runner's session_url and operator token: pass --config FILE or set TERMGATE_CONSOLE_CONFIG"
        );
    };
    ConsoleConfig::load(path).with_context(|| format!("loading {}", path.display()))
}

/// The runner's entry, or the names there are.
pub fn find_runner<'a>(
    cfg: &'a ConsoleConfig,
    name: &str,
    path: Option<&Path>,
) -> Result<&'a RunnerEntry> {
    if let Some(e) = cfg.runners.iter().find(|r| r.name == name) {
        return Ok(e);
    }
    let names: Vec<&str> = cfg.runners.iter().map(|r| r.name.as_str()).collect();
    let file = path.map_or("console.toml".into(), |p| p.display().to_string());
    if names.is_empty() {
        bail!("no runner named {name:?} in {file} (it has no [[runners]])");
    }
    bail!(
        "no runner named {name:?} in {file} (runners: {})",
        names.join(", ")
    )
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
    let entry = find_runner(cfg, &args.runner, args.config.as_deref())?;
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
    fn config_and_runner_are_explained() {
        let args = AttachArgs {
            config: None,
            runner: "prm-5".into(),
            session: "1".into(),
            observe: false,
            join: false,
            shell: false,
            reason: None,
            insecure: false,
            detach_key: None,
        };
        let e = load_config(&args).unwrap_err().to_string();
        assert!(e.contains("--config"), "{e}");
        let cfg = ConsoleConfig::parse(
            "[[runners]]\nname = \"a\"\nmetrics_url = \"a:1\"\n[[runners]]\nname = \"b\"\nmetrics_url = \"b:1\"\n",
            "c",
        )
        .unwrap();
        let e = find_runner(&cfg, "prm-5", Some(Path::new("c.toml")))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "no runner named \"prm-5\" in c.toml (runners: a, b)");
        assert_eq!(find_runner(&cfg, "b", None).unwrap().name, "b");
        // A runner without a session_url: an error (the operator client
        // says what is missing), before anything touches the terminal.
        let args = AttachArgs {
            runner: "a".into(),
            ..args
        };
        assert!(run(args, &cfg).is_err());
    }
}
