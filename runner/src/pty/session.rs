//! Signalling a terminal shell's whole session through `/proc`: an
//! interactive shell with job control puts each job in its own process
//! group, so the shell's group alone misses them.

use std::collections::{HashMap, HashSet};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Send each of `sigs`, in order, to every live process whose session is
/// `sid` (a session leader's pid cannot be reused while its session has
/// members). Without `/proc`, only the leader's process group is signalled.
pub(super) fn signal_session(sid: Pid, sigs: &[Signal]) {
    signal_sessions(&[(sid, sigs.to_vec())]);
}

#[cfg(test)]
thread_local! {
    /// Scans of `/proc` made on this thread (tests check which thread scans).
    pub(super) static SCANS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// [`signal_session`] for many sessions at once, sharing each scan of
/// `/proc`. The scan is the cost: with thousands of processes, 1000
/// terminals closing at once, one scan each, took minutes of CPU.
pub(super) fn signal_sessions(reqs: &[(Pid, Vec<Signal>)]) {
    for (sid, sigs) in reqs {
        for &sig in sigs {
            let _ = killpg(*sid, sig);
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
        #[cfg(test)]
        SCANS.with(|c| c.set(c.get() + 1));
        let Some(members) = sessions_members(&sids) else {
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
                    let _ = kill(*p, sig);
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

/// Live (not zombie) processes of each session in `sids`, in one scan of
/// `/proc`; `None` without `/proc`.
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
    use super::*;

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
