//! The report's Markdown and HTML writers on a hand-written sample report
//! (`tests/fixtures/report/sample-report.json`, see the README there):
//! the JSON must deserialise into the model unchanged (a schema check),
//! the Markdown must equal the reviewed golden file `sample-report.md`,
//! and the HTML must be self-contained, escape what came from logs, and
//! render in headless Chromium (Debian's `chromium`) to a PNG that is not
//! blank and to an A4 PDF.
//!
//! `TERMGATE_UPDATE_GOLDEN=1` rewrites the golden file (review the diff).
//! Without chromium the browser test is skipped, unless
//! `TERMGATE_REQUIRE_CHROMIUM=1` (CI), where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use termgate_test_support::wait_until;

use termgate_console::report::{html, markdown, model::Report};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/report")
}

fn sample() -> Report {
    let path = fixtures().join("sample-report.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let report: Report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} does not fit the model: {e}", path.display()));
    // Unknown or misspelt fields would be dropped silently: the model must
    // give back exactly what the file says.
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        raw,
        "the fixture has fields the model does not (or lacks some it has)"
    );
    report
}

#[test]
fn sample_fixture_exercises_what_the_writers_show() {
    let r = sample();
    assert_eq!(r.runners.len(), 3);
    assert_eq!(r.days.len(), 8);
    use termgate_console::report::model::Trend;
    for t in [Trend::New, Trend::Up, Trend::Down, Trend::Same] {
        assert!(r.errors.top.iter().any(|f| f.trend == t), "{t:?}");
    }
    assert!(r.errors.gone.iter().all(|f| f.trend == Trend::Gone));
    assert!(!r.errors.gone.is_empty());
    let hostile = r
        .errors
        .top
        .iter()
        .find(|f| f.example.contains("<script>"))
        .expect("an example with <script>");
    for s in ["|", "`", "[MASKED]"] {
        assert!(hostile.example.contains(s), "{s}");
    }
    assert!(!r.inputs.read_errors.is_empty());
    let cap = r.capacity.as_ref().unwrap();
    assert!(cap.runners.iter().any(|c| !c.series.is_empty()));
    // The fixture's figures agree with each other.
    let day_errors: u64 = r.days.iter().map(|d| d.total.errors).sum();
    let day_warnings: u64 = r.days.iter().map(|d| d.total.warnings).sum();
    assert!(day_errors <= r.totals.errors.current);
    assert_eq!(
        day_errors + day_warnings + r.inputs.untimed_records,
        r.totals.errors.current + r.totals.warnings.current
    );
    let shown: u64 = r.errors.top.iter().map(|f| f.count).sum();
    assert_eq!(
        shown + r.errors.not_shown,
        r.totals.errors.current + r.totals.warnings.current
    );
    for d in &r.days {
        let sum = |f: fn(&termgate_console::report::model::DayCounts) -> u64| {
            d.runners.values().map(f).sum::<u64>()
        };
        assert_eq!(sum(|c| c.errors), d.total.errors, "{}", d.date);
        assert_eq!(sum(|c| c.warnings), d.total.warnings, "{}", d.date);
        assert_eq!(sum(|c| c.sessions), d.total.sessions, "{}", d.date);
        assert_eq!(sum(|c| c.jobs), d.total.jobs, "{}", d.date);
    }
    for f in &r.errors.top {
        assert_eq!(f.per_day.len(), r.days.len(), "{}", f.fingerprint);
    }
}

/// The first differing line of two texts, for a readable failure.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i), g.get(i));
        if a != b {
            return format!(
                "first difference at line {}:\n  golden: {}\n  now:    {}",
                i + 1,
                a.unwrap_or(&"<end of file>"),
                b.unwrap_or(&"<end of file>")
            );
        }
    }
    "the texts differ only in their line endings".to_owned()
}

