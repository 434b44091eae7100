//! Fuzz target bodies for the engine side (feature `fuzzing`), shared by
//! `fuzz/` and the corpus replay test: the authorization chain's pure body
//! rules, which decide what the plugins are shown and whether a request
//! may go on at all.
//!
//! Each `pub fn name(data: &[u8])` panics when an invariant breaks;
//! [`TARGETS`] lists them all so none goes unreplayed.
//!
//! **What it must never do:** IO, or reach the chain's plugins: only the
//! pure rules are driven here.

use http::{HeaderMap, HeaderName, HeaderValue, Version, header};

use crate::authz::rules::{check_framing, declared_length, flatten_headers, shows_body};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` file and
/// corpus directory.
pub const TARGETS: &[(&str, Target)] = &[("authz_body_rules", authz_body_rules)];

/// The headers Docker never shows a plugin, whatever their case.
const HIDDEN: [&str; 3] = ["authorization", "x-registry-config", "x-registry-auth"];

/// One request as the target reads it from the fuzzer's bytes.
struct Input {
    version: Version,
    uri: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

/// The first byte holds flags: bits 0–1 the HTTP version (1.0, 1.1, 2,
/// 1.1), bit 2 whether a body is given, bit 3 a `Transfer-Encoding:
/// chunked` header. Then lines: the request URI, the `Content-Type` value,
/// `name:value` headers (lines that are no valid header are skipped) up
/// to an empty line, and the body after it.
fn parse_input(data: &[u8]) -> Option<Input> {
    let (&flags, rest) = data.split_first()?;
    let version = match flags & 3 {
        0 => Version::HTTP_10,
        2 => Version::HTTP_2,
        _ => Version::HTTP_11,
    };
    let (head, body) = match find(rest, b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let uri = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let mut headers = HeaderMap::new();
    if let Some(ct) = lines.next().and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.append(header::CONTENT_TYPE, ct);
    }
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(&line[..colon]);
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    if flags & 8 != 0 {
        headers.append(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
    }
    Some(Input {
        version,
        uri,
        headers,
        body: (flags & 4 != 0).then(|| body.to_vec()),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The authorization chain's body rules on any request head and body:
///
/// - `shows_body` never panics and ignores the ASCII case of the
///   `Content-Type` (Go lowercases the media type and parameter names);
/// - a body is never shown for a path Go's `url.Parse` refuses (a `%` not
///   followed by two hex digits) nor for the `/auth` endpoint, however it
///   is spelled (`/auth…`, `/v1.41/auth…`, percent-encoded), so registry
///   credentials never reach a plugin;
/// - flattened request headers hold no credential header, no `Host` and no
///   `Transfer-Encoding`, each name spelled as Go's server does
///   (`Content-Type`) with the value last given for it;
/// - `check_framing` lets a body through only as its headers announce it:
///   never both `Transfer-Encoding` and `Content-Length`; a
///   `Content-Length` equal to the body's length; over HTTP/1.x, a body
///   without either header only when it is empty. A head it refuses is
///   refused whatever the body.
pub fn authz_body_rules(data: &[u8]) {
    let Some(input) = parse_input(data) else {
        return;
    };
    check_shows_body(&input);
    check_flattened(&input.headers);
    check_framing_rule(&input);
}

fn check_shows_body(input: &Input) {
    let Input { uri, headers, .. } = input;
    let shown = shows_body(uri, headers);
    for case in [<[u8]>::to_ascii_uppercase, <[u8]>::to_ascii_lowercase] {
        let mut h = headers.clone();
        if let Some(ct) = headers.get(header::CONTENT_TYPE) {
            let Ok(v) = HeaderValue::from_bytes(&case(ct.as_bytes())) else {
                unreachable!("changing ASCII case keeps a header value valid");
            };
            h.insert(header::CONTENT_TYPE, v);
        }
        assert_eq!(
            shows_body(uri, &h),
            shown,
            "the Content-Type's case matters"
        );
    }
    // A URI that is a path alone: the rules must agree with Go's
    // `url.Parse` on its escapes and with Docker's `isAuthEndpoint`.
    if uri.starts_with('/') && !uri.contains(['?', '#']) && shown {
        let decoded = go_unescape_path(uri.as_bytes())
            .unwrap_or_else(|| panic!("a body is shown for {uri:?}, which Go cannot parse"));
        assert!(
            !is_auth_path(&decoded),
            "the /auth body is shown for {uri:?}"
        );
    }
    let json = {
        let mut h = headers.clone();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    };
    let tail = uri.trim_start_matches('/');
    for auth in [
        "/auth",
        "/v1.41/auth",
        "/v1/auth",
        "/%61uth",
        "/v1.41/%61%75th",
    ] {
        let uri = format!("{auth}{tail}");
        assert!(
            !shows_body(&uri, &json),
            "the /auth body is shown for {uri:?}"
        );
    }
}

/// Go's `url.PathUnescape` as `url.Parse` applies it to a path: every `%`
/// takes exactly two hex digits.
fn go_unescape_path(path: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' {
            let hi = hex(*path.get(i + 1)?)?;
            let lo = hex(*path.get(i + 2)?)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
            i += 3;
        } else {
            out.push(path[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Docker's `^[^/]*/(v\d[\d.]*/)?auth` on a decoded path.
fn is_auth_path(path: &[u8]) -> bool {
    let Some(slash) = path.iter().position(|&b| b == b'/') else {
        return false;
    };
    let after = &path[slash + 1..];
    if after.starts_with(b"auth") {
        return true;
    }
    match after.split_first() {
        Some((b'v', rest)) if rest.first().is_some_and(u8::is_ascii_digit) => {
            let end = rest
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                .unwrap_or(rest.len());
            rest[end..].starts_with(b"/auth")
        }
        _ => false,
    }
}

fn check_flattened(headers: &HeaderMap) {
    for request in [true, false] {
        let flat = flatten_headers(headers, request);
        for (name, value) in &flat {
            let lower = name.to_ascii_lowercase();
            assert!(
                !HIDDEN.contains(&lower.as_str()),
                "credential header {name} is shown"
            );
            if request {
                assert!(
                    lower != "host" && lower != "transfer-encoding",
                    "{name} is shown for a request"
                );
            }
            assert!(is_go_canonical(name), "{name:?} is not spelled as Go does");
            let Some(last) = headers.get_all(lower.as_str()).iter().next_back() else {
                panic!("{name} is shown but was never sent");
            };
            assert_eq!(
                value.as_bytes(),
                String::from_utf8_lossy(last.as_bytes()).as_bytes(),
                "{name} does not show the value last given"
            );
        }
        let names = headers.keys_len();
        assert!(flat.len() <= names, "more names shown than sent");
        let hidden_sent = headers
            .keys()
            .filter(|n| {
                HIDDEN.contains(&n.as_str())
                    || (request && (*n == header::HOST || *n == header::TRANSFER_ENCODING))
            })
            .count();
        assert_eq!(flat.len(), names - hidden_sent, "a header went missing");
    }
}

/// Go's `CanonicalMIMEHeaderKey` output: upper case at the start and
/// after each `-`, lower case elsewhere.
fn is_go_canonical(name: &str) -> bool {
    let mut upper = true;
    name.chars().all(|c| {
        let ok = if upper {
            !c.is_ascii_lowercase()
        } else {
            !c.is_ascii_uppercase()
        };
        upper = c == '-';
        ok
    })
}

fn check_framing_rule(input: &Input) {
    let Input {
        version,
        headers,
        body,
        ..
    } = input;
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    let declared = declared_length(headers);
    let head_only = check_framing(*version, headers, None);
    if chunked && headers.contains_key(header::CONTENT_LENGTH) {
        assert!(
            head_only.is_err(),
            "both Transfer-Encoding and Content-Length"
        );
    }
    if let Ok(Some(n)) = declared {
        let sent: Vec<_> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
        let [one] = sent.as_slice() else {
            panic!("one length taken from {} headers", sent.len());
        };
        let digits = one.as_bytes();
        assert!(
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
            "{one:?} taken as a length"
        );
        let significant = std::str::from_utf8(digits)
            .unwrap_or_default()
            .trim_start_matches('0');
        let significant = if significant.is_empty() {
            "0"
        } else {
            significant
        };
        assert_eq!(significant, n.to_string(), "{one:?} read as {n}");
    }
    if declared.is_err() {
        assert!(head_only.is_err(), "a bad Content-Length is let through");
    }
    let Some(body) = body else {
        return;
    };
    let with_body = check_framing(*version, headers, Some(body));
    if head_only.is_err() {
        assert!(
            with_body.is_err(),
            "a refused head is let through with a body"
        );
    }
    if with_body.is_ok() {
        let len = body.len() as u64;
        match declared {
            Ok(Some(n)) => assert_eq!(n, len, "the body is not the one announced"),
            Ok(None) if *version <= Version::HTTP_11 && !chunked => {
                assert_eq!(len, 0, "an unframed body is let through");
            }
            Ok(None) => {}
            Err(_) => panic!("a bad Content-Length is let through"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_unescapes_only_two_hex_digits() {
        assert_eq!(go_unescape_path(b"/a%2Fb%41"), Some(b"/a/bA".to_vec()));
        for bad in [
            &b"/%"[..],
            b"/%4",
            b"/%+1",
            b"/%-1",
            b"/%zz",
            b"/%4\xc3\xa9",
        ] {
            assert_eq!(go_unescape_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn auth_paths_as_docker_matches_them() {
        for p in ["/auth", "/authx", "/v1.41/auth", "/v1/auth/x", "x/auth"] {
            assert!(is_auth_path(p.as_bytes()), "{p}");
        }
        for p in ["/", "/v/auth", "/va/auth", "/x/auth", "auth", "/v1.41auth"] {
            assert!(!is_auth_path(p.as_bytes()), "{p}");
        }
    }
}
