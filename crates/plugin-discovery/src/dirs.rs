//! Where Docker looks for plugins (spec §1.1; checklist 1–3), and the user
//! namespace test that decides whether an unreadable spec directory is an
//! error (spec §1.2).
//!
//! The environment is read through [`specs_paths_from`], a pure function of
//! an environment lookup and a passwd lookup, so every rule is unit-tested
//! without touching the process environment.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use plugin_proto::DEFAULT_SPEC_DIRS;

/// The spec directories for this process's environment, read now: Docker's
/// `SpecsPaths()`.
///
/// - Unix: `/etc/docker/plugins`, `/usr/lib/docker/plugins`.
/// - Unix with `ROOTLESSKIT_STATE_DIR` set (rootless): the config directory
///   `$XDG_CONFIG_HOME/docker/plugins` (else `$HOME/.config/docker/plugins`,
///   else the passwd home's, else `/etc/docker/plugins`), then
///   `$HOME/.local/lib/docker/plugins` (passwd home as fallback, else
///   `/usr/lib/docker/plugins`). Docker since v25 returns
///   `/etc/docker/plugins` as the config directory whenever a home exists
///   (an inverted condition, moby#47436); this crate implements the intended
///   rule, a documented divergence.
/// - Windows: `%programdata%\docker\plugins` (relative `docker\plugins`
///   when `programdata` is unset).
pub fn specs_paths() -> Vec<PathBuf> {
    specs_paths_from(|key| std::env::var_os(key), passwd_home)
}

/// [`specs_paths`] as a pure function: `env` looks a variable up (empty
/// values count as unset, as with Go's `os.Getenv`), `passwd_home` returns
/// the current user's home directory from the passwd database. It is
/// called at most once, and only when rootless and `HOME` is empty, like
/// Go's `user.Current()` fallback.
pub fn specs_paths_from(
    env: impl Fn(&str) -> Option<OsString>,
    passwd_home: impl FnOnce() -> Option<PathBuf>,
) -> Vec<PathBuf> {
    #[cfg(windows)]
    {
        let _ = passwd_home;
        vec![windows_spec_dir(env("programdata"))]
    }
    #[cfg(not(windows))]
    {
        unix_specs_paths(env, passwd_home)
    }
}

fn non_empty(value: Option<OsString>) -> Option<OsString> {
    value.filter(|v| !v.is_empty())
}

#[cfg_attr(windows, allow(dead_code))]
fn unix_specs_paths(
    env: impl Fn(&str) -> Option<OsString>,
    passwd_home: impl FnOnce() -> Option<PathBuf>,
) -> Vec<PathBuf> {
    if non_empty(env("ROOTLESSKIT_STATE_DIR")).is_none() {
        return DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect();
    }
    // homedir.Get(): $HOME, else the passwd entry's home.
    let home: Option<PathBuf> = match non_empty(env("HOME")) {
        Some(home) => Some(PathBuf::from(home)),
        None => passwd_home().filter(|h| !h.as_os_str().is_empty()),
    };
    let docker_plugins = OsStr::new("docker/plugins");
    // homedir.GetConfigHome(), with the condition Docker meant (v23–v24):
    // a config home gives `<config home>/docker/plugins`.
    let config_home = match non_empty(env("XDG_CONFIG_HOME")) {
        Some(xdg) => Some(PathBuf::from(xdg)),
        None => home
            .as_deref()
            .map(|h| crate::gopath::join(h, &[OsStr::new(".config")])),
    };
    let config = match config_home {
        Some(c) => crate::gopath::join(&c, &[docker_plugins]),
        None => PathBuf::from(DEFAULT_SPEC_DIRS[0]),
    };
    // homedir.GetLibHome(): `<home>/.local/lib`.
    let lib = match &home {
        Some(h) => crate::gopath::join(h, &[OsStr::new(".local/lib"), docker_plugins]),
        None => PathBuf::from(DEFAULT_SPEC_DIRS[1]),
    };
    vec![config, lib]
}

/// Go's `filepath.Join(os.Getenv("programdata"), "docker", "plugins")` on
/// Windows, spelled with backslashes on every platform so the rule is
/// testable anywhere.
#[cfg_attr(not(windows), allow(dead_code))]
fn windows_spec_dir(programdata: Option<OsString>) -> PathBuf {
    match non_empty(programdata) {
        None => PathBuf::from(r"docker\plugins"),
        Some(base) => {
            let base = base.to_string_lossy();
            let base = base.trim_end_matches(['\\', '/']);
            PathBuf::from(format!(r"{base}\docker\plugins"))
        }
    }
}

