//! Persistence under `--state-dir`:
//!
//! ```text
//! DIR/coordinator.json      registration token, id counters, runners
//! DIR/jobs/<id>/job.json    job metadata (spec, state, runner, token, session)
//! DIR/jobs/<id>/trace       the trace bytes, exactly as accepted
//! ```
//!
//! The files hold registration, runner, job and session tokens: directories
//! are 0700 and files 0600, also those an earlier run left more open.
//!
//! JSON files are replaced atomically (temp file, fsync, rename, fsync of the
//! directory). Trace patches are appended and `fdatasync`ed before the reply,
//! so after a `kill -9` the file length is exactly what was acknowledged (or
//! a bit more, which the runner learns through a 416 and never resends).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

use super::records::{Job, JobRecord, Meta};

pub struct Store {
    dir: PathBuf,
}

/// What was on disk at start.
#[derive(Default)]
pub struct Loaded {
    pub meta: Option<Meta>,
    pub jobs: Vec<Job>,
}

impl Store {
    /// Create the directory if needed and load what it holds.
    pub async fn open(dir: &Path) -> anyhow::Result<(Store, Loaded)> {
        private_dir(dir).await?;
        private_dir(&dir.join("jobs")).await?;
        private_file(&dir.join("coordinator.json")).await?;
        let store = Store {
            dir: dir.to_path_buf(),
        };
        let mut loaded = Loaded::default();
        let meta_path = store.meta_path();
        if tokio::fs::try_exists(&meta_path).await.unwrap_or(false) {
            let bytes = tokio::fs::read(&meta_path)
                .await
                .with_context(|| format!("reading {}", meta_path.display()))?;
            loaded.meta = Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("parsing {}", meta_path.display()))?,
            );
        }
        let mut rd = tokio::fs::read_dir(dir.join("jobs"))
            .await
            .context("listing jobs")?;
        while let Some(entry) = rd.next_entry().await.context("listing jobs")? {
            let job_json = entry.path().join("job.json");
            if !tokio::fs::try_exists(&job_json).await.unwrap_or(false) {
                continue;
            }
            private_dir(&entry.path()).await?;
            private_file(&job_json).await?;
            private_file(&entry.path().join("trace")).await?;
            let bytes = tokio::fs::read(&job_json)
                .await
                .with_context(|| format!("reading {}", job_json.display()))?;
            let rec: JobRecord = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", job_json.display()))?;
            let trace = match tokio::fs::read(store.trace_path(rec.id)).await {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e).context("reading trace"),
            };
            loaded.jobs.push(Job { rec, trace });
        }
        loaded.jobs.sort_by_key(|j| j.rec.id);
        Ok((store, loaded))
    }

    fn meta_path(&self) -> PathBuf {
        self.dir.join("coordinator.json")
    }

    fn job_dir(&self, id: u64) -> PathBuf {
        self.dir.join("jobs").join(id.to_string())
    }

    fn trace_path(&self, id: u64) -> PathBuf {
        self.job_dir(id).join("trace")
    }

    pub async fn save_meta(&self, meta: &Meta) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(meta).context("encoding coordinator.json")?;
        write_atomic(&self.meta_path(), &bytes).await
    }

    pub async fn save_job(&self, rec: &JobRecord) -> anyhow::Result<()> {
        let dir = self.job_dir(rec.id);
        private_dir(&dir).await?;
        let bytes = serde_json::to_vec_pretty(rec).context("encoding job.json")?;
        write_atomic(&dir.join("job.json"), &bytes).await
    }

    /// Append `bytes` to the trace of job `id` (whose length is `old_len`)
    /// and flush them to disk. On failure the file is cut back to
    /// `old_len`, best effort.
    pub async fn append_trace(&self, id: u64, old_len: u64, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.trace_path(id);
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let res = async {
            f.write_all(bytes).await?;
            f.flush().await?;
            f.sync_data().await
        }
        .await;
        if let Err(e) = res {
            let _ = f.set_len(old_len).await;
            return Err(e).with_context(|| format!("appending to {}", path.display()));
        }
        Ok(())
    }

    /// Replace the whole trace (trace reset after a 412).
    pub async fn replace_trace(&self, id: u64, bytes: &[u8]) -> anyhow::Result<()> {
        write_atomic(&self.trace_path(id), bytes).await
    }
}

/// `dir` (and its parents) created if needed, mode 0700 either way.
async fn private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .await
        .with_context(|| format!("making {} private", dir.display()))
}

/// `path` made 0600 if it exists.
async fn private_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    match tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r.with_context(|| format!("making {} private", path.display())),
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .await
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .await
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all()
        .await
        .with_context(|| format!("syncing {}", tmp.display()))?;
    drop(f);
    tokio::fs::rename(&tmp, path)
        .await
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = tokio::fs::File::open(parent).await {
            let _ = d.sync_all().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_append() {
        let dir = tempfile::tempdir().unwrap();
        let (store, loaded) = Store::open(dir.path()).await.unwrap();
        assert!(loaded.meta.is_none() && loaded.jobs.is_empty());
        let meta = Meta {
            registration_token: "reg".into(),
            next_job_id: 3,
            ..Meta::default()
        };
        store.save_meta(&meta).await.unwrap();
        let rec = JobRecord {
            id: 2,
            ..JobRecord::default()
        };
        store.save_job(&rec).await.unwrap();
        store.append_trace(2, 0, b"hello ").await.unwrap();
        store.append_trace(2, 6, b"world").await.unwrap();
        let (store, loaded) = Store::open(dir.path()).await.unwrap();
        assert_eq!(loaded.meta, Some(meta));
        assert_eq!(loaded.jobs.len(), 1);
        assert_eq!(loaded.jobs[0].rec, rec);
        assert_eq!(loaded.jobs[0].trace, b"hello world");
        store.replace_trace(2, b"new").await.unwrap();
        let (_, loaded) = Store::open(dir.path()).await.unwrap();
        assert_eq!(loaded.jobs[0].trace, b"new");
    }

    /// Issue 20: the state holds tokens: 0700 directories, 0600 files, also
    /// for a state dir an earlier run left world-readable.
    #[tokio::test]
    async fn state_files_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (store, _) = Store::open(&state).await.unwrap();
        store.save_meta(&Meta::default()).await.unwrap();
        let rec = JobRecord {
            id: 7,
            ..JobRecord::default()
        };
        store.save_job(&rec).await.unwrap();
        store.append_trace(7, 0, b"x").await.unwrap();
        let job = state.join("jobs").join("7");
        for d in [&state, &state.join("jobs"), &job] {
            assert_eq!(mode(d), 0o700, "{}", d.display());
        }
        for f in [
            state.join("coordinator.json"),
            job.join("job.json"),
            job.join("trace"),
        ] {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        // An earlier run's open modes are tightened at start.
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(&state, open.clone()).unwrap();
        std::fs::set_permissions(&job, open).unwrap();
        std::fs::set_permissions(job.join("trace"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let (_store, loaded) = Store::open(&state).await.unwrap();
        assert_eq!(loaded.jobs.len(), 1);
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&job), 0o700);
        assert_eq!(mode(&job.join("trace")), 0o600);
    }
}
