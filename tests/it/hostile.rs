//! Hostile files and names: spec files that are FIFOs, devices, sockets,
//! directories, symlink loops, huge, sparse, growing, binary or deeply
//! nested; names that traverse, carry NUL, exceed the file system's limits
//! or differ only by case; plugin directories that are files, loops or
//! unreadable.
//!
//! `discovery.rs` pins discovery's answers for many of these files; here
//! every case goes through everything an engine can ask (divergences D2,
//! D3, D13): `LocalRegistry::plugin`, `scan` and `explain`, and
//! `Registry::get` and `get_all`/`list`, with a healthy plugin beside the
//! hostile file. Each must give a clear error naming the file, quickly:
//! never a hang, a panic, or the healthy plugin lost from the listing.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plugin_discovery::{
    DiscoveryError, DiscoveryErrorKind, Explanation, FileKind, Finding, LocalRegistry,
    MAX_SPEC_SIZE, PluginSpec,
};
use plugin_registry::proto::RetryPolicy;
use plugin_registry::{ListState, Listing, Plugin, Policy, Registry};
use plugin_tests::server::FakePlugin;
use plugin_tests::tree::PluginTree;

const LIMIT: usize = MAX_SPEC_SIZE as usize;

/// Everything an engine can learn about one name.
struct Seen {
    plugin: Result<PluginSpec, DiscoveryError>,
    explain: Explanation,
    scan: Result<Vec<String>, DiscoveryError>,
    get: Result<Arc<Plugin>, plugin_registry::Error>,
    listing: Result<Vec<Listing>, plugin_registry::Error>,
    /// Whether a healthy plugin `ok` was running in the socket directory.
    with_ok: bool,
}

impl Seen {
    fn plugin_err(&self) -> &DiscoveryError {
        match &self.plugin {
            Ok(spec) => panic!("resolved to {spec:?}"),
            Err(e) => e,
        }
    }

    fn get_err(&self) -> &plugin_registry::Error {
        match &self.get {
            Ok(p) => panic!("get resolved to {}", p.address()),
            Err(e) => e,
        }
    }

    fn row(&self, name: &str) -> Option<&Listing> {
        self.listing
            .as_ref()
            .unwrap_or_else(|e| panic!("listing failed: {e}"))
            .iter()
            .find(|l| l.name == name)
    }
}

/// Asks discovery and a registry about `name` in `local`'s directories, on
/// a thread of its own with its own runtime, and fails if that takes more
/// than 5 s (a FIFO opened for reading, or `/dev/zero` read to the end,
/// would never finish). A healthy plugin `ok` serves from the socket
/// directory meanwhile, if that is a directory without one.
fn look_up(local: &LocalRegistry, name: &str) -> Seen {
    let (local, owned) = (local.clone(), name.to_owned());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let seen = rt.block_on(async {
            let ok_sock = local.socket_dir().join("ok.sock");
            let ok = if local.socket_dir().is_dir() && !ok_sock.exists() {
                Some(
                    FakePlugin::builder()
                        .activate(&["VolumeDriver"])
                        .unix(&ok_sock)
                        .await,
                )
            } else {
                None
            };
            let mut policy =
                Policy::default().with_retry(RetryPolicy::with_budget(Duration::from_millis(300)));
            policy.handshake_timeout = Some(Duration::from_secs(1));
            policy.list_timeout = Some(Duration::from_secs(2));
            let reg = Registry::new(local.clone(), policy);
            let seen = Seen {
                plugin: local.plugin(&owned),
                explain: local.explain(&owned),
                scan: local.scan(),
                get: reg.get(&owned, "VolumeDriver").await,
                listing: reg.list("VolumeDriver").await,
                with_ok: ok.is_some(),
            };
            if let Some(ok) = ok {
                ok.shutdown().await;
                let _ = std::fs::remove_file(&ok_sock);
            }
            seen
        });
        let _ = tx.send(seen);
    });
    let start = Instant::now();
    let seen = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("looking up {name:?} blocked for 5 s"));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    seen
}

