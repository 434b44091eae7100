//! The engine-side `LogDriver` proxy: Docker's logging plugin proxy and
//! adapter (`daemon/logger/proxy.go`, `plugin.go`, `plugin_unix.go`,
//! `adapter.go`): the four calls, the decoding of `ReadLogs`' entry
//! stream, and the engine's writer half, which creates the FIFO, hands it
//! to the plugin and writes framed entries into it.
//!
//! **What it must never do:** block a thread on the FIFO (every open and
//! write is non-blocking under tokio), wait without bound for a plugin to
//! open its end, or leave the FIFO behind after [`LogWriter::close`].

use std::sync::Arc;

use futures_util::StreamExt;
use plugin_client::ReplyBody;
use plugin_proto::log::{
    CapabilitiesRequest, Capability, FrameDecoder, Info, LogEntry, LogError, ReadConfig,
    ReadLogsRequest, StartLoggingRequest, StopLoggingRequest,
};
use plugin_proto::{Call, ErrReply, kinds};

use crate::Plugin;
use crate::error::Error;
use crate::proxy::{ErrStyle, Target};

#[cfg(target_os = "linux")]
pub use writer::LogWriter;

/// Typed `LogDriver.*` calls to one activated logging plugin, and the
/// engine's side of its FIFO ([`LogDriver::open_writer`], Linux only).
///
/// A non-200 reply is the client's status error, `LogDriver.<Method>:
/// <message>`; a 200 reply with a non-empty `Err` is an error whose text
/// is the plugin's message alone, as Docker's proxy reports it.
///
/// ```no_run
/// # #[cfg(target_os = "linux")]
/// # async fn demo(registry: &plugin_registry::Registry) -> Result<(), plugin_registry::Error> {
/// use std::time::Duration;
/// use plugin_registry::{LogDriver, proto::kinds, proto::log::{Info, LogEntry}};
///
/// let plugin = registry.get("my-logger", kinds::LOG_DRIVER).await?;
/// let info = Info { container_id: "abc123".into(), ..Default::default() };
/// // Creates the FIFO, sends StartLogging, waits (bounded) for the plugin to open it.
/// let mut writer = LogDriver::new(&plugin)?
///     .open_writer("/run/docker/logging/abc123", info, Duration::from_secs(10))
///     .await?;
/// writer
///     .write(&LogEntry { source: "stdout".into(), line: b"hello".to_vec(), ..Default::default() })
///     .await?;
/// writer.close().await?; // StopLogging, then the FIFO is removed
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LogDriver(Target);

impl LogDriver {
    /// The proxy for an activated plugin that implements `LogDriver`
    /// (Docker looks logging plugins up by that kind).
    pub fn new(plugin: &Arc<Plugin>) -> Result<LogDriver, Error> {
        Target::new(plugin, kinds::LOG_DRIVER).map(LogDriver)
    }

    /// The plugin behind this proxy.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.0.plugin
    }

    async fn call<C: Call>(&self, request: &C) -> Result<C::Reply, Error>
    where
        C::Reply: ErrReply,
    {
        self.0.call_checked(request, ErrStyle::Bare).await
    }

    /// `LogDriver.StartLogging`: the plugin is to read container `info`'s
    /// entries from the FIFO at `file`. [`open_writer`](Self::open_writer)
    /// creates the FIFO and sends this in the right order; call it
    /// directly only to manage the FIFO yourself.
    pub async fn start_logging(&self, file: &str, info: &Info) -> Result<(), Error> {
        self.call(&StartLoggingRequest {
            file: file.to_owned(),
            info: info.clone(),
        })
        .await
        .map(drop)
    }

    /// `LogDriver.StopLogging`: the plugin is to stop reading `file`.
    pub async fn stop_logging(&self, file: &str) -> Result<(), Error> {
        self.call(&StopLoggingRequest {
            file: file.to_owned(),
        })
        .await
        .map(drop)
    }

    /// `LogDriver.Capabilities`, sent with an empty body. Docker treats
    /// any failure as no capabilities; [`open_writer`](Self::open_writer)
    /// does the same.
    pub async fn capabilities(&self) -> Result<Capability, Error> {
        Ok(self.call(&CapabilitiesRequest {}).await?.cap)
    }

    /// `LogDriver.ReadLogs` for container `info`: the plugin's stored
    /// entries as a [`LogStream`]. Docker asks only plugins whose
    /// capabilities say `ReadLogs`.
    ///
    /// A failed call reads `error getting log reader: <err>`, as Docker's
    /// adapter says it.
    pub async fn read_logs(&self, info: &Info, config: &ReadConfig) -> Result<LogStream, Error> {
        let request = ReadLogsRequest {
            info: info.clone(),
            config: config.clone(),
        };
        let body = self
            .0
            .stream(&request)
            .await
            .map_err(|e| Error::context("error getting log reader", e))?;
        Ok(LogStream::new(body, config))
    }
}

