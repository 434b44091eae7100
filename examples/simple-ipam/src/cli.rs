//! The `simple-ipam` command line: where to listen and which default pool
//! to hand out, then serve until SIGINT or SIGTERM, removing the socket or
//! spec file on the way out.

use std::path::PathBuf;

use clap::Parser;
use plugin_server::{Listener, Server, SpecFile};

use crate::{Cidr, SimpleIpam};

/// Serve the IPv4 pool allocator.
#[derive(Debug, Clone, Parser)]
#[command(name = "simple-ipam", version, about)]
pub struct Args {
    /// The plugin name Docker knows it by (`--ipam-driver NAME`).
    #[arg(long, default_value = "simple-ipam")]
    pub name: String,

    /// The pool for networks created without `--subnet`.
    #[arg(long, default_value = "10.77.0.0/16", value_parser = parse_cidr)]
    pub pool: Cidr,

    /// The unix socket to listen on [default: /run/docker/plugins/NAME.sock].
    #[arg(long, conflicts_with_all = ["tcp", "systemd"])]
    pub socket: Option<PathBuf>,

    /// Listen on tcp instead; use with --spec-dir so Docker can find it.
    #[arg(long, value_name = "ADDR", conflicts_with = "systemd")]
    pub tcp: Option<String>,

    /// Use the sockets passed by systemd socket activation.
    #[arg(long)]
    pub systemd: bool,

    /// Write NAME.spec (or NAME.json with --json-spec) here while serving.
    #[arg(long, value_name = "DIR")]
    pub spec_dir: Option<PathBuf>,

    /// Write a .json spec instead of a .spec file.
    #[arg(long, requires = "spec_dir")]
    pub json_spec: bool,
}

fn parse_cidr(s: &str) -> Result<Cidr, String> {
    s.parse()
        .map_err(|e: plugin_server::PluginError| e.to_string())
}

/// Runs simple-ipam until a signal arrives. Must be called inside a tokio
/// runtime.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listeners = if args.systemd {
        Listener::systemd()?
    } else if let Some(addr) = &args.tcp {
        vec![Listener::tcp(addr.as_str())?]
    } else {
        vec![match &args.socket {
            Some(path) => Listener::unix(path)?,
            None => Listener::plugin_socket(&args.name)?,
        }]
    };
    let mut server = Server::new(SimpleIpam::new(args.pool).plugin()?);
    if let Some(dir) = &args.spec_dir {
        server = server.spec_file(if args.json_spec {
            SpecFile::json(dir, &args.name)
        } else {
            SpecFile::spec(dir, &args.name)
        });
    }
    server.serve_all(listeners).await?;
    Ok(())
}
