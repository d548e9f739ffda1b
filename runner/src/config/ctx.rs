//! Reading the model's values for one document: each becomes its typed
//! value or a [`Problem`] naming the line and key, and keys the model does
//! not name are sorted into unimplemented (noted) and unknown (problems).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::doc::{Doc, Step};
use super::model::{Checked, Map, Raw, Section, Shape, StringOrList};
use super::schema::{has, PULL_POLICIES};
use super::Problem;
use termgate::duration::parse_go as parse_go_duration;

/// What reading one document found besides the config.
pub(crate) struct Ctx<'t> {
    pub(super) doc: Doc<'t>,
    /// File name used in messages.
    pub(super) origin: &'t str,
    pub(crate) problems: Vec<Problem>,
    /// Known-but-unimplemented keys: (line, display name).
    pub(crate) ignored: Vec<(Option<usize>, String)>,
    /// Warnings other than the "ignored" summary (deprecations, executors).
    pub(crate) warnings: Vec<String>,
}

/// Where a section is, for messages and look-ups.
pub(super) struct Sec {
    /// `""`, `[session_server]`, `[[runners]] #1`, `[[runners]] #1 [runners.docker]`.
    pub(super) label: String,
    /// Prefix of this section's ignored keys in the warning.
    pub(super) scope: String,
    /// Dotted TOML name (`runners.docker`), for the headers messages show.
    pub(super) dotted: &'static str,
    /// Where it is in the document.
    pub(super) path: Vec<Step>,
    /// Header line.
    pub(super) line: Option<usize>,
}

impl Sec {
    pub(super) fn child(&self, key: &str) -> String {
        if self.dotted.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.dotted)
        }
    }
}

