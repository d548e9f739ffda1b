//! `config.toml` as written: serde-derived structs mirroring gitlab-runner's
//! sections, deserialized once from the parsed document.
//!
//! The sections themselves (each key once: its type and how it is read) are
//! declared in `sections`; this module holds the types they are read into.
//!
//! Values are read leniently, so that one load reports every problem rather
//! than the first: a scalar is a [`Checked`] (the wanted type, or the message
//! for what was found instead), a table a [`Section`] (the table, or "this is
//! not a table"). Keys a struct does not name land in its `other` table,
//! verbatim; `Ctx::finish` sorts them into gitlab-runner keys termgate does
//! not implement (kept, so `save` writes them back) and unknown keys (errors).
//!
//! Lines are not carried here: a message names the line of the *key*, and
//! serde sees key spans only for map keys, while values (even `Spanned`
//! ones) have no span at all when they are implicit tables
//! (`[runners.cache.s3]` without `[runners.cache]`, `feature_flags.X = true`).
//! `doc::Doc` looks them up in the same parsed document.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A scalar (or array of scalars) as written.
#[derive(Debug)]
pub(crate) enum Checked<T> {
    Ok(T),
    /// Why the value is not a `T`: `expected an integer, found a string ("ten")`.
    Wrong(String),
}

/// A key's value type, as the messages name it.
pub(crate) trait Shape: Sized {
    /// What the file should hold there ("an integer").
    const WANT: &'static str;
    /// The value, or the full message for what was found instead.
    fn from_value(value: toml::Value) -> Result<Self, String>;
}

impl<'de, T: Shape> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match T::from_value(toml::Value::deserialize(d)?) {
            Ok(v) => Checked::Ok(v),
            Err(message) => Checked::Wrong(message),
        })
    }
}

fn expected(want: &str, found: &toml::Value) -> String {
    format!("expected {want}, found {}", describe(found))
}

/// A value, as messages describe it (`a string ("ten")`).
pub(crate) fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("a string ({s:?})"),
        toml::Value::Integer(i) => format!("an integer ({i})"),
        toml::Value::Float(f) => format!("a float ({f})"),
        toml::Value::Boolean(b) => format!("a boolean ({b})"),
        toml::Value::Datetime(d) => format!("a date-time ({d})"),
        toml::Value::Array(_) => "an array".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

impl Shape for String {
    const WANT: &'static str = "a string";
    fn from_value(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => Ok(s),
            other => Err(expected(Self::WANT, &other)),
        }
    }
}

impl Shape for i64 {
    const WANT: &'static str = "an integer";
    fn from_value(value: toml::Value) -> Result<Self, String> {
        value
            .as_integer()
            .ok_or_else(|| expected(Self::WANT, &value))
    }
}

impl Shape for bool {
    const WANT: &'static str = "a boolean (true or false)";
    fn from_value(value: toml::Value) -> Result<Self, String> {
        value.as_bool().ok_or_else(|| expected(Self::WANT, &value))
    }
}

/// An array of strings.
impl Shape for Vec<String> {
    const WANT: &'static str = "an array of strings";
    fn from_value(value: toml::Value) -> Result<Self, String> {
        let toml::Value::Array(items) = value else {
            return Err(expected(Self::WANT, &value));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                toml::Value::String(s) => Ok(s),
                other => Err(format!("element {i}: {}", expected("a string", &other))),
            })
            .collect()
    }
}

/// A string or an array of strings (gitlab-runner's `StringOrArray`).
#[derive(Debug)]
pub(crate) struct StringOrList(pub Vec<String>);

impl Shape for StringOrList {
    const WANT: &'static str = "a string or an array of strings";
    fn from_value(value: toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(s) => Ok(Self(vec![s])),
            other => Vec::<String>::from_value(other).map(Self),
        }
    }
}

/// A TOML date-time with an offset, or an RFC 3339 string.
#[derive(Debug)]
pub(crate) struct Timestamp(pub chrono::DateTime<chrono::Utc>);

impl Shape for Timestamp {
    const WANT: &'static str = "a date-time such as 2024-01-02T03:04:05Z";
    fn from_value(value: toml::Value) -> Result<Self, String> {
        let text = match value {
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::String(s) => s,
            other => return Err(expected(Self::WANT, &other)),
        };
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| Self(t.with_timezone(&chrono::Utc)))
            .map_err(|e| {
                format!("invalid date-time {text:?} (it needs a UTC offset such as Z): {e}")
            })
    }
}

/// A table (or array of tables) as written: `Not` when the file holds
/// something else there, which `Ctx` describes from the document.
#[derive(Debug)]
pub(crate) enum Section<T> {
    Ok(T),
    Not,
}

impl<T> Section<T> {
    pub(crate) fn ok(self) -> Option<T> {
        match self {
            Section::Ok(t) => Some(t),
            Section::Not => None,
        }
    }
}

// `T`'s own fields are lenient, so `T` fails only on the wrong shape (an
// array where a table belongs, a table where `[[runners]]` does): that is
// `Not`, described from the document by `Ctx`.
impl<'de, T: DeserializeOwned> Deserialize<'de> for Section<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match toml::Value::deserialize(d)? {
            v @ (toml::Value::Table(_) | toml::Value::Array(_)) => {
                T::deserialize(v).map_or(Section::Not, Section::Ok)
            }
            _ => Section::Not,
        })
    }
}

/// What serde reads for a key declared with type `Self` in `sections`:
/// a scalar ([`Shape`]) is [`Checked`], a [`Table`] of values and a
/// [`Section`] are sections.
pub(crate) trait Declared {
    type Raw;
}

impl<T: Shape> Declared for T {
    type Raw = Checked<T>;
}

impl<T> Declared for Section<T> {
    type Raw = Section<T>;
}

/// A table of values keyed by name (`tmpfs`, `feature_flags`).
pub(crate) struct Table<T>(PhantomData<T>);

impl<T> Declared for Table<T> {
    type Raw = Section<BTreeMap<String, Checked<T>>>;
}

/// A key of declared type `T` as read: absent, or what the file holds.
pub(crate) type Raw<T> = Option<<T as Declared>::Raw>;
/// A [`Table`] as read.
pub(crate) type Map<T> = Option<Section<BTreeMap<String, Checked<T>>>>;
