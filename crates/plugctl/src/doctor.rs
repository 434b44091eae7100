//! `plugctl doctor`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use futures_util::future::join_all;
use plugin_registry::ListState;
use plugin_registry::discovery::{
    DiscoveryError, DiscoveryErrorKind, Finding, LocalRegistry, PluginSpec, SourceKind,
};
use plugin_registry::proto::retry::go_duration;
use serde::Serialize;

use crate::Exit;
use crate::inspect::finding_token;
use crate::ls::unique;
use crate::output::{json_document, or_dash, show_name, table};
use crate::probe::{Ctx, activate};

/// One problem found (JSON schema in the crate docs).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Problem {
    /// A stable word: see [`crate`] docs for the list.
    pub(crate) kind: &'static str,
    /// `error` or `warning`.
    pub(crate) severity: &'static str,
    pub(crate) name: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) message: String,
}

/// What `doctor` found.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Distinct plugin names examined.
    pub(crate) checked: usize,
    pub(crate) problems: Vec<Problem>,
}

const ERROR: &str = "error";
const WARNING: &str = "warning";

impl Problem {
    fn new(kind: &'static str, severity: &'static str, name: &str, message: String) -> Problem {
        Problem {
            kind,
            severity,
            name: Some(name.to_owned()),
            path: None,
            message,
        }
    }

    fn at(mut self, path: &Path) -> Problem {
        self.path = Some(path.display().to_string());
        self
    }
}

/// Runs `doctor`: exit 1 when anything is wrong.
pub(crate) async fn run(ctx: &Ctx, out: &mut dyn Write) -> io::Result<Exit> {
    let report = collect(ctx).await;
    render(ctx, out, &report)?;
    Ok(if report.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Problem
    })
}

/// Examines every discovered name, then activates every resolved plugin in
/// parallel.
pub(crate) async fn collect(ctx: &Ctx) -> Report {
    let mut problems = Vec::new();
    let names = unique(scan_each(&ctx.local, &mut problems));
    let mut per_name: Vec<(Vec<Problem>, Option<PluginSpec>)> = Vec::new();
    for name in &names {
        per_name.push(examine(&ctx.local, name));
    }
    let probes = join_all(per_name.iter().map(|(_, spec)| async move {
        match spec {
            Some(spec) => Some(activate(spec, ctx.timeout).await),
            None => None,
        }
    }))
    .await;
    for ((name, (found, spec)), probe) in names.iter().zip(per_name).zip(probes) {
        problems.extend(found);
        if let (Some(spec), Some(probe)) = (spec, probe)
            && let Err((state, text)) = probe.result
        {
            problems.push(probe_problem(ctx, name, &spec, state, text));
        }
    }
    Report {
        checked: names.len(),
        problems,
    }
}

/// The names Docker's scan lists. When a directory cannot be read, the
/// whole scan fails; each directory is then scanned alone, so that one
/// unreadable directory is reported and the others are still examined.
fn scan_each(local: &LocalRegistry, problems: &mut Vec<Problem>) -> Vec<String> {
    let error = match local.scan() {
        Ok(names) => return names,
        Err(e) => e,
    };
    tracing::debug!("scan failed ({error}); scanning each directory alone");
    let mut names = Vec::new();
    let no_specs: [PathBuf; 0] = [];
    let mut parts = vec![LocalRegistry::with_dirs(local.socket_dir(), no_specs)];
    // Spec directories are scanned alone with an empty socket directory.
    let empty = tempfile::tempdir();
    if let Ok(empty) = &empty {
        for dir in local.spec_dirs() {
            parts.push(LocalRegistry::with_dirs(empty.path(), [dir.clone()]));
        }
    }
    let mut reported = false;
    for part in parts {
        match part.scan() {
            Ok(found) => names.extend(found),
            Err(e) => {
                reported = true;
                problems.push(unreadable_directory(&e));
            }
        }
    }
    if !reported {
        problems.push(unreadable_directory(&error));
    }
    names
}

fn unreadable_directory(e: &DiscoveryError) -> Problem {
    Problem {
        kind: "unreadable_directory",
        severity: ERROR,
        name: None,
        path: e.path().map(|p| p.display().to_string()),
        message: e.to_string(),
    }
}

