//! `plugctl`: the operator command line for Docker v1 plugins — what
//! plugins this host has, which are dead, and why `docker volume ls`
//! hangs.
//!
//! The binary is a thin `main` around [`main`]; everything else is here so
//! that tests run the commands in-process with [`run`] (or
//! [`run_captured`]) and captured output.
//!
//! # Command line
//!
//! ```text
//! plugctl [--socket-dir DIR] [--spec-dir DIR]... [--json] [-v|-vv] [--timeout DURATION] COMMAND
//!
//!   ls [--probe] [--kind KIND]   every discovered name: source, address, TLS mode
//!   inspect NAME                 candidates in Docker's order, winner, TLS options, manifest
//!   call NAME METHOD [JSON|-]    one call; the reply on stdout
//!   doctor                       find what is wrong; exit 1 if anything is
//!   demo                         the whole system against a temporary tree
//!   watch [--interval D] [--count N]  plugins appearing, vanishing, going stale, changing
//!   check NAME [--kind KIND]     exercise a plugin as dockerd does; report protocol findings
//!   completions SHELL            a completion script: bash, zsh, fish, elvish, powershell
//!   man [--dir DIR]              plugctl(1) in roff; with --dir, one page per command too
//! ```
//!
//! Global options (accepted before or after the command):
//!
//! - `--socket-dir DIR`, `--spec-dir DIR` (repeatable, highest priority
//!   first): the directories to search (relative ones are made absolute).
//!   Each defaults to the host's own,
//!   rootless-aware (`LocalRegistry::new()`): `/run/docker/plugins`, then
//!   `/etc/docker/plugins` and `/usr/lib/docker/plugins` (or
//!   `$XDG_CONFIG_HOME/docker/plugins` … when rootless).
//! - `--json`: one JSON document on stdout, in the schemas below; indented
//!   when stdout is a terminal, compact otherwise.
//! - `-v` / `-vv` / `-vvv`: tracing (info / debug / trace) on stderr; with
//!   no `-v`, `RUST_LOG` is honoured if set, and nothing is logged
//!   otherwise; coloured only on a terminal without `NO_COLOR`. Only the
//!   binary ([`main`]) installs the subscriber.
//! - `--timeout DURATION` (default `2s`; `500ms`, `1.5s`, `1m30s`): the
//!   deadline of each probe (handshake, including its retries) and of each
//!   call.
//!
//! Output is plain aligned columns without colour (so `NO_COLOR` and
//! non-terminals are trivially honoured); errors go to stderr.
//!
//! # Exit status
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success (`ls` listed, `inspect` activated the plugin, `call` got a 200, `doctor` or `check` found nothing, `demo` behaved as expected, `watch` was stopped or wrote its `--count` events) |
//! | 1 | a problem: the directories could not be listed, the name did not resolve, activation or the call failed (a status error prints Docker's `<Method>: <message>` on stderr), `doctor` or `check` found something |
//! | 2 | usage: unknown options, a bad duration, a method not shaped `Subsystem.Method`, a request body that is not JSON, `demo --json`, `check --kind` of a subsystem it does not know |
//!
//! `ls` exits 0 even when some rows carry errors: they are data (run
//! `doctor` for a verdict).
//!
//! # `ls`
//!
//! One row per discovered name, in Docker's scan order and each name once
//! (as the registry lists). Without `--probe` nothing is contacted. With
//! `--probe` every plugin is activated in parallel under the deadline
//! (a registry listing whose policy bounds each handshake and each
//! plugin's load by `--timeout`, never retries a refused socket, does not
//! wait for names to appear and remembers nothing), so a stale socket
//! shows as `refused` within milliseconds.
//!
//! `--kind KIND` filters: with `--probe`, to plugins whose manifest lists
//! KIND, keeping rows that failed to activate (their kinds are unknown);
//! without `--probe`, to plugins whose `.json` spec declares KIND in
//! `Implements`, keeping those that declare nothing (sockets, `.spec`
//! files, most `.json` files) and names that do not resolve.
//!
//! `ls --json` is an array of:
//!
//! ```json
//! {
//!   "name": "memvol",
//!   "source": {"kind": "socket", "path": "/run/docker/plugins/memvol.sock"},
//!   "address": "unix:///run/docker/plugins/memvol.sock",
//!   "tls": "none",
//!   "declared_implements": null,
//!   "state": "ok",
//!   "implements": ["VolumeDriver"],
//!   "latency_ms": 0.412,
//!   "error": null
//! }
//! ```
//!
//! - `source`: `kind` is `socket`, `spec` or `json`; for a name that does
//!   not resolve, the file that failed, or `null`.
//! - `address`, `tls`: `null` when the name does not resolve. `tls` is
//!   `none` (unix sockets, `tcp://`, `http://`: Docker never uses TLS
//!   there), `insecure` (`https://` without verification: any `.spec`
//!   file, or `InsecureSkipVerify`) or `verified`.
//! - `declared_implements`: a `.json` spec's own `Implements`, or `null`.
//! - `state`: `null` without `--probe`; otherwise `ok`, `refused` (stale
//!   socket or closed port), `missing` (socket vanished), `timeout`, or
//!   `error` (unresolvable name, broken spec, status error, bad TLS, …).
//! - `implements`: the manifest, when activated; otherwise `null`.
//! - `latency_ms`: the probe's duration (a number), or `null`.
//! - `error`: why the name did not resolve or the plugin did not
//!   activate, or `null`.
//!
//! # `inspect NAME`
//!
//! Every candidate path in Docker's order and what is there, the winner,
//! the address, the TLS options, and the manifest from a fresh
//! `Plugin.Activate` (under `--timeout`, a refused socket not retried).
//! Exit 1 when the name does not resolve or activation fails (the error is
//! shown). `inspect --json`:
//!
//! ```json
//! {
//!   "name": "memvol",
//!   "candidates": [
//!     {"path": "/run/docker/plugins/memvol.sock", "source": "socket",
//!      "file_kind": "socket", "finding": "winner", "detail": null}
//!   ],
//!   "source": {"kind": "socket", "path": "/run/docker/plugins/memvol.sock"},
//!   "address": "unix:///run/docker/plugins/memvol.sock",
//!   "tls": "none",
//!   "tls_options": {"CAFile": "", "CertFile": "", "KeyFile": "",
//!                   "InsecureSkipVerify": true, "ClientAuth": 0,
//!                   "ExclusiveRootPools": false, "MinVersion": 0},
//!   "declared_implements": null,
//!   "state": "ok",
//!   "manifest": {"Implements": ["VolumeDriver"]},
//!   "latency_ms": 0.377,
//!   "error": null
//! }
//! ```
//!
//! - `candidates[].source`: `socket`, `spec`, `json`; `file_kind`: `file`,
//!   `directory`, `symlink`, `socket`, `fifo`, `block_device`,
//!   `char_device`, `other`, or `null` when nothing is there; `finding`:
//!   `missing`, `dangling_symlink`, `unreachable` (`detail` says why),
//!   `not_a_socket`, `winner`, `failed` (chosen, and its error is final),
//!   `shadowed` (exists, never used). Empty for an invalid name.
//! - `source`: the winning (or failed) candidate, or `null`.
//! - `tls_options`: the TLS options Docker would use, with Go's field
//!   names (`null` for a `.json` spec without `TLSConfig`).
//! - `state`: the activation's outcome as in `ls`; `null` when the name
//!   does not resolve.
//! - `manifest`: Docker's `{"Implements": [...]}`, or `null`.
//!
//! # `call NAME METHOD [JSON | -]`
//!
//! One `POST /METHOD` to the plugin NAME resolves to, without a handshake
//! first (call `Plugin.Activate` yourself if the plugin needs it). No JSON
//! argument sends an empty body, as Docker sends nil arguments; a JSON
//! argument (or stdin with `-`) is checked, then sent as written followed
//! by a newline, as Go's encoder ends it. The reply body is printed: JSON
//! keeps its key order and is indented on a terminal, compact otherwise
//! (always compact with `--json`); a body that is not JSON is printed
//! verbatim. A status error prints Docker's text `<Method>: <message>` on
//! stderr and exits 1; so do transport errors and the deadline.
//!
//! # `doctor`
//!
//! Examines every discovered name, then activates every one that resolves
//! (in parallel, under `--timeout`), and reports each problem found. Exit
//! 1 if there is any, else 0 and `no problems found`. `doctor --json`:
//!
//! ```json
//! {
//!   "checked": 3,
//!   "problems": [
//!     {"kind": "stale_socket", "severity": "error", "name": "old",
//!      "path": "/run/docker/plugins/old.sock",
//!      "message": "nothing listens on this socket (connection refused): ..."}
//!   ]
//! }
//! ```
//!
//! `checked` counts distinct names. `severity` is `error` or `warning`;
//! `name` and `path` may be `null`. The `kind`s:
//!
//! | kind | severity | what |
//! |---|---|---|
//! | `stale_socket` | error | a socket nothing listens on (refused) |
//! | `refused` | error | a tcp plugin refused the connection |
//! | `missing_socket` | error | the socket vanished before it was dialled |
//! | `timeout` | error | no answer to `Plugin.Activate` in time |
//! | `activation_failed` | error | any other failure to activate (status error, bad reply, TLS) |
//! | `unparsable_spec` | error | a `.spec`/`.json` file whose content is unusable (`path` is the file, `message` the reason) |
//! | `unreadable_spec` | error | a spec file that cannot be read, is not a regular file, or is too large |
//! | `unreadable_directory` | error | a plugin directory that cannot be listed |
//! | `invalid_name` | error | a name scan lists but resolution rejects (empty, `.`/`..`, path characters) |
//! | `unresolvable` | warning | a name scan lists but no candidate resolves (a socket `d.bar` lists as `d`; dangling symlinks) |
//! | `shadowed` | warning | a definition never used because an earlier candidate decides the name (`path` is the unused one) |
//! | `insecure_tls` | warning | `https://` without verification: a `.spec` file (it cannot carry TLS options) or a `.json` with `InsecureSkipVerify` |
//! | `tls_ignored` | warning | a `.json` spec names certificates for a `tcp://`/`http://` address, which Docker dials in plain HTTP |
//!
//! # `demo`
//!
//! Creates a temporary plugin tree under `/tmp`, starts the memvol example
//! in-process on a unix socket there, plants a stale socket and a broken
//! spec, and runs `ls --probe`, `inspect memvol`, volume create / list /
//! get / remove through the registry's typed `VolumeDriver` proxy, and
//! `doctor`, one explanatory line per step. It needs neither root nor
//! Docker, takes well under a second, removes its tree, and exits 0 when
//! every step behaved as expected (including `doctor` finding exactly the
//! two planted problems). The directory options do not apply; `--json` is
//! refused.
//!
//! # `check NAME [--kind KIND]`
//!
//! Activates NAME and, for each subsystem it implements that `check`
//! knows (or only KIND), makes the calls dockerd makes, in dockerd's
//! order, with Docker's exact request bytes, one attempt each, each
//! bounded by `--timeout` (and by Docker's own per-method timeout where
//! it has one, such as 1 minute for `VolumeDriver.Path`):
//!
//! | KIND | calls |
//! |---|---|
//! | `VolumeDriver` | `Capabilities`; `Create` of a scratch volume `plugctl-check-<pid>-<n>` (no options), `Get`, `List`, `Path`, `Mount` with a 64-hex ID, `Unmount` with the same ID, `Remove`, then `Get` of the removed volume (to see how the plugin reports an error) |
//! | `IpamDriver` | `GetCapabilities`, `GetDefaultAddressSpaces`, `RequestPool` in the local default space, `RequestAddress` in that pool, `ReleaseAddress`, `ReleasePool` |
//! | `NetworkDriver` | `GetCapabilities`, `CreateNetwork` of a scratch network (a 64-hex ID, an IPv4 pool `10.250.0.0/24`), `DeleteNetwork` |
//! | `authz` | `AuthZReq` and `AuthZRes` for a synthetic `GET /_ping` by user `plugctl-check` |
//!
//! Whatever it created is removed again, even when a step in between
//! failed. Each reply is judged from the bytes the plugin wrote (status
//! line, headers, body; over `https://` only the status and body the
//! client saw). The findings:
//!
//! | kind | severity | the plugin | Docker |
//! |---|---|---|---|
//! | `capabilities_missing` | warning | has no `VolumeDriver.Capabilities`, or answers without `Capabilities` | falls back to local scope |
//! | `invalid_scope` | warning (volume), error (network) | answers a scope other than `local`/`global` (libnetwork: exactly, `Local` is invalid) | volumes: logs `Volume driver returned an invalid scope` and uses local; networks: refuses the driver |
//! | `error_not_json` | warning | answers an error with an HTML page or plain text | shows the whole body as the error, `<Method>: <body>` |
//! | `err_with_200` | warning | reports an error as `200 {"Err":…}` | its typed proxies take it as an error without the method prefix; anything checking only the status sees success |
//! | `key_case` | warning | spells a key in another case (`MountPoint`) | reads it (Go matches keys case-insensitively); exact decoders miss it |
//! | `null_list` | warning | answers `null` where a list is expected (`"Volumes": null`) | reads no volumes; decoders expecting an array fail |
//! | `mount_without_mountpoint` | error | answers `Mount` without a `Mountpoint` | bind-mounts an empty source: the container fails to start |
//! | `content_type_required` | error | answers 415 (it wants a `Content-Type`) | sends none, so the call always fails |
//! | `slow` | error | does not answer within the bound | gives up after its per-method timeout, or hangs where it has none |
//! | `bad_reply` | error | answers 200 with an empty or non-JSON body | cannot decode it (`EOF`), the operation fails |
//! | `call_failed` | error | fails a call Docker needs (or an authz reply has no boolean `Allow`) | the operation named in `docker` fails |
//!
//! Human output is a table of the calls made and a table of findings (or
//! `no findings: …`). Exit 0 with no findings, 1 with any (or when the
//! plugin does not resolve, does not activate, or does not implement
//! KIND), 2 for a KIND `check` does not know. `check --json`:
//!
//! ```json
//! {
//!   "name": "vol",
//!   "address": "unix:///run/docker/plugins/vol.sock",
//!   "implements": ["VolumeDriver"],
//!   "checked": ["VolumeDriver"],
//!   "calls": [
//!     {"method": "VolumeDriver.Mount", "expected": "success", "status": 200,
//!      "latency_ms": 0.41, "error": null}
//!   ],
//!   "findings": [
//!     {"kind": "key_case", "severity": "warning", "method": "VolumeDriver.Mount",
//!      "detail": "\"MountPoint\" where Docker's field is \"Mountpoint\"",
//!      "docker": "Docker reads it only because Go's JSON decoding ignores key case; ..."}
//!   ],
//!   "error": null
//! }
//! ```
//!
//! `expected` is `success`, `failure` (provoked on purpose) or `optional`;
//! `status` is `null` when no reply head arrived; `error` (top level) says
//! why nothing could be checked, else `null`.
//!
//! # `watch [--interval DURATION] [--count N]`
//!
//! First one `present` line per plugin, then one line per change until
//! Ctrl-C or SIGTERM (exit 0), or until `--count` lines were written.
//! Changes in the directories are seen at once through inotify (a
//! directory that cannot be watched, for example one that does not exist
//! yet, is polled until it can be); every `--interval` (default `1s`) the
//! directories are rescanned anyway and each plugin's address is checked
//! with a bare connect, nothing sent, bounded by `--timeout`: that is how
//! a plugin that died and left its socket behind is seen going `stale`.
//! Memory stays proportional to the number of plugins whatever the rate
//! of file-system events (a burst of them is one rescan). A line on
//! stderr says what is watched, once the watch is in place.
//!
//! A line for people:
//!
//! ```text
//! 2026-12-07T11:40:01.123Z  appeared    memvol  unix:///run/docker/plugins/memvol.sock (socket)  live
//! ```
//!
//! `watch --json` writes one JSON object per line (JSON lines):
//!
//! ```json
//! {"time": "2026-12-07T11:40:01.123Z", "event": "changed", "name": "web",
//!  "source": {"kind": "spec", "path": "/etc/docker/plugins/web.spec"},
//!  "address": "tcp://127.0.0.1:9001", "state": "live",
//!  "previous": {"source": {"kind": "spec", "path": "/etc/docker/plugins/web.spec"},
//!               "address": "tcp://127.0.0.1:9000"},
//!  "detail": null}
//! ```
//!
//! - `time`: UTC to the millisecond, RFC 3339 as Go writes it (trailing
//!   zeros of the fraction dropped: `…:01.12Z`, `…:01Z`).
//! - `event`: `present` (there when the watch began), `appeared`,
//!   `vanished`, `changed` (another source file, address, TLS options or
//!   declared `Implements`, or the socket re-created: a restarted plugin),
//!   `broken` (the name is listed but no longer resolves: `detail` says
//!   why), a new liveness state (`stale`, `live`, `unreachable`), or
//!   `error` (the directories cannot be listed; `name` is `null`).
//! - `source`, `address`: where the plugin is defined and what is dialled
//!   (the last known ones for `vanished`; `null` when it does not resolve).
//! - `state`: `live` (a connection was accepted), `stale` (refused, or the
//!   socket file is gone: nothing listens), `unreachable` (a tcp connect
//!   failed otherwise or timed out), `broken`, `unchecked` (named pipes),
//!   or `null` (`vanished`, `error`).
//! - `previous`: for `changed`, the source and address before; else `null`.
//! - `detail`: why (`connection refused`, the resolve error, `socket
//!   re-created`), or `null`.

