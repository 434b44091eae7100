//! The `rule-authz` command line: the policy and where to listen, then
//! serve until SIGINT or SIGTERM, removing the socket on the way out.

use std::path::PathBuf;

use clap::Parser;
use plugin_server::{Listener, Server};

use crate::{Policy, Rule, RuleAuthz};

/// Serve the rule-based authorization plugin.
#[derive(Debug, Clone, Parser)]
#[command(name = "rule-authz", version, about)]
pub struct Args {
    /// The plugin name Docker knows it by (`dockerd --authorization-plugin NAME`).
    #[arg(long, default_value = "rule-authz")]
    pub name: String,

    /// A rule, `ACTION METHOD PATTERN [MESSAGE]` (repeatable, tried in order),
    /// e.g. --rule 'deny DELETE /volumes/* volumes are kept'.
    #[arg(long = "rule", value_name = "RULE")]
    pub rules: Vec<Rule>,

    /// Deny every method but GET and HEAD unless a rule allows it.
    #[arg(long)]
    pub read_only: bool,

    /// The unix socket to listen on [default: /run/docker/plugins/NAME.sock].
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

impl Args {
    /// The policy the arguments describe.
    pub fn policy(&self) -> Policy {
        self.rules
            .iter()
            .cloned()
            .fold(Policy::new(), Policy::rule)
            .read_only(self.read_only)
    }
}

/// Runs rule-authz until a signal arrives. Must be called inside a tokio
/// runtime.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = match &args.socket {
        Some(path) => Listener::unix(path)?,
        None => Listener::plugin_socket(&args.name)?,
    };
    let plugin = RuleAuthz::new(args.policy()).plugin()?;
    Server::new(plugin).serve(listener).await?;
    Ok(())
}
