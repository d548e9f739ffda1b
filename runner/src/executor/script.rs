//! The POSIX shell script a step runs, for both executors: the host shell
//! and `sh -c` inside a Docker container.

use std::path::Path;

use crate::trace::ansi;

/// Single-quote for POSIX shells.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script a step runs: echo each command in bold green like upstream,
/// then run it; stop at the first failure.
pub fn render_script(shell: &str, build_dir: &Path, lines: &[String]) -> String {
    let mut s = String::new();
    if shell == "bash" {
        s.push_str("set -eo pipefail\n");
    } else {
        s.push_str("set -e\n");
    }
    s.push_str("set +o noclobber\n");
    s.push_str(&format!("cd {}\n", sh_quote(&build_dir.to_string_lossy())));
    for line in lines {
        let shown = format!("{}$ {}{}", ansi::BOLD_GREEN, line, ansi::RESET);
        s.push_str(&format!("printf '%s\\n' {}\n", sh_quote(&shown)));
        s.push_str(line);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }

    #[test]
    fn script_echoes_commands() {
        let s = render_script("bash", Path::new("/b"), &["echo hi".into()]);
        assert!(s.starts_with("set -eo pipefail\n"));
        assert!(s.contains("cd '/b'\n"));
        assert!(s.contains("$ echo hi"));
        assert!(s.ends_with("echo hi\n"));
    }
}