/// The current user's home directory from `/etc/passwd` (Go's pure
/// `user.Current()`), with the real uid taken from `/proc/self/status`:
/// this crate uses no libc.
pub(crate) fn passwd_home() -> Option<PathBuf> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = uid_from_status(&status)?;
    let passwd = std::fs::read(Path::new("/etc/passwd")).ok()?;
    home_from_passwd(&passwd, uid)
}

/// The real uid from a `/proc/<pid>/status` text (`Uid:` real, effective,
/// saved, fs); Go's `user.Current()` looks up `getuid()`, the real one.
pub(crate) fn uid_from_status(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// The home field of the passwd line for `uid`, with Go's `os/user` rules:
/// leading blanks trimmed, blank and `#` lines skipped, at least six
/// colon-separated fields.
pub(crate) fn home_from_passwd(passwd: &[u8], uid: u32) -> Option<PathBuf> {
    let uid = uid.to_string();
    passwd.split(|b| *b == b'\n').find_map(|line| {
        let line = line.trim_ascii_start();
        if line.is_empty() || line[0] == b'#' {
            return None;
        }
        let fields: Vec<&[u8]> = line.split(|b| *b == b':').collect();
        if fields.len() < 6 || fields[2] != uid.as_bytes() {
            return None;
        }
        let home = fields[5];
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            Some(PathBuf::from(OsStr::from_bytes(home)))
        }
        #[cfg(not(unix))]
        {
            Some(PathBuf::from(String::from_utf8_lossy(home).into_owned()))
        }
    })
}

/// Go's `userns.RunningInUserNS()`: reads the first line of
/// `/proc/self/uid_map`; a missing or empty file means "not in a user
/// namespace".
pub(crate) fn running_in_user_ns() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(text) => match text.lines().next() {
            Some(line) => uid_map_in_user_ns(line),
            None => false,
        },
        Err(_) => false,
    }
}

