//! Go's path and error-text rules that decide what Docker's discovery
//! prints: `filepath.Join` (which cleans), `filepath.Ext`, and the
//! lowercase errno texts of Go's `syscall` package.
//!
//! Docker builds every candidate path with `filepath.Join`, so a socket
//! directory given as `/run//docker/plugins/` still yields the address
//! `unix:///run/docker/plugins/x.sock`; we reproduce that text exactly.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

/// Go's `filepath.Join(base, parts...)`: the non-empty elements joined with
/// `/` and cleaned. An all-empty join is the empty path.
pub(crate) fn join(base: &Path, parts: &[&OsStr]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let mut raw: Vec<u8> = Vec::new();
        for element in std::iter::once(base.as_os_str()).chain(parts.iter().copied()) {
            let bytes = element.as_bytes();
            if bytes.is_empty() {
                continue;
            }
            if !raw.is_empty() {
                raw.push(b'/');
            }
            raw.extend_from_slice(bytes);
        }
        if raw.is_empty() {
            return PathBuf::new();
        }
        PathBuf::from(OsString::from_vec(clean(&raw)))
    }
    #[cfg(not(unix))]
    {
        // Windows paths have drive prefixes and two separators; `Path::join`
        // is close enough there, and names never hold separators anyway
        // (they are validated before any path is built).
        let mut path = base.to_path_buf();
        for part in parts {
            path.push(part);
        }
        path
    }
}

/// Go's `path.Clean` on bytes: collapse `//`, drop `.`, resolve `..`
/// lexically, no trailing slash; the empty path becomes `.`.
#[cfg(any(unix, test))]
pub(crate) fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !rooted {
                    // `..` above a relative start is kept; above `/` it vanishes.
                    parts.push(part);
                }
            }
            _ => parts.push(part),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if rooted {
        out.push(b'/');
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Go's `filepath.Ext` for a single file name: the suffix from the last
/// `.` (dot included), or empty when there is no dot.
pub(crate) fn ext(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b'.') {
        Some(i) => &name[i..],
        None => &[],
    }
}

/// `strings.TrimSuffix(name, filepath.Ext(name))`: the name without its
/// last extension (`a.b.sock` → `a.b`, `.sock` → ``, `e` → `e`).
pub(crate) fn stem(name: &[u8]) -> &[u8] {
    &name[..name.len() - ext(name).len()]
}

/// A file name as bytes (lossy off unix, where names are UTF-16).
pub(crate) fn name_bytes(name: &OsStr) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(name.as_bytes())
    }
    #[cfg(not(unix))]
    {
        match name.to_string_lossy() {
            std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
        }
    }
}

/// The text Go prints for an OS error (`syscall.Errno.Error()`): glibc's
/// `strerror` with a lowercase first letter. The common cases are spelled
/// out so the text does not depend on the C library (musl words some of
/// them differently).
pub(crate) fn errno_text(err: &io::Error) -> String {
    use io::ErrorKind as K;
    let known = match err.kind() {
        K::NotFound => Some("no such file or directory"),
        // EPERM is 1 on every unix; everything else here is EACCES.
        K::PermissionDenied if err.raw_os_error() == Some(1) => Some("operation not permitted"),
        K::PermissionDenied => Some("permission denied"),
        K::NotADirectory => Some("not a directory"),
        K::IsADirectory => Some("is a directory"),
        K::InvalidFilename => Some("file name too long"),
        K::StaleNetworkFileHandle => Some("stale NFS file handle"),
        K::Interrupted => Some("interrupted system call"),
        K::OutOfMemory => Some("cannot allocate memory"),
        _ => None,
    };
    if let Some(text) = known {
        return text.to_owned();
    }
    let Some(code) = err.raw_os_error() else {
        return err.to_string();
    };
    // Rust prints "<strerror> (os error N)".
    let full = io::Error::from_raw_os_error(code).to_string();
    let suffix = format!(" (os error {code})");
    let text = full.strip_suffix(&suffix).unwrap_or(&full);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("//run//docker/./plugins/", "/run/docker/plugins"),
            ("/a/b/../c", "/a/c"),
            ("/../a", "/a"),
            ("../a/..", ".."),
            ("a/../..", ".."),
            ("a/./b/", "a/b"),
            (".", "."),
        ] {
            assert_eq!(
                String::from_utf8(clean(input.as_bytes())).unwrap(),
                want,
                "{input:?}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn join_cleans_like_filepath_join() {
        let j = |base: &str, parts: &[&str]| {
            let parts: Vec<&OsStr> = parts.iter().map(OsStr::new).collect();
            join(Path::new(base), &parts)
        };
        assert_eq!(
            j("/run//docker/plugins/", &["a.sock"]),
            Path::new("/run/docker/plugins/a.sock")
        );
        assert_eq!(j("/s", &["d", "d.sock"]), Path::new("/s/d/d.sock"));
        assert_eq!(j("", &["a.sock"]), Path::new("a.sock"));
        assert_eq!(j("", &[""]), Path::new(""));
        assert_eq!(
            j("/home/u/.cfg/", &["docker/plugins"]),
            Path::new("/home/u/.cfg/docker/plugins")
        );
    }

    #[test]
    fn ext_and_stem_match_go() {
        // checklist 5: any last extension is stripped.
        for (name, e, s) in [
            ("d.bar", ".bar", "d"),
            ("e", "", "e"),
            ("a.b.sock", ".sock", "a.b"),
            (".sock", ".sock", ""),
            ("a.", ".", "a"),
            ("..", ".", "."),
        ] {
            assert_eq!(ext(name.as_bytes()), e.as_bytes(), "{name}");
            assert_eq!(stem(name.as_bytes()), s.as_bytes(), "{name}");
        }
    }

    #[test]
    fn errno_texts_are_gos() {
        let t = |code| errno_text(&io::Error::from_raw_os_error(code));
        #[cfg(target_os = "linux")]
        {
            assert_eq!(t(13), "permission denied");
            assert_eq!(t(1), "operation not permitted");
            assert_eq!(t(20), "not a directory");
            assert_eq!(t(21), "is a directory");
            assert_eq!(t(2), "no such file or directory");
            assert_eq!(t(6), "no such device or address");
            assert_eq!(t(5), "input/output error");
            assert_eq!(t(24), "too many open files");
        }
        let _ = t;
        assert_eq!(errno_text(&io::Error::other("custom text")), "custom text");
    }
}
