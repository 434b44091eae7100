//! `bench-server --tree DIR`: the one server every benchmark client talks
//! to, so that Docker's client, ours and the raw ceiling are measured
//! against the same peer.
//!
//! It builds the benchmark tree ([`plugin_bench::Tree`]): the echo socket,
//! a loopback tcp listener and its `.spec` file, 1,000 live sockets and
//! 10,000 spec files, 10 live sockets plus one stale one. It then serves
//! hyper http1 on a single-threaded tokio runtime: `Plugin.Activate`
//! (counted), `Test.Echo` (the reply is the request body) and
//! `Bench.Stats` (`{"Activates":n}`). It prints `ready` once everything
//! listens, and exits when its standard input closes, so it never outlives
//! the xtask.
//!
//! `bench-server plugin-serve --socket PATH [--runtime multi|current]` is
//! P10's floor (diagnostics, not in the xtask's table): the same
//! `VolumeDriver.Get` answer as `bench-rust plugin-serve`, from bare hyper
//! and serde_json with none of `plugin-server`'s limits, timers or Go
//! rules, driven by `bench-raw serve --server bench-server`.

#![forbid(unsafe_code)]
// The `ready` line on stdout is how the xtask knows the tree is built.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use plugin_bench::{
    ACTIVATE_REPLY, BoxError, ECHO_METHOD, LIST_LIVE, MANY_SOCKETS, SPEC_FILES, STATS_METHOD, Tree,
    list_name, many_name, spec_name,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

static ACTIVATES: AtomicU64 = AtomicU64::new(0);

fn main() -> Result<(), BoxError> {
    let args = plugin_bench::Args::from_env()?;
    if args.scenario() == "plugin-serve" {
        return plugin_serve(&args);
    }
    if args.scenario() != "serve" {
        return Err("usage: bench-server serve --tree DIR".into());
    }
    let tree = args.tree()?;
    plugin_bench::raise_nofile();
    // Exit when the xtask goes away (its end of our stdin closes).
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(tree))
}

async fn serve(tree: Tree) -> Result<(), BoxError> {
    for part in ["main", "many", "list"] {
        std::fs::create_dir_all(tree.sockets(part))?;
        std::fs::create_dir_all(tree.specs(part))?;
    }
    spawn_unix(bind(&tree.main_socket())?);

    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let port = tcp.local_addr()?.port();
    std::fs::write(
        tree.specs("main").join("bench-tcp.spec"),
        format!("tcp://127.0.0.1:{port}\n"),
    )?;
    tokio::spawn(async move {
        loop {
            match tcp.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream));
                }
                Err(e) => accept_failed(e).await,
            }
        }
    });

    for i in 0..MANY_SOCKETS {
        let path = tree.sockets("many").join(format!("{}.sock", many_name(i)));
        spawn_unix(bind(&path)?);
    }
    let spec = format!("unix://{}\n", tree.main_socket().display());
    for i in 0..SPEC_FILES {
        let path = tree.specs("many").join(format!("{}.spec", spec_name(i)));
        std::fs::write(path, &spec)?;
    }

    for i in 0..LIST_LIVE {
        let path = tree.sockets("list").join(format!("{}.sock", list_name(i)));
        spawn_unix(bind(&path)?);
    }
    // A stale socket: bound, then closed without being removed, so
    // connecting to it is refused (what a crashed plugin leaves behind).
    let stale = tree.sockets("list").join("stale.sock");
    let _ = std::fs::remove_file(&stale);
    drop(std::os::unix::net::UnixListener::bind(&stale)?);

    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    std::future::pending::<()>().await;
    Ok(())
}

fn bind(path: &std::path::Path) -> Result<UnixListener, BoxError> {
    let _ = std::fs::remove_file(path);
    Ok(UnixListener::bind(path)?)
}

fn spawn_unix(listener: UnixListener) {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream));
                }
                Err(e) => accept_failed(e).await,
            }
        }
    });
}

/// Out of file descriptors, say: wait a little rather than spin.
async fn accept_failed(e: std::io::Error) {
    eprintln!("bench-server: accept: {e}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

async fn serve_connection<S>(stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service_fn(handle))
        .await;
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().trim_start_matches('/');
    let (status, body) = if path == "Plugin.Activate" {
        ACTIVATES.fetch_add(1, Ordering::Relaxed);
        (StatusCode::OK, Bytes::from_static(ACTIVATE_REPLY))
    } else if path == ECHO_METHOD {
        match req.into_body().collect().await {
            Ok(body) => (StatusCode::OK, body.to_bytes()),
            Err(e) => (
                StatusCode::BAD_REQUEST,
                Bytes::from(format!("{{\"Err\":\"reading body: {e}\"}}")),
            ),
        }
    } else if path == STATS_METHOD {
        let n = ACTIVATES.load(Ordering::Relaxed);
        (
            StatusCode::OK,
            Bytes::from(format!("{{\"Activates\":{n}}}")),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"Err":"unknown method"}"#),
        )
    };
    let mut reply = Response::new(Full::new(body));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/vnd.docker.plugins.v1.1+json"),
    );
    Ok(reply)
}

/// P10's floor: bare hyper answering `VolumeDriver.Get` on `--socket`
/// until stdin closes. See the module docs.
fn plugin_serve(args: &plugin_bench::Args) -> Result<(), BoxError> {
    let socket = args.str("socket")?.to_owned();
    let rt = plugin_bench::runtime(args)?;
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    rt.block_on(async move {
        let listener = bind(std::path::Path::new(&socket))?;
        println!("ready");
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .header_read_timeout(None)
                            .serve_connection(TokioIo::new(stream), service_fn(get))
                            .await;
                    });
                }
                Err(e) => accept_failed(e).await,
            }
        }
    })
}

async fn get(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    #[derive(serde::Deserialize)]
    struct Get {
        #[serde(rename = "Name")]
        name: String,
    }
    #[derive(serde::Serialize)]
    struct Volume {
        #[serde(rename = "Name")]
        name: String,
        #[serde(rename = "Mountpoint")]
        mountpoint: String,
    }
    #[derive(serde::Serialize)]
    struct Reply {
        #[serde(rename = "Volume")]
        volume: Volume,
    }
    let activate = req.uri().path() == "/Plugin.Activate";
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let reply = if activate {
        Bytes::from_static(ACTIVATE_REPLY)
    } else {
        match body
            .ok()
            .and_then(|b| serde_json::from_slice::<Get>(&b).ok())
        {
            Some(get) => {
                let reply = Reply {
                    volume: Volume {
                        mountpoint: format!("{}{}", plugin_bench::SERVE_MOUNT_PREFIX, get.name),
                        name: get.name,
                    },
                };
                let mut out = serde_json::to_vec(&reply).unwrap_or_default();
                out.push(b'\n');
                Bytes::from(out)
            }
            None => Bytes::from_static(br#"{"Err":"bad request"}"#),
        }
    };
    let mut resp = Response::new(Full::new(reply));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/vnd.docker.plugins.v1.1+json"),
    );
    Ok(resp)
}
