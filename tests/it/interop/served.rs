//! Our example plugins (`rule-authz`, `memnet`, `simple-ipam`) served
//! in-process on a unix socket exactly as their binaries serve them, behind
//! a recorder that keeps every call's method, body bytes and reply, in the
//! order they arrived across all the plugins sharing one [`Calls`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use plugin_server::{Listener, Plugin, ServeError, Server};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One call a plugin received.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The plugin's name (its socket's file stem).
    pub(crate) plugin: String,
    /// `Subsystem.Method`.
    pub(crate) method: String,
    /// The body exactly as received.
    pub(crate) body: Bytes,
    /// The reply body, or the plugin error's message.
    pub(crate) reply: Result<Bytes, String>,
}

impl Call {
    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {:?}", self.method, self.body))
    }

    /// The reply as JSON (a plugin error is a panic).
    pub(crate) fn reply_json(&self) -> Value {
        match &self.reply {
            Ok(b) => serde_json::from_slice(b).unwrap(),
            Err(e) => panic!("{} failed: {e}", self.method),
        }
    }
}

/// The calls received by the plugins that share it, in arrival order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Calls(Arc<Mutex<Log>>);

#[derive(Debug, Default)]
struct Log {
    calls: Vec<Call>,
    /// Where the calls not yet [taken](Calls::take) start.
    taken: usize,
}

impl Calls {
    fn push(&self, call: Call) {
        self.0.lock().unwrap().calls.push(call);
    }

    /// The calls since the last `take`.
    pub(crate) fn take(&self) -> Vec<Call> {
        let mut log = self.0.lock().unwrap();
        let new = log.calls[log.taken..].to_vec();
        log.taken = log.calls.len();
        new
    }

    /// Every call so far, taken or not.
    pub(crate) fn all(&self) -> Vec<Call> {
        self.0.lock().unwrap().calls.clone()
    }

    /// How many calls of `method` since the last `take`.
    pub(crate) fn count(&self, method: &str) -> usize {
        let log = self.0.lock().unwrap();
        log.calls[log.taken..]
            .iter()
            .filter(|c| c.method == method)
            .count()
    }
}

/// `inner` behind a recorder: the same manifest and methods, each call
/// logged in `calls` and then dispatched to `inner`.
fn recording(name: &str, inner: Plugin, calls: &Calls) -> Plugin {
    let inner = Arc::new(inner);
    let mut builder = Plugin::builder();
    for kind in &inner.manifest().implements {
        builder = builder.implements(kind.clone());
    }
    for method in inner.methods() {
        let (inner, calls, name, method) = (
            inner.clone(),
            calls.clone(),
            name.to_owned(),
            method.to_owned(),
        );
        builder = builder.raw(&method.clone(), move |body: Bytes| {
            let (inner, calls, name, method) =
                (inner.clone(), calls.clone(), name.clone(), method.clone());
            async move {
                let reply = inner.call(&method, body.clone()).await;
                calls.push(Call {
                    plugin: name,
                    method,
                    body,
                    reply: match &reply {
                        Ok(r) => Ok(r.as_bytes().cloned().unwrap_or_default()),
                        Err(e) => Err(e.message().to_owned()),
                    },
                });
                reply
            }
        });
    }
    builder.build().expect("build the recording plugin")
}

/// A plugin served on `<dir>/<name>.sock` until [`Served::stop`] (or drop).
pub(crate) struct Served {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    socket: PathBuf,
}

impl Served {
    /// Serves `plugin` as `name` in `dir`, recording into `calls`.
    pub(crate) fn start(dir: &Path, name: &str, plugin: Plugin, calls: &Calls) -> Served {
        let socket = dir.join(format!("{name}.sock"));
        let listener = Listener::unix(&socket).expect("listen on the plugin socket");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(recording(name, plugin, calls))
            .handle_signals(false)
            .shutdown_timeout(Duration::from_secs(2))
            .shutdown_on(async {
                let _ = stopped.await;
            });
        Served {
            stop: Some(stop),
            task: Some(tokio::spawn(server.serve(listener))),
            socket,
        }
    }

    /// Stops serving and checks it ended cleanly, its socket removed.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the plugin did not stop within 5 s")
            .expect("plugin task")
            .expect("the plugin served and stopped without error");
        assert!(
            !self.socket.exists(),
            "{} left behind",
            self.socket.display()
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A private directory standing for `/run/docker/plugins` or
/// `/etc/docker/plugins` in an isolated dockerd's namespace (see
/// [`super::harness::Isolation`]).
pub(crate) fn socket_dir() -> tempfile::TempDir {
    plugin_tests::tree::short_tempdir("pd")
}
