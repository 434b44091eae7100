//! The one place where the typed proxies ([`VolumeDriver`](crate::VolumeDriver),
//! [`NetworkDriver`](crate::NetworkDriver), [`IpamDriver`](crate::IpamDriver),
//! [`LogDriver`](crate::LogDriver), [`MetricsCollector`](crate::MetricsCollector))
//! reach a plugin's client, and where the 200-with-`Err` replies become
//! errors in each subsystem's words.
//!
//! Every call goes through the plugin's own client, so the registry's retry
//! schedule, eviction of dead plugins and reply caps apply to proxies as to
//! any call. Keeping the client calls here means a change to the client's
//! API touches this file only.
//!
//! **What it must never do:** retry or time out on its own (the client
//! does both), or read a reply Docker does not read.

use std::sync::Arc;

use plugin_client::{Client, ReplyBody};
use plugin_proto::{Call, ErrReply, StreamCall};

use crate::Plugin;
use crate::error::{Error, ErrorKind};

/// What every proxy holds: the plugin and its client.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) plugin: Arc<Plugin>,
    client: Client,
}

impl Target {
    /// The client of a plugin implementing `kind`: Docker's getters check
    /// the kind before handing a plugin to a subsystem. (Every `Plugin`
    /// has its client; one still activating implements nothing yet.)
    pub(crate) fn new(plugin: &Arc<Plugin>, kind: &str) -> Result<Target, Error> {
        if !plugin.implements(kind) {
            return Err(ErrorKind::NotImplemented {
                name: plugin.name().to_owned(),
                kind: kind.to_owned(),
            }
            .into());
        }
        Ok(Target {
            plugin: plugin.clone(),
            client: plugin.client().clone(),
        })
    }

    /// A typed call: transport and status errors come back as they are
    /// (`<Method>: <message>` for a non-200 reply); the reply is returned
    /// whatever its error field says. A call whose reply Docker never
    /// reads ([`Call::READS_REPLY`], e.g. `MetricsCollector.StopMetrics`)
    /// gives the default reply once the status is 200, its body unread.
    pub(crate) async fn call<C: Call>(&self, request: &C) -> Result<C::Reply, Error> {
        Ok(self.client.call(request).await?)
    }

    /// [`call`](Self::call), then a set error field turned into an error
    /// in `style`.
    pub(crate) async fn call_checked<C: Call>(
        &self,
        request: &C,
        style: ErrStyle,
    ) -> Result<C::Reply, Error>
    where
        C::Reply: ErrReply,
    {
        let reply = self.call(request).await?;
        let Some(message) = reply.err() else {
            return Ok(reply);
        };
        let (method, message) = (C::METHOD.to_owned(), message.to_owned());
        Err(match style {
            ErrStyle::Bare => ErrorKind::Plugin { method, message },
            ErrStyle::Remote => ErrorKind::Remote { method, message },
        }
        .into())
    }

    /// A stream call (`LogDriver.ReadLogs`): the 200 reply's body, unread.
    pub(crate) async fn stream<S: StreamCall>(&self, request: &S) -> Result<ReplyBody, Error> {
        Ok(self.client.stream(request).await?)
    }
}

/// How a subsystem reports a 200 reply whose error field is set.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ErrStyle {
    /// The message alone, as Docker's generated volume proxy and its log
    /// plugin proxy do (`errors.New(ret.Err)`).
    Bare,
    /// `remote: <message>`, as libnetwork's remote network and IPAM
    /// drivers do.
    Remote,
}

/// Optional methods (libnetwork's `plugins.IsNotFound` checks): a plugin
/// answering 404 does not implement the method, which is not an error.
/// `Ok(None)` then; every other outcome is kept.
pub(crate) fn optional<T>(result: Result<T, Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_unimplemented(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Docker's `plugins.IsNotFound`: a bare status error with status 404.
/// Only the call's own error counts, never one wrapped in context.
pub(crate) fn is_unimplemented(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Client(c) if c.status_error().is_some_and(|s| s.is_not_found()))
}
