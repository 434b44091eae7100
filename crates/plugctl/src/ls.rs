//! `plugctl ls [--probe] [--kind KIND]`.

use std::collections::HashSet;
use std::io::{self, Write};
use std::time::Duration;

use plugin_registry::discovery::LocalRegistry;
use serde::Serialize;

use crate::Exit;
use crate::output::{json_document, latency_ms, or_dash, show_latency, show_name, table};
use crate::probe::{Ctx, SourceOut, probe_all, tls_mode};

/// One row of `ls`; its JSON form is the documented schema.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) source: Option<SourceOut>,
    pub(crate) address: Option<String>,
    pub(crate) tls: Option<&'static str>,
    pub(crate) declared_implements: Option<Vec<String>>,
    pub(crate) state: Option<&'static str>,
    pub(crate) implements: Option<Vec<String>>,
    pub(crate) latency_ms: Option<f64>,
    pub(crate) error: Option<String>,
    #[serde(skip)]
    latency: Option<Duration>,
}

/// Runs `ls`: rows on stdout; exit 1 only when the directories could not
/// be listed.
pub(crate) async fn run(
    ctx: &Ctx,
    out: &mut dyn Write,
    err: &mut dyn Write,
    probe: bool,
    kind: Option<&str>,
) -> io::Result<Exit> {
    let progress = if probe && ctx.progress {
        progress_line(ctx)
    } else {
        None
    };
    if let Some(line) = &progress {
        write!(err, "{line}")?;
        err.flush()?;
    }
    let collected = collect(ctx, probe, kind).await;
    if progress.is_some() {
        // Erase the progress line before anything else is printed.
        write!(err, "\r\x1b[2K")?;
        err.flush()?;
    }
    match collected {
        Ok(rows) => {
            render(ctx, out, &rows, probe)?;
            Ok(Exit::Ok)
        }
        Err(e) => {
            writeln!(err, "{e}")?;
            Ok(Exit::Problem)
        }
    }
}

/// Probing fewer plugins than this is quick enough to need no progress line.
const PROGRESS_MIN: usize = 8;

/// The line shown on a terminal's stderr while many plugins are probed.
fn progress_line(ctx: &Ctx) -> Option<String> {
    let n = unique(ctx.local.scan().ok()?).len();
    (n >= PROGRESS_MIN).then(|| {
        format!(
            "probing {n} plugins in parallel (each bounded by {})…",
            plugin_registry::proto::retry::go_duration(ctx.timeout)
        )
    })
}

/// The rows, in scan order, each name once; `Err` is a scan failure.
pub(crate) async fn collect(
    ctx: &Ctx,
    probe: bool,
    kind: Option<&str>,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    if probe {
        let listings = probe_all(&ctx.local, ctx.timeout)
            .await
            .map_err(|e| e.to_string())?;
        for listing in listings {
            let mut row = resolve(&ctx.local, &listing.name);
            row.state = Some(listing.state.as_str());
            row.latency = Some(listing.latency);
            row.latency_ms = Some(latency_ms(listing.latency));
            row.implements = listing
                .plugin
                .as_ref()
                .and_then(|p| p.manifest())
                .map(|m| m.implements.clone());
            if let Some(e) = &listing.error {
                row.error = Some(e.to_string());
            }
            rows.push(row);
        }
    } else {
        for name in unique(ctx.local.scan().map_err(|e| e.to_string())?) {
            rows.push(resolve(&ctx.local, &name));
        }
    }
    if let Some(kind) = kind {
        rows.retain(|row| keep(row, kind, probe));
    }
    Ok(rows)
}

/// The `--kind` filter. Probed: the manifest must list the kind; rows that
/// did not activate are kept, since their kinds are unknown. Not probed:
/// a `.json` spec's declared `Implements` must list it; plugins that
/// declare nothing (sockets, `.spec` files, most `.json` files) and names
/// that do not resolve are kept.
fn keep(row: &Row, kind: &str, probe: bool) -> bool {
    let lists = |kinds: &Option<Vec<String>>| kinds.as_ref().map(|k| k.iter().any(|k| k == kind));
    if probe && row.state == Some("ok") {
        lists(&row.implements).unwrap_or(false)
    } else if probe {
        true
    } else {
        lists(&row.declared_implements).unwrap_or(true)
    }
}

/// Scan order, each name once (as the registry lists).
pub(crate) fn unique(names: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

/// What discovery says about `name`. A name that does not resolve gets
/// the error, and the file that failed when there is one.
fn resolve(local: &LocalRegistry, name: &str) -> Row {
    let mut row = Row {
        name: name.to_owned(),
        source: None,
        address: None,
        tls: None,
        declared_implements: None,
        state: None,
        implements: None,
        latency_ms: None,
        error: None,
        latency: None,
    };
    match local.plugin(name) {
        Ok(spec) => {
            row.source = Some(SourceOut::new(spec.source().kind(), spec.source().path()));
            row.address = Some(spec.address().to_string());
            row.tls = Some(tls_mode(spec.address(), spec.tls()));
            row.declared_implements = spec.implements().map(<[String]>::to_vec);
        }
        Err(e) => {
            let explanation = local.explain(name);
            row.source = explanation
                .winner()
                .map(|c| SourceOut::new(c.source, &c.path));
            row.error = Some(e.to_string());
        }
    }
    row
}

pub(crate) fn render(ctx: &Ctx, out: &mut dyn Write, rows: &[Row], probe: bool) -> io::Result<()> {
    if ctx.json {
        return json_document(out, &rows, ctx.pretty);
    }
    if rows.is_empty() {
        let dirs: Vec<String> = std::iter::once(ctx.local.socket_dir())
            .chain(ctx.local.spec_dirs().iter().map(|d| d.as_path()))
            .map(|d| d.display().to_string())
            .collect();
        return writeln!(out, "no plugins found in {}", dirs.join(", "));
    }
    let mut headers = vec!["NAME", "SOURCE", "PATH", "ADDRESS", "TLS"];
    if probe {
        headers.extend(["STATE", "IMPLEMENTS", "LATENCY"]);
    }
    let errors = rows.iter().any(|r| r.error.is_some());
    if errors {
        headers.push("ERROR");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                show_name(&r.name),
                or_dash(r.source.as_ref().map(|s| s.kind.clone())),
                or_dash(r.source.as_ref().map(|s| s.path.clone())),
                or_dash(r.address.clone()),
                or_dash(r.tls),
            ];
            if probe {
                cells.push(or_dash(r.state));
                cells.push(or_dash(r.implements.as_ref().map(|k| {
                    if k.is_empty() {
                        "(none)".to_owned()
                    } else {
                        k.join(",")
                    }
                })));
                cells.push(or_dash(r.latency.map(show_latency)));
            }
            if errors {
                cells.push(r.error.clone().unwrap_or_default());
            }
            cells
        })
        .collect();
    table(out, &headers, &cells)
}
