//! `plugctl inspect NAME`.

use std::io::{self, Write};

use plugin_registry::discovery::{Candidate, FileKind, Finding};
use plugin_registry::proto::{Manifest, TlsOptions};
use serde::Serialize;

use crate::Exit;
use crate::output::{json_document, latency_ms, or_dash, show_latency, show_name, table};
use crate::probe::{Ctx, SourceOut, activate, tls_mode};

/// The JSON form of `inspect` (documented in the crate docs).
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) name: String,
    pub(crate) candidates: Vec<CandidateOut>,
    pub(crate) source: Option<SourceOut>,
    pub(crate) address: Option<String>,
    pub(crate) tls: Option<&'static str>,
    pub(crate) tls_options: Option<TlsOptions>,
    pub(crate) declared_implements: Option<Vec<String>>,
    pub(crate) state: Option<&'static str>,
    pub(crate) manifest: Option<Manifest>,
    pub(crate) latency_ms: Option<f64>,
    pub(crate) error: Option<String>,
    #[serde(skip)]
    latency: Option<std::time::Duration>,
}

/// One candidate path.
#[derive(Debug, Serialize)]
pub(crate) struct CandidateOut {
    pub(crate) path: String,
    pub(crate) source: String,
    pub(crate) file_kind: Option<&'static str>,
    pub(crate) finding: &'static str,
    pub(crate) detail: Option<String>,
}

impl CandidateOut {
    fn new(c: &Candidate) -> CandidateOut {
        let (finding, detail) = finding_token(&c.finding);
        CandidateOut {
            path: c.path.display().to_string(),
            source: c.source.to_string(),
            file_kind: c.file_kind.map(file_kind_token),
            finding,
            detail,
        }
    }
}

/// The JSON word of a finding, and its detail if it has one.
pub(crate) fn finding_token(f: &Finding) -> (&'static str, Option<String>) {
    match f {
        Finding::Missing => ("missing", None),
        Finding::DanglingSymlink => ("dangling_symlink", None),
        Finding::Unreachable(why) => ("unreachable", Some(why.clone())),
        Finding::NotASocket => ("not_a_socket", None),
        Finding::Winner => ("winner", None),
        Finding::Failed => ("failed", None),
        Finding::Shadowed => ("shadowed", None),
        _ => ("other", Some(f.to_string())),
    }
}

/// The JSON word of a file type.
pub(crate) fn file_kind_token(k: FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Socket => "socket",
        FileKind::Fifo => "fifo",
        FileKind::BlockDevice => "block_device",
        FileKind::CharDevice => "char_device",
        _ => "other",
    }
}

/// Runs `inspect`: exit 0 when the name resolves and the plugin activates.
pub(crate) async fn run(ctx: &Ctx, out: &mut dyn Write, name: &str) -> io::Result<Exit> {
    let report = collect(ctx, name).await;
    render(ctx, out, &report)?;
    Ok(if report.state == Some("ok") {
        Exit::Ok
    } else {
        Exit::Problem
    })
}

/// Explains the name, then activates the winner.
pub(crate) async fn collect(ctx: &Ctx, name: &str) -> Report {
    let explanation = ctx.local.explain(name);
    let mut report = Report {
        name: name.to_owned(),
        candidates: explanation
            .candidates
            .iter()
            .map(CandidateOut::new)
            .collect(),
        source: explanation
            .winner()
            .map(|c| SourceOut::new(c.source, &c.path)),
        address: None,
        tls: None,
        tls_options: None,
        declared_implements: None,
        state: None,
        manifest: None,
        latency_ms: None,
        error: None,
        latency: None,
    };
    match &explanation.result {
        Err(e) => report.error = Some(e.to_string()),
        Ok(spec) => {
            report.address = Some(spec.address().to_string());
            report.tls = Some(tls_mode(spec.address(), spec.tls()));
            report.tls_options = spec.tls().cloned();
            report.declared_implements = spec.implements().map(<[String]>::to_vec);
            let activation = activate(spec, ctx.timeout).await;
            report.latency = Some(activation.latency);
            report.latency_ms = Some(latency_ms(activation.latency));
            match activation.result {
                Ok(manifest) => {
                    report.state = Some("ok");
                    report.manifest = Some(manifest);
                }
                Err((state, text)) => {
                    report.state = Some(state.as_str());
                    report.error = Some(text);
                }
            }
        }
    }
    report
}

pub(crate) fn render(ctx: &Ctx, out: &mut dyn Write, r: &Report) -> io::Result<()> {
    if ctx.json {
        return json_document(out, r, ctx.pretty);
    }
    writeln!(out, "name:        {}", show_name(&r.name))?;
    if r.candidates.is_empty() {
        writeln!(
            out,
            "candidates:  none (the name is rejected before any path is built)"
        )?;
    } else {
        writeln!(
            out,
            "candidates:  in Docker's order; the first that exists decides"
        )?;
        let rows: Vec<Vec<String>> = r
            .candidates
            .iter()
            .map(|c| {
                let finding = match &c.detail {
                    Some(d) => format!("{}: {d}", c.finding),
                    None => c.finding.to_owned(),
                };
                vec![
                    c.source.clone(),
                    c.path.clone(),
                    or_dash(c.file_kind),
                    finding.replace('_', " "),
                ]
            })
            .collect();
        let mut buf = Vec::new();
        table(&mut buf, &["SOURCE", "PATH", "TYPE", "FINDING"], &rows)?;
        for line in String::from_utf8_lossy(&buf).lines() {
            writeln!(out, "  {line}")?;
        }
    }
    writeln!(
        out,
        "winner:      {}",
        or_dash(r.source.as_ref().map(|s| format!("{} {}", s.kind, s.path)))
    )?;
    writeln!(out, "address:     {}", or_dash(r.address.clone()))?;
    writeln!(out, "tls:         {}", or_dash(r.tls))?;
    writeln!(
        out,
        "tls options: {}",
        or_dash(r.tls_options.as_ref().map(compact))
    )?;
    writeln!(
        out,
        "declared:    {}",
        or_dash(r.declared_implements.as_ref().map(|k| k.join(",")))
    )?;
    if let Some(state) = r.state {
        let latency = r.latency.map(show_latency).unwrap_or_default();
        writeln!(out, "activation:  {state} ({latency})")?;
    }
    if let Some(m) = &r.manifest {
        writeln!(out, "manifest:    {}", compact(m))?;
    }
    if let Some(e) = &r.error {
        writeln!(out, "error:       {e}")?;
    }
    Ok(())
}

/// One-line JSON, for display.
fn compact<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
