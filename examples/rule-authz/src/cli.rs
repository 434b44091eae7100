//! The `rule-authz` command line: the plugin's name, the policy and where
//! to listen (the kit's [`ListenConfig`]), then serve until SIGINT or
//! SIGTERM, removing the socket or spec file on the way out.

use clap::Parser;
use plugin_server::{ListenConfig, Server};

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

    /// Where to listen.
    #[command(flatten)]
    pub listen: ListenConfig,
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
    let bound = args.listen.bind(&args.name)?;
    let plugin = RuleAuthz::new(args.policy()).plugin()?;
    Server::new(plugin).serve_bound(bound).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_mode_come_from_the_command_line() {
        let args = Args::try_parse_from([
            "rule-authz",
            "--rule",
            "allow POST /volumes/create",
            "--rule",
            "deny DELETE /volumes/* volumes are kept",
            "--read-only",
        ])
        .unwrap();
        let policy = args.policy();
        assert!(policy.decide("POST", "/v1.41/volumes/create").allow);
        assert_eq!(
            policy.decide("DELETE", "/v1.41/volumes/v1").message,
            "volumes are kept"
        );
        assert!(!policy.decide("POST", "/v1.41/networks/create").allow);
        let e = Args::try_parse_from(["rule-authz", "--rule", "permit GET /"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid rule \"permit GET /\": ACTION must be allow or deny"),
            "{e}"
        );
    }
}
