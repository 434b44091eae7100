//! `ListenConfig`, the kit's one configuration of where a plugin listens:
//! its command-line flags (defaults and conflicts, through a binary's own
//! `clap` arguments), and what `bind` makes of them — a unix socket by name
//! in a directory, given to a group with a mode; tcp with a `.spec` or
//! `.json` spec written while serving and removed on shutdown; TLS from
//! PEM files; bad settings refused before anything is bound. (Systemd
//! names are tested with the memvol binary, in `server.rs`.)

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use plugin_client::Client;
use plugin_proto::{Manifest, RetryPolicy, TlsOptions};
use plugin_server::{Bound, ListenAddr, ListenConfig, ServeError, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A plugin binary's arguments, as memvol and simple-ipam declare them.
#[derive(Debug, Parser)]
#[command(name = "plug")]
struct Args {
    #[arg(long, default_value = "plug")]
    name: String,
    #[command(flatten)]
    listen: ListenConfig,
}

fn parse(args: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("plug").chain(args.iter().copied()))
}

fn listen(args: &[&str]) -> ListenConfig {
    parse(args)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .listen
}

/// memvol served on what `bind` made, until [`Serving::stop`].
struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
    _root: tempfile::TempDir,
}

impl Serving {
    fn start(bound: Bound) -> Serving {
        let root = tempfile::tempdir().unwrap();
        let plugin = memvol::MemVol::new(root.path()).plugin().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(plugin)
            .handle_signals(false)
            .shutdown_on(async {
                let _ = stopped.await;
            });
        Serving {
            stop,
            task: tokio::spawn(server.serve_bound(bound)),
            _root: root,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server did not stop")
            .expect("server task")
            .expect("served without error");
    }
}

async fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn activate(
    address: &str,
    tls: Option<&TlsOptions>,
) -> Result<Manifest, plugin_client::Error> {
    Client::builder()
        .retry(RetryPolicy::none())
        .build(address, tls)
        .unwrap()
        .call("Plugin.Activate")
        .json()
        .await
}

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

#[test]
fn no_flag_is_the_plugins_socket_in_docker_s_directory() {
    let l = listen(&[]);
    assert_eq!(l, ListenConfig::default());
    assert_eq!(l.socket_dir, Path::new("/run/docker/plugins"));
    assert_eq!(l.socket, None);
    assert!(!l.systemd && l.tcp.is_none() && l.spec_dir.is_none());
}

#[test]
fn flags_fill_the_configuration() {
    let l = listen(&[
        "--socket-dir",
        "/tmp/p",
        "--socket-group",
        "docker",
        "--socket-mode",
        "0o640",
    ]);
    assert_eq!(l.socket_dir, Path::new("/tmp/p"));
    assert_eq!(l.socket_group.as_deref(), Some("docker"));
    assert_eq!(l.socket_mode, Some(0o640));
    let l = listen(&[
        "--tcp",
        "127.0.0.1:0",
        "--spec-dir",
        "/etc/docker/plugins",
        "--json-spec",
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
        "--tls-client-ca",
        "ca.pem",
        "--spec-ca",
        "ca.pem",
        "--spec-client-cert",
        "cc.pem",
        "--spec-client-key",
        "ck.pem",
    ]);
    assert_eq!(l.tcp.as_deref(), Some("127.0.0.1:0"));
    assert!(l.json_spec);
    assert_eq!(l.tls_client_ca.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(l.spec_client_key.as_deref(), Some(Path::new("ck.pem")));
    assert!(listen(&["--systemd", "--spec-dir", "/d"]).systemd);
}

#[test]
fn the_example_plugins_take_the_kit_s_flags() {
    let flags = ["--tcp", "127.0.0.1:0", "--spec-dir", "/d", "--json-spec"];
    let kit = listen(&flags);
    let memvol = memvol::cli::Args::try_parse_from(["memvol"].iter().chain(&flags)).unwrap();
    assert_eq!(memvol.listen, kit);
    assert_eq!(memvol.name, "memvol");
    let ipam = simple_ipam::cli::Args::try_parse_from(
        ["simple-ipam", "--pool", "10.1.0.0/16"]
            .iter()
            .chain(&flags),
    )
    .unwrap();
    assert_eq!(ipam.listen, kit);
    assert_eq!(ipam.name, "simple-ipam");
    let e = simple_ipam::cli::Args::try_parse_from(["simple-ipam", "--tcp", "x", "--systemd"])
        .unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
}

#[test]
fn conflicting_flags_are_refused_by_the_parser() {
    let refused = |args: &[&str], kind: clap::error::ErrorKind| {
        let e = parse(args).expect_err("refused");
        assert_eq!(e.kind(), kind, "{args:?}: {e}");
    };
    use clap::error::ErrorKind::{ArgumentConflict, MissingRequiredArgument, ValueValidation};
    refused(
        &["--socket", "/s", "--tcp", "127.0.0.1:0"],
        ArgumentConflict,
    );
    refused(&["--socket", "/s", "--socket-dir", "/d"], ArgumentConflict);
    refused(&["--tcp", "127.0.0.1:0", "--systemd"], ArgumentConflict);
    refused(&["--systemd", "--socket-group", "docker"], ArgumentConflict);
    refused(
        &["--tcp", "127.0.0.1:0", "--socket-mode", "600"],
        ArgumentConflict,
    );
    refused(&["--json-spec"], MissingRequiredArgument);
    refused(
        &["--tcp", "127.0.0.1:0", "--tls-cert", "c"],
        MissingRequiredArgument,
    );
    refused(
        &["--tcp", "127.0.0.1:0", "--tls-client-ca", "c"],
        MissingRequiredArgument,
    );
    refused(
        &["--spec-dir", "/d", "--spec-ca", "ca"],
        MissingRequiredArgument,
    );
    refused(&["--socket-mode", "rw"], ValueValidation);
    refused(&["--socket-mode", "10000"], ValueValidation);
}

// ---------------------------------------------------------------------------
// Unix sockets
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_socket_by_name_in_a_directory_is_served_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let sockets = dir.path().join("plugins");
    let bound = listen(&["--socket-dir", sockets.to_str().unwrap()])
        .bind("named")
        .unwrap();
    let sock = sockets.join("named.sock");
    assert_eq!(
        bound.listeners()[0].local_addr().unwrap(),
        ListenAddr::Unix(Some(sock.clone()))
    );
    assert_eq!(bound.spec_path(), None);
    let serving = Serving::start(bound);
    let m = activate(&format!("unix://{}", sock.display()), None)
        .await
        .unwrap();
    assert_eq!(m.implements, ["VolumeDriver"]);
    serving.stop().await;
    assert!(!sock.exists(), "the socket is removed on shutdown");
}

/// A group the socket can be given: as root, one that is not ours (so the
/// change shows); otherwise our own, the only kind we may give.
fn some_group() -> (String, u32) {
    // SAFETY: plain getters.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid == 0 {
        let groups = std::fs::read_to_string("/etc/group").unwrap();
        for line in groups.lines() {
            let mut f = line.split(':');
            if let (Some(name), Some(gid)) = (f.next(), f.nth(1))
                && let Ok(gid) = gid.parse::<u32>()
                && gid != egid
            {
                return (name.to_owned(), gid);
            }
        }
    }
    (egid.to_string(), egid)
}

