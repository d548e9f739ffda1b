//! A span-aware reader over one TOML table.
//!
//! Every key the loader asks for is recorded, so once a section has been
//! read, whatever is left is either a known gitlab-runner key termgate ignores
//! (collected for one warning and kept verbatim for `save`) or an unknown key
//! (an error with its line and a "did you mean").

use std::collections::BTreeMap;

use toml_edit::{Item, Key, TableLike, Value};

use super::Problem;

/// Problems and notes collected while reading one document.
pub(crate) struct Ctx<'t> {
    text: &'t str,
    /// File name used in messages.
    pub(crate) origin: &'t str,
    pub(crate) problems: Vec<Problem>,
    /// Known-but-unimplemented keys: (line, display name).
    pub(crate) ignored: Vec<(Option<usize>, String)>,
    /// Warnings other than the "ignored" summary (deprecations).
    pub(crate) warnings: Vec<String>,
}

impl<'t> Ctx<'t> {
    pub(crate) fn new(text: &'t str, origin: &'t str) -> Self {
        Self {
            text,
            origin,
            problems: Vec::new(),
            ignored: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub(crate) fn problem(
        &mut self,
        line: Option<usize>,
        section: &str,
        key: &str,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            line,
            section: section.to_string(),
            key: key.to_string(),
            message: message.into(),
        });
    }
}

/// One table being read: root, `[session_server]`, a `[[runners]]` entry, …
pub(crate) struct Section<'d> {
    table: &'d dyn TableLike,
    /// The same table as plain values, used to keep ignored keys verbatim.
    raw: Option<&'d toml::Table>,
    /// Human label for messages: "" for root, `[session_server]`, `[[runners]] #1`.
    pub(crate) label: String,
    /// Dotted TOML path of this table (`runners.docker`), "" for root.
    path: String,
    /// Header line of the table, if it has one.
    pub(crate) line: Option<usize>,
    /// Prefix for ignored keys in the warning (`[[runners]] #1`).
    scope: String,
    asked: Vec<&'static str>,
}

impl<'d> Section<'d> {
    pub(crate) fn new(
        table: &'d dyn TableLike,
        raw: Option<&'d toml::Table>,
        label: String,
        path: String,
        line: Option<usize>,
    ) -> Self {
        Self {
            table,
            raw,
            scope: label.clone(),
            label,
            path,
            line,
            asked: Vec::new(),
        }
    }

    /// Sets the prefix used when this section's ignored keys are listed.
    pub(crate) fn with_scope(mut self, scope: String) -> Self {
        self.scope = scope;
        self
    }

    fn entry(&mut self, key: &'static str) -> Option<(&'d Key, &'d Item)> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        let table: &'d dyn TableLike = self.table;
        table.get_key_value(key).filter(|(_, item)| !item.is_none())
    }

    /// Line of `key` in this section (key position, else value, else header).
    pub(crate) fn line_of(&self, ctx: &Ctx<'_>, key: &str) -> Option<usize> {
        let (k, item) = self.table.get_key_value(key)?;
        k.span()
            .or_else(|| item.span())
            .map(|s| ctx.line_at(s.start))
            .or(self.line)
    }

    fn type_error(&self, ctx: &mut Ctx<'_>, key: &'static str, k: &Key, item: &Item, want: &str) {
        let line = k
            .span()
            .or_else(|| item.span())
            .map(|s| ctx.line_at(s.start));
        let found = describe_item(item);
        ctx.problem(
            line,
            &self.label,
            key,
            format!("expected {want}, found {found}"),
        );
    }

