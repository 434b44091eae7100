//! Typed messages of the `authz` subsystem: authorization plugins
//! (`pkg/authorization/api.go`; Docker's `plugins_authorization`
//! documentation).
//!
//! The daemon asks every configured plugin before handling an API request
//! (`AuthZPlugin.AuthZReq`) and again before sending the reply
//! (`AuthZPlugin.AuthZRes`); both carry the same [`Request`] shape, the
//! second with the response fields filled in. The plugin answers
//! [`Response`]: `Allow`, an optional message shown to the user, and an
//! optional `Err`.
//!
//! Encoding follows Go's: every request field is `omitempty`, byte fields
//! (`RequestBody`, `ResponseBody`) are base64 strings, the URI key is
//! spelled `RequestUri`, and each peer certificate is a base64 string of
//! its **PEM** text (Docker's `PeerCertificate.MarshalJSON` marshals the
//! PEM bytes as a `[]byte`). [`PeerCertificate`] holds the DER bytes.
//!
//! **What it must never do:** IO, or panic on a malformed certificate
//! (Docker's own decoder dereferences nil on one).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::message::impl_err_reply;
use crate::{Call, null_as_default};

/// `AuthZPlugin.AuthZReq`.
pub const AUTHZ_REQ: &str = "AuthZPlugin.AuthZReq";
/// `AuthZPlugin.AuthZRes`.
pub const AUTHZ_RES: &str = "AuthZPlugin.AuthZRes";

/// What the daemon tells an authorization plugin about one API exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    /// The user found by the authentication mechanism.
    #[serde(
        rename = "User",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub user: String,
    /// How the user was authenticated (e.g. `TLS`).
    #[serde(
        rename = "UserAuthNMethod",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub user_authn_method: String,
    /// The HTTP method (`GET`, `POST`, …).
    #[serde(
        rename = "RequestMethod",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub request_method: String,
    /// The full request URI (`/v1.41/containers/json`). The key is
    /// `RequestUri`, as Docker's JSON tag spells it.
    #[serde(
        rename = "RequestUri",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub request_uri: String,
    /// The raw request body (base64 on the wire, like Go's `[]byte`).
    #[serde(
        rename = "RequestBody",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "go_bytes::serialize",
        deserialize_with = "go_bytes::deserialize"
    )]
    pub request_body: Vec<u8>,
    /// The request headers, one value per name.
    #[serde(
        rename = "RequestHeaders",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub request_headers: BTreeMap<String, String>,
    /// The client's TLS certificates, if it used TLS.
    #[serde(
        rename = "RequestPeerCertificates",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub request_peer_certificates: Vec<PeerCertificate>,
    /// The status code Docker answers with (`AuthZRes` only).
    #[serde(
        rename = "ResponseStatusCode",
        skip_serializing_if = "is_zero",
        deserialize_with = "null_as_default"
    )]
    pub response_status_code: i64,
    /// The raw response body (`AuthZRes` only).
    #[serde(
        rename = "ResponseBody",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "go_bytes::serialize",
        deserialize_with = "go_bytes::deserialize"
    )]
    pub response_body: Vec<u8>,
    /// The response headers (`AuthZRes` only).
    #[serde(
        rename = "ResponseHeaders",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub response_headers: BTreeMap<String, String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `AuthZPlugin.AuthZReq`: may the daemon handle this request?
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthZReq(pub Request);

/// `AuthZPlugin.AuthZRes`: may the daemon send this response?
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthZRes(pub Request);

/// An authorization plugin's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Response {
    /// Whether the exchange may proceed (always serialised).
    #[serde(rename = "Allow", deserialize_with = "null_as_default")]
    pub allow: bool,
    /// A message for the user, typically why access was denied.
    #[serde(
        rename = "Msg",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub msg: String,
    /// The plugin's own failure, distinct from a denial.
    #[serde(
        rename = "Err",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub err: String,
}

impl_err_reply!(err: Response);

impl Call for AuthZReq {
    const METHOD: &'static str = AUTHZ_REQ;
    type Reply = Response;
}

impl Call for AuthZRes {
    const METHOD: &'static str = AUTHZ_RES;
    type Reply = Response;
}

