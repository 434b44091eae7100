//! `bench-rust <scenario> --tree DIR [--key value …]`: this project's
//! client and registry in one benchmark scenario, one line of JSON out.
//!
//! Scenarios (the same names, arguments and output keys as the Go driver
//! and, where they apply, `bench-raw`):
//!
//! | scenario | does | prints |
//! |---|---|---|
//! | `seq` | `call::<Echo, Echo>` in a loop (`--transport unix\|tcp`, `--size`, `--secs`) | `calls_per_sec`, `cpu_us_per_call` |
//! | `conc` | the same from `--conc` tasks on one client | same |
//! | `missing` | `get` of names that do not exist, `--iters` times | `us_per_get` |
//! | `getall` | `get_all` over 10 live and 1 stale socket, fresh registry, `--iters` | `ms` (median), `plugins` |
//! | `scan` | `scan` of 1,000 sockets + 10,000 specs; 1,000 lookups of `.spec` names (through `DirView`, warm) | `scan_ms`, `lookups_ms`, `names` |
//! | `first-get` | `get` of `--count` fresh names (resolve, dial, activate) | `p50_us`, `p90_us` |
//! | `first-get-parts` | the same without the registry, each step timed (diagnostics) | `*_p50_us` |
//! | `herd` | `--callers` concurrent `get`s of one name | `handshakes`, `ms` |
//! | `idle` | activates 1,000 plugins, measures RSS, idles `--idle-secs` | `rss_*`, `sockets_*` |
//! | `plugin-serve` | the plugin side of P10: `plugin-server` answering `VolumeDriver.Get` on `--socket`, until stdin closes (driven by `bench-raw serve`) | `ready` once listening |
//! | `encode` | no IO: the request encoding and reply decoding of `seq` alone, and plain serde_json's encoding for comparison (diagnostics for P3; no `--tree`) | `*_us` |
//!
//! The runtime is tokio's multi-threaded one (`--runtime current` for the
//! single-threaded one), as an engine would run it.

#![forbid(unsafe_code)]
// Results go to stdout as one JSON line for the xtask.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plugin_bench::{
    Args, BoxError, ECHO_METHOD, Echo, KIND, MANY_SOCKETS, Report, SERVE_MOUNT_PREFIX,
    STATS_METHOD, Tree, cpu_time, many_name, quantile, rate, spec_name,
};
use plugin_registry::client::Client;
use plugin_registry::discovery::{DirView, LocalRegistry};
use plugin_registry::{Policy, Registry};
use plugin_server::volume::{self, VolumeDriver};
use plugin_server::{Listener, Plugin, PluginError, Server};

fn main() -> Result<(), BoxError> {
    let args = Args::from_env()?;
    plugin_bench::raise_nofile();
    if args.scenario() == "plugin-serve" {
        return plugin_serve(&args);
    }
    let rt = plugin_bench::runtime(&args)?;
    // Run on a worker, as an engine's request handlers do: `block_on`
    // alone would poll the scenario on this thread and make every call
    // hop between it and the worker running hyper's connection task.
    let report =
        rt.block_on(async move { tokio::spawn(async move { run(&args).await }).await })??;
    println!("{}", report.to_json());
    Ok(())
}

async fn run(args: &Args) -> Result<Report, BoxError> {
    if args.scenario() == "encode" {
        return encode(args);
    }
    let tree = args.tree()?;
    match args.scenario() {
        "seq" => seq(args, &tree).await,
        "conc" => conc(args, &tree).await,
        "missing" => missing(args, &tree).await,
        "getall" => getall(args, &tree).await,
        "scan" => scan(args, &tree),
        "first-get" => first_get(args, &tree).await,
        "first-get-parts" => first_get_parts(args, &tree).await,
        "herd" => herd(args, &tree).await,
        "idle" => idle(args, &tree).await,
        other => Err(format!("unknown scenario {other:?}").into()),
    }
}

fn registry(tree: &Tree, part: &str) -> Registry {
    let local = LocalRegistry::with_dirs(tree.sockets(part), [tree.specs(part)]);
    Registry::new(local, Policy::default())
}