#[test]
fn markdown_matches_the_reviewed_golden_file() {
    let got = markdown::render(&sample());
    let golden = fixtures().join("sample-report.md");
    if std::env::var("TERMGATE_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&golden, &got).unwrap();
        eprintln!("wrote {}: review the diff", golden.display());
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    if want != got {
        let fresh = std::env::temp_dir().join(format!("sample-report.{}.md", std::process::id()));
        std::fs::write(&fresh, &got).unwrap();
        panic!(
            "the Markdown report differs from the golden file {}\n{}\n\
             The whole output is in {}: `diff -u {} {}`.\n\
             If the change is intended, run with TERMGATE_UPDATE_GOLDEN=1 and review the diff.",
            golden.display(),
            first_difference(&want, &got),
            fresh.display(),
            golden.display(),
            fresh.display(),
        );
    }
}

#[test]
fn markdown_keeps_log_text_inside_code() {
    let md = markdown::render(&sample());
    // The hostile example is shown, escaped for its table cell.
    assert!(
        md.contains("<script>alert(1)</script>\\\""),
        "the example is missing"
    );
    assert!(
        md.contains("``"),
        "backticks in the example need a longer fence"
    );
    // Every table row of the fingerprints has the header's cell count.
    let mut in_table = None;
    for l in md.lines() {
        if !l.starts_with('|') {
            in_table = None;
            continue;
        }
        let cells = pipes(l);
        match in_table {
            None => in_table = Some(cells),
            Some(n) => assert_eq!(cells, n, "a row with the wrong number of cells: {l}"),
        }
    }
}

/// Unescaped pipes on a table line.
fn pipes(l: &str) -> usize {
    let mut n = 0;
    let mut prev = ' ';
    for c in l.chars() {
        if c == '|' && prev != '\\' {
            n += 1;
        }
        prev = c;
    }
    n
}

/// `(attribute or function, value)` for every `src=`, `href=`,
/// `xlink:href=`, `action=`, `srcset=`, `poster=`, `data=` and `url(` in
/// the HTML (quoted or not).
fn references(html: &str) -> Vec<(String, String)> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    for key in [
        "src=", "href=", "action=", "srcset=", "poster=", "data=", "url(",
    ] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(key).map(|i| i + from) {
            let start = i + key.len();
            let rest = &html[start..];
            let value: String = match rest.chars().next() {
                Some(q @ ('"' | '\'')) => rest[1..].chars().take_while(|c| *c != q).collect(),
                _ => rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '>' && *c != ')')
                    .collect(),
            };
            out.push((key.to_owned(), value));
            from = start;
        }
    }
    out
}

#[test]
fn html_is_self_contained_and_escapes_log_text() {
    let html = html::render(&sample());
    let lower = html.to_ascii_lowercase();
    assert!(lower.starts_with("<!doctype html>"));
    assert!(!lower.contains("<script"), "a script element");
    for tag in [
        "<link",
        "<img",
        "<iframe",
        "<object",
        "<embed",
        "<base",
        "@import",
        "@font-face",
    ] {
        assert!(!lower.contains(tag), "{tag} loads something");
    }
    for (key, value) in references(&html) {
        let v = value.trim().to_ascii_lowercase();
        assert!(
            !(v.starts_with("http:")
                || v.starts_with("https:")
                || v.starts_with("//")
                || v.contains("://")),
            "an external reference: {key}{value}"
        );
    }
    // The example's markup is text.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("[MASKED]"));
    // Prints on A4, charts inline.
    assert!(html.contains("@page { size: A4; margin: 15mm }"));
    assert!(html.contains("break-inside: avoid"));
    assert_eq!(
        html.matches("<svg ").count(),
        5,
        "3 day charts and 2 capacity charts"
    );
    // Every section of the Markdown is here too.
    for h in [
        "State of things",
        "Errors and warnings",
        "Top fingerprints",
        "Gone since the previous period",
        "Terminal usage",
        "Jobs",
        "Runner restarts and unclean shutdowns",
        "Capacity",
        "Inputs",
    ] {
        assert!(html.contains(&format!(">{h}</h")), "no section {h}");
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// A browser process group, killed when dropped (also when a test panics).
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.0.wait();
    }
}

