//! The address GitLab is told: with every job request the runner sends
//! `session.url = https://<advertise_address>/session/<id>`; GitLab keeps it
//! with the job, and when a user opens the job's terminal, Workhorse dials
//! `wss://<advertise_address>/session/<id>/exec` and verifies the certificate
//! against that host. So the address must be one Workhorse can reach, and
//! its port the one the runner listens on (or one forwarded to it).

use super::Check;
use crate::config::{RunnerConfig, SessionServer};
use crate::session::tls::{self, Class};

/// What GitLab does with a private or loopback address by default.
const GITLAB_REFUSES: &str = "GitLab answers the job request with 409 Conflict unless the admin \
     setting allow_local_requests_from_web_hooks_and_services is enabled";

/// Where GitLab is, as far as `[[runners]] url` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coordinator {
    /// Every `url` is on this machine (`localhost` or a loopback address).
    Local,
    /// The first `url` that is not.
    Remote(String),
    /// No `[[runners]]` yet.
    Unknown,
}

pub fn coordinator(runners: &[RunnerConfig]) -> Coordinator {
    if runners.is_empty() {
        return Coordinator::Unknown;
    }
    match runners.iter().find(|r| !is_local_url(&r.url)) {
        Some(r) => Coordinator::Remote(r.url.clone()),
        None => Coordinator::Local,
    }
}

fn is_local_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// "the unspecified", "a loopback", … (address).
fn article(class: Class) -> String {
    match class {
        Class::Unspecified => "the unspecified".into(),
        c => format!("a {}", c.name()),
    }
}

/// `advertise_address` (else `listen_address`) against where the
/// coordinator is: unspecified or loopback with a remote coordinator fails
/// (Workhorse dials its own machine), private or link-local warns (GitLab
/// refuses it by default, and Workhorse must route to it).
pub fn advertise(ss: &SessionServer, runners: &[RunnerConfig]) -> Check {
    const NAME: &str = "advertise_address";
    let given = if ss.advertise_address.is_some() {
        "advertise_address"
    } else {
        "listen_address (no advertise_address)"
    };
    if let Err(e) = tls::validate_advertise(ss) {
        return Check::fail(
            NAME,
            format!("{e:#} (the runner refuses to start)"),
            "set [session_server] advertise_address to host:port, without a scheme",
        );
    }
    let address = ss.effective_advertise_address().unwrap_or_default();
    let host = tls::split_host_port(&address)
        .map(|(h, _)| h)
        .unwrap_or_default();
    let dial = format!(
        "GitLab hands it to Workhorse, which dials wss://{address}/session/<id>/exec when a user \
         opens the job's terminal"
    );
    let class = tls::host_class(host);
    let remote = match (class, coordinator(runners)) {
        (Some(class), Coordinator::Unknown) => {
            return Check::warn(
                NAME,
                format!(
                    "{given} {address} is {} address and there are no [[runners]] yet, so \
                     doctor cannot tell where GitLab is: a GitLab on another machine cannot use \
                     it ({dial})",
                    article(class)
                ),
                "register the runner, then run doctor again; for a remote GitLab set \
                 [session_server] advertise_address to this machine's public host:port",
            )
        }
        (_, Coordinator::Remote(url)) => Some(url),
        _ => None,
    };
    match (class, remote) {
        (None, _) => {
            let what = if host.parse::<std::net::IpAddr>().is_ok() {
                "a public IP address"
            } else {
                "a DNS name (it must resolve, from GitLab's Workhorse, to this machine)"
            };
            Check::pass(NAME, format!("{given} {address} is {what}: {dial}"))
        }
        (Some(Class::Unspecified), Some(url)) => Check::fail(
            NAME,
            format!(
                "{given} {address} is the unspecified address and the coordinator {url} is \
                 remote: {dial}, which cannot reach this runner at all; {GITLAB_REFUSES}"
            ),
            "set [session_server] advertise_address to this machine's public host:port",
        ),
        (Some(Class::Loopback), Some(url)) => Check::fail(
            NAME,
            format!(
                "{given} {address} is a loopback address and the coordinator {url} is remote: \
                 {dial}, which is Workhorse's own machine, not this runner; {GITLAB_REFUSES}"
            ),
            "set [session_server] advertise_address to this machine's public host:port",
        ),
        (Some(class), Some(url)) => Check::warn(
            NAME,
            format!(
                "{given} {address} is {} address and the coordinator {url} is remote: \
                 {GITLAB_REFUSES}; {dial}, so it must route to this network",
                article(class)
            ),
            "use a public host:port, or (GitLab on the same private network) enable \
             allow_local_requests_from_web_hooks_and_services in GitLab's admin settings",
        ),
        (Some(Class::Unspecified), None) => Check::warn(
            NAME,
            format!(
                "{given} {address} is the unspecified address: {dial}; that reaches this \
                 runner only because the coordinator runs on this machine too"
            ),
            "advertise 127.0.0.1 (or this machine's routable address) instead",
        ),
        (Some(class), None) => Check::pass(
            NAME,
            format!(
                "{given} {address} is {} address and every coordinator is on this machine: \
                 {dial}",
                article(class)
            ),
        ),
    }
}