#![forbid(unsafe_code)]

mod args;
mod call;
mod check;
mod demo;
mod doctor;
mod generate;
mod inspect;
mod ls;
mod output;
mod probe;
mod watch;

use std::ffi::OsString;
use std::future::Future;
use std::io::{self, IsTerminal, Read, Write};
use std::pin::Pin;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::probe::Ctx;

/// How a command ended: the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: success.
    Ok,
    /// 1: a problem was found, or a call failed.
    Problem,
    /// 2: the command line was wrong.
    Usage,
}

impl Exit {
    /// The numeric status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Problem => 1,
            Exit::Usage => 2,
        }
    }

    /// The status of a clap error: 0 for `--help` and `--version`, 2 for
    /// everything else.
    fn of_clap(e: &clap::Error) -> Exit {
        if e.exit_code() == 0 {
            Exit::Ok
        } else {
            Exit::Usage
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// Where a command reads and writes.
pub struct Io<'a> {
    /// The request body of `call … -`.
    pub stdin: &'a mut dyn Read,
    /// Results.
    pub stdout: &'a mut dyn Write,
    /// Errors and diagnostics.
    pub stderr: &'a mut dyn Write,
    /// Whether stdout is a terminal (JSON is then indented).
    pub stdout_terminal: bool,
    /// Whether stderr is a terminal (a progress line may show there while
    /// many plugins are probed).
    pub stderr_terminal: bool,
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("stdout_terminal", &self.stdout_terminal)
            .field("stderr_terminal", &self.stderr_terminal)
            .finish_non_exhaustive()
    }
}

