//! Loading `config.toml`: one parse, the serde model, then validation.

use std::path::Path;

use serde::Deserialize;

use super::ctx::Ctx;
use super::doc::Doc;
use super::sections::RawConfig;
use super::validate;
use super::{Config, ConfigError, Problem};

/// A config that loaded, with what the operator should be told about it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    /// Deprecations and the single "not implemented by termgate" summary.
    pub warnings: Vec<String>,
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates config text; `origin` names it in messages.
pub fn parse(text: &str, origin: &str) -> Result<LoadedConfig, ConfigError> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        let message = e.message().trim().to_string();
        decode_error(text, origin, e.span().map(|s| s.start), message)
    })?;
    // The model is read from this same parse; `Doc` keeps it for lines.
    let raw = RawConfig::deserialize(toml_edit::de::Deserializer::from(doc.clone()));
    let mut ctx = Ctx::new(Doc::new(&doc), origin);
    let config = match raw {
        Ok(raw) => validate::config(&mut ctx, raw),
        // Every value is read leniently, so this is not expected; it is
        // still reported as a problem, never as a panic.
        Err(e) => {
            ctx.problems.push(Problem {
                line: e.span().map(|s| ctx.line_at(s.start)),
                section: String::new(),
                key: String::new(),
                message: e.message().to_string(),
            });
            Config::default()
        }
    };

    if !ctx.problems.is_empty() {
        let mut problems = ctx.problems;
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        return Err(ConfigError::Invalid {
            origin: origin.to_string(),
            problems,
        });
    }
    let mut warnings = ctx.warnings;
    if !ctx.ignored.is_empty() {
        let mut ignored = ctx.ignored;
        ignored.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
        let names: Vec<String> = ignored.into_iter().map(|(_, name)| name).collect();
        warnings.push(format!(
            "{origin}: not implemented by termgate, ignored: {}",
            names.join(", ")
        ));
    }
    Ok(LoadedConfig { config, warnings })
}

fn decode_error(text: &str, origin: &str, offset: Option<usize>, message: String) -> ConfigError {
    let offset = offset.unwrap_or(0).min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    ConfigError::Decode {
        origin: origin.to_string(),
        line,
        column,
        message: message.replace('\n', "; "),
    }
}

#[cfg(test)]
mod edges;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
