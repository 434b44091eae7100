//! systemd socket activation (`sd_listen_fds(3)`): the service manager
//! binds the socket (`ListenStream=/run/docker/plugins/x.sock`) and starts
//! the plugin with the listening descriptors from fd 3 on, announced by
//! `LISTEN_PID` (the plugin's pid) and `LISTEN_FDS` (how many).
//!
//! [`listen_fds`] is the pure rule, testable with any values;
//! [`Listener::systemd`](crate::Listener::systemd) applies it to this
//! process.

use std::ops::Range;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first descriptor systemd passes.
pub const LISTEN_FDS_START: RawFd = 3;

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
}

/// The descriptors passed to process `pid`, from the values of
/// `LISTEN_PID` and `LISTEN_FDS` (`None` when unset).
pub fn listen_fds(
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

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes ownership of this process's activation descriptors, once.
pub(crate) fn take_from_env() -> Result<Vec<OwnedFd>, SystemdError> {
    let pid_var = std::env::var("LISTEN_PID").ok();
    let fds_var = std::env::var("LISTEN_FDS").ok();
    let range = listen_fds(pid_var.as_deref(), fds_var.as_deref(), std::process::id())?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(SystemdError::AlreadyTaken);
    }
    Ok(range
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
}
