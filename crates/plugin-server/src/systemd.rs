//! systemd socket activation (`sd_listen_fds(3)`): the service manager
//! binds the socket (`ListenStream=/run/docker/plugins/x.sock`) and starts
//! the plugin with the listening descriptors from fd 3 on, announced by
//! `LISTEN_PID` (the plugin's pid) and `LISTEN_FDS` (how many), and, since
//! systemd 227, `LISTEN_FDNAMES` (a name per descriptor, colon-separated:
//! the socket unit's `FileDescriptorName=`, by default the unit's name).
//!
//! [`listen_fds`] and [`select_named`] are the pure rules, unit-tested with
//! any values; [`Listener::systemd`](crate::Listener::systemd) applies them
//! to this process. It must never take descriptors meant for another
//! process (`LISTEN_PID` inherited from a parent).

use std::ops::Range;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first descriptor systemd passes.
pub(crate) const LISTEN_FDS_START: RawFd = 3;

/// Why socket activation could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SystemdError {
    /// `LISTEN_PID` or `LISTEN_FDS` is not set: the process was not
    /// started by socket activation.
    #[error(
        "not socket-activated: {0} is not set (start the plugin from a systemd .socket unit, or listen on a path instead)"
    )]
    NotActivated(&'static str),
    /// A variable is not a number.
    #[error("malformed {var}={value:?}: expected a decimal number")]
    Malformed {
        /// `LISTEN_PID` or `LISTEN_FDS`.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// The descriptors were meant for another process (the variables were
    /// inherited from a parent).
    #[error("LISTEN_PID={listen_pid} is not this process ({pid}); the sockets are not ours")]
    OtherProcess {
        /// The pid the variables name.
        listen_pid: u32,
        /// This process.
        pid: u32,
    },
    /// `LISTEN_FDS=0`: activated, but with nothing to listen on.
    #[error("LISTEN_FDS=0: no sockets were passed")]
    NoFds,
    /// The passed descriptors were already taken by an earlier call.
    #[error("the socket-activation descriptors were already taken")]
    AlreadyTaken,
    /// `LISTEN_FDNAMES` does not name as many descriptors as `LISTEN_FDS`
    /// passes (libsystemd refuses such names too).
    #[error("LISTEN_FDNAMES={value:?} names {names} descriptors, but LISTEN_FDS={fds}")]
    FdNames {
        /// The variable's value.
        value: String,
        /// How many names it holds.
        names: usize,
        /// How many descriptors were passed.
        fds: usize,
    },
}

/// The descriptors passed to process `pid`, from the values of
/// `LISTEN_PID` and `LISTEN_FDS` (`None` when unset).
pub(crate) fn listen_fds(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    pid: u32,
) -> Result<Range<RawFd>, SystemdError> {
    let listen_pid = listen_pid.ok_or(SystemdError::NotActivated("LISTEN_PID"))?;
    let listen_fds = listen_fds.ok_or(SystemdError::NotActivated("LISTEN_FDS"))?;
    let number = |var: &'static str, value: &str| {
        value
            .trim()
            .parse::<u32>()
            .map_err(|_| SystemdError::Malformed {
                var,
                value: value.to_owned(),
            })
    };
    let listen_pid = number("LISTEN_PID", listen_pid)?;
    let count = number("LISTEN_FDS", listen_fds)?;
    if listen_pid != pid {
        return Err(SystemdError::OtherProcess { listen_pid, pid });
    }
    if count == 0 {
        return Err(SystemdError::NoFds);
    }
    let end = RawFd::try_from(count)
        .ok()
        .and_then(|n| LISTEN_FDS_START.checked_add(n))
        .ok_or(SystemdError::Malformed {
            var: "LISTEN_FDS",
            value: listen_fds.to_owned(),
        })?;
    Ok(LISTEN_FDS_START..end)
}

