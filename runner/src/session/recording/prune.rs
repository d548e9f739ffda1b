//! Deleting old recordings: by age, then the oldest while over the size.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::name;

/// What one prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub deleted_files: usize,
    pub deleted_bytes: u64,
    /// Recordings left (files being written included).
    pub kept_files: usize,
    pub kept_bytes: u64,
}

struct Found {
    path: PathBuf,
    modified: SystemTime,
    len: u64,
}

/// The recordings in `dir`: regular files (not symlinks) with a
/// recording's name. Files being written go to `kept` instead.
fn list(dir: &Path, active: &HashSet<PathBuf>, stats: &mut PruneStats) -> io::Result<Vec<Found>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let is_ours = entry.file_name().to_str().is_some_and(name::is_recording);
        // `DirEntry::file_type` and `metadata` do not follow symlinks.
        let Ok(meta) = entry.metadata() else { continue };
        if !is_ours || !meta.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        if active.contains(&path) {
            stats.kept_files += 1;
            stats.kept_bytes += meta.len();
            continue;
        }
        found.push(Found {
            path,
            modified: meta.modified()?,
            len: meta.len(),
        });
    }
    Ok(found)
}

fn delete(f: &Found, stats: &mut PruneStats) -> io::Result<()> {
    match std::fs::remove_file(&f.path) {
        Ok(()) => {
            stats.deleted_files += 1;
            stats.deleted_bytes += f.len;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("deleting {}: {e}", f.path.display()),
        )),
    }
}

/// Delete recordings in `dir` last written before `now - max_age`, then
/// the oldest while all of them (those in `active` included, which are
/// kept) add up to more than `max_size`.
pub(super) fn prune(
    dir: &Path,
    max_age: Option<Duration>,
    max_size: Option<u64>,
    active: &HashSet<PathBuf>,
    now: SystemTime,
) -> io::Result<PruneStats> {
    let mut stats = PruneStats::default();
    let mut found = list(dir, active, &mut stats)?;
    // Oldest first; the name (its start time) breaks ties.
    found.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.path.cmp(&b.path)));
    let mut keep = Vec::with_capacity(found.len());
    let cutoff = max_age.and_then(|age| now.checked_sub(age));
    for f in found {
        if cutoff.is_some_and(|c| f.modified < c) {
            delete(&f, &mut stats)?;
        } else {
            keep.push(f);
        }
    }
    let mut total = stats.kept_bytes + keep.iter().map(|f| f.len).sum::<u64>();
    let mut rest = keep.into_iter();
    if let Some(max) = max_size {
        for f in rest.by_ref() {
            if total <= max {
                stats.kept_files += 1;
                stats.kept_bytes += f.len;
                break;
            }
            delete(&f, &mut stats)?;
            total = total.saturating_sub(f.len);
        }
    }
    for f in rest {
        stats.kept_files += 1;
        stats.kept_bytes += f.len;
    }
    Ok(stats)
}
