//! `bench-raw <seq|conc|first-get> --tree DIR [--transport unix|tcp] [--size N]
//! [--conc N] [--secs S]`: the ceiling. A pre-formatted HTTP/1.1 request
//! (the bytes Docker sends, body included) is written on one kept-alive
//! socket and the reply read back, with no HTTP library: the reply's head
//! is scanned for `Content-Length` and that many body bytes are read. `conc`
//! runs one such loop per thread, each on its own connection.
//!
//! Prints the same JSON line as `bench-rust` (`calls_per_sec`,
//! `cpu_us_per_call`).
//!
//! `bench-raw serve --server PROG --conc N --secs S --tree DIR` is P10's
//! load client, the same for every plugin server: it starts `PROG
//! plugin-serve --socket …` (our `bench-rust` or the Go driver), sends
//! `Plugin.Activate` once, then `VolumeDriver.Get` from `--conc` threads,
//! each on its own kept-alive connection, and reports the requests per
//! second, the server's CPU per request (`/proc/<pid>/stat`, user +
//! system) and the server's RSS at the end.

#![forbid(unsafe_code)]
// Results go to stdout as one JSON line for the xtask.
#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plugin_bench::{Args, BoxError, ECHO_METHOD, Report, Tree, cpu_time, echo_body, rate};

fn main() -> Result<(), BoxError> {
    let args = Args::from_env()?;
    let tree = args.tree()?;
    if args.scenario() == "serve" {
        println!("{}", serve(&args, &tree)?.to_json());
        return Ok(());
    }
    let size: usize = args.num("size", 50)?;
    let transport = args.str_or("transport", "unix").to_owned();
    let secs = args.secs()?;
    let request = Arc::new(request(&tree, &transport, size)?);
    let report = match args.scenario() {
        "seq" => {
            let mut conn = Conn::open(&tree, &transport)?;
            let stop = AtomicBool::new(false);
            conn.run(&request, size, secs / 5, &stop)?;
            let (start, cpu) = (Instant::now(), cpu_time());
            let calls = conn.run(&request, size, secs, &stop)?;
            rate(Report::new(), calls, start.elapsed(), cpu_time() - cpu)
        }
        "conc" => {
            let callers: usize = args.num("conc", 16)?;
            conc(&tree, &transport, &request, size, callers, secs)?
        }
        "first-get" => first_get(&tree, args.num("count", 100)?)?,
        other => return Err(format!("unknown scenario {other:?}").into()),
    };
    println!("{}", report.to_json());
    Ok(())
}

