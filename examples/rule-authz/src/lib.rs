//! rule-authz: an authorization plugin deciding each Docker API call by a
//! short list of rules, the example to copy when writing an authorization
//! plugin with `plugin-server`.
//!
//! A rule reads `ACTION METHOD PATTERN [MESSAGE…]`:
//!
//! ```text
//! deny  DELETE /volumes/*        volumes are kept
//! allow POST   /volumes/create
//! deny  *      /networks/*       ask the network team
//! ```
//!
//! `METHOD` is an HTTP method or `*`; `PATTERN` is matched against the
//! request path without its API version prefix and query (`/v1.41/volumes/x?force=1`
//! is `/volumes/x`), `*` standing for any run of characters. Rules are
//! tried in order and the first that matches decides; its message is what
//! the user reads after `authorization denied by plugin NAME: `. When no
//! rule matches, a [read-only](Policy::read_only) policy denies every
//! method but `GET` and `HEAD`, and otherwise the call is allowed.
//!
//! Only requests are judged (`AuthZReq`); responses (`AuthZRes`) are
//! always allowed. Every decision is logged with `tracing` (denials at
//! `info`, the rest at `debug`).
//!
//! [`cli`] is the command line the `rule-authz` binary runs.
//!
//! **What it must never do:** allow a call a rule denies, or fail (rather
//! than decide) on a request it does not understand.

#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use plugin_server::authz::{AuthzPlugin, Request, Response};
use plugin_server::{BuildError, Plugin, PluginError};

pub mod cli;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The call goes ahead.
    Allow,
    /// The call is refused with the rule's message.
    Deny,
}

/// One rule: `ACTION METHOD PATTERN [MESSAGE…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    action: Action,
    /// Upper case; `*` is any method.
    method: String,
    pattern: String,
    message: String,
}

/// Why a rule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rule {rule:?}: {why} (expected ACTION METHOD PATTERN [MESSAGE], e.g. \"deny DELETE /volumes/* volumes are kept\")"
)]
#[non_exhaustive]
pub struct RuleError {
    rule: String,
    why: &'static str,
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Rule, RuleError> {
        let bad = |why| RuleError {
            rule: s.to_owned(),
            why,
        };
        let mut words = s.split_whitespace();
        let action = match words.next().map(str::to_ascii_lowercase).as_deref() {
            Some("allow") => Action::Allow,
            Some("deny") => Action::Deny,
            Some(_) => return Err(bad("ACTION must be allow or deny")),
            None => return Err(bad("empty")),
        };
        let method = words.next().ok_or_else(|| bad("no METHOD"))?;
        if method != "*" && !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad("METHOD must be an HTTP method or *"));
        }
        let pattern = words.next().ok_or_else(|| bad("no PATTERN"))?;
        if !pattern.starts_with('/') && !pattern.starts_with('*') {
            return Err(bad("PATTERN must start with / or *"));
        }
        Ok(Rule {
            action,
            method: method.to_ascii_uppercase(),
            pattern: pattern.to_owned(),
            message: words.collect::<Vec<_>>().join(" "),
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Allow => "allow",
            Action::Deny => "deny",
        };
        write!(f, "{action} {} {}", self.method, self.pattern)?;
        if !self.message.is_empty() {
            write!(f, " {}", self.message)?;
        }
        Ok(())
    }
}

impl Rule {
    fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && glob(&self.pattern, path)
    }
}

/// `*` matches any run of characters (`/` included); everything else is
/// literal.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole text must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The request path a rule sees: the URI without its query and without a
/// leading API version (`/v1.41`).
pub fn api_path(uri: &str) -> &str {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    if let Some(rest) = path.strip_prefix("/v")
        && let Some(slash) = rest.find('/')
        && rest[..slash]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.')
        && slash > 0
    {
        return &rest[slash..];
    }
    path
}

/// The rules and the mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    read_only: bool,
}

