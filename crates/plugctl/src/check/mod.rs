//! `plugctl check NAME [--kind KIND]`: activates a plugin and exercises its
//! subsystem the way dockerd does, with scratch names it cleans up, and
//! reports every protocol finding with what Docker does about it.
//!
//! Each call goes out as Docker sends it (the client's bytes) on a
//! connection of its own whose reply bytes are kept ([`wire`]), then is
//! judged twice: by Docker's rules (what the engine makes of it) and by
//! the letter of the protocol (what a stricter engine would make of it).
//!
//! It must never leave anything behind that it created: every scratch
//! volume, pool, address and network is released in reverse order, even
//! after a failed step.

mod flows;
mod wire;

use std::io::{self, Write};
use std::time::Duration;

use bytes::Bytes;
use plugin_registry::discovery::PluginSpec;
use plugin_registry::proto::{Call, encode_args, kinds, retry::go_duration};
use serde::Serialize;
use serde_json::Value;

use crate::Exit;
use crate::output::{json_document, latency_ms, or_dash, show_latency, table};
use crate::probe::{Ctx, activate};
use wire::Exchange;

/// The subsystems `check` knows how to exercise, in the order it runs them.
pub(crate) const KINDS: [&str; 4] = [
    kinds::VOLUME_DRIVER,
    kinds::IPAM_DRIVER,
    kinds::NETWORK_DRIVER,
    kinds::AUTHZ,
];

/// What the check found wrong, with Docker's consequence.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    /// A stable word: see the crate documentation's table.
    pub(crate) kind: &'static str,
    /// `error` (Docker's operation fails or misbehaves) or `warning`
    /// (Docker copes; a stricter engine or a user reading the error does
    /// not).
    pub(crate) severity: &'static str,
    pub(crate) method: String,
    /// What the plugin did.
    pub(crate) detail: String,
    /// What Docker does about it.
    pub(crate) docker: String,
}

/// One call made, for the report.
#[derive(Debug, Clone, Serialize)]
struct CallRow {
    method: String,
    /// `success`, `failure` (provoked on purpose) or `optional`.
    expected: &'static str,
    status: Option<u16>,
    latency_ms: f64,
    error: Option<String>,
    #[serde(skip)]
    latency: Duration,
}

/// What a step expects of its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Docker needs it to succeed.
    Success,
    /// Provoked on purpose (a volume just removed): the error's form is
    /// what is judged.
    Failure,
    /// Optional for Docker; the step judges a failure itself.
    Optional,
}

/// The calls and findings of one check.
pub(crate) struct Checker<'a> {
    spec: &'a PluginSpec,
    timeout: Duration,
    calls: Vec<CallRow>,
    pub(crate) findings: Vec<Finding>,
    /// The canonical reply keys of the subsystem being checked.
    keys: &'static [&'static str],
}

