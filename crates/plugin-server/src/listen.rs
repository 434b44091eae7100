//! Listeners: a unix socket at a path (with stale-socket handling), a tcp
//! address, or a descriptor handed over (systemd socket activation).
//!
//! Listeners are plain `std` sockets in non-blocking mode, so they can be
//! made before a tokio runtime exists; the [`Server`](crate::Server) moves
//! them into tokio when it starts.

use std::fs;
use std::io;
use std::mem;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use plugin_proto::DEFAULT_SOCKET_DIR;

use crate::ServeError;

/// The address a [`Listener`] is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenAddr {
    /// A unix socket; `None` for an unnamed or abstract socket.
    Unix(Option<PathBuf>),
    /// A tcp address.
    Tcp(SocketAddr),
}

impl std::fmt::Display for ListenAddr {
    /// The address as a plugin address: `unix:///path` or `tcp://ip:port`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Unix(Some(p)) => write!(f, "unix://{}", p.display()),
            ListenAddr::Unix(None) => f.write_str("an unnamed unix socket"),
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// A bound, listening socket, plus the socket file it created (if any).
///
/// A socket file the listener created is removed when the listener is
/// dropped or its server stops — but only if the path still holds that
/// very file (same device and inode), so a restarted plugin's new socket
/// is never removed by the old process.
#[derive(Debug)]
pub struct Listener {
    pub(crate) socket: Socket,
    pub(crate) owned: Option<OwnedFile>,
}

#[derive(Debug)]
pub(crate) enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    /// Listens on a unix socket at `path`.
    ///
    /// - The parent directory is created (mode 0755) when missing.
    /// - A socket file already there is probed with a connection attempt:
    ///   refused means its process is gone, and the stale file is
    ///   replaced; a connection that succeeds means another process is
    ///   serving, which is [`ServeError::SocketInUse`].
    /// - Anything else at the path (a regular file, a directory, a
    ///   symlink) is [`ServeError::NotASocket`] and is left alone.
    pub fn unix(path: impl AsRef<Path>) -> Result<Listener, ServeError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| ServeError::io("create socket directory", dir.to_path_buf(), e))?;
        }
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                let live = probe_unix(path)
                    .map_err(|e| ServeError::io("probe existing socket", path.to_path_buf(), e))?;
                if live {
                    return Err(ServeError::SocketInUse(path.to_path_buf()));
                }
                tracing::info!(path = %path.display(), "removing stale plugin socket");
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(ServeError::io("remove stale socket", path.to_path_buf(), e));
                    }
                }
            }
            Ok(_) => return Err(ServeError::NotASocket(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ServeError::io("inspect socket path", path.to_path_buf(), e)),
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| ServeError::io("bind unix socket", path.to_path_buf(), e))?;
        let owned = OwnedFile::record(path)
            .map_err(|e| ServeError::io("inspect new socket", path.to_path_buf(), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ServeError::io("set non-blocking", path.to_path_buf(), e))?;
        Ok(Listener {
            socket: Socket::Unix(listener),
            owned: Some(owned),
        })
    }

    /// Listens on `/run/docker/plugins/<name>.sock`, where Docker finds
    /// plugins by name (see [`Listener::unix`]).
    pub fn plugin_socket(name: &str) -> Result<Listener, ServeError> {
        check_name(name)?;
        Listener::unix(Path::new(DEFAULT_SOCKET_DIR).join(format!("{name}.sock")))
    }

    /// Listens on a tcp address (`127.0.0.1:0` picks a free port). Pair
    /// it with a [`SpecFile`](crate::SpecFile) so Docker can find it.
    pub fn tcp(addr: impl ToSocketAddrs) -> Result<Listener, ServeError> {
        let l = TcpListener::bind(addr).map_err(|e| ServeError::io("bind tcp", None, e))?;
        l.set_nonblocking(true)
            .map_err(|e| ServeError::io("set non-blocking", None, e))?;
        Ok(Listener {
            socket: Socket::Tcp(l),
            owned: None,
        })
    }

    /// Uses an already listening socket, such as one passed by systemd. It
    /// must be a stream socket in the listening state, of family unix,
    /// IPv4 or IPv6. No file is ever removed for it: whoever made the
    /// socket owns its path.
    pub fn from_fd(fd: OwnedFd) -> Result<Listener, ServeError> {
        let raw = fd.as_raw_fd();
        let bad = |reason: String| ServeError::BadFd { fd: raw, reason };
        let sock_type = getsockopt_int(raw, libc::SO_TYPE).map_err(|e| bad(e.to_string()))?;
        if sock_type != libc::SOCK_STREAM {
            return Err(bad("not a stream socket".into()));
        }
        if getsockopt_int(raw, libc::SO_ACCEPTCONN).map_err(|e| bad(e.to_string()))? == 0 {
            return Err(bad("socket is not listening".into()));
        }
        let socket = match socket_family(raw).map_err(|e| bad(e.to_string()))? {
            libc::AF_UNIX => Socket::Unix(UnixListener::from(fd)),
            libc::AF_INET | libc::AF_INET6 => Socket::Tcp(TcpListener::from(fd)),
            other => return Err(bad(format!("unsupported address family {other}"))),
        };
        let l = Listener {
            socket,
            owned: None,
        };
        l.set_nonblocking().map_err(|e| ServeError::BadFd {
            fd: raw,
            reason: e.to_string(),
        })?;
        Ok(l)
    }

    /// Takes the listeners systemd passed with socket activation
    /// (`LISTEN_PID`, `LISTEN_FDS`; descriptors from 3 on), in order: those
    /// `LISTEN_FDNAMES` names `name` or `name.socket` when it names any
    /// that way, all of them otherwise. Descriptors not taken are closed.
    ///
    /// They can be taken once per process: a second call is
    /// [`SystemdError::AlreadyTaken`](crate::SystemdError::AlreadyTaken).
    /// The variables are left in the environment (removing them is unsafe
    /// in a threaded process); the descriptors are marked close-on-exec so
    /// children do not inherit them.
    pub fn systemd(name: &str) -> Result<Vec<Listener>, ServeError> {
        let fds = crate::systemd::take_from_env(name)?;
        fds.into_iter().map(Listener::from_fd).collect()
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<ListenAddr> {
        match &self.socket {
            Socket::Unix(l) => Ok(ListenAddr::Unix(
                l.local_addr()?.as_pathname().map(Path::to_path_buf),
            )),
            Socket::Tcp(l) => Ok(ListenAddr::Tcp(l.local_addr()?)),
        }
    }

    /// The socket file this listener created and will remove, if any.
    pub fn socket_path(&self) -> Option<&Path> {
        self.owned.as_ref().map(|o| o.path.as_path())
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match &self.socket {
            Socket::Unix(l) => l.set_nonblocking(true),
            Socket::Tcp(l) => l.set_nonblocking(true),
        }
    }

    pub(crate) fn is_unix(&self) -> bool {
        matches!(self.socket, Socket::Unix(_))
    }

    /// Gives the socket file this listener created to group `gid` and sets
    /// its permission bits, as Docker's plugin helpers do for a socket
    /// group. Nothing is changed once the path holds another file.
    pub(crate) fn set_socket_access(
        &self,
        gid: Option<u32>,
        mode: Option<u32>,
    ) -> Result<(), ServeError> {
        let Some(owned) = &self.owned else {
            return Ok(());
        };
        let path = &owned.path;
        if !owned.is_still_there() {
            return Err(ServeError::io(
                "set socket access",
                path.clone(),
                io::Error::other("the socket file was replaced"),
            ));
        }
        if let Some(gid) = gid {
            // lchown: a symlink swapped in is not followed.
            std::os::unix::fs::lchown(path, None, Some(gid))
                .map_err(|e| ServeError::io("chown socket", path.clone(), e))?;
        }
        if let Some(mode) = mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(|e| ServeError::io("chmod socket", path.clone(), e))?;
        }
        Ok(())
    }
}

