//! `termgate-runner operator add|list|remove`: the operators file named by
//! `[session_server] operators_file`.
//!
//! `add` prints the new token once, alone on stdout (so that
//! `TOKEN=$(termgate-runner operator add …)` works), and a note on stderr;
//! only the token's SHA-256 is stored. Without an `operators_file`, `add`
//! sets one: `operators.toml` beside config.toml, written as an absolute
//! path (the runner resolves a relative path against its working
//! directory, not the config's). A running runner sees every change within
//! a second ([`crate::session::operators::Authenticator`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use termgate::operator::Role;

use crate::cli::{ConfigArg, OperatorAddArgs, OperatorCommand, OperatorRemoveArgs};
use crate::config::{self, Config, SessionServer};
use crate::session::operators::file::{self, OperatorEntry};
use crate::session::operators::new_token;

/// Name of the file `add` creates when the config names none.
pub const DEFAULT_FILE_NAME: &str = "operators.toml";
/// Hex digits of a hash `list` shows.
const SHOWN_HASH_DIGITS: usize = 8;

pub fn run(cmd: OperatorCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut note = std::io::stderr().lock();
    match cmd {
        OperatorCommand::Add(a) => add(&a, &mut out, &mut note),
        OperatorCommand::List(a) => list(&a, &mut out),
        OperatorCommand::Remove(a) => remove(&a, &mut note),
    }
}

fn load_config(path: &Path) -> Result<Config> {
    let loaded = config::load(path).map_err(|e| anyhow!("{e}"))?;
    Ok(loaded.config)
}

fn session_server<'c>(cfg: &'c Config, path: &Path) -> Result<&'c SessionServer> {
    cfg.session_server.as_ref().ok_or_else(|| {
        anyhow!(
            "{} has no [session_server] section: operators use the session server; \
             add [session_server] with a listen_address first",
            path.display()
        )
    })
}

/// Adds an operator; the token goes to `out`, everything else to `note`.
pub fn add(args: &OperatorAddArgs, out: &mut dyn Write, note: &mut dyn Write) -> Result<()> {
    let config_path = args.config.path();
    file::validate_name(&args.name).map_err(|e| anyhow!(e))?;
    let role = Role::parse(&args.role).ok_or_else(|| {
        anyhow!(
            "unsupported role {:?}; allowed values: observe, control",
            args.role
        )
    })?;
    let cfg = load_config(&config_path)?;
    let ss = session_server(&cfg, &config_path)?;
    let (path, set_in_config) = match &ss.operators_file {
        Some(p) => (p.clone(), false),
        None => (default_operators_file(&config_path)?, true),
    };
    let mut entries = file::load(&path)?.unwrap_or_default();
    if entries.iter().any(|e| e.name == args.name) {
        bail!(
            "operator {:?} already exists in {}; to give it a new token, remove it first \
             (termgate-runner operator remove {})",
            args.name,
            path.display(),
            args.name
        );
    }
    if set_in_config {
        set_operators_file(&config_path, &path)?;
        writeln!(
            note,
            "Set [session_server] operators_file = {:?} in {}.",
            path.display().to_string(),
            config_path.display()
        )?;
    }
    let token = new_token();
    entries.push(OperatorEntry {
        name: args.name.clone(),
        role,
        token_sha256: crate::session::operators::hash_token(&token),
        created_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    });
    file::save(&path, &entries)?;
    writeln!(out, "{token}")?;
    writeln!(
        note,
        "Added operator {:?} ({}) to {}.\n\
         The token above is shown only this once and cannot be recovered: store it now \
         (e.g. in a file named by console.toml's operator_token_file).",
        args.name,
        role.as_str(),
        path.display()
    )?;
    if !ss.is_enabled() {
        writeln!(
            note,
            "Note: [session_server] has no listen_address, so the operator API is off."
        )?;
    }
    Ok(())
}

/// `operators.toml` beside the config, absolute.
fn default_operators_file(config_path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(config_path)
        .with_context(|| format!("resolving {}", config_path.display()))?;
    let dir = abs.parent().unwrap_or(Path::new("/"));
    Ok(dir.join(DEFAULT_FILE_NAME))
}

