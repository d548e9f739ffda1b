//! The coordinator's state behind its one lock ([`Inner`]: the records of
//! [`crate::records`] plus the optional [`Store`]) and token minting.

use std::collections::BTreeMap;

use rand::distributions::Alphanumeric;
use rand::Rng;

use super::ci_yaml::JobDef;
use super::records::{Job, JobRecord, Meta, RunnerRecord};
use super::store::Store;

/// Fixed settings of one coordinator.
#[derive(Debug, Clone)]
pub struct Settings {
    pub project: String,
    pub server_url: String,
    pub trace_update_interval: u64,
}

/// Everything behind the coordinator's one lock.
pub struct Inner {
    pub settings: Settings,
    pub registration_token: String,
    pub next_runner_id: u64,
    pub next_job_id: u64,
    pub next_pipeline_id: u64,
    pub runners: BTreeMap<u64, RunnerRecord>,
    pub jobs: BTreeMap<u64, Job>,
    /// Changes whenever the queue changes (`X-GitLab-Last-Update`).
    pub last_update: String,
    pub store: Option<Store>,
}

impl Inner {
    pub fn meta(&self) -> Meta {
        Meta {
            registration_token: self.registration_token.clone(),
            next_runner_id: self.next_runner_id,
            next_job_id: self.next_job_id,
            next_pipeline_id: self.next_pipeline_id,
            runners: self.runners.values().cloned().collect(),
        }
    }

    pub async fn save_meta(&self) -> anyhow::Result<()> {
        match &self.store {
            Some(s) => s.save_meta(&self.meta()).await,
            None => Ok(()),
        }
    }

    pub async fn save_job(&mut self, id: u64) -> anyhow::Result<()> {
        let Some(job) = self.jobs.get_mut(&id) else {
            return Ok(());
        };
        job.rec.updated_at = now();
        match &self.store {
            Some(s) => s.save_job(&job.rec).await,
            None => Ok(()),
        }
    }

    pub fn queue_changed(&mut self) {
        self.last_update = random_hex(16);
    }

    pub fn runner_by_token(&self, token: &str) -> Option<&RunnerRecord> {
        if token.is_empty() {
            return None;
        }
        self.runners.values().find(|r| r.token == token)
    }

    /// Add a runner; returns its id and token.
    pub async fn add_runner(&mut self, mut r: RunnerRecord) -> anyhow::Result<(u64, String)> {
        if r.token.is_empty() {
            r.token = new_token("glrt-");
        }
        r.id = self.next_runner_id.max(1);
        self.next_runner_id = r.id + 1;
        let out = (r.id, r.token.clone());
        self.runners.insert(r.id, r);
        self.save_meta().await?;
        Ok(out)
    }

    /// Queue jobs; returns their ids (one pipeline per call).
    pub async fn enqueue(&mut self, defs: Vec<JobDef>) -> anyhow::Result<Vec<u64>> {
        let pipeline_id = self.next_pipeline_id.max(1);
        self.next_pipeline_id = pipeline_id + 1;
        let mut ids = Vec::new();
        for def in defs {
            let id = self.next_job_id.max(1);
            self.next_job_id = id + 1;
            let now = now();
            let rec = JobRecord {
                id,
                pipeline_id,
                def,
                created_at: now.clone(),
                updated_at: now,
                ..JobRecord::default()
            };
            self.jobs.insert(
                id,
                Job {
                    rec,
                    trace: Vec::new(),
                },
            );
            self.save_job(id).await?;
            ids.push(id);
        }
        self.save_meta().await?;
        self.queue_changed();
        Ok(ids)
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    let v: Vec<u8> = (0..bytes).map(|_| rng.gen()).collect();
    hex::encode(v)
}

/// `prefix` + 20 random alphanumerics (`glrt-…`, `glcbt-…`).
pub fn new_token(prefix: &str) -> String {
    let s: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    format!("{prefix}{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = new_token("glrt-");
        assert!(t.starts_with("glrt-") && t.len() == 25);
        assert_ne!(t, new_token("glrt-"));
        assert_eq!(random_hex(16).len(), 32);
    }
}