/// The request Docker's client writes for `Test.Echo` (header order and
/// values as Go sends them over a unix socket).
fn request(tree: &Tree, transport: &str, size: usize) -> Result<Vec<u8>, BoxError> {
    let host = match transport {
        "unix" => "plugin.moby.localhost".to_owned(),
        _ => tcp_address(tree)?,
    };
    let body = echo_body(size);
    let mut req = format!(
        "POST /{ECHO_METHOD} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n\
         Content-Length: {}\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    Ok(req)
}

/// The echo server's tcp `host:port`, from the spec file it wrote.
fn tcp_address(tree: &Tree) -> Result<String, BoxError> {
    let spec = std::fs::read_to_string(tree.specs("main").join("bench-tcp.spec"))?;
    Ok(spec
        .trim()
        .strip_prefix("tcp://")
        .ok_or("bench-tcp.spec is not tcp://")?
        .to_owned())
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(tree: &Tree, transport: &str) -> Result<Conn, BoxError> {
        let stream = match transport {
            "unix" => Stream::Unix(UnixStream::connect(tree.main_socket())?),
            "tcp" => {
                let s = TcpStream::connect(tcp_address(tree)?)?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            other => return Err(format!("--transport unix|tcp, not {other:?}").into()),
        };
        Ok(Conn {
            stream,
            buf: vec![0; 256 * 1024],
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Unix(s) => s.write_all(bytes),
            Stream::Tcp(s) => s.write_all(bytes),
        }
    }

    fn read(&mut self, from: usize) -> std::io::Result<usize> {
        let buf = &mut self.buf[from..];
        let n = match &mut self.stream {
            Stream::Unix(s) => s.read(buf)?,
            Stream::Tcp(s) => s.read(buf)?,
        };
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }

    /// Calls until `secs` pass or `stop` is set; returns the number of
    /// calls.
    fn run(
        &mut self,
        request: &[u8],
        size: usize,
        secs: Duration,
        stop: &AtomicBool,
    ) -> Result<u64, BoxError> {
        let start = Instant::now();
        let mut calls = 0;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..16 {
                self.call(request, size)?;
            }
            calls += 16;
            if start.elapsed() >= secs {
                break;
            }
        }
        Ok(calls)
    }

    /// One exchange: write the request, read the head, then the body.
    fn call(&mut self, request: &[u8], size: usize) -> Result<(), BoxError> {
        if self.exchange(request)? != size {
            return Err("unexpected reply".into());
        }
        Ok(())
    }

    /// Writes `request`, reads a `200` reply; returns its body length.
    fn exchange(&mut self, request: &[u8]) -> Result<usize, BoxError> {
        self.write_all(request)?;
        let mut have = 0;
        let head_end = loop {
            have += self.read(have)?;
            if let Some(i) = find(&self.buf[..have], b"\r\n\r\n") {
                break i + 4;
            }
            if have == self.buf.len() {
                return Err("reply head too large".into());
            }
        };
        let len = content_length(&self.buf[..head_end]).ok_or("no Content-Length")?;
        if !self.buf[..head_end].starts_with(b"HTTP/1.1 200") {
            return Err("unexpected reply".into());
        }
        while have < head_end + len {
            have += self.read(have)?;
        }
        Ok(len)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

fn conc(
    tree: &Tree,
    transport: &str,
    request: &Arc<Vec<u8>>,
    size: usize,
    callers: usize,
    secs: Duration,
) -> Result<Report, BoxError> {
    let conns = (0..callers)
        .map(|_| Conn::open(tree, transport))
        .collect::<Result<Vec<_>, _>>()?;
    let (calls, wall, cpu) = drive(conns, request, Some(size), secs, || Ok(cpu_time()))?;
    Ok(rate(Report::new(), calls, wall, cpu))
}

/// One blocking caller thread per connection, each sending `request` in
/// a loop (and checking the reply's length when `size` is given): `secs
/// / 5` of warm-up, then the calls made during `secs` are counted, with
/// `cpu` (a CPU-time clock) read around them. Returns the calls, the wall
/// time and the CPU time.
fn drive(
    conns: Vec<Conn>,
    request: &Arc<Vec<u8>>,
    size: Option<usize>,
    secs: Duration,
    cpu: impl Fn() -> Result<Duration, BoxError>,
) -> Result<(u64, Duration, Duration), BoxError> {
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for mut conn in conns {
        let (request, stop, counting, calls) = (
            request.clone(),
            stop.clone(),
            counting.clone(),
            calls.clone(),
        );
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                let len = conn.exchange(&request).map_err(|e| e.to_string())?;
                if size.is_some_and(|s| s != len) {
                    return Err("unexpected reply".into());
                }
                if counting.load(Ordering::Relaxed) {
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        }));
    }
    std::thread::sleep(secs / 5);
    let (start, cpu_before) = (Instant::now(), cpu()?);
    counting.store(true, Ordering::Relaxed);
    std::thread::sleep(secs);
    counting.store(false, Ordering::Relaxed);
    let measured = cpu().map(|after| (start.elapsed(), after - cpu_before));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| "caller thread panicked")??;
    }
    let (wall, cpu) = measured?;
    Ok((calls.load(Ordering::Relaxed), wall, cpu))
}

/// The ceiling of P7: connect to a fresh socket of the "many" tree, send
/// `Plugin.Activate`, read the reply, keep the connection.
fn first_get(tree: &Tree, count: usize) -> Result<Report, BoxError> {
    let request = b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin.moby.localhost\r\n\
        User-Agent: Go-http-client/1.1\r\nContent-Length: 0\r\n\
        Accept: application/vnd.docker.plugins.v1.2+json\r\n\r\n";
    let mut times = Vec::new();
    let mut conns = Vec::new();
    for i in 0..count.min(plugin_bench::MANY_SOCKETS) {
        let start = Instant::now();
        let path = tree
            .sockets("many")
            .join(format!("{}.sock", plugin_bench::many_name(i)));
        let mut conn = Conn {
            stream: Stream::Unix(UnixStream::connect(path)?),
            buf: vec![0; 4096],
        };
        conn.call(request, plugin_bench::ACTIVATE_REPLY.len())?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
        conns.push(conn);
    }
    Ok(Report::new()
        .num("p50_us", plugin_bench::quantile(&mut times, 0.5))
        .num("p90_us", plugin_bench::quantile(&mut times, 0.9)))
}

