//! Operators: who may use the session server's operator API, and checking
//! their `Authorization: Bearer <token>`.
//!
//! - [`file`]: the operators file (TOML, 0600): names, roles and each
//!   token's SHA-256; never the token.
//! - [`throttle`]: failed attempts per peer.
//! - [`Authenticator`]: the file as loaded, re-read when it changes, and the
//!   throttle; what the server asks before any upgrade.
//!
//! A token is [`TOKEN_PREFIX`] and 64 hex digits of 32 random bytes, so a
//! single fast hash is right (there is nothing to brute-force offline that a
//! slow hash would protect); hashes are compared in constant time.

pub mod file;
pub mod throttle;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use termgate::logschema::{self as schema, msg};
use termgate::operator::{Role, TOKEN_PREFIX};

pub use file::{OperatorEntry, OperatorsError};
use throttle::{Attempt, Throttle, Verdict};

/// How often, at most, the file's mtime and size are looked at.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: Role,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, not `Bearer <token>`, or an unknown token.
    #[error("unauthorized")]
    Unauthorized,
    /// Too many failed attempts from this peer ([`throttle`]).
    #[error("too many failed attempts; retry after {}s", retry_after.as_secs_f64().ceil())]
    Throttled { retry_after: Duration },
}

/// A fresh operator token: [`TOKEN_PREFIX`] + 64 hex digits of 32 bytes
/// from the thread's CSPRNG.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// What the file stores for `token`: the SHA-256 of the whole token
/// string, lower-case hex.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Where "now" comes from; tests use a fake.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// One operator as kept in memory.
#[derive(Debug, Clone)]
struct Known {
    name: String,
    role: Role,
    hash: [u8; 32],
}

fn known(entries: Vec<OperatorEntry>) -> Vec<Known> {
    entries
        .into_iter()
        .filter_map(|e| {
            let mut hash = [0u8; 32];
            // The file's parser checked it is 64 hex digits.
            hex::decode_to_slice(&e.token_sha256, &mut hash).ok()?;
            Some(Known {
                name: e.name,
                role: e.role,
                hash,
            })
        })
        .collect()
}

/// What tells one version of the file from another. The file is replaced
/// by rename, so the inode changes even when mtime and size do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// `None` when there is no file.
fn stamp(path: &Path) -> std::io::Result<Option<Stamp>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&m),
            #[cfg(not(unix))]
            inode: 0,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

struct ReloadState {
    checked_at: Instant,
    stamp: Option<Stamp>,
    /// The last reload problem logged, so that each is logged once.
    last_problem: Option<String>,
}

