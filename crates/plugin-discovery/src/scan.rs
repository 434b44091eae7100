//! `LocalRegistry::scan`: Docker's `Scan()` (spec §1.2 and §12;
//! checklist 4–8).
//!
//! One `readdir` per directory; file types come from the directory entries
//! themselves. The only `stat` is Docker's own: `<sockets>/<d>/<d>.sock`
//! for each directory `d` in the socket directory. Spec subdirectories are
//! read (names only), as Docker does.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::LocalRegistry;
use crate::error::{DiscoveryError, FileKind, Repr};
use crate::gopath::{self, errno_text, ext, name_bytes, stem};

/// One directory entry, typed as `readdir` reported it (a symlink is a
/// symlink, not what it points to).
struct Entry {
    name: OsString,
    file_type: fs::FileType,
}

/// A failed directory read, in Go's `PathError` terms.
struct DirError {
    op: &'static str,
    path: PathBuf,
    source: io::Error,
}

impl DirError {
    fn go_text(&self) -> String {
        format!(
            "{} {}: {}",
            self.op,
            self.path.display(),
            errno_text(&self.source)
        )
    }

    fn into_error(self) -> DiscoveryError {
        Repr::ReadDir {
            op: self.op,
            path: self.path,
            source: self.source,
        }
        .into()
    }
}

impl LocalRegistry {
    /// Lists plugin names exactly as Docker's `Scan()` does (checklist 4–8):
    ///
    /// - the socket directory, sorted by file name: each socket, by its
    ///   `readdir` type (symlinks are never listed), named without its last
    ///   extension (`a.sock` → `a`, `d.bar` → `d`, `e` → `e`); and each
    ///   directory `d` whose `d/d.sock` is a socket after following symlinks;
    /// - then each spec directory in priority order, sorted: every entry
    ///   whose last extension is `.spec` or `.json`, whatever its type (a
    ///   socket `s.spec` or a dangling symlink `d.spec` is listed); a
    ///   subdirectory `d` stands for the first entry, sorted, whose name
    ///   without its last extension is `d` (so `m/{m.abc,m.json}` lists
    ///   nothing, `n/n` hides `n/n.spec`), or for itself when none matches
    ///   (a directory `y.json/` lists as `y`).
    ///
    /// Duplicates are kept (`a.sock`, `a.json` and `a.spec` give `a, a, a`)
    /// and names that [`plugin`](Self::plugin) rejects (`""` from `.sock`)
    /// are listed. Names that are not UTF-8 are converted lossily.
    ///
    /// Missing directories are skipped. Nothing found is an empty `Vec`,
    /// which stands for Docker's `nil`. Any other directory error is
    /// `error reading dir entries: <Go's error>`, except a permission error
    /// on a spec directory inside a user namespace, which is logged at
    /// debug level and skipped, as in Docker since v25.0.5.
    pub fn scan(&self) -> Result<Vec<String>, DiscoveryError> {
        let mut names = Vec::new();

        match read_dir_sorted(&self.socket_dir) {
            Ok(entries) => {
                for entry in entries {
                    let name = name_bytes(&entry.name);
                    if entry.file_type.is_dir() {
                        // The entry becomes `<d>/<d>.sock` if that stats as a
                        // socket (following symlinks; spec §12).
                        let mut file = entry.name.clone();
                        file.push(".sock");
                        let path = gopath::join(&self.socket_dir, &[&entry.name, &file]);
                        let is_socket = fs::metadata(&path)
                            .is_ok_and(|m| FileKind::of(m.file_type()) == FileKind::Socket);
                        if is_socket {
                            // stem(`<d>.sock`) is `<d>`.
                            names.push(lossy(&name));
                        }
                    } else if FileKind::of(entry.file_type) == FileKind::Socket {
                        names.push(lossy(stem(&name)));
                    }
                }
            }
            Err(e) if e.source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into_error()),
        }

        for dir in &self.spec_dirs {
            let entries = match read_dir_sorted(dir) {
                Ok(entries) => entries,
                Err(e) if e.source.kind() == io::ErrorKind::NotFound => continue,
                Err(e)
                    if e.source.kind() == io::ErrorKind::PermissionDenied
                        && self.in_user_namespace() =>
                {
                    // Docker: log.L.Debug(err.Error()).
                    tracing::debug!("{}", e.go_text());
                    continue;
                }
                Err(e) => return Err(e.into_error()),
            };
            for entry in entries {
                let mut name: Cow<'_, [u8]> = name_bytes(&entry.name);
                if entry.file_type.is_dir() {
                    let sub = gopath::join(dir, &[&entry.name]);
                    match first_match(&sub, &name) {
                        Ok(Some(matched)) => name = Cow::Owned(matched),
                        Ok(None) => {}
                        // Docker skips the entry when its directory cannot
                        // be read.
                        Err(_) => continue,
                    }
                }
                let extension = ext(&name);
                if extension == b".spec" || extension == b".json" {
                    names.push(lossy(stem(&name)));
                }
            }
        }

        Ok(names)
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Go's `os.ReadDir`: every entry with its `readdir` type, sorted by name
/// bytes. Error texts follow Go's: `open <dir>: …` when the directory
/// cannot be opened, `readdirent <dir>: not a directory` when it is a file.
fn read_dir_sorted(dir: &Path) -> Result<Vec<Entry>, DirError> {
    let err = |op, source| DirError {
        op,
        path: dir.to_path_buf(),
        source,
    };
    let reader = match fs::read_dir(dir) {
        Ok(reader) => reader,
        Err(e) => return Err(open_error(dir, e)),
    };
    let mut entries = Vec::new();
    for item in reader {
        let item = item.map_err(|e| err("readdirent", e))?;
        // `file_type` is free when the file system reports `d_type`; Go then
        // falls back to `lstat` exactly as std does, skipping entries that
        // vanished in between.
        let file_type = match item.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(DirError {
                    op: "lstat",
                    path: item.path(),
                    source: e,
                });
            }
        };
        entries.push(Entry {
            name: item.file_name(),
            file_type,
        });
    }
    entries.sort_unstable_by(|a, b| name_bytes(&a.name).cmp(&name_bytes(&b.name)));
    Ok(entries)
}

/// Translates a failed `opendir` into what Go reports. Go opens the path
/// without `O_DIRECTORY`, so a regular file opens and then fails at
/// `readdirent`; std's `opendir` fails at once with `ENOTDIR`. A `stat`
/// (only on this error path) tells the two apart.
fn open_error(dir: &Path, e: io::Error) -> DirError {
    let mut op = "open";
    let mut source = e;
    if source.kind() == io::ErrorKind::NotADirectory
        && let Ok(metadata) = fs::metadata(dir)
    {
        match FileKind::of(metadata.file_type()) {
            FileKind::Directory => {}
            // Opening a socket fails in Go with ENXIO (6 on every unix).
            #[cfg(unix)]
            FileKind::Socket => source = io::Error::from_raw_os_error(6),
            _ => op = "readdirent",
        }
    }
    DirError {
        op,
        path: dir.to_path_buf(),
        source,
    }
}

/// The first name, in sorted order, in directory `sub` whose stem equals
/// `dir_name`. Only names are read (no types), as Docker only uses the
/// matched entry's name.
fn first_match(sub: &Path, dir_name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut best: Option<Vec<u8>> = None;
    for item in fs::read_dir(sub)? {
        let file_name = item?.file_name();
        let bytes = name_bytes(&file_name);
        if stem(&bytes) == dir_name && best.as_deref().is_none_or(|b| *bytes < *b) {
            best = Some(bytes.into_owned());
        }
    }
    Ok(best)
}
