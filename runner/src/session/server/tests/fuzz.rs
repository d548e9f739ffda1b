//! Property tests of the session server's request checks (issue 20, item
//! 7): the route, the token, gorilla's handshake checks and the header
//! token lists never panic on any request, and accept exactly what they
//! should. `PROPTEST_CASES` sets the number of cases;
//! `scripts/fuzz-long.sh` runs them long.

use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use proptest::prelude::*;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::exec::{
    check_auth, check_handshake, header_tokens, is_websocket_upgrade, origin_allowed, route,
};
use super::*;

const NAMES: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "origin",
    "authorization",
    "sec-websocket-version",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "x-other",
];

/// A header value: near-valid tokens, keys, origins, or any visible bytes
/// (header values may hold any byte but control characters).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            "Upgrade",
            "upgrade, keep-alive",
            "keep-alive,Upgrade",
            "websocket",
            "WebSocket",
            "13",
            "8, 13",
            " 13 ",
            "dGhlIHNhbXBsZSBub25jZQ==",
            "dGhlIHNhbXBsZSBub25jZQ",
            "AAAAAAAAAAAAAAAAAAAAAA==",
            "https://127.0.0.1",
            "http://127.0.0.1:8093/x",
            "null",
            "://",
            "127.0.0.1",
            "127.0.0.1:8093",
            "terminal.gitlab.com, base64.terminal.gitlab.com",
            ",,,",
            "",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        proptest::collection::vec(
            any::<u8>().prop_filter("visible", |b| *b >= 0x20 && *b != 0x7f || *b == b'\t'),
            0..60
        ),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    proptest::collection::vec((0..NAMES.len(), value()), 0..12)
}

fn request(method: &Method, hs: &[(usize, Vec<u8>)]) -> Request<()> {
    let mut b = Request::builder()
        .method(method.clone())
        .uri("/session/x/exec");
    for (n, v) in hs {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            b = b.header(NAMES[*n], v);
        }
    }
    b.body(()).unwrap_or_else(|e| panic!("{e}"))
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        "[A-Z]{1,8}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap_or(Method::PUT)),
    ]
}

/// A handshake a browser behind Workhorse sends, with random case and
/// spacing in its token lists.
fn valid_handshake() -> impl Strategy<Value = (Vec<(usize, Vec<u8>)>, [u8; 16])> {
    (
        any::<[u8; 16]>(),
        prop::sample::select(vec![
            "Upgrade",
            "upgrade",
            "keep-alive, Upgrade",
            "UPGRADE ,x",
        ]),
        prop::sample::select(vec!["websocket", "WebSocket", "h2c, websocket"]),
        prop::sample::select(vec!["13", " 13", "8, 13"]),
        any::<bool>(),
    )
        .prop_map(|(key, conn, up, ver, origin)| {
            let k = base64::engine::general_purpose::STANDARD.encode(key);
            let mut h = vec![
                (0, b"runner.example.com:8093".to_vec()),
                (1, conn.as_bytes().to_vec()),
                (2, up.as_bytes().to_vec()),
                (5, ver.as_bytes().to_vec()),
                (6, k.into_bytes()),
            ];
            if origin {
                h.push((3, b"https://runner.example.com:8093".to_vec()));
            }
            (h, key)
        })
}

proptest! {
    /// Any method and headers: the checks answer, never panic; a pass
    /// means every gorilla condition holds and the accept key matches.
    #[test]
    fn fuzz_handshake_checks_any_request(m in method(), hs in headers()) {
        let req = request(&m, &hs);
        let h = req.headers();
        let _ = is_websocket_upgrade(h);
        let _ = origin_allowed(h);
        for name in NAMES {
            for t in header_tokens(h, &hyper::header::HeaderName::from_static(name)) {
                prop_assert!(!t.is_empty() && t.trim() == t && !t.contains(','));
            }
        }
        match check_handshake(&req, 1) {
            Ok(accept) => {
                prop_assert_eq!(req.method(), Method::GET);
                let key = h.get("sec-websocket-key").and_then(|k| k.to_str().ok()).map(str::trim).unwrap_or("");
                let raw = base64::engine::general_purpose::STANDARD.decode(key);
                prop_assert!(raw.is_ok_and(|r| r.len() == 16));
                prop_assert_eq!(accept, derive_accept_key(key.as_bytes()));
                prop_assert!(origin_allowed(h));
            }
            Err(r) => prop_assert!(
                [StatusCode::METHOD_NOT_ALLOWED, StatusCode::BAD_REQUEST, StatusCode::FORBIDDEN].contains(&r.status),
                "{}", r.status
            ),
        }
    }

    /// Every well-formed handshake passes, whatever the case and spacing.
    #[test]
    fn fuzz_handshake_accepts_valid_requests((hs, key) in valid_handshake()) {
        let req = request(&Method::GET, &hs);
        prop_assert!(is_websocket_upgrade(req.headers()));
        let k = base64::engine::general_purpose::STANDARD.encode(key);
        prop_assert_eq!(check_handshake(&req, 1).ok(), Some(derive_accept_key(k.as_bytes())));
    }

    /// `/session/{id}/{rest}`: any path is a route with a non-empty id or
    /// none, and the parts come from the path.
    #[test]
    fn fuzz_route_any_path(p in prop_oneof!["\\PC{0,60}", "/session/[a-z0-9/]{0,20}"]) {
        if let Some((id, rest)) = route(&p) {
            prop_assert!(!id.is_empty() && !id.contains('/'));
            prop_assert_eq!(format!("/session/{id}/{rest}"), p);
        }
    }

    /// The token check accepts the session's token and nothing else.
    #[test]
    fn fuzz_token_check(given in prop_oneof![
        proptest::collection::vec(any::<u8>().prop_filter("visible", |b| *b >= 0x20 && *b != 0x7f), 0..80),
        "[0-9a-f]{64}".prop_map(String::into_bytes),
    ], flip in 0usize..64) {
        let registry = SessionRegistry::new(
            "https://127.0.0.1:1".into(),
            String::new(),
            crate::metrics::Metrics::new(
                crate::builds::Builds::default(),
                crate::builds::ProcessStateCell::default(),
                "0",
                "x",
            )
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let p = registry.create();
        let token = p.token.clone();
        let s = registry.activate(p, SessionJob::default());
        let with = |v: &[u8]| {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.insert(hyper::header::AUTHORIZATION, v);
            }
            check_auth(&s, &h).is_ok()
        };
        prop_assert!(with(token.as_bytes()));
        prop_assert_eq!(with(&given), given == token.as_bytes());
        let mut near = token.clone().into_bytes();
        let i = flip % near.len();
        near[i] = if near[i] == b'0' { b'1' } else { b'0' };
        prop_assert!(!with(&near));
        prop_assert!(!with(&token.as_bytes()[..token.len() - 1]));
        prop_assert!(!with(b""));
    }
}
