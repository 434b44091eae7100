//! `cargo xtask bench`: every scenario of BENCHMARKS.md against this
//! project and against Docker's own `pkg/plugins` (20.10, Debian's
//! `golang-github-docker-docker-dev`, driven by `bench/go-peer`), in the
//! same run, on the same server and the same directory trees.
//!
//! It builds `plugin-bench` (release) and the Go driver, makes a temporary
//! tree, starts `bench-server` on it, then for each scenario runs the
//! clients one after the other, round after round (interleaved), each as a
//! fresh process printing one JSON line. Pinned cases run the server and
//! the client on CPU 0 (`taskset`). P10 turns the roles around: the
//! peers are plugin servers (`plugin-server` in `bench-rust plugin-serve`,
//! Go's `net/http` + `encoding/json` in `go-peer plugin-serve`) and the
//! client is `bench-raw serve`, the same for both. It prints a table of min / median /
//! max per figure with the ratio to Docker and the goal, and writes every
//! figure to `<target>/bench/results.json`.
//!
//! ```text
//! cargo xtask bench [--secs S] [--rounds N] [--only P1,P3] [--no-docker-wait] [--quick]
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::{Result, cmd, root};

/// Where Debian's package puts Docker's source.
const DOCKER_SRC: &str = "/usr/share/gocode";
const DOCKER_PKG: &str = "src/github.com/docker/docker/pkg/plugins";
const INSTALL_GO: &str = "sudo apt-get install golang-go golang-github-docker-docker-dev";

/// Which client a figure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Ours,
    Docker,
    Raw,
}

impl Peer {
    fn key(self) -> &'static str {
        match self {
            Peer::Ours => "ours",
            Peer::Docker => "docker",
            Peer::Raw => "raw",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unpinned,
    Pinned,
}

impl Mode {
    fn key(self) -> &'static str {
        match self {
            Mode::Unpinned => "unpinned",
            Mode::Pinned => "pinned",
        }
    }
}

/// What a figure must reach. Ratios are ours ÷ Docker, on medians.
#[derive(Debug, Clone, Copy)]
enum Goal {
    None,
    RatioAtLeast(f64),
    RatioAtMost(f64),
    /// Ours ÷ the raw ceiling, on medians.
    RawRatioAtLeast(f64),
    AtMost(f64),
    Equals(f64),
}

impl Goal {
    fn text(self) -> String {
        match self {
            Goal::None => String::new(),
            Goal::RatioAtLeast(r) => format!("≥ {r}× Docker"),
            Goal::RatioAtMost(r) => format!("≤ {r}× Docker"),
            Goal::RawRatioAtLeast(r) => format!("≥ {r}× raw"),
            Goal::AtMost(v) => format!("≤ {v}"),
            Goal::Equals(v) => format!("= {v}"),
        }
    }

    fn met(self, ours: Option<f64>, docker: Option<f64>, raw: Option<f64>) -> Option<bool> {
        let ours = ours?;
        match self {
            Goal::None => None,
            Goal::RawRatioAtLeast(r) => Some(ours / raw? >= r),
            Goal::RatioAtLeast(r) => Some(ours / docker? >= r),
            Goal::RatioAtMost(r) => Some(ours / docker? <= r),
            Goal::AtMost(v) => Some(ours <= v),
            Goal::Equals(v) => Some((ours - v).abs() < 1e-9),
        }
    }
}

/// A figure a case reports: its JSON key, a label, and its goal.
#[derive(Debug, Clone, Copy)]
struct Figure {
    key: &'static str,
    label: &'static str,
    goal: Goal,
}

const fn fig(key: &'static str, label: &'static str, goal: Goal) -> Figure {
    Figure { key, label, goal }
}

/// One scenario in one mode: the clients' common arguments, per-peer
/// extra arguments, and what to show.
#[derive(Debug, Clone)]
struct Case {
    id: &'static str,
    title: &'static str,
    mode: Mode,
    scenario: &'static str,
    args: Vec<String>,
    peers: Vec<Peer>,
    /// Per-peer extra arguments.
    extra: BTreeMap<Peer, Vec<String>>,
    /// Peers that run once (round 0) rather than every round: Docker's
    /// ~15 s defaults.
    once: Vec<Peer>,
    /// Run the peers side by side in one round (long idle waits).
    parallel: bool,
    /// The peers are plugin servers: each round runs `bench-raw serve
    /// --server <peer's program>`, the same load client for all (P10).
    server: bool,
    figures: Vec<Figure>,
}

