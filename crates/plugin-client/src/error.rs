//! The one error type of the crate, opaque in hyper's style: callers ask
//! predicates (`is_timeout()`, `is_not_found()`, …) rather than matching on
//! variants, so new failure kinds never break them.
//!
//! Texts follow Docker's where Docker defines them: status errors are
//! `<method>: <message>`; transport errors read like Go's `*url.Error`
//! (`Post "http://plugin.moby.localhost/Plugin.Activate": dial unix
//! /run/x.sock: connect: connection refused`); TLS file errors are
//! go-connections'.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use plugin_proto::retry::go_duration;
use plugin_proto::{AddressError, DecodeError, EncodeError, StatusError, go_quote};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a call, or the creation of a client, failed.
///
/// Use the predicates to tell failures apart; the [`Display`](fmt::Display)
/// text is Docker's where Docker defines one, and [`source`](StdError::source)
/// leads to the underlying cause.
pub struct Error(Box<Inner>);

struct Inner {
    kind: Kind,
    flags: u8,
    method: Option<String>,
    /// Set for failures before a reply arrived: the text is then prefixed
    /// as Go's `*url.Error` is, `Post "<url>": `.
    url: Option<String>,
    text: String,
    status: Option<StatusError>,
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Creating the client failed (address, TLS files, dialability).
    Config,
    /// The call could not be encoded (method name, arguments).
    Encode,
    /// No connection could be made (refused, missing socket, dial
    /// timeout, TLS handshake).
    Connect,
    /// The exchange broke before a reply arrived (EOF, reset, malformed
    /// reply, timeout).
    Transport,
    /// The plugin replied with a status other than 200.
    Status,
    /// The reply body did not decode.
    Decode,
    /// The reply body exceeded the size cap.
    TooLarge,
    /// Reading a 200 reply's body failed.
    Body,
}

pub(crate) const TIMEOUT: u8 = 1;
pub(crate) const TLS: u8 = 2;
pub(crate) const REFUSED: u8 = 4;
pub(crate) const MISSING: u8 = 8;
pub(crate) const TOO_LARGE: u8 = 16;
pub(crate) const PLUGIN_ERR: u8 = 32;
pub(crate) const DEADLINE: u8 = 64;

impl Error {
    fn new(kind: Kind, text: String) -> Error {
        Error(Box::new(Inner {
            kind,
            flags: 0,
            method: None,
            url: None,
            text,
            status: None,
            source: None,
        }))
    }

    pub(crate) fn with_flags(mut self, flags: u8) -> Error {
        self.0.flags |= flags;
        self
    }

    pub(crate) fn with_method(mut self, method: &str) -> Error {
        self.0.method = Some(method.to_owned());
        self
    }

    pub(crate) fn with_url(mut self, url: String) -> Error {
        self.0.url = Some(url);
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.0.source = Some(source.into());
        self
    }

    /// An invalid address or an address this platform cannot dial.
    pub(crate) fn address(err: AddressError) -> Error {
        Error::new(Kind::Config, err.to_string()).with_source(err)
    }

    /// A TLS option or file that go-connections would refuse.
    pub(crate) fn tls_config(text: String) -> Error {
        Error::new(Kind::Config, text).with_flags(TLS)
    }

    pub(crate) fn encode(method: &str, err: EncodeError) -> Error {
        Error::new(Kind::Encode, err.to_string())
            .with_method(method)
            .with_source(err)
    }

    pub(crate) fn from_status(err: StatusError) -> Error {
        let mut e = Error::new(Kind::Status, err.to_string()).with_method(err.method());
        e.0.status = Some(err);
        e
    }

    pub(crate) fn decode(method: &str, err: DecodeError) -> Error {
        Error::new(Kind::Decode, err.to_string())
            .with_method(method)
            .with_source(err)
    }

    pub(crate) fn too_large(method: &str, limit: u64) -> Error {
        Error::new(Kind::TooLarge, too_large_text(limit))
            .with_flags(TOO_LARGE)
            .with_method(method)
    }

