//! Lenient deserialisers: `null` as empty, `[null]` entries dropped,
//! numbers that may be strings; and the serialisers' `is_zero`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Deserialise `null` as `T::default()`.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserialise a list that may be `null` or contain `null` entries
/// (GitLab 11.x sends `"cache":[null]`): nulls are dropped.
pub fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v: Option<Vec<Option<T>>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().flatten().collect())
}

/// Accept a number or a numeric string (GitLab is not consistent).
pub fn lenient_u64<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

pub(super) fn is_zero(v: &u64) -> bool {
    *v == 0
}
