//! Shared pieces of the benchmark binaries that `cargo xtask bench` drives
//! (see `BENCHMARKS.md` at the workspace root):
//!
//! - `bench-server`: the one server every client talks to (hyper http1 on
//!   a single-threaded tokio runtime, over unix sockets and loopback tcp);
//! - `bench-rust`: this project's client and registry;
//! - `bench-raw`: the ceiling, a pre-formatted HTTP/1.1 request written on
//!   a kept-alive socket with no HTTP library;
//! - `go-peer/` (Go, not a Rust target): Docker 20.10's own `pkg/plugins`.
//!
//! Every client takes the same command line (`<scenario> --key value …`)
//! and prints one line of flat JSON (`{"name":number,…}`) that the xtask
//! parses. The directory tree the server builds is described by [`Tree`];
//! the Go driver hard-codes the same layout.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The error type of the benchmark binaries.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// How many live sockets the "many" tree has (`p0000.sock` …).
pub const MANY_SOCKETS: usize = 1000;
/// How many `.spec` files the "many" tree has (`s00000.spec` …).
pub const SPEC_FILES: usize = 10_000;
/// How many live sockets the "list" tree has (`l00.sock` …), besides its
/// one stale socket.
pub const LIST_LIVE: usize = 10;
/// The plugin kind the server's `Plugin.Activate` reply lists.
pub const KIND: &str = "VolumeDriver";
/// The body of the server's `Plugin.Activate` reply.
pub const ACTIVATE_REPLY: &[u8] = br#"{"Implements":["VolumeDriver"]}"#;
/// The echo method: the reply body is the request body.
pub const ECHO_METHOD: &str = "Test.Echo";
/// The server's counters: `{"Activates":n}`.
pub const STATS_METHOD: &str = "Bench.Stats";

/// The benchmark directory tree, under one root:
///
/// ```text
/// main/sockets/bench.sock          echo server (P1–P3, P8's counter)
/// main/specs/bench-tcp.spec        tcp://127.0.0.1:<port> (P1 over tcp)
/// many/sockets/p0000.sock …        1,000 live sockets (P6, P7, P8, P9)
/// many/specs/s00000.spec …         10,000 spec files (P6)
/// list/sockets/l00.sock … l09.sock 10 live sockets (P5)
/// list/sockets/stale.sock          a socket file nobody listens on (P5)
/// ```
#[derive(Debug, Clone)]
pub struct Tree {
    root: PathBuf,
}

impl Tree {
    /// The tree under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Tree {
        Tree { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<part>/sockets`.
    pub fn sockets(&self, part: &str) -> PathBuf {
        self.root.join(part).join("sockets")
    }

    /// `<root>/<part>/specs`.
    pub fn specs(&self, part: &str) -> PathBuf {
        self.root.join(part).join("specs")
    }

    /// The echo server's socket.
    pub fn main_socket(&self) -> PathBuf {
        self.sockets("main").join("bench.sock")
    }
}

/// The name of the `i`th socket of the "many" tree.
pub fn many_name(i: usize) -> String {
    format!("p{i:04}")
}

/// The name of the `i`th spec file of the "many" tree.
pub fn spec_name(i: usize) -> String {
    format!("s{i:05}")
}

/// The name of the `i`th live socket of the "list" tree.
pub fn list_name(i: usize) -> String {
    format!("l{i:02}")
}

/// The echo request, as every client sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Echo {
    /// Padding that brings the body to the requested size.
    pub name: String,
    /// Always `{"size":"10G"}`.
    pub opts: std::collections::BTreeMap<String, String>,
}

/// The JSON around the name: `{"Name":"` … `","Opts":{"size":"10G"}}` and
/// Go's trailing newline.
const ECHO_PREFIX: &str = r#"{"Name":""#;
const ECHO_SUFFIX: &str = "\",\"Opts\":{\"size\":\"10G\"}}\n";

/// The smallest echo body.
pub const MIN_ECHO_SIZE: usize = ECHO_PREFIX.len() + ECHO_SUFFIX.len();

impl Echo {
    /// The request whose JSON body (as Go's encoder writes it, trailing
    /// newline included) is exactly `size` bytes: the name is `size - 34`
    /// letters `v`.
    pub fn of_size(size: usize) -> Echo {
        let mut opts = std::collections::BTreeMap::new();
        opts.insert("size".to_owned(), "10G".to_owned());
        Echo {
            name: "v".repeat(size.saturating_sub(MIN_ECHO_SIZE)),
            opts,
        }
    }
}

/// The same body as raw bytes, for the raw client.
pub fn echo_body(size: usize) -> Vec<u8> {
    let name = "v".repeat(size.saturating_sub(MIN_ECHO_SIZE));
    format!("{ECHO_PREFIX}{name}{ECHO_SUFFIX}").into_bytes()
}

/// P10: the method both plugin servers answer, and the request body the
/// load client sends (as Docker's client encodes it, newline included).
pub const SERVE_METHOD: &str = "VolumeDriver.Get";
/// P10's request body.
pub const SERVE_BODY: &[u8] = b"{\"Name\":\"bench-volume\"}\n";
/// P10: where both servers put the volume's mount point (`<prefix><name>`).
pub const SERVE_MOUNT_PREFIX: &str = "/mnt/bench/";

/// `<scenario> --key value …`.
#[derive(Debug, Clone)]
pub struct Args {
    scenario: String,
    values: HashMap<String, String>,
}

impl Args {
    /// Parses the process arguments.
    pub fn from_env() -> Result<Args, BoxError> {
        Args::parse(std::env::args().skip(1))
    }

    /// Parses `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, BoxError> {
        let mut it = args.into_iter();
        let scenario = it.next().ok_or("missing scenario")?;
        let mut values = HashMap::new();
        while let Some(key) = it.next() {
            let key = key
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --key, got {key:?}"))?
                .to_owned();
            let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            values.insert(key, value);
        }
        Ok(Args { scenario, values })
    }

    /// The first argument.
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// `--key`'s value, or `default`.
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.values.get(key).map_or(default, String::as_str)
    }

