//! `LocalRegistry::explain`: every candidate [`plugin`](crate::LocalRegistry::plugin)
//! considers for a name, and what is there, for `plugctl inspect` and
//! `plugctl doctor`.
//!
//! Unlike `plugin`, it examines every candidate (a `stat` each, plus an
//! `lstat` for missing ones to spot dangling symlinks), so it is for
//! diagnostics, not for the hot path. Its `result` is always what `plugin`
//! returns for the same file system.

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;

use crate::error::{DiscoveryError, FileKind};
use crate::gopath::errno_text;
use crate::{LocalRegistry, PluginSpec, SourceKind, name, read_spec};

/// What [`LocalRegistry::explain`] found for a name.
#[derive(Debug)]
#[non_exhaustive]
pub struct Explanation {
    /// The name asked for.
    pub name: String,
    /// Every candidate path in Docker's order; empty when the name is
    /// invalid (no path is built for it).
    pub candidates: Vec<Candidate>,
    /// What [`LocalRegistry::plugin`] returns for the name.
    pub result: Result<PluginSpec, DiscoveryError>,
}

impl Explanation {
    /// The candidate that decided the result ([`Finding::Winner`] or
    /// [`Finding::Failed`]), if any.
    pub fn winner(&self) -> Option<&Candidate> {
        self.candidates
            .iter()
            .find(|c| matches!(c.finding, Finding::Winner | Finding::Failed))
    }

    /// Candidates that exist but come after the winner: definitions of the
    /// same name that Docker never uses.
    pub fn shadowed(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates
            .iter()
            .filter(|c| c.finding == Finding::Shadowed)
    }
}

/// One candidate path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Candidate {
    /// The path, joined as Docker joins it.
    pub path: PathBuf,
    /// Whether it is tried as a socket, a `.spec` or a `.json` file.
    pub source: SourceKind,
    /// Its type after following symlinks; `None` when it cannot be
    /// examined.
    pub file_kind: Option<FileKind>,
    /// What it means for the lookup.
    pub finding: Finding,
}

/// What a candidate path holds, as far as the lookup is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// Nothing there.
    Missing,
    /// A symlink whose target does not exist; Docker skips it.
    DanglingSymlink,
    /// It could not be examined (a symlink loop, a directory that may not be
    /// searched); Docker skips it. The text is Go's errno text.
    Unreachable(String),
    /// A socket candidate that exists but is not a socket; Docker skips it.
    NotASocket,
    /// The candidate that resolved the name.
    Winner,
    /// The candidate that was chosen and failed; the error is the
    /// explanation's `result`. Docker does not try later candidates.
    Failed,
    /// It exists, but an earlier candidate decided the lookup.
    Shadowed,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Missing => f.write_str("missing"),
            Finding::DanglingSymlink => f.write_str("dangling symlink"),
            Finding::Unreachable(why) => write!(f, "unreachable: {why}"),
            Finding::NotASocket => f.write_str("not a socket"),
            Finding::Winner => f.write_str("winner"),
            Finding::Failed => f.write_str("chosen, failed"),
            Finding::Shadowed => f.write_str("shadowed"),
        }
    }
}

impl LocalRegistry {
    /// Every candidate for `name` in Docker's order with what was found
    /// there, and the result [`plugin`](Self::plugin) gives.
    pub fn explain(&self, name: &str) -> Explanation {
        if let Err(e) = name::validate(name) {
            return Explanation {
                name: name.to_owned(),
                candidates: Vec::new(),
                result: Err(e),
            };
        }
        let mut candidates = Vec::new();
        let mut result: Option<Result<PluginSpec, DiscoveryError>> = None;
        for (path, source) in self.candidates(name) {
            let metadata = fs::metadata(&path);
            let file_kind = metadata.as_ref().ok().map(|m| FileKind::of(m.file_type()));
            let finding = match &metadata {
                Err(e) => absence(&path, e),
                Ok(_) if source == SourceKind::Socket && file_kind != Some(FileKind::Socket) => {
                    Finding::NotASocket
                }
                Ok(_) if result.is_some() => Finding::Shadowed,
                Ok(_) if source == SourceKind::Socket => {
                    result = Some(Ok(PluginSpec::socket(name, path.clone())));
                    Finding::Winner
                }
                Ok(m) => {
                    let read = read_spec(name, path.clone(), source, m);
                    let finding = if read.is_ok() {
                        Finding::Winner
                    } else {
                        Finding::Failed
                    };
                    result = Some(read);
                    finding
                }
            };
            candidates.push(Candidate {
                path,
                source,
                file_kind,
                finding,
            });
        }
        Explanation {
            name: name.to_owned(),
            candidates,
            result: result.unwrap_or_else(|| Err(DiscoveryError::not_found(name))),
        }
    }
}

/// Why `stat` failed, in lookup terms.
fn absence(path: &std::path::Path, e: &io::Error) -> Finding {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
            match fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => Finding::DanglingSymlink,
                _ => Finding::Missing,
            }
        }
        _ => Finding::Unreachable(errno_text(e)),
    }
}
