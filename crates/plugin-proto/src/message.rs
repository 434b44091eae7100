//! What every typed subsystem message shares: the [`Call`] trait tying a
//! request to its method and reply, the 200-with-`Err` convention
//! ([`ErrReply`]), and encoding and decoding bodies for a call. Go's
//! decoding rules themselves are in `godecode.rs`, Go's time type in
//! `gotime.rs`.
//!
//! The subsystem modules ([`volume`](crate::volume),
//! [`network`](crate::network), …) hold plain serde structs whose JSON keys
//! are Docker's Go field names. Two rules hold for all of them:
//!
//! - **Encoding** is what Docker's Go side writes: field order, `null` for
//!   a nil map or slice (modelled as `Option`), HTML escaping and the
//!   trailing newline (use [`encode_request`], which goes through
//!   [`encode_args`](crate::encode_args)).
//! - **Decoding** never rejects what Go accepts: unknown keys are ignored,
//!   a missing or `null` field keeps its zero value (every non-`Option`
//!   field carries `#[serde(default, deserialize_with = "null_as_default")]`,
//!   so plain `serde_json` works too). [`decode_message`] adds the rest of
//!   Go's rules: case-insensitive keys, the last duplicate winning, only the
//!   first JSON value read, a `null` body giving the zero value.
//!
//! **What it must never do:** IO of any kind, or panic on any input.

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::gojson::DecodeError;
use crate::{EncodeError, decode_message, encode_args, encode_stream_args, null_as_default};

/// A typed request: which method carries it, what comes back, and how
/// Docker sends it.
///
/// Engines use it to make typed calls ([`encode_request`], then
/// [`decode_message`] unless [`Call::READS_REPLY`] is `false`;
/// `plugin-client`'s `Client::call` does both); plugin servers use [`Call::METHOD`] to dispatch
/// and [`decode_request`] to read the body.
pub trait Call: Serialize {
    /// `Subsystem.Method`, e.g. `"VolumeDriver.Create"`.
    const METHOD: &'static str;

    /// The reply type (`Default` because Go leaves a target untouched on
    /// `null`; `Send + 'static` so a call's future can be sent between
    /// threads: replies are plain data).
    type Reply: DeserializeOwned + Serialize + Default + Send + 'static;

    /// Whether Docker sends the request as a JSON body. `false` for the
    /// calls Docker makes with nil arguments, which go out with an empty
    /// body and `Content-Length: 0` (checklist 21), such as
    /// `NetworkDriver.GetCapabilities`.
    const SENDS_BODY: bool = true;

    /// Whether Docker reads the reply body at all. `false` for calls made
    /// with a nil reply target (`MetricsCollector.StopMetrics`), whose body
    /// is never parsed (checklist 22).
    const READS_REPLY: bool = true;

    /// The per-attempt timeout Docker applies (`WithRequestTimeout`), if
    /// any. Volume calls have one (spec §5); the others do not.
    const TIMEOUT: Option<Duration> = None;
}

/// A request whose reply is a raw byte stream rather than JSON, sent as
/// Docker's `Client.Stream` sends it: the arguments are always encoded
/// (checklist 21). `LogDriver.ReadLogs` is the one such call.
pub trait StreamCall: Serialize {
    /// `Subsystem.Method`, e.g. `"LogDriver.ReadLogs"`.
    const METHOD: &'static str;
}

/// Replies that carry the 200-with-`Err` convention (spec §4): the plugin
/// answers 200 and puts its error in a string field.
///
/// Docker's typed proxies turn a non-empty value into an error without a
/// method prefix (libnetwork adds `remote: `).
pub trait ErrReply {
    /// The error, `Some` only for a non-empty value.
    fn err(&self) -> Option<&str>;

    /// Sets the error field (for plugin servers building a failure reply).
    fn set_err(&mut self, message: String);

    /// A reply holding only `message` as its error.
    fn from_err(message: impl Into<String>) -> Self
    where
        Self: Default,
    {
        let mut reply = Self::default();
        reply.set_err(message.into());
        reply
    }
}