impl<'t> Ctx<'t> {
    pub(crate) fn new(doc: Doc<'t>, origin: &'t str) -> Self {
        Self {
            doc,
            origin,
            problems: Vec::new(),
            ignored: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        self.doc.line_at(offset)
    }

    pub(super) fn problem(
        &mut self,
        line: Option<usize>,
        s: &Sec,
        key: &str,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            line,
            section: s.label.clone(),
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Line of `key` in `s` (the key, else its value, else the header).
    pub(super) fn line(&self, s: &Sec, key: &str) -> Option<usize> {
        self.doc.key_line(&s.path, key).or(s.line)
    }

    /// The value, or a problem saying what was found instead.
    pub(super) fn take<T: Shape>(
        &mut self,
        s: &Sec,
        key: &str,
        v: Option<Checked<T>>,
    ) -> Option<T> {
        match v? {
            Checked::Ok(v) => Some(v),
            Checked::Wrong(message) => {
                let message = match self.doc.non_value(&s.path, key) {
                    Some(found) => format!("expected {}, found {found}", T::WANT),
                    None => message,
                };
                let line = self.line(s, key);
                self.problem(line, s, key, message);
                None
            }
        }
    }

    /// A string, with "" treated as absent (gitlab-runner's zero value).
    pub(super) fn string(&mut self, s: &Sec, key: &str, v: Raw<String>) -> Option<String> {
        self.take(s, key, v).filter(|v| !v.is_empty())
    }

    pub(super) fn path(&mut self, s: &Sec, key: &str, v: Raw<String>) -> Option<PathBuf> {
        self.string(s, key, v).map(PathBuf::from)
    }

    /// A non-negative integer; negative values are an error.
    pub(super) fn uint(&mut self, s: &Sec, key: &str, v: Raw<i64>) -> Option<u64> {
        let i = self.take(s, key, v)?;
        match u64::try_from(i) {
            Ok(u) => Some(u),
            Err(_) => {
                let line = self.line(s, key);
                self.problem(line, s, key, format!("must not be negative, found {i}"));
                None
            }
        }
    }

    pub(super) fn usize(&mut self, s: &Sec, key: &str, v: Raw<i64>) -> Option<usize> {
        let u = self.uint(s, key, v)?;
        match usize::try_from(u) {
            Ok(v) => Some(v),
            Err(_) => {
                let line = self.line(s, key);
                self.problem(line, s, key, format!("{u} is too large"));
                None
            }
        }
    }

    /// An integer where values <= 0 mean the default (gitlab-runner's
    /// rule): `None` for those, as for no value.
    pub(super) fn positive<T: TryFrom<i64>>(
        &mut self,
        s: &Sec,
        key: &str,
        value: Raw<i64>,
    ) -> Option<T> {
        let n = self.take(s, key, value)?;
        if n > 0 {
            T::try_from(n).ok()
        } else {
            None
        }
    }

    pub(super) fn strings(&mut self, s: &Sec, key: &str, v: Raw<Vec<String>>) -> Vec<String> {
        self.take(s, key, v).unwrap_or_default()
    }

    pub(super) fn bool(&mut self, s: &Sec, key: &str, v: Raw<bool>) -> bool {
        self.take(s, key, v).unwrap_or_default()
    }

    /// A sub-table, or a problem when the file holds something else.
    pub(super) fn section<T>(&mut self, s: &Sec, key: &str, v: Option<Section<T>>) -> Option<T> {
        let v = v?;
        match (v, self.doc.is_table(&s.path, key)) {
            (Section::Ok(v), true) => Some(v),
            _ => {
                self.type_error(s, key, "a table");
                None
            }
        }
    }

    pub(super) fn type_error(&mut self, s: &Sec, key: &str, want: &str) {
        let found = self.doc.describe(&s.path, key);
        let line = self.line(s, key);
        self.problem(line, s, key, format!("expected {want}, found {found}"));
    }

    pub(super) fn strings_map(
        &mut self,
        s: &Sec,
        key: &'static str,
        v: Map<String>,
    ) -> BTreeMap<String, String> {
        self.map(s, key, "a string", v).unwrap_or_default()
    }

    /// `pull_policy` and `allowed_pull_policies`: each must be one termgate knows.
    pub(super) fn pull_policies(
        &mut self,
        s: &Sec,
        key: &str,
        v: Raw<StringOrList>,
    ) -> Vec<String> {
        let values = self.take(s, key, v).map(|v| v.0).unwrap_or_default();
        for v in &values {
            if !PULL_POLICIES.contains(&v.as_str()) {
                let line = self.line(s, key);
                let allowed = PULL_POLICIES.join(", ");
                self.problem(
                    line,
                    s,
                    key,
                    format!("unsupported pull policy {v:?}; allowed values: {allowed}"),
                );
            }
        }
        values
    }

    /// A table of values (`tmpfs`, `feature_flags`): every entry of the
    /// wrong type is a problem under `key.name`, at the entry's line.
    pub(super) fn map<T>(
        &mut self,
        s: &Sec,
        key: &'static str,
        want: &str,
        v: Map<T>,
    ) -> Option<BTreeMap<String, T>> {
        let entries = self.section(s, key, v)?;
        let mut path = s.path.clone();
        path.push(Step::Key(key));
        let mut out = BTreeMap::new();
        let mut ok = true;
        // In the file's order, so that problems on one line keep it.
        let order = self.doc.keys(&path);
        let mut entries = entries;
        for name in order {
            let Some(entry) = entries.remove(name) else {
                continue;
            };
            match entry {
                Checked::Ok(v) => {
                    out.insert(name.to_string(), v);
                }
                Checked::Wrong(_) => {
                    let found = self.doc.describe(&path, name);
                    let line = self.doc.key_line(&path, name);
                    self.problem(
                        line,
                        s,
                        &format!("{key}.{name}"),
                        format!("expected {want}, found {found}"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// Sorts the keys the model does not name: gitlab-runner keys termgate
    /// does not implement are noted and returned verbatim; others are
    /// unknown, with a "did you mean".
    pub(super) fn finish(
        &mut self,
        s: &Sec,
        mut other: toml::Table,
        known: &[&str],
        ignored: &str,
    ) -> toml::Table {
        let mut kept = toml::Table::new();
        for name in self.doc.keys(&s.path) {
            let Some(value) = other.remove(name) else {
                continue;
            };
            let child = s.child(name);
            if has(ignored, name) {
                let (shown, line) = self.doc.shown(&s.path, &child, name);
                let shown = if s.scope.is_empty() {
                    shown
                } else {
                    format!("{} {shown}", s.scope)
                };
                self.ignored.push((line, shown));
                kept.insert(name.to_string(), value);
                continue;
            }
            let key_line = self.doc.key_line(&s.path, name);
            let (header, line) = self.doc.unknown_section(&s.path, &child, name);
            let hint = did_you_mean(
                name,
                known.iter().copied().chain(ignored.split_whitespace()),
            );
            let message = match header {
                Some(header) => format!("unknown section {header}{hint}"),
                None => format!("unknown key{hint}"),
            };
            self.problem(line.or(key_line).or(s.line), s, name, message);
        }
        kept
    }

    pub(super) fn one_of(
        &mut self,
        s: &Sec,
        key: &str,
        v: Raw<String>,
        allowed: &[&str],
    ) -> Option<String> {
        let v = self.string(s, key, v)?;
        if allowed.contains(&v.as_str()) {
            return Some(v);
        }
        let hint = did_you_mean(&v, allowed.iter().copied());
        let line = self.line(s, key);
        let message = format!(
            "unsupported value {v:?}; allowed values: {}{hint}",
            allowed.join(", ")
        );
        self.problem(line, s, key, message);
        None
    }

    pub(super) fn duration(&mut self, s: &Sec, key: &str, v: Raw<String>) -> Option<String> {
        let v = self.string(s, key, v)?;
        match parse_go_duration(&v) {
            Ok(_) => Some(v),
            Err(e) => {
                let line = self.line(s, key);
                let message = format!("{e}; expected a duration such as \"15m\" or \"1h30m\"");
                self.problem(line, s, key, message);
                None
            }
        }
    }
}

/// The closest known key, if close enough to be a likely typo.
pub(crate) fn suggest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = unknown.to_ascii_lowercase();
    known
        .map(|k| (k, strsim::jaro_winkler(&lower, &k.to_ascii_lowercase())))
        .filter(|(_, score)| *score >= 0.85)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

/// `; did you mean "key"?` for a likely typo, else nothing.
pub(crate) fn did_you_mean<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> String {
    suggest(unknown, known)
        .map(|k| format!("; did you mean \"{k}\"?"))
        .unwrap_or_default()
}
