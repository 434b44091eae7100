//! Error classification: what a failed exchange means (connect or
//! transport, TLS, refused, missing socket) and Go's text for it, from the
//! error chain hyper hands back once connected (a failed dial is a
//! `ConnectFailure` with its own text already).
//!
//! **What it must never do:** decide on retries (that is the call's rule,
//! from these flags) or invent texts where Go has one.

use std::error::Error as _;

use crate::error::{Error, MISSING, REFUSED, TLS, errno_text};

/// Maps a failure of hyper's connection to our error, with Go's texts.
pub(crate) fn classify(err: hyper::Error) -> Error {
    let chain: &(dyn std::error::Error + 'static) = &err;
    let tls = crate::tls::is_tls_error(chain);
    let mut text = transport_text(chain);
    if tls {
        text = format!("tls: {text}");
    }
    // A TLS failure after the handshake (TLS 1.3 reports a refused client
    // certificate on the first read) still means the plugin could not be
    // reached.
    let e = if tls {
        Error::connect(text)
    } else {
        Error::transport(text)
    };
    let flags = if tls { TLS } else { 0 } | io_flags(chain);
    e.with_flags(flags).with_source(err)
}

fn io_flags(chain: &(dyn std::error::Error + 'static)) -> u8 {
    match find::<std::io::Error>(chain).map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => REFUSED,
        Some(std::io::ErrorKind::NotFound) => MISSING,
        _ => 0,
    }
}

/// Go's text for a request that broke: `EOF` when the plugin closed the
/// connection without a reply, the errno text for a reset, `malformed
/// HTTP response` for something that is not HTTP.
fn transport_text(chain: &(dyn std::error::Error + 'static)) -> String {
    if let Some(h) = find::<hyper::Error>(chain) {
        let inner = h.source().and_then(find::<std::io::Error>);
        if let Some(io) = inner {
            return errno_text(io);
        }
        if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
            return "EOF".to_owned();
        }
        if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
            return format!("malformed HTTP response: {h}");
        }
        return h.to_string();
    }
    match find::<std::io::Error>(chain) {
        Some(io) => errno_text(io),
        None => chain.to_string(),
    }
}

fn find<'a, T: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}