struct Options {
    secs: f64,
    rounds: usize,
    only: Option<Vec<String>>,
    docker_wait: bool,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Options> {
        let mut o = Options {
            secs: 1.0,
            rounds: 5,
            only: None,
            docker_wait: true,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .copied()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match *arg {
                "--secs" => {
                    let v = value("--secs")?;
                    o.secs = v.parse().map_err(|_| format!("--secs: {v:?}"))?;
                }
                "--rounds" => {
                    let v = value("--rounds")?;
                    o.rounds = v.parse().map_err(|_| format!("--rounds: {v:?}"))?;
                }
                "--only" => {
                    let v = value("--only")?;
                    o.only = Some(v.split(',').map(|s| s.trim().to_uppercase()).collect());
                }
                "--no-docker-wait" => o.docker_wait = false,
                "--quick" => {
                    o.secs = 0.3;
                    o.docker_wait = false;
                }
                other => return Err(format!("bench: unknown option {other:?}")),
            }
        }
        if o.rounds == 0 {
            return Err("--rounds must be at least 1".into());
        }
        Ok(o)
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| (*a).to_owned()).collect()
}

fn cases(o: &Options) -> Vec<Case> {
    let secs = format!("{}", o.secs);
    let all = vec![Peer::Ours, Peer::Docker, Peer::Raw];
    let both = vec![Peer::Ours, Peer::Docker];
    let base = |id, title, mode, scenario, args: &[&str], peers: &Vec<Peer>, figures| Case {
        id,
        title,
        mode,
        scenario,
        args: s(args),
        peers: peers.clone(),
        extra: BTreeMap::new(),
        once: Vec::new(),
        parallel: false,
        server: false,
        figures,
    };
    let rate_figs = |goal_rate: Goal, goal_cpu: Goal| {
        vec![
            fig("calls_per_sec", "calls/s", goal_rate),
            fig("cpu_us_per_call", "client CPU µs/call", goal_cpu),
        ]
    };
    let mut v = Vec::new();
    for mode in [Mode::Pinned, Mode::Unpinned] {
        let pinned = mode == Mode::Pinned;
        let (g1, g1cpu) = if pinned {
            (Goal::RawRatioAtLeast(0.85), Goal::AtMost(8.5))
        } else {
            (Goal::None, Goal::None)
        };
        for transport in ["unix", "tcp"] {
            let title = if transport == "unix" {
                "sequential, 50 B, unix"
            } else {
                "sequential, 50 B, tcp"
            };
            v.push(base(
                "P1",
                title,
                mode,
                "seq",
                &["--transport", transport, "--size", "50", "--secs", &secs],
                &all,
                rate_figs(g1, g1cpu),
            ));
        }
        let g2 = if pinned {
            Goal::None
        } else {
            Goal::RatioAtLeast(1.8)
        };
        v.push(base(
            "P2",
            "16 concurrent callers, 50 B, unix",
            mode,
            "conc",
            &["--conc", "16", "--size", "50", "--secs", &secs],
            &all,
            rate_figs(g2, Goal::None),
        ));
        let g3 = if pinned {
            Goal::RatioAtMost(0.08)
        } else {
            Goal::None
        };
        v.push(base(
            "P3",
            "sequential, 64 KiB, unix",
            mode,
            "seq",
            &["--size", "65536", "--secs", &secs],
            &all,
            rate_figs(Goal::None, g3),
        ));
    }
    let u = Mode::Unpinned;
    let mut p4 = base(
        "P4",
        "get of a missing name (default policy)",
        u,
        "missing",
        &[],
        &both,
        vec![fig("us_per_get", "µs per get", Goal::AtMost(5000.0))],
    );
    p4.extra.insert(Peer::Ours, s(&["--iters", "1000"]));
    p4.extra.insert(Peer::Docker, s(&["--iters", "1"]));
    p4.once.push(Peer::Docker);
    let mut p5 = base(
        "P5",
        "get_all: 10 live plugins + 1 stale socket",
        u,
        "getall",
        &[],
        &both,
        vec![
            fig("ms", "ms per listing", Goal::AtMost(50.0)),
            fig("plugins", "plugins listed", Goal::Equals(10.0)),
        ],
    );
    p5.extra.insert(Peer::Ours, s(&["--iters", "5"]));
    p5.extra.insert(Peer::Docker, s(&["--iters", "1"]));
    p5.once.push(Peer::Docker);
    if o.docker_wait {
        v.push(p4);
        v.push(p5);
    } else {
        for mut c in [p4, p5] {
            c.peers = vec![Peer::Ours];
            v.push(c);
        }
    }
    v.push(base(
        "P6",
        "scan (1,000 sockets + 10,000 specs); 1,000 .spec lookups",
        u,
        "scan",
        &["--iters", "5"],
        &both,
        vec![
            fig("scan_ms", "ms per scan (warm)", Goal::RatioAtMost(0.3)),
            fig("lookups_ms", "ms per 1,000 lookups", Goal::RatioAtMost(0.3)),
        ],
    ));
    v.push(base(
        "P7",
        "first get (resolve + dial + activate)",
        u,
        "first-get",
        &["--count", "200"],
        &both,
        vec![
            fig("p50_us", "p50 µs", Goal::RatioAtMost(0.5)),
            fig("p90_us", "p90 µs", Goal::None),
        ],
    ));
    v.push(base(
        "P8",
        "1,000 concurrent gets of one name",
        u,
        "herd",
        &["--callers", "1000"],
        &both,
        vec![
            fig(
                "handshakes",
                "handshakes seen by the server",
                Goal::Equals(1.0),
            ),
            fig("ms", "ms for all", Goal::RatioAtMost(1.0)),
        ],
    ));
    v.push(base(
        "P9",
        "1,000 activated idle plugins",
        u,
        "idle",
        &[],
        &both,
        vec![
            fig("rss_kib", "RSS KiB", Goal::RatioAtMost(0.5)),
            fig("kib_per_plugin", "RSS KiB per plugin", Goal::None),
            fig("sockets_open", "sockets open", Goal::None),
        ],
    ));
    if o.docker_wait {
        let mut idle = base(
            "P9",
            "… after 35 s idle",
            u,
            "idle",
            &["--idle-secs", "35"],
            &both,
            vec![
                fig(
                    "sockets_after_idle",
                    "sockets open after 35 s",
                    Goal::Equals(0.0),
                ),
                fig("rss_after_idle_kib", "RSS KiB after 35 s", Goal::None),
            ],
        );
        idle.parallel = true;
        v.push(idle);
    }
    for (title, conc) in [
        ("plugin side: VolumeDriver.Get, sequential", "1"),
        ("plugin side: VolumeDriver.Get, 16 connections", "16"),
    ] {
        let mut p10 = base(
            "P10",
            title,
            u,
            "serve",
            &["--conc", conc, "--secs", &secs],
            &both,
            vec![
                fig("calls_per_sec", "requests/s", Goal::RatioAtLeast(2.0)),
                fig(
                    "server_cpu_us_per_call",
                    "server CPU µs/request",
                    Goal::RatioAtMost(0.5),
                ),
                fig("server_rss_kib", "server RSS KiB", Goal::None),
            ],
        );
        p10.server = true;
        v.push(p10);
    }
    if let Some(only) = &o.only {
        v.retain(|c| only.iter().any(|id| id == c.id));
    }
    v
}

