//! tracing layers: [`FormatLayer`] writes each event as one line in an
//! upstream format, with the fields of every enclosing span; [`ErrorCounter`]
//! counts events at warning and above in `gitlab_runner_errors_total{level}`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Local};
use prometheus::IntCounterVec;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::format::{self, Level, Record, Value};
use super::{redact_str, LogFormat};

/// Field that turns an `error!` event into a `fatal` line (`fatal = true`).
pub const FATAL_FIELD: &str = "fatal";
/// Field that turns an `error!` event into a `panic` line (`panic = true`).
pub const PANIC_FIELD: &str = "panic";

/// Source of the current time (tests pin it).
pub type Clock = Arc<dyn Fn() -> DateTime<FixedOffset> + Send + Sync>;

/// Fields recorded on a span, stored in its extensions.
#[derive(Debug, Default)]
struct SpanFields(BTreeMap<String, Value>);

/// The fields of the spans around `event` (outermost first), then the
/// event's own, valued as the `runner` format prints them: what the Sentry
/// reporter tags an event with. The spans' fields are those [`FormatLayer`]
/// recorded.
pub(crate) fn event_fields<S>(event: &Event<'_>, ctx: &Context<'_, S>) -> BTreeMap<String, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut out = BTreeMap::new();
    if let Some(scope) = ctx.event_scope(event) {
        for span in scope.from_root() {
            if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                out.extend(f.iter().map(|(k, v)| (k.clone(), v.go_v())));
            }
        }
    }
    let mut c = Collect::default();
    event.record(&mut c);
    out.extend(c.fields.into_iter().map(|(k, v)| (k, v.go_v())));
    out
}

/// The fields of the current span and its parents, outermost first (a
/// panic's context); empty outside any span, or when called while the
/// subscriber is busy with an event.
pub(crate) fn current_span_fields() -> BTreeMap<String, String> {
    tracing::dispatcher::get_default(|d| {
        let mut out = BTreeMap::new();
        let (Some(reg), Some(id)) = (
            d.downcast_ref::<tracing_subscriber::Registry>(),
            d.current_span().id().cloned(),
        ) else {
            return out;
        };
        if let Some(span) = reg.span(&id) {
            for s in span.scope().from_root() {
                if let Some(SpanFields(f)) = s.extensions().get::<SpanFields>() {
                    out.extend(f.iter().map(|(k, v)| (k.clone(), v.go_v())));
                }
            }
        }
        out
    })
}

/// Collects event or span fields. `message` goes to `msg`; `fatal = true` /
/// `panic = true` raise the level and are not printed.
#[derive(Default)]
struct Collect {
    msg: Option<String>,
    fatal: bool,
    panic: bool,
    fields: BTreeMap<String, Value>,
}

impl Collect {
    fn put(&mut self, field: &Field, v: Value) {
        match (field.name(), &v) {
            ("message", _) => {
                self.msg = Some(match v {
                    Value::Str(s) => s,
                    other => format!("{other:?}"),
                });
            }
            (FATAL_FIELD, Value::Bool(b)) => self.fatal = *b,
            (PANIC_FIELD, Value::Bool(b)) => self.panic = *b,
            (name, _) => {
                self.fields.insert(name.to_owned(), v);
            }
        }
    }
}

impl Visit for Collect {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.put(field, Value::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put(field, Value::U128(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::Str(value.to_owned()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::Str(format!("{value:?}")));
    }
}

fn level_of(meta: &tracing::Metadata<'_>, c: &Collect) -> Level {
    if c.panic {
        return Level::Panic;
    }
    if c.fatal {
        return Level::Fatal;
    }
    match *meta.level() {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warning,
        tracing::Level::INFO => Level::Info,
        // Upstream's schema has no trace level.
        _ => Level::Debug,
    }
}

/// Writes events as lines in one of upstream's formats.
pub struct FormatLayer<W> {
    format: LogFormat,
    ansi: bool,
    writer: W,
    clock: Clock,
    start: DateTime<FixedOffset>,
}

impl<W> FormatLayer<W> {
    pub fn new(format: LogFormat, writer: W) -> Self {
        let clock: Clock = Arc::new(|| Local::now().fixed_offset());
        let start = clock();
        FormatLayer {
            format,
            ansi: false,
            writer,
            clock,
            start,
        }
    }

    /// Colour output (`runner` format) and the `INFO[0000]` layout (`text`).
    pub fn with_ansi(mut self, ansi: bool) -> Self {
        self.ansi = ansi;
        self
    }

    /// Replace the wall clock; the start time is re-read from it.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.start = clock();
        self.clock = clock;
        self
    }
}

impl<S, W> Layer<S> for FormatLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if ext.get_mut::<SpanFields>().is_none() {
            let mut c = Collect::default();
            attrs.record(&mut c);
            ext.insert(SpanFields(c.fields));
        }
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
            let mut c = Collect::default();
            values.record(&mut c);
            fields.extend(c.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut c = Collect::default();
        event.record(&mut c);
        let level = level_of(event.metadata(), &c);
        fields.extend(c.fields);
        for v in fields.values_mut() {
            if let Value::Str(s) = v {
                *s = redact_str(s);
            }
        }
        let now = (self.clock)();
        let rec = Record {
            level,
            msg: redact_str(&c.msg.unwrap_or_default()),
            fields,
            time: now,
            elapsed_secs: (now - self.start).num_seconds().max(0),
        };
        // Safety net: also mask the rendered line, in case escaping or a
        // span value slipped a secret past the per-field pass.
        let line = redact_str(&format::render(self.format, self.ansi, &rec));
        let mut w = self.writer.make_writer_for(event.metadata());
        // Logging must never fail the program; a broken stderr is ignored.
        let _ = w.write_all(line.as_bytes());
    }
}

