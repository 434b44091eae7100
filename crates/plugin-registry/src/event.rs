//! What happens to plugins, for engines that want to know: a broadcast of
//! [`Event`]s from [`Registry::subscribe`](crate::Registry::subscribe).
//!
//! **What it must never do:** make the registry wait. Events go to a
//! bounded broadcast channel; a subscriber that falls behind misses the
//! oldest (`RecvError::Lagged`), nobody blocks.

/// Something that happened to a plugin in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The plugin was activated and its handlers have run; `get` now
    /// returns it without a handshake.
    Activated {
        /// The plugin's name.
        name: String,
    },
    /// The registry forgot an activated plugin: the next `get` resolves and
    /// activates it again.
    Evicted {
        /// The plugin's name.
        name: String,
        /// Why.
        reason: Eviction,
    },
}

/// Why a plugin was evicted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eviction {
    /// A call through the plugin's client could not connect after its
    /// retries (divergence D11; [`Policy::evict_dead`](crate::Policy)).
    Unreachable {
        /// The call's error text.
        error: String,
    },
    /// A call through the plugin's client timed out, and the plugin's
    /// files no longer name the address it was activated at: it was
    /// restarted elsewhere, or is gone (divergence D11). A plugin that is
    /// slow at the address its files still name is kept.
    Moved {
        /// The call's error text.
        error: String,
    },
    /// [`Registry::evict`](crate::Registry::evict) was called.
    Requested,
}