/// The entries of a `ReadLogs` reply, decoded from Docker's framing (a
/// 4-byte big-endian length, then a protobuf `LogEntry`) as they arrive.
///
/// As Docker's adapter does, entries older than the config's `Since` are
/// skipped and the stream ends at the first entry newer than its `Until`,
/// in case the plugin did not filter. A stream that ends inside a frame,
/// a frame that does not decode or a failed read ends it with an error
/// reading `error decoding log message: <err>` (`unexpected EOF` for a
/// cut frame).
#[derive(Debug)]
pub struct LogStream {
    body: ReplyBody,
    decoder: FrameDecoder,
    since: Option<i128>,
    until: Option<i128>,
    done: bool,
}

impl LogStream {
    fn new(body: ReplyBody, config: &ReadConfig) -> LogStream {
        let bound = |t: &plugin_proto::GoTime| (!t.is_zero()).then(|| t.unix_nanos());
        LogStream {
            body,
            decoder: FrameDecoder::new(),
            since: bound(&config.since),
            until: bound(&config.until),
            done: false,
        }
    }

    /// The next entry; `None` once the stream has ended.
    pub async fn next_entry(&mut self) -> Result<Option<LogEntry>, Error> {
        while !self.done {
            match self.decoder.next_entry() {
                Ok(Some(entry)) => {
                    let t = i128::from(entry.time_nano);
                    if self.since.is_some_and(|since| t < since) {
                        continue;
                    }
                    if self.until.is_some_and(|until| t > until) {
                        self.done = true;
                        return Ok(None);
                    }
                    return Ok(Some(entry));
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail(e.into())),
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.decoder.push(&chunk),
                Some(Err(e)) => return Err(self.fail(e.into())),
                None if self.decoder.pending() > 0 => {
                    return Err(self.fail(LogError::Truncated.into()));
                }
                None => self.done = true,
            }
        }
        Ok(None)
    }

    fn fail(&mut self, err: Error) -> Error {
        self.done = true;
        Error::context("error decoding log message", err)
    }
}

#[cfg(target_os = "linux")]
mod writer {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use plugin_proto::log::{Capability, Info, LogEntry, encode_frame};
    use plugin_proto::retry::go_duration;
    use rustix::fs::{CWD, Mode, mkfifoat};
    use rustix::io::Errno;
    use tokio::io::AsyncWriteExt;
    use tokio::net::unix::pipe;

    use super::LogDriver;
    use crate::error::{Error, ErrorKind};

    /// How often the engine tries the FIFO's write end while the plugin
    /// has not opened its read end yet.
    const READER_POLL: Duration = Duration::from_millis(5);

    /// The engine's end of a logging plugin's FIFO: Docker's
    /// `pluginAdapter`. Made by [`LogDriver::open_writer`].
    ///
    /// The FIFO is held open for reading and writing, as Docker holds it,
    /// so a plugin that dies and comes back can open it again without the
    /// engine seeing a broken pipe; a plugin that stops reading makes
    /// [`write`](Self::write) wait once the pipe is full, which the engine
    /// may bound with a timeout of its own.
    #[derive(Debug)]
    pub struct LogWriter {
        driver: LogDriver,
        path: PathBuf,
        file: String,
        fifo: Option<pipe::Sender>,
        capabilities: Capability,
        info: Info,
        frame: Vec<u8>,
    }

    impl LogDriver {
        /// Docker's logging plugin creator, in its order: ask for the
        /// capabilities (a failure means none), create the FIFO at `path`
        /// (mode 0700, parent directories 0700; nothing may exist at
        /// `path` yet: Docker picks a new random name each time), send
        /// `StartLogging` with it and `info`, and write entries with the
        /// returned [`LogWriter`].
        ///
        /// Docker opens its end before `StartLogging` and never checks the
        /// plugin opened the other one, so a plugin that never reads
        /// blocks the container once the pipe is full. Here the engine
        /// opens its end while `StartLogging` is in flight and waits at
        /// most `reader_timeout` for the plugin to open the read end
        /// (whether it does so inside `StartLogging` or after answering);
        /// past it the FIFO is removed, `StopLogging` is sent, and the
        /// error reads `error creating logger: log plugin <name> did not
        /// open <path> for reading within <timeout>` (`is_timeout()`).
        ///
        /// Other failures read as Docker's: `error creating i/o pipe for
        /// log plugin: <name>: <cause>` when the FIFO cannot be made,
        /// `error creating logger: <err>` when `StartLogging` fails (the
        /// FIFO is removed then too).
        pub async fn open_writer(
            &self,
            path: impl Into<PathBuf>,
            info: Info,
            reader_timeout: Duration,
        ) -> Result<LogWriter, Error> {
            let path = path.into();
            let file = path.to_string_lossy().into_owned();
            let capabilities = self.capabilities().await.unwrap_or_default();
            self.make_fifo(&path)?;

            let opened = {
                let start = self.start_logging(&file, &info);
                let reader = wait_for_reader(&path, reader_timeout);
                tokio::pin!(start, reader);
                tokio::select! {
                    started = &mut start => match started {
                        Ok(()) => reader.await,
                        // No reason to wait for a reader the plugin will not start.
                        Err(e) => return Err(abandon(&path, e)),
                    },
                    opened = &mut reader => match start.await {
                        Ok(()) => opened,
                        Err(e) => return Err(abandon(&path, e)),
                    },
                }
            };
            let sender = match opened {
                Ok(sender) => sender,
                Err(e) => {
                    if let Err(stop) = self.stop_logging(&file).await {
                        tracing::debug!("{stop}");
                    }
                    let text = if e.kind() == io::ErrorKind::TimedOut {
                        format!(
                            "log plugin {} did not open {} for reading within {}",
                            self.0.plugin.name(),
                            path.display(),
                            go_duration(reader_timeout)
                        )
                    } else {
                        format!("open {}: {e}", path.display())
                    };
                    return Err(abandon(
                        &path,
                        ErrorKind::LogFifo { text, source: e }.into(),
                    ));
                }
            };
            // Hold the FIFO open for reading too, as Docker does, so the
            // plugin going away never turns writes into broken pipes.
            let fifo = pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(&path)
                .unwrap_or(sender);
            Ok(LogWriter {
                driver: self.clone(),
                path,
                file,
                fifo: Some(fifo),
                capabilities,
                info,
                frame: Vec::new(),
            })
        }

