//! Pure rendering of one log record in upstream gitlab-runner's three
//! formats (`json`, `text`, `runner`). No I/O, no tracing types: the layer in
//! `logging/layer.rs` turns tracing events into a [`Record`].
//!
//! Reference: gitlab-runner `log/runner_formatter.go`, logrus
//! `json_formatter.go` and `text_formatter.go` (idea, not code).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, FixedOffset, Timelike};

use super::LogFormat;

pub use termgate::logschema::Level;
use termgate::logschema::{LEVEL, MSG, TIME};

/// How each level looks in the text formats.
trait LevelLook {
    fn runner_prefix(self) -> &'static str;
    fn runner_color(self) -> &'static str;
    fn logrus_color(self) -> &'static str;
}

impl LevelLook for Level {
    /// Prefix of the `runner` format.
    fn runner_prefix(self) -> &'static str {
        match self {
            Level::Debug | Level::Info => "",
            Level::Warning => "WARNING: ",
            Level::Error => "ERROR: ",
            Level::Fatal => "FATAL: ",
            Level::Panic => "PANIC: ",
        }
    }

    /// Colour of the `runner` format (gitlab-runner `helpers` ANSI consts).
    fn runner_color(self) -> &'static str {
        match self {
            Level::Debug => "\x1b[37;1m",
            Level::Info => "",
            Level::Warning => "\x1b[0;33m",
            Level::Error | Level::Fatal | Level::Panic => "\x1b[31;1m",
        }
    }

    /// Colour of logrus' TTY text format.
    fn logrus_color(self) -> &'static str {
        match self {
            Level::Debug => "\x1b[37m",
            Level::Info => "\x1b[36m",
            Level::Warning => "\x1b[33m",
            Level::Error | Level::Fatal | Level::Panic => "\x1b[31m",
        }
    }
}

const RUNNER_RESET: &str = "\x1b[0;m";
const LOGRUS_RESET: &str = "\x1b[0m";

/// A field value, keeping the JSON type of the original.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
}

impl Value {
    /// Go's `%v` (what the `runner` and `text` formats print).
    pub(super) fn go_v(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::I64(n) => n.to_string(),
            Value::U64(n) => n.to_string(),
            Value::I128(n) => n.to_string(),
            Value::U128(n) => n.to_string(),
            Value::F64(f) => go_float(*f, GoExp::Fmt),
            Value::Bool(b) => b.to_string(),
        }
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Value::Str(s) => write_json_str(out, s),
            Value::F64(f) if !f.is_finite() => write_json_str(out, &f.to_string()),
            Value::F64(f) => out.push_str(&go_float(*f, GoExp::Json)),
            other => out.push_str(&other.go_v()),
        }
    }
}

/// One log line before rendering.
#[derive(Debug, Clone)]
pub struct Record {
    pub level: Level,
    pub msg: String,
    pub fields: BTreeMap<String, Value>,
    pub time: DateTime<FixedOffset>,
    /// Whole seconds since the formatter started (logrus TTY `[0000]`).
    pub elapsed_secs: i64,
}

/// Render `rec` as one line (with its trailing newline).
pub fn render(format: LogFormat, ansi: bool, rec: &Record) -> String {
    let mut out = match format {
        LogFormat::Json => json(rec),
        LogFormat::Text if ansi => text_tty(rec),
        LogFormat::Text => text_plain(rec),
        LogFormat::Runner => runner(rec, ansi),
    };
    out.push('\n');
    out
}

/// logrus `prefixFieldClashes`: user fields named like the fixed keys are
/// renamed `fields.<key>` (json and text formats only, as upstream).
fn clash_safe(fields: &BTreeMap<String, Value>) -> BTreeMap<String, &Value> {
    fields
        .iter()
        .map(|(k, v)| match k.as_str() {
            TIME | MSG | LEVEL => (format!("fields.{k}"), v),
            _ => (k.clone(), v),
        })
        .collect()
}