/// Implements [`ErrReply`] for reply structs whose error lives in `$field`.
macro_rules! impl_err_reply {
    ($field:ident: $($t:ty),+ $(,)?) => {
        $(
            impl $crate::ErrReply for $t {
                fn err(&self) -> Option<&str> {
                    Some(self.$field.as_str()).filter(|e| !e.is_empty())
                }
                fn set_err(&mut self, message: String) {
                    self.$field = message;
                }
            }
        )+
    };
}
pub(crate) use impl_err_reply;

/// A reply that is only `{"Err": …}`, the shape of most replies.
///
/// An empty `Err` is left out when serialised (`{}`), which Docker's
/// documentation allows; decoding accepts it missing, `null` or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrResponse {
    /// The plugin's error; empty on success.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

impl_err_reply!(err: ErrResponse);

/// An empty JSON object: the request `struct{}` Docker sends as `{}\n`, or
/// a reply whose content is ignored. Decoding accepts any object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Empty {}

/// Encodes a request body as Docker does: Go-style JSON with a trailing
/// newline, or an empty body for calls Docker makes with nil arguments
/// ([`Call::SENDS_BODY`]).
pub fn encode_request<C: Call>(request: &C) -> Result<Bytes, EncodeError> {
    if C::SENDS_BODY {
        encode_args(Some(request))
    } else {
        encode_args::<C>(None)
    }
}

/// Encodes a stream request body as Docker's `Stream` does (always JSON).
pub fn encode_stream_request<S: StreamCall>(request: &S) -> Result<Bytes, EncodeError> {
    encode_stream_args(Some(request))
}

/// Decodes the 200 reply to `C` as Docker does: not at all when Docker
/// ignores the body ([`Call::READS_REPLY`]), otherwise with
/// [`decode_message`].
///
/// A non-empty error field is not turned into an error here; see
/// [`ErrReply`]. (The unit tests of each subsystem check replies with it;
/// `plugin-client` reads replies itself, as it must not buffer a body
/// Docker never reads.)
#[cfg(test)]
pub(crate) fn decode_call_reply<C: Call>(body: &[u8]) -> Result<C::Reply, DecodeError> {
    if C::READS_REPLY {
        decode_message(body)
    } else {
        Ok(C::Reply::default())
    }
}

/// Decodes a request body on the plugin side. An empty body is the zero
/// request for calls Docker sends without one ([`Call::SENDS_BODY`]), and
/// the error `EOF` otherwise, as Go plugin kits answer.
pub fn decode_request<C>(body: &[u8]) -> Result<C, DecodeError>
where
    C: Call + DeserializeOwned + Default,
{
    if !C::SENDS_BODY && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(C::default());
    }
    decode_message(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_response_shapes() {
        // spec §4: 200 with Err; empty Err serialises as {}
        assert_eq!(
            serde_json::to_string(&ErrResponse::default()).unwrap(),
            "{}"
        );
        let e = ErrResponse::from_err("boom");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"Err":"boom"}"#);
        assert_eq!(e.err(), Some("boom"));
        for body in [&b"{}"[..], br#"{"Err":null}"#, br#"{"Err":""}"#, b"null"] {
            let r: ErrResponse = decode_message(body).unwrap();
            assert_eq!(r.err(), None, "{body:?}");
        }
        let r: ErrResponse = decode_message(br#"{"err":"lower"}"#).unwrap();
        assert_eq!(r.err(), Some("lower"));
    }

    #[test]
    fn empty_is_braces_and_accepts_any_object() {
        // spec §5 / checklist 21: struct{} requests go out as `{}\n`
        assert_eq!(&encode_args(Some(&Empty {})).unwrap()[..], b"{}\n");
        assert_eq!(decode_message::<Empty>(br#"{"a":1}"#).unwrap(), Empty {});
        assert_eq!(
            serde_json::from_str::<Empty>(r#"{"a":1}"#).unwrap(),
            Empty {}
        );
    }
}
