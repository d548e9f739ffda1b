//! Shell completions and man pages of both binaries, made from their clap
//! definitions (feature `clidocs`): `termgate completions bash|zsh|fish`,
//! `termgate man`, and the same for `termgate-runner`. Text in, text out:
//! the binaries print it.

/// The shells `completions` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl From<Shell> for clap_complete::Shell {
    fn from(s: Shell) -> Self {
        match s {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// The completion script of `cmd` (named after it) for `shell`.
pub fn completions(shell: Shell, mut cmd: clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(clap_complete::Shell::from(shell), &mut cmd, &name, &mut out);
    match shell {
        Shell::Bash => mend_bash(&String::from_utf8_lossy(&out), &name).into_bytes(),
        Shell::Zsh | Shell::Fish => out,
    }
}

/// clap_complete's bash script for a name with a hyphen
/// (`termgate-runner`) completes nothing after a subcommand (clap-rs/clap
/// issue 6421): its loop spells the state `termgate__runner__subcmd__run`
/// but the `case` arms `termgate__subcmd__runner__subcmd__run`. Respell the
/// arms as the loop does.
fn mend_bash(script: &str, bin: &str) -> String {
    if !bin.contains('-') {
        return script.to_string();
    }
    let wrong = bin.replace('-', "__subcmd__");
    let right = bin.replace('-', "__");
    let mut out = String::with_capacity(script.len());
    for line in script.split_inclusive('\n') {
        let label = line.trim();
        if label.starts_with(&wrong) && label.ends_with(')') && !label.contains(' ') {
            out.push_str(&line.replacen(&wrong, &right, 1));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Every visible subcommand below `cmd` (depth first, `help` left out),
/// after `cmd.build()`, so each has its full `bin_name`
/// (`termgate-runner operator add`).
pub fn subcommands(cmd: &clap::Command) -> Vec<clap::Command> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        out.push(sub.clone());
        out.extend(subcommands(sub));
    }
    out
}

/// One man page (section 1) for the whole command: NAME, SYNOPSIS,
/// DESCRIPTION and the global OPTIONS as clap_mangen writes them, the list
/// of SUBCOMMANDS, then COMMANDS: each subcommand's description, synopsis
/// and options, so that `man termgate-runner` shows every flag.
pub fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    use clap_mangen::roff::{bold, roman, Roff};

    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    let subs = subcommands(&cmd);
    if !subs.is_empty() {
        // Not clap_mangen's SUBCOMMANDS section: it refers to a page per
        // subcommand (`termgate-runner-run(1)`), and this page holds them all.
        let mut roff = Roff::new();
        roff.control("SH", ["SUBCOMMANDS"]);
        for sub in &subs {
            roff.control("TP", [] as [&str; 0]);
            roff.text([bold(
                sub.get_bin_name()
                    .unwrap_or_else(|| sub.get_name())
                    .to_string(),
            )]);
            if let Some(about) = sub.get_about() {
                roff.text([roman(about.to_string())]);
            }
        }
        roff.control("SH", ["COMMANDS"]);
        roff.to_writer(&mut out)?;
    }
    for sub in subs {
        let name = sub
            .get_bin_name()
            .unwrap_or_else(|| sub.get_name())
            .to_string();
        let mut roff = Roff::new();
        roff.control("SS", [name.as_str()]);
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            roff.text([roman(about.to_string())]);
            // The synopsis starts a paragraph of its own.
            roff.control("PP", [] as [&str; 0]);
        }
        roff.to_writer(&mut out)?;
        let page = clap_mangen::Man::new(sub.clone());
        let mut part = Vec::new();
        page.render_synopsis_section(&mut part)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            page.render_options_section(&mut part)?;
        }
        // The parts come with their own section headings (SYNOPSIS,
        // OPTIONS): under this subsection they would start new sections.
        for line in String::from_utf8_lossy(&part).lines() {
            if !line.starts_with(".SH") {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn cmd() -> Command {
        Command::new("tool")
            .version("1.2.3")
            .about("A tool")
            .arg(
                Arg::new("verbose")
                    .long("verbose")
                    .action(clap::ArgAction::SetTrue),
            )
            .subcommand(
                Command::new("run").about("Run it").arg(
                    Arg::new("listen")
                        .long("listen-address")
                        .help("Where to listen"),
                ),
            )
            .subcommand(Command::new("operator").about("Operators").subcommand(
                Command::new("add").arg(Arg::new("role").long("role").help("The role")),
            ))
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn subcommands_are_listed_with_their_full_names() {
        let mut c = cmd();
        c.build();
        let names: Vec<String> = subcommands(&c)
            .iter()
            .map(|s| s.get_bin_name().unwrap_or_default().to_string())
            .collect();
        assert_eq!(names, ["tool run", "tool operator", "tool operator add"]);
    }

    #[test]
    fn the_man_page_has_every_subcommand_and_flag() {
        let page = String::from_utf8(man_page(cmd()).unwrap()).unwrap();
        assert!(page.contains(".TH tool 1"), "{page}");
        for s in [
            ".SH COMMANDS",
            ".SS \"tool run\"",
            ".SS \"tool operator add\"",
            "Run it",
            "listen\\-address",
            "Where to listen",
            "\\-\\-role",
            "\\-\\-verbose",
            "1.2.3",
        ] {
            assert!(page.contains(s), "{s} missing:\n{page}");
        }
        assert!(!page.contains("secret"), "{page}");
        // One SYNOPSIS and one OPTIONS section: the subcommands' are folded in.
        assert_eq!(page.matches(".SH SYNOPSIS").count(), 1, "{page}");
        assert_eq!(page.matches(".SH OPTIONS").count(), 1, "{page}");
    }

    /// Every state the bash script's loop can reach (`cmd="…"`) has a
    /// `case` arm, also for a name with a hyphen (not so in clap_complete
    /// 4.6's own output).
    #[test]
    fn bash_arms_match_the_loop_states() {
        for name in ["tool", "my-tool", "a-b-c"] {
            let script = String::from_utf8(completions(Shell::Bash, cmd().name(name))).unwrap();
            let states: Vec<&str> = script
                .lines()
                .filter_map(|l| l.trim().strip_prefix("cmd=\""))
                .filter_map(|l| l.strip_suffix('"'))
                .filter(|s| !s.is_empty())
                .collect();
            assert!(states.len() >= 4, "{states:?}");
            let arms: Vec<&str> = script
                .lines()
                .filter_map(|l| l.strip_prefix("        "))
                .filter(|l| !l.starts_with(' '))
                .filter_map(|l| l.strip_suffix(')'))
                .collect();
            for s in &states {
                assert!(arms.contains(s), "{name}: no arm for {s}: {arms:?}");
            }
        }
        let raw = {
            let mut out = Vec::new();
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd(), "my-tool", &mut out);
            String::from_utf8(out).unwrap()
        };
        assert!(
            raw.contains("my__subcmd__tool__subcmd__run)"),
            "clap_complete fixed its hyphen bug: mend_bash can go"
        );
    }

    #[test]
    fn completions_name_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(completions(shell, cmd())).unwrap();
            for word in ["tool", "run", "operator", "add", "listen-address"] {
                assert!(text.contains(word), "{shell:?}: {word} missing:\n{text}");
            }
        }
    }
}
