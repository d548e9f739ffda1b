//! Sessions: one per job request (discarded when no job comes back), made
//! routable when the job starts, closed with a reason when it ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rand::RngCore;
use subtle::ConstantTimeEq;
use termgate::api::SessionInfo;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::share::Share;
use crate::executor::terminal::TerminalFactory;
use crate::metrics::Metrics;

/// 32 random bytes as 64 hex characters (session ids and tokens).
pub fn random_hex64() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// What the session knows of its job (for `/sessions`, logs, recordings).
#[derive(Clone, Default)]
pub struct SessionJob {
    pub job_id: u64,
    pub project: String,
    pub job_name: String,
    pub executor: String,
    /// Values recordings redact: the job's masked variables and its token.
    pub masked: Vec<String>,
}

impl std::fmt::Debug for SessionJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionJob")
            .field("job_id", &self.job_id)
            .field("project", &self.project)
            .field("job_name", &self.job_name)
            .field("executor", &self.executor)
            .field("masked", &format_args!("[{} values]", self.masked.len()))
            .finish()
    }
}

/// One connection to a session, as `/sessions` lists it.
#[derive(Debug, Clone)]
pub struct ClientEntry {
    id: u64,
    /// One of `termgate::operator::client_role`.
    pub role: &'static str,
    /// The operator's name; `None` for the user.
    pub name: Option<String>,
    pub peer: SocketAddr,
    pub since: SystemTime,
}

/// Listed in `/sessions` while held.
#[derive(Debug)]
pub struct ClientGuard {
    session: Arc<Session>,
    id: u64,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.session
            .clients_list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|c| c.id != self.id);
    }
}

/// A session sent with a job request, not routable yet.
#[derive(Debug)]
pub struct PendingSession {
    pub id: String,
    pub token: String,
    pub info: SessionInfo,
}

pub struct Session {
    pub id: String,
    token: String,
    pub job: SessionJob,
    pub started_at: SystemTime,
    terminal: watch::Sender<Option<Arc<dyn TerminalFactory>>>,
    /// Number of interactive clients connected (0 or 1).
    clients: watch::Sender<usize>,
    close: CancellationToken,
    close_reason: Mutex<Option<&'static str>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// The interactive terminal shared with operators.
    pub share: Arc<Share>,
    clients_list: Mutex<Vec<ClientEntry>>,
    next_client: AtomicU64,
    registry: std::sync::Weak<SessionRegistry>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("job", &self.job)
            .finish()
    }
}

/// Holding the interactive seat; released (and gauges updated) on drop.
#[derive(Debug)]
pub struct SeatGuard {
    session: Arc<Session>,
}

impl Drop for SeatGuard {
    fn drop(&mut self) {
        self.session
            .clients
            .send_modify(|n| *n = n.saturating_sub(1));
        if let Some(r) = self.session.registry.upgrade() {
            r.refresh_gauges();
        }
    }
}

impl SeatGuard {
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
}

impl Session {
    /// Compare the raw `Authorization` header with the token in constant time.
    pub fn token_matches(&self, header: &str) -> bool {
        let a = header.as_bytes();
        let b = self.token.as_bytes();
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }

    /// The executor's terminal is ready (called once the job is prepared).
    pub fn set_terminal(&self, f: Arc<dyn TerminalFactory>) {
        self.terminal.send_replace(Some(f));
    }