/// The echo plugin's client, found and activated through the registry as
/// an engine would (`bench` over unix, `bench-tcp` through its spec).
async fn echo_client(args: &Args, tree: &Tree) -> Result<Client, BoxError> {
    let name = match args.str_or("transport", "unix") {
        "unix" => "bench",
        "tcp" => "bench-tcp",
        other => return Err(format!("--transport unix|tcp, not {other:?}").into()),
    };
    let plugin = registry(tree, "main").get(name, KIND).await?;
    Ok(plugin.client().clone())
}

async fn echo(client: &Client, request: &Echo) -> Result<(), BoxError> {
    let reply: Echo = client.call(ECHO_METHOD).args(request).json().await?;
    if reply.name.len() != request.name.len() {
        return Err("echo reply differs from the request".into());
    }
    Ok(())
}

async fn seq(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    let client = echo_client(args, tree).await?;
    let request = Echo::of_size(args.num("size", 50)?);
    let secs = args.secs()?;
    let warmup = Instant::now();
    while warmup.elapsed() < secs / 5 {
        echo(&client, &request).await?;
    }
    let (start, cpu) = (Instant::now(), cpu_time());
    let mut calls = 0u64;
    loop {
        for _ in 0..16 {
            echo(&client, &request).await?;
        }
        calls += 16;
        if start.elapsed() >= secs {
            break;
        }
    }
    Ok(rate(
        Report::new(),
        calls,
        start.elapsed(),
        cpu_time() - cpu,
    ))
}

async fn conc(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    let client = echo_client(args, tree).await?;
    let request = Arc::new(Echo::of_size(args.num("size", 50)?));
    let callers: usize = args.num("conc", 16)?;
    let secs = args.secs()?;
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (client, request) = (client.clone(), request.clone());
        let (stop, counting, calls) = (stop.clone(), counting.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                echo(&client, &request).await?;
                if counting.load(Ordering::Relaxed) {
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), BoxError>(())
        }));
    }
    tokio::time::sleep(secs / 5).await;
    let (start, cpu) = (Instant::now(), cpu_time());
    counting.store(true, Ordering::Relaxed);
    tokio::time::sleep(secs).await;
    counting.store(false, Ordering::Relaxed);
    let (wall, cpu) = (start.elapsed(), cpu_time() - cpu);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(rate(
        Report::new(),
        calls.load(Ordering::Relaxed),
        wall,
        cpu,
    ))
}