/// Built programs and the tree they share.
struct Setup {
    target: PathBuf,
    tree: PathBuf,
    cpus: usize,
}

impl Setup {
    fn program(&self, peer: Peer) -> PathBuf {
        match peer {
            Peer::Ours => self.target.join("release/bench-rust"),
            Peer::Raw => self.target.join("release/bench-raw"),
            Peer::Docker => self.target.join("bench/go/go-peer"),
        }
    }

    fn command(&self, peer: Peer, case: &Case) -> Command {
        let program = if case.server {
            self.program(Peer::Raw)
        } else {
            self.program(peer)
        };
        let mut c = if case.mode == Mode::Pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.arg(case.scenario);
        if case.server {
            c.arg("--server").arg(self.program(peer));
        }
        c.arg("--tree")
            .arg(&self.tree)
            .args(&case.args)
            .args(case.extra.get(&peer).into_iter().flatten())
            .stdin(Stdio::null());
        for proxy in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
            c.env_remove(proxy);
        }
        c
    }
}

/// Figures of one run: `key → value`.
type Run = BTreeMap<String, f64>;

pub(crate) fn run(args: &[&str]) -> Result {
    let options = Options::parse(args)?;
    check_tools()?;
    let target = target_dir();
    cmd::run(cmd::cargo(
        &["build", "--release", "-p", "plugin-bench", "--bins"],
        &[],
    ))?;
    build_go(&target)?;
    let tree = std::env::temp_dir().join(format!("plugin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tree).map_err(|e| format!("{}: {e}", tree.display()))?;
    let setup = Setup {
        target,
        tree,
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
    };
    let result = with_server(&setup, |server| measure(&setup, server, &options));
    let _ = std::fs::remove_dir_all(&setup.tree);
    let results = result?;
    let table = table(&results);
    println!("{table}");
    let json = to_json(&setup, &options, &results);
    let dir = setup.target.join("bench");
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for file in [
        dir.join("results.json"),
        dir.join(format!("results-{stamp}.json")),
    ] {
        std::fs::write(&file, &json).map_err(|e| format!("{}: {e}", file.display()))?;
        eprintln!("bench: figures written to {}", file.display());
    }
    Ok(())
}

fn check_tools() -> Result {
    let go = Command::new("go").arg("version").output();
    if !go.is_ok_and(|o| o.status.success()) {
        return Err(format!(
            "Go is not installed; Docker's side of the benchmarks needs it and Docker 20.10's source:\n    {INSTALL_GO}"
        ));
    }
    if !Path::new(DOCKER_SRC).join(DOCKER_PKG).is_dir() {
        return Err(format!(
            "Docker's Go source is missing ({DOCKER_SRC}/{DOCKER_PKG}); install it with:\n    {INSTALL_GO}"
        ));
    }
    let taskset = Command::new("taskset").arg("-V").output();
    if !taskset.is_ok_and(|o| o.status.success()) {
        return Err(
            "taskset is missing; install util-linux:\n    sudo apt-get install util-linux".into(),
        );
    }
    Ok(())
}

/// The workspace's target directory (`CARGO_TARGET_DIR` or `target/`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// Builds the Go driver in GOPATH mode against Debian's Docker source; the
/// output and Go's caches stay under `<target>/bench/go/`.
fn build_go(target: &Path) -> Result {
    let go = target.join("bench/go");
    let gopath = format!("{}:{DOCKER_SRC}", go.join("gopath").display());
    let mut c = Command::new("go");
    c.args(["build", "-o"])
        .arg(go.join("go-peer"))
        .args(["main.go", "plugin_server.go"])
        .current_dir(root().join("bench/go-peer"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOCACHE", go.join("cache"))
        .env("GOFLAGS", "");
    eprintln!("$ GO111MODULE=off GOPATH=…:{DOCKER_SRC} go build (bench/go-peer)");
    let status = c.status().map_err(|e| format!("cannot run go: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("go build of bench/go-peer failed ({status})"))
    }
}

/// Starts `bench-server` on the tree, waits for `ready`, runs `f`, then
/// stops the server (closing its stdin, then killing it).
fn with_server<T>(setup: &Setup, f: impl FnOnce(u32) -> Result<T>) -> Result<T> {
    let mut child = Command::new(setup.target.join("release/bench-server"))
        .arg("serve")
        .arg("--tree")
        .arg(&setup.tree)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start bench-server: {e}"))?;
    let ready = child
        .stdout
        .take()
        .map(|out| {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            line.trim() == "ready"
        })
        .unwrap_or(false);
    let result = if ready {
        f(child.id())
    } else {
        Err("bench-server did not start".into())
    };
    stop(&mut child);
    result
}

fn stop(child: &mut Child) {
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Moves every thread of `pid` to `cpus` (`0` or `0-N`).
fn pin(pid: u32, cpus: &str) -> Result {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset -a -p -c {cpus} {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Every run of every case: `(case, peer) → runs`.
struct Results {
    cases: Vec<Case>,
    runs: Vec<BTreeMap<Peer, Vec<Run>>>,
}

fn measure(setup: &Setup, server: u32, o: &Options) -> Result<Results> {
    let cases = cases(o);
    let all_cpus = format!("0-{}", setup.cpus.saturating_sub(1));
    let mut runs = Vec::new();
    let started = Instant::now();
    for case in &cases {
        pin(
            server,
            if case.mode == Mode::Pinned {
                "0"
            } else {
                &all_cpus
            },
        )?;
        let rounds = if case.parallel { 1 } else { o.rounds };
        let mut by_peer: BTreeMap<Peer, Vec<Run>> = BTreeMap::new();
        let live = std::io::stderr().is_terminal();
        if !live {
            eprintln!(
                "bench: {:>4.0} s  {} {} ({})",
                started.elapsed().as_secs_f64(),
                case.id,
                case.title,
                case.mode.key()
            );
        }
        for round in 0..rounds {
            if live {
                eprint!(
                    "\rbench: {:>4.0} s  {} {:<45} {} round {}/{rounds}   ",
                    started.elapsed().as_secs_f64(),
                    case.id,
                    case.title,
                    case.mode.key(),
                    round + 1
                );
                let _ = std::io::stderr().flush();
            }
            let peers: Vec<Peer> = case
                .peers
                .iter()
                .copied()
                .filter(|p| round == 0 || !case.once.contains(p))
                .collect();
            if case.parallel {
                let children: Vec<_> = peers
                    .iter()
                    .map(|&p| (p, setup.command(p, case).stdout(Stdio::piped()).spawn()))
                    .collect();
                for (peer, child) in children {
                    let child = child.map_err(|e| format!("cannot start {}: {e}", peer.key()))?;
                    let out = child
                        .wait_with_output()
                        .map_err(|e| format!("{}: {e}", peer.key()))?;
                    by_peer
                        .entry(peer)
                        .or_default()
                        .push(parse_output(case, peer, &out)?);
                }
            } else {
                for peer in peers {
                    let out = cmd::output(setup.command(peer, case))?;
                    by_peer
                        .entry(peer)
                        .or_default()
                        .push(parse_output(case, peer, &out)?);
                }
            }
        }
        runs.push(by_peer);
    }
    pin(server, &all_cpus)?;
    eprintln!(
        "\rbench: done in {:.0} s{:60}",
        started.elapsed().as_secs_f64(),
        ""
    );
    Ok(Results { cases, runs })
}

fn parse_output(case: &Case, peer: Peer, out: &std::process::Output) -> Result<Run> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{'));
    match (out.status.success(), line.and_then(parse_flat_json)) {
        (true, Some(run)) => Ok(run),
        _ => Err(format!(
            "{} {} ({}) failed ({}):\n{}{}",
            case.id,
            peer.key(),
            case.scenario,
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// `{"key":number,…}`, as the clients print it (no nesting, no strings
/// other than keys).
fn parse_flat_json(line: &str) -> Option<Run> {
    let inner = line.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut run = Run::new();
    for part in inner.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part.split_once(':')?;
        let k = k.trim().strip_prefix('"')?.strip_suffix('"')?;
        run.insert(k.to_owned(), v.trim().parse().ok()?);
    }
    Some(run)
}

/// Min, median and max of one figure over runs.
fn stats(runs: Option<&Vec<Run>>, key: &str) -> Option<(f64, f64, f64, usize)> {
    let mut v: Vec<f64> = runs?.iter().filter_map(|r| r.get(key).copied()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Some((v[0], mid, v[v.len() - 1], v.len()))
}

fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        let mut digits = format!("{v:.0}");
        let mut i = digits.len();
        while i > 3 + usize::from(v < 0.0) {
            i -= 3;
            digits.insert(i, ',');
        }
        digits
    } else if a >= 100.0 || a == 0.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn spread(s: Option<(f64, f64, f64, usize)>) -> String {
    match s {
        None => "–".to_owned(),
        Some((min, med, max, 1)) => {
            let _ = (min, max);
            format!("{} (1 run)", num(med))
        }
        Some((min, med, max, _)) => format!("{} / **{}** / {}", num(min), num(med), num(max)),
    }
}

fn table(r: &Results) -> String {
    let mut out = String::from(
        "| # | scenario | mode | figure | ours min / **median** / max | Docker min / **median** / max | raw median | ours ÷ Docker | goal | met |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (case, runs) in r.cases.iter().zip(&r.runs) {
        for f in &case.figures {
            let ours = stats(runs.get(&Peer::Ours), f.key);
            let docker = stats(runs.get(&Peer::Docker), f.key);
            let raw = stats(runs.get(&Peer::Raw), f.key);
            let ratio = match (ours, docker) {
                (Some(o), Some(d)) if d.1 != 0.0 => format!("{:.2}", o.1 / d.1),
                _ => "–".to_owned(),
            };
            let met = match f
                .goal
                .met(ours.map(|s| s.1), docker.map(|s| s.1), raw.map(|s| s.1))
            {
                None => "",
                Some(true) => "yes",
                Some(false) => "**no**",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                case.id,
                case.title,
                case.mode.key(),
                f.label,
                spread(ours),
                spread(docker),
                raw.map_or("–".to_owned(), |s| num(s.1)),
                ratio,
                f.goal.text(),
                met
            );
        }
    }
    out
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_owned()
    }
}

fn to_json(setup: &Setup, o: &Options, r: &Results) -> String {
    let when = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = format!(
        "{{\n  \"unix_time\": {when},\n  \"cpus\": {},\n  \"secs\": {},\n  \"rounds\": {},\n  \"cases\": [\n",
        setup.cpus,
        json_num(o.secs),
        o.rounds
    );
    for (i, (case, runs)) in r.cases.iter().zip(&r.runs).enumerate() {
        let _ = write!(
            out,
            "    {{\"id\": {}, \"title\": {}, \"mode\": {}, \"scenario\": {}, \"args\": [{}],\n     \"figures\": [",
            json_str(case.id),
            json_str(case.title),
            json_str(case.mode.key()),
            json_str(case.scenario),
            case.args
                .iter()
                .map(|a| json_str(a))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (j, f) in case.figures.iter().enumerate() {
            let ours = stats(runs.get(&Peer::Ours), f.key).map(|s| s.1);
            let docker = stats(runs.get(&Peer::Docker), f.key).map(|s| s.1);
            let raw = stats(runs.get(&Peer::Raw), f.key).map(|s| s.1);
            let met = match f.goal.met(ours, docker, raw) {
                None => "null",
                Some(true) => "true",
                Some(false) => "false",
            };
            let _ = write!(
                out,
                "{}{{\"key\": {}, \"goal\": {}, \"met\": {met}",
                if j > 0 { ", " } else { "" },
                json_str(f.key),
                json_str(&f.goal.text())
            );
            for (peer, runs) in runs {
                if let Some((min, med, max, n)) = stats(Some(runs), f.key) {
                    let _ = write!(
                        out,
                        ", {}: {{\"min\": {}, \"median\": {}, \"max\": {}, \"runs\": {n}}}",
                        json_str(peer.key()),
                        json_num(min),
                        json_num(med),
                        json_num(max)
                    );
                }
            }
            out.push('}');
        }
        out.push_str("],\n     \"runs\": {");
        for (k, (peer, runs)) in runs.iter().enumerate() {
            let list: Vec<String> = runs
                .iter()
                .map(|run| {
                    let fields: Vec<String> = run
                        .iter()
                        .map(|(k, v)| format!("{}: {}", json_str(k), json_num(*v)))
                        .collect();
                    format!("{{{}}}", fields.join(", "))
                })
                .collect();
            let _ = write!(
                out,
                "{}{}: [{}]",
                if k > 0 { ", " } else { "" },
                json_str(peer.key()),
                list.join(", ")
            );
        }
        out.push_str("}}");
        out.push_str(if i + 1 < r.cases.len() { ",\n" } else { "\n" });
    }
    out.push_str("  ]\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_json_lines_parse() {
        let run = parse_flat_json(r#"{"calls":16,"cpu_us_per_call":21.5,"x":-1}"#).unwrap();
        assert_eq!(run["calls"], 16.0);
        assert_eq!(run["cpu_us_per_call"], 21.5);
        assert_eq!(run["x"], -1.0);
        assert!(parse_flat_json("not json").is_none());
    }

    #[test]
    fn numbers_and_goals() {
        assert_eq!(num(32_000.4), "32,000");
        assert_eq!(num(21.46), "21.5");
        assert_eq!(num(1.0), "1");
        assert_eq!(
            Goal::RatioAtLeast(2.0).met(Some(64.0), Some(32.0), None),
            Some(true)
        );
        assert_eq!(
            Goal::RatioAtMost(0.5).met(Some(6.0), Some(10.0), None),
            Some(false)
        );
        assert_eq!(Goal::AtMost(8.0).met(Some(9.0), None, None), Some(false));
        assert_eq!(
            Goal::RawRatioAtLeast(0.85).met(Some(80.0), Some(40.0), Some(100.0)),
            Some(false)
        );
        assert_eq!(Goal::None.met(Some(1.0), Some(1.0), None), None);
    }
}
