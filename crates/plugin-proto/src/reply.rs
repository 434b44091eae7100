//! Reply decoding (spec §3.4; checklist 22, 23).

use bytes::Bytes;

use crate::gojson::{self, DecodeError, GoValue};

/// A reply with a status other than 200 (checklist 23).
///
/// Its text is Docker's `<method>: <message>`, where the message is the
/// reply's JSON `Err` (any key case) when that is a non-empty string, or the
/// raw body verbatim otherwise. Status errors are never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method}: {message}")]
pub struct StatusError {
    status: u16,
    method: String,
    message: String,
}

impl StatusError {
    /// Builds the error for a non-200 reply.
    pub fn from_reply(method: &str, status: u16, body: &[u8]) -> StatusError {
        StatusError {
            status,
            method: method.to_owned(),
            message: error_message(body),
        }
    }

    /// A status error whose message was produced elsewhere (for example a
    /// failure to read the error body, which Go reports the same way).
    pub fn new(method: &str, status: u16, message: impl Into<String>) -> StatusError {
        StatusError {
            status,
            method: method.to_owned(),
            message: message.into(),
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The method as it was called.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The plugin's message (the `Err` value or the raw body).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Docker's `IsNotFound`: the plugin answered 404. Callers use it to
    /// treat an optional method the plugin lacks as success.
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

/// Go's `json.Unmarshal(body, &struct{ Err string }{})`: the whole body must
/// be JSON; a non-empty string `Err` wins, anything else gives the raw body.
fn error_message(body: &[u8]) -> String {
    if let Ok(GoValue::Object(entries)) = gojson::whole_value(body) {
        let mut err = String::new();
        let mut ok = true;
        for v in GoValue::members(&entries, "Err") {
            ok &= gojson::string_field(v, &mut err, "", "Err").is_ok();
        }
        if ok && !err.is_empty() {
            return err;
        }
    }
    String::from_utf8_lossy(body).into_owned()
}

/// Interprets a complete reply: 200 gives the body; any other status,
/// including other 2xx and 3xx, is a [`StatusError`].
pub fn decode_reply(
    method: &str,
    status: http::StatusCode,
    body: Bytes,
) -> Result<Bytes, StatusError> {
    if status == http::StatusCode::OK {
        Ok(body)
    } else {
        Err(StatusError::from_reply(method, status.as_u16(), &body))
    }
}

/// Decodes a 200 body into `T` as Go's `json.NewDecoder(body).Decode(&ret)`
/// does (checklist 22): the first JSON value only, trailing bytes ignored;
/// `null` is `Ok(None)` (Go leaves the target unchanged); an empty body is
/// the error `EOF`.
pub fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, DecodeError> {
    let text = gojson::go_lossy_utf8(body);
    let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<Option<T>>();
    match stream.next() {
        None => Err(DecodeError::Eof),
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) if e.is_eof() => Err(DecodeError::UnexpectedEof),
        Some(Err(e)) if e.is_data() => Err(DecodeError::Data(e.to_string())),
        Some(Err(e)) => Err(DecodeError::Syntax(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn err(status: u16, body: &str) -> StatusError {
        decode_reply(
            "A.M",
            StatusCode::from_u16(status).unwrap(),
            Bytes::from(body.to_owned()),
        )
        .unwrap_err()
    }

    #[test]
    fn ok_gives_the_body() {
        assert_eq!(
            decode_reply("A.M", StatusCode::OK, Bytes::from_static(b"x")).unwrap(),
            "x"
        );
    }

    #[test]
    fn status_error_texts_are_dockers() {
        // checklist 23
        assert_eq!(err(500, r#"{"Err":"boom"}"#).to_string(), "A.M: boom");
        assert_eq!(err(500, r#"{"err":"lower"}"#).to_string(), "A.M: lower");
        assert_eq!(err(500, "oops\n").to_string(), "A.M: oops\n");
        assert_eq!(
            err(404, "404 page not found\n").to_string(),
            "A.M: 404 page not found\n"
        );
        assert_eq!(err(500, r#"{"Err":""}"#).to_string(), r#"A.M: {"Err":""}"#);
        assert_eq!(err(500, r#"{"Err":5}"#).to_string(), r#"A.M: {"Err":5}"#);
        assert_eq!(err(500, "null").to_string(), "A.M: null");
        // spec §12: strict parse, so trailing junk gives the raw body.
        assert_eq!(
            err(500, r#"{"Err":"x"} junk"#).to_string(),
            r#"A.M: {"Err":"x"} junk"#
        );
        assert_eq!(err(500, r#"{"Err":"a","ERR":"b"}"#).message(), "b");
    }

    #[test]
    fn every_status_but_200_is_an_error() {
        // checklist 23, spec §12 (299 and 3xx included)
        for s in [201, 204, 299, 302, 307, 400, 404, 500] {
            let e = err(s, "x");
            assert_eq!(e.status(), s);
            assert_eq!(e.method(), "A.M");
            assert_eq!(e.is_not_found(), s == 404, "{s}");
        }
    }

    #[test]
    fn typed_decode_follows_go() {
        // checklist 22
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct R {
            a: u32,
        }
        assert_eq!(
            decode_json::<R>(br#"{"a":1} trailing"#).unwrap(),
            Some(R { a: 1 })
        );
        assert_eq!(decode_json::<R>(b"null").unwrap(), None);
        assert_eq!(decode_json::<R>(b"").unwrap_err().to_string(), "EOF");
        assert_eq!(
            decode_json::<R>(b"{\"a\":").unwrap_err().to_string(),
            "unexpected EOF"
        );
        assert!(matches!(
            decode_json::<R>(br#"{"a":"x"}"#).unwrap_err(),
            DecodeError::Data(_)
        ));
    }

    proptest::proptest! {
        #[test]
        fn err_field_round_trips(msg in "[^\u{0}]{1,40}", status in 201u16..600) {
            let body = serde_json::to_vec(&serde_json::json!({"Err": msg})).unwrap();
            let e = StatusError::from_reply("X.Y", status, &body);
            proptest::prop_assert_eq!(e.message(), msg.as_str());
            proptest::prop_assert_eq!(e.to_string(), format!("X.Y: {msg}"));
        }
    }
}