    pub(crate) fn body(method: &str, text: String) -> Error {
        Error::new(Kind::Body, text).with_method(method)
    }

    /// A call that the caller's deadline (`within` from its start) ended:
    /// `<method>: no answer within <d>`, then `last`'s own text when it says
    /// more than that the time ran out. `last`'s kind and flags are kept,
    /// so a call that never connected is still [`is_connect`](Self::is_connect),
    /// and `last` is the source.
    pub(crate) fn past_deadline(
        method: &str,
        within: Duration,
        last: Error,
        show_last: bool,
    ) -> Error {
        let mut text = format!("{method}: no answer within {}", go_duration(within));
        if show_last {
            text.push_str(&format!(": {last}"));
        }
        Error::new(last.0.kind, text)
            .with_flags(last.0.flags | TIMEOUT | DEADLINE)
            .with_method(method)
            .with_source(last)
    }

    pub(crate) fn connect(text: String) -> Error {
        Error::new(Kind::Connect, text)
    }

    pub(crate) fn transport(text: String) -> Error {
        Error::new(Kind::Transport, text)
    }

    /// `true` for failures that Docker retries: anything that went wrong
    /// before a reply arrived.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self.0.kind, Kind::Connect | Kind::Transport)
    }

    /// `true` if the plugin answered 404 (Docker's `IsNotFound`): callers use
    /// it to treat an optional method the plugin lacks as success.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// `true` if the plugin replied with a status other than 200.
    pub fn is_status(&self) -> bool {
        self.0.kind == Kind::Status
    }

    /// The HTTP status of a status error.
    pub fn status(&self) -> Option<u16> {
        self.0.status.as_ref().map(StatusError::status)
    }

    /// The status error itself: its method, status and the plugin's message.
    pub fn status_error(&self) -> Option<&StatusError> {
        self.0.status.as_ref()
    }

    /// `true` if a deadline expired: the dial timeout, a per-call timeout,
    /// the client's whole-exchange timeout, or the call's
    /// [`deadline`](crate::CallRequest::deadline) (which may end a call
    /// before it passes, when no retry fits before it).
    pub fn is_timeout(&self) -> bool {
        self.0.flags & TIMEOUT != 0
    }

    /// `true` if the call's [`deadline`](crate::CallRequest::deadline) ended
    /// it (then also [`is_timeout`](Self::is_timeout)). Its
    /// [`source`](StdError::source) is the last attempt's error.
    pub fn is_deadline(&self) -> bool {
        self.0.flags & DEADLINE != 0
    }

    /// `true` if no connection could be made: refused, missing socket, dial
    /// timeout or a failed TLS handshake.
    pub fn is_connect(&self) -> bool {
        self.0.kind == Kind::Connect
    }

    /// `true` if the plugin's socket or port refused the connection (a
    /// stale socket: nobody listens).
    pub fn is_connection_refused(&self) -> bool {
        self.0.flags & REFUSED != 0
    }

    /// `true` if the plugin's unix socket does not exist.
    pub fn is_socket_missing(&self) -> bool {
        self.0.flags & MISSING != 0
    }

    /// `true` for TLS failures: unusable TLS options or files at creation, a
    /// failed handshake, or a TLS alert from the plugin.
    pub fn is_tls(&self) -> bool {
        self.0.flags & TLS != 0
    }

    /// `true` if a 200 reply's body did not decode into the expected type
    /// (an empty body is Go's `EOF`).
    pub fn is_decode(&self) -> bool {
        self.0.kind == Kind::Decode
    }

    /// `true` if a reply body exceeded the client's size cap (for a status
    /// error, its body did; the error is then also [`is_status`](Self::is_status)).
    pub fn is_too_large(&self) -> bool {
        self.0.flags & TOO_LARGE != 0
    }

    /// `true` for a status error whose message is the plugin's own, from
    /// the protocol's `{"Err":…}` body (rather than a raw body such as
    /// `404 page not found`).
    pub fn is_plugin_error(&self) -> bool {
        self.0.flags & PLUGIN_ERR != 0
    }

    /// `true` if the call could not be encoded.
    pub(crate) fn is_encode(&self) -> bool {
        self.0.kind == Kind::Encode
    }

    /// `true` if the client could not be created: a bad address, a unix path
    /// that is too long, named pipes off Windows, or unusable TLS options.
    pub fn is_config(&self) -> bool {
        self.0.kind == Kind::Config
    }

    /// The method of the failed call, as it was called.
    pub fn method(&self) -> Option<&str> {
        self.0.method.as_deref()
    }

    /// The error as an [`io::Error`] of a fitting kind, for `AsyncRead`.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = if self.is_timeout() {
            io::ErrorKind::TimedOut
        } else if self.is_too_large() {
            io::ErrorKind::InvalidData
        } else {
            io::ErrorKind::Other
        };
        io::Error::new(kind, self)
    }
}

