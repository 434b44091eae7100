//! `plugctl demo`: the whole system on a bare machine, in about a second.
//!
//! A temporary plugin tree gets the memvol example plugin (in-process, on
//! a unix socket), a stale socket and a broken spec; then `ls --probe`,
//! `inspect memvol`, volume calls through the typed proxy and `doctor` run
//! against it. Every step checks what it should see; the demo exits 0 when
//! all did, and always stops memvol and removes the tree.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memvol::MemVol;
use plugin_registry::discovery::LocalRegistry;
use plugin_registry::proto::kinds::VOLUME_DRIVER;
use plugin_registry::{Policy, Registry, VolumeDriver};
use plugin_server::{Listener, Server};
use tokio::sync::oneshot;

use crate::Exit;
use crate::probe::Ctx;
use crate::{doctor, inspect, ls};

/// A demo step that did not behave as expected.
type Outcome = Result<(), String>;

const STEPS: usize = 6;

/// Runs the demo with the caller's deadline.
pub(crate) async fn run(base: &Ctx, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Exit> {
    let started = Instant::now();
    let dir = match tempfile::Builder::new()
        .prefix("plugctl-demo-")
        .tempdir_in(short_temp_dir())
    {
        Ok(dir) => dir,
        Err(e) => {
            writeln!(err, "demo: creating a temporary directory: {e}")?;
            return Ok(Exit::Problem);
        }
    };
    let root = dir.path().to_path_buf();
    writeln!(
        out,
        "plugctl demo: a temporary plugin tree in {}",
        root.display()
    )?;
    writeln!(
        out,
        "  (socket dir run/, spec dirs etc/ then lib/; nothing outside it is touched)"
    )?;

    let ctx = Ctx {
        local: LocalRegistry::with_dirs(root.join("run"), [root.join("etc"), root.join("lib")]),
        json: false,
        pretty: false,
        timeout: base.timeout,
        progress: false,
    };

    step(
        out,
        1,
        "start memvol (the example volume plugin) on run/memvol.sock, and plant a \
                  stale socket run/stale.sock and a broken spec etc/broken.spec",
    )?;
    let (stop, serving) = match start(&root) {
        Ok(started) => started,
        Err(e) => {
            writeln!(err, "demo: {e}")?;
            return Ok(Exit::Problem);
        }
    };
    writeln!(
        out,
        "  memvol is serving; run/stale.sock has no listener; etc/broken.spec \
                   holds `127.0.0.1:8080` (no scheme)"
    )?;

    let outcome = steps(&ctx, out, &root).await;

    step(
        out,
        6,
        "stop memvol (it removes its own socket) and remove the temporary tree",
    )?;
    let _ = stop.send(());
    let stopped = match tokio::time::timeout(Duration::from_secs(5), serving).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("memvol stopped with an error: {e}")),
        Ok(Err(e)) => Err(format!("memvol's task failed: {e}")),
        Err(_) => Err("memvol did not stop within 5s".to_owned()),
    };
    let socket = root.join("run/memvol.sock");
    let stopped = stopped.and_then(|()| {
        if socket.exists() {
            Err(format!("memvol left {} behind", socket.display()))
        } else {
            Ok(())
        }
    });
    if stopped.is_ok() {
        writeln!(out, "  memvol stopped; run/memvol.sock is gone")?;
    }
    let removed = dir
        .close()
        .map_err(|e| format!("removing {}: {e}", root.display()));
    if removed.is_ok() {
        writeln!(out, "  removed {}", root.display())?;
    }

    match outcome.and(stopped).and(removed) {
        Ok(()) => {
            writeln!(
                out,
                "\ndemo finished in {:.2}s: every step behaved as expected",
                started.elapsed().as_secs_f64()
            )?;
            Ok(Exit::Ok)
        }
        Err(e) => {
            writeln!(err, "demo: unexpected: {e}")?;
            Ok(Exit::Problem)
        }
    }
}