/// A TLS peer certificate: DER bytes, travelling as base64 of PEM text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PeerCertificate {
    der: Vec<u8>,
}

/// Why a peer certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// No `-----BEGIN …-----` / `-----END …-----` block was found.
    #[error("no PEM block found")]
    NoBlock,
    /// The block's body is not base64.
    #[error("invalid base64 in PEM block: {0}")]
    Base64(String),
}

const PEM_BEGIN: &str = "-----BEGIN ";
const PEM_END: &str = "-----END ";
const PEM_DASHES: &str = "-----";

impl PeerCertificate {
    /// A certificate from its DER encoding.
    pub fn from_der(der: impl Into<Vec<u8>>) -> PeerCertificate {
        PeerCertificate { der: der.into() }
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM text Docker sends, as Go's `pem.EncodeToMemory` writes it:
    /// a `CERTIFICATE` block with 64-character base64 lines.
    pub fn to_pem(&self) -> String {
        let body = STANDARD.encode(&self.der);
        let mut pem = String::with_capacity(body.len() + body.len() / 64 + 60);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in body.as_bytes().chunks(64) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// Reads the first PEM block of `pem`, whatever its type (as Go's
    /// `pem.Decode`); header lines (`Key: value`) are skipped.
    pub fn from_pem(pem: &[u8]) -> Result<PeerCertificate, PemError> {
        let text = String::from_utf8_lossy(pem);
        let begin = text.find(PEM_BEGIN).ok_or(PemError::NoBlock)?;
        let after_begin = &text[begin + PEM_BEGIN.len()..];
        let type_end = after_begin.find('\n').ok_or(PemError::NoBlock)?;
        let kind = after_begin[..type_end]
            .trim_end()
            .strip_suffix(PEM_DASHES)
            .ok_or(PemError::NoBlock)?;
        let rest = &after_begin[type_end + 1..];
        let end = rest.find(PEM_END).ok_or(PemError::NoBlock)?;
        let end_line = rest[end + PEM_END.len()..].lines().next().unwrap_or("");
        if end_line.trim_end().strip_suffix(PEM_DASHES) != Some(kind) {
            return Err(PemError::NoBlock);
        }
        let body = &rest[..end];
        let lines: Vec<&str> = if body.lines().next().is_some_and(|l| l.contains(':')) {
            body.lines().skip_while(|l| !l.trim().is_empty()).collect()
        } else {
            body.lines().collect()
        };
        let b64: String = lines
            .concat()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|e| PemError::Base64(e.to_string()))?;
        Ok(PeerCertificate { der })
    }
}

impl Serialize for PeerCertificate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(self.to_pem()))
    }
}

impl<'de> Deserialize<'de> for PeerCertificate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pem = go_bytes::deserialize(deserializer)?;
        PeerCertificate::from_pem(&pem).map_err(D::Error::custom)
    }
}