/// What the policy decided about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the call may go ahead.
    pub allow: bool,
    /// Why it was denied (empty when allowed).
    pub message: String,
    /// The index of the rule that decided, if one did.
    pub rule: Option<usize>,
}

impl Policy {
    /// Allows everything: no rules, not read-only.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Adds a rule after the existing ones.
    pub fn rule(mut self, rule: Rule) -> Policy {
        self.rules.push(rule);
        self
    }

    /// In read-only mode a call no rule matched is denied unless its
    /// method is `GET` or `HEAD`.
    pub fn read_only(mut self, yes: bool) -> Policy {
        self.read_only = yes;
        self
    }

    /// Decides one call.
    ///
    /// ```
    /// use rule_authz::Policy;
    /// let policy = Policy::new()
    ///     .rule("allow POST /volumes/create".parse()?)
    ///     .rule("deny DELETE /volumes/* volumes are kept".parse()?)
    ///     .read_only(true);
    /// assert!(policy.decide("POST", "/v1.41/volumes/create").allow);
    /// assert_eq!(policy.decide("DELETE", "/v1.41/volumes/v1").message, "volumes are kept");
    /// assert_eq!(
    ///     policy.decide("POST", "/v1.41/networks/create").message,
    ///     "read-only mode: POST /networks/create is not allowed"
    /// );
    /// assert!(policy.decide("GET", "/v1.41/volumes").allow);
    /// # Ok::<(), rule_authz::RuleError>(())
    /// ```
    pub fn decide(&self, method: &str, uri: &str) -> Decision {
        let path = api_path(uri);
        if let Some((i, rule)) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(method, path))
        {
            let message = match (rule.action, rule.message.is_empty()) {
                (Action::Allow, _) => String::new(),
                (Action::Deny, false) => rule.message.clone(),
                (Action::Deny, true) => format!("{method} {path} is denied by rule {}", i + 1),
            };
            return Decision {
                allow: rule.action == Action::Allow,
                message,
                rule: Some(i),
            };
        }
        if self.read_only && !matches!(method, "GET" | "HEAD") {
            return Decision {
                allow: false,
                message: format!("read-only mode: {method} {path} is not allowed"),
                rule: None,
            };
        }
        Decision {
            allow: true,
            message: String::new(),
            rule: None,
        }
    }
}

/// The authorization plugin: a [`Policy`] answering `AuthZReq`.
#[derive(Debug, Clone, Default)]
pub struct RuleAuthz {
    policy: Policy,
}

impl RuleAuthz {
    /// A plugin deciding by `policy`.
    pub fn new(policy: Policy) -> RuleAuthz {
        RuleAuthz { policy }
    }

    /// The plugin, ready for a [`plugin_server::Server`].
    pub fn plugin(self) -> Result<Plugin, BuildError> {
        Plugin::builder().authz(self).build()
    }
}

impl AuthzPlugin for RuleAuthz {
    async fn authz_req(&self, req: Request) -> Result<Response, PluginError> {
        let d = self.policy.decide(&req.request_method, &req.request_uri);
        let rule = d.rule.map(|i| i + 1);
        if d.allow {
            tracing::debug!(method = %req.request_method, uri = %req.request_uri, user = %req.user, ?rule, "allowed");
        } else {
            tracing::info!(method = %req.request_method, uri = %req.request_uri, user = %req.user, ?rule, msg = %d.message, "denied");
        }
        Ok(Response {
            allow: d.allow,
            msg: d.message,
            ..Response::default()
        })
    }

