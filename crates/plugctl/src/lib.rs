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
//! | 0 | success (`ls` listed, `inspect` activated the plugin, `call` got a 200, `doctor` found nothing, `demo` behaved as expected) |
//! | 1 | a problem: the directories could not be listed, the name did not resolve, activation or the call failed (a status error prints Docker's `<Method>: <message>` on stderr), `doctor` found something |
//! | 2 | usage: unknown options, a bad duration, a method not shaped `Subsystem.Method`, a request body that is not JSON, `demo --json` |
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

#![forbid(unsafe_code)]

mod args;
mod call;
mod demo;
mod doctor;
mod inspect;
mod ls;
mod output;
mod probe;

use std::ffi::OsString;
use std::io::{self, IsTerminal, Read, Write};
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
    match Cli::try_parse_from(args) {
        Ok(cli) => execute(cli, io).await,
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

async fn execute(cli: Cli, io: &mut Io<'_>) -> Exit {
    match dispatch(cli, io).await {
        Ok(exit) => exit,
        // `plugctl ls | head`: the reader left; nothing more to say.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Exit::Problem,
        Err(e) => {
            let _ = writeln!(io.stderr, "plugctl: writing the output: {e}");
            Exit::Problem
        }
    }
}

async fn dispatch(cli: Cli, io: &mut Io<'_>) -> io::Result<Exit> {
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
    };
    io.stdout.flush()?;
    Ok(exit)
}

/// The binary's entry point: parses the process arguments, installs the
/// tracing subscriber `-v` asks for, and runs the command on a
/// single-threaded tokio runtime with the real stdin, stdout and stderr.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    runtime.block_on(execute(cli, &mut io)).into()
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
