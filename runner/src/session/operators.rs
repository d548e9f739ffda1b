//! PLACEHOLDER until the operators piece merges (same API).
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use termgate::operator::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    Unauthorized,
    Throttled { retry_after: Duration },
}

#[derive(Debug)]
pub struct Authenticator {
    _path: PathBuf,
}

impl Authenticator {
    pub fn new(path: PathBuf) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Authenticator { _path: path }))
    }

    pub fn authenticate(
        &self,
        _authorization: Option<&str>,
        _peer: IpAddr,
    ) -> Result<Operator, AuthError> {
        Err(AuthError::Unauthorized)
    }
}
