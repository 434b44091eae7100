//! Guards for the real peers: a private, isolated `dockerd`, an `rclone
//! serve docker` volume plugin and a private podman. Every guard cleans up
//! in `Drop`, so a failing test leaves nothing behind. Nothing here ever
//! writes in the host's plugin directories: dockerd gets private ones
//! inside a mount namespace of its own (see [`Isolation`]).

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use plugin_tests::tree::short_tempdir;

/// The plugin directories dockerd always reads (sockets, then specs): in
/// its namespace they are the test's, on the host they must stay as they
/// are ([`assert_host_plugin_dirs_untouched`]).
const HOST_PLUGIN_DIRS: [&str; 3] = [
    "/run/docker/plugins",
    "/etc/docker/plugins",
    "/usr/lib/docker/plugins",
];

/// Whether we run under CI, where a missing peer is a failure.
pub(crate) fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds `bin` in `PATH` and the usual sbin directories (`dockerd` lives in
/// `/usr/sbin`, which a non-root `PATH` may lack).
fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// The peers a test needs, or `None` (after printing a skip note) when one
/// is missing outside CI. Under CI (`CI=true`) a missing peer, or not being
/// root when dockerd is needed, fails the test: the interop suite must never
/// be skipped silently.
pub(crate) fn require(test: &str, bins: &[&str]) -> Option<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for bin in bins {
        match which(bin) {
            Some(p) => found.push(p),
            None => missing.push(*bin),
        }
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let why = if !missing.is_empty() {
        format!("{} not installed", missing.join(", "))
    } else if !root && bins.contains(&"dockerd") {
        "dockerd needs root".to_owned()
    } else {
        return Some(found);
    };
    assert!(
        !under_ci(),
        "{test}: {why}, and CI=true: the interop suite must not be skipped \
         (.ci/run installs docker.io, rclone and podman)"
    );
    eprintln!("SKIP {test}: {why} (install docker.io, rclone and podman to run it)");
    None
}

/// What every [`unique_name`] of this process starts with.
fn name_prefix() -> String {
    format!("pt{}", std::process::id())
}

/// A plugin name no other test process uses: `pt<pid><tag>`.
pub(crate) fn unique_name(tag: &str) -> String {
    format!("{}{tag}", name_prefix())
}

/// Asserts that the host's plugin directories hold nothing named by this
/// process ([`unique_name`]): whatever a test serves or writes for its
/// dockerd lives in private directories only. Other processes (another
/// test run, the host's own dockerd) may change these directories
/// meanwhile, so only our own names are looked for.
pub(crate) fn assert_host_plugin_dirs_untouched() {
    let prefix = name_prefix();
    let ours: Vec<PathBuf> = HOST_PLUGIN_DIRS
        .iter()
        .filter_map(|d| fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    assert!(
        ours.is_empty(),
        "a test of this process wrote in the host's plugin directories: {ours:?}"
    );
}

/// A free loopback tcp port (bound, then released for the peer to take).
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Polls `ready` every 20 ms until it holds or `timeout` passes.
fn poll(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if ready() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a blocking command on tokio's blocking pool, so fake plugins served
/// by the test's own runtime keep answering meanwhile.
pub(crate) async fn run(mut cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("blocking task")
        .unwrap_or_else(|e| panic!("run {what}: {e}"))
}

/// The stdout of `program args`, after asserting it succeeded; a failure
/// shows both outputs and `context`.
fn success_stdout<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    out: &Output,
    context: &str,
) -> String {
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    assert!(
        out.status.success(),
        "{program} {} failed ({}):\nstdout: {}\nstderr: {}\n{context}",
        shown.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// dockerd
// ---------------------------------------------------------------------------

/// A private dockerd: its own data-root, exec-root, pidfile, key file and
/// API socket under a temporary directory; no networking; its own plugin
/// directories in a mount namespace of its own ([`Isolation`]). It is
/// always started isolated: a dockerd reading the host's plugin
/// directories would see other processes' plugins (another test run's
/// volumes, a stale socket it retries for 15 s) beside the test's.
///
/// Dropping it stops it (SIGTERM; once it logs `Daemon shutdown complete`
/// the process only lingers for grpc reconnect timeouts, so it is then
/// killed), makes sure its data-root bind mount is gone, removes the
/// directory and (unless the test is already failing) asserts
/// [`assert_host_plugin_dirs_untouched`].
pub(crate) struct Dockerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

/// How a [`Dockerd`] is kept apart from the host, beyond its private
/// directories: it runs in a mount namespace of its own (`unshare -m`,
/// private propagation) where `/run/docker` and `/etc/docker` are empty
/// tmpfs mounts holding only `plugins`, bound to `socket_dir` and
/// `spec_dir`, and `/usr/lib/docker/plugins` (if the host has it) is an
/// empty tmpfs. So it sees only the plugins the test serves, and nothing
/// the test does shows in the host's directories: the mounts vanish with
/// the namespace, and no mount point is made on the host (the host's
/// `/run/docker` and `/etc/docker` are made only if missing, see
/// [`ISOLATION_PARENTS`]).
#[derive(Debug)]
pub(crate) struct Isolation<'a> {
    /// What dockerd sees as `/run/docker/plugins`.
    pub(crate) socket_dir: &'a Path,
    /// What dockerd sees as `/etc/docker/plugins`; `None` is an empty
    /// directory of the daemon's own.
    pub(crate) spec_dir: Option<&'a Path>,
    /// A network namespace of its own too (`unshare -n`): only `lo`, up,
    /// plus `routes`. Needed for `-d bridge`, and for routes of its own.
    pub(crate) netns: bool,
    /// Destinations routed through `lo` in that namespace (`192.0.2.0/24`):
    /// dockerd's host routes, as its overlap check sees them.
    pub(crate) routes: &'a [&'a str],
    /// `--authorization-plugin` names, in order.
    pub(crate) authz: &'a [&'a str],
}

impl Isolation<'_> {
    /// Only the plugins in `socket_dir`; no spec files, no network
    /// namespace, no authorization plugin.
    pub(crate) fn sockets(socket_dir: &Path) -> Isolation<'_> {
        Isolation {
            socket_dir,
            spec_dir: None,
            netns: false,
            routes: &[],
            authz: &[],
        }
    }
}

