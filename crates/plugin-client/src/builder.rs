//! Creating a client (Docker's `NewClient`, `NewClientWithTimeout`,
//! `NewClientWithTransport`): the [`ClientBuilder`], its defaults, and what
//! is checked before anything is dialled.
//!
//! **What it must never do:** dial. A client is created without IO except
//! reading TLS files, so a bad address or file fails here, at once and for
//! good, never as a retried call.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use plugin_proto::{Address, AddressError, Endpoint, RetryPolicy, TlsOptions};

use crate::client::{Client, Shared};
use crate::connect::{Dialer, Target, Transport};
use crate::error::Error;
use crate::pool::Pool;
use crate::telemetry::CallMetrics;
use crate::tls::LoadedOptions;

/// The default cap on a reply body that a call buffers: 64 MiB.
pub const DEFAULT_MAX_REPLY_SIZE: u64 = 64 * 1024 * 1024;

/// Docker's dial timeout (go-connections since v0.5).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle pooled connection is kept (go-connections v0.8:
/// `IdleConnTimeout = 30s`).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many idle connections are kept: Go's `DefaultMaxIdleConnsPerHost`,
/// which Docker's transport leaves in force (go-connections v0.8 sets only
/// `MaxIdleConns = 6`, a cap over all hosts together, and a plugin's
/// transport talks to one host).
pub const DEFAULT_POOL_MAX_IDLE: usize = 2;

/// Called with the error of a call that gave up without an answer from
/// the plugin: it could not connect ([`ClientBuilder::on_connect_failure`])
/// or timed out ([`ClientBuilder::on_timeout`]). `plugin-registry` sets
/// both on the clients of the plugins it activates, to evict those that
/// died or moved (divergence D11) and announce it as its `Event::Evicted`.
pub type FailureHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// Anything that names a plugin address: a string to parse, or an
/// [`Address`].
pub trait IntoAddress {
    /// Parses or clones the address.
    fn into_address(self) -> Result<Address, AddressError>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self)
    }
}

impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self.clone())
    }
}

impl IntoAddress for &str {
    fn into_address(self) -> Result<Address, AddressError> {
        Address::parse(self)
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Result<Address, AddressError> {
        Address::parse(&self)
    }
}

impl IntoAddress for &String {
    fn into_address(self) -> Result<Address, AddressError> {
        Address::parse(self)
    }
}

/// Builds a [`Client`] with settings other than Docker's defaults. It holds
/// no address, so one builder can make the clients of many plugins.
#[derive(Clone)]
pub struct ClientBuilder {
    timeout: Option<Duration>,
    retry: RetryPolicy,
    max_reply_size: u64,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle: usize,
    dial_timeout: Duration,
    on_connect_failure: Option<FailureHook>,
    on_timeout: Option<FailureHook>,
    label: Option<Arc<str>>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            timeout: None,
            retry: RetryPolicy::docker(),
            max_reply_size: DEFAULT_MAX_REPLY_SIZE,
            pool_idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            pool_max_idle: DEFAULT_POOL_MAX_IDLE,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            on_connect_failure: None,
            on_timeout: None,
            label: None,
        }
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_reply_size", &self.max_reply_size)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle", &self.pool_max_idle)
            .field("dial_timeout", &self.dial_timeout)
            .field("on_connect_failure", &self.on_connect_failure.is_some())
            .field("on_timeout", &self.on_timeout.is_some())
            .field("label", &self.label)
            .finish()
    }
}