/// Go's `uidMapInUserNS`: the initial namespace maps `0 0 4294967295`;
/// any other mapping is a user namespace; an unparsable line is not.
pub(crate) fn uid_map_in_user_ns(line: &str) -> bool {
    if line.is_empty() {
        return true;
    }
    let mut fields = line.split_whitespace().map(str::parse::<i64>);
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => !(a == 0 && b == 0 && c == 4_294_967_295),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn paths(vars: &[(&str, &str)], passwd: Option<&str>) -> Vec<PathBuf> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        let env = |k: &str| vars.get(k).cloned();
        let passwd_home = || passwd.map(PathBuf::from);
        // The public pure function on unix; its unix half elsewhere.
        #[cfg(not(windows))]
        return specs_paths_from(env, passwd_home);
        #[cfg(windows)]
        return unix_specs_paths(env, passwd_home);
    }

    fn p(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn default_spec_dirs_are_etc_then_usr_lib() {
        // checklist 1
        assert_eq!(
            paths(&[("HOME", "/home/u")], None),
            p(&["/etc/docker/plugins", "/usr/lib/docker/plugins"])
        );
        // An empty ROOTLESSKIT_STATE_DIR is not rootless (Go's Getenv != "").
        assert_eq!(
            paths(&[("ROOTLESSKIT_STATE_DIR", ""), ("HOME", "/home/u")], None),
            p(&["/etc/docker/plugins", "/usr/lib/docker/plugins"])
        );
        assert_eq!(crate::DEFAULT_SOCKET_DIR, "/run/docker/plugins");
    }

    #[test]
    fn rootless_uses_xdg_config_home_not_dockers_inverted_condition() {
        // checklist 2. Docker (v25+, moby#47436) returns "/etc/docker/plugins"
        // here because of an inverted `err != nil`; we implement the intended
        // value (divergence D1), which is what Docker v23–v24 returned.
        assert_eq!(
            paths(
                &[
                    ("ROOTLESSKIT_STATE_DIR", "/run/user/1000/dockerd-rootless"),
                    ("XDG_CONFIG_HOME", "/home/u/.cfg"),
                    ("HOME", "/home/u"),
                ],
                None
            ),
            p(&[
                "/home/u/.cfg/docker/plugins",
                "/home/u/.local/lib/docker/plugins"
            ])
        );
    }

    #[test]
    fn rootless_without_xdg_uses_home_dot_config() {
        // checklist 2 (intended value, divergence D1)
        assert_eq!(
            paths(
                &[
                    ("ROOTLESSKIT_STATE_DIR", "x"),
                    ("XDG_CONFIG_HOME", ""),
                    ("HOME", "/home/u/")
                ],
                Some("/ignored")
            ),
            p(&[
                "/home/u/.config/docker/plugins",
                "/home/u/.local/lib/docker/plugins"
            ])
        );
    }

    #[test]
    fn rootless_falls_back_to_the_passwd_home() {
        // checklist 2: homedir.Get() asks the passwd database when HOME is empty.
        assert_eq!(
            paths(
                &[("ROOTLESSKIT_STATE_DIR", "x"), ("HOME", "")],
                Some("/var/lib/u")
            ),
            p(&[
                "/var/lib/u/.config/docker/plugins",
                "/var/lib/u/.local/lib/docker/plugins"
            ])
        );
        // XDG_CONFIG_HOME alone still sets the config directory.
        assert_eq!(
            paths(
                &[("ROOTLESSKIT_STATE_DIR", "x"), ("XDG_CONFIG_HOME", "/c")],
                None
            ),
            p(&["/c/docker/plugins", "/usr/lib/docker/plugins"])
        );
    }

    #[test]
    fn rootless_without_any_home_uses_the_system_dirs() {
        // checklist 2: no home at all. Docker's buggy code returns the
        // relative "docker/plugins" here; the intended rule falls back to
        // /etc/docker/plugins (divergence D1).
        assert_eq!(
            paths(&[("ROOTLESSKIT_STATE_DIR", "x")], None),
            p(&["/etc/docker/plugins", "/usr/lib/docker/plugins"])
        );
        assert_eq!(
            paths(&[("ROOTLESSKIT_STATE_DIR", "x")], Some("")),
            p(&["/etc/docker/plugins", "/usr/lib/docker/plugins"])
        );
    }

    #[test]
    fn rootless_paths_are_cleaned_like_filepath_join() {
        assert_eq!(
            paths(
                &[
                    ("ROOTLESSKIT_STATE_DIR", "x"),
                    ("XDG_CONFIG_HOME", "/c//d/"),
                    ("HOME", "/h/./u")
                ],
                None
            ),
            p(&["/c/d/docker/plugins", "/h/u/.local/lib/docker/plugins"])
        );
    }

    #[test]
    fn passwd_is_asked_only_when_needed() {
        let called = std::cell::Cell::new(false);
        let vars = |k: &str| (k == "HOME").then(|| OsString::from("/h"));
        unix_specs_paths(vars, || {
            called.set(true);
            None
        });
        assert!(!called.get(), "not rootless: no passwd lookup");
        let vars =
            |k: &str| (k == "HOME" || k == "ROOTLESSKIT_STATE_DIR").then(|| OsString::from("/h"));
        unix_specs_paths(vars, || {
            called.set(true);
            None
        });
        assert!(!called.get(), "HOME set: no passwd lookup");
    }

    #[test]
    fn windows_spec_dir_is_under_programdata() {
        // checklist 3
        assert_eq!(
            windows_spec_dir(Some(OsString::from(r"C:\ProgramData"))),
            PathBuf::from(r"C:\ProgramData\docker\plugins")
        );
        assert_eq!(windows_spec_dir(None), PathBuf::from(r"docker\plugins"));
        assert_eq!(
            windows_spec_dir(Some(OsString::new())),
            PathBuf::from(r"docker\plugins")
        );
    }

    #[test]
    fn passwd_lookup_follows_go_rules() {
        let passwd = b"# comment\n\n  root:x:0:0:root:/root:/bin/bash\nu:x:1000:1000::/home/u:/bin/sh\nshort:x:7\n";
        assert_eq!(home_from_passwd(passwd, 0), Some(PathBuf::from("/root")));
        assert_eq!(
            home_from_passwd(passwd, 1000),
            Some(PathBuf::from("/home/u"))
        );
        assert_eq!(home_from_passwd(passwd, 7), None);
        assert_eq!(home_from_passwd(passwd, 42), None);
    }

    #[test]
    fn real_uid_comes_from_proc_status() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n";
        assert_eq!(uid_from_status(status), Some(1000));
        assert_eq!(uid_from_status("Name: x\n"), None);
    }

    #[test]
    fn uid_map_decides_user_namespaces_like_go() {
        assert!(!uid_map_in_user_ns("         0          0 4294967295"));
        assert!(uid_map_in_user_ns("         0       1000          1"));
        assert!(uid_map_in_user_ns(""));
        assert!(!uid_map_in_user_ns("garbage"));
    }
}