/// Go's `[]byte` in JSON: a standard base64 string; `null` is empty.
mod go_bytes {
    use super::*;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let Some(text) = Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)? else {
            return Ok(Vec::new());
        };
        // Go's base64.StdEncoding skips `\r` and `\n` when decoding.
        let cleaned: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        STANDARD
            .decode(cleaned)
            .map_err(|e| D::Error::custom(format!("illegal base64 data: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::decode_call_reply;
    use crate::{ErrReply, encode_args};
    use crate::{decode_message, decode_request, encode_request};

    fn der() -> Vec<u8> {
        (0u8..=200).collect()
    }

    fn full() -> Request {
        Request {
            user: "alice".into(),
            user_authn_method: "TLS".into(),
            request_method: "POST".into(),
            request_uri: "/v1.41/containers/create?name=x&y=<z>".into(),
            request_body: br#"{"Image":"busybox"}"#.to_vec(),
            request_headers: BTreeMap::from([("Content-Type".into(), "application/json".into())]),
            request_peer_certificates: vec![PeerCertificate::from_der(der())],
            response_status_code: 201,
            response_body: b"{\"Id\":\"abc\"}\n".to_vec(),
            response_headers: BTreeMap::from([("Api-Version".into(), "1.41".into())]),
        }
    }

    #[test]
    fn request_bytes_follow_go_tags() {
        // checklist 21: omitempty tags, base64 []byte, HTML escaping
        let r = AuthZReq(Request {
            user: "alice".into(),
            request_method: "GET".into(),
            request_uri: "/v1.41/info".into(),
            request_body: b"{}".to_vec(),
            ..Request::default()
        });
        // omitempty everywhere, `RequestUri`, []byte as base64 ("{}" is "e30=").
        assert_eq!(
            &encode_request(&r).unwrap()[..],
            b"{\"User\":\"alice\",\"RequestMethod\":\"GET\",\"RequestUri\":\"/v1.41/info\",\"RequestBody\":\"e30=\"}\n"
        );
        assert_eq!(&encode_request(&AuthZReq::default()).unwrap()[..], b"{}\n");
        // Key order is the Go struct's.
        let text = serde_json::to_string(&full()).unwrap();
        let keys = [
            "User",
            "UserAuthNMethod",
            "RequestMethod",
            "RequestUri",
            "RequestBody",
            "RequestHeaders",
            "RequestPeerCertificates",
            "ResponseStatusCode",
            "ResponseBody",
            "ResponseHeaders",
        ];
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        // HTML characters in the URI are escaped on the wire (checklist 21).
        let wire = encode_request(&AuthZRes(full())).unwrap();
        assert!(wire.windows(6).any(|w| w == b"\\u003c"));
    }

    #[test]
    fn peer_certificates_are_base64_of_pem() {
        // Docker: json.Marshal(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: Raw}))
        let cert = PeerCertificate::from_der(der());
        let pem = cert.to_pem();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.ends_with("\n-----END CERTIFICATE-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let json = serde_json::to_string(&cert).unwrap();
        assert!(
            json.starts_with("\"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"),
            "{json}"
        );
        assert_eq!(
            STANDARD.decode(json.trim_matches('"')).unwrap(),
            pem.as_bytes()
        );
        let back: PeerCertificate = serde_json::from_str(&json).unwrap();
        assert_eq!(back.der(), der());
        assert_eq!(PeerCertificate::from_pem(pem.as_bytes()).unwrap(), cert);
    }

    #[test]
    fn pem_reading_is_lenient_but_never_panics() {
        // no checklist item: Docker's PeerCertificate JSON; must not panic where Go does
        let with_headers = "junk\n-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAEC\r\nAw==\n-----END CERTIFICATE-----\ntrailer";
        assert_eq!(
            PeerCertificate::from_pem(with_headers.as_bytes())
                .unwrap()
                .der(),
            [0, 1, 2, 3]
        );
        for bad in [
            "",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nAAEC\n",
            "-----BEGIN CERTIFICATE-----\nAAEC\n-----END KEY-----\n",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            "-----BEGIN \n-----END -----",
        ] {
            assert!(
                PeerCertificate::from_pem(bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
        // As JSON: not base64, or base64 of something that is not PEM.
        assert!(serde_json::from_str::<PeerCertificate>("\"%%%\"").is_err());
        assert!(serde_json::from_str::<PeerCertificate>("\"aGVsbG8=\"").is_err());
    }

    #[test]
    fn bytes_decode_like_go() {
        // checklist 22: Go's []byte decoding (StdEncoding, null is empty)
        let r: Request = decode_message(br#"{"RequestBody":"e30=","ResponseBody":null}"#).unwrap();
        assert_eq!(r.request_body, b"{}");
        assert!(r.response_body.is_empty());
        // Go's StdEncoding ignores line breaks.
        let r: Request = decode_message(b"{\"RequestBody\":\"e3\\r\\n0=\"}").unwrap();
        assert_eq!(r.request_body, b"{}");
        assert!(decode_message::<Request>(br#"{"RequestBody":"e30"}"#).is_err());
        assert!(decode_message::<Request>(br#"{"RequestBody":5}"#).is_err());
    }

    #[test]
    fn documented_examples_decode() {
        // Request and response bodies from Docker's plugins_authorization
        // documentation (docs/extend/plugins_authorization.md).
        // The documented request is illustrative: its "byte arrays" are
        // prose, not base64, so Go's decoder rejects it as ours does.
        let documented = br#"{
            "User":              "The user identification",
            "UserAuthNMethod":   "The authentication method used",
            "RequestMethod":     "The HTTP method",
            "RequestURI":        "The HTTP request URI",
            "RequestBody":       "Byte array containing the raw HTTP request body",
            "RequestHeader":     "Byte array containing the raw HTTP request header as a map[string][]string "
        }"#;
        assert!(decode_request::<AuthZReq>(documented).is_err());
        // Without the prose byte fields it decodes (`RequestHeader` is unknown).
        let req: AuthZReq = decode_request(
            br#"{"User":"The user identification","UserAuthNMethod":"The authentication method used","RequestMethod":"The HTTP method","RequestURI":"The HTTP request URI","RequestHeader":"x"}"#,
        )
        .unwrap();
        // Go matches `RequestURI` to the `RequestUri` tag case-insensitively.
        assert_eq!(req.0.request_uri, "The HTTP request URI");
        assert_eq!(req.0.user_authn_method, "The authentication method used");
        let res = decode_call_reply::<AuthZReq>(
            br#"{"Allow": "Determined whether the user is allowed or not"}"#,
        );
        assert!(res.is_err(), "Allow must be a bool");
        let res =
            decode_call_reply::<AuthZReq>(br#"{"Allow": true, "Msg": "", "Err": ""}"#).unwrap();
        assert!(res.allow);
        assert_eq!(res.err(), None);
        let res = decode_call_reply::<AuthZRes>(
            br#"{"Allow": false, "Msg": "denied by policy", "Err": "policy store down"}"#,
        )
        .unwrap();
        assert_eq!(res.msg, "denied by policy");
        assert_eq!(res.err(), Some("policy store down"));
    }

    #[test]
    fn response_serialisation() {
        // spec §4: Allow always present, Msg and Err omitted when empty
        assert_eq!(
            serde_json::to_string(&Response::default()).unwrap(),
            r#"{"Allow":false}"#
        );
        assert_eq!(
            serde_json::to_string(&Response {
                allow: false,
                msg: "no".into(),
                err: String::new()
            })
            .unwrap(),
            r#"{"Allow":false,"Msg":"no"}"#
        );
        let r: Response = decode_message(br#"{"allow":true,"msg":null}"#).unwrap();
        assert!(r.allow);
    }

    #[test]
    fn round_trips() {
        // checklist 21/22: every authz message survives encode and decode
        for r in [Request::default(), full()] {
            let wire = encode_args(Some(&r)).unwrap();
            assert_eq!(serde_json::from_slice::<Request>(&wire).unwrap(), r);
            assert_eq!(decode_message::<Request>(&wire).unwrap(), r);
            let req = AuthZReq(r.clone());
            let wire = encode_request(&req).unwrap();
            assert_eq!(decode_request::<AuthZReq>(&wire).unwrap(), req);
            let res = AuthZRes(r);
            let wire = encode_request(&res).unwrap();
            assert_eq!(decode_request::<AuthZRes>(&wire).unwrap(), res);
        }
        for r in [
            Response::default(),
            Response {
                allow: true,
                msg: "m".into(),
                err: "e".into(),
            },
        ] {
            let wire = encode_args(Some(&r)).unwrap();
            assert_eq!(serde_json::from_slice::<Response>(&wire).unwrap(), r);
        }
        assert_eq!(<AuthZReq as Call>::METHOD, "AuthZPlugin.AuthZReq");
        assert_eq!(<AuthZRes as Call>::METHOD, "AuthZPlugin.AuthZRes");
    }

    proptest::proptest! {
        #[test]
        fn pem_round_trips(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            // no checklist item: PEM text round trip
            let c = PeerCertificate::from_der(bytes);
            proptest::prop_assert_eq!(PeerCertificate::from_pem(c.to_pem().as_bytes()).unwrap(), c);
        }

        #[test]
        fn pem_never_panics(s in "\\PC{0,80}") {
            // crate invariant: parsers never panic
            let _ = PeerCertificate::from_pem(s.as_bytes());
        }
    }
}
