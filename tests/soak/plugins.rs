//! The plugin side of the soak: each plugin instance is a child process
//! (this binary re-executed with `child …`), so that killing one is real.
//!
//! A `normal` instance serves a plugin-server kit plugin (the `memvol`,
//! `simple-ipam`, `memnet` and `rule-authz` examples, or the small ones
//! below for logging and metrics) with the kit's own [`Server`]. The
//! chaos modes answer from a raw socket loop instead: `mute` reads the
//! request and never answers, `garbage` answers bytes that are not HTTP or
//! a 200 that is not JSON, `cut` declares a body and closes early,
//! `trickle` sends the real reply a byte at a time. Every instance appends
//! `<method> <token>` to the plugin's record file for each request it
//! reads, before answering, so the parent can count deliveries.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use plugin_server::{Listener, Plugin, PluginError, Reply, Server};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What a plugin instance does with the requests it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    Mute,
    Garbage,
    Cut,
    Trickle,
}

impl Mode {
    pub(crate) const ALL: [Mode; 5] = [
        Mode::Normal,
        Mode::Mute,
        Mode::Garbage,
        Mode::Cut,
        Mode::Trickle,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Mute => "mute",
            Mode::Garbage => "garbage",
            Mode::Cut => "cut",
            Mode::Trickle => "trickle",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// The plugins of a soak: name, the kit plugin it runs, its kind.
pub(crate) const PLUGINS: &[(&str, &str)] = &[
    ("memvol", "VolumeDriver"),
    ("simple-ipam", "IpamDriver"),
    ("memnet", "NetworkDriver"),
    ("rule-authz", "authz"),
    ("soaklog", "LogDriver"),
    ("soakmetrics", "MetricsCollector"),
];

/// Where the unique id of a request is: the first `soak-<digits>` in its
/// body (volume and network names, IPAM options, FIFO paths, request URIs).
pub(crate) fn token(body: &[u8]) -> Option<&str> {
    let at = body.windows(5).position(|w| w == b"soak-")?;
    let digits = body[at + 5..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    (digits > 0)
        .then(|| std::str::from_utf8(&body[at..at + 5 + digits]).ok())
        .flatten()
}

/// Appends `<method> <token>` lines to a plugin's record file; one
/// `write` per line with `O_APPEND`, so lines of instances killed or
/// running side by side never interleave.
#[derive(Clone)]
struct Recorder(Arc<Mutex<std::fs::File>>);

impl Recorder {
    fn open(path: &Path) -> std::io::Result<Recorder> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Recorder(Arc::new(Mutex::new(file))))
    }

    fn record(&self, method: &str, body: &[u8]) {
        let line = format!("{method} {}\n", token(body).unwrap_or("-"));
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A lost record shows as a missing delivery, never a duplicate.
        let _ = file.write_all(line.as_bytes());
    }
}

/// `child NAME MODE (unix PATH | tcp SPEC) RECORD DATA`: one plugin
/// instance, until killed.
pub(crate) fn child_main(args: &[String]) -> Result<(), String> {
    let [name, mode, transport, at, record, data] = args else {
        return Err(format!("bad child arguments: {args:?}"));
    };
    let mode = Mode::parse(mode).ok_or_else(|| format!("bad mode {mode}"))?;
    let recorder = Recorder::open(Path::new(record)).map_err(|e| format!("{record}: {e}"))?;
    let plugin = Arc::new(kit_plugin(name, Path::new(data))?);
    // A soak killed before it could stop its plugins must not leave them
    // running: once re-parented, the instance exits.
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(0);
            }
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve(plugin, mode, transport, Path::new(at), recorder))
}

