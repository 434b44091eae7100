//! Our example volume plugin, `memvol`, served in-process with
//! plugin-server exactly as the `memvol` binary serves it (the binary is
//! `memvol::cli::run`, which also stops on SIGTERM; in a test process the
//! shutdown comes from a channel instead).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memvol::MemVol;
use plugin_server::{ListenAddr, Listener, ServeError, Server, SpecFile};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How memvol is reached.
pub(crate) enum Serve<'a> {
    /// `--socket PATH`.
    Unix(&'a Path),
    /// `--tcp 127.0.0.1:0 --spec-dir DIR [--json-spec]`, as plugin `name`.
    Tcp {
        spec_dir: &'a Path,
        name: &'a str,
        json: bool,
    },
}

/// A running memvol. [`Memvol::stop`] shuts it down and reports how
/// serving ended; dropping it only asks it to stop.
pub(crate) struct Memvol {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    root: tempfile::TempDir,
    addr: ListenAddr,
    spec: Option<PathBuf>,
}

impl Memvol {
    /// Starts serving; for tcp, returns once the spec file is written.
    pub(crate) async fn start(how: Serve<'_>) -> Memvol {
        let root = plugin_tests::tree::short_tempdir("mv");
        let plugin = MemVol::new(root.path()).plugin().expect("build memvol");
        let (stop, stopped) = oneshot::channel::<()>();
        let mut server = Server::new(plugin)
            .handle_signals(false)
            .shutdown_timeout(Duration::from_secs(2))
            .shutdown_on(async {
                let _ = stopped.await;
            });
        let (listener, spec) = match how {
            Serve::Unix(path) => (Listener::unix(path).expect("memvol: listen"), None),
            Serve::Tcp {
                spec_dir,
                name,
                json,
            } => {
                let spec = if json {
                    SpecFile::json(spec_dir, name)
                } else {
                    SpecFile::spec(spec_dir, name)
                };
                let path = spec.path();
                server = server.spec_file(spec);
                (
                    Listener::tcp("127.0.0.1:0").expect("memvol: listen"),
                    Some(path),
                )
            }
        };
        let addr = listener.local_addr().expect("memvol: local address");
        let task = tokio::spawn(server.serve(listener));
        if let Some(spec) = &spec {
            let start = Instant::now();
            while !spec.exists() {
                assert!(
                    start.elapsed() < Duration::from_secs(5) && !task.is_finished(),
                    "memvol did not write {}",
                    spec.display()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Memvol {
            stop: Some(stop),
            task: Some(task),
            root,
            addr,
            spec,
        }
    }

    /// Where memvol reports mountpoints: `<root>/<volume>`.
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// The spec file it wrote, if any.
    pub(crate) fn spec(&self) -> Option<&Path> {
        self.spec.as_deref()
    }

    /// Shuts memvol down and checks it stopped cleanly: serving returned
    /// `Ok` within a few seconds, and its socket or spec file is gone.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        let ended = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("memvol did not stop within 5 s")
            .expect("memvol task");
        ended.expect("memvol served and stopped without error");
        if let ListenAddr::Unix(Some(path)) = &self.addr {
            assert!(!path.exists(), "memvol left its socket {}", path.display());
        }
        if let Some(spec) = &self.spec {
            assert!(!spec.exists(), "memvol left its spec {}", spec.display());
        }
    }
}

impl Drop for Memvol {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