async fn missing(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    let registry = registry(tree, "many");
    let iters: usize = args.num("iters", 1000)?;
    let start = Instant::now();
    for i in 0..iters {
        match registry.get(&format!("missing{i}"), KIND).await {
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
            Ok(_) => return Err("a missing name was found".into()),
        }
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / iters as f64;
    Ok(Report::new().num("us_per_get", per))
}

async fn getall(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    let iters: usize = args.num("iters", 5)?;
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..iters {
        // A fresh registry each time: nothing cached, nothing remembered.
        let registry = registry(tree, "list");
        let start = Instant::now();
        found = registry.get_all(KIND).await?.len();
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Report::new()
        .num("ms", quantile(&mut times, 0.5))
        .num("plugins", found as f64))
}

fn scan(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    // The registry's view: answers kept until inotify reports a change.
    let local = DirView::new(LocalRegistry::with_dirs(
        tree.sockets("many"),
        [tree.specs("many")],
    ));
    let iters: usize = args.num("iters", 5)?;
    let names = local.scan()?.len(); // warm
    let mut scans = Vec::new();
    for _ in 0..iters {
        let start = Instant::now();
        let n = local.scan()?.len();
        scans.push(start.elapsed().as_secs_f64() * 1e3);
        if n != names {
            return Err("scan results changed".into());
        }
    }
    let lookup_names: Vec<String> = (0..1000).map(|i| spec_name(i * 10)).collect();
    let mut lookups = Vec::new();
    for _ in 0..iters {
        let start = Instant::now();
        for name in &lookup_names {
            local.plugin(name)?;
        }
        lookups.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Report::new()
        .num("scan_ms", quantile(&mut scans, 0.5))
        .num("lookups_ms", quantile(&mut lookups, 0.5))
        .num("names", names as f64))
}

async fn first_get(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    let registry = registry(tree, "many");
    let count: usize = args.num("count", 100)?;
    if count >= MANY_SOCKETS {
        return Err("--count must leave one socket for the warm-up".into());
    }
    registry.get(&many_name(MANY_SOCKETS - 1), KIND).await?; // warm-up
    let mut times = Vec::new();
    for i in 0..count {
        let start = Instant::now();
        registry.get(&many_name(i), KIND).await?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(Report::new()
        .num("p50_us", quantile(&mut times, 0.5))
        .num("p90_us", quantile(&mut times, 0.9)))
}

/// Diagnostics for P7: the parts of a first `get` timed apart (resolve,
/// client creation, the `Plugin.Activate` exchange on a new connection).
async fn first_get_parts(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    let local = LocalRegistry::with_dirs(tree.sockets("many"), [tree.specs("many")]);
    let count: usize = args.num("count", 100)?;
    let (mut resolve, mut build, mut activate) = (Vec::new(), Vec::new(), Vec::new());
    let mut clients = Vec::new();
    for i in 0..count.min(MANY_SOCKETS) {
        let t0 = Instant::now();
        let spec = local.plugin(&many_name(i))?;
        let t1 = Instant::now();
        let client = Client::new(spec.address().clone(), spec.tls())?;
        let t2 = Instant::now();
        client.call(plugin_registry::proto::ACTIVATE_METHOD).await?;
        let t3 = Instant::now();
        resolve.push((t1 - t0).as_secs_f64() * 1e6);
        build.push((t2 - t1).as_secs_f64() * 1e6);
        activate.push((t3 - t2).as_secs_f64() * 1e6);
        clients.push(client);
    }
    Ok(Report::new()
        .num("resolve_p50_us", quantile(&mut resolve, 0.5))
        .num("client_p50_us", quantile(&mut build, 0.5))
        .num("activate_p50_us", quantile(&mut activate, 0.5)))
}

async fn activations(tree: &Tree) -> Result<u64, BoxError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "PascalCase")]
    struct Stats {
        activates: u64,
    }
    let address = format!("unix://{}", tree.main_socket().display());
    let stats: Stats = Client::new(address, None)?
        .call(STATS_METHOD)
        .json()
        .await?;
    Ok(stats.activates)
}

async fn herd(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    let callers: usize = args.num("callers", 1000)?;
    let before = activations(tree).await?;
    let registry = registry(tree, "many");
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.get(&many_name(0), KIND).await.map(|_| ()) })
        })
        .collect();
    let spawned_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut first_ms = None;
    for t in tasks {
        t.await??;
        first_ms.get_or_insert_with(|| start.elapsed().as_secs_f64() * 1e3);
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let handshakes = activations(tree).await? - before;
    // Each spawned task carries a `get` future: its size is copied into
    // every task (diagnostics for P8).
    let future_bytes = std::mem::size_of_val(&registry.get(&many_name(0), KIND));
    Ok(Report::new()
        .num("handshakes", handshakes as f64)
        .num("ms", ms)
        .num("spawned_ms", spawned_ms)
        .num("first_done_ms", first_ms.unwrap_or(ms))
        .num("get_future_bytes", future_bytes as f64))
}

async fn idle(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    let idle = Duration::from_secs_f64(args.num("idle-secs", 0.0)?);
    let registry = registry(tree, "many");
    plugin_bench::trim_heap();
    let (rss_base, sockets_base) = (plugin_bench::rss_kib(), plugin_bench::open_sockets());
    let mut plugins = Vec::with_capacity(MANY_SOCKETS);
    for i in 0..MANY_SOCKETS {
        plugins.push(registry.get(&many_name(i), KIND).await?);
    }
    plugin_bench::trim_heap();
    let rss = plugin_bench::rss_kib();
    let sockets = plugin_bench::open_sockets() - sockets_base;
    let mut report = Report::new()
        .num("rss_base_kib", rss_base as f64)
        .num("rss_kib", rss as f64)
        .num(
            "kib_per_plugin",
            (rss.saturating_sub(rss_base)) as f64 / MANY_SOCKETS as f64,
        )
        .num("sockets_open", sockets as f64);
    if !idle.is_zero() {
        tokio::time::sleep(idle).await;
        plugin_bench::trim_heap();
        let after = plugin_bench::open_sockets().saturating_sub(sockets_base);
        report = report
            .num("sockets_after_idle", after as f64)
            .num("rss_after_idle_kib", plugin_bench::rss_kib() as f64);
    }
    drop(plugins);
    Ok(report)
}

