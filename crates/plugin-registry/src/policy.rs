//! How long the registry waits, retries and remembers (design.md's
//! divergence table, D8–D11).

use std::time::Duration;

use plugin_proto::RetryPolicy;

/// What `get` does when a name does not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupWait {
    /// Fail at once with the not-found error (the default; Docker waits
    /// ~15 s, moby#23452).
    FailFast,
    /// Watch the socket and spec directories (inotify, with polling as a
    /// fallback) and return as soon as the plugin appears, or fail at the
    /// deadline.
    Watch(Duration),
    /// Docker's loop: retry the lookup with the backoff schedule until the
    /// budget runs out (~15 s for a name that never appears), logging
    /// `Unable to locate plugin: <name>, retrying in <d>`.
    Docker(RetryPolicy),
}

/// The registry's knobs. [`Policy::default`] is this project's behaviour;
/// [`Policy::docker`] restores Docker's wherever an engine might depend on
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// What `get` does for a name that does not resolve.
    pub lookup: LookupWait,
    /// Retry schedule of the activation handshake and of calls through
    /// activated plugins' clients (Docker's by default).
    pub retry: RetryPolicy,
    /// Bound on each handshake attempt; `None` waits forever, as Docker
    /// does. A plugin that accepts and never answers then hangs `get`.
    pub handshake_timeout: Option<Duration>,
    /// Bound on each attempt of every call through an activated plugin's
    /// client, reading the reply included (the client's whole-exchange
    /// timeout, Docker's `NewClientWithTimeout`); a subsystem's shorter
    /// per-call timeout still applies. `None` (the default, as Docker)
    /// leaves calls without a timeout of their own unbounded: libnetwork's
    /// remote drivers, IPAM, logging and metrics calls to a plugin that
    /// accepts and never answers then wait forever. A bound also ends
    /// `ReadLogs` streams (`follow` included) that outlive it.
    pub call_timeout: Option<Duration>,
    /// Bound on the whole load (resolve + handshake + retries) of one
    /// plugin during `get_all`; the listing finishes within it.
    pub list_timeout: Option<Duration>,
    /// In `get_all`, retry the handshake of a refused or missing unix
    /// socket (Docker does, for ~15 s per stale socket).
    pub list_retries_refused: bool,
    /// In `get_all`, skip plugins whose `.json` spec declares `Implements`
    /// without the requested kind, without connecting.
    pub trust_declared_implements: bool,
    /// How long `get_all` remembers a plugin that failed to load, so that
    /// repeated listings do not pay for it again. Zero disables it.
    pub negative_ttl: Duration,
    /// Evict an activated plugin whose calls fail to connect after their
    /// retries, or time out while its files name another address than the
    /// one it was activated at, so the next `get` resolves it again
    /// (Docker caches it forever).
    pub evict_dead: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lookup: LookupWait::FailFast,
            retry: RetryPolicy::docker(),
            handshake_timeout: Some(Duration::from_secs(30)),
            call_timeout: None,
            list_timeout: Some(Duration::from_secs(5)),
            list_retries_refused: false,
            trust_declared_implements: true,
            negative_ttl: Duration::from_secs(2),
            evict_dead: true,
        }
    }
}

impl Policy {
    /// Docker's behaviour where a switch exists: lookup retries for ~15 s,
    /// unbounded handshakes, listings that retry stale sockets and activate
    /// everything, no negative cache, no eviction. Duplicates in listings
    /// and repeated handler calls are bugs and are not reproduced.
    pub fn docker() -> Policy {
        Policy {
            lookup: LookupWait::Docker(RetryPolicy::docker()),
            retry: RetryPolicy::docker(),
            handshake_timeout: None,
            call_timeout: None,
            list_timeout: None,
            list_retries_refused: true,
            trust_declared_implements: false,
            negative_ttl: Duration::ZERO,
            evict_dead: false,
        }
    }

    /// This policy, waiting up to `deadline` for plugins that are not there
    /// yet.
    pub fn wait_for_plugins(mut self, deadline: Duration) -> Policy {
        self.lookup = LookupWait::Watch(deadline);
        self
    }

    /// This policy with another retry schedule for handshakes and calls.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Policy {
        self.retry = retry;
        self
    }
}