    /// Wait up to `timeout` for a terminal to be attached (upstream: 60 s,
    /// then 503 `Interactive terminal not set`). `None` on timeout or close.
    pub async fn wait_terminal(&self, timeout: Duration) -> Option<Arc<dyn TerminalFactory>> {
        let mut rx = self.terminal.subscribe();
        let wait = async {
            loop {
                if let Some(f) = rx.borrow_and_update().clone() {
                    return Some(f);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::select! {
            r = tokio::time::timeout(timeout, wait) => r.ok().flatten(),
            _ = self.close.cancelled() => None,
        }
    }

    /// Requests waiting in [`Session::wait_terminal`] now.
    #[cfg(test)]
    pub fn terminal_waiters(&self) -> usize {
        self.terminal.receiver_count()
    }

    /// Take the one interactive seat; `None` if taken (upstream: 423).
    pub fn try_take_seat(self: &Arc<Self>) -> Option<SeatGuard> {
        let mut taken = false;
        self.clients.send_if_modified(|n| {
            if *n == 0 {
                *n = 1;
                taken = true;
                true
            } else {
                false
            }
        });
        if !taken {
            return None;
        }
        if let Some(r) = self.registry.upgrade() {
            r.refresh_gauges();
        }
        Some(SeatGuard {
            session: self.clone(),
        })
    }

    pub fn has_client(&self) -> bool {
        *self.clients.borrow() > 0
    }

    /// Resolves when no interactive client is connected.
    pub async fn wait_no_client(&self) {
        let mut rx = self.clients.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Close every connection of this session with `reason` (a
    /// `termgate::metrics::close_reason`). The first reason wins.
    pub fn close(&self, reason: &'static str) {
        {
            let mut r = self.close_reason.lock().unwrap_or_else(|e| e.into_inner());
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.close.cancel();
    }

    pub fn close_reason(&self) -> Option<&'static str> {
        *self.close_reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        self.close.is_cancelled()
    }

    /// Resolves when the session is closed.
    pub async fn closed(&self) {
        self.close.cancelled().await;
    }

    /// The executor's terminal factory, if set and the session is open.
    pub fn terminal(&self) -> Option<Arc<dyn TerminalFactory>> {
        self.terminal.borrow().clone()
    }

    /// List a connection in `/sessions` until the guard drops.
    pub fn add_client(
        self: &Arc<Self>,
        role: &'static str,
        name: Option<String>,
        peer: SocketAddr,
    ) -> ClientGuard {
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        self.clients_list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ClientEntry {
                id,
                role,
                name,
                peer,
                since: SystemTime::now(),
            });
        ClientGuard {
            session: self.clone(),
            id,
        }
    }

    /// The connections now, oldest first.
    pub fn clients(&self) -> Vec<ClientEntry> {
        self.clients_list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `waiting` (no terminal yet), `idle` or `active`.
    pub fn state(&self) -> &'static str {
        if self.has_client() {
            "active"
        } else if self.terminal.borrow().is_none() {
            "waiting"
        } else {
            "idle"
        }
    }
}

/// All routable sessions of this process.
pub struct SessionRegistry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// `https://<advertise address>`.
    base_url: String,
    cert_pem: String,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for SessionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRegistry")
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl SessionRegistry {
    pub fn new(base_url: String, cert_pem: String, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(SessionRegistry {
            sessions: Mutex::new(HashMap::new()),
            base_url,
            cert_pem,
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A fresh session for a job request (not routable until activated).
    pub fn create(&self) -> PendingSession {
        let id = random_hex64();
        let token = random_hex64();
        PendingSession {
            info: SessionInfo {
                url: format!("{}/session/{id}", self.base_url),
                certificate: self.cert_pem.clone(),
                authorization: token.clone(),
            },
            id,
            token,
        }
    }

    /// The job arrived: make its session routable.
    pub fn activate(self: &Arc<Self>, p: PendingSession, job: SessionJob) -> Arc<Session> {
        let (terminal, _) = watch::channel(None);
        let (clients, _) = watch::channel(0);
        let s = Arc::new(Session {
            id: p.id,
            token: p.token,
            job,
            started_at: SystemTime::now(),
            terminal,
            clients,
            close: CancellationToken::new(),
            close_reason: Mutex::new(None),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            share: Share::new(),
            clients_list: Mutex::new(Vec::new()),
            next_client: AtomicU64::new(0),
            registry: Arc::downgrade(self),
        });
        self.lock().insert(s.id.clone(), s.clone());
        self.refresh_gauges();
        s
    }

    /// Find a session by the id in `/session/<id>/…`.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.lock().get(id).cloned()
    }

    /// Close (with `reason`) and forget a session.
    pub fn remove(&self, id: &str, reason: &'static str) {
        let s = self.lock().remove(id);
        if let Some(s) = s {
            s.close(reason);
        }
        self.refresh_gauges();
    }

    pub fn list(&self) -> Vec<Arc<Session>> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by_key(|s| s.job.job_id);
        v
    }

    /// Close every session (runner shutdown).
    pub fn close_all(&self, reason: &'static str) {
        for s in self.list() {
            s.close(reason);
        }
    }

    /// `gitlab_runner_session_terminals_active|idle`.
    pub fn refresh_gauges(&self) {
        let (mut active, mut idle) = (0i64, 0i64);
        for s in self.lock().values() {
            if s.is_closed() {
                continue;
            }
            if s.has_client() {
                active += 1;
            } else {
                idle += 1;
            }
        }
        self.metrics.session_terminals_active.set(active);
        self.metrics.session_terminals_idle.set(idle);
    }

    pub fn bump_bytes(&self, session: &Session, inbound: u64, outbound: u64) {
        if inbound > 0 {
            session.bytes_in.fetch_add(inbound, Ordering::Relaxed);
        }
        if outbound > 0 {
            session.bytes_out.fetch_add(outbound, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builds::{Builds, ProcessStateCell};

    fn registry() -> Arc<SessionRegistry> {
        let m = Metrics::new(Builds::default(), ProcessStateCell::default(), "0", "x").unwrap();
        SessionRegistry::new("https://127.0.0.1:8093".into(), "PEM".into(), m)
    }

    #[test]
    fn pending_sessions_are_not_routable() {
        let r = registry();
        let p = r.create();
        assert_eq!(p.id.len(), 64);
        assert_eq!(p.token.len(), 64);
        assert_eq!(
            p.info.url,
            format!("https://127.0.0.1:8093/session/{}", p.id)
        );
        assert_eq!(p.info.authorization, p.token);
        assert!(r.get(&p.id).is_none());
        let id = p.id.clone();
        let token = p.token.clone();
        let s = r.activate(p, SessionJob::default());
        assert!(r.get(&id).is_some());
        assert!(s.token_matches(&token));
        assert!(!s.token_matches("nope"));
        assert!(!s.token_matches(&token[..63]));
        r.remove(&id, "job_finished");
        assert!(r.get(&id).is_none());
        assert_eq!(s.close_reason(), Some("job_finished"));
    }

    #[tokio::test]
    async fn one_seat_and_gauges() {
        let r = registry();
        let s = r.activate(r.create(), SessionJob::default());
        assert_eq!(s.state(), "waiting");
        assert_eq!(r.metrics.session_terminals_idle.get(), 1);
        let g = s.try_take_seat().unwrap();
        assert!(
            s.try_take_seat().is_none(),
            "second interactive client is locked out"
        );
        assert_eq!(r.metrics.session_terminals_active.get(), 1);
        assert_eq!(r.metrics.session_terminals_idle.get(), 0);
        drop(g);
        s.wait_no_client().await;
        assert_eq!(r.metrics.session_terminals_active.get(), 0);
        assert!(s.try_take_seat().is_some());
    }

    #[tokio::test]
    async fn close_reason_first_wins_and_wait_terminal_stops() {
        let r = registry();
        let s = r.activate(r.create(), SessionJob::default());
        s.close("job_cancelled");
        s.close("job_finished");
        assert_eq!(s.close_reason(), Some("job_cancelled"));
        assert!(s.wait_terminal(Duration::from_secs(60)).await.is_none());
    }
}
