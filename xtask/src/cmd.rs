//! Running cargo and reporting what was run.

use std::process::{Command, Output};

use crate::{Result, root};

/// `cargo <args>` at the workspace root, with extra environment variables.
pub(crate) fn cargo(args: &[&str], env: &[(&str, &str)]) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(root());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a command with inherited output; a non-zero exit is an error.
pub(crate) fn run(mut cmd: Command) -> Result {
    let shown = show(&cmd);
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// Runs a command and captures its output, whatever its exit status.
pub(crate) fn output(mut cmd: Command) -> Result<Output> {
    let shown = show(&cmd);
    cmd.output().map_err(|e| format!("cannot run {shown}: {e}"))
}

/// The command as a shell line, for logs and errors.
pub(crate) fn show(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    parts.push("cargo".into());
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}
