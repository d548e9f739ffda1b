use std::net::{IpAddr, Ipv4Addr};

use super::throttle::{MAX_FAILURES, THROTTLE_FOR};
use super::*;

/// A clock that moves only when told.
struct FakeClock(Mutex<Instant>);

impl FakeClock {
    fn new() -> Arc<FakeClock> {
        Arc::new(FakeClock(Mutex::new(Instant::now())))
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn entry(name: &str, role: Role, token: &str) -> OperatorEntry {
    OperatorEntry {
        name: name.into(),
        role,
        token_sha256: hash_token(token),
        created_at: None,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    path: PathBuf,
    clock: Arc<FakeClock>,
    auth: Arc<Authenticator>,
    alice: String,
    bob: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operators.toml");
    let alice = new_token();
    let bob = new_token();
    file::save(
        &path,
        &[
            entry("alice", Role::Control, &alice),
            entry("bob", Role::Observe, &bob),
        ],
    )
    .unwrap();
    let clock = FakeClock::new();
    let auth = Authenticator::with_clock(path.clone(), clock.clone()).unwrap();
    Setup {
        _dir: dir,
        path,
        clock,
        auth,
        alice,
        bob,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn tokens_look_right_and_hash_to_sha256() {
    let t = new_token();
    let hex = t.strip_prefix(TOKEN_PREFIX).unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(t, new_token());
    // echo -n test | sha256sum
    assert_eq!(
        hash_token("test"),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
}

#[test]
fn a_right_token_authenticates_with_its_role() {
    let s = setup();
    assert_eq!(s.auth.operator_count(), 2);
    let a = s.auth.authenticate(Some(&bearer(&s.alice)), PEER).unwrap();
    assert_eq!(
        a,
        Operator {
            name: "alice".into(),
            role: Role::Control
        }
    );
    let b = s
        .auth
        .authenticate(Some(&format!("bearer  {} ", s.bob)), PEER)
        .unwrap();
    assert_eq!(b.name, "bob");
    assert_eq!(b.role, Role::Observe);
}

#[test]
fn wrong_missing_or_malformed_credentials_are_unauthorized() {
    let s = setup();
    let wrong = new_token();
    let hash_itself = hash_token(&s.alice);
    let cases: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some(bearer(&wrong)),
        Some(s.alice.clone()),
        Some(format!("Basic {}", s.alice)),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(format!("Bearer {} extra", s.alice)),
        Some(bearer(&hash_itself)),
        Some(bearer(&s.alice[..s.alice.len() - 1])),
        Some(bearer(&s.alice.to_uppercase())),
    ];
    for c in cases {
        assert_eq!(
            s.auth.authenticate(c.as_deref(), PEER),
            Err(AuthError::Unauthorized),
            "{c:?}"
        );
    }
}

#[test]
fn one_peer_is_throttled_while_another_still_authenticates() {
    let s = setup();
    let wrong = bearer(&new_token());
    for _ in 0..MAX_FAILURES {
        assert_eq!(
            s.auth.authenticate(Some(&wrong), PEER),
            Err(AuthError::Unauthorized)
        );
    }
    assert_eq!(
        s.auth.authenticate(Some(&wrong), PEER),
        Err(AuthError::Throttled {
            retry_after: THROTTLE_FOR
        })
    );
    // The right token does not help that peer…
    assert!(matches!(
        s.auth.authenticate(Some(&bearer(&s.alice)), PEER),
        Err(AuthError::Throttled { .. })
    ));
    // …and nobody else is affected.
    assert_eq!(
        s.auth
            .authenticate(Some(&bearer(&s.alice)), OTHER)
            .unwrap()
            .name,
        "alice"
    );
}

#[test]
fn a_throttle_expires() {
    let s = setup();
    let wrong = bearer(&new_token());
    for _ in 0..=MAX_FAILURES {
        let _ = s.auth.authenticate(Some(&wrong), PEER);
    }
    s.clock.advance(Duration::from_secs(59));
    assert_eq!(
        s.auth.authenticate(Some(&bearer(&s.alice)), PEER),
        Err(AuthError::Throttled {
            retry_after: Duration::from_secs(1)
        })
    );
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(
        s.auth
            .authenticate(Some(&bearer(&s.alice)), PEER)
            .unwrap()
            .name,
        "alice"
    );
}

#[test]
fn changes_to_the_file_apply_within_a_second() {
    let s = setup();
    let carol = new_token();
    file::save(
        &s.path,
        &[
            entry("alice", Role::Observe, &s.alice),
            entry("carol", Role::Control, &carol),
        ],
    )
    .unwrap();
    // Not looked at again before a second has passed.
    assert_eq!(
        s.auth.authenticate(Some(&bearer(&carol)), OTHER),
        Err(AuthError::Unauthorized)
    );
    s.clock.advance(RELOAD_CHECK_INTERVAL);
    assert_eq!(
        s.auth.authenticate(Some(&bearer(&carol)), PEER).unwrap(),
        Operator {
            name: "carol".into(),
            role: Role::Control
        }
    );
    assert_eq!(
        s.auth
            .authenticate(Some(&bearer(&s.alice)), PEER)
            .unwrap()
            .role,
        Role::Observe
    );
    assert_eq!(
        s.auth.authenticate(Some(&bearer(&s.bob)), PEER),
        Err(AuthError::Unauthorized)
    );

    // Removing the file revokes everyone.
    std::fs::remove_file(&s.path).unwrap();
    s.clock.advance(RELOAD_CHECK_INTERVAL);
    assert_eq!(
        s.auth.authenticate(Some(&bearer(&carol)), PEER),
        Err(AuthError::Unauthorized)
    );
    assert_eq!(s.auth.operator_count(), 0);
}

#[test]
fn an_invalid_file_on_reload_keeps_the_operators_in_force() {
    let s = setup();
    std::fs::write(
        &s.path,
        "[[operators]]\nname = \"alice\"\nrole = \"root\"\n",
    )
    .unwrap();
    s.clock.advance(RELOAD_CHECK_INTERVAL);
    assert_eq!(
        s.auth
            .authenticate(Some(&bearer(&s.alice)), PEER)
            .unwrap()
            .name,
        "alice"
    );
    s.clock.advance(RELOAD_CHECK_INTERVAL);
    assert_eq!(
        s.auth
            .authenticate(Some(&bearer(&s.bob)), PEER)
            .unwrap()
            .name,
        "bob"
    );
    assert!(s.auth.reload.lock().unwrap().last_problem.is_some());
    // Once fixed, the new file applies.
    file::save(&s.path, &[entry("bob", Role::Observe, &s.bob)]).unwrap();
    s.clock.advance(RELOAD_CHECK_INTERVAL);
    assert_eq!(
        s.auth.authenticate(Some(&bearer(&s.alice)), PEER),
        Err(AuthError::Unauthorized)
    );
    assert!(s.auth.reload.lock().unwrap().last_problem.is_none());
}

#[test]
fn a_missing_file_is_no_operators_and_an_invalid_one_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operators.toml");
    let auth = Authenticator::new(path.clone()).unwrap();
    assert_eq!(auth.operator_count(), 0);
    assert_eq!(
        auth.authenticate(Some(&bearer(&new_token())), PEER),
        Err(AuthError::Unauthorized)
    );

    std::fs::write(
        &path,
        "[[operators]]\nname = \"a\"\nrole = \"observe\"\ntoken_sha256 = \"x\"\n",
    )
    .unwrap();
    let err = Authenticator::new(path.clone()).unwrap_err().to_string();
    assert!(err.contains("operators.toml:4: token_sha256"), "{err}");
}

#[test]
fn the_stored_file_never_holds_the_token() {
    let s = setup();
    let text = std::fs::read_to_string(&s.path).unwrap();
    assert!(!text.contains(&s.alice), "{text}");
    assert!(!text.contains(s.alice.trim_start_matches(TOKEN_PREFIX)));
    assert!(!text.contains(TOKEN_PREFIX), "{text}");
    assert!(text.contains(&hash_token(&s.alice)), "{text}");
    let dbg = format!("{:?}", s.auth);
    assert!(!dbg.contains(&hash_token(&s.alice)), "{dbg}");
}

#[test]
fn auth_errors_read_well() {
    assert_eq!(AuthError::Unauthorized.to_string(), "unauthorized");
    let e = AuthError::Throttled {
        retry_after: Duration::from_millis(1500),
    };
    assert_eq!(e.to_string(), "too many failed attempts; retry after 2s");
}
