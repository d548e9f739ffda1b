//! Issue 21, item 7: the Debian packages' metadata (`[package.metadata.deb]`
//! in runner/Cargo.toml and console/Cargo.toml, read by cargo-deb) ships
//! what the issue names and what exists: each binary to /usr/bin with its
//! man page and completions, the example configs, the dashboard and rules,
//! and the systemd units whose `ExecStart` names the packaged binary. The
//! maintainer scripts are valid sh with cargo-deb's `#DEBHELPER#` slot.
//!
//! This catches a renamed asset or binary in a second; building the
//! packages, `dpkg -i` and `systemd-analyze verify` on what they installed
//! is `scripts/check-deb.sh` (after `scripts/package-deb.sh`, in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One package: its crate directory, its `[package.metadata.deb]` and its
/// binary's name.
struct Package {
    dir: PathBuf,
    deb: toml::Table,
    bin: String,
}

fn package(crate_dir: &str) -> Package {
    let dir = root().join(crate_dir);
    let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deb = manifest["package"]["metadata"]["deb"]
        .as_table()
        .unwrap_or_else(|| panic!("{crate_dir}/Cargo.toml has no [package.metadata.deb]"))
        .clone();
    let bins = manifest["bin"].as_array().unwrap();
    assert_eq!(bins.len(), 1, "{crate_dir}: one binary per package");
    let bin = bins[0]["name"].as_str().unwrap().to_owned();
    Package { dir, deb, bin }
}

fn runner() -> Package {
    package("runner")
}

fn console() -> Package {
    package("console")
}

impl Package {
    fn name(&self) -> &str {
        self.deb["name"].as_str().unwrap()
    }

    /// (source, installed path) of each asset; a destination ending in `/`
    /// keeps the source's file name, as cargo-deb does.
    fn assets(&self) -> Vec<(String, String)> {
        self.deb["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let a = a.as_array().expect("assets as [source, dest, mode]");
                let (src, dest, mode) = (
                    a[0].as_str().unwrap(),
                    a[1].as_str().unwrap(),
                    a[2].as_str().unwrap(),
                );
                assert!(
                    mode == "644" || mode == "755",
                    "{src}: mode {mode} (644, or 755 for programs)"
                );
                assert!(
                    !dest.starts_with('/'),
                    "{dest}: cargo-deb wants it relative"
                );
                let dest = if dest.ends_with('/') {
                    format!("/{dest}{}", src.rsplit('/').next().unwrap())
                } else {
                    format!("/{dest}")
                };
                (src.to_owned(), dest)
            })
            .collect()
    }

    fn installs(&self, path: &str) -> bool {
        self.assets().iter().any(|(_, d)| d == path)
    }

    /// The directory a `*-scripts` key names, relative to the crate.
    fn dir_of(&self, value: &toml::Value) -> PathBuf {
        self.dir.join(value.as_str().unwrap())
    }

    fn units_dir(&self) -> PathBuf {
        self.dir_of(&self.deb["systemd-units"]["unit-scripts"])
    }
}

#[test]
fn every_source_file_named_in_the_metadata_exists() {
    for p in [runner(), console()] {
        for (src, dest) in p.assets() {
            // cargo-deb's name for the target directory: built binaries and
            // what scripts/gen-man.sh writes beside them.
            if src.starts_with("target/release/") {
                continue;
            }
            assert!(
                p.dir.join(&src).is_file(),
                "{}: asset {src} (→ {dest}) does not exist",
                p.name()
            );
        }
        assert!(
            p.dir_of(&p.deb["maintainer-scripts"]).is_dir(),
            "{}: maintainer-scripts",
            p.name()
        );
        assert!(
            p.dir_of(&p.deb["changelog"]).is_file(),
            "{}: changelog",
            p.name()
        );
        assert!(p.units_dir().is_dir(), "{}: unit-scripts", p.name());
    }
}

#[test]
fn each_package_installs_its_binary_man_page_and_completions() {
    for p in [runner(), console()] {
        let b = &p.bin;
        let assets = p.assets();
        let want = [
            (format!("target/release/{b}"), format!("/usr/bin/{b}")),
            (
                format!("target/release/man/{b}.1.gz"),
                format!("/usr/share/man/man1/{b}.1.gz"),
            ),
            (
                format!("target/release/completions/bash/{b}"),
                format!("/usr/share/bash-completion/completions/{b}"),
            ),
            (
                format!("target/release/completions/zsh/_{b}"),
                format!("/usr/share/zsh/vendor-completions/_{b}"),
            ),
            (
                format!("target/release/completions/fish/{b}.fish"),
                format!("/usr/share/fish/vendor_completions.d/{b}.fish"),
            ),
        ];
        for w in want {
            assert!(assets.contains(&w), "{}: no asset {w:?}", p.name());
        }
    }
    // What scripts/gen-man.sh writes (for each binary `$b`) is what the
    // assets take.
    let gen = std::fs::read_to_string(root().join("scripts/gen-man.sh")).unwrap();
    for out in [
        "$bin_dir/man/$b.1.gz",
        "$bin_dir/completions/bash/$b",
        "$bin_dir/completions/zsh/_$b",
        "$bin_dir/completions/fish/$b.fish",
    ] {
        assert!(
            gen.contains(&format!("> \"{out}\"")),
            "gen-man.sh writes no {out}"
        );
    }
}

