//! Signalling a terminal shell's whole session: an interactive shell with
//! job control puts each job in its own process group, so the shell's group
//! alone misses them. The OS effects (list a session's processes, send a
//! signal) sit behind [`SessionOs`]: [`ProcOs`] scans `/proc` and calls
//! kill(2); tests put a recording or gated fake in its place.

use std::collections::{HashMap, HashSet};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// What closing a terminal does to the system.
pub(crate) trait SessionOs: Send + Sync + std::fmt::Debug {
    /// Live (not zombie) processes of each session in `sids`, in one scan;
    /// `None` when processes cannot be listed (no `/proc`).
    fn sessions_members(&self, sids: &HashSet<i32>) -> Option<HashMap<i32, Vec<Pid>>>;
    /// Send `sig` to process `pid`; a process already gone is no error.
    fn kill(&self, pid: Pid, sig: Signal);
    /// Send `sig` to process group `pgid`; a group already gone is no error.
    fn kill_group(&self, pgid: Pid, sig: Signal);
}

/// The real system: `/proc` and kill(2).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ProcOs;

impl SessionOs for ProcOs {
    fn sessions_members(&self, sids: &HashSet<i32>) -> Option<HashMap<i32, Vec<Pid>>> {
        sessions_members(sids)
    }

    fn kill(&self, pid: Pid, sig: Signal) {
        let _ = kill(pid, sig);
    }

    fn kill_group(&self, pgid: Pid, sig: Signal) {
        let _ = killpg(pgid, sig);
    }
}

/// Send each request's signals, in order, to every live process whose
/// session is its pid (a session leader's pid cannot be reused while its
/// session has members), sharing each scan among all the requests. The scan
/// is the cost: with thousands of processes, 1000 terminals closing at once,
/// one scan each, took minutes of CPU. Without `/proc`, only each leader's
/// process group is signalled.
pub(crate) fn signal_sessions(os: &dyn SessionOs, reqs: &[(Pid, Vec<Signal>)]) {
    for (sid, sigs) in reqs {
        for &sig in sigs {
            os.kill_group(*sid, sig);
        }
    }
    // A few rounds for sessions being SIGKILLed: a process may fork while
    // we scan. A request is done after a round that finds nothing new in
    // its session (a SIGKILLed process stays listed until it is reaped), or
    // after its first round if it sends no SIGKILL.
    let mut signalled: Vec<Vec<Pid>> = vec![Vec::new(); reqs.len()];
    let mut open: Vec<bool> = vec![true; reqs.len()];
    for _ in 0..8 {
        let sids: HashSet<i32> = reqs
            .iter()
            .zip(&open)
            .filter(|(_, &o)| o)
            .map(|((sid, _), _)| sid.as_raw())
            .collect();
        if sids.is_empty() {
            return;
        }
        let Some(members) = os.sessions_members(&sids) else {
            return;
        };
        for (i, (sid, sigs)) in reqs.iter().enumerate() {
            if !open[i] {
                continue;
            }
            let fresh: Vec<Pid> = members
                .get(&sid.as_raw())
                .into_iter()
                .flatten()
                .filter(|p| !signalled[i].contains(p))
                .copied()
                .collect();
            for p in &fresh {
                for &sig in sigs {
                    os.kill(*p, sig);
                }
            }
            open[i] = !fresh.is_empty() && sigs.contains(&Signal::SIGKILL);
            signalled[i].extend(fresh);
        }
    }
}

/// Live (not zombie) processes in session `sid`; `None` without `/proc`.
#[cfg(test)]
pub(super) fn session_members(sid: Pid) -> Option<Vec<Pid>> {
    let mut all = sessions_members(&HashSet::from([sid.as_raw()]))?;
    Some(all.remove(&sid.as_raw()).unwrap_or_default())
}

/// [`ProcOs::sessions_members`]: one scan of `/proc`.
fn sessions_members(sids: &HashSet<i32>) -> Option<HashMap<i32, Vec<Pid>>> {
    let dir = std::fs::read_dir("/proc").ok()?;
    let mut out: HashMap<i32, Vec<Pid>> = HashMap::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(s) = parse_stat(&stat) {
            if sids.contains(&s.session) && s.state != 'Z' && s.state != 'X' {
                out.entry(s.session).or_default().push(Pid::from_raw(pid));
            }
        }
    }
    Some(out)
}