/// Run by `sh -c` between `unshare` and dockerd: the mounts and routes of
/// [`Isolation`], then `exec dockerd "$@"` (so dockerd keeps the pid the
/// test spawned). The `plugins` mount points are made inside a tmpfs over
/// their parent, so the host's directories are neither needed nor
/// touched. Failing any step fails the start.
const ISOLATE: &str = r#"set -e
over() {
  mount -t tmpfs tmpfs "$(dirname "$2")"
  mkdir "$2"
  mount --bind "$1" "$2"
}
over "$SOCKET_DIR" /run/docker/plugins
over "$SPEC_DIR" /etc/docker/plugins
if [ -d /usr/lib/docker/plugins ]; then mount -t tmpfs tmpfs /usr/lib/docker/plugins; fi
if [ -n "$NETNS" ]; then
  ip link set lo up
  for r in $ROUTES; do ip route add "$r" dev lo; done
fi
exec "$@"
"#;

/// The host directories [`ISOLATE`] mounts over. Made if missing (as
/// installing or starting Docker makes them) and never removed: removing a
/// directory another run's namespace has mounts on would detach them.
const ISOLATION_PARENTS: [&str; 2] = ["/run/docker", "/etc/docker"];

impl Dockerd {
    /// Starts dockerd in namespaces of its own (see [`Isolation`]) and
    /// waits until `GET /_ping` answers `OK`. Needs `unshare` and, with
    /// `netns`, `ip`.
    pub(crate) fn start_isolated(dockerd: &Path, iso: &Isolation<'_>) -> Dockerd {
        let dir = short_tempdir("dk");
        let d = dir.path();
        for sub in ["data", "exec", "cli", "specs"] {
            fs::create_dir(d.join(sub)).expect("mkdir");
        }
        let config = d.join("daemon.json");
        fs::write(
            &config,
            serde_json::json!({ "deprecated-key-path": d.join("key.json") }).to_string(),
        )
        .expect("write daemon.json");
        let socket = d.join("api.sock");
        let log = fs::File::create(d.join("dockerd.log")).expect("create dockerd.log");
        for parent in ISOLATION_PARENTS {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {parent}: {e}"));
        }
        let own_specs = d.join("specs");
        let mut cmd = Command::new(which("unshare").unwrap_or_else(|| "unshare".into()));
        cmd.arg(if iso.netns { "-mn" } else { "-m" })
            .args(["--propagation", "private", "sh", "-c", ISOLATE, "sh"])
            .arg(dockerd)
            .env("SOCKET_DIR", iso.socket_dir)
            .env("SPEC_DIR", iso.spec_dir.unwrap_or(&own_specs))
            .env("NETNS", if iso.netns { "1" } else { "" })
            .env("ROUTES", iso.routes.join(" "));
        for name in iso.authz {
            cmd.arg(format!("--authorization-plugin={name}"));
        }
        cmd.args([
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
            "--storage-driver=vfs",
        ])
        .arg("--data-root")
        .arg(d.join("data"))
        .arg("--exec-root")
        .arg(d.join("exec"))
        .arg("--pidfile")
        .arg(d.join("dockerd.pid"))
        .arg("--config-file")
        .arg(&config)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", dockerd.display()));
        let mut daemon = Dockerd {
            child: Some(child),
            dir,
            socket,
        };
        let ready = poll(Duration::from_secs(20), || daemon.ping() || daemon.exited());
        assert!(
            ready && !daemon.exited(),
            "dockerd did not become ready; log tail:\n{}",
            daemon.log_tail()
        );
        daemon
    }