fn json(rec: &Record) -> String {
    let level = Value::Str(rec.level.as_str().to_owned());
    let msg = Value::Str(rec.msg.clone());
    let time = Value::Str(rfc3339_nano(&rec.time));
    let mut all = clash_safe(&rec.fields);
    all.insert(LEVEL.into(), &level);
    all.insert(MSG.into(), &msg);
    all.insert(TIME.into(), &time);
    let mut out = String::from("{");
    for (i, (k, v)) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&mut out, k);
        out.push(':');
        v.write_json(&mut out);
    }
    out.push('}');
    out
}

/// A JSON string the way Go's `encoding/json` writes it: HTML-safe
/// (`&`, `<`, `>` as `\u0026`...) and U+2028/2029 escaped.
fn write_json_str(out: &mut String, s: &str) {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    for c in quoted.chars() {
        match c {
            '&' => out.push_str("\\u0026"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
}

/// logrus text formatter on a terminal: `INFO[0000] msg  k=v`.
fn text_tty(rec: &Record) -> String {
    let color = rec.level.logrus_color();
    let upper = rec.level.as_str().to_ascii_uppercase();
    let level: String = upper.chars().take(4).collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "{color}{level}{LOGRUS_RESET}[{:04}] {:<44} ",
        rec.elapsed_secs, rec.msg
    );
    for (k, v) in clash_safe(&rec.fields) {
        let _ = write!(out, " {color}{k}{LOGRUS_RESET}={}", logfmt_value(&v.go_v()));
    }
    out
}

/// logrus text formatter elsewhere: `time="…" level=info msg="…" k=v`.
fn text_plain(rec: &Record) -> String {
    let mut pairs: Vec<(String, String)> = vec![
        (TIME.into(), rfc3339(&rec.time)),
        (LEVEL.into(), rec.level.as_str().into()),
    ];
    if !rec.msg.is_empty() {
        pairs.push((MSG.into(), rec.msg.clone()));
    }
    pairs.extend(
        clash_safe(&rec.fields)
            .into_iter()
            .map(|(k, v)| (k, v.go_v())),
    );
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{k}={}", logfmt_value(&v));
    }
    out
}

/// gitlab-runner's own formatter: prefix, message padded to 50 columns, a
/// space, then ` key=value` sorted, values printed raw (`%v`).
fn runner(rec: &Record, ansi: bool) -> String {
    let prefix = rec.level.runner_prefix();
    let (color, reset) = if ansi {
        (rec.level.runner_color(), RUNNER_RESET)
    } else {
        ("", "")
    };
    let width = 50 - prefix.len();
    let mut out = String::new();
    let _ = write!(out, "{color}{prefix}{:<width$}{reset} ", rec.msg);
    for (k, v) in &rec.fields {
        let _ = write!(out, " {color}{k}{reset}={}", v.go_v());
    }
    out
}

/// logrus `needsQuoting` + `%q`.
fn logfmt_value(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'));
    if plain {
        s.to_owned()
    } else {
        go_quote(s)
    }
}

/// Go `strconv.Quote` for the characters that matter in logs.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone, Copy)]
enum GoExp {
    /// `fmt` `%v`: exponent at least two digits (`1e+06`, `1e-05`).
    Fmt,
    /// `encoding/json`: `1e+21`, `1e-7`.
    Json,
}

/// A float the way Go prints it: shortest round-trip digits, plain notation
/// unless the decimal exponent is < -4 or >= 6 (`%v`, i.e. `%g` shortest) or
/// < -6 or >= 21 (`encoding/json`).
fn go_float(f: f64, style: GoExp) -> String {
    if f == 0.0 {
        return "0".into();
    }
    if !f.is_finite() {
        return match (f.is_nan(), f > 0.0) {
            (true, _) => "NaN".into(),
            (false, true) => "+Inf".into(),
            (false, false) => "-Inf".into(),
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_owned(), e.parse::<i32>().unwrap_or(0)),
        None => return f.to_string(),
    };
    let (min_exp, max_exp) = match style {
        GoExp::Fmt => (-4, 6),
        GoExp::Json => (-6, 21),
    };
    if exp < min_exp || exp >= max_exp {
        let sign = if exp < 0 { '-' } else { '+' };
        let digits = exp.unsigned_abs();
        match style {
            GoExp::Fmt => format!("{mantissa}e{sign}{digits:02}"),
            GoExp::Json => format!("{mantissa}e{sign}{digits}"),
        }
    } else {
        f.to_string()
    }
}

/// Go `time.RFC3339Nano`: nanoseconds with trailing zeros trimmed, `Z` for UTC.
pub fn rfc3339_nano(t: &DateTime<FixedOffset>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let ns = t.nanosecond() % 1_000_000_000;
    if ns != 0 {
        let frac = format!("{ns:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    push_offset(&mut s, t);
    s
}

/// Go `time.RFC3339` (logrus text default): whole seconds.
pub fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    push_offset(&mut s, t);
    s
}

fn push_offset(s: &mut String, t: &DateTime<FixedOffset>) {
    if t.offset().local_minus_utc() == 0 {
        s.push('Z');
    } else {
        s.push_str(&t.format("%:z").to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn rec(level: Level, msg: &str, fields: &[(&str, Value)]) -> Record {
        Record {
            level,
            msg: msg.into(),
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            time: t("2025-06-05T15:57:35+02:00"),
            elapsed_secs: 0,
        }
    }

    #[test]
    fn time_formats() {
        assert_eq!(
            rfc3339_nano(&t("2025-06-05T15:57:35.120000+02:00")),
            "2025-06-05T15:57:35.12+02:00"
        );
        assert_eq!(
            rfc3339_nano(&t("2021-07-02T16:45:05.000000001Z")),
            "2021-07-02T16:45:05.000000001Z"
        );
        assert_eq!(
            rfc3339_nano(&t("2021-07-02T16:45:05-07:30")),
            "2021-07-02T16:45:05-07:30"
        );
        assert_eq!(
            rfc3339(&t("2018-08-28T07:38:30.5Z")),
            "2018-08-28T07:38:30Z"
        );
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_float(120.0120526, GoExp::Json), "120.0120526");
        assert_eq!(go_float(1.0, GoExp::Json), "1");
        assert_eq!(go_float(1e21, GoExp::Json), "1e+21");
        assert_eq!(go_float(1e-7, GoExp::Json), "1e-7");
        assert_eq!(go_float(0.000001, GoExp::Json), "0.000001");
        assert_eq!(go_float(7.706165838, GoExp::Fmt), "7.706165838");
        assert_eq!(go_float(1e-5, GoExp::Fmt), "1e-05");
        assert_eq!(go_float(-2.5, GoExp::Fmt), "-2.5");
        assert_eq!(go_float(1e6, GoExp::Fmt), "1e+06");
        assert_eq!(go_float(123456.5, GoExp::Fmt), "123456.5");
    }

    #[test]
    fn json_keys_sorted_types_kept_html_escaped() {
        let r = rec(
            Level::Warning,
            "a & b <c>",
            &[
                ("zeta", Value::Bool(true)),
                ("duration_s", Value::F64(120.0120526)),
                ("job", Value::U64(1396213069)),
                ("error", Value::Str("boom".into())),
                ("time", Value::I64(-1)),
            ],
        );
        assert_eq!(
            render(LogFormat::Json, false, &r),
            "{\"duration_s\":120.0120526,\"error\":\"boom\",\"fields.time\":-1,\"job\":1396213069,\
             \"level\":\"warning\",\"msg\":\"a \\u0026 b \\u003cc\\u003e\",\
             \"time\":\"2025-06-05T15:57:35+02:00\",\"zeta\":true}\n"
        );
    }

    /// Every line of real upstream JSON logs, parsed into a record and
    /// rendered again, comes out byte for byte.
    #[test]
    fn real_upstream_json_lines_round_trip() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/logs/gitlab-runner-real.jsonl"
        ))
        .unwrap();
        let mut n = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: BTreeMap<String, serde_json::Value> = serde_json::from_str(line).unwrap();
            let level = match v["level"].as_str().unwrap() {
                "debug" => Level::Debug,
                "info" => Level::Info,
                "warning" => Level::Warning,
                "error" => Level::Error,
                "fatal" => Level::Fatal,
                _ => Level::Panic,
            };
            let fields = v
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "level" | "msg" | "time"))
                .map(|(k, v)| {
                    let val = match v {
                        serde_json::Value::String(s) => Value::Str(s.clone()),
                        serde_json::Value::Bool(b) => Value::Bool(*b),
                        serde_json::Value::Number(n) if n.is_u64() => {
                            Value::U64(n.as_u64().unwrap())
                        }
                        serde_json::Value::Number(n) if n.is_i64() => {
                            Value::I64(n.as_i64().unwrap())
                        }
                        serde_json::Value::Number(n) => Value::F64(n.as_f64().unwrap()),
                        other => panic!("unexpected {other}"),
                    };
                    (k.clone(), val)
                })
                .collect();
            let r = Record {
                level,
                msg: v["msg"].as_str().unwrap().to_owned(),
                fields,
                time: t(v["time"].as_str().unwrap()),
                elapsed_secs: 0,
            };
            assert_eq!(render(LogFormat::Json, false, &r), format!("{line}\n"));
            n += 1;
        }
        assert_eq!(n, 8);
    }

    #[test]
    fn runner_format_pads_and_colours() {
        let r = rec(Level::Info, "Job succeeded", &[("job", Value::U64(7))]);
        let plain = render(LogFormat::Runner, false, &r);
        assert_eq!(plain, format!("Job succeeded{}  job=7\n", " ".repeat(37)));
        let r = rec(Level::Error, "x", &[("k", Value::Str("a b".into()))]);
        let coloured = render(LogFormat::Runner, true, &r);
        assert_eq!(
            coloured,
            format!(
                "\x1b[31;1mERROR: x{}\x1b[0;m  \x1b[31;1mk\x1b[0;m=a b\n",
                " ".repeat(42)
            )
        );
    }

    #[test]
    fn text_plain_quotes_like_logrus() {
        let r = rec(
            Level::Error,
            "Problem while reading command output",
            &[
                ("error", Value::Str("read |0: file already closed".into())),
                ("job", Value::U64(92591490)),
                ("runner", Value::Str("17ecdb74".into())),
                ("empty", Value::Str(String::new())),
                ("q", Value::Str("say \"hi\"\n".into())),
            ],
        );
        assert_eq!(
            render(LogFormat::Text, false, &r),
            "time=\"2025-06-05T15:57:35+02:00\" level=error msg=\"Problem while reading command output\" \
             empty= error=\"read |0: file already closed\" job=92591490 q=\"say \\\"hi\\\"\\n\" runner=17ecdb74\n"
        );
        let empty = rec(Level::Info, "", &[]);
        assert_eq!(
            render(LogFormat::Text, false, &empty),
            "time=\"2025-06-05T15:57:35+02:00\" level=info\n"
        );
    }

    #[test]
    fn text_tty_layout() {
        let mut r = rec(
            Level::Warning,
            "Running in user-mode.",
            &[("a", Value::I64(1))],
        );
        r.elapsed_secs = 12;
        assert_eq!(
            render(LogFormat::Text, true, &r),
            format!(
                "\x1b[33mWARN\x1b[0m[0012] Running in user-mode.{}  \x1b[33ma\x1b[0m=1\n",
                " ".repeat(44 - 21)
            )
        );
    }
}