        fn make_fifo(&self, path: &Path) -> Result<(), Error> {
            let fail = |what: &str, e: io::Error| -> Error {
                ErrorKind::LogFifo {
                    text: format!(
                        "error creating i/o pipe for log plugin: {}: {what}: {e}",
                        self.0.plugin.name()
                    ),
                    source: e,
                }
                .into()
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| fail(&format!("mkdir {}", dir.display()), e))?;
            }
            mkfifoat(CWD, path, Mode::from_raw_mode(0o700))
                .map_err(|e| fail(&format!("mkfifo {}", path.display()), e.into()))
        }
    }

    /// Opens the FIFO's write end without blocking: until a reader exists
    /// the open fails with `ENXIO`, tried again every few milliseconds up
    /// to `timeout` (then `TimedOut`). A plugin blocked in a plain open of
    /// the read end counts as a reader, so this also releases it.
    async fn wait_for_reader(path: &Path, timeout: Duration) -> io::Result<pipe::Sender> {
        // tokio's clock, as the poll's sleep: the bound is a deadline.
        let start = tokio::time::Instant::now();
        loop {
            match pipe::OpenOptions::new().open_sender(path) {
                Err(e) if e.raw_os_error() == Some(Errno::NXIO.raw_os_error()) => {
                    if start.elapsed() >= timeout {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, e));
                    }
                    tokio::time::sleep(READER_POLL).await;
                }
                result => return result,
            }
        }
    }

    /// Removes the FIFO of a writer that could not be opened, and says
    /// why as Docker does.
    fn abandon(path: &Path, err: Error) -> Error {
        remove_fifo(path);
        Error::context("error creating logger", err)
    }

    fn remove_fifo(path: &Path) {
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::error!(error = %e, "error cleaning up plugin fifo");
        }
    }

    impl LogWriter {
        /// The FIFO's path, as given to `StartLogging`.
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// The plugin's capabilities, asked for when the writer was opened
        /// (none if that failed). `read_logs` is worth calling only when
        /// they say `ReadLogs`.
        pub fn capabilities(&self) -> &Capability {
            &self.capabilities
        }

        /// The container info sent with `StartLogging`, for `ReadLogs`.
        pub fn info(&self) -> &Info {
            &self.info
        }

        /// Writes one entry in Docker's framing. Waits while the pipe is
        /// full (the plugin is behind); a write error reads `write <path>:
        /// <err>`.
        pub async fn write(&mut self, entry: &LogEntry) -> Result<(), Error> {
            self.frame.clear();
            encode_frame(entry, &mut self.frame)?;
            // `fifo` is `None` only once `close` or `drop` has run.
            let result = match self.fifo.as_mut() {
                Some(fifo) => fifo.write_all(&self.frame).await,
                None => Err(io::ErrorKind::BrokenPipe.into()),
            };
            result.map_err(|e| {
                ErrorKind::LogFifo {
                    text: format!("write {}: {e}", self.path.display()),
                    source: e,
                }
                .into()
            })
        }

        /// Docker's `Close`: `StopLogging`, then the FIFO is closed and
        /// removed. Unlike Docker, which keeps both when `StopLogging`
        /// fails, they are cleaned up whatever the plugin answers; its
        /// error is returned afterwards.
        pub async fn close(mut self) -> Result<(), Error> {
            let stopped = self.driver.stop_logging(&self.file).await;
            self.fifo = None;
            remove_fifo(&self.path);
            stopped
        }
    }

    /// A writer dropped without [`close`](LogWriter::close) still removes
    /// its FIFO; the plugin is not told (`StopLogging` needs a call).
    impl Drop for LogWriter {
        fn drop(&mut self) {
            if self.fifo.take().is_some() {
                remove_fifo(&self.path);
            }
        }
    }
}
