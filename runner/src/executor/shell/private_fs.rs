//! The job's directories and files, made by the runner (root) for a job
//! user without being fooled by what a job planted.
//!
//! A job owns its per-job directory (`<builds>/<short>/<slot>`) and can
//! rename, replace or symlink anything below it at any time (a process that
//! escaped its step's group, say). So below that directory the runner never
//! resolves a path: each component is opened relative to its parent's
//! descriptor with `O_NOFOLLOW`, created with `mkdirat`, chowned with
//! `fchown` and chmodded with `fchmod`, and a file is written by unlinking
//! whatever is there and creating it `O_EXCL`. A symlink named
//! `after_script.sh` pointing at `/etc/passwd` makes the write fail, never
//! writes through it.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

/// Who owns what the job gets: the job user, or `None` to leave the
/// runner's own user as owner.
pub type Owner = Option<(Uid, Gid)>;

/// Directories of a job: owner only.
pub const DIR_MODE: u32 = 0o700;
/// Files of a job (scripts, file variables): owner only.
pub const FILE_MODE: u32 = 0o600;
/// Directories above the per-job one that the runner creates: traversable,
/// not listable, so a job reaches its own directory and sees no other.
pub const SHARED_DIR_MODE: u32 = 0o711;

/// A directory opened without following a symlink in its last component.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Take ownership of a descriptor `openat` just returned.
#[allow(unsafe_code)]
fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful openat(2) and nothing
    // else holds or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn open_dir_at(dir: Option<&Dir>, name: &Path) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        dir.map(|d| d.fd.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    Ok(owned(fd))
}

fn set_owner_and_mode(fd: &OwnedFd, owner: Owner, mode: u32) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        nix::unistd::fchown(fd.as_raw_fd(), Some(uid), Some(gid)).map_err(errno)?;
    }
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode)).map_err(errno)
}

