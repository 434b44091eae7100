//! Discovery errors: Docker's texts, plus the path of the file or directory
//! that failed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use plugin_proto::{SpecError, go_quote};

use crate::gopath::errno_text;

/// Why a plugin could not be listed or resolved.
///
/// [`Display`](fmt::Display) keeps Docker's text verbatim (for instance
/// `could not find plugin x in v1 plugin registry: plugin not found`, or
/// `error reading dir entries: open /etc/docker/plugins: permission denied`);
/// errors about a spec file put its path in front (`/etc/docker/plugins/x.spec:
/// Unknown protocol`). The underlying OS or parse error is
/// [`source()`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DiscoveryError(#[from] Repr);

/// What kind of [`DiscoveryError`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiscoveryErrorKind {
    /// No socket or spec file for the name (Docker's `ErrNotFound`).
    NotFound,
    /// Divergence: the name could escape the plugin directories.
    InvalidName,
    /// A plugin directory exists but could not be listed.
    ReadDir,
    /// The winning spec file could not be opened or read.
    Read,
    /// Divergence: the winning spec candidate is not a regular file.
    NotRegularFile,
    /// Divergence: the winning spec file is over [`MAX_SPEC_SIZE`](crate::MAX_SPEC_SIZE).
    TooLarge,
    /// The winning spec file's content is unusable.
    Spec,
}

/// The type of a file system entry, as named in errors and explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (only seen without following it).
    Symlink,
    /// A unix domain socket.
    Socket,
    /// A named pipe.
    Fifo,
    /// A block device.
    BlockDevice,
    /// A character device.
    CharDevice,
    /// Something else.
    Other,
}

impl FileKind {
    /// The kind of a file type from `metadata`, `symlink_metadata` or a
    /// directory entry.
    pub fn of(file_type: std::fs::FileType) -> FileKind {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if file_type.is_socket() {
                return FileKind::Socket;
            }
            if file_type.is_fifo() {
                return FileKind::Fifo;
            }
            if file_type.is_block_device() {
                return FileKind::BlockDevice;
            }
            if file_type.is_char_device() {
                return FileKind::CharDevice;
            }
        }
        if file_type.is_file() {
            FileKind::File
        } else if file_type.is_dir() {
            FileKind::Directory
        } else if file_type.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Other
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::File => "regular file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symbolic link",
            FileKind::Socket => "socket",
            FileKind::Fifo => "named pipe (FIFO)",
            FileKind::BlockDevice => "block device",
            FileKind::CharDevice => "character device",
            FileKind::Other => "special file",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Repr {
    #[error("could not find plugin {name} in v1 plugin registry: plugin not found")]
    NotFound { name: String },
    #[error("invalid plugin name {}: {reason}", go_quote(.name))]
    InvalidName { name: String, reason: &'static str },
    /// `op` is Go's `PathError` operation (`open`, `readdirent`).
    #[error("error reading dir entries: {op} {}: {}", .path.display(), errno_text(.source))]
    ReadDir {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Go's `PathError` text, which already names the file.
    #[error("{op} {}: {}", .path.display(), errno_text(.source))]
    Read {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{}: plugin spec candidate is a {kind}, not a regular file; it was not opened",
        .path.display()
    )]
    NotRegularFile { path: PathBuf, kind: FileKind },
    #[error(
        "{}: plugin spec file is larger than {limit} bytes; it was not parsed",
        .path.display()
    )]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: {source}", .path.display())]
    Spec {
        path: PathBuf,
        #[source]
        source: SpecError,
    },
}

impl DiscoveryError {
    pub(crate) fn not_found(name: &str) -> DiscoveryError {
        Repr::NotFound {
            name: name.to_owned(),
        }
        .into()
    }

    /// What kind of error this is.
    pub fn kind(&self) -> DiscoveryErrorKind {
        match &self.0 {
            Repr::NotFound { .. } => DiscoveryErrorKind::NotFound,
            Repr::InvalidName { .. } => DiscoveryErrorKind::InvalidName,
            Repr::ReadDir { .. } => DiscoveryErrorKind::ReadDir,
            Repr::Read { .. } => DiscoveryErrorKind::Read,
            Repr::NotRegularFile { .. } => DiscoveryErrorKind::NotRegularFile,
            Repr::TooLarge { .. } => DiscoveryErrorKind::TooLarge,
            Repr::Spec { .. } => DiscoveryErrorKind::Spec,
        }
    }

    /// `true` when no socket or spec file exists for the name: Docker's
    /// `errors.Is(err, ErrNotFound)` (checklist 10).
    pub fn is_not_found(&self) -> bool {
        matches!(self.0, Repr::NotFound { .. })
    }

    /// `true` when the name was rejected before any path was built
    /// (divergence: Docker joins any name as a path).
    pub fn is_invalid_name(&self) -> bool {
        matches!(self.0, Repr::InvalidName { .. })
    }

    /// The plugin name, for not-found and invalid-name errors.
    pub fn name(&self) -> Option<&str> {
        match &self.0 {
            Repr::NotFound { name } | Repr::InvalidName { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The directory or file that failed, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.0 {
            Repr::NotFound { .. } | Repr::InvalidName { .. } => None,
            Repr::ReadDir { path, .. }
            | Repr::Read { path, .. }
            | Repr::NotRegularFile { path, .. }
            | Repr::TooLarge { path, .. }
            | Repr::Spec { path, .. } => Some(path),
        }
    }

    /// The OS error, for directory and file read failures.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.0 {
            Repr::ReadDir { source, .. } | Repr::Read { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The spec parse error, when the file's content was unusable.
    pub fn spec_error(&self) -> Option<&SpecError> {
        match &self.0 {
            Repr::Spec { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The type of a spec candidate that was refused for not being a
    /// regular file.
    pub fn file_kind(&self) -> Option<FileKind> {
        match &self.0 {
            Repr::NotRegularFile { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}
