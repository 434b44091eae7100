//! Request encoding (spec §3.3, §3.4; checklist 15, 16, 21).
//!
//! The output is an [`http::Request`] that any HTTP/1.1 stack can send:
//! `POST /<Subsystem.Method>`, `Host`, `Accept` with the plugins media type,
//! `Content-Length` and a `User-Agent`; never `Content-Type` and never
//! `Accept-Encoding` (Go asks for gzip on tcp; we do not, a listed
//! divergence).

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, HOST, HeaderValue, USER_AGENT};

use crate::address::Address;
use crate::{MEDIA_TYPE, VIRTUAL_HOST, gojson};

/// The `User-Agent` this crate puts on requests. Docker sends Go's
/// `Go-http-client/1.1`; no plugin is known to look at it.
pub const USER_AGENT_VALUE: &str = concat!("plugin-proto/", env!("CARGO_PKG_VERSION"));

/// Why a call could not be encoded. Nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Divergence: the method is not `Subsystem.Method`. Go would build a
    /// strange request from it (`//A.B`, `A B`).
    #[error(
        "invalid plugin method {0:?}: expected \"Subsystem.Method\" (letters, digits, '_' or '-' on each side of one dot)"
    )]
    InvalidMethod(String),
    /// The arguments could not be serialised.
    #[error("json: {0}")]
    Args(#[from] serde_json::Error),
    /// The address's host does not form a valid request URI.
    #[error("invalid request for plugin address {address}: {reason}")]
    Request {
        /// The plugin address.
        address: String,
        /// What `http` refused.
        reason: String,
    },
}

/// Checks a method name and returns it without a leading `/` (checklist 15:
/// `/VolumeDriver.List` and `VolumeDriver.List` are the same call).
pub fn validate_method(method: &str) -> Result<&str, EncodeError> {
    let name = method.strip_prefix('/').unwrap_or(method);
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    match name.split_once('.') {
        Some((subsystem, m)) if part_ok(subsystem) && part_ok(m) => Ok(name),
        _ => Err(EncodeError::InvalidMethod(method.to_owned())),
    }
}

/// Encodes call arguments as `Call` does: `None` is an empty body; a value
/// is Go-style JSON (HTML-escaped) with a trailing newline (checklist 21).
/// `Some(&serde_json::Value::Null)` is `null\n`, as in Go.
pub fn encode_args<T: serde::Serialize + ?Sized>(args: Option<&T>) -> Result<Bytes, EncodeError> {
    match args {
        None => Ok(Bytes::new()),
        Some(a) => Ok(Bytes::from(gojson::encode(a)?)),
    }
}

/// Encodes arguments as `Stream` does: `None` is `null\n` (checklist 21).
pub fn encode_stream_args<T: serde::Serialize + ?Sized>(
    args: Option<&T>,
) -> Result<Bytes, EncodeError> {
    match args {
        None => Ok(Bytes::from_static(b"null\n")),
        Some(a) => encode_args(Some(a)),
    }
}

/// The URL of a call as Go prints it in errors and logs
/// (`http://plugin.moby.localhost/Plugin.Activate`): the address's HTTP
/// scheme and `Host`, then the method. The path of an address is ignored
/// (checklist 18).
///
/// ```
/// use plugin_proto::{Address, call_url};
///
/// let addr = Address::parse("tcp://127.0.0.1:8080/ignored")?;
/// assert_eq!(call_url(&addr, "/VolumeDriver.List")?, "http://127.0.0.1:8080/VolumeDriver.List");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn call_url(address: &Address, method: &str) -> Result<String, EncodeError> {
    let name = validate_method(method)?;
    Ok(format!(
        "{}://{}/{name}",
        address.http_scheme(),
        address.host_header()
    ))
}