impl Dir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` below this directory, each component created if missing
    /// (mode [`DIR_MODE`], owned by `owner`) and opened without following
    /// symlinks: a symlink or a file on the way is an error.
    pub fn subdir(&self, rel: &Path, owner: Owner) -> io::Result<Dir> {
        let mut fd = None::<OwnedFd>;
        let mut path = self.path.clone();
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a plain relative path", rel.display()),
                ));
            };
            let parent = fd.as_ref().unwrap_or(&self.fd).as_raw_fd();
            match nix::sys::stat::mkdirat(Some(parent), name, Mode::from_bits_truncate(DIR_MODE)) {
                Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                Err(e) => return Err(errno(e)),
            }
            let child = nix::fcntl::openat(
                Some(parent),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| {
                io::Error::new(
                    errno(e).kind(),
                    format!("{}: {}", path.join(name).display(), e.desc()),
                )
            })?;
            let child = owned(child);
            set_owner_and_mode(&child, owner, DIR_MODE)?;
            path.push(name);
            fd = Some(child);
        }
        Ok(Dir {
            fd: match fd {
                Some(fd) => fd,
                None => self.fd.try_clone()?,
            },
            path,
        })
    }

    /// Write `name` afresh: whatever is there (a file, a symlink) is
    /// removed, then the file is created exclusively, never through a
    /// link, mode [`FILE_MODE`], owned by `owner`.
    pub fn write_file(&self, name: &OsStr, contents: &[u8], owner: Owner) -> io::Result<()> {
        if Path::new(name).components().count() != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", Path::new(name).display()),
            ));
        }
        match nix::unistd::unlinkat(
            Some(self.fd.as_raw_fd()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(errno(e)),
        }
        let fd = nix::fcntl::openat(
            Some(self.fd.as_raw_fd()),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(FILE_MODE),
        )
        .map_err(errno)?;
        let fd = owned(fd);
        set_owner_and_mode(&fd, owner, FILE_MODE)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(contents)
    }
}

/// The per-job directory `parent/name` (`<builds>/<short>/<slot>`): mode
/// [`DIR_MODE`], owned by `owner`. One that is not a directory of that
/// owner (an earlier job user of this slot, a file, a symlink) is removed
/// first, so nothing of another user is handed over. `parent` is created
/// if missing (mode [`SHARED_DIR_MODE`]); it and its ancestors belong to
/// the runner and are trusted.
pub fn job_dir(parent: &Path, name: &str, owner: Owner) -> io::Result<Dir> {
    create_shared(parent)?;
    let path = parent.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(m) => {
            let want_uid =
                owner.map_or_else(|| nix::unistd::geteuid().as_raw(), |(u, _)| u.as_raw());
            if !m.is_dir() {
                std::fs::remove_file(&path)?;
            } else if m.uid() != want_uid {
                // std's remove_dir_all does not follow symlinks.
                std::fs::remove_dir_all(&path)?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let parent_dir = Dir {
        fd: open_dir_at(None, parent)?,
        path: parent.to_path_buf(),
    };
    parent_dir.subdir(Path::new(name), owner)
}

/// `dir` and missing ancestors, each one this creates mode
/// [`SHARED_DIR_MODE`] (whatever the umask); existing ones are left alone.
fn create_shared(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_shared(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(SHARED_DIR_MODE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The first of `dir` and its ancestors `user` cannot search (enter), with
/// its mode and owner, as a message; `None` when the user reaches `dir`.
/// Checks the permission bits as the kernel does for a non-root user.
pub fn unreachable_for(dir: &Path, uid: Uid, groups: &[Gid]) -> Option<String> {
    let mut path = PathBuf::new();
    for c in dir.components() {
        path.push(c);
        let Ok(m) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = m.permissions().mode();
        let ok = if m.uid() == uid.as_raw() {
            mode & 0o100 != 0
        } else if groups.iter().any(|g| g.as_raw() == m.gid()) {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !ok {
            return Some(format!(
                "{} (mode {:04o}, uid {}, gid {})",
                path.display(),
                mode & 0o7777,
                m.uid(),
                m.gid()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_is_replaced_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let job = job_dir(&tmp.path().join("b/short"), "0", None).unwrap();
        let t = job.subdir(Path::new("group/project.tmp"), None).unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join("script.sh")).unwrap();
        t.write_file(OsStr::new("script.sh"), b"echo hi", None)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let script = t.path().join("script.sh");
        assert_eq!(std::fs::read_to_string(&script).unwrap(), "echo hi");
        let m = std::fs::symlink_metadata(&script).unwrap();
        assert!(m.is_file());
        assert_eq!(m.permissions().mode() & 0o777, FILE_MODE);
        assert!(t.write_file(OsStr::new("../x"), b"", None).is_err());
    }

    #[test]
    fn a_planted_directory_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let job = job_dir(&tmp.path().join("b/short"), "0", None).unwrap();
        std::os::unix::fs::symlink(&outside, job.path().join("group")).unwrap();
        let e = job.subdir(Path::new("group/project"), None).unwrap_err();
        assert!(e.to_string().contains("group"), "{e}");
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    }

    #[test]
    fn modes_are_private_below_and_traversable_above() {
        let tmp = tempfile::tempdir().unwrap();
        let short = tmp.path().join("builds/short");
        let job = job_dir(&short, "3", None).unwrap();
        let d = job.subdir(Path::new("g/p"), None).unwrap();
        assert_eq!(d.path(), short.join("3/g/p"));
        for p in [short.join("3"), short.join("3/g"), short.join("3/g/p")] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, DIR_MODE, "{}", p.display());
        }
        for p in [tmp.path().join("builds"), short.clone()] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, SHARED_DIR_MODE, "{}", p.display());
        }
    }

    #[test]
    fn reachability_names_the_blocking_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let inner = tmp.path().join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(tmp.path().join("a"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let nobody = Uid::from_raw(65534);
        let e = unreachable_for(&inner, nobody, &[]).unwrap();
        assert!(
            e.starts_with(&format!("{} (mode 0700", tmp.path().join("a").display())),
            "{e}"
        );
        std::fs::set_permissions(tmp.path().join("a"), std::fs::Permissions::from_mode(0o711))
            .unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(unreachable_for(&inner, nobody, &[]), None);
    }
}
