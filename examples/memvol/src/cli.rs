//! The `memvol` command line: where to listen, then serve until SIGINT or
//! SIGTERM, removing the socket or spec file on the way out.

use std::path::PathBuf;

use clap::Parser;
use plugin_server::{Listener, Server, SpecFile};

use crate::MemVol;

/// Serve the in-memory volume driver.
#[derive(Debug, Clone, Parser)]
#[command(name = "memvol", version, about)]
pub struct Args {
    /// The plugin name Docker knows it by (`docker volume create -d NAME`).
    #[arg(long, default_value = "memvol")]
    pub name: String,

    /// The unix socket to listen on [default: /run/docker/plugins/NAME.sock].
    #[arg(long, conflicts_with_all = ["tcp", "systemd"])]
    pub socket: Option<PathBuf>,

    /// Listen on tcp instead (`127.0.0.1:0` picks a port); use with
    /// --spec-dir so Docker can find the plugin.
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

    /// Directory under which volume mountpoints are reported (and created
    /// on mount when possible).
    #[arg(long, default_value = "/var/lib/memvol")]
    pub root: PathBuf,
}

/// Runs memvol until a signal arrives. Must be called inside a tokio
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
    let mut server = Server::new(MemVol::new(&args.root).plugin()?);
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