#[tokio::test]
async fn the_socket_is_given_its_group_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let (group, gid) = some_group();
    let sock = dir.path().join("g.sock");
    let bound = listen(&[
        "--socket",
        sock.to_str().unwrap(),
        "--socket-group",
        &group,
        "--socket-mode",
        "640",
    ])
    .bind("g")
    .unwrap();
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(meta.gid(), gid, "group {group}");
    // Served as usual, and removed although its owner changed.
    let serving = Serving::start(bound);
    activate(&format!("unix://{}", sock.display()), None)
        .await
        .unwrap();
    serving.stop().await;
    assert!(!sock.exists());

    // A group alone means 0660, as Docker's plugin helpers make it.
    let sock = dir.path().join("h.sock");
    let _bound = listen(&["--socket", sock.to_str().unwrap(), "--socket-group", &group])
        .bind("h")
        .unwrap();
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    assert_eq!(meta.gid(), gid);
    // A mode alone leaves the group.
    let sock = dir.path().join("m.sock");
    let _bound = listen(&["--socket", sock.to_str().unwrap(), "--socket-mode", "600"])
        .bind("m")
        .unwrap();
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    // SAFETY: plain getter.
    assert_eq!(meta.gid(), unsafe { libc::getegid() });
}

#[test]
fn bad_settings_bind_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = plugin_tests::certs::TestPki::new(dir.path());
    // Binding would create this directory for the socket.
    let run = dir.path().join("run");
    let sock = run.join("p.sock");
    let sock = sock.to_str().unwrap();
    let e = listen(&[
        "--socket",
        sock,
        "--socket-group",
        "no-such-group-for-plugins",
    ])
    .bind("p")
    .unwrap_err();
    assert!(matches!(e, ServeError::UnknownGroup(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "socket group \"no-such-group-for-plugins\": no such group"
    );
    // TLS over a unix socket: Docker never speaks it there.
    let (cert, key) = (
        pki.server_cert.to_str().unwrap(),
        pki.server_key.to_str().unwrap(),
    );
    let e = listen(&["--socket", sock, "--tls-cert", cert, "--tls-key", key])
        .bind("p")
        .unwrap_err();
    assert!(matches!(e, ServeError::ListenConfig(_)), "{e}");
    assert!(e.to_string().contains("tcp only"), "{e}");
    // Unreadable TLS material fails before anything is bound.
    let empty = pki.empty_file.to_str().unwrap();
    let e = listen(&[
        "--tcp",
        "127.0.0.1:0",
        "--spec-dir",
        run.to_str().unwrap(),
        "--tls-cert",
        empty,
        "--tls-key",
        key,
    ])
    .bind("p")
    .unwrap_err();
    assert!(matches!(e, ServeError::Tls(_)), "{e}");
    // A name that would leave the directory.
    let e = listen(&["--socket-dir", run.to_str().unwrap()])
        .bind("../p")
        .unwrap_err();
    assert!(matches!(e, ServeError::InvalidName(_)), "{e}");
    assert!(!run.exists(), "nothing was created");
}

// ---------------------------------------------------------------------------
// tcp, spec files, TLS
// ---------------------------------------------------------------------------

fn tcp_port(bound: &Bound) -> u16 {
    match bound.listeners()[0].local_addr().unwrap() {
        ListenAddr::Tcp(a) => a.port(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tcp_with_a_spec_file_written_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs");
    let bound = listen(&[
        "--tcp",
        "127.0.0.1:0",
        "--spec-dir",
        specs.to_str().unwrap(),
    ])
    .bind("tcpplug")
    .unwrap();
    let spec = specs.join("tcpplug.spec");
    assert_eq!(bound.spec_path(), Some(spec.clone()));
    assert!(!spec.exists(), "written when serving starts");
    let port = tcp_port(&bound);
    let serving = Serving::start(bound);
    wait_for(&spec).await;
    let text = std::fs::read_to_string(&spec).unwrap();
    assert_eq!(text, format!("tcp://127.0.0.1:{port}\n"));
    let m = activate(text.trim_end(), None).await.unwrap();
    assert_eq!(m.implements, ["VolumeDriver"]);
    serving.stop().await;
    assert!(!spec.exists(), "removed on shutdown");
}

#[tokio::test]
async fn tcp_with_a_json_spec_written_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs");
    let bound = listen(&[
        "--tcp",
        "127.0.0.1:0",
        "--spec-dir",
        specs.to_str().unwrap(),
        "--json-spec",
    ])
    .bind("jsonplug")
    .unwrap();
    let port = tcp_port(&bound);
    let spec = specs.join("jsonplug.json");
    let serving = Serving::start(bound);
    wait_for(&spec).await;
    let parsed = plugin_proto::parse_json_spec(&std::fs::read(&spec).unwrap()).unwrap();
    assert_eq!(parsed.address.as_str(), format!("tcp://127.0.0.1:{port}"));
    assert_eq!(parsed.implements, Some(vec!["VolumeDriver".to_owned()]));
    assert_eq!(parsed.tls, None);
    activate(parsed.address.as_str(), None).await.unwrap();
    serving.stop().await;
    assert!(!spec.exists(), "removed on shutdown");
}

#[tokio::test]
async fn tls_from_pem_files_with_the_engine_s_settings_in_the_json_spec() {
    let dir = tempfile::tempdir().unwrap();
    let pki = plugin_tests::certs::TestPki::new(dir.path());
    let specs: PathBuf = dir.path().join("specs");
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let (cert, key, ca) = (p(&pki.server_cert), p(&pki.server_key), p(&pki.ca_cert));
    let (ccert, ckey) = (p(&pki.client_cert), p(&pki.client_key));
    let bound = listen(&[
        "--tcp",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
        "--spec-dir",
        specs.to_str().unwrap(),
        "--json-spec",
        "--spec-ca",
        &ca,
        "--spec-client-cert",
        &ccert,
        "--spec-client-key",
        &ckey,
    ])
    .bind("tlsplug")
    .unwrap();
    let spec = specs.join("tlsplug.json");
    let serving = Serving::start(bound);
    wait_for(&spec).await;
    let parsed = plugin_proto::parse_json_spec(&std::fs::read(&spec).unwrap()).unwrap();
    assert!(parsed.address.as_str().starts_with("https://127.0.0.1:"));
    let tls = parsed.tls.clone().expect("TLSConfig");
    assert_eq!(tls.ca_file.as_deref(), Some(pki.ca_cert.as_path()));
    assert_eq!(tls.cert_file.as_deref(), Some(pki.client_cert.as_path()));
    assert_eq!(tls.key_file.as_deref(), Some(pki.client_key.as_path()));
    assert!(!tls.insecure_skip_verify);
    // The engine reaches it with what the spec says…
    let m = activate(parsed.address.as_str(), Some(&tls)).await.unwrap();
    assert_eq!(m.implements, ["VolumeDriver"]);
    // …and not without a client certificate (--tls-client-ca).
    let e = activate(
        parsed.address.as_str(),
        Some(&TlsOptions::with_ca_file(&pki.ca_cert)),
    )
    .await
    .unwrap_err();
    assert!(e.is_tls() || e.is_connect(), "{e}");
    serving.stop().await;
    assert!(!spec.exists());
}