/// The fields of `/proc/<pid>/stat` we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcStat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
}

/// `pid (comm) state ppid pgrp session ...`; comm may hold spaces and
/// parentheses, so split after the last `)`.
pub(super) fn parse_stat(stat: &str) -> Option<ProcStat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut it = rest.split_ascii_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    let pgrp = it.next()?.parse().ok()?;
    let session = it.next()?.parse().ok()?;
    Some(ProcStat {
        state,
        ppid,
        pgrp,
        session,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Sessions whose members appear one round at a time (as if they
    /// forked while the first scan ran); records every OS call.
    #[derive(Debug, Default)]
    struct Scripted {
        rounds: Mutex<Vec<HashMap<i32, Vec<Pid>>>>,
        calls: Mutex<Vec<String>>,
    }

    impl SessionOs for Scripted {
        fn sessions_members(&self, sids: &HashSet<i32>) -> Option<HashMap<i32, Vec<Pid>>> {
            let mut sids: Vec<_> = sids.iter().collect();
            sids.sort();
            self.calls.lock().unwrap().push(format!("scan {sids:?}"));
            let mut rounds = self.rounds.lock().unwrap();
            Some(if rounds.is_empty() {
                HashMap::new()
            } else {
                rounds.remove(0)
            })
        }
        fn kill(&self, pid: Pid, sig: Signal) {
            self.calls.lock().unwrap().push(format!("kill {pid} {sig}"));
        }
        fn kill_group(&self, pgid: Pid, sig: Signal) {
            self.calls
                .lock()
                .unwrap()
                .push(format!("killpg {pgid} {sig}"));
        }
    }

    fn pids(p: &[i32]) -> Vec<Pid> {
        p.iter().map(|&p| Pid::from_raw(p)).collect()
    }

    #[test]
    fn one_scan_serves_every_session_and_kills_rescan_until_quiet() {
        let os = Scripted::default();
        *os.rounds.lock().unwrap() = vec![
            HashMap::from([(10, pids(&[10, 11])), (20, pids(&[21]))]),
            // Session 10 forked while it was signalled; 20 sent no SIGKILL.
            HashMap::from([(10, pids(&[10, 11, 12]))]),
            HashMap::from([(10, pids(&[10, 11, 12]))]),
        ];
        let reqs = vec![
            (Pid::from_raw(10), vec![Signal::SIGKILL]),
            (Pid::from_raw(20), vec![Signal::SIGHUP, Signal::SIGCONT]),
        ];
        signal_sessions(&os, &reqs);
        assert_eq!(
            *os.calls.lock().unwrap(),
            [
                "killpg 10 SIGKILL",
                "killpg 20 SIGHUP",
                "killpg 20 SIGCONT",
                "scan [10, 20]",
                "kill 10 SIGKILL",
                "kill 11 SIGKILL",
                "kill 21 SIGHUP",
                "kill 21 SIGCONT",
                "scan [10]",
                "kill 12 SIGKILL",
                "scan [10]",
            ]
        );
    }

    #[test]
    fn without_a_process_list_only_the_group_is_signalled() {
        #[derive(Debug)]
        struct NoProc(Mutex<Vec<String>>);
        impl SessionOs for NoProc {
            fn sessions_members(&self, _: &HashSet<i32>) -> Option<HashMap<i32, Vec<Pid>>> {
                None
            }
            fn kill(&self, pid: Pid, sig: Signal) {
                self.0.lock().unwrap().push(format!("kill {pid} {sig}"));
            }
            fn kill_group(&self, pgid: Pid, sig: Signal) {
                self.0.lock().unwrap().push(format!("killpg {pgid} {sig}"));
            }
        }
        let os = NoProc(Mutex::default());
        signal_sessions(&os, &[(Pid::from_raw(7), vec![Signal::SIGKILL])]);
        assert_eq!(*os.0.lock().unwrap(), ["killpg 7 SIGKILL"]);
    }

    #[test]
    fn parses_proc_stat() {
        let s = parse_stat("42 (a (b) c) S 1 42 42 34816 42 4194560 0 0").unwrap();
        assert_eq!(
            s,
            ProcStat {
                state: 'S',
                ppid: 1,
                pgrp: 42,
                session: 42
            }
        );
        assert_eq!(parse_stat("garbage"), None);
    }
}
