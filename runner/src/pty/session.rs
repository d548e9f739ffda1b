//! Signalling a terminal shell's whole session through `/proc`: an
//! interactive shell with job control puts each job in its own process
//! group, so the shell's group alone misses them.

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Send each of `sigs`, in order, to every live process whose session is
/// `sid` (a session leader's pid cannot be reused while its session has
/// members), for the price of one scan of `/proc` per round (the scan is
/// the cost: with thousands of processes, 1000 terminals closing at once
/// spent tens of seconds of CPU in it). Without `/proc`, only the leader's
/// process group is signalled.
pub(super) fn signal_session(sid: Pid, sigs: &[Signal]) {
    for &sig in sigs {
        let _ = killpg(sid, sig);
    }
    let kill_round = sigs.contains(&Signal::SIGKILL);
    // A few rounds: a process may fork while we scan. Each round reads all
    // of /proc, so a round that finds no process not already signalled
    // ends it (a SIGKILLed process stays listed until it is reaped; with
    // thousands of processes, rescanning for those made closing a
    // terminal take most of a second).
    let mut signalled: Vec<Pid> = Vec::new();
    for _ in 0..8 {
        let Some(members) = session_members(sid) else {
            return;
        };
        let fresh: Vec<Pid> = members
            .into_iter()
            .filter(|p| !signalled.contains(p))
            .collect();
        if fresh.is_empty() {
            return;
        }
        for p in &fresh {
            for &sig in sigs {
                let _ = kill(*p, sig);
            }
        }
        if !kill_round {
            return;
        }
        signalled.extend(fresh);
    }
}

/// Live (not zombie) processes in session `sid`; `None` without `/proc`.
pub(super) fn session_members(sid: Pid) -> Option<Vec<Pid>> {
    let dir = std::fs::read_dir("/proc").ok()?;
    let mut out = Vec::new();
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
            if s.session == sid.as_raw() && s.state != 'Z' && s.state != 'X' {
                out.push(Pid::from_raw(pid));
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
