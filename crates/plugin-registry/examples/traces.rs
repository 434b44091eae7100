//! Traces of plugin calls with no code of the engine's own: every lookup's
//! activation is a `plugin_activate` span and every call a `plugin_call`
//! span (fields `plugin`, `method`, `address`, `attempt`), so any
//! `tracing` subscriber sees them.
//!
//! This example prints them with `tracing-subscriber`'s fmt layer as each
//! span closes. An engine exporting to OpenTelemetry registers
//! `tracing_opentelemetry::layer()` on its subscriber instead of (or
//! beside) the fmt layer and gets the same spans as OpenTelemetry spans,
//! with nothing else to change; metrics go through the `metrics` facade
//! (`docs/observability.md`).
//!
//! Run it with `cargo run -p plugin-registry --example traces`: it serves
//! the example volume plugin `memvol` on a socket in a temporary
//! directory, then looks it up and calls it through the registry.

#![forbid(unsafe_code)]

use std::error::Error;

use memvol::MemVol;
use plugin_registry::discovery::LocalRegistry;
use plugin_registry::proto::kinds;
use plugin_registry::{Policy, Registry, VolumeDriver};
use plugin_server::{Listener, Server};
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    // The one line an engine needs for traces: a subscriber. Swap or add
    // `tracing_opentelemetry::layer()` here to export them.
    tracing_subscriber::fmt()
        .with_span_events(FmtSpan::CLOSE)
        .with_env_filter("plugin_client=info,plugin_registry=info,traces=info")
        .with_writer(std::io::stderr)
        .init();

    let dir = tempfile::tempdir()?;
    let (sockets, specs) = (dir.path().join("run"), dir.path().join("etc"));
    let listener = Listener::unix(sockets.join("memvol.sock"))?;
    let plugin = MemVol::new(dir.path().join("volumes")).plugin()?;
    let serving = tokio::spawn(Server::new(plugin).handle_signals(false).serve(listener));

    let registry = Registry::new(
        LocalRegistry::with_dirs(sockets, vec![specs]),
        Policy::default(),
    );
    let memvol = registry.get("memvol", kinds::VOLUME_DRIVER).await?;
    let volumes = VolumeDriver::new(&memvol)?;
    volumes.create("traced", None).await?;
    let listed = volumes.list().await?;
    tracing::info!(volumes = listed.len(), "listed");
    volumes.remove("traced").await?;

    serving.abort();
    Ok(())
}