    /// dockerd's process id (for `/proc/<pid>/net/route` and the like).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")
    }

    /// `unix://<api socket>`, for `DOCKER_HOST`.
    pub(crate) fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The last 40 lines of dockerd's log.
    pub(crate) fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The docker CLI pointed at this daemon (and at a private CLI config
    /// directory), ready to run.
    pub(crate) fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(which("docker").unwrap_or_else(|| "docker".into()));
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `docker <args>` against this daemon.
    pub(crate) async fn docker<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        run(self.command(args)).await
    }

    /// Runs `docker <args>`, asserts success and returns stdout.
    pub(crate) async fn docker_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let out = self.docker(args).await;
        let log = format!("dockerd log tail:\n{}", self.log_tail());
        success_stdout("docker", args, &out, &log)
    }

    /// The daemon's `dockerd --version` line, as the API reports it
    /// (`Docker version 20.10.24+dfsg1, build 5d6db84`).
    pub(crate) async fn version(&self) -> String {
        let v = self
            .docker_ok(&[
                "version",
                "--format",
                "Docker version {{.Server.Version}}, build {{.Server.GitCommit}}",
            ])
            .await;
        v.trim().to_owned()
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: `pid` is our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let log = self.dir.path().join("dockerd.log");
        poll(Duration::from_secs(10), || {
            child.try_wait().ok().flatten().is_some()
                || fs::read_to_string(&log).is_ok_and(|l| l.contains("Daemon shutdown complete"))
        });
        let _ = child.kill();
        let _ = child.wait();
        // dockerd bind-mounts its data-root onto itself; a clean shutdown
        // unmounts it, a killed daemon leaves it (and the directory
        // cannot be removed).
        let data = self.dir.path().join("data");
        if is_mount_point(&data) {
            use std::os::unix::ffi::OsStrExt;
            let c = std::ffi::CString::new(data.as_os_str().as_bytes()).expect("no NUL");
            // SAFETY: `c` is a valid NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn is_mount_point(path: &Path) -> bool {
    let p = path.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(&*p)))
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
        // A second panic while unwinding would abort the whole run.
        if !std::thread::panicking() {
            assert_host_plugin_dirs_untouched();
        }
    }
}

// ---------------------------------------------------------------------------
// rclone
// ---------------------------------------------------------------------------

/// Where an [`Rclone`] listens.
pub(crate) enum Listen {
    /// A unix socket at this path.
    Unix(PathBuf),
    /// Loopback tcp on this port (`--no-spec`: the test writes any spec).
    Tcp(u16),
}

