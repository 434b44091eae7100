//! The command line, as clap derives it, and the `--timeout` parser.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Inspect and diagnose Docker v1 plugins (sockets in /run/docker/plugins,
/// .spec and .json files in /etc/docker/plugins and /usr/lib/docker/plugins).
#[derive(Debug, Parser)]
#[command(
    name = "plugctl",
    version,
    about,
    max_term_width = 100,
    after_help = "Exit status: 0 success, 1 a problem was found or a call failed, 2 usage error."
)]
pub(crate) struct Cli {
    /// The socket directory [default: /run/docker/plugins].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) socket_dir: Option<PathBuf>,

    /// A spec directory, highest priority first; repeat for several
    /// [default: the host's, rootless-aware: /etc/docker/plugins then
    /// /usr/lib/docker/plugins].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) spec_dir: Vec<PathBuf>,

    /// Machine output: one JSON document on stdout (schemas in the crate
    /// documentation).
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Log to stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Deadline of each probe and call (`500ms`, `2s`, `1m`).
    #[arg(long, global = true, value_name = "DURATION", default_value = "2s",
          value_parser = parse_duration)]
    pub(crate) timeout: Duration,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List every discovered plugin name with its source file, address and
    /// TLS mode; --probe activates them.
    Ls(LsArgs),
    /// Show every candidate path for NAME in Docker's order, the winner,
    /// its address, TLS options and manifest (activates the plugin).
    Inspect(InspectArgs),
    /// Make one call to a plugin and print the reply.
    Call(CallArgs),
    /// Find stale sockets, broken specs, shadowed names, unresolvable or
    /// invalid names and insecure TLS; exit status 1 when anything is
    /// wrong.
    Doctor,
    /// Start the example volume plugin in a temporary directory and walk
    /// ls, inspect, volume calls and doctor against it.
    Demo,
    /// Stream plugins appearing, vanishing, going stale and changing
    /// definition, one line each (JSON lines with --json), until Ctrl-C.
    Watch(WatchArgs),
    /// Activate a plugin and exercise its subsystem as dockerd does, with
    /// scratch names cleaned up afterwards; report every protocol finding
    /// with Docker's consequence (exit 1 when there is any).
    Check(CheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell).
    Completions(CompletionsArgs),
    /// Print the manual page plugctl(1) in roff, or write it and one page
    /// per subcommand into a directory.
    Man(ManArgs),
}

/// `plugctl check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The plugin name.
    pub(crate) name: String,

    /// Check only this subsystem: VolumeDriver, IpamDriver, NetworkDriver
    /// or authz [default: every one the plugin implements].
    #[arg(long, value_name = "KIND")]
    pub(crate) kind: Option<String>,
}

/// `plugctl completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell, e.g. `plugctl completions bash > /etc/bash_completion.d/plugctl`.
    #[arg(value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}

/// `plugctl man`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write plugctl.1 and plugctl-<command>.1 into DIR (which must exist)
    /// instead of printing plugctl.1.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// `plugctl watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// How often to rescan and check that sockets still accept
    /// connections (changes in the directories are seen at once).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub(crate) interval: Duration,

    /// Exit after N events (the initial `present` lines included).
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
}

/// `plugctl ls`.
#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Activate every plugin in parallel and add state, implements and
    /// latency.
    #[arg(long)]
    pub(crate) probe: bool,

    /// Only plugins implementing KIND (e.g. VolumeDriver): by their
    /// manifest with --probe, by their .json spec's Implements otherwise.
    #[arg(long, value_name = "KIND")]
    pub(crate) kind: Option<String>,
}

/// `plugctl inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The plugin name.
    pub(crate) name: String,
}

/// `plugctl call`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The plugin name.
    pub(crate) name: String,
    /// The method, `Subsystem.Method` (e.g. VolumeDriver.List).
    pub(crate) method: String,
    /// The request body as JSON, or `-` to read it from stdin; none sends
    /// an empty body (Docker's nil arguments).
    #[arg(value_name = "JSON")]
    pub(crate) body: Option<String>,
}

/// Parses a Go-style duration: one or more `<number><unit>` with units
/// `ns`, `us` (`µs`), `ms`, `s`, `m`, `h` (`500ms`, `1.5s`, `1m30s`). It
/// must be positive.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?} (expected e.g. 500ms, 2s, 1m30s)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += value * scale;
        rest = tail;
    }
    let duration = Duration::try_from_secs_f64(total).map_err(|_| invalid())?;
    if duration.is_zero() {
        return Err(format!("the duration {text:?} must be positive"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        for bad in ["", "2", "s", "2x", "0s", "-1s", "1..2s", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
