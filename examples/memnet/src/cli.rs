//! The `memnet` command line: where to listen, then serve until SIGINT or
//! SIGTERM, removing the socket on the way out.

use std::path::PathBuf;

use clap::Parser;
use plugin_server::{Listener, Server};

use crate::MemNet;

/// Serve the in-memory network driver.
#[derive(Debug, Clone, Parser)]
#[command(name = "memnet", version, about)]
pub struct Args {
    /// The plugin name Docker knows it by (`docker network create -d NAME`).
    #[arg(long, default_value = "memnet")]
    pub name: String,

    /// The unix socket to listen on [default: /run/docker/plugins/NAME.sock].
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

/// Runs memnet until a signal arrives. Must be called inside a tokio
/// runtime.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = match &args.socket {
        Some(path) => Listener::unix(path)?,
        None => Listener::plugin_socket(&args.name)?,
    };
    Server::new(MemNet::new().plugin()?).serve(listener).await?;
    Ok(())
}
