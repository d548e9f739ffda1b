//! `termgate report` against `jq` and `grep -c` on a generated week of
//! runner logs (BENCHMARKS.md: the report at 1 GB/s or more, peak RSS under
//! 150 MB), all timed in the same run on the same warm files.
//!
//! `termgate-report-bench [--gb 2] [--dir DIR] [--runners 4] [--no-jq]`
//!
//! The week (`termgate_test_support::loggen::bulk`): JSON lines as the
//! runner writes them, per runner a plain `runner-N.log` and two rotated
//! `.gz` files; `--gb` of uncompressed text (GB = 10^9 bytes). With `--dir`
//! the files are kept there and reused by the next run with the same size;
//! without it they go to a temporary directory removed at the end.
//!
//! Nothing is dropped from the page cache: every file is read once before
//! the timings, so every tool reads the same warm files (what a weekly
//! report on a runner host that just wrote its logs sees). Each command runs
//! under a small helper (this binary with `--measure`) that waits for it
//! and reads its children's peak RSS (`getrusage(RUSAGE_CHILDREN)`: for a
//! pipeline, its largest process). GB/s are uncompressed bytes over wall
//! seconds. The figures are then checked: the report's error and warning
//! counts, `grep -c` and the sum of `uniq -c` must equal what the
//! generator wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use termgate_console::report::model::Report;
use termgate_test_support::loggen::bulk::{generate_bulk, load_bulk, Bulk, BulkOptions};

const MEASURE: &str = "--measure";
/// The last line the helper prints: `MEASURED <seconds> <peak RSS KiB> <exit code>`.
const MEASURED: &str = "MEASURED";