impl Checker<'_> {
    /// Records a finding.
    pub(crate) fn find(
        &mut self,
        kind: &'static str,
        severity: &'static str,
        method: &str,
        detail: impl Into<String>,
        docker: impl Into<String>,
    ) {
        self.findings.push(Finding {
            kind,
            severity,
            method: method.to_owned(),
            detail: detail.into(),
            docker: docker.into(),
        });
    }

    /// Makes the call `request` as Docker makes it, judges the reply by
    /// the rules every call shares, and returns the reply's JSON when it
    /// was a 200 whose body is JSON.
    pub(crate) async fn call<C: Call>(
        &mut self,
        request: &C,
        expect: Expect,
        consequence: &str,
    ) -> (Exchange, Option<Value>) {
        let body = if C::SENDS_BODY {
            encode_args(Some(request)).unwrap_or_default()
        } else {
            Bytes::new()
        };
        let bound = C::TIMEOUT.map_or(self.timeout, |t| t.min(self.timeout));
        let x = wire::exchange(self.spec, C::METHOD, body, bound).await;
        self.calls.push(CallRow {
            method: x.method.clone(),
            expected: match expect {
                Expect::Success => "success",
                Expect::Failure => "failure",
                Expect::Optional => "optional",
            },
            status: x.status,
            latency_ms: latency_ms(x.latency),
            error: x.error.clone(),
            latency: x.latency,
        });
        let method = C::METHOD;
        if x.timed_out {
            let docker = match C::TIMEOUT {
                Some(t) => format!(
                    "Docker gives up on {method} after {} and {consequence}",
                    go_duration(t)
                ),
                None => format!(
                    "Docker has no time limit on {method}: the operation that needs it hangs"
                ),
            };
            self.find(
                "slow",
                "error",
                method,
                format!("no reply within {}", go_duration(bound)),
                docker,
            );
            return (x, None);
        }
        let Some(status) = x.status else {
            if expect != Expect::Failure {
                let error = x.error.clone().unwrap_or_default();
                self.find(
                    "call_failed",
                    "error",
                    method,
                    error,
                    format!("Docker retries, then {consequence}"),
                );
            }
            return (x, None);
        };
        let json = x.json();
        if status == 415 {
            self.find(
                "content_type_required",
                "error",
                method,
                format!("415 {}", snippet(&x.body)),
                "Docker sends no Content-Type header, so every call fails this way in Docker",
            );
        }
        if status != 200 {
            let err = json.as_ref().and_then(|v| err_text(v, self.keys));
            // An optional call's error text only reaches Docker's debug log.
            if err.is_none() && expect != Expect::Optional {
                let what = if looks_like_html(&x) {
                    "an HTML page"
                } else {
                    "not JSON with an \"Err\""
                };
                self.find(
                    "error_not_json",
                    "warning",
                    method,
                    format!("{status} reply body is {what}: {}", snippet(&x.body)),
                    format!(
                        "Docker shows the whole body as the error: \"{method}: {}\"",
                        snippet(&x.body)
                    ),
                );
            }
            if expect == Expect::Success && status != 415 {
                self.find(
                    "call_failed",
                    "error",
                    method,
                    x.error.clone().unwrap_or_else(|| status.to_string()),
                    consequence.to_owned(),
                );
            }
            return (x, None);
        }
        // 200.
        let Some(json) = json.filter(|_| !x.body.is_empty()) else {
            if C::READS_REPLY {
                let detail = if x.body.is_empty() {
                    "empty 200 reply".to_owned()
                } else {
                    format!("200 reply is not JSON: {}", snippet(&x.body))
                };
                self.find(
                    "bad_reply",
                    "error",
                    method,
                    detail,
                    format!(
                        "Docker cannot decode it (\"EOF\" or a syntax error) and {consequence}"
                    ),
                );
            }
            return (x, None);
        };
        if let Some(err) = err_text(&json, self.keys) {
            self.find(
                "err_with_200",
                "warning",
                method,
                format!("200 with {{\"Err\":{}}}", Value::String(err.clone())),
                format!(
                    "Docker's typed proxies take it as an error, shown without the method \
                     (\"{err}\", libnetwork: \"remote: {err}\"); anything checking only \
                     the status sees success. Plugins built on Docker's helpers answer 500"
                ),
            );
            if expect == Expect::Success {
                self.find("call_failed", "error", method, err, consequence.to_owned());
            }
            return (x, None);
        }
        self.judge_keys(method, &json);
        (x, Some(json))
    }

    /// Keys that match one of Docker's only case-insensitively, at the
    /// top level and one level down (a volume, each volume of a list,
    /// the capabilities).
    fn judge_keys(&mut self, method: &str, json: &Value) {
        let mut objects = vec![json];
        if let Value::Object(map) = json {
            for value in map.values() {
                match value {
                    Value::Object(_) => objects.push(value),
                    Value::Array(items) => objects.extend(items.iter().filter(|i| i.is_object())),
                    _ => {}
                }
            }
        }
        let mut reported = Vec::new();
        for object in objects {
            let Value::Object(map) = object else { continue };
            for key in map.keys() {
                let canonical = self
                    .keys
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(key) && **k != key.as_str());
                if let Some(canonical) = canonical
                    && !reported.contains(key)
                {
                    reported.push(key.clone());
                    self.find(
                        "key_case",
                        "warning",
                        method,
                        format!("\"{key}\" where Docker's field is \"{canonical}\""),
                        "Docker reads it only because Go's JSON decoding ignores key case; \
                         decoders that match keys exactly (serde, most languages) miss it",
                    );
                }
            }
        }
    }
}

/// A JSON object's non-empty `Err` (or IPAM's `Error`), matched as Go
/// matches keys (case-insensitively).
fn err_text(json: &Value, keys: &[&str]) -> Option<String> {
    let name = if keys.contains(&"Error") {
        "Error"
    } else {
        "Err"
    };
    // Docker's generic client reads `Err` on status errors whatever the
    // subsystem.
    [name, "Err"].iter().find_map(|n| {
        get_ci(json, n)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    })
}

/// A field of a JSON object as Go's `encoding/json` finds it: the exact
/// key, else any key equal to it ignoring case.
pub(crate) fn get_ci<'v>(json: &'v Value, key: &str) -> Option<&'v Value> {
    let map = json.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn looks_like_html(x: &Exchange) -> bool {
    x.header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"))
        || x.body.trim_ascii_start().starts_with(b"<")
}

