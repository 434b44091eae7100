//! The `memvol` command line: the plugin's name, where to listen (the
//! kit's [`ListenConfig`]) and where mountpoints live, then serve until
//! SIGINT or SIGTERM, removing the socket or spec file on the way out.

use std::path::PathBuf;

use clap::Parser;
use plugin_server::{ListenConfig, Server};

use crate::MemVol;

/// Serve the in-memory volume driver.
#[derive(Debug, Clone, Parser)]
#[command(name = "memvol", version, about)]
pub struct Args {
    /// The plugin name Docker knows it by (`docker volume create -d NAME`).
    #[arg(long, default_value = "memvol")]
    pub name: String,

    /// Where to listen.
    #[command(flatten)]
    pub listen: ListenConfig,

    /// Directory under which volume mountpoints are reported (and created
    /// on mount when possible).
    #[arg(long, default_value = "/var/lib/memvol")]
    pub root: PathBuf,
}

/// Runs memvol until a signal arrives. Must be called inside a tokio
/// runtime.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let bound = args.listen.bind(&args.name)?;
    Server::new(MemVol::new(&args.root).plugin()?)
        .serve_bound(bound)
        .await?;
    Ok(())
}