/// Sets `[session_server] operators_file` in the config file itself,
/// keeping its comments and layout (`toml_edit`), and saves it the way
/// every config write is saved ([`config::save_text`]).
fn set_operators_file(config_path: &Path, operators_file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("reading config {}", config_path.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("parsing config {}", config_path.display()))?;
    let value = operators_file
        .to_str()
        .ok_or_else(|| anyhow!("{} is not valid UTF-8", operators_file.display()))?;
    let table = doc
        .get_mut("session_server")
        .and_then(toml_edit::Item::as_table_like_mut)
        .ok_or_else(|| anyhow!("{} has no [session_server] table", config_path.display()))?;
    table.insert("operators_file", toml_edit::value(value));
    config::save_text(config_path, &doc.to_string()).map_err(|e| anyhow!("{e}"))
}

/// Name, role and when added; never more of a hash than a short prefix.
pub fn list(args: &ConfigArg, out: &mut dyn Write) -> Result<()> {
    let config_path = args.path();
    let cfg = load_config(&config_path)?;
    let ss = session_server(&cfg, &config_path)?;
    let Some(path) = &ss.operators_file else {
        writeln!(
            out,
            "No operators: [session_server] in {} has no operators_file.",
            config_path.display()
        )?;
        return Ok(());
    };
    let Some(entries) = file::load(path)? else {
        writeln!(out, "No operators: {} does not exist.", path.display())?;
        return Ok(());
    };
    if entries.is_empty() {
        writeln!(out, "No operators in {}.", path.display())?;
        return Ok(());
    }
    out.write_all(table(&entries).as_bytes())?;
    Ok(())
}

