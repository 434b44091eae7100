//! The pure rules of Docker's `pkg/authorization` (which bodies plugins see,
//! how headers are flattened) and this project's framing rule (a body is
//! shown to the plugins exactly as the handler will read it, or the request
//! is refused).
//!
//! **What it must never do:** IO, or decide that a body the plugins did not
//! see whole may reach the handler.

use std::collections::BTreeMap;

use http::{HeaderMap, Version, header};
use plugin_proto::GoUrl;

use super::error::AuthzError;

/// Docker's `maxBodySize` (moby master, 29.3.1 and later): the largest
/// request body shown to authorization plugins, 4 MiB.
pub const MAX_BODY_SIZE: usize = 4 * 1024 * 1024;

/// Headers Docker never shows to authorization plugins (credentials).
const HIDDEN_HEADERS: [&str; 3] = ["Authorization", "X-Registry-Config", "X-Registry-Auth"];

/// Docker's `sendBody`: the body of a request or response is shown to the
/// plugins only when its `Content-Type` parses (Go's `mime.ParseMediaType`)
/// to `application/json` and the URI is not the `/auth` endpoint (whose
/// body holds registry credentials).
pub fn shows_body(request_uri: &str, headers: &HeaderMap) -> bool {
    // Docker shows nothing for a URI Go's `url.Parse` refuses (a bad
    // escape in the path, host, user information or fragment; a relative
    // URI whose first segment holds a colon), and judges the auth endpoint
    // on Go's decoded `Path`.
    let Ok(url) = GoUrl::parse(request_uri) else {
        return false;
    };
    if is_auth_endpoint(url.path()) {
        return false;
    }
    // Go's `Header.Get`: the first value; an absent header is "".
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    media_type(&content_type).as_deref() == Some("application/json")
}

/// Go's `Request.RequestURI`: the request-target as the client sent it
/// (`/v1.41/info?x=1`, or an absolute form), the path and query alone over
/// HTTP/2.
pub(crate) fn request_uri(head: &http::request::Parts) -> String {
    if head.version >= Version::HTTP_2 {
        head.uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string)
    } else {
        head.uri.to_string()
    }
}

/// Docker's `isAuthEndpoint`: the path matches `^[^/]*/(v\d[\d.]*/)?auth`
/// (so `/auth`, `/v1.41/auth`, and anything starting with them).
fn is_auth_endpoint(path: &str) -> bool {
    let Some((_, after_slash)) = path.split_once('/') else {
        return false;
    };
    if after_slash.starts_with("auth") {
        return true;
    }
    let Some(version) = after_slash.strip_prefix('v') else {
        return false;
    };
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let rest = version.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    rest.strip_prefix('/')
        .is_some_and(|rest| rest.starts_with("auth"))
}

