//! `termgate trust RUNNER [--yes] --config console.toml`: fetch the
//! certificate the runner's session server presents, show its SHA-256, ask,
//! and store `fingerprint = "sha256:…"` in that runner's `[[runners]]`
//! table, keeping the file's comments and other keys (an atomic write).

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use termgate::operator::{format_fingerprint, parse_fingerprint};

use crate::cli::TrustArgs;
use crate::config::ConsoleConfig;
use crate::operator_client::fetch_fingerprint;

pub fn run(args: TrustArgs) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    run_with(&args, &mut stdin.lock(), &mut std::io::stdout())
}

/// [`run`] with the answer read from `input` and everything written to `out`.
pub fn run_with(
    args: &TrustArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let path = &args.config.path;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg = ConsoleConfig::parse(&text, &path.display().to_string())?;
    let entry = cfg.runner(&args.runner, path)?;
    let url = entry.session_url.as_deref().ok_or_else(|| {
        anyhow!(
            "runner {} has no session_url in {}: add session_url = \"https://HOST:PORT\" (the \
             runner's operator_listen_address, or its [session_server] listen_address) to its \
             [[runners]] table",
            entry.name,
            path.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let presented = runtime
        .block_on(fetch_fingerprint(url))
        .map_err(|e| anyhow!("runner {} is not reachable: {e}", entry.name))?;
    let new = format_fingerprint(&presented);
    writeln!(
        out,
        "{} at {url} presents the certificate\n  {new}",
        entry.name
    )?;
    match entry.fingerprint.as_deref() {
        None => {}
        Some(old) => match parse_fingerprint(old) {
            Some(pinned) if pinned == presented => {
                writeln!(
                    out,
                    "Already trusted: {} pins this certificate; nothing to change.",
                    path.display()
                )?;
                return Ok(());
            }
            pinned => {
                let pinned = pinned.map_or_else(|| format!("{old:?}"), |p| format_fingerprint(&p));
                writeln!(
                    out,
                    "The certificate of {} CHANGED:\n  pinned    {pinned}\n  presented {new}\n\
                     Trust it only if you expected this (the runner's certificate was \
                     regenerated or replaced): compare with `termgate-runner doctor` on the runner.",
                    entry.name
                )?;
            }
        },
    }
    if !args.yes {
        write!(out, "Trust this certificate? [y/N] ")?;
        out.flush()?;
        let mut answer = String::new();
        input.read_line(&mut answer).context("reading the answer")?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            bail!("not trusted: {} is unchanged", path.display());
        }
    }
    let updated = set_fingerprint(&text, &entry.name, &new)?;
    // Never write a file the console would then refuse.
    let check = ConsoleConfig::parse(&updated, &path.display().to_string())
        .context("the updated console.toml does not load (nothing written)")?;
    if check.runner(&entry.name, path)?.fingerprint.as_deref() != Some(new.as_str()) {
        bail!(
            "could not store the fingerprint in {} (nothing written)",
            path.display()
        );
    }
    write_atomic(path, updated.as_bytes())?;
    writeln!(
        out,
        "Stored fingerprint = \"{new}\" for {} in {}",
        entry.name,
        path.display()
    )?;
    Ok(())
}

/// `text` with `fingerprint = "<fingerprint>"` set in the `[[runners]]`
/// table (or inline table) whose `name` is `runner`; everything else, and
/// a comment after an existing fingerprint, is kept.
pub fn set_fingerprint(text: &str, runner: &str, fingerprint: &str) -> anyhow::Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().context("parsing console.toml")?;
    let named =
        |t: &dyn toml_edit::TableLike| t.get("name").and_then(|v| v.as_str()) == Some(runner);
    let mut found = false;
    match doc.get_mut("runners") {
        Some(toml_edit::Item::ArrayOfTables(tables)) => {
            for t in tables.iter_mut().filter(|t| named(&**t)) {
                set_value(t, fingerprint);
                found = true;
            }
        }
        Some(toml_edit::Item::Value(toml_edit::Value::Array(items))) => {
            for t in items.iter_mut().filter_map(|v| v.as_inline_table_mut()) {
                if named(t) {
                    set_value(t, fingerprint);
                    found = true;
                }
            }
        }
        _ => {}
    }
    if !found {
        bail!("no [[runners]] table named {runner:?} to store the fingerprint in");
    }
    Ok(doc.to_string())
}

fn set_value(t: &mut dyn toml_edit::TableLike, fingerprint: &str) {
    match t.get_mut("fingerprint").and_then(|i| i.as_value_mut()) {
        Some(v) => {
            let decor = v.decor().clone();
            *v = fingerprint.into();
            *v.decor_mut() = decor;
        }
        None => {
            t.insert("fingerprint", toml_edit::value(fingerprint));
        }
    }
}

/// Replace `path` (through a symlink) atomically, keeping its permissions.
fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    if let Ok(meta) = std::fs::metadata(&target) {
        tmp.as_file()
            .set_permissions(meta.permissions())
            .with_context(|| format!("setting the permissions of {}", tmp.path().display()))?;
    }
    tmp.persist(&target)
        .map_err(|e| anyhow!("replacing {}: {}", target.display(), e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# the fleet
interval = "2s"

[[runners]]
name = "prm-4"   # upstream
metrics_url = "10.0.0.4:9252"

[[runners]]
# on-call box
name = "prm-5"
metrics_url = "10.0.0.5:9252"
session_url = "https://10.0.0.5:8093"
fingerprint = "sha256:00" # pinned by trust
logs = []
"#;

    #[test]
    fn sets_the_one_runner_keeping_comments() {
        let fp = format_fingerprint(&[0xAB; 32]);
        let out = set_fingerprint(TEXT, "prm-5", &fp).unwrap();
        assert!(
            out.contains(&format!("fingerprint = \"{fp}\" # pinned by trust")),
            "{out}"
        );
        assert!(
            out.contains("# the fleet") && out.contains("# on-call box"),
            "{out}"
        );
        assert!(out.contains("name = \"prm-4\"   # upstream"), "{out}");
        let cfg = ConsoleConfig::parse(&out, "t").unwrap();
        assert_eq!(cfg.runners[0].fingerprint, None);
        assert_eq!(cfg.runners[1].fingerprint.as_deref(), Some(fp.as_str()));
        assert_eq!(cfg.runners[1].logs, Vec::<String>::new());

        // A runner without one gets the key added.
        let out = set_fingerprint(TEXT, "prm-4", &fp).unwrap();
        let cfg = ConsoleConfig::parse(&out, "t").unwrap();
        assert_eq!(cfg.runners[0].fingerprint.as_deref(), Some(fp.as_str()));

        let e = set_fingerprint(TEXT, "prm-9", &fp).unwrap_err();
        assert!(e.to_string().contains("prm-9"), "{e}");
    }

    #[test]
    fn inline_runner_tables_too() {
        let text = "runners = [{ name = \"a\", metrics_url = \"h:1\" }]\n";
        let out = set_fingerprint(text, "a", "sha256:AB").unwrap();
        assert!(out.contains("fingerprint = \"sha256:AB\""), "{out}");
    }
}