    /// `--key`'s value, required.
    pub fn str(&self, key: &str) -> Result<&str, BoxError> {
        self.values
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("--{key} is required").into())
    }

    /// `--key` as a number, or `default`.
    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, BoxError> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: not a number: {v:?}").into()),
        }
    }

    /// `--secs` as a duration (default 1 s).
    pub fn secs(&self) -> Result<Duration, BoxError> {
        Ok(Duration::from_secs_f64(self.num("secs", 1.0)?))
    }

    /// The benchmark tree (`--tree`).
    pub fn tree(&self) -> Result<Tree, BoxError> {
        Ok(Tree::new(self.str("tree")?))
    }
}

/// One line of flat JSON, `{"key":number,…}`, in insertion order.
#[derive(Debug, Default)]
pub struct Report {
    fields: Vec<(String, f64)>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Adds a figure.
    pub fn num(mut self, key: &str, value: f64) -> Report {
        self.fields.push((key.to_owned(), value));
        self
    }

    /// The JSON line (no newline).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let v = if v.is_finite() { *v } else { -1.0 };
            let _ = write!(out, "\"{k}\":{v}");
        }
        out.push('}');
        out
    }
}

/// Figures of a timed loop: calls per second and client CPU per call.
pub fn rate(report: Report, calls: u64, wall: Duration, cpu: Duration) -> Report {
    let calls_f = calls as f64;
    report
        .num("calls", calls_f)
        .num("secs", wall.as_secs_f64())
        .num("calls_per_sec", calls_f / wall.as_secs_f64())
        .num("cpu_us_per_call", cpu.as_secs_f64() * 1e6 / calls_f)
}

/// This process's CPU time, user plus system (`getrusage(RUSAGE_SELF)`).
pub fn cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is valid, and getrusage only writes
    // into the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// This process's resident set size in KiB (`VmRSS` of
/// `/proc/self/status`).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// How many of this process's file descriptors are sockets.
pub fn open_sockets() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Gives freed heap back to the system (glibc's `malloc_trim`), so RSS
/// reflects what is live; the Go driver does the same with
/// `debug.FreeOSMemory`.
pub fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The tokio runtime `--runtime multi|current` asks for (multi-threaded by
/// default, as `#[tokio::main]` gives an engine or a plugin).
pub fn runtime(args: &Args) -> Result<tokio::runtime::Runtime, BoxError> {
    match args.str_or("runtime", "multi") {
        "multi" => tokio::runtime::Builder::new_multi_thread(),
        "current" => tokio::runtime::Builder::new_current_thread(),
        other => return Err(format!("--runtime multi|current, not {other:?}").into()),
    }
    .enable_all()
    .build()
    .map_err(Into::into)
}

/// Raises the soft limit on open files to the hard limit (Go's runtime
/// does the same at start-up since Go 1.19).
pub fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The `q`th quantile (0.0–1.0) of `values`, which it sorts.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let last = values.len() - 1;
    let i = ((last as f64) * q).round() as usize;
    values[i.min(last)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_bodies_have_the_requested_size_and_match_serde() {
        for size in [MIN_ECHO_SIZE, 50, 65_536] {
            let raw = echo_body(size);
            assert_eq!(raw.len(), size);
            let mut typed = serde_json::to_vec(&Echo::of_size(size)).unwrap();
            typed.push(b'\n');
            assert_eq!(typed, raw);
        }
    }

    #[test]
    fn args_and_reports() {
        let a = Args::parse(["seq", "--size", "50"].map(String::from)).unwrap();
        assert_eq!(a.scenario(), "seq");
        assert_eq!(a.num("size", 0usize).unwrap(), 50);
        assert_eq!(a.num("conc", 16usize).unwrap(), 16);
        let r = Report::new().num("a", 1.5).num("b", 2.0).to_json();
        assert_eq!(r, r#"{"a":1.5,"b":2}"#);
        assert_eq!(quantile(&mut [3.0, 1.0, 2.0], 0.5), 2.0);
    }
}