/// Go's `mime.ParseMediaType(v)`, returning only the media type: `None`
/// wherever Go returns an error (no type, a malformed or duplicated
/// parameter), so such a body is never shown, as in Docker.
fn media_type(v: &str) -> Option<String> {
    let (base, mut params) = match v.find(';') {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let media = base.to_lowercase().trim().to_owned();
    let (kind, rest) = token(&media);
    if kind.is_empty() {
        return None;
    }
    if !rest.is_empty() {
        let (sub, rest) = token(rest.strip_prefix('/')?);
        if sub.is_empty() || !rest.is_empty() {
            return None;
        }
    }
    let mut seen = std::collections::HashSet::new();
    loop {
        params = params.trim_start();
        if params.is_empty() {
            return Some(media);
        }
        match media_param(params) {
            Some((key, rest)) => {
                if !seen.insert(key) {
                    return None;
                }
                params = rest;
            }
            // A trailing `;` is allowed; anything else is an error.
            None if params.trim() == ";" => return Some(media),
            None => return None,
        }
    }
}

fn is_token_char(c: char) -> bool {
    c > ' ' && c < '\u{7f}' && !"()<>@,;:\\\"/[]?=".contains(c)
}

fn token(s: &str) -> (&str, &str) {
    let end = s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// One `; key=value` parameter: the lowercased key and what follows it.
fn media_param(s: &str) -> Option<(String, &str)> {
    let rest = s.trim_start().strip_prefix(';')?.trim_start();
    let (key, rest) = token(rest);
    if key.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let rest = if let Some(quoted) = rest.strip_prefix('"') {
        // A quoted string: `\` takes the next character literally; a CR or
        // LF, or no closing quote, is an error.
        let mut escaped = false;
        let mut value_len = 0usize;
        let mut end = None;
        for (i, c) in quoted.char_indices() {
            if escaped {
                escaped = false;
                value_len += 1;
            } else if c == '"' {
                end = Some(i + 1);
                break;
            } else if c == '\\' {
                escaped = true;
            } else if c == '\r' || c == '\n' {
                return None;
            } else {
                value_len += 1;
            }
        }
        let end = end?;
        // Go treats an empty value as a parse failure.
        if value_len == 0 {
            return None;
        }
        &quoted[end..]
    } else {
        let (value, rest) = token(rest);
        if value.is_empty() {
            return None;
        }
        rest
    };
    Some((key.to_lowercase(), rest))
}

/// Docker's `headers`: one value per name (the last), names as Go's
/// server spells them (`Content-Type`), credentials left out. Go's server
/// moves `Host` out of the header map and drops `Transfer-Encoding`, so
/// neither is shown.
pub(crate) fn flatten_headers(headers: &HeaderMap, request: bool) -> BTreeMap<String, String> {
    let mut flat = BTreeMap::new();
    for (name, value) in headers {
        let name = canonical_header_key(name.as_str());
        if HIDDEN_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(&name))
            || (request && (name == "Host" || name == "Transfer-Encoding"))
        {
            continue;
        }
        flat.insert(name, String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    flat
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: the first letter and every
/// letter after a `-` upper case, the rest lower case; a name with a byte
/// that is not a header token character is left as it is.
fn canonical_header_key(name: &str) -> String {
    if !name.chars().all(is_token_char) {
        return name.to_owned();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// The one `Content-Length` (`1*DIGIT`), if any.
pub(crate) fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, AuthzError> {
    let lengths: Vec<_> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    match lengths.as_slice() {
        [] => Ok(None),
        [one] => std::str::from_utf8(one.as_bytes())
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| AuthzError::framing("Content-Length is not a number")),
        _ => Err(AuthzError::framing(
            "more than one Content-Length header is set",
        )),
    }
}

/// The framing rule (beyond Docker): the body the caller hands over must be
/// the one its headers announce, or the plugins would judge one body while
/// the handler reads another (CVE-2024-41110).
pub(crate) fn check_framing(
    version: Version,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Result<(), AuthzError> {
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    let declared = declared_length(headers)?;
    if chunked && declared.is_some() {
        return Err(AuthzError::framing(
            "both Transfer-Encoding and Content-Length are set",
        ));
    }
    let Some(body) = body else {
        return Ok(());
    };
    let actual = body.len() as u64;
    match declared {
        Some(declared) if declared != actual => Err(AuthzError::framing(format!(
            "Content-Length says {declared} bytes but the body has {actual}"
        ))),
        None if actual > 0 && !chunked && version <= Version::HTTP_11 => Err(AuthzError::framing(
            format!("a body of {actual} bytes came without Content-Length or chunked framing"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn json_bodies_are_shown_and_nothing_else() {
        // Docker's sendBody: mime.ParseMediaType(Content-Type) == application/json
        let shown = |ct: &str| {
            shows_body(
                "/v1.41/containers/create",
                &headers(&[("content-type", ct)]),
            )
        };
        for ct in [
            "application/json",
            "Application/JSON",
            " application/json ",
            "application/json; charset=utf-8",
            "application/json;charset=\"utf-8\"",
            "application/json;",
            "application/json; a=1; b=\"x\\\"y\"",
        ] {
            assert!(shown(ct), "{ct:?}");
        }
        for ct in [
            "",
            "text/plain",
            "application/x-tar",
            "application/json+x",
            "application/jsonx",
            "application/json/x",
            "application/json; charset",
            "application/json; charset=",
            "application/json; a=1; a=2",
            "application/json; charset=\"utf-8",
            "application/json; =x",
            "application/json x",
            "application/vnd.docker.raw-stream",
        ] {
            assert!(!shown(ct), "{ct:?}");
        }
        assert!(!shows_body("/v1.41/containers/create", &HeaderMap::new()));
    }

    #[test]
    fn the_auth_endpoint_never_shows_its_body() {
        // Docker's isAuthEndpoint: ^[^/]*/(v\d[\d.]*/)?auth on the decoded path
        let json = headers(&[("content-type", "application/json")]);
        for uri in [
            "/auth",
            "/v1.41/auth",
            "/v1/auth",
            "/v1.41/authz?x=1",
            "/%61uth",
            "/v1.41/%61uth",
            "http://docker/v1.41/auth",
            "/auth%zz",
            "/v1.41/info\u{1}",
        ] {
            assert!(!shows_body(uri, &json), "{uri:?}");
        }
        for uri in [
            "/v1.41/containers/create",
            "/info",
            "/v1.41/x/auth",
            "/va/auth",
            "/v/auth",
            "/v1.41/containers/create?name=auth",
            "http://docker/v1.41/info",
        ] {
            assert!(shows_body(uri, &json), "{uri:?}");
        }
    }

    #[test]
    fn paths_go_cannot_parse_never_show_their_body() {
        // Go's url.Parse fails on a `%` not followed by two hex digits, and
        // sendBody then shows nothing (found by the authz_body_rules fuzz
        // target: `%+1` passed as an escape).
        let json = headers(&[("content-type", "application/json")]);
        for uri in [
            "/v1.41/containers/%+1/start",
            "/v1.41/containers/%-1/start",
            "/v1.41/containers/%zz",
            "/v1.41/containers/%4",
            "/v1.41/containers/%",
        ] {
            assert!(!shows_body(uri, &json), "{uri:?}");
        }
        assert!(shows_body("/v1.41/containers/%2B1/start", &json));
    }

    #[test]
    fn authorities_go_cannot_parse_never_show_their_body() {
        // Finding 10 of the authz_body_rules fuzz target: `//%eeee%%eeeeee`
        // has the host `%eeee%%eeeeee`, whose `%%e` Go refuses, so Docker's
        // sendBody shows nothing; we skipped the authority unchecked.
        let json = headers(&[("content-type", "application/json")]);
        for uri in [
            "//%eeee%%eeeeee",
            "//docker%41/v1.41/containers/create",
            "http://docker%zz/v1.41/containers/create",
            "http://dock er/v1.41/containers/create",
            "http://docker:x/v1.41/containers/create",
            "http://[::1/v1.41/containers/create",
            "http://[::1%2F]/v1.41/containers/create",
            "http://us er@docker/v1.41/containers/create",
            "http://u%zz@docker/v1.41/containers/create",
            "http://docker/v1.41/containers/create#%zz",
        ] {
            assert!(!shows_body(uri, &json), "{uri:?}");
        }
        for uri in [
            "//docker/v1.41/containers/create",
            "http://u:p%41@docker:2375/v1.41/containers/create?x=%zz#top",
            "http://[fe80::1%25eth0]:2375/v1.41/containers/create",
            "//%C3%BC/v1.41/containers/create",
        ] {
            assert!(shows_body(uri, &json), "{uri:?}");
        }
        // Behind a host Go accepts, the auth endpoint stays hidden.
        assert!(!shows_body("//docker/v1.41/auth", &json));
    }

    #[test]
    fn relative_uris_go_refuses_never_show_their_body() {
        // Go: "first path segment in URL cannot contain colon" and
        // "missing protocol scheme".
        let json = headers(&[("content-type", "application/json")]);
        for uri in ["1a:b", "v1_41:x/containers/create", ":foo", ":"] {
            assert!(!shows_body(uri, &json), "{uri:?}");
        }
        // A scheme with no `/` after it is opaque: Go's Path is empty and
        // the body is shown whatever follows.
        assert!(shows_body("docker:%zz", &json));
        assert!(shows_body("v1.41/x:y", &json));
    }

    #[test]
    fn request_uris_are_gos() {
        // Docker's RequestUri is r.RequestURI
        let head = |uri: &str, version| {
            let (mut head, ()) = http::Request::get(uri).body(()).unwrap().into_parts();
            head.version = version;
            head
        };
        for (uri, version, expected) in [
            ("/v1.41/info?x=1", Version::HTTP_11, "/v1.41/info?x=1"),
            (
                "http://docker/v1.41/info",
                Version::HTTP_11,
                "http://docker/v1.41/info",
            ),
            (
                "https://docker/v1.41/info?a",
                Version::HTTP_2,
                "/v1.41/info?a",
            ),
        ] {
            assert_eq!(request_uri(&head(uri, version)), expected);
        }
    }

    #[test]
    fn headers_are_flattened_as_go_spells_them() {
        // Docker's headers(): last value wins, credentials hidden, Go's canonical names
        let h = headers(&[
            ("content-type", "application/json"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("authorization", "Basic c2VjcmV0"),
            ("x-registry-auth", "secret"),
            ("X-Registry-Config", "secret"),
            ("host", "docker"),
            ("transfer-encoding", "chunked"),
            ("user-agent", "Docker-Client/20.10"),
            ("www-authenticate", "x"),
        ]);
        let flat = flatten_headers(&h, true);
        let expected: BTreeMap<String, String> = [
            ("Content-Type", "application/json"),
            ("User-Agent", "Docker-Client/20.10"),
            ("Www-Authenticate", "x"),
            ("X-Multi", "b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(flat, expected);
        // Responses keep Host-like names (Go only strips them from requests).
        assert!(flatten_headers(&headers(&[("host", "h")]), false).contains_key("Host"));
    }

    #[test]
    fn framing_must_match_the_body() {
        // beyond Docker: CVE-2024-41110 and friends
        let v = Version::HTTP_11;
        let cl = |n: &str| headers(&[("content-length", n)]);
        assert!(check_framing(v, &cl("7"), Some(b"{\"a\":1}")).is_ok());
        assert!(check_framing(v, &HeaderMap::new(), Some(b"")).is_ok());
        assert!(check_framing(v, &cl("0"), Some(b"")).is_ok());
        let chunked = headers(&[("transfer-encoding", "chunked")]);
        assert!(check_framing(v, &chunked, Some(b"{}")).is_ok());
        // HTTP/2 has no chunked framing: a body without a length is normal.
        assert!(check_framing(Version::HTTP_2, &HeaderMap::new(), Some(b"{}")).is_ok());
        for (h, body, text) in [
            (
                cl("0"),
                &b"{}"[..],
                "Content-Length says 0 bytes but the body has 2",
            ),
            (
                cl("1"),
                b"{}",
                "Content-Length says 1 bytes but the body has 2",
            ),
            (
                cl("9"),
                b"{}",
                "Content-Length says 9 bytes but the body has 2",
            ),
            (cl("x"), b"{}", "Content-Length is not a number"),
            (cl("+2"), b"{}", "Content-Length is not a number"),
            (
                headers(&[("content-length", "2"), ("content-length", "2")]),
                b"{}",
                "more than one Content-Length header is set",
            ),
            (
                headers(&[("content-length", "2"), ("transfer-encoding", "chunked")]),
                b"{}",
                "both Transfer-Encoding and Content-Length are set",
            ),
            (
                HeaderMap::new(),
                b"{}",
                "a body of 2 bytes came without Content-Length or chunked framing",
            ),
        ] {
            let err = check_framing(v, &h, Some(body)).unwrap_err();
            assert!(err.is_body_rule());
            assert_eq!(
                err.to_string(),
                format!("request refused before authorization: {text}")
            );
        }
    }
}