/// Counts events at warning and above in `gitlab_runner_errors_total{level}`.
#[derive(Clone, Debug)]
pub struct ErrorCounter {
    errors: IntCounterVec,
}

impl ErrorCounter {
    /// `errors` must have exactly one label, `level`.
    pub fn new(errors: IntCounterVec) -> Self {
        ErrorCounter { errors }
    }
}

impl<S: Subscriber> Layer<S> for ErrorCounter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > tracing::Level::WARN {
            return;
        }
        let mut c = Collect::default();
        event.record(&mut c);
        let level = level_of(meta, &c);
        if let Ok(counter) = self.errors.get_metric_with_label_values(&[level.as_str()]) {
            counter.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    use crate::logging::testing::{fixed_clock, Buf};

    fn capture(format: LogFormat, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let layer = FormatLayer::new(format, buf.clone()).with_clock(fixed_clock());
        let sub = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(sub, f);
        buf.text()
    }

    #[test]
    fn span_fields_on_every_line_of_the_job() {
        let out = capture(LogFormat::Json, || {
            let span = tracing::info_span!(
                "job",
                job = 4711u64,
                project = 42u64,
                runner = "abcd1234",
                runner_name = "r1"
            );
            let _g = span.enter();
            tracing::info!("Checking for jobs... received");
            let inner = tracing::info_span!("stage", stage = "step_script");
            let _g2 = inner.enter();
            tracing::warn!(duration_s = 1.5, "Job failed: exit code 1");
        });
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        for l in &lines {
            assert_eq!(l["job"], 4711);
            assert_eq!(l["project"], 42);
            assert_eq!(l["runner"], "abcd1234");
            assert_eq!(l["runner_name"], "r1");
        }
        assert_eq!(lines[1]["stage"], "step_script");
        assert_eq!(lines[1]["level"], "warning");
        assert_eq!(lines[1]["duration_s"], 1.5);
    }

    #[test]
    fn json_keys_sorted_and_types() {
        let out = capture(LogFormat::Json, || {
            let err = std::io::Error::other("disk full");
            tracing::error!(
                zz = true,
                aa = -3i64,
                error = &err as &(dyn std::error::Error + 'static),
                "failed"
            );
        });
        assert_eq!(
            out,
            "{\"aa\":-3,\"error\":\"disk full\",\"level\":\"error\",\"msg\":\"failed\",\
             \"time\":\"2025-06-05T15:57:35+02:00\",\"zz\":true}\n"
        );
    }

    #[test]
    fn fatal_and_panic_fields() {
        let out = capture(LogFormat::Runner, || {
            tracing::error!(fatal = true, "Failed to create session server");
            tracing::error!(panic = true, "boom");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("FATAL: Failed to create session server"));
        assert!(lines[1].starts_with("PANIC: boom"));
        assert!(!out.contains("fatal=") && !out.contains("panic="));
    }

    #[test]
    fn error_counter_counts_warning_and_above() {
        let errors = IntCounterVec::new(
            prometheus::Opts::new("gitlab_runner_errors_total", "h"),
            &["level"],
        )
        .unwrap();
        let sub = tracing_subscriber::registry().with(ErrorCounter::new(errors.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::info!("no");
            tracing::debug!("no");
            tracing::warn!("w");
            tracing::warn!("w");
            tracing::error!("e");
            tracing::error!(fatal = true, "f");
            tracing::error!(panic = true, "p");
        });
        let get = |l: &str| errors.with_label_values(&[l]).get();
        assert_eq!(get("warning"), 2);
        assert_eq!(get("error"), 1);
        assert_eq!(get("fatal"), 1);
        assert_eq!(get("panic"), 1);
    }
}