/// Plugin names become file names: refuse what would leave the directory.
pub(crate) fn check_name(name: &str) -> Result<(), ServeError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(ServeError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// A file this process created, identified by device, inode and birth
/// time so that a replacement made by someone else is never removed (file
/// systems reuse a freed inode number at once; the birth time tells the
/// new file from ours where the file system records it, and unlike the
/// change time it survives a `chmod`).
#[derive(Debug)]
pub(crate) struct OwnedFile {
    pub(crate) path: PathBuf,
    id: FileId,
}

#[derive(Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    born: Option<std::time::SystemTime>,
}

impl FileId {
    fn of(m: &fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            born: m.created().ok(),
        }
    }
}

impl OwnedFile {
    pub(crate) fn record(path: &Path) -> io::Result<OwnedFile> {
        let m = fs::symlink_metadata(path)?;
        Ok(OwnedFile {
            path: path.to_path_buf(),
            id: FileId::of(&m),
        })
    }

    /// Whether the path still holds the file recorded.
    fn is_still_there(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok_and(|m| FileId::of(&m) == self.id)
    }
}

impl Drop for OwnedFile {
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.path) {
            Ok(m) if FileId::of(&m) == self.id => {
                if let Err(e) = fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "could not remove plugin file");
                } else {
                    tracing::debug!(path = %self.path.display(), "removed plugin file");
                }
            }
            Ok(_) => {
                tracing::info!(path = %self.path.display(), "plugin file was replaced by another process; leaving it");
            }
            Err(_) => {}
        }
    }
}

/// Whether a process accepts connections on the unix socket at `path`.
///
/// The attempt is non-blocking: a live server with a full backlog answers
/// `EAGAIN`, which counts as live, instead of hanging the probe.
fn probe_unix(path: &Path) -> io::Result<bool> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: plain socket(2) call; the result is checked below.
    let raw = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let len = mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    // SAFETY: `addr` is a valid sockaddr_un and `len` does not exceed it.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            len as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) | Some(libc::ENOENT) => Ok(false),
        Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => Ok(true),
        _ => Err(e),
    }
}

fn getsockopt_int(fd: RawFd, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut val: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `val` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&raw mut val).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(val)
}

fn socket_family(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` and `len` are valid for writes of the sizes given.
    let rc = unsafe { libc::getsockname(fd, (&raw mut ss).cast::<libc::sockaddr>(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(libc::c_int::from(ss.ss_family))
}