/// The port Workhorse dials (`advertise_address`'s) against the one the
/// runner binds (`listen_address`'s).
pub fn ports(ss: &SessionServer) -> Check {
    const NAME: &str = "session_ports";
    let listen = ss.listen_address.as_deref().unwrap_or_default();
    let Some((_, listen_port)) = tls::split_host_port(listen) else {
        return Check::fail(
            NAME,
            format!("listen_address {listen:?} is not host:port (the runner refuses to start)"),
            "write listen_address as host:port, e.g. 0.0.0.0:8093",
        );
    };
    let Some(listen_port) = listen_port else {
        return Check::fail(
            NAME,
            format!("listen_address {listen:?} has no port (the runner refuses to start)"),
            format!("write listen_address as host:port, e.g. {listen}:8093"),
        );
    };
    let Some(advertise) = ss.advertise_address.as_deref().filter(|a| !a.is_empty()) else {
        return Check::pass(
            NAME,
            format!("no advertise_address: GitLab is told listen_address {listen} itself"),
        );
    };
    let advertise_port = match tls::split_host_port(advertise) {
        // validate_advertise (advertise_address) reports the address itself.
        None => {
            return Check::pass(
                NAME,
                format!("advertise_address {advertise:?} is not host:port (see advertise_address)"),
            )
        }
        Some((_, p)) => p,
    };
    match advertise_port {
        Some(0) => Check::pass(
            NAME,
            format!("advertise_address {advertise} has port 0: the runner advertises the port it binds"),
        ),
        None if listen_port == 443 => Check::pass(
            NAME,
            format!("advertise_address {advertise} has no port: Workhorse dials 443, the listen port"),
        ),
        None => Check::warn(
            NAME,
            format!(
                "advertise_address {advertise} has no port, so Workhorse dials 443, but \
                 listen_address is {listen}"
            ),
            format!("add the port: advertise_address = \"{advertise}:{listen_port}\" (unless 443 is forwarded to {listen_port})"),
        ),
        Some(p) if listen_port == 0 => Check::warn(
            NAME,
            format!(
                "listen_address {listen} binds a new random port at every start, but \
                 advertise_address {advertise} names port {p}"
            ),
            format!("listen on port {p}, or advertise port 0 (the bound port)"),
        ),
        Some(p) if p == listen_port => Check::pass(
            NAME,
            format!("listen_address {listen} and advertise_address {advertise} agree on port {p}"),
        ),
        Some(p) => Check::warn(
            NAME,
            format!(
                "listen_address {listen} is port {listen_port} but advertise_address {advertise} \
                 is port {p}: Workhorse dials {p}, right only if a NAT or port forward maps it \
                 to {listen_port}"
            ),
            "make the ports agree unless such a forward exists",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn ss(listen: &str, advertise: Option<&str>) -> SessionServer {
        SessionServer {
            listen_address: Some(listen.into()),
            advertise_address: advertise.map(str::to_string),
            ..Default::default()
        }
    }

    fn runner(url: &str) -> RunnerConfig {
        RunnerConfig {
            name: "r".into(),
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn where_the_coordinator_is() {
        use Coordinator::*;
        assert_eq!(coordinator(&[runner("http://127.0.0.1:8080")]), Local);
        assert_eq!(coordinator(&[runner("http://localhost")]), Local);
        assert_eq!(coordinator(&[runner("http://[::1]:80/")]), Local);
        assert_eq!(
            coordinator(&[
                runner("http://127.0.0.1:8080"),
                runner("https://gitlab.example.com")
            ]),
            Remote("https://gitlab.example.com".into())
        );
        assert_eq!(
            coordinator(&[runner("not a url")]),
            Remote("not a url".into())
        );
        assert_eq!(coordinator(&[]), Unknown);
    }

    #[test]
    fn without_runners_a_local_address_warns() {
        let c = advertise(&ss("127.0.0.1:8093", None), &[]);
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.detail.contains("no [[runners]] yet"), "{c:?}");
        let c = advertise(&ss("0.0.0.0:8093", Some("runner.example.com:8093")), &[]);
        assert_eq!(c.status, Status::Pass, "{c:?}");
    }

    #[test]
    fn a_public_advertise_address_passes() {
        let remote = [runner("https://gitlab.example.com")];
        for (listen, adv) in [
            ("0.0.0.0:8093", Some("runner.example.com:8093")),
            ("0.0.0.0:8093", Some("203.0.113.9:8093")),
            ("203.0.113.9:8093", None),
        ] {
            let c = advertise(&ss(listen, adv), &remote);
            assert_eq!(c.status, Status::Pass, "{c:?}");
            assert!(c.detail.contains("Workhorse, which dials wss://"), "{c:?}");
        }
        // A loopback address is right when GitLab is on this machine too.
        let local = [runner("http://127.0.0.1:8080")];
        let c = advertise(&ss("127.0.0.1:8093", None), &local);
        assert_eq!(c.status, Status::Pass, "{c:?}");
    }

    #[test]
    fn an_unreachable_advertise_address_with_a_remote_coordinator_fails() {
        let remote = [runner("https://gitlab.example.com")];
        for (listen, adv, class) in [
            ("0.0.0.0:8093", None, "the unspecified address"),
            ("[::]:8093", None, "the unspecified address"),
            ("0.0.0.0:8093", Some("127.0.0.1:8093"), "a loopback address"),
            ("0.0.0.0:8093", Some("localhost:8093"), "a loopback address"),
        ] {
            let c = advertise(&ss(listen, adv), &remote);
            assert_eq!(c.status, Status::Fail, "{c:?}");
            assert!(c.detail.contains(class), "{c:?}");
            assert!(
                c.detail
                    .contains("the coordinator https://gitlab.example.com is remote"),
                "{c:?}"
            );
            assert!(c.detail.contains("409 Conflict"), "{c:?}");
            assert!(c.hint.unwrap().contains("advertise_address"));
        }
        let c = advertise(&ss("0.0.0.0:8093", Some("https://r.tld:8093")), &remote);
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("scheme defined"), "{c:?}");
    }

    #[test]
    fn a_private_advertise_address_warns() {
        let remote = [runner("https://gitlab.example.com")];
        for a in [
            "10.0.0.5:8093",
            "192.168.1.2:8093",
            "100.64.0.1:8093",
            "[fd00::1]:8093",
        ] {
            let c = advertise(&ss("0.0.0.0:8093", Some(a)), &remote);
            assert_eq!(c.status, Status::Warn, "{c:?}");
            assert!(c.detail.contains("private address"), "{c:?}");
        }
        let c = advertise(
            &ss("0.0.0.0:8093", None),
            &[runner("http://127.0.0.1:8080")],
        );
        assert_eq!(c.status, Status::Warn, "{c:?}");
    }

    #[test]
    fn listen_and_advertise_ports() {
        let pass = [
            ("0.0.0.0:8093", None),
            ("0.0.0.0:8093", Some("runner.tld:8093")),
            ("0.0.0.0:0", Some("runner.tld:0")),
            ("0.0.0.0:443", Some("runner.tld")),
        ];
        for (l, a) in pass {
            let c = ports(&ss(l, a));
            assert_eq!(c.status, Status::Pass, "{l} {a:?}: {c:?}");
        }
        let c = ports(&ss("0.0.0.0:8093", Some("runner.tld:9000")));
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.detail.contains("Workhorse dials 9000"), "{c:?}");
        let c = ports(&ss("0.0.0.0:8093", Some("runner.tld")));
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.hint.unwrap().contains("\"runner.tld:8093\""));
        let c = ports(&ss("0.0.0.0:0", Some("runner.tld:8093")));
        assert_eq!(c.status, Status::Warn, "{c:?}");
        let c = ports(&ss("0.0.0.0", None));
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("has no port"), "{c:?}");
    }
}