/// Which of `count` passed descriptors (by position) belong to plugin
/// `name`, given the value of `LISTEN_FDNAMES` (`None` when unset).
///
/// Without names, all of them. With names, those named `name` (the socket
/// unit's `FileDescriptorName=name`) or `name.socket` (systemd's default
/// name, the unit's); when none is, all of them: a unit that names its
/// sockets after something else still activates the plugin it starts.
pub(crate) fn select_named(
    names: Option<&str>,
    count: usize,
    name: &str,
) -> Result<Vec<usize>, SystemdError> {
    let Some(value) = names else {
        return Ok((0..count).collect());
    };
    let names: Vec<&str> = value.split(':').collect();
    if names.len() != count {
        return Err(SystemdError::FdNames {
            value: value.to_owned(),
            names: names.len(),
            fds: count,
        });
    }
    let unit = format!("{name}.socket");
    let picked: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| **n == name || **n == unit)
        .map(|(i, _)| i)
        .collect();
    if picked.is_empty() {
        return Ok((0..count).collect());
    }
    Ok(picked)
}

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes ownership of this process's activation descriptors, once, and
/// returns those [`select_named`] picks for plugin `name`; the others are
/// closed.
pub(crate) fn take_from_env(name: &str) -> Result<Vec<OwnedFd>, SystemdError> {
    let pid_var = std::env::var("LISTEN_PID").ok();
    let fds_var = std::env::var("LISTEN_FDS").ok();
    let names_var = std::env::var("LISTEN_FDNAMES").ok();
    let range = listen_fds(pid_var.as_deref(), fds_var.as_deref(), std::process::id())?;
    let picked = select_named(names_var.as_deref(), range.len(), name)?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(SystemdError::AlreadyTaken);
    }
    let all: Vec<OwnedFd> = range
        .map(|fd| {
            // Like sd_listen_fds: children must not inherit the sockets.
            // SAFETY: fcntl on a descriptor number; failure is harmless.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
            // SAFETY: systemd passed these descriptors to this process
            // (LISTEN_PID is ours) and TAKEN guarantees they are wrapped
            // only once, so nothing else owns them.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .collect();
    Ok(all
        .into_iter()
        .enumerate()
        .filter_map(|(i, fd)| picked.contains(&i).then_some(fd))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activated() {
        assert_eq!(listen_fds(Some("42"), Some("1"), 42), Ok(3..4));
        assert_eq!(listen_fds(Some("42"), Some("3"), 42), Ok(3..6));
    }

    #[test]
    fn absent_variables() {
        assert_eq!(
            listen_fds(None, Some("1"), 1),
            Err(SystemdError::NotActivated("LISTEN_PID"))
        );
        assert_eq!(
            listen_fds(Some("1"), None, 1),
            Err(SystemdError::NotActivated("LISTEN_FDS"))
        );
        assert!(
            listen_fds(None, None, 1)
                .unwrap_err()
                .to_string()
                .contains("LISTEN_PID is not set")
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(
            listen_fds(Some("x"), Some("1"), 1),
            Err(SystemdError::Malformed {
                var: "LISTEN_PID",
                value: "x".into()
            })
        );
        assert!(matches!(
            listen_fds(Some("1"), Some("-1"), 1),
            Err(SystemdError::Malformed {
                var: "LISTEN_FDS",
                ..
            })
        ));
        assert!(matches!(
            listen_fds(Some("1"), Some("4294967295"), 1),
            Err(SystemdError::Malformed {
                var: "LISTEN_FDS",
                ..
            })
        ));
    }

    #[test]
    fn other_process_or_none() {
        assert_eq!(
            listen_fds(Some("7"), Some("1"), 8),
            Err(SystemdError::OtherProcess {
                listen_pid: 7,
                pid: 8
            })
        );
        assert_eq!(
            listen_fds(Some("8"), Some("0"), 8),
            Err(SystemdError::NoFds)
        );
    }

    #[test]
    fn without_names_every_descriptor_is_taken() {
        assert_eq!(select_named(None, 3, "p"), Ok(vec![0, 1, 2]));
    }

    #[test]
    fn names_pick_the_plugins_descriptors() {
        assert_eq!(select_named(Some("other:p"), 2, "p"), Ok(vec![1]));
        // systemd's default name is the socket unit's.
        assert_eq!(select_named(Some("p.socket:x"), 2, "p"), Ok(vec![0]));
        // A unit may pass several sockets under one name.
        assert_eq!(select_named(Some("p:x:p"), 3, "p"), Ok(vec![0, 2]));
        // Names are compared whole, never as prefixes.
        assert_eq!(select_named(Some("pp:p.sock"), 2, "p"), Ok(vec![0, 1]));
    }

    #[test]
    fn names_that_do_not_mention_the_plugin_leave_all_descriptors() {
        assert_eq!(select_named(Some("web.socket"), 1, "p"), Ok(vec![0]));
        assert_eq!(select_named(Some(""), 1, "p"), Ok(vec![0]));
    }

    #[test]
    fn names_must_match_the_descriptor_count() {
        let e = select_named(Some("a:p"), 3, "p").unwrap_err();
        assert_eq!(
            e,
            SystemdError::FdNames {
                value: "a:p".into(),
                names: 2,
                fds: 3
            }
        );
        assert_eq!(
            e.to_string(),
            "LISTEN_FDNAMES=\"a:p\" names 2 descriptors, but LISTEN_FDS=3"
        );
    }
}
