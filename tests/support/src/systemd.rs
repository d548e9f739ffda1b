//! `systemd-analyze verify` on unit files, as the unit tests of the
//! runner's and the report's units run it.

use std::path::Path;
use std::process::Command;

/// `systemd-analyze verify UNITS…`: passes when it exits 0 and prints
/// nothing (it exits 0 on settings it ignores, saying so). `false` when
/// systemd-analyze is not installed (the caller skips), which fails the
/// test instead under `TERMGATE_REQUIRE_SYSTEMD_ANALYZE=1` (CI).
///
/// Verify also runs `man` on each `Documentation=man:…` page. `man_pages`
/// names the binaries whose `man` subcommand prints them (`termgate-runner`
/// → its path): they are written where `MANPATH` points, as the packages
/// install them, so a unit naming a page no binary prints fails. Without
/// `man` on PATH, pages are not checked (CI has it: `TERMGATE_REQUIRE_GROFF`).
pub fn verify(units: &[&Path], man_pages: &[(&str, &Path)]) -> bool {
    let mandir = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir(mandir.path().join("man1")).expect("man1");
    for (name, bin) in man_pages {
        let out = Command::new(bin)
            .arg("man")
            .output()
            .unwrap_or_else(|e| panic!("{} man: {e}", bin.display()));
        assert!(out.status.success(), "{} man: {out:?}", bin.display());
        std::fs::write(mandir.path().join(format!("man1/{name}.1")), out.stdout)
            .expect("writing the man page");
    }
    let have_man = Command::new("man").arg("--version").output().is_ok();
    if !have_man {
        assert!(
            std::env::var("TERMGATE_REQUIRE_GROFF").as_deref() != Ok("1"),
            "TERMGATE_REQUIRE_GROFF=1 but man is not on PATH (Debian's man-db)"
        );
        eprintln!("man not on PATH: Documentation= pages not checked (Debian's man-db)");
    }
    let out = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(if have_man { "--man=yes" } else { "--man=no" })
        .args(units)
        .env("MANPATH", mandir.path())
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("TERMGATE_REQUIRE_SYSTEMD_ANALYZE").as_deref() != Ok("1"),
                "TERMGATE_REQUIRE_SYSTEMD_ANALYZE=1 but systemd-analyze is not on PATH"
            );
            eprintln!(
                "systemd-analyze not on PATH: skipping (Debian's systemd package has it; \
                 scripts/setup-test-deps.sh installs it)"
            );
            return false;
        }
        Err(e) => panic!("running systemd-analyze: {e}"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify said: {said}"
    );
    true
}