/// Diagnostics for P3: where the CPU of a large typed call goes, without
/// any IO. `encode_args_us` is what `call` pays to encode (the Go-rules
/// writer of `plugin-proto`), `serde_json_us` plain serde_json's compact
/// encoding of the same value for comparison (no Go escapes; what the
/// encoder cost before it skipped clean blocks), and `decode_us` the reply
/// decoding.
fn encode(args: &Args) -> Result<Report, BoxError> {
    let request = Echo::of_size(args.num("size", 65_536)?);
    let iters: u32 = args.num("iters", 2000)?;
    let time = |f: &mut dyn FnMut() -> Result<usize, BoxError>| -> Result<f64, BoxError> {
        let mut sink = 0;
        for _ in 0..iters / 10 {
            sink += f()?;
        }
        let start = Instant::now();
        for _ in 0..iters {
            sink += f()?;
        }
        std::hint::black_box(sink);
        Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(iters))
    };
    let encoded = plugin_registry::proto::encode_args(Some(&request))?;
    let encode_args = time(&mut || Ok(plugin_registry::proto::encode_args(Some(&request))?.len()))?;
    let serde_json = time(&mut || Ok(serde_json::to_vec(&request)?.len()))?;
    let decode = time(&mut || {
        let echo: Echo = plugin_registry::proto::decode_message(&encoded)?;
        Ok(echo.name.len())
    })?;
    Ok(Report::new()
        .num("encode_args_us", encode_args)
        .num("serde_json_us", serde_json)
        .num("decode_us", decode))
}

/// The plugin of P10: a volume driver that answers `Get` with the volume
/// asked for, mounted under [`SERVE_MOUNT_PREFIX`], as a plugin author
/// would write it with `plugin-server`.
struct BenchVolumes;

impl VolumeDriver for BenchVolumes {
    async fn create(&self, _: volume::CreateRequest) -> Result<(), PluginError> {
        Err(PluginError::new("read-only"))
    }
    async fn remove(&self, _: volume::RemoveRequest) -> Result<(), PluginError> {
        Err(PluginError::new("read-only"))
    }
    async fn path(&self, _: volume::PathRequest) -> Result<volume::PathResponse, PluginError> {
        Err(PluginError::new("not mounted"))
    }
    async fn mount(&self, _: volume::MountRequest) -> Result<volume::MountResponse, PluginError> {
        Err(PluginError::new("read-only"))
    }
    async fn unmount(&self, _: volume::UnmountRequest) -> Result<(), PluginError> {
        Err(PluginError::new("not mounted"))
    }
    async fn get(&self, req: volume::GetRequest) -> Result<volume::GetResponse, PluginError> {
        Ok(volume::GetResponse {
            volume: Some(volume::Volume {
                mountpoint: format!("{SERVE_MOUNT_PREFIX}{}", req.name),
                name: req.name,
                ..volume::Volume::default()
            }),
            ..volume::GetResponse::default()
        })
    }
    async fn list(&self) -> Result<volume::ListResponse, PluginError> {
        Ok(volume::ListResponse::default())
    }
}

/// Serves [`BenchVolumes`] on `--socket` with tokio's default
/// multi-threaded runtime (what `#[tokio::main]` gives a plugin), prints
/// `ready` once the socket listens, and stops when stdin closes.
fn plugin_serve(args: &Args) -> Result<(), BoxError> {
    let socket = args.str("socket")?.to_owned();
    let rt = plugin_bench::runtime(args)?;
    rt.block_on(async move {
        let listener = Listener::unix(&socket)?;
        let plugin = Plugin::builder().volume(BenchVolumes).build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = tx.send(());
        });
        println!("ready");
        Server::new(plugin)
            .handle_signals(false)
            .shutdown_timeout(Duration::from_secs(1))
            .shutdown_on(async move {
                let _ = rx.await;
            })
            .serve(listener)
            .await?;
        Ok(())
    })
}
