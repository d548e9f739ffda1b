//! Capacity history from Prometheus' `query_range` (placeholder: being
//! written).

use std::time::Duration;

use super::model::Capacity;
use super::Window;

pub fn fetch(url: &str, window: Window, timeout: Duration) -> anyhow::Result<Capacity> {
    let _ = (window, timeout);
    anyhow::bail!("capacity from {url}: not written yet")
}
