//! `soak`: mixed engine traffic against plugins that are killed,
//! restarted, moved between unix sockets and tcp, made mute and made
//! hostile at random, with the invariants checked as it runs. Run it with
//! `cargo xtask soak [--minutes N | --seconds N] [--seed S] [--json]`;
//! `RELIABILITY.md` records the last full run.
//!
//! The engine side is this process: one [`Registry`], the typed proxies of
//! every subsystem and an [`AuthzChain`], driven by a few traffic workers.
//! The plugins are child processes (this binary re-executed as `soak child
//! …`, see `plugins.rs`), so a kill is a real `SIGKILL` and the engine's
//! descriptors, tasks and memory are measured alone.
//!
//! Invariants (each is reported, and any breach makes the exit status 1):
//! 1. every operation ends, with a value or an error whose text is not
//!    empty, within its deadline (derived from the policy below);
//! 2. no request reaches a plugin more often than once plus the retries
//!    the client logged for it (`retries.rs`);
//! 3. open descriptors, alive tokio tasks and RSS stay flat after warm-up
//!    (`judge` below documents the tolerance);
//! 4. once the chaos stops and every plugin is restarted, each is reachable
//!    through the registry within [`SETTLE_BOUND`];
//! 5. the authorization chain never allows a request the policy denies,
//!    and no log FIFO is left behind.
//!
//! The seed fixes every random choice (chaos schedule, traffic mix), not
//! the interleaving: a replay makes the same choices under other timing.
//!
//! It must never touch the host's plugin directories: everything lives in
//! a temporary directory removed at the end.

#![forbid(unsafe_code)]

mod plugins;
mod retries;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugin_registry::authz::{AuthzChain, AuthzError, AuthzOptions};
use plugin_registry::discovery::LocalRegistry;
use plugin_registry::proto::RetryPolicy;
use plugin_registry::proto::ipam::{RequestAddressRequest, RequestPoolRequest};
use plugin_registry::proto::log::{Info, LogEntry, ReadConfig};
use plugin_registry::proto::network::CreateNetworkRequest;
use plugin_registry::{
    ErrorKind, IpamDriver, LogDriver, MetricsCollector, NetworkDriver, Plugin, Policy, Registry,
    VolumeDriver,
};
use plugin_tests::procfs;
use serde_json::json;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::plugins::{Mode, PLUGINS};
use crate::retries::Retries;

