//! `plugctl watch`: a live stream of plugins appearing, vanishing, going
//! stale and changing definition.
//!
//! File-system notifications (inotify through `notify`) on the socket and
//! spec directories trigger a rescan at once; a timer rescans every
//! `--interval` as well, because a plugin killed without cleaning up
//! leaves its socket behind and no notification says so, and because a
//! directory that could not be watched (missing, no inotify) is polled
//! until a watch on it succeeds.
//!
//! Liveness is a bare connect with nothing sent: a refused connection on a
//! unix socket (or a missing socket file behind a unix address) is
//! `stale`, a tcp connect that fails or does not finish in `--timeout` is
//! `unreachable`. No HTTP request is ever made, so watching never
//! activates a plugin nor shows up in its logs as a call.
//!
//! Memory is proportional to the number of plugin names, never to the
//! number of file-system events: notifications only set one pending flag
//! (a [`Notify`] permit), and a burst of them becomes one rescan.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{self, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use notify::{RecursiveMode, Watcher};
use plugin_registry::discovery::{LocalRegistry, PluginSpec};
use plugin_registry::proto::{Endpoint, GoTime, retry::go_duration};
use serde::Serialize;
use tokio::sync::Notify;

use crate::Exit;
use crate::ls::unique;
use crate::output::show_name;
use crate::probe::{Ctx, SourceOut};

/// How long a burst of notifications may take to settle before the rescan
/// (a plugin binding its socket, an editor writing a spec file in steps).
const SETTLE: Duration = Duration::from_millis(30);

/// What `watch` was asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Rescan and liveness interval.
    pub(crate) interval: Duration,
    /// Stop after this many events (the initial `present` ones included).
    pub(crate) count: Option<u64>,
}

/// Whether a plugin answers a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The connection was accepted.
    Live,
    /// Refused, or the socket file behind a unix address is gone.
    Stale,
    /// A tcp connect failed otherwise or did not finish in time.
    Unreachable,
    /// The name is listed but does not resolve (broken spec, invalid name).
    Broken,
    /// Not checked: a named pipe off Windows.
    Unchecked,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Stale => "stale",
            State::Unreachable => "unreachable",
            State::Broken => "broken",
            State::Unchecked => "unchecked",
        }
    }
}

/// What one scan saw of one name.
#[derive(Debug, Clone)]
struct Seen {
    spec: Result<PluginSpec, String>,
    /// The socket file's inode, so a re-created socket (a restarted
    /// plugin) is a change even at the same path.
    inode: Option<u64>,
    state: State,
    /// Why the state is what it is (the connect error, the resolve error).
    detail: Option<String>,
}

impl Seen {
    fn same_definition(&self, other: &Seen) -> bool {
        self.spec == other.spec && self.inode == other.inode
    }
}

/// One line of output; its JSON form is the documented schema.
#[derive(Debug, Serialize)]
struct Event {
    time: String,
    event: &'static str,
    name: Option<String>,
    source: Option<SourceOut>,
    address: Option<String>,
    state: Option<&'static str>,
    previous: Option<Previous>,
    detail: Option<String>,
}

/// What a `changed` plugin was before.
#[derive(Debug, Serialize)]
struct Previous {
    source: Option<SourceOut>,
    address: Option<String>,
}

impl Event {
    fn of(event: &'static str, name: &str, seen: &Seen) -> Event {
        let spec = seen.spec.as_ref().ok();
        Event {
            time: rfc3339(SystemTime::now()),
            event,
            name: Some(name.to_owned()),
            source: spec.map(|s| SourceOut::new(s.source().kind(), s.source().path())),
            address: spec.map(|s| s.address().to_string()),
            state: Some(seen.state.as_str()),
            previous: None,
            detail: seen.detail.clone(),
        }
    }

    fn human(&self) -> String {
        let mut line = format!("{}  {:<11}", self.time, self.event);
        if let Some(name) = &self.name {
            line.push_str(&format!(" {}", show_name(name)));
        }
        if let Some(address) = &self.address {
            line.push_str(&format!("  {address}"));
        }
        if let Some(source) = &self.source {
            line.push_str(&format!(" ({})", source.kind));
        }
        if let Some(previous) = self.previous.as_ref().filter(|p| p.address != self.address) {
            let was = previous.address.as_deref().unwrap_or("-");
            line.push_str(&format!("  was {was}"));
        }
        if let Some(state) = self.state {
            line.push_str(&format!("  {state}"));
        }
        if let Some(detail) = &self.detail {
            line.push_str(&format!(": {detail}"));
        }
        line
    }
}