/// `rclone serve docker` with a private base, cache and (empty) config, so
/// it reads and writes nothing of the host's. Dropping it sends SIGTERM
/// (rclone then removes its socket), waits, and kills it if needed.
pub(crate) struct Rclone {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Rclone {
    /// Starts rclone and waits until its socket accepts connections.
    pub(crate) fn start(rclone: &Path, listen: Listen) -> Rclone {
        let dir = short_tempdir("rc");
        let d = dir.path();
        let config = d.join("rclone.conf");
        fs::write(&config, "").expect("write rclone.conf");
        let log = fs::File::create(d.join("rclone.log")).expect("create rclone.log");
        let mut cmd = Command::new(rclone);
        cmd.args(["serve", "docker", "--socket-addr"]);
        match &listen {
            Listen::Unix(p) => cmd.arg(p),
            Listen::Tcp(port) => cmd.arg(format!("127.0.0.1:{port}")).arg("--no-spec"),
        };
        cmd.arg("--base-dir")
            .arg(d.join("base"))
            .arg("--cache-dir")
            .arg(d.join("cache"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", rclone.display()));
        let mut guard = Rclone {
            child: Some(child),
            dir,
        };
        let ready = poll(Duration::from_secs(10), || {
            let up = match &listen {
                Listen::Unix(p) => UnixStream::connect(p).is_ok(),
                Listen::Tcp(port) => std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok(),
            };
            up || guard.exited()
        });
        assert!(
            ready && !guard.exited(),
            "rclone did not start listening; log:\n{}",
            guard.log()
        );
        guard
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// rclone's volume base directory (mountpoints are `<base>/<volume>`).
    pub(crate) fn base_dir(&self) -> PathBuf {
        self.dir.path().join("base")
    }

    /// rclone's log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("rclone.log")).unwrap_or_default()
    }
}

impl Drop for Rclone {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: our own child, not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            poll(Duration::from_secs(5), || {
                child.try_wait().ok().flatten().is_some()
            });
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// podman
// ---------------------------------------------------------------------------

/// podman with everything of its own under a private directory: storage
/// (`--root`, `--runroot`, vfs), its `containers.conf` (cgroupfs, file
/// events and file locks, so nothing lands in journald or `/dev/shm`), its
/// database, temporary and volume directories, and the volume plugins it
/// knows (`[engine.volume_plugins]`: podman does no discovery). podman
/// needs no daemon: every command is a short-lived process.
///
/// Dropping it kills any process still running from its directory (none
/// should: [`Podman::leftovers`] lets a test assert that) and removes the
/// directory.
pub(crate) struct Podman {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Whether podman's default shared-memory lock file existed before.
    shm_lock_existed: bool,
}

/// Where podman keeps its locks by default (`lock_type = "shm"`).
const PODMAN_SHM_LOCK: &str = "/dev/shm/libpod_lock";

impl Podman {
    /// A podman knowing volume plugin `name` at unix socket `socket`.
    pub(crate) fn new(bin: &Path, plugins: &[(&str, &Path)]) -> Podman {
        let dir = short_tempdir("pm");
        let d = dir.path();
        let mut conf = format!(
            "[engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             events_logfile_path = \"{d}/events.log\"\n\
             lock_type = \"file\"\n\
             tmp_dir = \"{d}/tmp\"\n\
             static_dir = \"{d}/static\"\n\
             volume_path = \"{d}/volumes\"\n\
             \n[engine.volume_plugins]\n",
            d = d.display()
        );
        for (name, socket) in plugins {
            conf.push_str(&format!("{name} = \"{}\"\n", socket.display()));
        }
        fs::write(d.join("containers.conf"), conf).expect("write containers.conf");
        fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/run\"\n",
                d = d.display()
            ),
        )
        .expect("write storage.conf");
        fs::create_dir(d.join("home")).expect("mkdir home");
        Podman {
            bin: bin.to_path_buf(),
            dir,
            shm_lock_existed: Path::new(PODMAN_SHM_LOCK).exists(),
        }
    }

    /// The podman CLI on this private setup, ready to run.
    pub(crate) fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("HOME", d.join("home"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `podman <args>`.
    pub(crate) async fn podman<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        run(self.command(args)).await
    }

    /// Runs `podman <args>`, asserts success and returns stdout.
    pub(crate) async fn podman_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let out = self.podman(args).await;
        success_stdout("podman", args, &out, "")
    }

    /// `podman version`'s client version (`4.3.1`).
    pub(crate) async fn version(&self) -> String {
        let v = self
            .podman_ok(&["version", "--format", "{{.Client.Version}}"])
            .await;
        v.trim().to_owned()
    }

    /// What podman left outside its commands: processes still running
    /// with this setup's directory in their command line (a conmon or a
    /// service would be), mounts under it, and a shared-memory lock file.
    pub(crate) fn leftovers(&self) -> Vec<String> {
        let d = self.dir.path().to_string_lossy().into_owned();
        let mut found: Vec<String> = processes_mentioning(&d)
            .into_iter()
            .map(|(pid, cmdline)| format!("process {pid}: {cmdline}"))
            .collect();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        found.extend(
            mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| m.starts_with(&d))
                .map(|m| format!("mount {m}")),
        );
        if !self.shm_lock_existed && Path::new(PODMAN_SHM_LOCK).exists() {
            found.push(PODMAN_SHM_LOCK.to_owned());
        }
        found
    }
}

/// `(pid, command line)` of every process whose command line contains
/// `needle`, except this one.
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            cmdline.contains(needle).then_some((pid, cmdline))
        })
        .collect()
}

impl Drop for Podman {
    fn drop(&mut self) {
        let d = self.dir.path().to_string_lossy().into_owned();
        for (pid, _) in processes_mentioning(&d) {
            // SAFETY: plain kill(2); the process runs from our directory.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for m in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
            if m.starts_with(&d)
                && let Ok(c) = std::ffi::CString::new(m)
            {
                // SAFETY: `c` is a valid NUL-terminated path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}