/// Where the tree goes: `/tmp` when it exists, so socket paths stay well
/// under the 108-byte limit whatever `TMPDIR` is.
fn short_temp_dir() -> PathBuf {
    let tmp = Path::new("/tmp");
    if tmp.is_dir() {
        tmp.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn step(out: &mut dyn Write, n: usize, text: &str) -> io::Result<()> {
    writeln!(out, "\n[{n}/{STEPS}] {text}")
}

type Serving = tokio::task::JoinHandle<Result<(), plugin_server::ServeError>>;

/// Creates the tree, starts memvol and plants the two problems.
fn start(root: &Path) -> Result<(oneshot::Sender<()>, Serving), String> {
    for sub in ["run", "etc", "lib"] {
        let dir = root.join(sub);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let socket = root.join("run/memvol.sock");
    let listener = Listener::unix(&socket).map_err(|e| e.to_string())?;
    let plugin = MemVol::new(root.join("volumes"))
        .plugin()
        .map_err(|e| e.to_string())?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::new(plugin)
        .handle_signals(false)
        .shutdown_timeout(Duration::from_millis(500))
        .shutdown_on(async move {
            let _ = stopped.await;
        });
    let serving = tokio::spawn(server.serve(listener));

    let stale = root.join("run/stale.sock");
    drop(
        std::os::unix::net::UnixListener::bind(&stale)
            .map_err(|e| format!("binding {}: {e}", stale.display()))?,
    );
    let broken = root.join("etc/broken.spec");
    fs::write(&broken, "127.0.0.1:8080\n")
        .map_err(|e| format!("writing {}: {e}", broken.display()))?;
    Ok((stop, serving))
}

/// Steps 2 to 5; the first deviation ends them.
async fn steps(ctx: &Ctx, out: &mut dyn Write, root: &Path) -> Outcome {
    let w = |e: io::Error| format!("writing the output: {e}");

    step(
        out,
        2,
        "plugctl ls --probe: every name discovered, activated in parallel; the \
                  stale socket is refused at once, the broken spec fails to resolve",
    )
    .map_err(w)?;
    let rows = ls::collect(ctx, true, None).await?;
    ls::render(ctx, out, &rows, true).map_err(w)?;
    let state = |name: &str| rows.iter().find(|r| r.name == name).and_then(|r| r.state);
    expect(state("memvol") == Some("ok"), "memvol should activate")?;
    expect(
        state("stale") == Some("refused"),
        "stale.sock should be refused",
    )?;
    expect(state("broken") == Some("error"), "broken.spec should fail")?;

    step(
        out,
        3,
        "plugctl inspect memvol: the candidate paths in Docker's order, the \
                  winner, its address, TLS mode and manifest",
    )
    .map_err(w)?;
    let report = inspect::collect(ctx, "memvol").await;
    inspect::render(ctx, out, &report).map_err(w)?;
    expect(report.state == Some("ok"), "memvol should activate")?;

    step(
        out,
        4,
        "volume calls through the registry and the typed VolumeDriver proxy, as \
                  an engine makes them",
    )
    .map_err(w)?;
    volumes(ctx, out, root).await?;

    step(
        out,
        5,
        "plugctl doctor: finds the two planted problems (its own exit status \
                  would be 1 here, as expected)",
    )
    .map_err(w)?;
    let report = doctor::collect(ctx).await;
    doctor::render(ctx, out, &report).map_err(w)?;
    let mut found: Vec<(&str, &str)> = report
        .problems
        .iter()
        .map(|p| (p.kind, p.name.as_deref().unwrap_or("")))
        .collect();
    found.sort();
    expect(
        found == [("stale_socket", "stale"), ("unparsable_spec", "broken")],
        "doctor should find exactly the stale socket and the broken spec",
    )
}

async fn volumes(ctx: &Ctx, out: &mut dyn Write, root: &Path) -> Outcome {
    let registry = Registry::new(ctx.local.clone(), Policy::default());
    let t = ctx.timeout;
    let plugin = within(t, registry.get("memvol", VOLUME_DRIVER)).await?;
    let driver = VolumeDriver::new(&plugin).map_err(|e| e.to_string())?;
    let mut say = |line: String| writeln!(out, "  {line}").map_err(|e| e.to_string());

    let opts = BTreeMap::from([("size".to_owned(), "1g".to_owned())]);
    within(t, driver.create("demo-vol", Some(opts))).await?;
    say("VolumeDriver.Create demo-vol (size=1g): ok".to_owned())?;

    let names: Vec<String> = within(t, driver.list())
        .await?
        .into_iter()
        .map(|v| v.name)
        .collect();
    say(format!("VolumeDriver.List: {}", names.join(", ")))?;
    expect(names == ["demo-vol"], "the list should hold demo-vol")?;

    let volume = within(t, driver.get("demo-vol"))
        .await?
        .ok_or("VolumeDriver.Get returned no volume")?;
    say(format!(
        "VolumeDriver.Get demo-vol: mountpoint {}, created {}",
        volume.mountpoint, volume.created_at
    ))?;
    expect(
        Path::new(&volume.mountpoint) == root.join("volumes/demo-vol"),
        "the mountpoint should be under the tree",
    )?;

    within(t, driver.remove("demo-vol")).await?;
    say("VolumeDriver.Remove demo-vol: ok".to_owned())?;
    let left = within(t, driver.list()).await?;
    say(format!(
        "VolumeDriver.List: {}",
        if left.is_empty() {
            "no volumes"
        } else {
            "volumes left!"
        }
    ))?;
    expect(left.is_empty(), "no volume should be left")?;

    match within(t, driver.get("demo-vol")).await {
        Err(e) => say(format!(
            "VolumeDriver.Get demo-vol again: error, as expected: {e}"
        )),
        Ok(_) => Err("getting a removed volume should fail".to_owned()),
    }
}

/// Awaits `f` under the deadline, with errors as text.
async fn within<T, E: std::fmt::Display>(
    limit: Duration,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

fn expect(ok: bool, what: &str) -> Outcome {
    if ok { Ok(()) } else { Err(what.to_owned()) }
}