#[derive(Parser)]
#[command(about = "termgate report vs jq and grep on a generated week of runner logs")]
struct Args {
    /// Uncompressed size of the week, in GB (10^9 bytes).
    #[arg(long, default_value_t = 2.0)]
    gb: f64,
    /// Keep the logs here, and reuse them when they match --gb and --runners.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value_t = 4)]
    runners: usize,
    /// Leave jq out (it takes about 10 s per GB).
    #[arg(long)]
    no_jq: bool,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let res = if argv.get(1).map(String::as_str) == Some(MEASURE) {
        measure_here(argv.get(2..).unwrap_or_default())
    } else {
        run(Args::parse())
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("termgate-report-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The helper: runs `cmd`, prints its output, then the `MEASURED` line.
fn measure_here(cmd: &[String]) -> anyhow::Result<()> {
    let Some((prog, args)) = cmd.split_first() else {
        bail!("--measure needs a command");
    };
    let t = Instant::now();
    let out = Command::new(prog)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {prog}"))?;
    let secs = t.elapsed().as_secs_f64();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out.stdout)?;
    writeln!(
        stdout,
        "\n{MEASURED} {secs} {} {}",
        usage.max_rss(),
        out.status.code().unwrap_or(-1)
    )?;
    Ok(())
}

struct Measured {
    secs: f64,
    rss_kib: i64,
    /// What the command printed.
    output: String,
}

/// Runs `cmd` under the helper.
fn measure(cmd: &[String], env: &[(&str, &Path)]) -> anyhow::Result<Measured> {
    let me = std::env::current_exe()?;
    let mut c = Command::new(me);
    c.arg(MEASURE).args(cmd);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (output, last) = text
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", text.trim_end()));
    let f: Vec<&str> = last.split_whitespace().collect();
    let (Some(&MEASURED), Some(secs), Some(rss), Some(code)) =
        (f.first(), f.get(1), f.get(2), f.get(3))
    else {
        bail!("{cmd:?}: no measurement in {text:?}");
    };
    // grep -c exits 1 when it counts nothing; anything else is a failure.
    if !matches!(*code, "0" | "1") {
        bail!("{cmd:?} exited with {code}: {output}");
    }
    Ok(Measured {
        secs: secs.parse()?,
        rss_kib: rss.parse()?,
        output: output.to_owned(),
    })
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// `bash -c 'set -o pipefail; PIPELINE' bash FILES...`.
fn shell(pipeline: &str, files: &[PathBuf]) -> Vec<String> {
    let mut v = vec![
        "bash".to_owned(),
        "-c".to_owned(),
        format!("set -o pipefail; {pipeline}"),
        "bash".to_owned(),
    ];
    v.extend(files.iter().map(|f| f.display().to_string()));
    v
}

fn rfc3339(unix: i64) -> String {
    termgate_test_support::loggen::report_time(unix * 1000)
}

fn row(what: &str, m: &Measured, bytes: u64) {
    println!(
        "{what:<62} {:>8.2} {:>8.2} {:>9.1} MB",
        m.secs,
        bytes as f64 / 1e9 / m.secs,
        m.rss_kib as f64 * 1024.0 / 1e6
    );
}

fn run(a: Args) -> anyhow::Result<()> {
    let opts = BulkOptions {
        runners: a.runners.max(1),
        ..BulkOptions::new((a.gb * 1e9) as u64)
    };
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let bulk: Bulk = match load_bulk(&dir, &opts) {
        Some(b) => {
            println!("reusing the week in {}", dir.display());
            b
        }
        None => {
            println!("writing the week into {} ...", dir.display());
            let t = Instant::now();
            let b = generate_bulk(&dir, &opts)?;
            println!("written in {:.1} s", t.elapsed().as_secs_f64());
            b
        }
    };
    println!(
        "{} runners, {} files ({} gzip), {:.2} GB of JSON lines ({:.2} GB on disk), {} lines, {} warnings, {} errors, {} to {}",
        opts.runners,
        bulk.files.len(),
        bulk.gzip_files,
        bulk.bytes as f64 / 1e9,
        bulk.disk_bytes as f64 / 1e9,
        bulk.lines,
        bulk.warnings,
        bulk.errors,
        rfc3339(bulk.from),
        rfc3339(bulk.to),
    );
    // Warm: read every file once; nothing is dropped from the page cache.
    for f in &bulk.files {
        std::io::copy(&mut std::fs::File::open(f)?, &mut std::io::sink())?;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "page cache: nothing dropped; every file was read once before timing (warm for every tool). {cpus} CPUs."
    );
    let termgate = termgate_test_support::workspace_bin("termgate");
    let state = tempfile::tempdir()?;
    let console_log = state.path().join("console.log");
    let report_args = |threads: Option<usize>, out: &Path| -> Vec<String> {
        let mut v = vec![
            termgate.display().to_string(),
            "report".to_owned(),
            "--logs".to_owned(),
        ];
        v.push(format!("{}/runner-*", dir.display()));
        v.extend(
            [
                "--from",
                &rfc3339(bulk.from),
                "--to",
                &rfc3339(bulk.to),
                "--format",
                "json",
                "--out",
                &out.display().to_string(),
            ]
            .map(str::to_owned),
        );
        if let Some(t) = threads {
            v.extend(["--threads".to_owned(), t.to_string()]);
        }
        v
    };
    let env = [("TERMGATE_CONSOLE_LOG_FILE", console_log.as_path())];
    println!();
    println!(
        "{:<62} {:>8} {:>8} {:>12}",
        "what (uncompressed GB / wall seconds)", "seconds", "GB/s", "peak RSS"
    );
    let dev_null = Path::new("/dev/null");
    let report = measure(&report_args(None, dev_null), &env)?;
    row(
        &format!("termgate report --format json --out /dev/null ({cpus} threads)"),
        &report,
        bulk.bytes,
    );
    let one = measure(&report_args(Some(1), dev_null), &env)?;
    row("termgate report, --threads 1", &one, bulk.bytes);
    let mut problems = Vec::new();
    let grep = if have("zcat") && have("grep") {
        let m = measure(
            &shell(
                r#"zcat -f -- "$@" | grep -c '"level":"error"'"#,
                &bulk.files,
            ),
            &[],
        )?;
        row(
            r#"zcat -f FILES | grep -c '"level":"error"'"#,
            &m,
            bulk.bytes,
        );
        let count: u64 = m.output.trim().parse().unwrap_or(u64::MAX);
        if count != bulk.errors {
            problems.push(format!(
                "grep -c counted {count}, the generator wrote {} errors",
                bulk.errors
            ));
        }
        let z = measure(&shell(r#"zcat -f -- "$@" > /dev/null"#, &bulk.files), &[])?;
        row(
            "zcat -f FILES > /dev/null (decompressing alone)",
            &z,
            bulk.bytes,
        );
        Some(m)
    } else {
        println!("zcat or grep: not installed, left out");
        None
    };
    if a.no_jq {
        println!("jq: left out (--no-jq)");
    } else if have("jq") && grep.is_some() {
        let m = measure(
            &shell(
                r#"zcat -f -- "$@" | jq -r 'select(.level=="error") | .msg' | sort | uniq -c"#,
                &bulk.files,
            ),
            &[],
        )?;
        row(
            r#"zcat -f FILES | jq -r 'select(.level=="error") | .msg' | sort | uniq -c"#,
            &m,
            bulk.bytes,
        );
        let sum: u64 = m
            .output
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        if sum != bulk.errors {
            problems.push(format!(
                "jq | uniq -c counted {sum}, the generator wrote {} errors",
                bulk.errors
            ));
        }
        println!(
            "  (jq keeps ids in messages: {} distinct lines from uniq -c)",
            m.output.lines().count()
        );
    } else {
        println!("jq: NOT INSTALLED, left out (apt-get install -y jq)");
    }
    // The report's figures against the generator's.
    let out = state.path().join("report.json");
    let status = Command::new(&termgate)
        .args(report_args(None, &out).get(1..).unwrap_or_default())
        .env("TERMGATE_CONSOLE_LOG_FILE", &console_log)
        .status()?;
    if !status.success() {
        bail!("termgate report failed: {status}");
    }
    let r: Report = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
    let got = (
        r.totals.errors.current,
        r.totals.warnings.current,
        r.inputs.bytes,
        r.inputs.lines,
        r.inputs.unparsed_lines,
    );
    let want = (bulk.errors, bulk.warnings, bulk.bytes, bulk.lines, 0);
    if got != want {
        problems.push(format!(
            "the report says (errors, warnings, bytes, lines, unparsed) = {got:?}, the generator {want:?}"
        ));
    }
    println!();
    println!(
        "report: {} fingerprints, peak {} terminals at once, {} jobs",
        r.errors.distinct,
        r.sessions.peak_active.map_or(0, |p| p.count),
        r.totals.jobs.current
    );
    if problems.is_empty() {
        println!("checked: the report's errors, warnings, bytes and lines, grep -c and uniq -c equal what was generated");
        Ok(())
    } else {
        bail!("figures differ:\n{}", problems.join("\n"))
    }
}