    async fn authz_res(&self, req: Request) -> Result<Response, PluginError> {
        tracing::debug!(method = %req.request_method, uri = %req.request_uri,
            status = req.response_status_code, "response allowed");
        Ok(Response {
            allow: true,
            ..Response::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Rule {
        s.parse().unwrap()
    }

    #[test]
    fn rules_read_and_print_back() {
        let r = rule("deny delete /volumes/*   volumes are  kept");
        assert_eq!(r.to_string(), "deny DELETE /volumes/* volumes are kept");
        assert_eq!(rule("Allow * *").to_string(), "allow * *");
        for (bad, why) in [
            ("", "empty"),
            ("permit GET /", "ACTION must be allow or deny"),
            ("deny", "no METHOD"),
            ("deny GET", "no PATTERN"),
            ("deny G/T /x", "METHOD must be an HTTP method or *"),
            ("deny GET volumes", "PATTERN must start with / or *"),
        ] {
            let e = bad.parse::<Rule>().unwrap_err();
            assert_eq!(e.why, why, "{bad:?}");
            assert!(
                e.to_string()
                    .starts_with(&format!("invalid rule {bad:?}: {why}"))
            );
        }
    }

    #[test]
    fn globs() {
        assert!(glob("/volumes/*", "/volumes/v1"));
        assert!(glob("/volumes/*", "/volumes/"));
        assert!(!glob("/volumes/*", "/volumes"));
        assert!(glob("*", ""));
        assert!(glob("/containers/*/exec", "/containers/abc/exec"));
        assert!(!glob("/containers/*/exec", "/containers/abc/exec/start"));
        assert!(glob("/a*b*c", "/aXbYbc"));
        assert!(glob("/_ping", "/_ping"));
        assert!(!glob("/_ping", "/_pingx"));
        // Overlapping prefix and suffix do not double count.
        assert!(!glob("/ab*ba", "/aba"));
    }

    #[test]
    fn paths_lose_version_and_query() {
        assert_eq!(api_path("/v1.41/volumes/v1?force=1"), "/volumes/v1");
        assert_eq!(api_path("/_ping"), "/_ping");
        assert_eq!(api_path("/volumes"), "/volumes");
        assert_eq!(api_path("/v1.41"), "/v1.41");
        assert_eq!(api_path("/vx/volumes"), "/vx/volumes");
        assert_eq!(api_path("/v/volumes"), "/v/volumes");
        assert_eq!(api_path(""), "");
    }

    #[test]
    fn first_matching_rule_decides_then_the_mode() {
        let p = Policy::new()
            .rule(rule("allow POST /volumes/create"))
            .rule(rule("deny * /volumes/* volumes are kept"))
            .rule(rule("deny POST /networks/*"));
        assert_eq!(p.decide("POST", "/v1.41/volumes/create").rule, Some(0));
        assert!(p.decide("POST", "/v1.41/volumes/create").allow);
        let d = p.decide("DELETE", "/v1.41/volumes/v1");
        assert_eq!(
            (d.allow, d.message.as_str(), d.rule),
            (false, "volumes are kept", Some(1))
        );
        let d = p.decide("POST", "/v1.41/networks/create");
        assert_eq!(d.message, "POST /networks/create is denied by rule 3");
        // Nothing matched and not read-only: allowed.
        let d = p.decide("DELETE", "/v1.41/networks/n1");
        assert_eq!((d.allow, d.rule), (true, None));
        let ro = p.read_only(true);
        assert!(!ro.decide("DELETE", "/v1.41/networks/n1").allow);
        assert!(ro.decide("HEAD", "/_ping").allow);
        assert!(ro.decide("GET", "/v1.41/networks").allow);
        // An allow rule still wins in read-only mode.
        assert!(ro.decide("POST", "/v1.41/volumes/create").allow);
    }

    #[tokio::test]
    async fn the_plugin_answers_requests_by_policy_and_allows_responses() {
        let authz = RuleAuthz::new(Policy::new().read_only(true));
        let req = Request {
            request_method: "POST".into(),
            request_uri: "/v1.41/volumes/create".into(),
            request_body: b"{}".to_vec(),
            ..Request::default()
        };
        let denied = authz.authz_req(req.clone()).await.unwrap();
        assert_eq!(
            denied,
            Response {
                allow: false,
                msg: "read-only mode: POST /volumes/create is not allowed".into(),
                err: String::new(),
            }
        );
        assert!(authz.authz_res(req).await.unwrap().allow);
    }
}