/// Runs headless `chromium` on `page` with `args`, its own profile in
/// `dir`; returns its stderr when it exits 0, panics with it otherwise.
fn chromium(bin: &Path, dir: &Path, page: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir_in(dir).unwrap();
    let log = dir.join(format!("chromium-{}.log", args.len()));
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        // Tests run as root here: Chromium's sandbox refuses root.
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        // Nothing may be fetched: any host name fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(dir.join("chromium.out")).unwrap())
    .stderr(std::fs::File::create(&log).unwrap())
    .process_group(0);
    let mut browser = Browser(cmd.spawn().unwrap());
    let status = wait_until("chromium to exit", Duration::from_secs(90), || {
        browser.0.try_wait().unwrap()
    });
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    stderr
}

#[test]
fn html_renders_in_headless_chromium_and_prints_on_a4() {
    let Some(bin) = which("chromium").or_else(|| which("chromium-browser")) else {
        assert!(
            std::env::var("TERMGATE_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "chromium is not installed and TERMGATE_REQUIRE_CHROMIUM=1: \
             run scripts/setup-test-deps.sh (Debian package `chromium`)"
        );
        eprintln!("SKIPPED: chromium not on PATH (scripts/setup-test-deps.sh installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html::render(&sample())).unwrap();

    // A4 at 150 dpi.
    let shot = dir.path().join("report.png");
    let stderr = chromium(
        &bin,
        dir.path(),
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1240,1754".to_owned(),
        ],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{stderr}")),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1240, 1754));
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let inked = pixels.iter().filter(|p| p.iter().any(|c| *c < 200)).count();
    let share = inked as f64 / pixels.len() as f64;
    let mut colours: Vec<[u8; 3]> = pixels.clone();
    colours.sort_unstable();
    colours.dedup();
    // The errors bars of the first chart, drawn in their exact colour.
    let red = pixels.iter().filter(|p| **p == [0xc0, 0x39, 0x2b]).count();
    let amber = pixels.iter().filter(|p| **p == [0xd9, 0x9a, 0x1e]).count();
    eprintln!(
        "screenshot: {:.1}% inked pixels, {} colours, {red} error-bar and {amber} warning-bar pixels",
        share * 100.0,
        colours.len()
    );
    assert!(
        share > 0.03,
        "the page looks blank: {:.2}% inked",
        share * 100.0
    );
    assert!(colours.len() > 16, "only {} colours", colours.len());
    assert!(red > 2_000 && amber > 1_000, "the first chart did not draw");

    // Printed: A4 pages.
    let pdf = dir.path().join("report.pdf");
    chromium(
        &bin,
        dir.path(),
        &page,
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".to_owned(),
        ],
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    assert!(bytes.len() > 20_000, "a PDF of only {} bytes", bytes.len());
    // Every page is A4 (595 × 842 pt), not Letter; the report takes several.
    let text = String::from_utf8_lossy(&bytes);
    let boxes: Vec<(f64, f64)> = text
        .match_indices("/MediaBox")
        .filter_map(|(i, _)| {
            let rest = &text[i + "/MediaBox".len()..];
            let inner = rest.trim_start().strip_prefix('[')?.split(']').next()?;
            let n: Vec<f64> = inner
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (n.len() == 4).then(|| (n[2] - n[0], n[3] - n[1]))
        })
        .collect();
    eprintln!("pdf: {} bytes, {} pages", bytes.len(), boxes.len());
    assert!(boxes.len() >= 3, "{} pages", boxes.len());
    for (w, h) in &boxes {
        assert!(
            (w - 595.3).abs() < 2.0 && (h - 841.9).abs() < 2.0,
            "a page of {w} × {h} pt is not A4"
        );
    }
    keep(dir.path());
}

/// With `TERMGATE_KEEP_RENDER=DIR`, copies the page, screenshot and PDF
/// there to look at.
fn keep(dir: &Path) {
    let Some(to) = std::env::var_os("TERMGATE_KEEP_RENDER") else {
        return;
    };
    let to = PathBuf::from(to);
    std::fs::create_dir_all(&to).unwrap();
    for f in ["report.html", "report.png", "report.pdf"] {
        std::fs::copy(dir.join(f), to.join(f)).unwrap();
    }
    eprintln!("kept the rendering in {}", to.display());
}