/// What discovery alone shows about `name`, and its spec when it resolves.
fn examine(local: &LocalRegistry, name: &str) -> (Vec<Problem>, Option<PluginSpec>) {
    let mut problems = Vec::new();
    let explanation = local.explain(name);
    let mut unused = Vec::new();
    if let Some(winner) = explanation.winner() {
        for shadowed in explanation
            .candidates
            .iter()
            .filter(|c| c.finding == Finding::Shadowed)
        {
            unused.push(
                Problem::new(
                    "shadowed",
                    WARNING,
                    name,
                    format!(
                        "never used: {} comes first and decides {}",
                        winner.path.display(),
                        show_name(name)
                    ),
                )
                .at(&shadowed.path),
            );
        }
    }
    let spec = match explanation.result {
        Err(e) if e.is_invalid_name() => {
            problems.push(Problem::new(
                "invalid_name",
                ERROR,
                name,
                format!("listed by scan, but never resolvable: {e}"),
            ));
            None
        }
        Err(e) if e.is_not_found() => {
            let oddities: Vec<String> = explanation
                .candidates
                .iter()
                .filter(|c| !matches!(c.finding, Finding::Missing))
                .map(|c| {
                    let (word, detail) = finding_token(&c.finding);
                    let what = detail.unwrap_or_else(|| word.replace('_', " "));
                    format!("{}: {what}", c.path.display())
                })
                .collect();
            let mut message = "listed by scan, but no candidate path resolves it".to_owned();
            if !oddities.is_empty() {
                message.push_str(&format!(" ({})", oddities.join("; ")));
            }
            problems.push(Problem::new("unresolvable", WARNING, name, message));
            None
        }
        Err(e) => {
            let kind = if e.kind() == DiscoveryErrorKind::Spec {
                "unparsable_spec"
            } else {
                "unreadable_spec"
            };
            let mut problem = Problem::new(kind, ERROR, name, without_path(&e));
            if let Some(path) = e.path() {
                problem = problem.at(path);
            }
            problems.push(problem);
            None
        }
        Ok(spec) => {
            problems.extend(tls_problems(&spec));
            Some(spec)
        }
    };
    problems.extend(unused);
    (problems, spec)
}

/// The error text without the leading `<path>: `, which has its own column.
fn without_path(e: &DiscoveryError) -> String {
    let text = e.to_string();
    match e.path().map(|p| format!("{}: ", p.display())) {
        Some(prefix) if text.starts_with(&prefix) => text[prefix.len()..].to_owned(),
        _ => text,
    }
}

fn tls_problems(spec: &PluginSpec) -> Option<Problem> {
    let address = spec.address();
    let path = spec.source().path();
    let tls = spec.tls();
    let problem =
        |message: String| Problem::new("insecure_tls", WARNING, spec.name(), message).at(path);
    match spec.source().kind() {
        SourceKind::Spec if address.is_tls() => Some(problem(format!(
            "{address}: a .spec file cannot carry TLS options, so the certificate is never \
             verified (InsecureSkipVerify); use a .json spec with TLSConfig"
        ))),
        SourceKind::Json if address.is_tls() && tls.is_some_and(|t| t.insecure_skip_verify) => {
            Some(problem(format!(
                "{address}: TLSConfig.InsecureSkipVerify is true, so the certificate is not verified"
            )))
        }
        SourceKind::Json
            if !address.is_tls()
                && !address.is_local()
                && tls.is_some_and(|t| {
                    t.ca_file.is_some() || t.cert_file.is_some() || t.key_file.is_some()
                }) =>
        {
            Some(
                Problem::new(
                    "tls_ignored",
                    WARNING,
                    spec.name(),
                    format!(
                        "{address}: TLSConfig names certificates, but Docker uses TLS only for \
                         https:// addresses; this traffic is plain HTTP"
                    ),
                )
                .at(path),
            )
        }
        _ => None,
    }
}

fn probe_problem(
    ctx: &Ctx,
    name: &str,
    spec: &PluginSpec,
    state: ListState,
    text: String,
) -> Problem {
    let path = spec.source().path();
    let socket = spec.source().kind() == SourceKind::Socket;
    let problem = match state {
        ListState::Refused if socket => Problem::new(
            "stale_socket",
            ERROR,
            name,
            "nothing listens on this socket (connection refused): the plugin exited \
             without removing it; restart the plugin or remove the file"
                .to_owned(),
        ),
        ListState::Refused => Problem::new(
            "refused",
            ERROR,
            name,
            format!("{}: connection refused ({text})", spec.address()),
        ),
        ListState::Missing => Problem::new(
            "missing_socket",
            ERROR,
            name,
            format!("the socket disappeared ({text})"),
        ),
        ListState::Timeout => Problem::new(
            "timeout",
            ERROR,
            name,
            format!(
                "no answer to Plugin.Activate within {} ({text})",
                go_duration(ctx.timeout)
            ),
        ),
        _ => Problem::new("activation_failed", ERROR, name, text),
    };
    problem.at(path)
}

pub(crate) fn render(ctx: &Ctx, out: &mut dyn Write, r: &Report) -> io::Result<()> {
    if ctx.json {
        return json_document(out, r, ctx.pretty);
    }
    let plugins = match r.checked {
        1 => "1 plugin name".to_owned(),
        n => format!("{n} plugin names"),
    };
    if r.problems.is_empty() {
        return writeln!(out, "no problems found ({plugins} checked)");
    }
    let rows: Vec<Vec<String>> = r
        .problems
        .iter()
        .map(|p| {
            vec![
                p.severity.to_owned(),
                p.kind.replace('_', " "),
                or_dash(p.name.as_deref().map(show_name)),
                or_dash(p.path.clone()),
                p.message.clone(),
            ]
        })
        .collect();
    table(
        out,
        &["SEVERITY", "PROBLEM", "NAME", "PATH", "DETAIL"],
        &rows,
    )?;
    let n = r.problems.len();
    writeln!(
        out,
        "{n} problem{} found ({plugins} checked)",
        if n == 1 { "" } else { "s" }
    )
}