fn table(entries: &[OperatorEntry]) -> String {
    let name_w = entries
        .iter()
        .map(|e| e.name.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut s = format!(
        "{:<name_w$}  {:<7}  {:<20}  TOKEN\n",
        "NAME", "ROLE", "CREATED"
    );
    for e in entries {
        let prefix = e.token_sha256.get(..SHOWN_HASH_DIGITS).unwrap_or("");
        s.push_str(&format!(
            "{:<name_w$}  {:<7}  {:<20}  sha256:{prefix}…\n",
            e.name,
            e.role.as_str(),
            e.created_at.as_deref().unwrap_or("-"),
        ));
    }
    s
}

/// Removes an operator; an absent one is an error.
pub fn remove(args: &OperatorRemoveArgs, note: &mut dyn Write) -> Result<()> {
    let config_path = args.config.path();
    let cfg = load_config(&config_path)?;
    let ss = session_server(&cfg, &config_path)?;
    let Some(path) = &ss.operators_file else {
        bail!(
            "no operator named {:?}: [session_server] in {} has no operators_file",
            args.name,
            config_path.display()
        );
    };
    let mut entries = file::load(path)?.unwrap_or_default();
    let before = entries.len();
    entries.retain(|e| e.name != args.name);
    if entries.len() == before {
        bail!("no operator named {:?} in {}", args.name, path.display());
    }
    file::save(path, &entries)?;
    writeln!(
        note,
        "Removed operator {:?} from {}; a running runner refuses its token within a second.",
        args.name,
        path.display()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        dir: tempfile::TempDir,
        config: PathBuf,
    }

    fn case(text: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, text).unwrap();
        Case { dir, config }
    }

    fn cfg_arg(c: &Case) -> ConfigArg {
        ConfigArg {
            config: Some(c.config.clone()),
        }
    }

    fn add_one(c: &Case, name: &str, role: &str) -> Result<(String, String)> {
        let args = OperatorAddArgs {
            config: cfg_arg(c),
            name: name.into(),
            role: role.into(),
        };
        let (mut out, mut note) = (Vec::new(), Vec::new());
        add(&args, &mut out, &mut note)?;
        Ok((
            String::from_utf8(out).unwrap(),
            String::from_utf8(note).unwrap(),
        ))
    }

    const SS: &str = "# the runner\nconcurrent = 2 # two at once\n\n\
                      [session_server]\n  # public port\n  listen_address = \"127.0.0.1:8093\"\n";

    #[test]
    fn add_sets_an_absolute_operators_file_and_keeps_the_comments() {
        let c = case(SS);
        let (out, note) = add_one(&c, "alice", "control").unwrap();
        let token = out.trim_end();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(token.starts_with(termgate::operator::TOKEN_PREFIX), "{out}");
        assert!(!note.contains(token), "{note}");
        assert!(note.contains("shown only this once"), "{note}");
        let ops = c.dir.path().join(DEFAULT_FILE_NAME);
        assert!(
            note.contains("Set [session_server] operators_file"),
            "{note}"
        );

        let text = std::fs::read_to_string(&c.config).unwrap();
        assert!(
            text.starts_with("# the runner\nconcurrent = 2 # two at once\n"),
            "{text}"
        );
        assert!(text.contains("  # public port\n"), "{text}");
        assert!(
            text.contains(&format!("operators_file = {:?}", ops.display().to_string())),
            "{text}"
        );
        let cfg = config::load(&c.config).unwrap().config;
        assert_eq!(
            cfg.session_server.unwrap().operators_file,
            Some(ops.clone())
        );

        let entries = file::load(&ops).unwrap().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].role, Role::Control);
        assert_eq!(
            entries[0].token_sha256,
            crate::session::operators::hash_token(token)
        );

        // The second add uses the file the config now names.
        let (_, note) = add_one(&c, "bob", "observe").unwrap();
        assert!(!note.contains("Set [session_server]"), "{note}");
        assert_eq!(file::load(&ops).unwrap().unwrap().len(), 2);
    }

    #[test]
    fn clear_errors_and_nothing_changed() {
        let c = case("concurrent = 1\n");
        let e = add_one(&c, "alice", "control").unwrap_err().to_string();
        assert!(e.contains("no [session_server] section"), "{e}");
        assert!(!c.dir.path().join(DEFAULT_FILE_NAME).exists());

        let c = case(SS);
        add_one(&c, "alice", "control").unwrap();
        let before = std::fs::read_to_string(c.dir.path().join(DEFAULT_FILE_NAME)).unwrap();
        let e = add_one(&c, "alice", "observe").unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        let e = add_one(&c, "carol", "admin").unwrap_err().to_string();
        assert!(e.contains("unsupported role \"admin\""), "{e}");
        let e = add_one(&c, "no spaces", "observe").unwrap_err().to_string();
        assert!(e.contains("' '"), "{e}");
        let after = std::fs::read_to_string(c.dir.path().join(DEFAULT_FILE_NAME)).unwrap();
        assert_eq!(before, after);

        let e = remove(
            &OperatorRemoveArgs {
                config: cfg_arg(&c),
                name: "zed".into(),
            },
            &mut Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no operator named \"zed\""), "{e}");
    }

    #[test]
    fn an_unreadable_or_invalid_operators_file_is_reported() {
        // A directory cannot be read as a file.
        let c = case(SS);
        let text = format!(
            "{SS}  operators_file = {:?}\n",
            c.dir.path().display().to_string()
        );
        std::fs::write(&c.config, text).unwrap();
        let e = add_one(&c, "alice", "control").unwrap_err().to_string();
        assert!(e.contains("reading operators file"), "{e}");

        let ops = c.dir.path().join("bad.toml");
        std::fs::write(&ops, "[[operators]]\nname = 3\n").unwrap();
        let text = format!("{SS}  operators_file = {:?}\n", ops.display().to_string());
        std::fs::write(&c.config, text).unwrap();
        let mut out = Vec::new();
        let e = list(&cfg_arg(&c), &mut out).unwrap_err().to_string();
        assert!(e.contains("bad.toml:2"), "{e}");
    }

    #[test]
    fn list_shows_no_more_than_a_hash_prefix() {
        let c = case(SS);
        let mut out = Vec::new();
        list(&cfg_arg(&c), &mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("no operators_file"));

        let (token, _) = add_one(&c, "alice@example.com", "control").unwrap();
        add_one(&c, "bob", "observe").unwrap();
        let mut out = Vec::new();
        list(&cfg_arg(&c), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let hash = crate::session::operators::hash_token(token.trim());
        assert!(!text.contains(&hash), "{text}");
        assert!(text.contains(&format!("sha256:{}…", &hash[..8])), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("NAME               ROLE     CREATED"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("alice@example.com  control  20"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("bob                observe  20"),
            "{text}"
        );

        remove(
            &OperatorRemoveArgs {
                config: cfg_arg(&c),
                name: "alice@example.com".into(),
            },
            &mut Vec::new(),
        )
        .unwrap();
        let mut out = Vec::new();
        list(&cfg_arg(&c), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("alice") && text.contains("bob"), "{text}");
    }
}