/// Runs `watch` until `stop` resolves or `--count` events were written.
pub(crate) async fn run(
    ctx: &Ctx,
    out: &mut dyn Write,
    err: &mut dyn Write,
    options: Options,
    mut stop: Pin<&mut dyn Future<Output = ()>>,
) -> io::Result<Exit> {
    // One poll before anything else: a `stop` that listens for signals
    // installs its handlers then, before the line saying the watch is in
    // place (a signal sent after that line must end the watch cleanly).
    let stopped = std::future::poll_fn(|cx| Poll::Ready(stop.as_mut().poll(cx).is_ready()));
    if stopped.await {
        return Ok(Exit::Ok);
    }
    let mut watch = DirWatch::new(&ctx.local);
    let mut sink = Sink {
        out,
        json: ctx.json,
        written: 0,
        count: options.count,
    };
    let mut seen = snapshot(&ctx.local, ctx.timeout).await;
    let mut last_error = None;
    match &seen {
        Ok(names) => {
            for (name, s) in names {
                sink.emit(Event::of("present", name, s))?;
            }
        }
        Err(e) => {
            sink.emit(error_event(e))?;
            last_error = Some(e.clone());
        }
    }
    writeln!(
        err,
        "watching {} ({}, rescanning every {}); Ctrl-C to stop",
        watch.describe(),
        if watch.all_watched() {
            "inotify"
        } else {
            "polling"
        },
        go_duration(options.interval)
    )?;
    err.flush()?;
    while !sink.done() {
        tokio::select! {
            () = &mut stop => break,
            () = watch.changed.notified() => {
                tokio::time::sleep(SETTLE).await;
            }
            () = tokio::time::sleep(options.interval) => {
                watch.retry_unwatched();
            }
        }
        let now = snapshot(&ctx.local, ctx.timeout).await;
        match (&seen, &now) {
            (_, Err(e)) => {
                if last_error.as_ref() != Some(e) {
                    sink.emit(error_event(e))?;
                    last_error = Some(e.clone());
                }
                continue;
            }
            (Ok(before), Ok(after)) => {
                for event in diff(before, after) {
                    sink.emit(event)?;
                    if sink.done() {
                        break;
                    }
                }
            }
            (Err(_), Ok(after)) => {
                for (name, s) in after {
                    sink.emit(Event::of("present", name, s))?;
                }
            }
        }
        last_error = None;
        seen = now;
    }
    Ok(Exit::Ok)
}

/// Writes events, one line each, and counts them.
struct Sink<'a> {
    out: &'a mut dyn Write,
    json: bool,
    written: u64,
    count: Option<u64>,
}

impl Sink<'_> {
    fn emit(&mut self, event: Event) -> io::Result<()> {
        if self.done() {
            return Ok(());
        }
        if self.json {
            let line = serde_json::to_string(&event).map_err(io::Error::other)?;
            writeln!(self.out, "{line}")?;
        } else {
            writeln!(self.out, "{}", event.human())?;
        }
        // A pipe into a script must see each event as it happens.
        self.out.flush()?;
        self.written += 1;
        Ok(())
    }

    fn done(&self) -> bool {
        self.count.is_some_and(|n| self.written >= n)
    }
}

fn error_event(text: &str) -> Event {
    Event {
        time: rfc3339(SystemTime::now()),
        event: "error",
        name: None,
        source: None,
        address: None,
        state: None,
        previous: None,
        detail: Some(text.to_owned()),
    }
}

/// The events that lead from `before` to `after`, in name order.
fn diff(before: &BTreeMap<String, Seen>, after: &BTreeMap<String, Seen>) -> Vec<Event> {
    let mut events = Vec::new();
    for (name, old) in before {
        if !after.contains_key(name) {
            let mut event = Event::of("vanished", name, old);
            event.state = None;
            event.detail = None;
            events.push(event);
        }
    }
    for (name, new) in after {
        let Some(old) = before.get(name) else {
            events.push(Event::of("appeared", name, new));
            continue;
        };
        if !old.same_definition(new) {
            let kind = if new.spec.is_err() {
                "broken"
            } else {
                "changed"
            };
            let mut event = Event::of(kind, name, new);
            if kind == "changed" {
                let spec = old.spec.as_ref().ok();
                event.previous = Some(Previous {
                    source: spec.map(|s| SourceOut::new(s.source().kind(), s.source().path())),
                    address: spec.map(|s| s.address().to_string()),
                });
                if new.spec == old.spec {
                    event.detail = Some("socket re-created".to_owned());
                }
            }
            events.push(event);
        } else if old.state != new.state {
            events.push(Event::of(new.state.as_str(), name, new));
        }
    }
    events
}

