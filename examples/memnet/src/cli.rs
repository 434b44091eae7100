//! The `memnet` command line: the plugin's name and where to listen (the
//! kit's [`ListenConfig`]), then serve until SIGINT or SIGTERM, removing
//! the socket or spec file on the way out.

use clap::Parser;
use plugin_server::{ListenConfig, Server};

use crate::MemNet;

/// Serve the in-memory network driver.
#[derive(Debug, Clone, Parser)]
#[command(name = "memnet", version, about)]
pub struct Args {
    /// The plugin name Docker knows it by (`docker network create -d NAME`).
    #[arg(long, default_value = "memnet")]
    pub name: String,

    /// Where to listen.
    #[command(flatten)]
    pub listen: ListenConfig,
}

/// Runs memnet until a signal arrives. Must be called inside a tokio
/// runtime.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let bound = args.listen.bind(&args.name)?;
    Server::new(MemNet::new().plugin()?)
        .serve_bound(bound)
        .await?;
    Ok(())
}
