//! Throughput of the log side's hot path (classify + parse + fingerprint +
//! tally), single-threaded, over a generated realistic mixed log in memory.
//!
//! `termgate-tally-bench [MB] [--file]`: MB of log to generate (default 500);
//! `--file` writes it to a temporary file and reads it back through the
//! page cache, like `termgate tally` does.

use std::io::Write;
use std::time::Instant;

use termgate_console::logs::tally::Tallier;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const RUNNERS: [&str; 4] = ["j6Qx6EEK", "N83zBFyfs", "t3_Ho_Fyq", "9mUX02bq0"];

/// One line of the given format; about 5% are warnings or errors.
fn line(r: &mut Rng, format: u64, errors_only: bool, out: &mut String) {
    let job = 4_519_752_626 + r.below(100_000);
    let runner = RUNNERS[r.below(4) as usize];
    let sec = r.below(86_400);
    let time = format!(
        "2026-11-27T{:02}:{:02}:{:02}.{:03}+00:00",
        sec / 3600,
        sec / 60 % 60,
        sec % 60,
        r.below(1000)
    );
    let kind = if errors_only {
        r.below(6)
    } else {
        r.below(100)
    };
    let (level, msg): (&str, String) = match kind {
        0 => ("warning", format!("Job failed: exit code {}", 1 + r.below(3))),
        1 => ("error", "Checking for jobs... forbidden".into()),
        2 => (
            "error",
            format!("Runner \"https://gitlab.example.com/{runner}\" is unhealthy and will be disabled for 1h0m0s seconds!"),
        ),
        3 => (
            "error",
            format!(
                "Job failed (system failure): Error response from daemon: No such container: {:016x}{:016x}",
                r.next(),
                r.next()
            ),
        ),
        4 => (
            "warning",
            format!(
                "Checking for jobs... failed: Post https://gitlab.example.com/api/v4/jobs/request: dial tcp 10.0.{}.{}:443: connect: connection refused",
                r.below(255),
                r.below(255)
            ),
        ),
        5 if r.below(4) == 0 => ("warning", "Terminal already connected, revoking connection".into()),
        5..=30 => ("info", "Appending trace to coordinator...ok".into()),
        31..=50 => ("info", "Checking for jobs... received".into()),
        51..=60 => ("info", "Submitting job to coordinator...ok".into()),
        61..=75 => ("debug", "Feeding runners to channel".into()),
        76..=85 => ("info", "Job succeeded".into()),
        _ => ("info", "Updating job...".into()),
    };
    let log_off = r.below(100_000);
    match format {
        // termgate / logrus JSON (sorted keys).
        0 => {
            use std::fmt::Write as _;
            let _ = write!(
                out,
                r#"{{"bytesize":{},"checksum":"crc32:{:08x}","correlation_id":"{:016x}{:016x}","job":{job},"level":"{level}","msg":"{msg}","project":{},"runner":"{runner}","runner_name":"prm-{}","time":"{time}"}}"#,
                log_off,
                r.next() as u32,
                r.next(),
                r.next(),
                r.below(100_000),
                r.below(9),
                msg = msg.replace('"', "\\\""),
            );
        }
        // upstream `runner` format with colours, as gitlab-runner writes it.
        1 => {
            let (color, prefix) = match level {
                "warning" => ("\x1b[0;33m", "WARNING: "),
                "error" => ("\x1b[31;1m", "ERROR: "),
                _ => ("", ""),
            };
            use std::fmt::Write as _;
            let head = format!("{prefix}{msg}");
            let _ = write!(
                out,
                "{color}{head:<50}\x1b[0;m  code\x1b[0;m=202 correlation_id\x1b[0;m={:016x} job\x1b[0;m={job} job-log\x1b[0;m=0-{log_off} job-status\x1b[0;m=running runner\x1b[0;m={runner} sent-log\x1b[0;m=0-{} status\x1b[0;m=202 Accepted update-interval\x1b[0;m=3s",
                r.next(),
                log_off.saturating_sub(1),
            );
        }
        // logrus text.
        _ => {
            use std::fmt::Write as _;
            let _ = write!(
                out,
                r#"time="{time}" level={level} msg="{}" job={job} project={} repo_url="https://gitlab.example.com/group/project-{}.git" runner={runner}"#,
                msg.replace('"', "\\\""),
                r.below(100_000),
                r.below(1000),
            );
        }
    }
    out.push('\n');
}

/// `mb` MB of lines; `formats` chooses the mix (0 JSON, 1 runner, 2 text).
fn generate(mb: usize, formats: &[u64], errors_only: bool) -> String {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut s = String::with_capacity(mb << 20);
    while s.len() < mb << 20 {
        let f = formats[r.below(formats.len() as u64) as usize];
        line(&mut r, f, errors_only, &mut s);
    }
    s
}

/// Best of three passes (the machine may be shared).
fn run(name: &str, data: &[u8]) {
    let mut best = f64::MAX;
    let mut tally = Default::default();
    for _ in 0..3 {
        let t = Instant::now();
        let mut tl = Tallier::new();
        if let Err(e) = tl.read_from("bench", data) {
            eprintln!("read failed: {e}");
            return;
        }
        best = best.min(t.elapsed().as_secs_f64());
        tally = tl.finish();
    }
    let dt = best;
    let tally: termgate_console::model::Tally = tally;
    let errors: u64 = tally.entries.values().map(|e| e.count).sum();
    println!(
        "{name:<28} {:>7.1} MB  {:>10} lines  {:>8} errors  {:>3} fingerprints  {:>6.3} s  {:>7.1} MB/s",
        data.len() as f64 / 1e6,
        tally.lines,
        errors,
        tally.entries.len(),
        dt,
        data.len() as f64 / 1e6 / dt,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mb: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(500);
    let use_file = args.iter().any(|a| a == "--file");
    println!("termgate-tally-bench: {mb} MB mixed log, one thread (parse + fingerprint + tally)");

    let mixed = generate(mb, &[0, 0, 1, 1, 2], false);
    if use_file {
        let written = tempfile::NamedTempFile::new().and_then(|mut f| {
            f.write_all(mixed.as_bytes())?;
            f.flush()?;
            Ok(f)
        });
        match written {
            Ok(f) => {
                drop(mixed);
                let t = Instant::now();
                match std::fs::File::open(f.path()) {
                    Ok(file) => {
                        let mut tl = Tallier::new();
                        let n = tl
                            .read_from("bench", std::io::BufReader::new(file))
                            .unwrap_or(0);
                        let dt = t.elapsed().as_secs_f64();
                        println!(
                            "{:<28} {:>7.1} MB  {:>10} lines  {:>6.3} s  {:>7.1} MB/s",
                            "mixed, from a file",
                            n as f64 / 1e6,
                            tl.tally.lines,
                            dt,
                            n as f64 / 1e6 / dt
                        );
                    }
                    Err(e) => eprintln!("open failed: {e}"),
                }
            }
            Err(e) => eprintln!("temp file failed: {e}"),
        }
        return;
    }
    run("mixed (40/40/20)", mixed.as_bytes());
    drop(mixed);
    let each = (mb / 4).max(1);
    run(
        "termgate/logrus JSON",
        generate(each, &[0], false).as_bytes(),
    );
    run(
        "upstream runner (ANSI)",
        generate(each, &[1], false).as_bytes(),
    );
    run("logrus text", generate(each, &[2], false).as_bytes());
    run(
        "worst case: all errors, mixed",
        generate(each, &[0, 0, 1, 1, 2], true).as_bytes(),
    );
}
