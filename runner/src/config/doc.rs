//! Lines and shapes from the parsed document, for what serde cannot say:
//! where a key is (every message names the key's line, implicit tables have
//! no span of their own) and whether a table was written as `[t]`, `[[t]]`
//! or inline (the messages and the "ignored" warning name them as written).

use toml_edit::{ImDocument, Item, Key, TableLike, Value};

/// A step into the document: a key, or an entry of an array of tables.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Key(&'static str),
    Index(usize),
}

pub(crate) struct Doc<'t> {
    doc: &'t ImDocument<&'t str>,
}

impl<'t> Doc<'t> {
    pub(crate) fn new(doc: &'t ImDocument<&'t str>) -> Self {
        Self { doc }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        let text = self.doc.raw();
        let end = offset.min(text.len());
        text.bytes().take(end).filter(|b| *b == b'\n').count() + 1
    }

    fn line_of_span(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        span.map(|s| self.line_at(s.start))
    }

    /// The table at `path`, if there is one.
    pub(crate) fn table(&self, path: &[Step]) -> Option<&'t dyn TableLike> {
        let mut table: &'t dyn TableLike = self.doc.as_table();
        let mut steps = path.iter().peekable();
        while let Some(step) = steps.next() {
            let Step::Key(key) = step else { return None };
            let item = table.get(key)?;
            table = match (item, steps.peek()) {
                (Item::ArrayOfTables(a), Some(Step::Index(i))) => {
                    steps.next();
                    a.get(*i)?
                }
                (Item::Value(Value::Array(a)), Some(Step::Index(i))) => {
                    steps.next();
                    a.get(*i)?.as_inline_table()?
                }
                (item, _) => item.as_table_like()?,
            };
        }
        Some(table)
    }

    /// `key` in the table at `path`, with its item.
    pub(crate) fn entry(&self, path: &[Step], key: &str) -> Option<(&'t Key, &'t Item)> {
        self.table(path)?
            .get_key_value(key)
            .filter(|(_, item)| !item.is_none())
    }

    /// Line of `key` in the table at `path` (key position, else value).
    pub(crate) fn key_line(&self, path: &[Step], key: &str) -> Option<usize> {
        let (k, item) = self.entry(path, key)?;
        self.line_of_span(k.span().or_else(|| item.span()))
    }

    /// Header line of the table `key` in the table at `path` (the table's
    /// own span, else its key's).
    pub(crate) fn header_line(&self, path: &[Step], key: &str) -> Option<usize> {
        let (k, item) = self.entry(path, key)?;
        self.line_of_span(item.span().or_else(|| k.span()))
    }

    /// Header line of entry `index` of the array of tables `key`.
    pub(crate) fn entry_line(&self, key: &str, index: usize) -> Option<usize> {
        let (_, item) = self.entry(&[], key)?;
        let span = match item {
            Item::ArrayOfTables(a) => a.get(index)?.span(),
            Item::Value(Value::Array(a)) => a.get(index)?.span(),
            _ => None,
        };
        self.line_of_span(span)
    }

    /// What the file holds at `key`, when it is not a plain value: tables
    /// and arrays of tables are described here, values by their type.
    pub(crate) fn non_value(&self, path: &[Step], key: &str) -> Option<&'static str> {
        match self.entry(path, key)?.1 {
            Item::Table(_) => Some("a table"),
            Item::ArrayOfTables(_) => Some("an array of tables"),
            Item::None | Item::Value(_) => None,
        }
    }

    /// What the file holds at `key`, as messages describe it.
    pub(crate) fn describe(&self, path: &[Step], key: &str) -> String {
        let Some((_, item)) = self.entry(path, key) else {
            return "nothing".to_string();
        };
        match item {
            Item::None => "nothing".to_string(),
            Item::Table(_) => "a table".to_string(),
            Item::ArrayOfTables(_) => "an array of tables".to_string(),
            Item::Value(Value::String(x)) => format!("a string ({:?})", x.value()),
            Item::Value(Value::Integer(x)) => format!("an integer ({})", x.value()),
            Item::Value(Value::Float(x)) => format!("a float ({})", x.value()),
            Item::Value(Value::Boolean(x)) => format!("a boolean ({})", x.value()),
            Item::Value(Value::Datetime(x)) => format!("a date-time ({})", x.value()),
            Item::Value(Value::Array(_)) => "an array".to_string(),
            Item::Value(Value::InlineTable(_)) => "a table".to_string(),
        }
    }

    pub(crate) fn is_table(&self, path: &[Step], key: &str) -> bool {
        self.entry(path, key)
            .is_some_and(|(_, item)| item.is_table_like())
    }

    /// Whether `key` holds tables: `[[key]]`, or an array (whose entries
    /// are checked one by one).
    pub(crate) fn is_table_list(&self, path: &[Step], key: &str) -> bool {
        self.entry(path, key).is_some_and(|(_, item)| {
            matches!(item, Item::ArrayOfTables(_) | Item::Value(Value::Array(_)))
        })
    }

    /// An ignored key as the warning names it: `[path]` for a table,
    /// `[[path]]` for an array of tables, else the key; with its line.
    pub(crate) fn shown(&self, path: &[Step], dotted: &str, key: &str) -> (String, Option<usize>) {
        let Some((k, item)) = self.entry(path, key) else {
            return (key.to_string(), None);
        };
        let shown = match item {
            Item::Table(_) | Item::Value(Value::InlineTable(_)) => format!("[{dotted}]"),
            Item::ArrayOfTables(_) => format!("[[{dotted}]]"),
            _ => key.to_string(),
        };
        (shown, self.line_of_span(k.span().or_else(|| item.span())))
    }

    /// For an unknown table, the header the user wrote (descending through
    /// implicit parents: `[[runner.kubernetes.volumes.pvc]]`) and its line.
    pub(crate) fn unknown_section(
        &self,
        path: &[Step],
        dotted: &str,
        key: &str,
    ) -> (Option<String>, Option<usize>) {
        match self.entry(path, key) {
            Some((_, item)) => self.describe_unknown(dotted, item),
            None => (None, None),
        }
    }

    fn describe_unknown(&self, dotted: &str, item: &Item) -> (Option<String>, Option<usize>) {
        match item {
            Item::Table(t) => {
                if t.is_implicit() || t.span().is_none() {
                    for (child, child_item) in t.iter() {
                        if child_item.is_table() || child_item.is_array_of_tables() {
                            return self.describe_unknown(&format!("{dotted}.{child}"), child_item);
                        }
                    }
                }
                (Some(format!("[{dotted}]")), self.line_of_span(t.span()))
            }
            Item::ArrayOfTables(a) => (
                Some(format!("[[{dotted}]]")),
                self.line_of_span(a.iter().next().and_then(|t| t.span())),
            ),
            _ => (None, None),
        }
    }

    /// Names in the table at `path`, in the order the file has them.
    pub(crate) fn keys(&self, path: &[Step]) -> Vec<&'t str> {
        self.table(path)
            .map(|t| {
                t.iter()
                    .filter(|(_, item)| !item.is_none())
                    .map(|(k, _)| k)
                    .collect()
            })
            .unwrap_or_default()
    }
}
