//! Local HTTP servers that answer well, badly or not at all (tests of the
//! pollers).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::model::RunnerSource;

#[derive(Debug, Clone)]
pub enum Reply {
    Text(String),
    Status(u16),
    /// A status with a body.
    StatusText(u16, String),
    /// Never answer.
    Hang,
}

#[derive(Clone, Default)]
pub struct Routes(pub Arc<Mutex<HashMap<String, Reply>>>);

impl Routes {
    pub fn set(&self, path: &str, r: Reply) {
        self.0.lock().unwrap().insert(path.to_string(), r);
    }
}

async fn serve_path(State(routes): State<Routes>, Path(p): Path<String>) -> Response {
    let r = routes.0.lock().unwrap().get(&p).cloned();
    match r {
        Some(Reply::Text(t)) => t.into_response(),
        Some(Reply::Status(s)) => StatusCode::from_u16(s).unwrap().into_response(),
        Some(Reply::StatusText(s, t)) => (StatusCode::from_u16(s).unwrap(), t).into_response(),
        Some(Reply::Hang) => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// An axum server on `127.0.0.1:0` answering `/{path}` from `routes`.
pub async fn start(routes: Routes) -> SocketAddr {
    let app = axum::Router::new()
        .route("/{*p}", axum::routing::get(serve_path))
        .with_state(routes);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

/// Accepts connections and never reads or writes.
pub async fn black_hole() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A healthy termgate scrape with these error and CPU counters.
pub fn good(errors: f64, cpu: f64) -> String {
    format!(
        "gitlab_runner_concurrent 4\ngitlab_runner_jobs{{state=\"running\"}} 2\n\
         gitlab_runner_errors_total{{level=\"error\"}} {errors}\n\
         process_cpu_seconds_total {cpu}\n"
    )
}

/// A runner source scraping `url`.
pub fn src(name: &str, url: String) -> RunnerSource {
    RunnerSource {
        name: name.into(),
        metrics_url: url,
        session_url: None,
        logs: vec![],
    }
}