/// The engine's retry budget for handshakes and calls (Docker's is 30 s;
/// shorter keeps operations against dead plugins from dominating a run).
const RETRY_BUDGET: Duration = Duration::from_secs(4);
/// Bound on each handshake attempt and on each call attempt
/// (`Policy::handshake_timeout`, `Policy::call_timeout`).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on one authorization plugin's answer (`AuthzOptions::call_timeout`).
const AUTHZ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the log writer waits for the plugin to open its FIFO.
const FIFO_WAIT: Duration = Duration::from_secs(1);
/// One call's worst case under this policy: attempts of at most 2 s with
/// 1 s then 2 s between them, no retry started past the 4 s budget, so at
/// most two attempts and one pause (5 s), plus a 10 s dial that cannot
/// happen locally. An operation is a lookup (a handshake, the same bound)
/// and one call: 10 s; the deadline doubles it.
const OP_DEADLINE: Duration = Duration::from_secs(20);
/// A log write is a lookup and up to four calls (`Capabilities`,
/// `StartLogging`, `StopLogging` on failure or at close) plus the FIFO wait.
const LOG_DEADLINE: Duration = Duration::from_secs(45);
/// After the chaos, how long a restarted plugin may take to be reachable:
/// a cached address that moved costs one failing call (5 s) before
/// eviction, then a lookup.
const SETTLE_BOUND: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return match plugins::child_main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("soak child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let retries = Retries::default();
    tracing_subscriber::registry().with(retries.clone()).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(soak(options, retries)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "\
usage: soak [--minutes N | --seconds N] [--seed S] [--workers N] [--json]

Mixed engine traffic against plugins killed, restarted, moved, made mute
and hostile at random; exit 0 when every invariant held, 1 otherwise.";

struct Options {
    duration: Duration,
    seed: u64,
    workers: usize,
    json: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            duration: Duration::from_secs(600),
            seed: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            workers: 16,
            json: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |what: &str| -> Result<u64, String> {
                let v = it.next().ok_or_else(|| format!("{arg} needs {what}"))?;
                v.parse()
                    .map_err(|_| format!("{arg}: {v:?} is not a whole number"))
            };
            match arg.as_str() {
                "--minutes" => options.duration = Duration::from_secs(value("N")? * 60),
                "--seconds" => options.duration = Duration::from_secs(value("N")?),
                "--seed" => options.seed = value("S")?,
                "--workers" => options.workers = value("N")?.max(1) as usize,
                "--json" => options.json = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if options.duration < Duration::from_secs(20) {
            return Err("a soak needs at least 20 seconds".into());
        }
        Ok(options)
    }
}

/// SplitMix64: small, seedable, good enough to pick actions.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// How an operation failed: a class for the report and the error's text.
struct Failure {
    class: &'static str,
    text: String,
}

impl From<plugin_registry::Error> for Failure {
    fn from(e: plugin_registry::Error) -> Failure {
        let class = if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "connect"
        } else if e.is_not_found() {
            "not found"
        } else {
            match e.kind() {
                ErrorKind::Plugin { .. } | ErrorKind::Remote { .. } => "plugin error",
                ErrorKind::Client(c) if c.is_status() => "status",
                _ => "protocol (garbage, cut or undecodable reply)",
            }
        };
        Failure {
            class,
            text: e.to_string(),
        }
    }
}

impl From<AuthzError> for Failure {
    fn from(e: AuthzError) -> Failure {
        let class = if e.is_denied() {
            "authz denied"
        } else if e.is_plugin_failure() {
            "authz plugin failure"
        } else {
            "authz other"
        };
        Failure {
            class,
            text: e.to_string(),
        }
    }
}

#[derive(Default)]
struct Stats {
    ops: BTreeMap<&'static str, (u64, u64)>,
    slowest: BTreeMap<&'static str, Duration>,
    failures: BTreeMap<&'static str, (u64, String)>,
    chaos: BTreeMap<String, u64>,
    violations: Vec<String>,
}

/// One sample of the engine's resources.
#[derive(Clone, Copy)]
struct Sample {
    at: f64,
    fds: u64,
    tasks: u64,
    rss_kib: u64,
}

struct Engine {
    registry: Registry,
    chain: AuthzChain,
    fifo_dir: PathBuf,
    stats: Mutex<Stats>,
    tokens: AtomicU64,
    stop: AtomicBool,
}

fn span(token: &str) -> tracing::Span {
    tracing::info_span!("soak_op", token = token)
}

impl Engine {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn violation(&self, text: String) {
        self.stats().violations.push(text);
    }

    fn token(&self) -> String {
        format!("soak-{}", self.tokens.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs one operation under its deadline and files its outcome.
    async fn op<T>(
        &self,
        kind: &'static str,
        deadline: Duration,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Option<T> {
        let start = Instant::now();
        let outcome = tokio::time::timeout(deadline, work).await;
        let took = start.elapsed();
        let mut stats = self.stats();
        let slowest = stats.slowest.entry(kind).or_default();
        *slowest = (*slowest).max(took);
        let counts = stats.ops.entry(kind).or_default();
        counts.0 += 1;
        match outcome {
            Ok(Ok(v)) => Some(v),
            Ok(Err(f)) => {
                counts.1 += 1;
                if f.text.trim().is_empty() {
                    stats
                        .violations
                        .push(format!("{kind}: failed with an empty error ({})", f.class));
                }
                let entry = stats.failures.entry(f.class).or_insert((0, f.text));
                entry.0 += 1;
                None
            }
            Err(_) => {
                counts.1 += 1;
                stats.failures.entry("deadline exceeded").or_default().0 += 1;
                stats.violations.push(format!(
                    "{kind}: no outcome within its {}s deadline (a hang)",
                    deadline.as_secs()
                ));
                None
            }
        }
    }

    async fn plugin(&self, name: &str, kind: &str) -> Result<Arc<Plugin>, Failure> {
        Ok(self.registry.get(name, kind).await?)
    }

    async fn volumes(&self) -> Result<VolumeDriver, Failure> {
        Ok(VolumeDriver::new(
            &self.plugin("memvol", "VolumeDriver").await?,
        )?)
    }

    async fn ipam(&self) -> Result<IpamDriver, Failure> {
        Ok(IpamDriver::new(
            &self.plugin("simple-ipam", "IpamDriver").await?,
        )?)
    }

    async fn network(&self) -> Result<NetworkDriver, Failure> {
        Ok(NetworkDriver::new(
            &self.plugin("memnet", "NetworkDriver").await?,
        )?)
    }

    async fn logs(&self) -> Result<LogDriver, Failure> {
        Ok(LogDriver::new(&self.plugin("soaklog", "LogDriver").await?)?)
    }

    async fn metrics(&self) -> Result<MetricsCollector, Failure> {
        Ok(MetricsCollector::new(
            &self.plugin("soakmetrics", "MetricsCollector").await?,
        )?)
    }

    async fn worker(self: Arc<Self>, mut rng: Rng) {
        while !self.stop.load(Ordering::Relaxed) {
            match rng.below(100) {
                0..10 => self.lookup(&mut rng).await,
                10..16 => self.listing(&mut rng).await,
                16..34 => self.volume_flow().await,
                34..48 => self.ipam_flow().await,
                48..60 => self.network_flow().await,
                60..72 => self.log_flow().await,
                72..80 => self.metrics_flow().await,
                _ => self.authz_flow(rng.below(4) == 0).await,
            }
            // Against plugins that are all down every operation fails in
            // microseconds; a pause keeps the mix from spinning.
            tokio::time::sleep(rng.millis(1, 20)).await;
        }
    }

    async fn lookup(&self, rng: &mut Rng) {
        let (name, kind) = PLUGINS[rng.below(PLUGINS.len() as u64) as usize];
        self.op("Registry::get", OP_DEADLINE, self.plugin(name, kind))
            .await;
    }

    async fn listing(&self, rng: &mut Rng) {
        let (_, kind) = PLUGINS[rng.below(PLUGINS.len() as u64) as usize];
        self.op("Registry::get_all", OP_DEADLINE, async {
            Ok(self.registry.get_all(kind).await?)
        })
        .await;
    }

    async fn volume_flow(&self) {
        let t = self.token();
        let created = self.op("VolumeDriver.Create", OP_DEADLINE, async {
            Ok(self
                .volumes()
                .await?
                .create(&t, None)
                .instrument(span(&t))
                .await?)
        });
        if created.await.is_none() {
            return;
        }
        self.op("VolumeDriver.Path", OP_DEADLINE, async {
            Ok(self.volumes().await?.path(&t).instrument(span(&t)).await?)
        })
        .await;
        let mounted = self.op("VolumeDriver.Mount", OP_DEADLINE, async {
            Ok(self
                .volumes()
                .await?
                .mount(&t, "c1")
                .instrument(span(&t))
                .await?)
        });
        if mounted.await.is_some() {
            self.op("VolumeDriver.Unmount", OP_DEADLINE, async {
                Ok(self
                    .volumes()
                    .await?
                    .unmount(&t, "c1")
                    .instrument(span(&t))
                    .await?)
            })
            .await;
        }
        self.op("VolumeDriver.Remove", OP_DEADLINE, async {
            Ok(self
                .volumes()
                .await?
                .remove(&t)
                .instrument(span(&t))
                .await?)
        })
        .await;
        self.op("VolumeDriver.List", OP_DEADLINE, async {
            Ok(self.volumes().await?.list().await?)
        })
        .await;
    }

    async fn ipam_flow(&self) {
        let t = self.token();
        let options = Some(BTreeMap::from([("soak".to_owned(), t.clone())]));
        let pool = self.op("IpamDriver.RequestPool", OP_DEADLINE, async {
            let request = RequestPoolRequest {
                options: options.clone(),
                ..Default::default()
            };
            Ok(self
                .ipam()
                .await?
                .request_pool(&request)
                .instrument(span(&t))
                .await?)
        });
        let Some(pool) = pool.await else {
            return;
        };
        let address = self.op("IpamDriver.RequestAddress", OP_DEADLINE, async {
            let request = RequestAddressRequest {
                pool_id: pool.pool_id.clone(),
                options: options.clone(),
                ..Default::default()
            };
            Ok(self
                .ipam()
                .await?
                .request_address(&request)
                .instrument(span(&t))
                .await?)
        });
        if let Some(address) = address.await {
            let ip = address.address.split('/').next().unwrap_or_default();
            self.op("IpamDriver.ReleaseAddress", OP_DEADLINE, async {
                Ok(self
                    .ipam()
                    .await?
                    .release_address(&pool.pool_id, ip)
                    .await?)
            })
            .await;
        }
        self.op("IpamDriver.ReleasePool", OP_DEADLINE, async {
            Ok(self.ipam().await?.release_pool(&pool.pool_id).await?)
        })
        .await;
    }

    async fn network_flow(&self) {
        let t = self.token();
        let created = self.op("NetworkDriver.CreateNetwork", OP_DEADLINE, async {
            let request = CreateNetworkRequest {
                network_id: t.clone(),
                ..Default::default()
            };
            Ok(self
                .network()
                .await?
                .create_network(&request)
                .instrument(span(&t))
                .await?)
        });
        if created.await.is_none() {
            return;
        }
        self.op("NetworkDriver.GetCapabilities", OP_DEADLINE, async {
            Ok(self.network().await?.get_capabilities().await?)
        })
        .await;
        self.op("NetworkDriver.DeleteNetwork", OP_DEADLINE, async {
            Ok(self
                .network()
                .await?
                .delete_network(&t)
                .instrument(span(&t))
                .await?)
        })
        .await;
    }

    async fn log_flow(&self) {
        let t = self.token();
        let info = Info {
            container_id: t.clone(),
            container_name: format!("/{t}"),
            ..Default::default()
        };
        let path = self.fifo_dir.join(&t);
        let written = self.op("LogWriter (open, write, close)", LOG_DEADLINE, async {
            let driver = self.logs().await?;
            let mut writer = driver
                .open_writer(&path, info.clone(), FIFO_WAIT)
                .instrument(span(&t))
                .await?;
            for i in 0..3u8 {
                let entry = LogEntry {
                    source: "stdout".into(),
                    time_nano: 1_700_000_000_000_000_000 + i64::from(i),
                    line: format!("line {i} of {t}").into_bytes(),
                    ..Default::default()
                };
                writer.write(&entry).await?;
            }
            Ok(writer.close().instrument(span(&t)).await?)
        });
        if written.await.is_none() {
            return;
        }
        self.op("LogDriver.ReadLogs", OP_DEADLINE, async {
            let driver = self.logs().await?;
            let mut stream = driver
                .read_logs(&info, &ReadConfig::default())
                .instrument(span(&t))
                .await?;
            let mut n = 0u32;
            while stream.next_entry().await?.is_some() {
                n += 1;
            }
            Ok(n)
        })
        .await;
    }

    async fn metrics_flow(&self) {
        if self
            .op("MetricsCollector.StartMetrics", OP_DEADLINE, async {
                Ok(self.metrics().await?.start_metrics().await?)
            })
            .await
            .is_some()
        {
            self.op("MetricsCollector.StopMetrics", OP_DEADLINE, async {
                Ok(self.metrics().await?.stop_metrics().await?)
            })
            .await;
        }
    }

    /// A request through the authorization chain; `deny` asks for one the
    /// policy refuses, which must never be allowed, whatever the plugin
    /// is going through.
    async fn authz_flow(&self, deny: bool) {
        let t = self.token();
        let uri = if deny {
            format!("/v1.47/containers/{t}/deny")
        } else {
            format!("/v1.47/containers/{t}/start")
        };
        let Ok(request) = http::Request::post(uri).body(()) else {
            return;
        };
        let (head, ()) = request.into_parts();
        let kind = if deny {
            "AuthzChain (a denied request)"
        } else {
            "AuthzChain (an allowed request)"
        };
        let allowed = self
            .op(kind, OP_DEADLINE, async {
                let mut authorized = self
                    .chain
                    .authorize_request(&head, None)
                    .instrument(span(&t))
                    .await?;
                let headers = http::HeaderMap::new();
                authorized
                    .authorize_response(http::StatusCode::NO_CONTENT, &headers, None)
                    .instrument(span(&t))
                    .await?;
                Ok(())
            })
            .await;
        if deny && allowed.is_some() {
            self.violation(format!(
                "authz: {t} was allowed though the policy denies it"
            ));
        }
    }

    /// Whether a plugin answers through the registry now.
    async fn probe(&self, name: &str, kind: &str) -> Result<(), Failure> {
        let plugin = self.plugin(name, kind).await?;
        match kind {
            "VolumeDriver" => VolumeDriver::new(&plugin)?.list().await.map(drop)?,
            "IpamDriver" => IpamDriver::new(&plugin)?
                .get_default_address_spaces()
                .await
                .map(drop)?,
            "NetworkDriver" => NetworkDriver::new(&plugin)?
                .get_capabilities()
                .await
                .map(drop)?,
            "LogDriver" => LogDriver::new(&plugin)?.capabilities().await.map(drop)?,
            "MetricsCollector" => MetricsCollector::new(&plugin)?.start_metrics().await?,
            _ => {
                let head = http::Request::get("/_ping")
                    .body(())
                    .map_err(|e| Failure {
                        class: "setup",
                        text: e.to_string(),
                    })?
                    .into_parts()
                    .0;
                self.chain.authorize_request(&head, None).await.map(drop)?;
            }
        }
        Ok(())
    }
}

/// The plugin processes and the files they listen on.
struct Fleet {
    dir: PathBuf,
    exe: PathBuf,
    slots: Vec<Slot>,
}

struct Slot {
    name: &'static str,
    child: Option<Child>,
    tcp: bool,
}

impl Fleet {
    fn socket(&self, name: &str) -> PathBuf {
        self.dir.join("run").join(format!("{name}.sock"))
    }

    fn spec(&self, name: &str) -> PathBuf {
        self.dir.join("etc").join(format!("{name}.spec"))
    }

    fn start(&mut self, i: usize, tcp: bool, mode: Mode) -> Result<(), String> {
        self.stop(i, true);
        let name = self.slots[i].name;
        // An operator moving a plugin cleans up after it: a socket left by
        // a killed instance would otherwise win over the new spec file.
        if tcp {
            let _ = std::fs::remove_file(self.socket(name));
        } else {
            let _ = std::fs::remove_file(self.spec(name));
        }
        let at = if tcp {
            self.spec(name)
        } else {
            self.socket(name)
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("logs").join(format!("{name}.log")))
            .map_err(|e| e.to_string())?;
        let child = Command::new(&self.exe)
            .arg("child")
            .arg(name)
            .arg(mode.name())
            .arg(if tcp { "tcp" } else { "unix" })
            .arg(&at)
            .arg(self.dir.join("rec").join(name))
            .arg(self.dir.join("data").join(name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        self.slots[i].child = Some(child);
        self.slots[i].tcp = tcp;
        Ok(())
    }

    /// `hard`: SIGKILL; otherwise SIGTERM (the kit removes its files),
    /// then SIGKILL if it has not exited within a second.
    fn stop(&mut self, i: usize, hard: bool) {
        let Some(mut child) = self.slots[i].child.take() else {
            return;
        };
        if !hard {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(1) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for i in 0..self.slots.len() {
            self.stop(i, true);
        }
    }
}

async fn soak(options: Options, retries: Retries) -> Result<bool, String> {
    let tmp = tempfile::Builder::new()
        .prefix("soakrun.")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    let dir = tmp.path().to_path_buf();
    for sub in ["run", "etc", "rec", "data", "logs", "fifo"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let mut rng = Rng(options.seed);
    let chaos_for = options.duration.mul_f64(0.85);
    eprintln!(
        "soak: seed {} (replay with --seed {}), {}s: {}s of chaos, then settle; {} workers; {}",
        options.seed,
        options.seed,
        options.duration.as_secs(),
        chaos_for.as_secs(),
        options.workers,
        dir.display()
    );

    let mut policy = Policy::default().with_retry(RetryPolicy::with_budget(RETRY_BUDGET));
    policy.handshake_timeout = Some(ATTEMPT_TIMEOUT);
    policy.call_timeout = Some(ATTEMPT_TIMEOUT);
    let registry = Registry::new(
        LocalRegistry::with_dirs(dir.join("run"), [dir.join("etc")]),
        policy,
    );
    let chain = AuthzChain::with_options(
        registry.clone(),
        ["rule-authz"],
        AuthzOptions::default().with_call_timeout(AUTHZ_TIMEOUT),
    );
    let engine = Arc::new(Engine {
        registry,
        chain,
        fifo_dir: dir.join("fifo"),
        stats: Mutex::default(),
        tokens: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let mut fleet = Fleet {
        dir: dir.clone(),
        exe: std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        slots: PLUGINS
            .iter()
            .map(|(name, _)| Slot {
                name,
                child: None,
                tcp: false,
            })
            .collect(),
    };
    for i in 0..fleet.slots.len() {
        let tcp = rng.below(2) == 0;
        fleet.start(i, tcp, Mode::Normal)?;
    }

    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let sampler = {
        let samples = samples.clone();
        let every =
            (options.duration / 120).clamp(Duration::from_millis(250), Duration::from_secs(2));
        tokio::spawn(async move {
            loop {
                let sample = Sample {
                    at: started.elapsed().as_secs_f64(),
                    fds: procfs::open_fds() as u64,
                    tasks: tokio::runtime::Handle::current()
                        .metrics()
                        .num_alive_tasks() as u64,
                    rss_kib: procfs::status_kib("VmRSS").unwrap_or(0),
                };
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(sample);
                tokio::time::sleep(every).await;
            }
        })
    };
    let workers: Vec<_> = (0..options.workers)
        .map(|w| {
            let rng = Rng(options.seed ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            tokio::spawn(engine.clone().worker(rng))
        })
        .collect();

    // The chaos: every 0.2–1.2 s, something happens to one plugin.
    while started.elapsed() < chaos_for {
        tokio::time::sleep(rng.millis(200, 1200)).await;
        let i = rng.below(fleet.slots.len() as u64) as usize;
        let tcp_now = fleet.slots[i].tcp;
        let action = match rng.below(100) {
            0..15 => {
                fleet.stop(i, true);
                "kill (SIGKILL), left down"
            }
            15..20 => {
                fleet.stop(i, false);
                "stop (SIGTERM), left down"
            }
            20..55 => {
                fleet.start(i, tcp_now, Mode::Normal)?;
                "restart in place"
            }
            55..67 => {
                fleet.start(i, !tcp_now, Mode::Normal)?;
                if tcp_now {
                    "move tcp -> unix"
                } else {
                    "move unix -> tcp"
                }
            }
            67..77 => {
                fleet.start(i, rng.below(2) == 0, Mode::Mute)?;
                "make mute"
            }
            77..85 => {
                fleet.start(i, rng.below(2) == 0, Mode::Garbage)?;
                "make hostile: garbage replies"
            }
            85..92 => {
                fleet.start(i, rng.below(2) == 0, Mode::Cut)?;
                "make hostile: cut bodies"
            }
            _ => {
                fleet.start(i, rng.below(2) == 0, Mode::Trickle)?;
                "make hostile: slow trickle"
            }
        };
        *engine.stats().chaos.entry(action.to_owned()).or_default() += 1;
    }

    // Settle: traffic stops, every plugin comes back normal, and each must
    // be reachable through the registry within the bound.
    engine.stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    for i in 0..fleet.slots.len() {
        let tcp = rng.below(2) == 0;
        fleet.start(i, tcp, Mode::Normal)?;
    }
    let probes = PLUGINS.iter().map(|&(name, kind)| {
        let engine = engine.clone();
        async move {
            let start = Instant::now();
            let mut last = String::new();
            loop {
                match tokio::time::timeout(OP_DEADLINE, engine.probe(name, kind)).await {
                    Ok(Ok(())) => return (name, true, start.elapsed(), last),
                    Ok(Err(f)) => last = f.text,
                    Err(_) => last = "probe hung".into(),
                }
                if start.elapsed() >= SETTLE_BOUND {
                    return (name, false, start.elapsed(), last);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let mut reach = BTreeMap::new();
    for (name, ok, took, last) in futures_util::future::join_all(probes).await {
        if !ok {
            engine.violation(format!(
                "settle: {name} unreachable {}s after the chaos stopped: {last}",
                SETTLE_BOUND.as_secs()
            ));
        }
        reach.insert(name, (ok, took));
    }
    // The run ends when the requested time is up, so figures compare.
    if let Some(rest) = options.duration.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    sampler.abort();
    let _ = sampler.await;
    drop(fleet);

    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let deliveries = check_deliveries(&dir, &retries, &engine);
    let fifos_left = std::fs::read_dir(dir.join("fifo")).map_or(0, |d| d.count());
    if fifos_left > 0 {
        engine.violation(format!("{fifos_left} log FIFOs left behind"));
    }
    let resources = judge(&samples, chaos_for.as_secs_f64());
    for r in &resources {
        if !r.flat {
            engine.violation(format!(
                "{}: grew from {} to {} after warm-up (tolerance {})",
                r.name, r.baseline, r.tail, r.tolerance
            ));
        }
    }
    let report = Report {
        options: &options,
        stats: &engine.stats(),
        retries: retries.total(),
        deliveries: &deliveries,
        resources: &resources,
        reach: &reach,
    };
    let (text, ok) = report.render();
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(ok)
}

/// What the plugins' records say.
#[derive(Default)]
struct Deliveries {
    recorded: u64,
    with_token: u64,
    retried_duplicates: u64,
    bad_duplicates: Vec<String>,
}

fn check_deliveries(dir: &Path, retries: &Retries, engine: &Engine) -> Deliveries {
    let mut d = Deliveries::default();
    for (name, _) in PLUGINS {
        let Ok(text) = std::fs::read_to_string(dir.join("rec").join(name)) else {
            continue;
        };
        let mut seen: HashMap<(&str, &str), u64> = HashMap::new();
        for line in text.lines() {
            d.recorded += 1;
            if let Some((method, token)) = line.split_once(' ')
                && token != "-"
            {
                d.with_token += 1;
                *seen.entry((method, token)).or_default() += 1;
            }
        }
        for ((method, token), n) in seen {
            if n < 2 {
                continue;
            }
            let allowed = 1 + retries.get(method, token);
            if n <= allowed {
                d.retried_duplicates += n - 1;
            } else {
                d.bad_duplicates.push(format!(
                    "{name}: {method} {token} arrived {n} times, {allowed} allowed"
                ));
            }
        }
    }
    for bad in &d.bad_duplicates {
        engine.violation(format!("duplicate delivery: {bad}"));
    }
    d
}

/// Reads one figure of a sample.
type Metric = fn(&Sample) -> u64;

/// One resource's series and the verdict on it.
struct Resource {
    name: &'static str,
    first: u64,
    last: u64,
    max: u64,
    baseline: u64,
    tail: u64,
    tolerance: u64,
    flat: bool,
}

/// Flatness: the first 20% of the chaos (at least 10 s) is warm-up (pools
/// fill, plugins get activated, allocator arenas grow). The baseline is the
/// highest sample in the next quarter of the chaos, the tail the highest in
/// its last quarter; a series is flat when the tail exceeds the baseline by
/// no more than its tolerance: 32 descriptors (each plugin's pool may hold
/// up to 2 idle connections, and a handful of calls are in flight), 64
/// tasks, and 16 MiB or a quarter of the baseline RSS, whichever is more.
/// A leak of one descriptor or task per failed call, or of memory per
/// call, exceeds these within minutes.
fn judge(samples: &[Sample], chaos: f64) -> Vec<Resource> {
    let warm = (chaos * 0.2).max(10.0).min(chaos / 2.0);
    let quarter = (chaos - warm) / 4.0;
    let window = |from: f64, to: f64, f: Metric| {
        samples
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .map(f)
            .max()
            .unwrap_or(0)
    };
    let series: [(&'static str, Metric); 3] = [
        ("open descriptors", |s| s.fds),
        ("tokio tasks", |s| s.tasks),
        ("RSS (KiB)", |s| s.rss_kib),
    ];
    series
        .into_iter()
        .map(|(name, f)| {
            let baseline = window(warm, warm + quarter, f);
            let tail = window(chaos - quarter, chaos, f);
            let tolerance = match name {
                "open descriptors" => 32,
                "tokio tasks" => 64,
                _ => (16 * 1024).max(baseline / 4),
            };
            Resource {
                name,
                first: samples.first().map_or(0, f),
                last: samples.last().map_or(0, f),
                max: samples.iter().map(f).max().unwrap_or(0),
                baseline,
                tail,
                tolerance,
                flat: tail <= baseline + tolerance,
            }
        })
        .collect()
}

struct Report<'a> {
    options: &'a Options,
    stats: &'a Stats,
    retries: u64,
    deliveries: &'a Deliveries,
    resources: &'a [Resource],
    reach: &'a BTreeMap<&'static str, (bool, Duration)>,
}

impl Report<'_> {
    fn render(&self) -> (String, bool) {
        let s = self.stats;
        let hangs = s
            .violations
            .iter()
            .filter(|v| v.contains("a hang") || v.contains("empty error"))
            .count();
        let invariants = [
            ("every call ends in time with a clear error", hangs == 0),
            (
                "no request delivered twice beyond the client's retries",
                self.deliveries.bad_duplicates.is_empty(),
            ),
            (
                "descriptors, tasks and RSS flat after warm-up",
                self.resources.iter().all(|r| r.flat),
            ),
            (
                "every plugin reachable once settled",
                self.reach.values().all(|(ok, _)| *ok),
            ),
            (
                "authorization fails closed",
                !s.violations.iter().any(|v| v.starts_with("authz:")),
            ),
            (
                "no log FIFO left behind",
                !s.violations.iter().any(|v| v.contains("FIFOs left")),
            ),
        ];
        let ok = s.violations.is_empty() && invariants.iter().all(|(_, held)| *held);
        if self.options.json {
            let value = json!({
                "seed": self.options.seed,
                "seconds": self.options.duration.as_secs(),
                "workers": self.options.workers,
                "operations": s.ops.iter().map(|(k, (n, f))| (k.to_string(), json!({
                    "total": n, "failed": f,
                    "slowest_ms": s.slowest.get(k).map_or(0, |d| d.as_millis() as u64),
                }))).collect::<serde_json::Map<_, _>>(),
                "failures": s.failures.iter().map(|(k, (n, example))| (k.to_string(), json!({
                    "count": n, "example": example,
                }))).collect::<serde_json::Map<_, _>>(),
                "chaos": s.chaos,
                "client_retries": self.retries,
                "deliveries": {
                    "recorded": self.deliveries.recorded,
                    "with_token": self.deliveries.with_token,
                    "duplicates_after_retries": self.deliveries.retried_duplicates,
                    "duplicates_not_allowed": self.deliveries.bad_duplicates,
                },
                "resources": self.resources.iter().map(|r| json!({
                    "name": r.name, "first": r.first, "last": r.last, "max": r.max,
                    "baseline": r.baseline, "tail": r.tail, "tolerance": r.tolerance, "flat": r.flat,
                })).collect::<Vec<_>>(),
                "settle": self.reach.iter().map(|(k, (ok, d))| (k.to_string(), json!({
                    "reachable": ok, "ms": d.as_millis() as u64,
                }))).collect::<serde_json::Map<_, _>>(),
                "invariants": invariants.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "violations": s.violations,
                "ok": ok,
            });
            return (format!("{value:#}\n"), ok);
        }
        let mut t = String::new();
        let _ = writeln!(
            t,
            "soak report (seed {}, {} s, {} workers)",
            self.options.seed,
            self.options.duration.as_secs(),
            self.options.workers
        );
        let _ = writeln!(
            t,
            "\noperations                               total    failed  slowest"
        );
        let (mut all, mut failed) = (0, 0);
        for (k, (n, f)) in &s.ops {
            all += n;
            failed += f;
            let slow = s.slowest.get(k).map_or(0, |d| d.as_millis());
            let _ = writeln!(t, "  {k:<36} {n:>8} {f:>9} {slow:>6} ms");
        }
        let _ = writeln!(t, "  {:<36} {all:>8} {failed:>9}", "all");
        let _ = writeln!(t, "\nfailures by class (count, first text)");
        for (k, (n, example)) in &s.failures {
            let example: String = example.chars().take(150).collect();
            let _ = writeln!(t, "  {k:<46} {n:>7}  {example}");
        }
        let _ = writeln!(t, "\nchaos actions");
        for (k, n) in &s.chaos {
            let _ = writeln!(t, "  {k:<46} {n:>7}");
        }
        let d = self.deliveries;
        let _ = writeln!(
            t,
            "\ndeliveries: {} requests recorded by the plugins, {} with a token; client retries logged: {}; \
             duplicates covered by a logged retry: {}; duplicates not allowed: {}",
            d.recorded,
            d.with_token,
            self.retries,
            d.retried_duplicates,
            d.bad_duplicates.len()
        );
        let _ = writeln!(
            t,
            "\nresources           first     last      max  baseline     tail  tolerance  flat"
        );
        for r in self.resources {
            let _ = writeln!(
                t,
                "  {:<16} {:>7} {:>8} {:>8} {:>9} {:>8} {:>10}  {}",
                r.name,
                r.first,
                r.last,
                r.max,
                r.baseline,
                r.tail,
                r.tolerance,
                if r.flat { "yes" } else { "NO" }
            );
        }
        let _ = writeln!(
            t,
            "\nsettle (reachable through the registry after the chaos)"
        );
        for (k, (ok, d)) in self.reach {
            let _ = writeln!(
                t,
                "  {k:<16} {} in {} ms",
                if *ok { "reachable" } else { "UNREACHABLE" },
                d.as_millis()
            );
        }
        let _ = writeln!(t, "\ninvariants");
        for (k, held) in &invariants {
            let _ = writeln!(t, "  {} {k}", if *held { "held  " } else { "BROKEN" });
        }
        if !s.violations.is_empty() {
            let _ = writeln!(t, "\nviolations ({}; first 50)", s.violations.len());
            for v in s.violations.iter().take(50) {
                let _ = writeln!(t, "  {v}");
            }
        }
        let _ = writeln!(t, "\nresult: {}", if ok { "ok" } else { "FAILED" });
        (t, ok)
    }
}

#[cfg(test)]
mod tests {
    use super::{Sample, judge};

    fn series(f: impl Fn(f64) -> u64) -> Vec<Sample> {
        (0..100)
            .map(|i| {
                let at = f64::from(i);
                Sample {
                    at,
                    fds: f(at),
                    tasks: 10,
                    rss_kib: 10_000,
                }
            })
            .collect()
    }

    #[test]
    fn a_series_that_levels_off_after_warm_up_is_flat() {
        let verdict = judge(
            &series(|at| if at < 15.0 { at as u64 * 3 } else { 45 }),
            100.0,
        );
        assert!(verdict.iter().all(|r| r.flat));
    }

    #[test]
    fn a_series_growing_one_descriptor_a_second_is_a_leak() {
        let verdict = judge(&series(|at| 20 + at as u64), 100.0);
        let fds = verdict
            .iter()
            .find(|r| r.name == "open descriptors")
            .unwrap();
        assert!(!fds.flat, "baseline {} tail {}", fds.baseline, fds.tail);
        assert!(
            verdict
                .iter()
                .filter(|r| r.name != "open descriptors")
                .all(|r| r.flat)
        );
    }
}