/// Serves `plugin` in `mode`; every request read is recorded once, by the
/// recording wrapper in normal mode and by the raw loop otherwise.
async fn serve(
    plugin: Arc<Plugin>,
    mode: Mode,
    transport: &str,
    at: &Path,
    recorder: Recorder,
) -> Result<(), String> {
    let tcp = transport == "tcp";
    if mode == Mode::Normal {
        let listener = if tcp {
            Listener::tcp("127.0.0.1:0")
        } else {
            Listener::unix(at)
        }
        .map_err(|e| e.to_string())?;
        if let Ok(plugin_server::ListenAddr::Tcp(addr)) = listener.local_addr() {
            write_atomically(at, &format!("tcp://{addr}\n"))?;
        }
        let served = Server::new(recording(plugin, recorder)?)
            .shutdown_timeout(Duration::from_millis(200))
            .serve(listener)
            .await;
        if tcp {
            let _ = std::fs::remove_file(at);
        }
        return served.map_err(|e| e.to_string());
    }
    let listener = if tcp {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        write_atomically(at, &format!("tcp://{addr}\n"))?;
        Raw::Tcp(l)
    } else {
        // The parent runs one instance of a plugin at a time: whatever is
        // at the path is a predecessor's stale socket.
        let _ = std::fs::remove_file(at);
        Raw::Unix(tokio::net::UnixListener::bind(at).map_err(|e| e.to_string())?)
    };
    let mut n = 0u64;
    loop {
        n += 1;
        let state = (mode, plugin.clone(), recorder.clone(), n);
        match &listener {
            Raw::Tcp(l) => {
                if let Ok((s, _)) = l.accept().await {
                    tokio::spawn(misbehave(s, state));
                }
            }
            Raw::Unix(l) => {
                if let Ok((s, _)) = l.accept().await {
                    tokio::spawn(misbehave(s, state));
                }
            }
        }
    }
}

enum Raw {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// One connection of a chaos-mode instance: read one request, record it,
/// answer badly.
async fn misbehave<S>(mut s: S, (mode, plugin, recorder, n): (Mode, Arc<Plugin>, Recorder, u64))
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some((method, body)) = read_request(&mut s).await else {
        return;
    };
    recorder.record(&method, &body);
    match mode {
        Mode::Normal => {}
        Mode::Mute => {
            // Hold the connection open and never answer.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Mode::Garbage if n % 2 == 0 => {
            let _ = s.write_all(b"\x16\x03\x01 not http at all\r\n\r\n").await;
        }
        Mode::Garbage => {
            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n<html>nope</html";
            let _ = s.write_all(reply).await;
        }
        Mode::Cut => {
            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"Err\":\"";
            let _ = s.write_all(reply).await;
        }
        Mode::Trickle => {
            let body = match plugin.call(&method, body).await {
                Ok(reply) => reply.as_bytes().cloned().unwrap_or_default(),
                Err(e) => Bytes::from(format!("{{\"Err\":{:?}}}", e.message())),
            };
            let mut reply =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            reply.extend_from_slice(&body);
            for byte in reply {
                if s.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    }
    let _ = s.shutdown().await;
}

/// Reads a request head and its `Content-Length` body: the method (path
/// without its `/`) and the body. `None` for anything else.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<(String, Bytes)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head
        .split_whitespace()
        .nth(1)?
        .trim_start_matches('/')
        .to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((
        path,
        Bytes::copy_from_slice(&buf[head_end..head_end + length]),
    ))
}

fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The kit plugin a name stands for.
fn kit_plugin(name: &str, data: &Path) -> Result<Plugin, String> {
    let built = match name {
        "memvol" => memvol::MemVol::new(data.join("volumes")).plugin(),
        "simple-ipam" => {
            let pool = "10.200.0.0/16".parse().map_err(|e| format!("{e}"))?;
            simple_ipam::SimpleIpam::new(pool).plugin()
        }
        "memnet" => memnet::MemNet::new().plugin(),
        "rule-authz" => {
            let rule = "deny * /containers/*/deny denied by soak policy"
                .parse()
                .map_err(|e| format!("{e}"))?;
            rule_authz::RuleAuthz::new(rule_authz::Policy::new().rule(rule)).plugin()
        }
        "soaklog" => Plugin::builder().log(SoakLog::default()).build(),
        "soakmetrics" => Plugin::builder().metrics(SoakMetrics).build(),
        other => return Err(format!("no plugin named {other}")),
    };
    built.map_err(|e| e.to_string())
}

/// The kit plugin behind a recorder: every method registered raw, so each
/// request is recorded as read, then dispatched to the plugin unchanged.
fn recording(inner: Arc<Plugin>, recorder: Recorder) -> Result<Plugin, String> {
    let mut builder = Plugin::builder();
    for kind in &inner.manifest().implements {
        builder = builder.implements(kind.clone());
    }
    for method in inner.methods() {
        let (inner, recorder, name) = (inner.clone(), recorder.clone(), method.to_owned());
        builder = builder.raw(method, move |body: Bytes| {
            recorder.record(&name, &body);
            let (inner, name) = (inner.clone(), name.clone());
            async move { inner.call(&name, body).await }
        });
    }
    builder.build().map_err(|e| e.to_string())
}

/// A logging driver keeping each container's entries in memory and
/// serving them back with `ReadLogs`.
#[derive(Default)]
struct SoakLog {
    entries: Arc<Mutex<HashMap<String, Vec<plugin_server::log::LogEntry>>>>,
}

impl plugin_server::LogDriver for SoakLog {
    async fn start_logging(
        &self,
        req: plugin_server::log::StartLoggingRequest,
    ) -> Result<(), PluginError> {
        let fifo = tokio::net::unix::pipe::OpenOptions::new()
            .open_receiver(PathBuf::from(&req.file))
            .map_err(|e| PluginError::new(format!("open {}: {e}", req.file)))?;
        let (entries, id) = (self.entries.clone(), req.info.container_id);
        tokio::spawn(async move {
            let mut fifo = fifo;
            let mut decoder = plugin_server::log::FrameDecoder::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = fifo.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                decoder.push(&chunk[..n]);
                while let Ok(Some(entry)) = decoder.next_entry() {
                    let mut map = entries.lock().unwrap_or_else(|e| e.into_inner());
                    map.entry(id.clone()).or_default().push(entry);
                }
            }
        });
        Ok(())
    }

