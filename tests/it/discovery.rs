//! `plugin-discovery` against real directories, sockets, symlinks and FIFOs
//! (behaviour spec §1, §8 and §12; checklist 1–14; divergences D2–D4).
//!
//! Every tree is a temporary directory (`plugin_tests::tree`), never the
//! host's plugin directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use plugin_discovery::{
    DEFAULT_SOCKET_DIR, DEFAULT_SPEC_DIRS, DirView, DiscoveryError, DiscoveryErrorKind, FileKind,
    Finding, LocalRegistry, MAX_SPEC_SIZE, PluginSpec, SourceKind,
};
use plugin_proto::{Endpoint, TlsOptions};
use plugin_tests::tree::PluginTree;

fn scan(registry: &LocalRegistry) -> Vec<String> {
    registry.scan().unwrap_or_else(|e| panic!("scan: {e}"))
}

fn resolve(registry: &LocalRegistry, name: &str) -> PluginSpec {
    registry
        .plugin(name)
        .unwrap_or_else(|e| panic!("plugin({name:?}): {e}"))
}

fn resolve_err(registry: &LocalRegistry, name: &str) -> DiscoveryError {
    match registry.plugin(name) {
        Ok(spec) => panic!("plugin({name:?}) resolved to {spec:?}"),
        Err(e) => e,
    }
}