/// The operators file as loaded, kept current, and the failed-attempt
/// throttle. Share it with `Arc`; every method takes `&self`.
///
/// Locks are held only for in-memory work, except the reload check, which
/// one caller at a time does under `try_lock` (the others go on with the
/// operators already loaded, never waiting on it).
pub struct Authenticator {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    operators: RwLock<Arc<Vec<Known>>>,
    reload: Mutex<ReloadState>,
    throttle: Mutex<Throttle>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("path", &self.path)
            .field("operators", &self.operator_count())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Loads `path`. A missing file means no operators (with a warning; the
    /// file may be created later); a file that cannot be read or is invalid
    /// is an error.
    pub fn new(path: PathBuf) -> anyhow::Result<Arc<Self>> {
        Self::with_clock(path, Arc::new(SystemClock))
    }

    /// [`Authenticator::new`] with another clock.
    pub fn with_clock(path: PathBuf, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Self>> {
        // The stamp first: a change while reading is seen at the next check.
        let st =
            stamp(&path).with_context(|| format!("reading operators file {}", path.display()))?;
        let entries = match st {
            None => {
                tracing::warn!(
                    { schema::PATH } = %path.display(),
                    "{}",
                    msg::OPERATORS_FILE_MISSING
                );
                Vec::new()
            }
            Some(_) => {
                let entries = file::load(&path)?.unwrap_or_default();
                log_loaded(&path, entries.len());
                entries
            }
        };
        Ok(Arc::new(Authenticator {
            clock: clock.clone(),
            operators: RwLock::new(Arc::new(known(entries))),
            reload: Mutex::new(ReloadState {
                checked_at: clock.now(),
                stamp: st,
                last_problem: None,
            }),
            throttle: Mutex::new(Throttle::default()),
            path,
        }))
    }

    /// The operators file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many operators are loaded.
    pub fn operator_count(&self) -> usize {
        self.operators
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Checks an `Authorization` header (`Bearer <token>`) from `peer`.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        peer: IpAddr,
    ) -> Result<Operator, AuthError> {
        let now = self.clock.now();
        self.reload_if_changed(now);
        let presented = authorization.map(str::trim).filter(|h| !h.is_empty());
        let found = presented.and_then(bearer_token).and_then(|t| self.find(t));
        let attempt = match (&found, presented) {
            (Some(_), _) => Attempt::Success,
            (None, Some(_)) => Attempt::Failure,
            (None, None) => Attempt::Anonymous,
        };
        let verdict = self
            .throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(peer, attempt, now);
        match verdict {
            Verdict::Throttled {
                retry_after,
                started,
            } => {
                if started {
                    tracing::warn!(
                        { schema::PEER } = %peer,
                        "{}",
                        msg::OPERATOR_THROTTLED
                    );
                }
                Err(AuthError::Throttled { retry_after })
            }
            Verdict::Pass => found.ok_or(AuthError::Unauthorized),
        }
    }

    /// The operator whose hash matches, comparing against every one in
    /// constant time.
    fn find(&self, token: &str) -> Option<Operator> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let ops = self
            .operators
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut found = None;
        for k in ops.iter() {
            if bool::from(k.hash.ct_eq(&digest)) {
                found = Some(Operator {
                    name: k.name.clone(),
                    role: k.role,
                });
            }
        }
        found
    }

    /// Re-reads the file when it changed, at most every
    /// [`RELOAD_CHECK_INTERVAL`]. An invalid file keeps the operators in
    /// force; a removed file leaves none.
    fn reload_if_changed(&self, now: Instant) {
        let mut st = match self.reload.try_lock() {
            Ok(st) => st,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        if now.saturating_duration_since(st.checked_at) < RELOAD_CHECK_INTERVAL {
            return;
        }
        st.checked_at = now;
        let new_stamp = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) => {
                self.reload_failed(&mut st, &format!("{e}"));
                return;
            }
        };
        if new_stamp == st.stamp {
            return;
        }
        st.stamp = new_stamp;
        let entries = match new_stamp {
            None => {
                tracing::warn!(
                    { schema::PATH } = %self.path.display(),
                    "{}",
                    msg::OPERATORS_FILE_MISSING
                );
                Vec::new()
            }
            Some(_) => match file::load(&self.path) {
                Ok(entries) => entries.unwrap_or_default(),
                Err(e) => {
                    self.reload_failed(&mut st, &e.to_string());
                    return;
                }
            },
        };
        st.last_problem = None;
        log_loaded(&self.path, entries.len());
        *self
            .operators
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(known(entries));
    }

    fn reload_failed(&self, st: &mut ReloadState, problem: &str) {
        if st.last_problem.as_deref() != Some(problem) {
            tracing::warn!(
                { schema::PATH } = %self.path.display(),
                { schema::ERROR } = %problem,
                "{}",
                msg::OPERATORS_RELOAD_FAILED
            );
            st.last_problem = Some(problem.to_string());
        }
    }
}

fn log_loaded(path: &Path, count: usize) {
    tracing::info!(
        { schema::PATH } = %path.display(),
        { schema::SIZE } = count,
        "{}",
        msg::OPERATORS_LOADED
    );
}

/// The token of `Bearer <token>` (the scheme in any case).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

#[cfg(test)]
mod tests;
