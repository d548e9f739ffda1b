//! `systemd-analyze verify` on unit files, as the unit tests of the
//! runner's and the report's units run it.

use std::path::Path;
use std::process::Command;

/// `systemd-analyze verify UNITS…`: passes when it exits 0 and prints
/// nothing (it exits 0 on settings it ignores, saying so). `false` when
/// systemd-analyze is not installed (the caller skips), which fails the
/// test instead under `TERMGATE_REQUIRE_SYSTEMD_ANALYZE=1` (CI).
pub fn verify(units: &[&Path]) -> bool {
    let out = match Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
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