pub(crate) fn too_large_text(limit: u64) -> String {
    format!("plugin reply body exceeds the limit of {limit} bytes")
}

/// The text Go gives an OS error: the errno string, lowercase, without
/// Rust's ` (os error N)` suffix (`connection refused`,
/// `no such file or directory`). Other errors keep their own text.
pub(crate) fn errno_text(err: &io::Error) -> String {
    let text = err.to_string();
    if err.raw_os_error().is_none() {
        return text;
    }
    let text = match text.rfind(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.url {
            Some(url) => write!(f, "Post {}: {}", go_quote(url), self.0.text),
            None => f.write_str(&self.0.text),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("plugin_client::Error");
        d.field("kind", &self.0.kind)
            .field("message", &format_args!("{self}"));
        if let Some(source) = &self.0.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        if let Some(status) = &self.0.status {
            return Some(status);
        }
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn os_errors_read_like_go() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(errno_text(&e), "connection refused");
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(errno_text(&e), "no such file or directory");
        let e = io::Error::other("Custom Text");
        assert_eq!(errno_text(&e), "Custom Text");
    }

    #[test]
    fn transport_errors_are_prefixed_like_gos_url_error() {
        let e = Error::transport("EOF".into())
            .with_url("http://plugin.moby.localhost/Plugin.Activate".into());
        assert_eq!(
            e.to_string(),
            "Post \"http://plugin.moby.localhost/Plugin.Activate\": EOF"
        );
        assert!(e.is_retryable());
    }

    #[test]
    fn a_deadline_error_says_what_the_call_was_trying() {
        let refused = Error::connect("dial unix /p.sock: connect: connection refused".into())
            .with_flags(REFUSED)
            .with_url("http://plugin.moby.localhost/A.B".into());
        let e = Error::past_deadline("A.B", Duration::from_millis(1500), refused, true);
        assert_eq!(
            e.to_string(),
            "A.B: no answer within 1.5s: Post \"http://plugin.moby.localhost/A.B\": \
             dial unix /p.sock: connect: connection refused"
        );
        assert!(e.is_deadline() && e.is_timeout() && e.is_connect() && e.is_connection_refused());
        assert!(
            e.source()
                .is_some_and(|s| s.to_string().starts_with("Post "))
        );

        let cut = Error::transport("context deadline exceeded".into()).with_flags(TIMEOUT);
        let e = Error::past_deadline("A.B", Duration::from_millis(200), cut, false);
        assert_eq!(e.to_string(), "A.B: no answer within 200ms");
        assert!(e.is_deadline() && !e.is_connect() && e.method() == Some("A.B"));
    }

    #[test]
    fn status_errors_keep_dockers_text() {
        let e = Error::from_status(StatusError::from_reply("A.B", 404, b"404 page not found\n"));
        assert_eq!(e.to_string(), "A.B: 404 page not found\n");
        assert!(e.is_not_found() && e.is_status() && !e.is_retryable());
        assert_eq!(e.method(), Some("A.B"));
        assert!(e.source().is_some());
    }
}
