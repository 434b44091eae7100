//! Group 3: a dead plugin socket in `/run/docker/plugins` (moby#22251,
//! #22653). dockerd's `docker volume ls` activates every plugin and retries
//! the refused socket for about 15 s; our registry's `get_all` over the
//! same directory fails fast. The directory is the test's own: dockerd
//! sees it as `/run/docker/plugins` in its namespace, our registry reads
//! it directly, so neither sees another process's plugins. Timings are printed and recorded in
//! `BENCHMARKS.md`, never asserted beyond upper bounds that prove nothing
//! hung.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugin_discovery::LocalRegistry;
use plugin_registry::{ListState, Policy, Registry};
use plugin_tests::server::stale_socket;

use super::harness::{Dockerd, Isolation, require, unique_name};
use super::served::socket_dir;

const HEADING: &str = "## Stale socket: docker volume ls vs get_all";

/// The command that reproduces the figures (and, with the variable set,
/// rewrites the `BENCHMARKS.md` section).
const COMMAND: &str = "INTEROP_WRITE_BENCHMARKS=1 cargo test -p plugin-tests --test it \
                       interop::stale -- --nocapture";

fn secs(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

/// Replaces (or appends) this test's section of `BENCHMARKS.md`, leaving
/// every other section as it is.
fn write_benchmarks(section: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nMeasurements, with the commands that reproduce them.\n".into()
    });
    let new = match old.find(HEADING) {
        Some(start) => {
            let rest = &old[start + HEADING.len()..];
            let end = rest
                .find("\n## ")
                .map_or(old.len(), |i| start + HEADING.len() + i + 1);
            format!("{}{section}{}", &old[..start], &old[end..])
        }
        None => format!(
            "{}\n{section}",
            old.trim_end_matches('\n').to_owned() + "\n"
        ),
    };
    std::fs::write(&path, new).unwrap();
    eprintln!("wrote {}", path.display());
}

fn today() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if out.is_empty() {
        "(date unknown)".into()
    } else {
        out
    }
}

#[tokio::test]
async fn stale_socket_docker_volume_ls_vs_get_all() {
    let Some(bins) = require(
        "stale_socket_docker_volume_ls_vs_get_all",
        &["dockerd", "docker", "unshare"],
    ) else {
        return;
    };
    let (sockets, specs) = (socket_dir(), socket_dir());
    let name = unique_name("s");
    let socket = sockets.path().join(format!("{name}.sock"));
    let dockerd = Dockerd::start_isolated(
        &bins[0],
        &Isolation {
            spec_dir: Some(specs.path()),
            ..Isolation::sockets(sockets.path())
        },
    );
    let version = dockerd.version().await;

    // Baseline: nothing stale.
    let t = Instant::now();
    dockerd.docker_ok(&["volume", "ls"]).await;
    let docker_clean = t.elapsed();

    stale_socket(&socket);

    let t = Instant::now();
    let out = dockerd.docker(&["volume", "ls"]).await;
    let docker_stale = t.elapsed();
    assert!(
        out.status.success(),
        "docker volume ls failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        docker_stale < Duration::from_secs(60),
        "docker volume ls hung"
    );

    // Our registry, as an engine would build it, over the directories
    // dockerd reads.
    let local = || LocalRegistry::with_dirs(sockets.path(), [specs.path()]);
    let mut ours = Vec::new();
    for _ in 0..5 {
        let registry = Registry::new(local(), Policy::default());
        let t = Instant::now();
        let all = registry.get_all("VolumeDriver").await.unwrap();
        ours.push(t.elapsed());
        assert!(
            all.iter().all(|p| p.name() != name),
            "the dead plugin was listed"
        );
        let listing = registry.list("VolumeDriver").await.unwrap();
        let mine = listing.iter().find(|l| l.name == name).expect("scanned");
        assert_eq!(mine.state, ListState::Refused, "{:?}", mine.error);
    }
    ours.sort();
    let ours_median = ours[ours.len() / 2];
    let ours_max = *ours.last().unwrap();
    assert!(
        ours_max < Duration::from_secs(2),
        "get_all took {ours_max:?}"
    );

    eprintln!(
        "stale socket: docker volume ls {} (without it {}); get_all median {} (max {}) over {} runs",
        secs(docker_stale),
        secs(docker_clean),
        secs(ours_median),
        secs(ours_max),
        ours.len()
    );

    if std::env::var_os("INTEROP_WRITE_BENCHMARKS").is_some() {
        let section = format!(
            "{HEADING}\n\n\
             A dead plugin socket (bound, then closed: connections are refused) in\n\
             `/run/docker/plugins` (a private directory, mounted there in dockerd's own\n\
             mount namespace); one private dockerd ({version}), one\n\
             `docker volume ls` run, measured {date}. The docker rows include the CLI's\n\
             own start-up, which the baseline row shows. Our side is\n\
             `Registry::get_all(\"VolumeDriver\")` with `Policy::default()` over the same\n\
             directories, in process, with a fresh registry per run so nothing is\n\
             cached. Timings are not asserted; the test only checks that `get_all` stays\n\
             under 2 s and leaves the dead plugin out.\n\n\
             | what | time |\n\
             |---|---|\n\
             | `docker volume ls`, stale socket present | {docker_stale} |\n\
             | `docker volume ls`, no stale socket (baseline) | {docker_clean} |\n\
             | `get_all(\"VolumeDriver\")`, stale socket present (median of {n}) | {ours_median} |\n\
             | `get_all(\"VolumeDriver\")`, slowest of {n} | {ours_max} |\n\n\
             dockerd retries the refused socket's handshake (attempts at about 0, 1, 3,\n\
             7 and 15 s) before giving up on it; `get_all` never retries a refused or\n\
             missing unix socket (see the divergence table).\n\n\
             Reproduce (root; `dockerd`, `docker` and `unshare` installed):\n\n\
             ```sh\n{COMMAND}\n```\n",
            date = today(),
            docker_stale = secs(docker_stale),
            docker_clean = secs(docker_clean),
            ours_median = secs(ours_median),
            ours_max = secs(ours_max),
            n = ours.len(),
        );
        write_benchmarks(&section);
    }
}