/// P10: one plugin server under the same load. See the module docs.
fn serve(args: &Args, tree: &Tree) -> Result<Report, BoxError> {
    use plugin_bench::{SERVE_BODY, SERVE_METHOD, SERVE_MOUNT_PREFIX};
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let program = args.str("server")?;
    let callers: usize = args.num("conc", 1)?;
    let secs = args.secs()?;
    let socket = tree
        .root()
        .join(format!("serve-{}.sock", std::process::id()));
    let mut server = Command::new(program)
        .args([
            "plugin-serve",
            "--runtime",
            args.str_or("runtime", "multi"),
            "--tree",
        ])
        .arg(tree.root())
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = server.id();
    let mut line = String::new();
    if let Some(out) = server.stdout.take() {
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    if line.trim() != "ready" {
        let _ = server.kill();
        let _ = server.wait();
        return Err(format!("{program} did not start: {line:?}").into());
    }
    let result = (|| -> Result<Report, BoxError> {
        let mut request = format!(
            "POST /{SERVE_METHOD} HTTP/1.1\r\nHost: plugin.moby.localhost\r\n\
             User-Agent: Go-http-client/1.1\r\nContent-Length: {}\r\n\
             Accept: application/vnd.docker.plugins.v1.2+json\r\n\r\n",
            SERVE_BODY.len()
        )
        .into_bytes();
        request.extend_from_slice(SERVE_BODY);
        let activate = b"POST /Plugin.Activate HTTP/1.1\r\nHost: plugin.moby.localhost\r\n\
            User-Agent: Go-http-client/1.1\r\nContent-Length: 0\r\n\
            Accept: application/vnd.docker.plugins.v1.2+json\r\n\r\n";
        let connect = || -> Result<Conn, BoxError> {
            Ok(Conn {
                stream: Stream::Unix(UnixStream::connect(&socket)?),
                buf: vec![0; 4096],
            })
        };
        connect()?.exchange(activate)?;
        // Both servers must answer the same body, or the comparison is off.
        let expected = format!(
            "{{\"Volume\":{{\"Name\":\"bench-volume\",\"Mountpoint\":\"{SERVE_MOUNT_PREFIX}bench-volume\"}}}}\n"
        );
        {
            let mut c = connect()?;
            let len = c.exchange(&request)?;
            let head = find(&c.buf, b"\r\n\r\n").ok_or("no reply head")? + 4;
            if &c.buf[head..head + len] != expected.as_bytes() {
                return Err(format!(
                    "{program}: unexpected reply {:?}",
                    String::from_utf8_lossy(&c.buf[head..head + len])
                )
                .into());
            }
        }
        let conns = (0..callers)
            .map(|_| connect())
            .collect::<Result<Vec<_>, _>>()?;
        let (calls, wall, cpu) = drive(conns, &Arc::new(request), None, secs, || process_cpu(pid))?;
        let rss = process_rss_kib(pid)?;
        let calls = calls as f64;
        Ok(Report::new()
            .num("calls", calls)
            .num("calls_per_sec", calls / wall.as_secs_f64())
            .num("server_cpu_us_per_call", cpu.as_secs_f64() * 1e6 / calls)
            .num("server_rss_kib", rss as f64))
    })();
    drop(server.stdin.take());
    let _ = server.wait();
    let _ = std::fs::remove_file(&socket);
    result
}

/// User + system CPU of process `pid` so far (`/proc/<pid>/stat`, clock
/// ticks).
fn process_cpu(pid: u32) -> Result<Duration, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may
    // contain spaces: state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').ok_or("bad /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).ok_or("bad /proc stat")?.parse::<u64>()?
        + fields.get(12).ok_or("bad /proc stat")?.parse::<u64>()?;
    // /proc counts in USER_HZ, 100 on every Linux architecture's ABI.
    Ok(Duration::from_millis(ticks * 10))
}

/// Resident set size of process `pid` in KiB (`VmRSS`).
fn process_rss_kib(pid: u32) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}