impl ClientBuilder {
    /// Docker's defaults: no whole-exchange timeout, Docker's retry
    /// schedule, a 64 MiB reply cap, a pool of 2 idle connections kept
    /// 30 s, a 10 s dial timeout.
    pub fn new() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Docker's `NewClientWithTimeout`: bounds each attempt as a whole,
    /// reading the reply included (also for [`Client::stream`]). `None` or
    /// zero means unbounded. A call's own
    /// [`timeout`](crate::CallRequest::timeout) applies as well; the
    /// earlier deadline wins.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> ClientBuilder {
        self.timeout = timeout.into().filter(|t| !t.is_zero());
        self
    }

    /// How transport failures are retried (default: Docker's schedule).
    pub fn retry(mut self, policy: RetryPolicy) -> ClientBuilder {
        self.retry = policy;
        self
    }

    /// The largest reply body a call buffers, error replies included
    /// (default 64 MiB). [`Client::stream`] is not capped.
    pub fn max_reply_size(mut self, bytes: u64) -> ClientBuilder {
        self.max_reply_size = bytes;
        self
    }

    /// How long an idle connection stays pooled; `None` keeps it until the
    /// plugin closes it.
    pub fn pool_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> ClientBuilder {
        self.pool_idle_timeout = timeout.into();
        self
    }

    /// How many idle connections are kept; 0 disables reuse.
    pub fn pool_max_idle(mut self, max: usize) -> ClientBuilder {
        self.pool_max_idle = max;
        self
    }

    /// How long one dial may take (default 10 s, Docker's).
    pub fn dial_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.dial_timeout = timeout;
        self
    }

    /// Runs `hook` whenever a call gives up with a connection-level error
    /// ([`Error::is_connect`]) after its retries, or when its
    /// [`deadline`](crate::CallRequest::deadline) ends them, just before
    /// the call returns that error. It runs on the caller's task, so it
    /// must be quick and must not block.
    ///
    /// This is how `plugin-registry` learns that an activated plugin died:
    /// its hook evicts the plugin and sends `Event::Evicted`, which engines
    /// observe with `Registry::subscribe`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use plugin_client::Client;
    ///
    /// let lost = Arc::new(AtomicUsize::new(0));
    /// let seen = lost.clone();
    /// let client = Client::builder()
    ///     .on_connect_failure(Arc::new(move |_err| {
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     }))
    ///     .build("unix:///run/docker/plugins/gone.sock", None)?;
    /// # let _ = (client, lost);
    /// # Ok::<(), plugin_client::Error>(())
    /// ```
    pub fn on_connect_failure(mut self, hook: FailureHook) -> ClientBuilder {
        self.on_connect_failure = Some(hook);
        self
    }

    /// Runs `hook` whenever a call that did connect gives up on a timeout
    /// ([`Error::is_timeout`]) before a reply arrived: its per-attempt
    /// [`timeout`](crate::CallRequest::timeout) or the client's, after its
    /// retries, or its [`deadline`](crate::CallRequest::deadline). A call
    /// that never connected runs the
    /// [`on_connect_failure`](Self::on_connect_failure) hook instead. It
    /// runs on the caller's task, so it must be quick and must not block.
    ///
    /// The plugin may be slow, or wedged at an address it has since left;
    /// `plugin-registry`'s hook tells them apart by the plugin's files.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use plugin_client::Client;
    ///
    /// let timeouts = Arc::new(AtomicUsize::new(0));
    /// let seen = timeouts.clone();
    /// let client = Client::builder()
    ///     .on_timeout(Arc::new(move |err| {
    ///         debug_assert!(err.is_timeout());
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     }))
    ///     .build("unix:///run/docker/plugins/slow.sock", None)?;
    /// # let _ = (client, timeouts);
    /// # Ok::<(), plugin_client::Error>(())
    /// ```
    pub fn on_timeout(mut self, hook: FailureHook) -> ClientBuilder {
        self.on_timeout = Some(hook);
        self
    }

    /// The `plugin` label of the client's spans and metrics (see
    /// [`telemetry`](crate::telemetry)); the registry gives each plugin's
    /// client its name. Without one, the address is the label.
    pub fn label(mut self, label: impl Into<String>) -> ClientBuilder {
        self.label = Some(Arc::from(label.into()));
        self
    }

    /// Creates the client for `address`, as Docker's `NewClient` does: the
    /// address is parsed, unix paths over 108 bytes and named pipes off
    /// Windows are refused, and TLS files are read now. Any of these
    /// failures is final ([`Error::is_config`]); nothing is dialled yet.
    ///
    /// TLS is used only for `https://` addresses; without options they are
    /// verified against the system roots. The options are still checked for
    /// every scheme, as Docker does.
    pub fn build(
        self,
        address: impl IntoAddress,
        tls: Option<&TlsOptions>,
    ) -> Result<Client, Error> {
        let address = address.into_address().map_err(Error::address)?;
        address.check_dialable().map_err(Error::address)?;
        let loaded = tls.map(LoadedOptions::load).transpose()?;
        let target = match address.endpoint() {
            #[cfg(unix)]
            Endpoint::Unix(path) => Target::Unix(path.clone()),
            Endpoint::Tcp(host_port) => {
                let tls = if address.is_tls() {
                    let options = loaded.unwrap_or_else(LoadedOptions::system_default);
                    Some(options.into_setup(host_of(host_port))?)
                } else {
                    None
                };
                Target::Tcp {
                    addr: host_port.clone(),
                    tls,
                }
            }
            #[cfg(windows)]
            Endpoint::NamedPipe(name) => Target::Pipe(name.clone()),
            _ => return Err(Error::address(AddressError::ProtocolNotAvailable)),
        };
        Ok(self.finish(address, target))
    }

    /// Creates a client that reaches the plugin through `transport` rather
    /// than by dialling the address (Docker's `NewClientWithTransport`).
    /// The address still gives the `Host` header and the texts of errors;
    /// no TLS is added on top of the transport's stream.
    pub fn build_with_transport(self, address: Address, transport: impl Transport) -> Client {
        self.finish(address, Target::Custom(Arc::new(transport)))
    }

    fn finish(self, address: Address, target: Target) -> Client {
        let dialer = Dialer::new(target, self.dial_timeout);
        let pool = Pool::new(dialer, self.pool_max_idle, self.pool_idle_timeout);
        let label = self.label.unwrap_or_else(|| Arc::from(address.as_str()));
        Client::from_shared(Shared {
            pool: Arc::new(pool),
            metrics: CallMetrics::new(label.clone()),
            label,
            address,
            timeout: self.timeout,
            retry: self.retry,
            max_reply_size: self.max_reply_size,
            on_connect_failure: self.on_connect_failure,
            on_timeout: self.on_timeout,
        })
    }
}

/// The host part of `host:port` (or `[v6]:port`), for TLS server names.
fn host_of(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_ports_and_brackets() {
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:443"), "::1");
    }

    #[test]
    fn creation_failures_are_final_config_errors() {
        // checklist 20
        let long = format!("unix:///{}", "a".repeat(120));
        let e = Client::new(long.as_str(), None).unwrap_err();
        assert!(e.is_config());
        assert!(e.to_string().ends_with("\" is too long"), "{e}");
        let e = Client::new("npipe:////./pipe/x", None).unwrap_err();
        if !cfg!(windows) {
            assert_eq!(e.to_string(), "protocol not available");
        }
        let e = Client::new("foo://bar:1", None).unwrap_err();
        assert!(e.is_config());
    }
}