/// Parses `args` (the first is the program name) and runs the command.
/// Needs a tokio runtime with IO and time enabled. It installs no tracing
/// subscriber: `-v` only has an effect through [`main`].
///
/// clap's help and version go to stdout (status 0); its errors to stderr
/// (status 2).
pub async fn run<I, T>(args: I, io: &mut Io<'_>) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_until(args, io, std::future::pending()).await
}

/// [`run`], where `stop` ends the commands that run until stopped
/// (`watch`, which then exits 0). Other commands never poll it, so a
/// `stop` that installs signal handlers when first polled (as [`main`]'s
/// does) installs none for them.
///
/// ```no_run
/// # async fn f() {
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let (mut stdin, mut stdout, mut stderr) = (&b""[..], Vec::new(), Vec::new());
/// let mut io = plugctl::Io {
///     stdin: &mut stdin,
///     stdout: &mut stdout,
///     stderr: &mut stderr,
///     stdout_terminal: false,
///     stderr_terminal: false,
/// };
/// # drop(tx);
/// let stop = async { let _ = rx.await; };
/// let exit = plugctl::run_until(["plugctl", "watch", "--json"], &mut io, stop).await;
/// # }
/// ```
pub async fn run_until<I, T>(args: I, io: &mut Io<'_>, stop: impl Future<Output = ()>) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => execute(cli, io, std::pin::pin!(stop)).await,
        Err(e) => {
            let exit = Exit::of_clap(&e);
            let text = e.render().to_string();
            let stream = if e.use_stderr() {
                &mut *io.stderr
            } else {
                &mut *io.stdout
            };
            let _ = write!(stream, "{text}");
            exit
        }
    }
}