/// Builds the request head for `method` on the plugin at `address`, for a
/// body of `content_length` bytes (`None`: an unsized body, sent chunked).
///
/// The URI is absolute (`http://plugin.moby.localhost/Plugin.Activate`) so a
/// pooling client can key connections on it; HTTP/1.1 clients send the
/// origin form (`POST /Plugin.Activate`) on the wire.
///
/// This is the one place the request line is built: `plugin-client` sends
/// this head with its own (possibly streamed) body.
pub fn encode_call_head(
    address: &Address,
    method: &str,
    content_length: Option<u64>,
) -> Result<http::Request<()>, EncodeError> {
    // The constant values are not copied: this runs once per call.
    let host = match address.host_header() {
        VIRTUAL_HOST => HeaderValue::from_static(VIRTUAL_HOST),
        other => HeaderValue::try_from(other).map_err(|e| EncodeError::Request {
            address: address.to_string(),
            reason: e.to_string(),
        })?,
    };
    let mut builder = http::Request::post(call_url(address, method)?)
        .header(HOST, host)
        .header(ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
    if let Some(len) = content_length {
        builder = builder.header(CONTENT_LENGTH, len);
    }
    builder
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
        .body(())
        .map_err(|e| EncodeError::Request {
            address: address.to_string(),
            reason: e.to_string(),
        })
}

/// Builds the whole request for a call whose body is already encoded.
pub fn encode_call(
    address: &Address,
    method: &str,
    body: Bytes,
) -> Result<http::Request<Bytes>, EncodeError> {
    let head = encode_call_head(address, method, Some(body.len() as u64))?;
    Ok(head.map(|()| body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix() -> Address {
        Address::unix("/run/docker/plugins/x.sock")
    }

    #[test]
    fn activation_request_is_dockers() {
        // checklist 15, 16, 17, 21
        let req =
            encode_call(&unix(), "Plugin.Activate", encode_args::<()>(None).unwrap()).unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/Plugin.Activate");
        let h = req.headers();
        assert_eq!(h[HOST], "plugin.moby.localhost");
        assert_eq!(h[ACCEPT], "application/vnd.docker.plugins.v1.2+json");
        assert_eq!(h[CONTENT_LENGTH], "0");
        assert!(
            h.get(http::header::CONTENT_TYPE).is_none(),
            "checklist 16: no Content-Type"
        );
        assert!(h.get(http::header::ACCEPT_ENCODING).is_none());
        assert_eq!(h.len(), 4, "{h:?}");
        assert!(req.body().is_empty());
    }

    #[test]
    fn leading_slash_is_not_doubled() {
        // checklist 15
        let req = encode_call(&unix(), "/VolumeDriver.List", Bytes::new()).unwrap();
        assert_eq!(req.uri().path(), "/VolumeDriver.List");
    }

    #[test]
    fn tcp_host_header_is_host_port() {
        // checklist 17
        let a = Address::parse("tcp://127.0.0.1:43821").unwrap();
        let req = encode_call(&a, "Plugin.Activate", Bytes::from_static(b"{\"a\":1}\n")).unwrap();
        assert_eq!(req.headers()[HOST], "127.0.0.1:43821");
        assert_eq!(req.headers()[CONTENT_LENGTH], "8");
        assert_eq!(req.uri().scheme_str(), Some("http"));
        let a = Address::parse("https://h:1/base").unwrap();
        let req = encode_call(&a, "A.B", Bytes::new()).unwrap();
        assert_eq!(
            req.uri().to_string(),
            "https://h:1/A.B",
            "checklist 18: path ignored"
        );
    }

    #[test]
    fn unsized_head_has_no_content_length() {
        let req = encode_call_head(&unix(), "A.B", None).unwrap();
        assert!(req.headers().get(CONTENT_LENGTH).is_none());
    }

    #[test]
    fn args_are_go_encoded() {
        // checklist 21
        #[derive(serde::Serialize)]
        #[allow(non_snake_case)]
        struct Create {
            Name: String,
            Opts: Option<std::collections::BTreeMap<String, String>>,
        }
        let body = encode_args(Some(&Create {
            Name: "a<b>&c".into(),
            Opts: None,
        }))
        .unwrap();
        assert_eq!(
            &body[..],
            b"{\"Name\":\"a\\u003cb\\u003e\\u0026c\",\"Opts\":null}\n"
        );
        #[derive(serde::Serialize)]
        struct Empty {}
        assert_eq!(&encode_args(Some(&Empty {})).unwrap()[..], b"{}\n");
        assert_eq!(
            &encode_args(Some(&serde_json::Value::Null)).unwrap()[..],
            b"null\n"
        );
        assert!(encode_args::<()>(None).unwrap().is_empty());
        assert_eq!(&encode_stream_args::<()>(None).unwrap()[..], b"null\n");
    }

    #[test]
    fn odd_method_names_are_rejected_before_any_io() {
        // divergence: Go builds `//A.B` or `A B` requests from these.
        for m in [
            "", "/", "//A.B", "A B.C", "A", "A.", ".B", "A.B.C", "A.B?x", "A.B/C",
        ] {
            assert!(validate_method(m).is_err(), "{m:?}");
        }
        for m in [
            "Plugin.Activate",
            "/Plugin.Hello",
            "IpamDriver.RequestPool",
            "A_b.c-D",
        ] {
            assert!(validate_method(m).is_ok(), "{m:?}");
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            "[ -~<>&\u{2028}\u{2029}é]{0,12}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[A-Za-z<>&]{0,8}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// checklist 21: whatever the arguments, the body is Go's encoding
        /// (no raw `<`, `>`, `&`, U+2028/2029; one trailing newline) and
        /// decodes back to the same value.
        #[test]
        fn args_encode_decode_round_trip(value in json_value()) {
            let body = encode_args(Some(&value)).unwrap();
            proptest::prop_assert!(body.ends_with(b"\n"));
            let text = std::str::from_utf8(&body).unwrap();
            let escaped = !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']);
            proptest::prop_assert!(escaped, "unescaped HTML or line separator in {}", text);
            let back: serde_json::Value = serde_json::from_slice(&body).unwrap();
            proptest::prop_assert_eq!(back, value);
        }
    }
}