fn unix(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// Permission errors cannot be provoked as root (CI runs as root): root
/// reads a `chmod 000` directory anyway.
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Runs `f` on a thread and fails if it does not finish in 5 s (a FIFO
/// opened for reading would block forever).
fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("discovery blocked for 5 s")
}

// ---------------------------------------------------------------- directories

#[test]
fn default_directories_checklist_1() {
    let registry = LocalRegistry::new();
    assert_eq!(registry.socket_dir(), Path::new("/run/docker/plugins"));
    assert_eq!(DEFAULT_SOCKET_DIR, "/run/docker/plugins");
    assert_eq!(registry.spec_dirs(), plugin_discovery::specs_paths());
    if std::env::var_os("ROOTLESSKIT_STATE_DIR").is_none_or(|v| v.is_empty()) {
        let want: Vec<PathBuf> = DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect();
        assert_eq!(registry.spec_dirs(), want);
        assert_eq!(
            want,
            [
                PathBuf::from("/etc/docker/plugins"),
                PathBuf::from("/usr/lib/docker/plugins")
            ]
        );
    }
}

#[test]
fn with_dirs_keeps_the_given_directories_in_order() {
    let registry = LocalRegistry::with_dirs("/s", ["/b", "/a"]);
    assert_eq!(registry.socket_dir(), Path::new("/s"));
    assert_eq!(
        registry.spec_dirs(),
        [PathBuf::from("/b"), PathBuf::from("/a")]
    );
}

// ---------------------------------------------------------------------- scan

#[test]
fn scan_missing_directories_is_empty_checklist_4() {
    let tree = PluginTree::new();
    let registry = LocalRegistry::with_dirs(tree.path("no-run"), [tree.path("no-etc")]);
    assert_eq!(registry.scan().unwrap(), Vec::<String>::new());
    // A dangling symlink as a directory is "not exist" too.
    tree.symlink("missing", "dangling");
    let registry = LocalRegistry::with_dirs(tree.path("dangling"), [tree.path("dangling")]);
    assert!(registry.scan().unwrap().is_empty());
}

#[test]
fn scan_verified_example_of_section_1_2() {
    // The exact tree and output verified against Docker's code (spec §1.2).
    let tree = PluginTree::new();
    let _a = tree.live_socket("run/a.sock");
    let _b = tree.live_socket("run/b.sock");
    let _c = tree.live_socket("run/c/c.sock");
    let _d = tree.live_socket("run/d.bar");
    let _e = tree.live_socket("run/e");
    let _dup = tree.live_socket("run/dup.sock");
    tree.write("run/f.sock", "regular file");
    tree.symlink("a.sock", "run/g.sock");
    tree.symlink("c", "run/h");
    let _v2 = tree.live_socket("run/0123abcd/vplug.sock");

    tree.write_json(0, "a", r#"{"Addr":"tcp://127.0.0.1:1"}"#);
    tree.write_spec(0, "a", "tcp://127.0.0.1:2");
    tree.write_spec(0, "dup", "tcp://127.0.0.1:3");
    tree.write_spec(0, "k/k", "tcp://127.0.0.1:4");
    tree.write("etc/m/m.abc", "x");
    tree.write_json(0, "m/m", r#"{"Addr":"tcp://127.0.0.1:5"}"#);
    tree.write("etc/readme.txt", "not a plugin");
    tree.mkdir("etc/x.json");
    tree.write_spec(0, "z", "tcp://127.0.0.1:6");

    tree.write_json(1, "bad", "{");
    tree.write_json(
        1,
        "ca",
        r#"{"Addr":"https://h:1","TLSConfig":{"CAFile":"/ca.pem"}}"#,
    );
    tree.write_spec(1, "empty", "");
    tree.write_spec(1, "hostport", "localhost:8080");
    tree.write_spec(1, "ipport", "127.0.0.1:8080");
    tree.write_spec(1, "noscheme", "/run/x.sock");
    tree.write_json(1, "only", r#"{"Addr":"tcp://127.0.0.1:7"}"#);
    tree.write_spec(1, "ws", " \t tcp://127.0.0.1:8 \r\n");
    tree.write_spec(1, "z", "tcp://127.0.0.1:9");

    let registry = tree.registry();
    assert_eq!(
        scan(&registry),
        [
            "a", "b", "c", "d", "dup", "e", "a", "a", "dup", "k", "x", "z", "bad", "ca", "empty",
            "hostport", "ipport", "noscheme", "only", "ws", "z"
        ]
    );

    // What those names resolve to.
    assert_eq!(
        resolve(&registry, "a").address().as_str(),
        unix(&tree.path("run/a.sock"))
    );
    assert_eq!(
        resolve(&registry, "c").address().as_str(),
        unix(&tree.path("run/c/c.sock"))
    );
    // `d` is listed (socket d.bar) but not resolvable (spec §1.3).
    assert!(resolve_err(&registry, "d").is_not_found());
    assert!(resolve_err(&registry, "e").is_not_found());
    // `g` is not listed (symlink) but resolves (spec §1.3).
    assert_eq!(
        resolve(&registry, "g").address().as_str(),
        unix(&tree.path("run/g.sock"))
    );
    // `h` is a symlink to the directory `c`: no h/h.sock.
    assert!(resolve_err(&registry, "h").is_not_found());
    // `m` is not listed but resolves (spec §1.2).
    assert_eq!(
        resolve(&registry, "m").address().as_str(),
        "tcp://127.0.0.1:5"
    );
    assert_eq!(
        resolve(&registry, "z").address().as_str(),
        "tcp://127.0.0.1:6"
    );
    assert_eq!(
        resolve(&registry, "ws").address().as_str(),
        "tcp://127.0.0.1:8"
    );
    // `x` is the directory x.json: refused without reading (divergence D3;
    // Docker says `read …/x.json: is a directory`).
    let e = resolve_err(&registry, "x");
    assert_eq!(e.kind(), DiscoveryErrorKind::NotRegularFile);
    assert_eq!(e.file_kind(), Some(FileKind::Directory));
    assert_eq!(e.path(), Some(tree.path("etc/x.json").as_path()));
}

#[test]
fn scan_socket_directory_rules_checklist_5() {
    let tree = PluginTree::new();
    let _x = tree.live_socket("run/x.sock");
    let _y = tree.live_socket("run/y/y.sock");
    let _ab = tree.live_socket("run/a.b.sock");
    let _dot = tree.live_socket("run/.sock");
    let _bar = tree.live_socket("run/d.bar");
    let _e = tree.live_socket("run/e");
    let _target = tree.live_socket("target.sock");
    tree.write("run/f.sock", "");
    tree.symlink(tree.path("target.sock"), "run/link.sock");
    tree.mkdir("run/empty");
    tree.write("run/notsock/notsock.sock", "");
    tree.mkdir("run/dirsock/dirsock.sock");
    let _other = tree.live_socket("run/other/foo.sock");
    // spec §12: a `d/d.sock` symlink to a socket is found with stat.
    tree.symlink(tree.path("target.sock"), "run/sl/sl.sock");
    // A stale socket is still a socket: discovery never connects.
    tree.stale_socket("run/stale.sock");

    assert_eq!(
        scan(&LocalRegistry::with_dirs(
            tree.socket_dir(),
            Vec::<PathBuf>::new()
        )),
        ["", "a.b", "d", "e", "sl", "stale", "x", "y"]
    );
}

#[test]
fn scan_spec_directory_rules_checklist_6() {
    let tree = PluginTree::new();
    tree.write_spec(0, "x", "tcp://h:1");
    tree.write_json(0, "j", r#"{"Addr":"tcp://h:1"}"#);
    tree.write_spec(0, "k/k", "tcp://h:1");
    tree.write_json(0, "o/o", r#"{"Addr":"tcp://h:1"}"#);
    // First sorted match decides: m.abc before m.json, so nothing.
    tree.write("etc/m/m.abc", "");
    tree.write_json(0, "m/m", r#"{"Addr":"tcp://h:1"}"#);
    // spec §12: `n/n` (no extension) sorts first and hides `n/n.spec`.
    tree.write("etc/n/n", "");
    tree.write_spec(0, "n/n", "tcp://h:1");
    // spec §12: the match may itself be a directory.
    tree.mkdir("etc/q/q.spec");
    // Unmatched directory named y.json lists as y.
    tree.mkdir("etc/y.json");
    tree.write("etc/y.json/other.spec", "");
    // Unmatched directory without a spec extension: nothing.
    tree.write("etc/w/other.spec", "");
    // Other extensions are ignored.
    tree.write("etc/readme.txt", "");
    tree.write("etc/noext", "");
    tree.write("etc/v.spec.bak", "");
    // spec §12: no type check on spec entries.
    let _s = tree.live_socket("etc/s.spec");
    tree.symlink("nowhere", "etc/dangling.spec");
    tree.mkdir("somedir");
    tree.symlink(tree.path("somedir"), "etc/l.json");
    tree.write("etc/.spec", "tcp://h:1");

    let registry = LocalRegistry::with_dirs(tree.path("no-run"), [tree.spec_dir(0)]);
    assert_eq!(
        scan(&registry),
        ["", "dangling", "j", "k", "l", "o", "q", "s", "x", "y"]
    );
}

#[test]
fn scan_order_and_duplicates_checklist_7() {
    let tree = PluginTree::new();
    let _a = tree.live_socket("run/a.sock");
    let _z = tree.live_socket("run/Z.sock");
    tree.write_json(0, "a", r#"{"Addr":"tcp://h:1"}"#);
    tree.write_spec(0, "a", "tcp://h:1");
    tree.write_spec(0, "B", "tcp://h:1");
    tree.write_spec(1, "a", "tcp://h:1");
    tree.write_spec(1, "0", "tcp://h:1");
    // Sorted by bytes: uppercase before lowercase, digits first.
    assert_eq!(scan(&tree.registry()), ["Z", "a", "B", "a", "a", "0", "a"]);
    // Spec directories in the order given.
    let reversed =
        LocalRegistry::with_dirs(tree.socket_dir(), [tree.spec_dir(1), tree.spec_dir(0)]);
    assert_eq!(scan(&reversed), ["Z", "a", "0", "a", "B", "a", "a"]);
}

#[test]
fn scan_socket_dir_that_is_a_file_gives_dockers_text_checklist_8() {
    let tree = PluginTree::new();
    let file = tree.write("file", "");
    let registry = LocalRegistry::with_dirs(&file, [tree.spec_dir(0)]);
    let e = registry.scan().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "error reading dir entries: readdirent {}: not a directory",
            file.display()
        )
    );
    assert_eq!(e.kind(), DiscoveryErrorKind::ReadDir);
    assert_eq!(e.path(), Some(file.as_path()));
    assert!(e.io_error().is_some());
    assert!(std::error::Error::source(&e).is_some());
    // Even inside a user namespace: only spec directories are tolerated.
    let e = registry.with_user_namespace(true).scan().unwrap_err();
    assert!(e.to_string().starts_with("error reading dir entries: "));
}

#[test]
fn scan_spec_dir_that_is_a_file_is_an_error_checklist_8() {
    let tree = PluginTree::new();
    let file = tree.write("file", "");
    let _a = tree.live_socket("run/a.sock");
    let registry = LocalRegistry::with_dirs(tree.socket_dir(), [tree.spec_dir(0), file.clone()]);
    assert_eq!(
        registry.scan().unwrap_err().to_string(),
        format!(
            "error reading dir entries: readdirent {}: not a directory",
            file.display()
        )
    );
    // A path under a file fails at open, as in Go.
    let under = file.join("sub");
    let registry = LocalRegistry::with_dirs(tree.path("no-run"), [under.clone()]);
    assert_eq!(
        registry.scan().unwrap_err().to_string(),
        format!(
            "error reading dir entries: open {}: not a directory",
            under.display()
        )
    );
}

#[test]
fn scan_unreadable_socket_dir_is_an_error_even_in_a_user_namespace_checklist_8() {
    if running_as_root() {
        // Root reads a mode-000 directory, so there is no error to observe.
        return;
    }
    let tree = PluginTree::new();
    chmod(&tree.socket_dir(), 0o000);
    let registry = tree.registry().with_user_namespace(true);
    let result = registry.scan();
    chmod(&tree.socket_dir(), 0o755);
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "error reading dir entries: open {}: permission denied",
            tree.socket_dir().display()
        )
    );
}

#[test]
fn scan_unreadable_spec_dir_is_skipped_only_in_a_user_namespace_checklist_8() {
    if running_as_root() {
        // Root reads a mode-000 directory, so there is no error to observe.
        return;
    }
    let tree = PluginTree::new();
    tree.write_spec(0, "hidden", "tcp://h:1");
    tree.write_spec(1, "seen", "tcp://h:1");
    chmod(&tree.spec_dir(0), 0o000);
    let outside = tree.registry().with_user_namespace(false).scan();
    let inside = tree.registry().with_user_namespace(true).scan();
    chmod(&tree.spec_dir(0), 0o755);
    assert_eq!(
        outside.unwrap_err().to_string(),
        format!(
            "error reading dir entries: open {}: permission denied",
            tree.spec_dir(0).display()
        )
    );
    assert_eq!(inside.unwrap(), ["seen"]);
}

#[test]
fn scan_skips_unreadable_spec_subdirectories() {
    if running_as_root() {
        // Root reads a mode-000 directory, so there is no error to observe.
        return;
    }
    // Docker `continue`s when a subdirectory cannot be read, even one named
    // y.json/ that would otherwise list as y.
    let tree = PluginTree::new();
    tree.write_spec(0, "k/k", "tcp://h:1");
    let y = tree.mkdir("etc/y.json");
    chmod(&y, 0o000);
    let names = tree.registry().scan();
    chmod(&y, 0o755);
    assert_eq!(names.unwrap(), ["k"]);
}

#[test]
fn scan_socket_dir_that_is_a_fifo_does_not_block() {
    // Docker's os.Open of a FIFO blocks forever; std opens directories with
    // O_DIRECTORY, so this is the same error as for a regular file (D3).
    let tree = PluginTree::new();
    let fifo = tree.fifo("fifo");
    let registry = LocalRegistry::with_dirs(&fifo, [fifo.clone()]);
    let e = within_5s(move || registry.scan().unwrap_err());
    assert_eq!(
        e.to_string(),
        format!(
            "error reading dir entries: readdirent {}: not a directory",
            fifo.display()
        )
    );
}

#[test]
fn scan_lists_non_utf8_names_lossily() {
    // Docker's names are raw bytes; ours are Strings, so an invalid byte
    // becomes U+FFFD (such a name cannot be resolved by anyone).
    use std::os::unix::ffi::OsStrExt;
    let tree = PluginTree::new();
    let name = std::ffi::OsStr::from_bytes(b"a\xffb.spec");
    tree.write(tree.spec_dir(0).join(name), "tcp://h:1");
    assert_eq!(scan(&tree.registry()), ["a\u{fffd}b"]);
}

#[test]
fn scan_reads_the_file_system_every_time() {
    let tree = PluginTree::new();
    let registry = tree.registry();
    assert!(scan(&registry).is_empty());
    tree.write_spec(0, "late", "tcp://h:1");
    assert_eq!(scan(&registry), ["late"]);
}

// ------------------------------------------------------------------- plugin

#[test]
fn sockets_come_first_checklist_9() {
    let tree = PluginTree::new();
    tree.write_spec(0, "p", "tcp://h:1");
    tree.write_json(0, "p", r#"{"Addr":"tcp://h:2"}"#);
    let registry = tree.registry();
    assert_eq!(resolve(&registry, "p").address().as_str(), "tcp://h:1");

    let _sub = tree.live_socket("run/p/p.sock");
    let spec = resolve(&registry, "p");
    assert_eq!(spec.address().as_str(), unix(&tree.path("run/p/p.sock")));

    let _flat = tree.live_socket("run/p.sock");
    let spec = resolve(&registry, "p");
    assert_eq!(spec.address().as_str(), unix(&tree.path("run/p.sock")));
    assert_eq!(spec.source().kind(), SourceKind::Socket);
    assert_eq!(spec.source().path(), tree.path("run/p.sock"));
}

#[test]
fn socket_candidates_must_be_sockets_checklist_9() {
    let tree = PluginTree::new();
    // A regular file and a directory at the socket candidates are skipped.
    tree.write("run/p.sock", "");
    tree.mkdir("run/p/p.sock");
    tree.write_spec(1, "p", "tcp://h:1");
    assert_eq!(
        resolve(&tree.registry(), "p").address().as_str(),
        "tcp://h:1"
    );
}

#[test]
fn socket_symlinks_resolve_checklist_9() {
    let tree = PluginTree::new();
    let _target = tree.live_socket("elsewhere.sock");
    let link = tree.symlink(tree.path("elsewhere.sock"), "run/ln.sock");
    let registry = tree.registry();
    // Not listed (readdir type is symlink) but resolvable through stat.
    assert!(scan(&registry).is_empty());
    let spec = resolve(&registry, "ln");
    // The address is the link's path, as Docker joins it.
    assert_eq!(spec.address().as_str(), unix(&link));
    // A dangling socket symlink is skipped.
    tree.symlink("gone.sock", "run/gone.sock");
    assert!(resolve_err(&registry, "gone").is_not_found());
}

#[test]
fn socket_without_sock_suffix_is_listed_but_not_resolvable_checklist_5_9() {
    let tree = PluginTree::new();
    let _l = tree.live_socket("run/d.bar");
    let registry = tree.registry();
    assert_eq!(scan(&registry), ["d"]);
    assert!(resolve_err(&registry, "d").is_not_found());
    assert!(resolve_err(&registry, "d.bar").is_not_found());
}

#[test]
fn stale_sockets_still_resolve_discovery_never_connects() {
    let tree = PluginTree::new();
    let path = tree.stale_socket("run/dead.sock");
    assert_eq!(
        resolve(&tree.registry(), "dead").address().as_str(),
        unix(&path)
    );
}

#[test]
fn spec_candidate_order_checklist_9() {
    let tree = PluginTree::new();
    let registry = tree.registry();
    // Filled from the last candidate to the first; each new file wins.
    tree.write_json(1, "p/p", r#"{"Addr":"tcp://lib-json-sub:1"}"#);
    assert_eq!(
        resolve(&registry, "p").address().as_str(),
        "tcp://lib-json-sub:1"
    );
    tree.write_json(1, "p", r#"{"Addr":"tcp://lib-json:1"}"#);
    assert_eq!(
        resolve(&registry, "p").address().as_str(),
        "tcp://lib-json:1"
    );
    tree.write_spec(1, "p/p", "tcp://lib-spec-sub:1");
    assert_eq!(
        resolve(&registry, "p").address().as_str(),
        "tcp://lib-spec-sub:1"
    );
    tree.write_spec(1, "p", "tcp://lib-spec:1");
    assert_eq!(
        resolve(&registry, "p").address().as_str(),
        "tcp://lib-spec:1"
    );
    // The earlier spec directory beats everything in the later one.
    tree.write_json(0, "p/p", r#"{"Addr":"tcp://etc-json-sub:1"}"#);
    assert_eq!(
        resolve(&registry, "p").address().as_str(),
        "tcp://etc-json-sub:1"
    );
    tree.write_json(0, "p", r#"{"Addr":"tcp://etc-json:1"}"#);
    let spec = resolve(&registry, "p");
    assert_eq!(spec.address().as_str(), "tcp://etc-json:1");
    assert_eq!(spec.source().kind(), SourceKind::Json);
    // Within a directory, `.spec` (even in the subdirectory) beats `.json`.
    tree.write_spec(0, "p/p", "tcp://etc-spec-sub:1");
    assert_eq!(
        resolve(&registry, "p").address().as_str(),
        "tcp://etc-spec-sub:1"
    );
    tree.write_spec(0, "p", "tcp://etc-spec:1");
    let spec = resolve(&registry, "p");
    assert_eq!(spec.address().as_str(), "tcp://etc-spec:1");
    assert_eq!(spec.source().kind(), SourceKind::Spec);
    assert_eq!(spec.source().path(), tree.path("etc/p.spec"));
}

#[test]
fn no_fall_through_after_a_broken_first_candidate_checklist_9() {
    let tree = PluginTree::new();
    let bad = tree.write_spec(0, "p", "not a url");
    tree.write_json(0, "p", r#"{"Addr":"tcp://h:1"}"#);
    tree.write_spec(1, "p", "tcp://h:2");
    let e = resolve_err(&tree.registry(), "p");
    assert_eq!(
        e.to_string(),
        format!("{}: Unknown protocol", bad.display())
    );
    assert_eq!(e.kind(), DiscoveryErrorKind::Spec);
    assert_eq!(e.path(), Some(bad.as_path()));
    assert_eq!(
        e.spec_error().map(ToString::to_string).as_deref(),
        Some("Unknown protocol")
    );

    // Same with a broken .json first.
    let tree = PluginTree::new();
    let bad = tree.write_json(0, "p", r#"{"Addr":"#);
    tree.write_spec(1, "p", "tcp://h:2");
    let e = resolve_err(&tree.registry(), "p");
    assert_eq!(e.to_string(), format!("{}: unexpected EOF", bad.display()));
}

#[test]
fn dangling_symlink_candidates_are_skipped_section_12() {
    let tree = PluginTree::new();
    tree.symlink("nowhere", "etc/p.spec");
    tree.write_json(0, "p", r#"{"Addr":"tcp://h:1"}"#);
    let registry = tree.registry();
    // Listed twice (no type check) but the dangling one is skipped.
    assert_eq!(scan(&registry), ["p", "p"]);
    assert_eq!(resolve(&registry, "p").address().as_str(), "tcp://h:1");
}

#[test]
fn symlink_loop_candidates_are_skipped() {
    // `os.Stat` fails (ELOOP), so Docker tries the next candidate.
    let tree = PluginTree::new();
    tree.symlink("p.spec", "etc/p.spec");
    tree.write_json(0, "p", r#"{"Addr":"tcp://h:1"}"#);
    let registry = tree.registry();
    assert_eq!(resolve(&registry, "p").address().as_str(), "tcp://h:1");
    let x = registry.explain("p");
    assert_eq!(
        x.candidates[2].finding,
        Finding::Unreachable("too many levels of symbolic links".to_owned())
    );
    assert_eq!(x.candidates[2].path, tree.path("etc/p.spec"));
    assert_eq!(x.candidates[4].finding, Finding::Winner);
}

#[test]
fn spec_symlinks_are_followed() {
    let tree = PluginTree::new();
    let target = tree.write("real.spec", "tcp://h:1");
    let link = tree.symlink(&target, "etc/p.spec");
    let spec = resolve(&tree.registry(), "p");
    assert_eq!(spec.address().as_str(), "tcp://h:1");
    assert_eq!(spec.source().path(), link);
}

#[test]
fn not_found_text_checklist_10() {
    let tree = PluginTree::new();
    let e = resolve_err(&tree.registry(), "nope");
    assert_eq!(
        e.to_string(),
        "could not find plugin nope in v1 plugin registry: plugin not found"
    );
    assert!(e.is_not_found());
    assert!(!e.is_invalid_name());
    assert_eq!(e.kind(), DiscoveryErrorKind::NotFound);
    assert_eq!(e.name(), Some("nope"));
    assert_eq!(e.path(), None);
    // Missing directories are not found too.
    let registry = LocalRegistry::with_dirs(tree.path("x"), [tree.path("y")]);
    assert!(resolve_err(&registry, "nope").is_not_found());
}

#[test]
fn socket_hit_address_and_tls_checklist_11() {
    let tree = PluginTree::new();
    let _l = tree.live_socket("run/s.sock");
    let spec = resolve(&tree.registry(), "s");
    let path = tree.path("run/s.sock");
    assert_eq!(spec.name(), "s");
    assert_eq!(
        spec.address().as_str(),
        format!("unix://{}", path.display())
    );
    assert_eq!(spec.address().endpoint(), &Endpoint::Unix(path.clone()));
    assert_eq!(spec.tls(), Some(&TlsOptions::insecure()));
    assert!(spec.tls().is_some_and(|t| t.insecure_skip_verify));
    assert_eq!(spec.implements(), None);
}

#[test]
fn socket_addresses_are_joined_and_cleaned_like_go() {
    let tree = PluginTree::new();
    let _l = tree.live_socket("run/s.sock");
    let messy = format!("{}//run/./", tree.root().display());
    let registry = LocalRegistry::with_dirs(messy, Vec::<PathBuf>::new());
    assert_eq!(
        resolve(&registry, "s").address().as_str(),
        unix(&tree.path("run/s.sock"))
    );
}

#[test]
fn spec_files_checklist_12() {
    let tree = PluginTree::new();
    let registry = tree.registry();
    tree.write_spec(0, "trim", " \r\n\t tcp://127.0.0.1:8080 \n");
    let spec = resolve(&registry, "trim");
    assert_eq!(spec.address().as_str(), "tcp://127.0.0.1:8080");
    assert_eq!(spec.tls(), Some(&TlsOptions::insecure()));
    assert_eq!(spec.source().kind(), SourceKind::Spec);

    let empty = tree.write_spec(0, "empty", "  \n");
    assert_eq!(
        resolve_err(&registry, "empty").to_string(),
        format!("{}: Unknown protocol", empty.display())
    );
    let noscheme = tree.write_spec(0, "noscheme", "/run/x.sock");
    assert_eq!(
        resolve_err(&registry, "noscheme").to_string(),
        format!("{}: Unknown protocol", noscheme.display())
    );
    let ipport = tree.write_spec(0, "ipport", "127.0.0.1:8080");
    let text = resolve_err(&registry, "ipport").to_string();
    assert!(
        text.starts_with(&format!(
            "{}: parse \"127.0.0.1:8080\": first path segment in URL cannot contain colon",
            ipport.display()
        )),
        "{text}"
    );
    tree.write_spec(0, "https", "https://example.com");
    let spec = resolve(&registry, "https");
    assert!(spec.address().is_tls());
    assert!(spec.tls().is_some_and(|t| t.insecure_skip_verify));
}

#[test]
fn json_files_checklist_13() {
    let tree = PluginTree::new();
    let registry = tree.registry();
    tree.write_json(
        0,
        "j",
        r#"{"NAME":"other","addr":"tcp://h:1","Bogus":1} trailing garbage"#,
    );
    let spec = resolve(&registry, "j");
    assert_eq!(spec.name(), "j");
    assert_eq!(spec.address().as_str(), "tcp://h:1");
    assert_eq!(spec.tls(), None);
    assert_eq!(spec.source().kind(), SourceKind::Json);

    tree.write_json(
        0,
        "insecure",
        r#"{"Addr":"https://h","TLSConfig":{"InsecureSkipVerify":false}}"#,
    );
    assert!(
        resolve(&registry, "insecure")
            .tls()
            .is_some_and(|t| t.insecure_skip_verify)
    );
    tree.write_json(
        0,
        "ca",
        r#"{"Addr":"https://h","TLSConfig":{"CAFile":"/ca.pem"}}"#,
    );
    let tls = resolve(&registry, "ca").tls().cloned().expect("tls");
    assert!(!tls.insecure_skip_verify);
    assert_eq!(tls.ca_file, Some(PathBuf::from("/ca.pem")));

    tree.write_json(
        0,
        "imp",
        r#"{"Addr":"tcp://h:1","Implements":["VolumeDriver"]}"#,
    );
    assert_eq!(
        resolve(&registry, "imp").implements(),
        Some(&["VolumeDriver".to_owned()][..])
    );
}

#[test]
fn resolution_reads_the_file_system_every_time() {
    // spec §1.3: no cache.
    let tree = PluginTree::new();
    let registry = tree.registry();
    tree.write_spec(0, "p", "tcp://h:1");
    assert_eq!(resolve(&registry, "p").address().as_str(), "tcp://h:1");
    tree.write_spec(0, "p", "tcp://h:2");
    assert_eq!(resolve(&registry, "p").address().as_str(), "tcp://h:2");
    fs::remove_file(tree.path("etc/p.spec")).expect("rm");
    assert!(resolve_err(&registry, "p").is_not_found());
}

#[test]
fn unreadable_spec_file_gives_gos_open_error() {
    if running_as_root() {
        // Root opens a mode-000 file, so there is no error to observe.
        return;
    }
    let tree = PluginTree::new();
    let path = tree.write_spec(0, "p", "tcp://h:1");
    tree.write_json(0, "p", r#"{"Addr":"tcp://h:2"}"#);
    chmod(&path, 0o000);
    let e = resolve_err(&tree.registry(), "p");
    assert_eq!(
        e.to_string(),
        format!("open {}: permission denied", path.display())
    );
    assert_eq!(e.kind(), DiscoveryErrorKind::Read);
    assert_eq!(e.path(), Some(path.as_path()));
}

// ------------------------------------------- divergence D2: invalid names

#[test]
fn invalid_names_are_rejected_before_any_path_is_built_checklist_14() {
    let tree = PluginTree::new();
    // Files the traversal would reach in Docker (spec §1.3, §12).
    let _escape = tree.live_socket("x.sock");
    let _abs = tree.live_socket("run/x/x.sock");
    let _v2 = tree.live_socket("run/a/b.sock");
    tree.write("etc/.spec", "tcp://h:1");
    tree.write("etc/..spec", "tcp://h:1");
    let registry = tree.registry();
    for name in ["../x", "/x", "a/b", "", ".", "..", "a\\b", "x\0"] {
        let e = resolve_err(&registry, name);
        assert!(e.is_invalid_name(), "{name:?}: {e}");
        assert!(!e.is_not_found(), "{name:?}");
        assert_eq!(e.kind(), DiscoveryErrorKind::InvalidName);
        assert_eq!(e.name(), Some(name));
        assert!(e.to_string().starts_with("invalid plugin name "), "{e}");
        let explanation = registry.explain(name);
        assert!(explanation.candidates.is_empty());
        assert!(
            explanation
                .result
                .as_ref()
                .is_err_and(DiscoveryError::is_invalid_name)
        );
    }
    // `scan` still lists what Docker lists, including "" and "." names.
    assert_eq!(scan(&registry), ["x", ".", ""]);
}

#[test]
fn invalid_names_error_texts() {
    let registry = PluginTree::new().registry();
    assert_eq!(
        resolve_err(&registry, "../x").to_string(),
        "invalid plugin name \"../x\": a plugin name must not contain '/'"
    );
    assert_eq!(
        resolve_err(&registry, "").to_string(),
        "invalid plugin name \"\": a plugin name must not be empty"
    );
}

// ---------------------------------------- divergence D3: non-regular files

#[test]
fn fifo_candidate_is_refused_without_blocking() {
    let tree = PluginTree::new();
    let fifo = tree.fifo("etc/f.spec");
    tree.write_json(0, "f", r#"{"Addr":"tcp://h:1"}"#);
    let registry = tree.registry();
    assert_eq!(scan(&registry), ["f", "f"]);
    let e = within_5s(move || registry.plugin("f").unwrap_err());
    assert_eq!(e.kind(), DiscoveryErrorKind::NotRegularFile);
    assert_eq!(e.file_kind(), Some(FileKind::Fifo));
    assert_eq!(e.path(), Some(fifo.as_path()));
    let text = e.to_string();
    assert!(text.starts_with(&fifo.display().to_string()), "{text}");
    assert!(text.contains("named pipe"), "{text}");
}

#[test]
fn fifo_behind_a_symlink_is_refused_without_blocking() {
    let tree = PluginTree::new();
    let fifo = tree.fifo("pipe");
    tree.symlink(&fifo, "etc/f.json");
    let registry = tree.registry();
    let e = within_5s(move || registry.plugin("f").unwrap_err());
    assert_eq!(e.file_kind(), Some(FileKind::Fifo));
    assert_eq!(e.path(), Some(tree.path("etc/f.json").as_path()));
    let explanation = within_5s({
        let registry = tree.registry();
        move || registry.explain("f")
    });
    assert!(explanation.result.is_err());
}

#[test]
fn directory_candidate_is_refused_and_ends_the_lookup() {
    let tree = PluginTree::new();
    let dir = tree.mkdir("etc/p.spec");
    tree.write_json(0, "p", r#"{"Addr":"tcp://h:1"}"#);
    let e = resolve_err(&tree.registry(), "p");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: plugin spec candidate is a directory, not a regular file; it was not opened",
            dir.display()
        )
    );
    assert_eq!(e.file_kind(), Some(FileKind::Directory));
}

#[test]
fn directory_candidate_in_subdirectory_form() {
    // p/p.json as a directory: the flat p.json is missing, so it wins.
    let tree = PluginTree::new();
    tree.mkdir("lib/p/p.json");
    let e = resolve_err(&tree.registry(), "p");
    assert_eq!(e.path(), Some(tree.path("lib/p/p.json").as_path()));
    assert_eq!(e.file_kind(), Some(FileKind::Directory));
}

#[test]
fn socket_and_device_candidates_are_refused_section_12() {
    // Docker reads a socket named x.spec, fails, and does not fall through.
    let tree = PluginTree::new();
    let _s = tree.live_socket("etc/s.spec");
    tree.write_json(0, "s", r#"{"Addr":"tcp://h:1"}"#);
    tree.symlink("/dev/null", "etc/n.spec");
    let registry = tree.registry();
    let e = resolve_err(&registry, "s");
    assert_eq!(e.file_kind(), Some(FileKind::Socket));
    assert!(e.to_string().contains("is a socket"), "{e}");
    let e = resolve_err(&registry, "n");
    assert_eq!(e.file_kind(), Some(FileKind::CharDevice));
}

#[test]
fn oversized_spec_file_is_refused() {
    let tree = PluginTree::new();
    let registry = tree.registry();
    let limit = MAX_SPEC_SIZE as usize;
    assert_eq!(limit, 64 * 1024);
    // Exactly at the limit: accepted (whitespace is trimmed).
    let addr = "tcp://h:1";
    tree.write_spec(
        0,
        "fits",
        &format!("{addr}{}", " ".repeat(limit - addr.len())),
    );
    assert_eq!(resolve(&registry, "fits").address().as_str(), addr);
    // One byte over: refused, for both forms.
    let big = tree.write_spec(
        0,
        "big",
        &format!("{addr}{}", " ".repeat(limit + 1 - addr.len())),
    );
    let e = resolve_err(&registry, "big");
    assert_eq!(e.kind(), DiscoveryErrorKind::TooLarge);
    assert_eq!(e.path(), Some(big.as_path()));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: plugin spec file is larger than 65536 bytes; it was not parsed",
            big.display()
        )
    );
    let json = format!(r#"{{"Addr":"tcp://h:1"}}{}"#, " ".repeat(limit));
    tree.write_json(0, "bigjson", &json);
    assert_eq!(
        resolve_err(&registry, "bigjson").kind(),
        DiscoveryErrorKind::TooLarge
    );
}

// ------------------------------------- divergence D4: addresses in files

#[test]
fn address_divergences_come_through_with_the_file_path() {
    let tree = PluginTree::new();
    let registry = tree.registry();
    let rel = tree.write_spec(0, "rel", "unix://var/lib/docker/plugins/echo.sock");
    let e = resolve_err(&registry, "rel");
    assert_eq!(e.kind(), DiscoveryErrorKind::Spec);
    assert_eq!(e.path(), Some(rel.as_path()));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: relative unix socket path in plugin address \
             \"unix://var/lib/docker/plugins/echo.sock\": Docker would dial \"var\" \
             (did you mean \"unix:///var/lib/docker/plugins/echo.sock\"?)",
            rel.display()
        )
    );
    let source = std::error::Error::source(&e).expect("source").to_string();
    assert!(source.starts_with("relative unix socket path"), "{source}");

    let hp = tree.write_spec(0, "hp", "localhost:8080");
    let text = resolve_err(&registry, "hp").to_string();
    assert!(
        text.starts_with(&format!(
            "{}: unsupported scheme \"localhost\"",
            hp.display()
        )),
        "{text}"
    );
    tree.write_json(0, "foo", r#"{"Addr":"foo://bar:1"}"#);
    assert!(
        resolve_err(&registry, "foo")
            .to_string()
            .contains("unsupported scheme \"foo\"")
    );
}

// ------------------------------------------------------------------ explain

#[test]
fn explain_lists_every_candidate_in_dockers_order() {
    let tree = PluginTree::new();
    tree.write("run/p.sock", "not a socket");
    tree.symlink("nowhere", "etc/p.spec");
    tree.write_json(0, "p", r#"{"Addr":"tcp://h:1"}"#);
    tree.write_spec(1, "p/p", "tcp://h:2");
    let registry = tree.registry();
    let x = registry.explain("p");
    let got: Vec<(PathBuf, SourceKind, Finding)> = x
        .candidates
        .iter()
        .map(|c| (c.path.clone(), c.source, c.finding.clone()))
        .collect();
    let p = |rel: &str| tree.path(rel);
    assert_eq!(
        got,
        [
            (p("run/p.sock"), SourceKind::Socket, Finding::NotASocket),
            (p("run/p/p.sock"), SourceKind::Socket, Finding::Missing),
            (p("etc/p.spec"), SourceKind::Spec, Finding::DanglingSymlink),
            (p("etc/p/p.spec"), SourceKind::Spec, Finding::Missing),
            (p("etc/p.json"), SourceKind::Json, Finding::Winner),
            (p("etc/p/p.json"), SourceKind::Json, Finding::Missing),
            (p("lib/p.spec"), SourceKind::Spec, Finding::Missing),
            (p("lib/p/p.spec"), SourceKind::Spec, Finding::Shadowed),
            (p("lib/p.json"), SourceKind::Json, Finding::Missing),
            (p("lib/p/p.json"), SourceKind::Json, Finding::Missing),
        ]
    );
    assert_eq!(x.candidates[0].file_kind, Some(FileKind::File));
    assert_eq!(x.winner().map(|c| c.path.clone()), Some(p("etc/p.json")));
    assert_eq!(x.shadowed().count(), 1);
    let spec = x.result.as_ref().expect("resolved");
    assert_eq!(spec, &resolve(&registry, "p"));
}

#[test]
fn explain_marks_a_failed_winner_and_matches_plugin() {
    let tree = PluginTree::new();
    let _s = tree.live_socket("run/q/q.sock");
    let _t = tree.live_socket("run/q.sock");
    tree.write_spec(0, "q", "garbage");
    let registry = tree.registry();
    let x = registry.explain("q");
    let findings: Vec<&Finding> = x.candidates.iter().map(|c| &c.finding).collect();
    assert_eq!(findings[0], &Finding::Winner);
    assert_eq!(findings[1], &Finding::Shadowed);
    assert_eq!(findings[2], &Finding::Shadowed);
    assert_eq!(
        x.result
            .as_ref()
            .map(|s| s.address().as_str().to_owned())
            .ok(),
        Some(unix(&tree.path("run/q.sock")))
    );

    let tree = PluginTree::new();
    tree.write_spec(0, "q", "garbage");
    tree.write_json(1, "q", r#"{"Addr":"tcp://h:1"}"#);
    let registry = tree.registry();
    let x = registry.explain("q");
    let winner = x.winner().expect("a chosen candidate");
    assert_eq!(winner.finding, Finding::Failed);
    assert_eq!(winner.path, tree.path("etc/q.spec"));
    let e = x.result.as_ref().expect_err("failed");
    assert_eq!(e.to_string(), resolve_err(&registry, "q").to_string());
    assert_eq!(x.shadowed().count(), 1);

    let x = registry.explain("absent");
    assert_eq!(x.candidates.len(), 10);
    assert!(x.candidates.iter().all(|c| c.finding == Finding::Missing));
    assert!(x.result.as_ref().is_err_and(DiscoveryError::is_not_found));
    assert!(x.winner().is_none());
}

// ------------------------------------------- moby's own tests (spec §8)

/// moby's discovery tests use one temporary directory as both the socket
/// directory and the spec directory.
fn moby_registry(tree: &PluginTree) -> LocalRegistry {
    LocalRegistry::with_dirs(tree.root(), [tree.root()])
}

#[test]
fn moby_test_file_spec_plugin() {
    let tree = PluginTree::new();
    let registry = moby_registry(&tree);
    let cases = [
        (
            "echo.spec",
            "echo",
            "unix://var/lib/docker/plugins/echo.sock",
            false,
        ),
        (
            "echo/echo.spec",
            "echo",
            "unix://var/lib/docker/plugins/echo.sock",
            false,
        ),
        ("foo.spec", "foo", "tcp://localhost:8080", true),
        ("foo/foo.spec", "foo", "tcp://localhost:8080", true),
        ("bar.spec", "bar", "localhost:8080", false),
    ];
    for (file, name, addr, ok) in cases {
        tree.write(file, addr);
        // The cumulative writes keep echo.spec in front of echo/echo.spec.
        let flat = tree.path(format!("{name}.spec"));
        match registry.plugin(name) {
            Ok(spec) => {
                assert!(ok, "{file}: {addr} must be rejected by our divergence D4");
                assert_eq!(spec.name(), name);
                assert_eq!(spec.address().as_str(), addr);
                assert!(spec.tls().is_some_and(|t| t.insecure_skip_verify));
                assert_eq!(spec.source().path(), flat);
            }
            Err(e) => {
                // Docker accepts these (moby's test only checks the Addr
                // text); we reject them when the spec is read.
                assert!(!ok, "{file}: {e}");
                assert_eq!(e.kind(), DiscoveryErrorKind::Spec);
                assert_eq!(e.path(), Some(flat.as_path()));
            }
        }
    }
}

#[test]
fn moby_test_file_json_spec_plugin() {
    let tree = PluginTree::new();
    tree.write(
        "example.json",
        r#"{
  "Name": "plugin-example",
  "Addr": "https://example.com/docker/plugin",
  "TLSConfig": {
    "CAFile": "/usr/shared/docker/certs/example-ca.pem",
    "CertFile": "/usr/shared/docker/certs/example-cert.pem",
    "KeyFile": "/usr/shared/docker/certs/example-key.pem"
  }
}"#,
    );
    let spec = resolve(&moby_registry(&tree), "example");
    assert_eq!(spec.name(), "example");
    assert_eq!(spec.address().as_str(), "https://example.com/docker/plugin");
    let tls = spec.tls().expect("TLSConfig");
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(Path::new("/usr/shared/docker/certs/example-ca.pem"))
    );
    assert_eq!(
        tls.cert_file.as_deref(),
        Some(Path::new("/usr/shared/docker/certs/example-cert.pem"))
    );
    assert_eq!(
        tls.key_file.as_deref(),
        Some(Path::new("/usr/shared/docker/certs/example-key.pem"))
    );
}

#[test]
fn moby_test_file_json_spec_plugin_without_tls_config() {
    let tree = PluginTree::new();
    tree.write(
        "example.json",
        r#"{"Name": "plugin-example", "Addr": "https://example.com/docker/plugin"}"#,
    );
    let spec = resolve(&moby_registry(&tree), "example");
    assert_eq!(spec.name(), "example");
    assert_eq!(spec.address().as_str(), "https://example.com/docker/plugin");
    assert_eq!(spec.tls(), None);
}

#[test]
fn moby_test_local_socket() {
    for rel in ["echo.sock", "echo/echo.sock"] {
        let tree = PluginTree::new();
        let _listener = tree.live_socket(rel);
        let registry = moby_registry(&tree);
        let first = resolve(&registry, "echo");
        let second = resolve(&registry, "echo");
        assert_eq!(first, second);
        assert_eq!(first.name(), "echo");
        assert_eq!(first.address().as_str(), unix(&tree.path(rel)));
        assert!(first.tls().is_some_and(|t| t.insecure_skip_verify));
    }
}

#[test]
fn moby_test_scan() {
    let tree = PluginTree::new();
    // moby's directory is empty; ours holds the tree's three directories,
    // which are not plugins.
    let registry = moby_registry(&tree);
    assert_eq!(scan(&registry), Vec::<String>::new());
    tree.write("echo.spec", "unix:///run/docker/plugins/echo.sock");
    let names = scan(&registry);
    assert_eq!(names, ["echo"]);
    assert_eq!(resolve(&registry, &names[0]).name(), "echo");
}

#[test]
fn moby_test_scan_not_plugins() {
    let tree = PluginTree::new();
    let registry = moby_registry(&tree);
    let _l = tree.live_socket("not-a-plugin/foo.sock");
    tree.write("not-a-plugin/foo.spec", "unix:///x.sock");
    assert!(scan(&registry).is_empty());
    tree.write("not-a-plugin/not-a-plugin.spec", "unix:///x.sock");
    assert_eq!(scan(&registry), ["not-a-plugin"]);
}

// ------------------------------------------------------------------ DirView

/// What a view answers for `name`: its address, or `None` when not found.
fn view_address(view: &DirView, name: &str) -> Option<String> {
    match view.plugin(name) {
        Ok(spec) => Some(spec.address().as_str().to_owned()),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("plugin({name:?}): {e}"),
    }
}

fn view_of(tree: &PluginTree) -> DirView {
    DirView::new(tree.registry())
}

#[test]
fn dir_view_sees_a_spec_created_replaced_rewritten_or_removed_at_the_very_next_call() {
    let tree = PluginTree::new();
    let view = view_of(&tree);
    assert_eq!(view_address(&view, "p"), None);
    assert!(view.scan().unwrap().is_empty());
    assert!(view.is_watching(), "the answers must come from memory here");
    assert_eq!(view_address(&view, "p"), None, "kept: still not found");

    let path = tree.write_spec(0, "p", "tcp://h:1");
    assert_eq!(view_address(&view, "p").as_deref(), Some("tcp://h:1"));
    assert_eq!(view.scan().unwrap(), ["p"]);

    // Replaced by a rename over it, as careful writers do.
    let tmp = tree.write(tree.spec_dir(0).join(".p.tmp"), "tcp://h:2");
    fs::rename(&tmp, &path).unwrap();
    assert_eq!(view_address(&view, "p").as_deref(), Some("tcp://h:2"));

    // Rewritten in place.
    fs::write(&path, "tcp://h:3").unwrap();
    assert_eq!(view_address(&view, "p").as_deref(), Some("tcp://h:3"));
    assert_eq!(view_address(&view, "p").as_deref(), Some("tcp://h:3"));

    fs::remove_file(&path).unwrap();
    assert_eq!(view_address(&view, "p"), None);
    assert!(view.scan().unwrap().is_empty());
    assert!(view.is_watching());
}

#[test]
fn dir_view_never_answers_stale_across_many_changes() {
    let tree = PluginTree::new();
    let view = view_of(&tree);
    let sock = tree.socket_dir().join("s.sock");
    for i in 0..200 {
        let spec = tree.write_spec(1, "q", &format!("tcp://h:{i}"));
        assert_eq!(view_address(&view, "q"), Some(format!("tcp://h:{i}")));
        let listener = tree.live_socket(&sock);
        assert_eq!(view.scan().unwrap(), ["s", "q"]);
        assert_eq!(view_address(&view, "s"), Some(unix(&sock)));
        drop(listener);
        fs::remove_file(&sock).unwrap();
        fs::remove_file(&spec).unwrap();
        assert_eq!(view_address(&view, "s"), None);
        assert_eq!(view_address(&view, "q"), None);
        assert!(view.scan().unwrap().is_empty());
    }
}

#[test]
fn dir_view_sees_sockets_in_new_subdirectories_and_directories_that_appear_later() {
    let tree = PluginTree::new();
    fs::remove_dir(tree.socket_dir()).unwrap();
    let view = view_of(&tree);
    assert_eq!(view_address(&view, "late"), None);
    assert!(view.is_watching(), "a missing directory is watched for");
    // The socket directory appears, then a plugin in its own subdirectory.
    let sock = tree.socket_dir().join("late").join("late.sock");
    let _listener = tree.live_socket(&sock);
    assert_eq!(view_address(&view, "late"), Some(unix(&sock)));
    assert_eq!(view.scan().unwrap(), ["late"]);
    fs::remove_file(&sock).unwrap();
    assert_eq!(view_address(&view, "late"), None);
    assert!(view.scan().unwrap().is_empty());
}

#[test]
fn dir_view_reads_through_a_symlink_whose_target_it_cannot_watch() {
    let tree = PluginTree::new();
    let outside = tree.write("elsewhere/target.spec", "tcp://h:1");
    tree.symlink(&outside, tree.spec_dir(0).join("l.spec"));
    let view = view_of(&tree);
    assert_eq!(view_address(&view, "l").as_deref(), Some("tcp://h:1"));
    // A change inotify does not see is still seen.
    fs::write(&outside, "tcp://h:2").unwrap();
    assert_eq!(view_address(&view, "l").as_deref(), Some("tcp://h:2"));
    fs::remove_file(&outside).unwrap();
    assert_eq!(view_address(&view, "l"), None);
    // The same through a plugin's own subdirectory that is a link.
    let elsewhere = tree.mkdir("elsewhere/m");
    tree.write("elsewhere/m/m.spec", "tcp://h:3");
    tree.symlink(&elsewhere, tree.spec_dir(1).join("m"));
    assert_eq!(view_address(&view, "m").as_deref(), Some("tcp://h:3"));
    fs::write(elsewhere.join("m.spec"), "tcp://h:4").unwrap();
    assert_eq!(view_address(&view, "m").as_deref(), Some("tcp://h:4"));
    // A scan follows `<sockets>/<d>/<d>.sock`: a link there is followed
    // again at every scan.
    let target = tree.path("elsewhere/k.sock");
    let listener = tree.live_socket(&target);
    tree.symlink(&target, tree.socket_dir().join("k").join("k.sock"));
    // (`l.spec`, a dangling link, is listed whatever its type, as in
    // Docker; the link `m` to a directory is not.)
    assert_eq!(view.scan().unwrap(), ["k", "l"]);
    drop(listener);
    fs::remove_file(&target).unwrap();
    assert_eq!(view.scan().unwrap(), ["l"]);
}
