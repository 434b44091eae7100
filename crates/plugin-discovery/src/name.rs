//! Plugin name validation (divergence D2).
//!
//! Docker joins any name into a path, so `../x` or `/x` reach files outside
//! the plugin directories and `""` resolves a file named `.spec`
//! (spec §12, checklist 14). Names are checked here before any path is
//! built; [`scan`](crate::LocalRegistry::scan) still lists what Docker
//! lists, including names this check refuses.

use crate::error::{DiscoveryError, Repr};

/// Checks that `name` is a single path element that stays inside the
/// directory it is joined to.
pub(crate) fn validate(name: &str) -> Result<(), DiscoveryError> {
    let reason = if name.is_empty() {
        Some("a plugin name must not be empty")
    } else if name == "." || name == ".." {
        Some("a plugin name must not be \".\" or \"..\"")
    } else if name.contains('/') {
        Some("a plugin name must not contain '/'")
    } else if name.contains('\\') {
        Some("a plugin name must not contain '\\'")
    } else if name.contains('\0') {
        Some("a plugin name must not contain a NUL byte")
    } else if is_absolute_or_prefixed(name) {
        Some("a plugin name must not be an absolute path")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Repr::InvalidName {
            name: name.to_owned(),
            reason,
        }
        .into()),
        None => Ok(()),
    }
}

/// On Windows a name like `C:x` carries a drive prefix and would replace
/// the base directory when joined; unix has no such form once `/` is gone.
fn is_absolute_or_prefixed(name: &str) -> bool {
    let path = std::path::Path::new(name);
    path.is_absolute()
        || path.has_root()
        || matches!(
            path.components().next(),
            Some(std::path::Component::Prefix(_))
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_are_rejected_before_any_path_is_built() {
        // checklist 14 (divergence D2: Docker joins these as paths).
        for name in [
            "", ".", "..", "../x", "/x", "a/b", "a\\b", "..\\x", "a\0b", "/", "x/",
        ] {
            let e = validate(name).unwrap_err();
            assert!(e.is_invalid_name(), "{name:?}");
            assert!(!e.is_not_found(), "{name:?}");
            assert!(
                e.to_string().starts_with(&format!(
                    "invalid plugin name {}: ",
                    plugin_proto::go_quote(name)
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for name in [
            "a",
            "my-plugin",
            "a.b",
            ".hidden",
            "..x",
            "x..",
            "C:x",
            "weave",
            "\u{e9}t\u{e9}",
        ] {
            // `C:x` is a drive-relative path only on Windows.
            if cfg!(windows) && name == "C:x" {
                continue;
            }
            assert!(validate(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn messages_say_why() {
        assert_eq!(
            validate("../x").unwrap_err().to_string(),
            "invalid plugin name \"../x\": a plugin name must not contain '/'"
        );
        assert_eq!(
            validate("").unwrap_err().to_string(),
            "invalid plugin name \"\": a plugin name must not be empty"
        );
    }
}