#[test]
fn the_example_configs_dashboard_and_rules_are_packaged() {
    let r = runner();
    for path in [
        "/usr/share/doc/termgate-runner/examples/config.toml",
        "/usr/share/termgate-runner/grafana/termgate.json",
        "/usr/share/termgate-runner/prometheus/termgate-rules.yml",
        "/usr/share/termgate-runner/prometheus/termgate-rules.test.yml",
    ] {
        assert!(r.installs(path), "termgate-runner does not install {path}");
    }
    assert!(console().installs("/usr/share/doc/termgate/examples/console.toml"));
    // The rules' unit tests name the rules file beside them.
    let tests =
        std::fs::read_to_string(root().join("assets/prometheus/termgate-rules.test.yml")).unwrap();
    assert!(tests.contains("- termgate-rules.yml"), "{tests}");
}

/// The first `key=` value of a unit file.
fn setting(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}="))
        .to_owned()
}

/// cargo-deb takes `<package>.<type>` from `unit-scripts`, and with a
/// `unit-name` also `<unit-name>.<type>`; each unit runs its package's
/// binary where the package puts it, and none is enabled or started by the
/// install (each needs configuring first: `register`, console.toml).
#[test]
fn each_package_ships_its_units_running_its_binary() {
    let cases = [
        (runner(), "termgate-runner", vec!["termgate-runner.service"]),
        (
            console(),
            "termgate-report",
            vec!["termgate-report.service", "termgate-report.timer"],
        ),
    ];
    for (p, unit_name, units) in cases {
        let cfg = p.deb["systemd-units"].as_table().unwrap();
        if p.name() != unit_name {
            assert_eq!(cfg["unit-name"].as_str(), Some(unit_name), "{}", p.name());
        }
        for key in [
            "enable",
            "start",
            "restart-after-upgrade",
            "stop-on-upgrade",
        ] {
            assert_eq!(cfg[key].as_bool(), Some(false), "{}: {key}", p.name());
        }
        for u in units {
            let path = p.units_dir().join(u);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // `systemctl help UNIT` opens the package's man page.
            assert_eq!(
                setting(&text, "Documentation"),
                format!("man:{}(1)", p.bin),
                "{u}"
            );
            if u.ends_with(".service") {
                let exec = setting(&text, "ExecStart");
                let bin = format!("/usr/bin/{} ", p.bin);
                assert!(
                    exec.contains(&bin),
                    "{u}: ExecStart={exec} does not run {bin}"
                );
                assert!(p.installs(bin.trim_end()), "{} has no {bin}", p.name());
            }
        }
    }
    let runner_unit =
        std::fs::read_to_string(runner().units_dir().join("termgate-runner.service")).unwrap();
    assert!(runner_unit.contains("ConditionFileIsExecutable=/usr/bin/termgate-runner\n"));
}

/// The runner's postinst makes what its unit needs (the `--user` and the
/// `--working-directory` of `ExecStart`, /etc/termgate-runner), is valid sh,
/// and leaves cargo-deb its slot.
#[test]
fn the_maintainer_scripts_make_what_the_unit_needs() {
    let r = runner();
    let dir = r.dir_of(&r.deb["maintainer-scripts"]);
    let mut scripts = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let is_script = ["preinst", "postinst", "prerm", "postrm"]
            .iter()
            .any(|s| path.extension().is_some_and(|e| e == *s) || path.ends_with(s));
        if !is_script {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{}", path.display());
        assert!(text.contains("\n#DEBHELPER#\n"), "{}", path.display());
        let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}: {out:?}", path.display());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{} is not executable", path.display());
        scripts += 1;
    }
    assert!(scripts > 0);
    let postinst = std::fs::read_to_string(dir.join("termgate-runner.postinst")).unwrap();
    let unit = std::fs::read_to_string(r.units_dir().join("termgate-runner.service")).unwrap();
    let exec = setting(&unit, "ExecStart");
    let arg = |flag: &str| {
        let argv: Vec<&str> = exec.split_whitespace().collect();
        let i = argv.iter().position(|a| *a == flag).unwrap();
        argv[i + 1].to_owned()
    };
    let (user, home) = (arg("--user"), arg("--working-directory"));
    assert!(
        postinst.contains(&format!("--home-dir {home} "))
            && postinst.contains(&format!(" {user}\n")),
        "the postinst does not make {user} with home {home}"
    );
    let config = arg("--config");
    let etc = Path::new(&config).parent().unwrap().display().to_string();
    assert!(
        postinst.contains(&format!("install -d -m 0700 -o root -g root {etc}\n")),
        "the postinst does not make {etc} (0700)"
    );
}

/// Debian's changelog, which both packages carry, names the version they
/// are built as: the workspace's, revision 1 (cargo-deb's default).
#[test]
fn the_debian_changelog_names_the_packaged_version() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let version = manifest["workspace"]["package"]["version"]
        .as_str()
        .unwrap();
    for p in [runner(), console()] {
        let path = p.dir_of(&p.deb["changelog"]);
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with(&format!("termgate ({version}-1) ")),
            "{}: the changelog's first entry is `{first}`, the packages are {version}-1: add an entry",
            p.name()
        );
    }
}
