//! The `simple-ipam` command line: the plugin's name, where to listen (the
//! kit's [`ListenConfig`]) and which default pool to hand out, then serve
//! until SIGINT or SIGTERM, removing the socket or spec file on the way
//! out.

use clap::Parser;
use plugin_server::{ListenConfig, Server};

use crate::{Cidr, SimpleIpam};

/// Serve the IPv4 pool allocator.
#[derive(Debug, Clone, Parser)]
#[command(name = "simple-ipam", version, about)]
pub struct Args {
    /// The plugin name Docker knows it by (`--ipam-driver NAME`).
    #[arg(long, default_value = "simple-ipam")]
    pub name: String,

    /// The range that networks created without `--subnet` get their pools
    /// from: a /24 each (the whole range if it is smaller), never one that
    /// overlaps a pool in use or a route of the host.
    #[arg(long, default_value = "10.77.0.0/16", value_parser = parse_cidr)]
    pub pool: Cidr,

    /// Where to listen.
    #[command(flatten)]
    pub listen: ListenConfig,
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.parse()
        .map_err(|e: plugin_server::PluginError| e.to_string())
}

/// Runs simple-ipam until a signal arrives. Must be called inside a tokio
/// runtime.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let bound = args.listen.bind(&args.name)?;
    Server::new(SimpleIpam::new(args.pool).plugin()?)
        .serve_bound(bound)
        .await?;
    Ok(())
}