/// The start of a body, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.trim().chars().take(60).collect();
    let line = line.replace(['\n', '\r'], " ");
    if text.trim().chars().count() > 60 {
        format!("{line}…")
    } else {
        line
    }
}

/// The `check --json` document.
#[derive(Debug, Serialize)]
struct Report {
    name: String,
    address: Option<String>,
    implements: Option<Vec<String>>,
    checked: Vec<String>,
    calls: Vec<CallRow>,
    findings: Vec<Finding>,
    error: Option<String>,
}

/// Runs `check`: exit 0 when nothing was found, 1 otherwise (or when the
/// plugin cannot be resolved or activated), 2 for an unknown `--kind`.
pub(crate) async fn run(
    ctx: &Ctx,
    out: &mut dyn Write,
    err: &mut dyn Write,
    name: &str,
    kind: Option<&str>,
) -> io::Result<Exit> {
    if let Some(kind) = kind.filter(|k| !KINDS.contains(k)) {
        writeln!(err, "check knows {} (not {kind:?})", KINDS.join(", "))?;
        return Ok(Exit::Usage);
    }
    let mut report = Report {
        name: name.to_owned(),
        address: None,
        implements: None,
        checked: Vec::new(),
        calls: Vec::new(),
        findings: Vec::new(),
        error: None,
    };
    let spec = match ctx.local.plugin(name) {
        Ok(spec) => spec,
        Err(e) => {
            report.error = Some(e.to_string());
            return render(ctx, out, err, &report);
        }
    };
    report.address = Some(spec.address().to_string());
    let activation = activate(&spec, ctx.timeout).await;
    let manifest = match activation.result {
        Ok(manifest) => manifest,
        Err((_, e)) => {
            report.error = Some(e);
            return render(ctx, out, err, &report);
        }
    };
    report.implements = Some(manifest.implements.clone());
    let kinds: Vec<&str> = match kind {
        Some(k) if !manifest.implements(k) => {
            report.error = Some(format!(
                "{name} does not implement {k} (it implements: {})",
                manifest.implements.join(", ")
            ));
            return render(ctx, out, err, &report);
        }
        Some(k) => vec![k],
        None => KINDS
            .into_iter()
            .filter(|k| manifest.implements(k))
            .collect(),
    };
    for kind in kinds {
        let mut checker = Checker {
            spec: &spec,
            timeout: ctx.timeout,
            calls: Vec::new(),
            findings: Vec::new(),
            keys: flows::keys(kind),
        };
        flows::run(kind, &mut checker).await;
        report.checked.push(kind.to_owned());
        report.calls.append(&mut checker.calls);
        report.findings.append(&mut checker.findings);
    }
    render(ctx, out, err, &report)
}

fn render(
    ctx: &Ctx,
    out: &mut dyn Write,
    err: &mut dyn Write,
    report: &Report,
) -> io::Result<Exit> {
    let exit = if report.error.is_some() || !report.findings.is_empty() {
        Exit::Problem
    } else {
        Exit::Ok
    };
    if ctx.json {
        json_document(out, report, ctx.pretty)?;
        return Ok(exit);
    }
    if let Some(e) = &report.error {
        writeln!(err, "{e}")?;
        return Ok(exit);
    }
    if report.checked.is_empty() {
        writeln!(
            out,
            "{} implements {}: nothing check knows how to exercise ({})",
            report.name,
            report.implements.as_deref().unwrap_or_default().join(", "),
            KINDS.join(", ")
        )?;
        return Ok(exit);
    }
    let rows: Vec<Vec<String>> = report
        .calls
        .iter()
        .map(|c| {
            vec![
                c.method.clone(),
                or_dash(c.status.map(|s| s.to_string())),
                show_latency(c.latency),
                match (&c.error, c.expected) {
                    (None, _) => "ok".to_owned(),
                    (Some(e), "failure") => format!("{e} (provoked)"),
                    (Some(e), _) => e.clone(),
                },
            ]
        })
        .collect();
    table(out, &["CALL", "STATUS", "LATENCY", "RESULT"], &rows)?;
    writeln!(out)?;
    if report.findings.is_empty() {
        writeln!(
            out,
            "no findings: {} speaks {} as Docker uses it",
            report.name,
            report.checked.join(", ")
        )?;
        return Ok(exit);
    }
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|f| {
            vec![
                f.kind.to_owned(),
                f.severity.to_owned(),
                f.method.clone(),
                f.detail.clone(),
                f.docker.clone(),
            ]
        })
        .collect();
    table(
        out,
        &["FINDING", "SEVERITY", "CALL", "WHAT", "DOCKER"],
        &rows,
    )?;
    Ok(exit)
}