    async fn stop_logging(
        &self,
        _: plugin_server::log::StopLoggingRequest,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    async fn capabilities(&self) -> Result<plugin_server::log::CapabilitiesResponse, PluginError> {
        Ok(plugin_server::log::CapabilitiesResponse {
            cap: plugin_server::log::Capability { read_logs: true },
            ..Default::default()
        })
    }

    async fn read_logs(
        &self,
        req: plugin_server::log::ReadLogsRequest,
    ) -> Result<Reply, PluginError> {
        let stored = {
            let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&req.info.container_id).cloned().unwrap_or_default()
        };
        let mut frames = Vec::new();
        for entry in &stored {
            plugin_server::log::encode_frame(entry, &mut frames)
                .map_err(|e| PluginError::new(e.to_string()))?;
        }
        Ok(Reply::stream(std::io::Cursor::new(frames)))
    }
}

/// A metrics collector that only says yes.
struct SoakMetrics;

impl plugin_server::MetricsCollector for SoakMetrics {
    async fn start_metrics(&self) -> Result<(), PluginError> {
        Ok(())
    }
    async fn stop_metrics(&self) -> Result<(), PluginError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::token;

    #[test]
    fn the_token_is_the_first_soak_id_in_a_body() {
        assert_eq!(token(br#"{"Name":"soak-12","ID":"c1"}"#), Some("soak-12"));
        let fifo = br#"{"File":"/tmp/soakrun.x/fifo/soak-7","Info":{"ContainerID":"soak-7"}}"#;
        assert_eq!(token(fifo), Some("soak-7"));
        assert_eq!(token(b"{}"), None);
        assert_eq!(token(b"soak-x soak-3"), None);
    }
}