/// What [`run_captured`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit status.
    pub exit: Exit,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// [`run`] with `stdin` as input and both outputs captured (stdout is not
/// a terminal). For tests and embedding.
pub async fn run_captured<I, T>(args: I, stdin: &[u8]) -> Output
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut input = stdin;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let exit = {
        let mut io = Io {
            stdin: &mut input,
            stdout: &mut stdout,
            stderr: &mut stderr,
            stdout_terminal: false,
            stderr_terminal: false,
        };
        run(args, &mut io).await
    };
    Output {
        exit,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

async fn execute(cli: Cli, io: &mut Io<'_>, stop: Pin<&mut dyn Future<Output = ()>>) -> Exit {
    match dispatch(cli, io, stop).await {
        Ok(exit) => exit,
        // `plugctl ls | head`: the reader left; nothing more to say.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Exit::Problem,
        Err(e) => {
            let _ = writeln!(io.stderr, "plugctl: writing the output: {e}");
            Exit::Problem
        }
    }
}

async fn dispatch(
    cli: Cli,
    io: &mut Io<'_>,
    stop: Pin<&mut dyn Future<Output = ()>>,
) -> io::Result<Exit> {
    let ctx = Ctx {
        local: Ctx::local_registry(cli.socket_dir.as_deref(), &cli.spec_dir),
        json: cli.json,
        pretty: io.stdout_terminal,
        timeout: cli.timeout,
        progress: io.stderr_terminal && !cli.json,
    };
    let exit = match &cli.command {
        Command::Ls(a) => ls::run(&ctx, io.stdout, io.stderr, a.probe, a.kind.as_deref()).await?,
        Command::Inspect(a) => inspect::run(&ctx, io.stdout, &a.name).await?,
        Command::Call(a) => call::run(&ctx, io, &a.name, &a.method, a.body.as_deref()).await?,
        Command::Doctor => doctor::run(&ctx, io.stdout).await?,
        Command::Demo if cli.json => {
            writeln!(
                io.stderr,
                "plugctl demo has no JSON output; run it without --json"
            )?;
            Exit::Usage
        }
        Command::Demo => demo::run(&ctx, io.stdout, io.stderr).await?,
        Command::Watch(a) => {
            let options = watch::Options {
                interval: a.interval,
                count: a.count,
            };
            watch::run(&ctx, io.stdout, io.stderr, options, stop).await?
        }
        Command::Check(a) => {
            check::run(&ctx, io.stdout, io.stderr, &a.name, a.kind.as_deref()).await?
        }
        Command::Completions(a) => generate::completions(io.stdout, a.shell)?,
        Command::Man(a) => generate::man(io.stdout, io.stderr, a.dir.as_deref())?,
    };
    io.stdout.flush()?;
    Ok(exit)
}

/// The binary's entry point: parses the process arguments, installs the
/// tracing subscriber `-v` asks for, and runs the command on a
/// single-threaded tokio runtime with the real stdin, stdout and stderr.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// [`main`] with the given arguments (the first is the program name), for
/// running the whole binary in a child process of a test.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let exit = Exit::of_clap(&e);
            // clap picks the stream and colours only terminals.
            let _ = e.print();
            return exit.into();
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = writeln!(io::stderr(), "plugctl: starting the runtime: {e}");
            return Exit::Problem.into();
        }
    };
    let mut stdin = io::stdin();
    let mut stdout = io::stdout();
    let mut stderr = io::stderr();
    let stdout_terminal = stdout.is_terminal();
    let stderr_terminal = stderr.is_terminal();
    let mut io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        stdout_terminal,
        stderr_terminal,
    };
    runtime
        .block_on(execute(cli, &mut io, std::pin::pin!(shutdown_signal())))
        .into()
}

/// Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is
/// first polled, which only `watch` does: every other command keeps the
/// default signal dispositions.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::debug!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `-v` info, `-vv` debug, `-vvv` trace, to stderr; without `-v`, only
/// what `RUST_LOG` asks for.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match verbose {
        0 => match EnvFilter::try_from_default_env() {
            Ok(filter) => filter,
            Err(_) => return,
        },
        1 => EnvFilter::new("info"),
        2 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    // Colour only on a terminal, and never under NO_COLOR.
    let ansi =
        io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(ansi)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(Exit::Ok.code(), 0);
        assert_eq!(Exit::Problem.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(ExitCode::from(Exit::Usage), ExitCode::from(2));
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        let out = block_on(run_captured(["plugctl", "frobnicate"], b""));
        assert_eq!(out.exit, Exit::Usage);
        assert!(out.stderr.contains("frobnicate"), "{}", out.stderr);
        assert!(out.stdout.is_empty());

        let out = block_on(run_captured(["plugctl", "--timeout", "soon", "ls"], b""));
        assert_eq!(out.exit, Exit::Usage);
        assert!(out.stderr.contains("invalid duration"), "{}", out.stderr);

        let out = block_on(run_captured(["plugctl", "--help"], b""));
        assert_eq!(out.exit, Exit::Ok);
        for command in ["ls", "inspect", "call", "doctor", "demo"] {
            assert!(out.stdout.contains(command), "{}", out.stdout);
        }

        let out = block_on(run_captured(["plugctl"], b""));
        assert_eq!(out.exit, Exit::Usage);
    }
}