/// Every listed name, resolved and checked for liveness in parallel.
async fn snapshot(
    local: &LocalRegistry,
    timeout: Duration,
) -> Result<BTreeMap<String, Seen>, String> {
    let names = unique(local.scan().map_err(|e| e.to_string())?);
    let checks = names.into_iter().map(|name| async move {
        let seen = match local.plugin(&name) {
            Ok(spec) => {
                let (state, detail) = liveness(&spec, timeout).await;
                let inode = socket_inode(&spec);
                Seen {
                    spec: Ok(spec),
                    inode,
                    state,
                    detail,
                }
            }
            Err(e) => Seen {
                detail: Some(e.to_string()),
                spec: Err(e.to_string()),
                inode: None,
                state: State::Broken,
            },
        };
        (name, seen)
    });
    Ok(join_all(checks).await.into_iter().collect())
}

fn socket_inode(spec: &PluginSpec) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    match spec.address().endpoint() {
        Endpoint::Unix(path) => std::fs::metadata(path).ok().map(|m| m.ino()),
        _ => None,
    }
}

/// A bare connect, bounded by `timeout`; nothing is sent.
async fn liveness(spec: &PluginSpec, timeout: Duration) -> (State, Option<String>) {
    let connect = async {
        match spec.address().endpoint() {
            Endpoint::Unix(path) => tokio::net::UnixStream::connect(path).await.map(drop),
            Endpoint::Tcp(host_port) => tokio::net::TcpStream::connect(host_port.as_str())
                .await
                .map(drop),
            _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(())) => (State::Live, None),
        Ok(Err(e)) if e.kind() == io::ErrorKind::Unsupported => (State::Unchecked, None),
        // Nothing listens (refused), or the socket file behind a unix
        // address is gone: what a plugin that died leaves behind.
        Ok(Err(e))
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
            ) =>
        {
            (State::Stale, Some(connect_text(&e)))
        }
        Ok(Err(e)) => (State::Unreachable, Some(connect_text(&e))),
        Err(_) => (
            State::Unreachable,
            Some(format!("no connection within {}", go_duration(timeout))),
        ),
    }
}

/// `connection refused`, as Go spells errno texts (lower case, no code).
fn connect_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => e.to_string(),
    }
}

/// The watches on the plugin directories.
struct DirWatch {
    watcher: Option<notify::RecommendedWatcher>,
    changed: Arc<Notify>,
    dirs: Vec<PathBuf>,
    unwatched: Vec<PathBuf>,
}

impl DirWatch {
    fn new(local: &LocalRegistry) -> DirWatch {
        let changed = Arc::new(Notify::new());
        let signal = changed.clone();
        let watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
            // One permit at most: a burst of events is one pending rescan.
            signal.notify_one();
        })
        .map_err(|e| tracing::debug!("cannot watch plugin directories, polling instead: {e}"))
        .ok();
        let dirs: Vec<PathBuf> = std::iter::once(local.socket_dir().to_path_buf())
            .chain(local.spec_dirs().iter().cloned())
            .collect();
        let mut watch = DirWatch {
            watcher,
            changed,
            unwatched: dirs.clone(),
            dirs,
        };
        watch.retry_unwatched();
        watch
    }

    /// Tries again to watch the directories not watched yet (a directory
    /// created after `watch` started is watched from then on).
    fn retry_unwatched(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let before = self.unwatched.len();
        self.unwatched
            .retain(|dir| watcher.watch(dir, RecursiveMode::Recursive).is_err());
        if self.unwatched.len() < before {
            // What happened in it before the watch began is only seen by a
            // rescan.
            self.changed.notify_one();
        }
    }

    fn all_watched(&self) -> bool {
        self.unwatched.is_empty()
    }

    fn describe(&self) -> String {
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        dirs.join(", ")
    }
}

/// `2026-12-07T11:40:01.123Z`: UTC to the millisecond, in Go's RFC 3339
/// (trailing zeros of the fraction dropped, as Docker's own timestamps).
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    GoTime::from_unix(secs, since.subsec_millis() * 1_000_000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_go_rfc3339_in_utc_to_the_millisecond() {
        let at = |secs: u64, ms: u64| {
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(at(0, 120), "1970-01-01T00:00:00.12Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789.
        assert_eq!(at(951_827_696, 789), "2000-02-29T12:34:56.789Z");
        assert_eq!(at(1_796_601_600, 5), "2026-12-07T00:00:00.005Z");
    }
}