/// The lookup of `name` failed the same way everywhere, with an error of
/// `kind` that names `path`: discovery's `plugin` and `explain` (the
/// winning candidate marked failed), the registry's `get` (same text, not
/// "not found"), and its listing (the name as an error, the healthy plugin
/// still there).
fn assert_refused(seen: &Seen, name: &str, kind: DiscoveryErrorKind, path: &Path) -> String {
    let e = seen.plugin_err();
    let text = e.to_string();
    assert_eq!(e.kind(), kind, "{text}");
    assert_eq!(e.path(), Some(path), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    let explained = seen.explain.result.as_ref().expect_err("explain agrees");
    assert_eq!(explained.to_string(), text);
    let winner = seen.explain.winner().expect("a chosen candidate");
    assert_eq!(winner.path, path);
    assert_eq!(winner.finding, Finding::Failed);
    let g = seen.get_err();
    assert_eq!(g.to_string(), text);
    assert!(
        !g.is_not_found() && !g.is_connect() && !g.is_timeout(),
        "{g:?}"
    );
    if let Some(row) = seen.row(name) {
        assert_eq!(row.state, ListState::Error, "{row:?}");
        assert_eq!(
            row.error.as_ref().map(ToString::to_string),
            Some(text.clone())
        );
    }
    if seen.with_ok {
        assert_eq!(seen.row("ok").map(|r| r.state), Some(ListState::Ok));
    }
    text
}

/// The name is simply not there, everywhere.
fn assert_not_found(seen: &Seen, name: &str) {
    let e = seen.plugin_err();
    assert!(e.is_not_found(), "{name:?}: {e}");
    assert!(
        seen.explain
            .result
            .as_ref()
            .is_err_and(DiscoveryError::is_not_found)
    );
    assert!(seen.get_err().is_not_found(), "{name:?}");
    if seen.with_ok && seen.listing.is_ok() {
        assert_eq!(seen.row("ok").map(|r| r.state), Some(ListState::Ok));
    }
}

// ------------------------------------------------- special files as specs

#[test]
fn fifo_specs_never_block_any_lookup() {
    let tree = PluginTree::new();
    let spec = tree.fifo("etc/f.spec");
    let json = tree.fifo("lib/j/j.json");
    let local = tree.registry();
    for (name, path) in [("f", &spec), ("j", &json)] {
        let seen = look_up(&local, name);
        let text = assert_refused(&seen, name, DiscoveryErrorKind::NotRegularFile, path);
        assert_eq!(seen.plugin_err().file_kind(), Some(FileKind::Fifo));
        assert!(text.contains("named pipe"), "{text}");
        assert!(seen.scan.as_ref().unwrap().contains(&name.to_owned()));
    }
}

/// Creates a device node (root only); `false` if this system refuses.
fn mknod(path: &Path, block: bool, major: u32, minor: u32) -> bool {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let kind = if block { libc::S_IFBLK } else { libc::S_IFCHR };
    // SAFETY: `c` is a valid NUL-terminated path for the call.
    unsafe { libc::mknod(c.as_ptr(), kind | 0o644, libc::makedev(major, minor)) == 0 }
}

#[test]
fn device_specs_are_refused_unopened_dev_zero_included() {
    // `/dev/zero` and `/dev/urandom` never end: read to the end they would
    // exhaust memory. They are never opened.
    let tree = PluginTree::new();
    let mut cases = vec![
        (
            "null",
            tree.symlink("/dev/null", "etc/null.spec"),
            FileKind::CharDevice,
        ),
        (
            "zero",
            tree.symlink("/dev/zero", "etc/zero.json"),
            FileKind::CharDevice,
        ),
        (
            "rand",
            tree.symlink("/dev/urandom", "lib/rand/rand.spec"),
            FileKind::CharDevice,
        ),
    ];
    // Device nodes made in place need root (CI runs as root).
    let chr = tree.path("etc/chr.spec");
    if mknod(&chr, false, 1, 5) {
        cases.push(("chr", chr, FileKind::CharDevice));
    }
    let blk = tree.path("etc/blk.json");
    if mknod(&blk, true, 7, 0) {
        cases.push(("blk", blk, FileKind::BlockDevice));
    }
    let local = tree.registry();
    for (name, path, kind) in &cases {
        let seen = look_up(&local, name);
        let text = assert_refused(&seen, name, DiscoveryErrorKind::NotRegularFile, path);
        assert_eq!(seen.plugin_err().file_kind(), Some(*kind), "{text}");
        assert!(text.contains(&kind.to_string()), "{text}");
    }
}

#[test]
fn a_socket_reached_through_proc_fd_is_refused() {
    // A spec symlinked to one of the engine's own descriptors
    // (`/proc/self/fd/N`, here a listening socket) is a socket, not a file.
    let tree = PluginTree::new();
    let listener = tree.live_socket("elsewhere.sock");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let link = tree.symlink(format!("/proc/self/fd/{fd}"), "etc/fd.spec");
    let seen = look_up(&tree.registry(), "fd");
    assert_refused(&seen, "fd", DiscoveryErrorKind::NotRegularFile, &link);
    assert_eq!(seen.plugin_err().file_kind(), Some(FileKind::Socket));
}

#[test]
fn directory_specs_are_refused() {
    let tree = PluginTree::new();
    let dir = tree.mkdir("etc/d.json");
    let seen = look_up(&tree.registry(), "d");
    assert_refused(&seen, "d", DiscoveryErrorKind::NotRegularFile, &dir);
    assert_eq!(seen.plugin_err().file_kind(), Some(FileKind::Directory));
}

#[test]
fn symlink_loops_are_skipped_like_missing_files() {
    // `os.Stat` fails with ELOOP, so Docker tries the next candidate; with
    // none left the name is not found. Looping directories too.
    let tree = PluginTree::new();
    tree.symlink("a.spec", "etc/a.spec");
    tree.symlink("b.json", "etc/c.json");
    tree.symlink("c.json", "etc/b.json");
    tree.symlink("x.sock", "run/x.sock");
    tree.symlink("loopdir", "etc/loopdir");
    let local = tree.registry();
    for name in ["a", "b", "c", "x", "loopdir"] {
        let seen = look_up(&local, name);
        assert_not_found(&seen, name);
        assert!(
            seen.explain.candidates.iter().any(|c| c.finding
                == Finding::Unreachable("too many levels of symbolic links".to_owned())),
            "{name}: {:?}",
            seen.explain.candidates
        );
    }
    // A later candidate still resolves.
    tree.write_json(0, "a", r#"{"Addr":"tcp://127.0.0.1:9"}"#);
    let seen = look_up(&local, "a");
    assert_eq!(seen.plugin.unwrap().address().as_str(), "tcp://127.0.0.1:9");
}

// ------------------------------------------------------------ file sizes

#[test]
fn the_size_cap_is_exact_for_json_specs() {
    let tree = PluginTree::new();
    let json = r#"{"Addr":"tcp://127.0.0.1:9"}"#;
    let fits = format!("{json}{}", " ".repeat(LIMIT - json.len()));
    assert_eq!(fits.len(), 65_536);
    tree.write_json(0, "fits", &fits);
    let over = tree.write_json(0, "over", &format!("{fits} "));
    let local = tree.registry();
    let seen = look_up(&local, "fits");
    assert_eq!(seen.plugin.unwrap().address().as_str(), "tcp://127.0.0.1:9");
    let seen = look_up(&local, "over");
    let text = assert_refused(&seen, "over", DiscoveryErrorKind::TooLarge, &over);
    assert!(text.contains("larger than 65536 bytes"), "{text}");
}

#[test]
fn huge_and_sparse_specs_are_refused_without_reading() {
    // A 1 TiB sparse file and an 8 MiB file with a million keys: refused
    // by size, at once.
    let tree = PluginTree::new();
    let sparse = tree.write_spec(0, "sparse", "tcp://127.0.0.1:9");
    std::fs::File::options()
        .write(true)
        .open(&sparse)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let mut keys = String::from(r#"{"Addr":"tcp://127.0.0.1:9""#);
    for i in 0..1_000_000 {
        keys.push_str(&format!(r#","k{i}":1"#));
    }
    keys.push('}');
    let million = tree.write_json(0, "million", &keys);
    let local = tree.registry();
    for (name, path) in [("sparse", &sparse), ("million", &million)] {
        let start = Instant::now();
        let seen = look_up(&local, name);
        assert_refused(&seen, name, DiscoveryErrorKind::TooLarge, path);
        assert!(start.elapsed() < Duration::from_secs(1), "{name}");
    }
}

#[test]
fn as_many_keys_as_fit_decode_quickly() {
    // Just under the cap: about 7,000 unknown keys (and duplicates of
    // Addr, the last winning, as in Go).
    let tree = PluginTree::new();
    let mut text = String::from("{");
    let mut i = 0;
    while text.len() < LIMIT - 64 {
        text.push_str(&format!(r#""k{i}":1,"Addr":"tcp://127.0.0.1:{i}","#));
        i += 1;
    }
    text.push_str(r#""Addr":"tcp://127.0.0.1:7"}"#);
    assert!(text.len() <= LIMIT);
    tree.write_json(0, "keys", &text);
    let start = Instant::now();
    let seen = look_up(&tree.registry(), "keys");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(seen.plugin.unwrap().address().as_str(), "tcp://127.0.0.1:7");
}

#[test]
fn a_spec_growing_while_it_is_read_is_cut_at_the_cap() {
    // The size is checked on the opened file and the read is capped too,
    // so a file that grows between the check and the read cannot make the
    // reader take more than the cap. A writer cuts the file back to a valid
    // spec and grows it past the cap, over and over, while it is read.
    use std::io::Write;
    let tree = PluginTree::new();
    let addr = "tcp://127.0.0.1:9";
    let path = tree.write_spec(0, "grow", addr);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cycles = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (path, stop, cycles) = (path.clone(), stop.clone(), cycles.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::File::options().append(true).open(&path).unwrap();
            let chunk = vec![b' '; 4096];
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                f.set_len(addr.len() as u64).unwrap();
                for _ in 0..64 {
                    f.write_all(&chunk).unwrap();
                }
                cycles.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            // Leave it over the cap.
            f.write_all(&vec![b' '; 1 << 20]).unwrap();
        })
    };
    while cycles.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let local = tree.registry();
    let (mut ok, mut too_large) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        let one = Instant::now();
        let result = local.plugin("grow");
        assert!(one.elapsed() < Duration::from_secs(1));
        match result {
            Ok(spec) => {
                assert_eq!(spec.address().as_str(), addr);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(e.kind(), DiscoveryErrorKind::TooLarge, "{e}");
                assert_eq!(e.path(), Some(path.as_path()));
                too_large += 1;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();
    println!(
        "growing spec: {ok} ok, {too_large} too large, {} cycles",
        cycles.load(std::sync::atomic::Ordering::SeqCst)
    );
    let seen = look_up(&local, "grow");
    assert_refused(&seen, "grow", DiscoveryErrorKind::TooLarge, &path);
}

// ------------------------------------------------------- file contents

/// Deterministic pseudo-random bytes (xorshift), every value included.
fn garbage(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn binary_garbage_is_a_spec_error_naming_the_file() {
    let tree = PluginTree::new();
    let local = tree.registry();
    for seed in 1..=8u64 {
        let bytes = garbage(4096, seed);
        let spec = tree.write(format!("etc/g{seed}.spec"), &bytes);
        let json = tree.write(format!("lib/j{seed}.json"), &bytes);
        for (name, path) in [(format!("g{seed}"), spec), (format!("j{seed}"), json)] {
            let seen = look_up(&local, &name);
            assert_refused(&seen, &name, DiscoveryErrorKind::Spec, &path);
        }
    }
}

#[test]
fn invalid_utf8_in_specs() {
    // A `.spec` file must be text: refused when read, naming the file (Go
    // would parse the bytes into a host name and fail at the dial).
    let tree = PluginTree::new();
    let spec = tree.write("etc/u.spec", b"tcp://h\xff\xfe:1\n");
    let local = tree.registry();
    let seen = look_up(&local, "u");
    let text = assert_refused(&seen, "u", DiscoveryErrorKind::Spec, &spec);
    assert_eq!(
        text,
        format!("{}: spec file is not valid UTF-8", spec.display())
    );
    // In `.json`, Go's decoder turns each invalid byte into U+FFFD, inside
    // a value as in a key: a mangled key is an unknown key, so no address.
    tree.write(
        "etc/v.json",
        b"{\"Addr\":\"unix:///nonexistent/h\xff.sock\"}",
    );
    let key = tree.write("etc/w.json", b"{\"Ad\xffdr\":\"tcp://127.0.0.1:9\"}");
    let seen = look_up(&local, "v");
    assert_eq!(
        seen.plugin.as_ref().unwrap().address().as_str(),
        "unix:///nonexistent/h\u{fffd}.sock"
    );
    let c = seen.get_err().client_error().expect("a dial error");
    assert!(c.is_socket_missing(), "{c:?}");
    let seen = look_up(&local, "w");
    let text = assert_refused(&seen, "w", DiscoveryErrorKind::Spec, &key);
    println!("w: {text}");
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    // 60,000 levels fit in the cap; Go gives up at 10,000 levels
    // (`exceeded max depth`), serde_json at 128.
    let tree = PluginTree::new();
    let deep_arrays = format!(r#"{{"Addr":"tcp://127.0.0.1:9","X":{}"#, "[".repeat(60_000));
    let deep_objects = format!(
        r#"{{"Addr":"tcp://127.0.0.1:9","X":{}"#,
        r#"{"a":"#.repeat(12_000)
    );
    let a = tree.write_json(0, "arrays", &deep_arrays);
    let o = tree.write_json(0, "objects", &deep_objects);
    let local = tree.registry();
    for (name, path) in [("arrays", &a), ("objects", &o)] {
        let seen = look_up(&local, name);
        let text = assert_refused(&seen, name, DiscoveryErrorKind::Spec, path);
        println!("{name}: {text}");
    }
}

// ----------------------------------------------------------------- names

#[test]
fn invalid_names_are_refused_by_the_registry_before_any_file_is_touched() {
    // discovery.rs covers `plugin` and `explain`; the registry must refuse
    // them the same way (not as "not found", never waiting).
    let tree = PluginTree::new();
    let _escape = tree.live_socket("x.sock");
    let local = tree.registry();
    for name in [
        "../x",
        "/x",
        "a/b",
        ".",
        "..",
        "a\\b",
        "x\0",
        "\0",
        "../../../../etc/passwd",
    ] {
        let seen = look_up(&local, name);
        let e = seen.get_err();
        assert!(e.is_invalid_name() && !e.is_not_found(), "{name:?}: {e}");
        assert_eq!(e.to_string(), seen.plugin_err().to_string());
        assert_eq!(seen.row("ok").map(|r| r.state), Some(ListState::Ok));
    }
}

#[test]
fn names_over_the_file_system_limits_are_not_found() {
    // Over NAME_MAX (255 bytes per element) and over PATH_MAX (4096): every
    // candidate fails with ENAMETOOLONG and is skipped.
    let tree = PluginTree::new();
    let local = tree.registry();
    for len in [256, 300, 5000, 70_000] {
        let name = "n".repeat(len);
        let seen = look_up(&local, &name);
        assert_not_found(&seen, &name);
        assert!(
            seen.explain.candidates.iter().all(
                |c| matches!(&c.finding, Finding::Unreachable(why) if why == "file name too long")
            ),
            "{len}: {:?}",
            seen.explain.candidates.first()
        );
    }
    // Just under NAME_MAX with the extension still works.
    let name = "n".repeat(250);
    tree.write_spec(0, &name, "tcp://127.0.0.1:9");
    let seen = look_up(&local, &name);
    assert_eq!(seen.plugin.unwrap().name(), name);
}

#[test]
fn scanned_names_that_cannot_be_resolved_do_not_break_the_listing() {
    // `.spec` and `..spec` list as "" and "." (as in Docker); resolving them
    // is refused, and the listing goes on.
    let tree = PluginTree::new();
    tree.write("etc/.spec", "tcp://127.0.0.1:9");
    tree.write("etc/..spec", "tcp://127.0.0.1:9");
    let seen = look_up(&tree.registry(), "ok");
    let names = seen.scan.as_ref().unwrap();
    assert!(
        names.contains(&String::new()) && names.contains(&".".to_owned()),
        "{names:?}"
    );
    for bad in ["", "."] {
        let row = seen.row(bad).expect("listed");
        assert_eq!(row.state, ListState::Error);
        let e = row.error.as_ref().unwrap();
        assert!(e.is_invalid_name(), "{bad:?}: {e}");
    }
    assert_eq!(seen.row("ok").map(|r| r.state), Some(ListState::Ok));
    assert!(seen.get.is_ok());
}

#[test]
fn names_differing_only_by_case_are_different_plugins() {
    let tree = PluginTree::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let (upper_sock, lower_sock) = (tree.path("run/Vol.sock"), tree.path("run/vol.sock"));
    let local = tree.registry();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let upper = FakePlugin::builder()
                .activate(&["VolumeDriver"])
                .unix(&upper_sock)
                .await;
            let lower = FakePlugin::builder()
                .activate(&["VolumeDriver"])
                .unix(&lower_sock)
                .await;
            let reg = Registry::new(local, Policy::default());
            let a = reg.get("Vol", "VolumeDriver").await.unwrap();
            let b = reg.get("vol", "VolumeDriver").await.unwrap();
            let c = reg.get("VOL", "VolumeDriver").await.unwrap_err();
            let all = reg.get_all("VolumeDriver").await.unwrap();
            let _ = tx.send((
                a.address().to_string(),
                b.address().to_string(),
                c.is_not_found(),
                all.iter().map(|p| p.name().to_owned()).collect::<Vec<_>>(),
                upper.count("Plugin.Activate"),
                lower.count("Plugin.Activate"),
            ));
        });
    });
    let (a, b, c_not_found, all, upper, lower) =
        rx.recv_timeout(Duration::from_secs(5)).expect("finished");
    assert_eq!(a, format!("unix://{}", tree.path("run/Vol.sock").display()));
    assert_eq!(b, format!("unix://{}", tree.path("run/vol.sock").display()));
    assert!(c_not_found);
    assert_eq!(all, ["Vol", "vol"], "sorted by bytes, both kept");
    assert_eq!((upper, lower), (1, 1));
}

// ----------------------------------------------------------- directories

#[test]
fn a_socket_directory_that_is_a_file() {
    // Listing fails with Docker's text; resolving a name skips the socket
    // candidates (ENOTDIR) and still finds its spec.
    let tree = PluginTree::new();
    let file = tree.write("runfile", "not a directory");
    tree.write_spec(0, "p", "tcp://127.0.0.1:9");
    let local = LocalRegistry::with_dirs(&file, [tree.spec_dir(0)]);
    let seen = look_up(&local, "p");
    assert_eq!(
        seen.plugin.as_ref().unwrap().address().as_str(),
        "tcp://127.0.0.1:9"
    );
    // Nothing can exist under a file: the socket candidates are missing.
    assert_eq!(seen.explain.candidates[0].finding, Finding::Missing);
    let want = format!(
        "error reading dir entries: readdirent {}: not a directory",
        file.display()
    );
    assert_eq!(seen.scan.as_ref().unwrap_err().to_string(), want);
    assert_eq!(seen.listing.as_ref().unwrap_err().to_string(), want);
    // get resolves it; the address refuses, so activation fails at once.
    assert!(seen.get_err().is_connect());
}

#[test]
fn a_spec_directory_that_is_a_symlink_loop() {
    let tree = PluginTree::new();
    let looped = tree.symlink("loop", "loop");
    let local = LocalRegistry::with_dirs(tree.socket_dir(), [looped.clone()]);
    let seen = look_up(&local, "p");
    assert_not_found(&seen, "p");
    let e = seen.scan.as_ref().unwrap_err();
    assert_eq!(e.kind(), DiscoveryErrorKind::ReadDir);
    assert_eq!(e.path(), Some(looped.as_path()));
    let want = format!(
        "error reading dir entries: open {}: too many levels of symbolic links",
        looped.display()
    );
    assert_eq!(e.to_string(), want);
    assert_eq!(seen.listing.as_ref().unwrap_err().to_string(), want);
}

/// Permission errors cannot be provoked as root (CI runs as root): root
/// reads a mode-000 directory anyway.
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn an_unreadable_spec_directory_fails_the_listing_not_the_lookups_elsewhere() {
    if running_as_root() {
        // Root reads a mode-000 directory: nothing to observe.
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tree = PluginTree::new();
    tree.write_spec(1, "seen", "tcp://127.0.0.1:9");
    tree.write_spec(0, "hidden", "tcp://127.0.0.1:9");
    let etc = tree.spec_dir(0);
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o000)).unwrap();
    let local = tree.registry().with_user_namespace(false);
    let seen = look_up(&local, "seen");
    let hidden = look_up(&local, "hidden");
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(seen.plugin.unwrap().address().as_str(), "tcp://127.0.0.1:9");
    let want = format!(
        "error reading dir entries: open {}: permission denied",
        etc.display()
    );
    assert_eq!(seen.listing.as_ref().unwrap_err().to_string(), want);
    // Its files cannot be examined: skipped, so not found.
    assert_not_found(&hidden, "hidden");
}
