//! What the commands share: the directories and deadline in force, TLS
//! modes, and the two ways of contacting plugins (a registry listing for
//! many, one handshake for one).

use std::path::Path;
use std::time::{Duration, Instant};

use plugin_registry::client::Client;
use plugin_registry::discovery::{LocalRegistry, PluginSpec, SourceKind};
use plugin_registry::proto::{ACTIVATE_METHOD, Address, Manifest, RetryPolicy, TlsOptions};
use plugin_registry::{ListState, Listing, Policy, Registry};
use serde::Serialize;

/// The global options, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) local: LocalRegistry,
    pub(crate) json: bool,
    /// JSON is indented (stdout is a terminal).
    pub(crate) pretty: bool,
    pub(crate) timeout: Duration,
    /// A progress line may go to stderr (a terminal, and not `--json`).
    pub(crate) progress: bool,
}

impl Ctx {
    /// The directories: each flag replaces its default only
    /// (`LocalRegistry::new()` gives the host's, rootless-aware). Relative
    /// directories are made absolute, so addresses are too.
    pub(crate) fn local_registry(
        socket_dir: Option<&Path>,
        spec_dirs: &[impl AsRef<Path>],
    ) -> LocalRegistry {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let host = LocalRegistry::new();
        let socket_dir = absolute(socket_dir.unwrap_or(host.socket_dir()));
        if spec_dirs.is_empty() {
            LocalRegistry::with_dirs(socket_dir, host.spec_dirs().to_vec())
        } else {
            LocalRegistry::with_dirs(socket_dir, spec_dirs.iter().map(|d| absolute(d.as_ref())))
        }
    }
}

/// Where a plugin was found, for JSON.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SourceOut {
    /// `socket`, `spec` or `json`.
    pub(crate) kind: String,
    pub(crate) path: String,
}

impl SourceOut {
    pub(crate) fn new(kind: SourceKind, path: &Path) -> SourceOut {
        SourceOut {
            kind: kind.to_string(),
            path: path.display().to_string(),
        }
    }
}

/// How traffic to a plugin is protected: `none` (unix sockets, named pipes,
/// `tcp://`, `http://`: Docker never uses TLS there, whatever the options
/// say), `insecure` (`https://` without verification: every `.spec` file
/// and `.json` files with `InsecureSkipVerify`), `verified`.
pub(crate) fn tls_mode(address: &Address, tls: Option<&TlsOptions>) -> &'static str {
    if !address.is_tls() {
        "none"
    } else if tls.is_some_and(|t| t.insecure_skip_verify) {
        "insecure"
    } else {
        "verified"
    }
}

/// The listing policy of probes: the deadline bounds each handshake and
/// each plugin's whole load, refused sockets are not retried, nothing is
/// waited for or remembered, and every plugin is contacted (a `.json`
/// spec's declared `Implements` is not trusted: an operator wants to know).
pub(crate) fn probe_policy(timeout: Duration) -> Policy {
    let mut policy = Policy::default().with_retry(RetryPolicy::with_budget(timeout));
    policy.handshake_timeout = Some(timeout);
    policy.list_timeout = Some(timeout);
    policy.list_retries_refused = false;
    policy.trust_declared_implements = false;
    policy.negative_ttl = Duration::ZERO;
    policy
}

/// Activates every discovered name in parallel (each once, in scan order).
pub(crate) async fn probe_all(
    local: &LocalRegistry,
    timeout: Duration,
) -> Result<Vec<Listing>, plugin_registry::Error> {
    let registry = Registry::new(local.clone(), probe_policy(timeout));
    // The kind only matters for skipping declared kinds, which is off.
    registry.list("").await
}

/// The state word of a client error, as listings name them.
pub(crate) fn client_state(error: &plugin_registry::client::Error) -> ListState {
    if error.is_connection_refused() {
        ListState::Refused
    } else if error.is_socket_missing() {
        ListState::Missing
    } else if error.is_timeout() {
        ListState::Timeout
    } else {
        ListState::Error
    }
}

/// The outcome of one activation handshake.
#[derive(Debug)]
pub(crate) struct Activation {
    pub(crate) latency: Duration,
    pub(crate) result: Result<Manifest, (ListState, String)>,
}

/// `POST /Plugin.Activate` to one resolved plugin, as the registry would
/// send it, under `timeout` and without retrying a refused socket.
pub(crate) async fn activate(spec: &PluginSpec, timeout: Duration) -> Activation {
    let start = Instant::now();
    let result = async {
        let client = Client::builder()
            .retry(RetryPolicy::with_budget(timeout))
            .build(spec.address(), spec.tls())
            .map_err(|e| (client_state(&e), e.to_string()))?;
        let call = client
            .call(ACTIVATE_METHOD)
            .timeout(timeout)
            .retry_connection_refused(false);
        let reply = match tokio::time::timeout(timeout, call).await {
            Ok(reply) => reply.map_err(|e| (client_state(&e), e.to_string()))?,
            Err(_) => {
                return Err((
                    ListState::Timeout,
                    format!(
                        "{ACTIVATE_METHOD}: no answer within {}",
                        plugin_registry::proto::retry::go_duration(timeout)
                    ),
                ));
            }
        };
        Manifest::decode(&reply).map_err(|e| (ListState::Error, e.to_string()))
    }
    .await;
    Activation {
        latency: start.elapsed(),
        result,
    }
}