    fn value(&mut self, ctx: &mut Ctx<'_>, key: &'static str, want: &str) -> Option<&'d Value> {
        let (k, item) = self.entry(key)?;
        match item {
            Item::Value(v) => Some(v),
            other => {
                self.type_error(ctx, key, k, other, want);
                None
            }
        }
    }

    pub(crate) fn string(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
        let (k, item) = self.entry(key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.type_error(ctx, key, k, item, "a string");
                None
            }
        }
    }

    /// A string, with "" treated as absent (gitlab-runner's zero value).
    pub(crate) fn opt_string(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<String> {
        self.string(ctx, key).filter(|s| !s.is_empty())
    }

    pub(crate) fn bool(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<bool> {
        let (k, item) = self.entry(key)?;
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.type_error(ctx, key, k, item, "a boolean (true or false)");
                None
            }
        }
    }

    pub(crate) fn int(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<i64> {
        let (k, item) = self.entry(key)?;
        match item.as_integer() {
            Some(i) => Some(i),
            None => {
                self.type_error(ctx, key, k, item, "an integer");
                None
            }
        }
    }

    /// A non-negative integer; negative values are an error.
    pub(crate) fn uint(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<u64> {
        let i = self.int(ctx, key)?;
        match u64::try_from(i) {
            Ok(u) => Some(u),
            Err(_) => {
                let line = self.line_of(ctx, key);
                ctx.problem(
                    line,
                    &self.label,
                    key,
                    format!("must not be negative, found {i}"),
                );
                None
            }
        }
    }

    pub(crate) fn usize(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<usize> {
        let u = self.uint(ctx, key)?;
        match usize::try_from(u) {
            Ok(v) => Some(v),
            Err(_) => {
                let line = self.line_of(ctx, key);
                ctx.problem(line, &self.label, key, format!("{u} is too large"));
                None
            }
        }
    }

    /// An array of strings.
    pub(crate) fn strings(&mut self, ctx: &mut Ctx<'_>, key: &'static str) -> Option<Vec<String>> {
        let v = self.value(ctx, key, "an array of strings")?;
        self.string_array(ctx, key, v)
    }

    /// A string or an array of strings (gitlab-runner's `StringOrArray`).
    pub(crate) fn string_or_strings(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<Vec<String>> {
        let v = self.value(ctx, key, "a string or an array of strings")?;
        match v.as_str() {
            Some(s) => Some(vec![s.to_string()]),
            None => self.string_array(ctx, key, v),
        }
    }

    fn string_array(&self, ctx: &mut Ctx<'_>, key: &'static str, v: &Value) -> Option<Vec<String>> {
        let line = self.line_of(ctx, key);
        let Some(arr) = v.as_array() else {
            let found = describe_value(v);
            ctx.problem(
                line,
                &self.label,
                key,
                format!("expected an array of strings, found {found}"),
            );
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        for (i, elem) in arr.iter().enumerate() {
            match elem.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    let found = describe_value(elem);
                    ctx.problem(
                        line,
                        &self.label,
                        key,
                        format!("element {i}: expected a string, found {found}"),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A table of string values (`tmpfs`, `sysctls`, …).
    pub(crate) fn string_map(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<BTreeMap<String, String>> {
        self.map(ctx, key, "a string", |v| v.as_str().map(str::to_string))
    }

    /// A table of boolean values (`feature_flags`).
    pub(crate) fn bool_map(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<BTreeMap<String, bool>> {
        self.map(ctx, key, "a boolean", Value::as_bool)
    }

    fn map<T>(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        want: &str,
        get: impl Fn(&Value) -> Option<T>,
    ) -> Option<BTreeMap<String, T>> {
        let (k, item) = self.entry(key)?;
        let Some(table) = item.as_table_like() else {
            self.type_error(ctx, key, k, item, "a table");
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (name, entry) in table.iter() {
            match entry.as_value().and_then(&get) {
                Some(v) => {
                    out.insert(name.to_string(), v);
                }
                None => {
                    let line = table
                        .get_key_value(name)
                        .and_then(|(nk, _)| nk.span())
                        .map(|s| ctx.line_at(s.start));
                    let found = describe_item(entry);
                    ctx.problem(
                        line,
                        &self.label,
                        &format!("{key}.{name}"),
                        format!("expected {want}, found {found}"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A TOML datetime with an offset (or an RFC 3339 string).
    pub(crate) fn datetime(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let v = self.value(ctx, key, "a date-time such as 2024-01-02T03:04:05Z")?;
        let text = match v {
            Value::Datetime(d) => d.value().to_string(),
            Value::String(s) => s.value().clone(),
            other => {
                let line = self.line_of(ctx, key);
                let found = describe_value(other);
                ctx.problem(
                    line,
                    &self.label,
                    key,
                    format!("expected a date-time such as 2024-01-02T03:04:05Z, found {found}"),
                );
                return None;
            }
        };
        match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(dt) => Some(dt.with_timezone(&chrono::Utc)),
            Err(e) => {
                let line = self.line_of(ctx, key);
                ctx.problem(
                    line,
                    &self.label,
                    key,
                    format!("invalid date-time {text:?} (it needs a UTC offset such as Z): {e}"),
                );
                None
            }
        }
    }

    /// A sub-table (`[session_server]`, `[runners.docker]`), std or inline.
    pub(crate) fn table(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        label: String,
    ) -> Option<Section<'d>> {
        let (k, item) = self.entry(key)?;
        let Some(table) = item.as_table_like() else {
            self.type_error(ctx, key, k, item, "a table");
            return None;
        };
        let line = item
            .span()
            .or_else(|| k.span())
            .map(|s| ctx.line_at(s.start));
        let raw = self
            .raw
            .and_then(|r| r.get(key))
            .and_then(toml::Value::as_table);
        Some(Section::new(table, raw, label, self.child_path(key), line))
    }

    /// An array of tables (`[[runners]]`), each with its header line.
    pub(crate) fn tables(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Vec<(Option<usize>, &'d dyn TableLike, Option<&'d toml::Table>)> {
        let Some((k, item)) = self.entry(key) else {
            return Vec::new();
        };
        let raws: Vec<Option<&'d toml::Table>> = self
            .raw
            .and_then(|r| r.get(key))
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().map(toml::Value::as_table).collect())
            .unwrap_or_default();
        let raw_at = |i: usize| raws.get(i).copied().flatten();
        match item {
            Item::ArrayOfTables(arr) => arr
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let line = t.span().map(|s| ctx.line_at(s.start));
                    (line, t as &dyn TableLike, raw_at(i))
                })
                .collect(),
            Item::Value(Value::Array(arr)) => {
                let mut out = Vec::new();
                for (i, v) in arr.iter().enumerate() {
                    match v.as_inline_table() {
                        Some(t) => {
                            let line = t.span().map(|s| ctx.line_at(s.start));
                            out.push((line, t as &dyn TableLike, raw_at(i)));
                        }
                        None => {
                            self.type_error(ctx, key, k, item, "an array of tables");
                            return Vec::new();
                        }
                    }
                }
                out
            }
            other => {
                self.type_error(ctx, key, k, other, "an array of tables ([[runners]])");
                Vec::new()
            }
        }
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Ends reading: keys not asked for are checked against `known_ignored`
    /// (noted, and returned verbatim) or reported as unknown.
    pub(crate) fn finish(&self, ctx: &mut Ctx<'_>, known_ignored: &[&str]) -> toml::Table {
        let mut kept = toml::Table::new();
        for (name, item) in self.table.iter() {
            if item.is_none() || self.asked.contains(&name) {
                continue;
            }
            if known_ignored.contains(&name) {
                let shown = match item {
                    Item::Table(_) => format!("[{}]", self.child_path(name)),
                    Item::ArrayOfTables(_) => format!("[[{}]]", self.child_path(name)),
                    Item::Value(Value::InlineTable(_)) => format!("[{}]", self.child_path(name)),
                    _ => name.to_string(),
                };
                let line = self
                    .table
                    .get_key_value(name)
                    .and_then(|(k, _)| k.span())
                    .or_else(|| item.span())
                    .map(|s| ctx.line_at(s.start));
                let shown = if self.scope.is_empty() {
                    shown
                } else {
                    format!("{} {shown}", self.scope)
                };
                ctx.ignored.push((line, shown));
                if let Some(v) = self.raw.and_then(|r| r.get(name)) {
                    kept.insert(name.to_string(), v.clone());
                }
                continue;
            }
            let key_line = self
                .table
                .get_key_value(name)
                .and_then(|(k, _)| k.span())
                .map(|s| ctx.line_at(s.start));
            let (shown, line) = describe_unknown(ctx, &self.child_path(name), item);
            let candidates = self
                .asked
                .iter()
                .copied()
                .chain(known_ignored.iter().copied());
            let hint = match suggest(name, candidates) {
                Some(s) => format!("; did you mean \"{s}\"?"),
                None => String::new(),
            };
            let message = match shown {
                Some(header) => format!("unknown section {header}{hint}"),
                None => format!("unknown key{hint}"),
            };
            ctx.problem(line.or(key_line).or(self.line), &self.label, name, message);
        }
        kept
    }
}

/// For an unknown table, the header the user wrote (descending through
/// implicit parents: `[[runner.kubernetes.volumes.pvc]]`) and its line.
fn describe_unknown(ctx: &Ctx<'_>, path: &str, item: &Item) -> (Option<String>, Option<usize>) {
    match item {
        Item::Table(t) => {
            if t.is_implicit() || t.span().is_none() {
                for (child, child_item) in t.iter() {
                    if child_item.is_table() || child_item.is_array_of_tables() {
                        return describe_unknown(ctx, &format!("{path}.{child}"), child_item);
                    }
                }
            }
            let line = t.span().map(|s| ctx.line_at(s.start));
            (Some(format!("[{path}]")), line)
        }
        Item::ArrayOfTables(a) => {
            let line = a
                .iter()
                .next()
                .and_then(|t| t.span())
                .map(|s| ctx.line_at(s.start));
            (Some(format!("[[{path}]]")), line)
        }
        _ => (None, None),
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

fn describe_item(item: &Item) -> String {
    match item {
        Item::None => "nothing".to_string(),
        Item::Value(v) => describe_value(v),
        Item::Table(_) => "a table".to_string(),
        Item::ArrayOfTables(_) => "an array of tables".to_string(),
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("a string ({:?})", s.value()),
        Value::Integer(i) => format!("an integer ({})", i.value()),
        Value::Float(f) => format!("a float ({})", f.value()),
        Value::Boolean(b) => format!("a boolean ({})", b.value()),
        Value::Datetime(d) => format!("a date-time ({})", d.value()),
        Value::Array(_) => "an array".to_string(),
        Value::InlineTable(_) => "a table".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> toml_edit::ImDocument<String> {
        toml_edit::ImDocument::parse(text.to_string()).unwrap()
    }

    #[test]
    fn suggests_close_keys_only() {
        let known = ["builds_dir", "cache_dir", "executor"];
        assert_eq!(
            suggest("buids_dir", known.iter().copied()),
            Some("builds_dir")
        );
        assert_eq!(suggest("Executor", known.iter().copied()), Some("executor"));
        assert_eq!(suggest("zzz", known.iter().copied()), None);
    }

    #[test]
    fn reads_typed_values_with_lines() {
        let text = "a = 1\nb = \"x\"\nc = [\"p\", \"q\"]\nd = -3\ne = true\n";
        let d = doc(text);
        let mut ctx = Ctx::new(text, "t.toml");
        let mut s = Section::new(d.as_table(), None, String::new(), String::new(), None);
        assert_eq!(s.int(&mut ctx, "a"), Some(1));
        assert_eq!(s.string(&mut ctx, "b").as_deref(), Some("x"));
        assert_eq!(s.strings(&mut ctx, "c"), Some(vec!["p".into(), "q".into()]));
        assert_eq!(s.uint(&mut ctx, "d"), None);
        assert_eq!(s.bool(&mut ctx, "e"), Some(true));
        assert_eq!(s.string(&mut ctx, "missing"), None);
        assert_eq!(ctx.problems.len(), 1);
        assert_eq!(ctx.problems[0].line, Some(4));
        assert_eq!(ctx.problems[0].key, "d");
        assert!(s.finish(&mut ctx, &[]).is_empty());
        assert_eq!(ctx.problems.len(), 1);
    }

    #[test]
    fn type_errors_name_what_was_found() {
        let text = "x = 1\nconcurrent = \"ten\"\n";
        let d = doc(text);
        let mut ctx = Ctx::new(text, "t.toml");
        let mut s = Section::new(d.as_table(), None, String::new(), String::new(), None);
        assert_eq!(s.usize(&mut ctx, "concurrent"), None);
        let p = &ctx.problems[0];
        assert_eq!(p.line, Some(2));
        assert!(
            p.message
                .contains("expected an integer, found a string (\"ten\")"),
            "{}",
            p.message
        );
    }

    #[test]
    fn string_or_array() {
        let text = "a = \"always\"\nb = [\"never\", \"always\"]\nc = 3\n";
        let d = doc(text);
        let mut ctx = Ctx::new(text, "t.toml");
        let mut s = Section::new(d.as_table(), None, String::new(), String::new(), None);
        assert_eq!(
            s.string_or_strings(&mut ctx, "a"),
            Some(vec!["always".into()])
        );
        assert_eq!(
            s.string_or_strings(&mut ctx, "b"),
            Some(vec!["never".into(), "always".into()])
        );
        assert_eq!(s.string_or_strings(&mut ctx, "c"), None);
        assert_eq!(ctx.problems.len(), 1);
    }

    #[test]
    fn unknown_nested_section_is_named_by_its_header() {
        let text = "a = 1\n\n[[runner.kubernetes.volumes.pvc]]\nname = \"x\"\n";
        let d = doc(text);
        let mut ctx = Ctx::new(text, "t.toml");
        let mut s = Section::new(d.as_table(), None, String::new(), String::new(), None);
        let _ = s.int(&mut ctx, "a");
        let _ = s.tables(&mut ctx, "runners");
        let _ = s.finish(&mut ctx, &[]);
        let p = &ctx.problems[0];
        assert_eq!(p.line, Some(3));
        assert_eq!(p.key, "runner");
        assert!(
            p.message.contains("[[runner.kubernetes.volumes.pvc]]"),
            "{}",
            p.message
        );
        assert!(
            p.message.contains("did you mean \"runners\""),
            "{}",
            p.message
        );
    }

    #[test]
    fn ignored_keys_are_noted_and_kept() {
        let text = "[machine]\nx = 1\n[cache]\ny = 2\n";
        let d = doc(text);
        let raw: toml::Table = toml::from_str(text).unwrap();
        let mut ctx = Ctx::new(text, "t.toml");
        let s = Section::new(d.as_table(), Some(&raw), String::new(), String::new(), None);
        let kept = s.finish(&mut ctx, &["machine", "cache"]);
        assert!(ctx.problems.is_empty());
        let names: Vec<&str> = ctx.ignored.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, vec!["[machine]", "[cache]"]);
        assert_eq!(ctx.ignored[0].0, Some(1));
        assert_eq!(kept.len(), 2);
    }
}
