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
/// - with a JSON `Content-Type`, a body is shown exactly when a model of
///   Go's `url.Parse` (written apart, below) accepts the URI, whatever its
///   form (path, query, fragment, scheme, authority with user information,
///   host and port), and Go's decoded path is not Docker's auth endpoint;
///   the `/auth` endpoint however it is spelled (`/auth…`, `/v1.41/auth…`,
///   percent-encoded) never shows its body, so registry credentials never
///   reach a plugin;
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
    let json = {
        let mut h = headers.clone();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    };
    // Any URI (path, query, fragment, scheme, authority): with a JSON body,
    // the rules must agree with the model of Go's `url.Parse` and with
    // Docker's `isAuthEndpoint` on Go's decoded path.
    let shown_as_json = shows_body(uri, &json);
    assert!(
        !shown || shown_as_json,
        "a body is shown for {uri:?} under its Content-Type but not as application/json"
    );
    match go_url_model::path(uri.as_bytes()) {
        None => assert!(
            !shown_as_json,
            "a body is shown for {uri:?}, which Go cannot parse"
        ),
        Some(path) if is_auth_path(&path) => {
            assert!(!shown_as_json, "the /auth body is shown for {uri:?}")
        }
        Some(_) => assert!(
            shown_as_json,
            "no body is shown for {uri:?}, which Go parses"
        ),
    }
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

/// A model of Go 1.19's `url.Parse`, reduced to what `sendBody` asks of
/// it: does the URI parse, and what is its decoded `Path`. It is written
/// apart from `plugin-proto`'s `GoUrl` on purpose (bytes, no error texts,
/// the scheme found by its first non-scheme byte) so that a slip in one
/// shows up as a disagreement.
mod go_url_model {
    /// Where a `%XX` escape or a raw byte stands, which decides what Go
    /// lets through.
    #[derive(Clone, Copy, PartialEq)]
    enum Part {
        /// Path, fragment and user information: any two hex digits.
        Free,
        /// A host: ASCII bytes Go would escape are refused, and escapes
        /// may only encode bytes from 0x80 up, or `%` (`%25`).
        Host,
        /// An IP literal's zone, from its `%25` on: escapes may encode a
        /// space or what a host may hold unescaped (no byte from 0x80 up).
        Zone,
    }

    /// `None` where Go's `url.Parse(uri)` returns an error, otherwise its
    /// `Path` (empty for an opaque URI such as `docker:x`).
    pub(super) fn path(uri: &[u8]) -> Option<Vec<u8>> {
        let (before, fragment) = cut(uri, b'#');
        let path = parse(before)?;
        if let Some(fragment) = fragment {
            decode(fragment, Part::Free)?;
        }
        Some(path)
    }

    fn cut(s: &[u8], at: u8) -> (&[u8], Option<&[u8]>) {
        match s.iter().position(|&b| b == at) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    }

    fn parse(uri: &[u8]) -> Option<Vec<u8>> {
        if uri.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return None;
        }
        if uri == b"*" {
            return Some(uri.to_vec());
        }
        // A scheme is `[A-Za-z][A-Za-z0-9+.-]*` followed by `:`; a `:` in
        // first place is an error.
        let end = uri
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || b"+-.".contains(b)))
            .unwrap_or(uri.len());
        let colon_ends_scheme = uri.get(end) == Some(&b':');
        if colon_ends_scheme && end == 0 {
            return None;
        }
        let has_scheme = colon_ends_scheme && uri[0].is_ascii_alphabetic();
        let rest = if has_scheme { &uri[end + 1..] } else { uri };
        let (mut rest, _query) = cut(rest, b'?');
        if rest.first() != Some(&b'/') {
            if has_scheme {
                return Some(Vec::new());
            }
            if cut(rest, b'/').0.contains(&b':') {
                return None;
            }
        }
        if rest.starts_with(b"//") && (has_scheme || !rest.starts_with(b"///")) {
            let after = &rest[2..];
            let slash = after.iter().position(|&b| b == b'/').unwrap_or(after.len());
            check_authority(&after[..slash])?;
            rest = &after[slash..];
        }
        decode(rest, Part::Free)
    }

    fn check_authority(authority: &[u8]) -> Option<()> {
        let (user, host) = match authority.iter().rposition(|&b| b == b'@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        check_host(host)?;
        if let Some(user) = user {
            // RFC 3986's userinfo characters, `@` and `%`; no other byte,
            // so no non-ASCII character.
            let ok = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:%@".contains(b);
            if !user.iter().all(ok) {
                return None;
            }
            let (name, password) = cut(user, b':');
            decode(name, Part::Free)?;
            decode(password.unwrap_or_default(), Part::Free)?;
        }
        Some(())
    }

    fn check_host(host: &[u8]) -> Option<()> {
        let port_ok = |p: &[u8]| match p.split_first() {
            None => true,
            Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
            Some(_) => false,
        };
        if host.first() == Some(&b'[') {
            let close = host.iter().rposition(|&b| b == b']')?;
            if !port_ok(&host[close + 1..]) {
                return None;
            }
            let zone = host[..close].windows(3).position(|w| w == b"%25");
            if let Some(zone) = zone {
                decode(&host[..zone], Part::Host)?;
                decode(&host[zone..close], Part::Zone)?;
                decode(&host[close..], Part::Host)?;
                return Some(());
            }
        } else if let Some(colon) = host.iter().rposition(|&b| b == b':')
            && !port_ok(&host[colon..])
        {
            return None;
        }
        decode(host, Part::Host).map(drop)
    }

    /// What a host may hold unescaped among ASCII bytes (Go's
    /// `shouldEscape(b, encodeHost)` is false).
    fn host_may_hold(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]<>\"".contains(&b)
    }

    fn decode(s: &[u8], part: Part) -> Option<Vec<u8>> {
        let hex = |b: u8| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        };
        let mut out = Vec::with_capacity(s.len());
        let mut rest = s;
        while let Some((&b, tail)) = rest.split_first() {
            if b != b'%' {
                if part != Part::Free && b < 0x80 && !host_may_hold(b) {
                    return None;
                }
                out.push(b);
                rest = tail;
                continue;
            }
            let (&[h, l], tail) = tail.split_first_chunk::<2>()?;
            let byte = hex(h)? * 16 + hex(l)?;
            let percent = byte == b'%';
            let allowed = match part {
                Part::Free => true,
                Part::Host => byte >= 0x80 || percent,
                Part::Zone => percent || byte == b' ' || host_may_hold(byte),
            };
            if !allowed {
                return None;
            }
            out.push(byte);
            rest = tail;
        }
        Some(out)
    }
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
    fn the_model_parses_as_go_1_19_does() {
        // Each case as Go 1.19's url.Parse answers it: the path, or None
        // for an error.
        let path = |s: &str| go_url_model::path(s.as_bytes());
        let some = |p: &str| Some(p.as_bytes().to_vec());
        for (uri, expected) in [
            ("/a%2Fb%41", some("/a/bA")),
            ("/%", None),
            ("/%4", None),
            ("/%+1", None),
            ("/%4\u{e9}", None),
            ("*", some("*")),
            ("*#%zz", None),
            ("/x#\u{1}", some("/x")),
            ("/x\u{1}", None),
            ("/x?%zz", some("/x")),
            ("1a:b", None),
            (":foo", None),
            ("a/b:c", some("a/b:c")),
            ("docker:%zz", some("")),
            ("///x", some("///x")),
            ("http:///x", some("/x")),
            ("//%eeee%%eeeeee", None),
            ("//a%41/x", None),
            ("//a%25b%C3%BC/x", some("/x")),
            ("//a b/x", None),
            ("//a[b]:1/x", some("/x")),
            ("//h:x/y", None),
            ("//[a/b", None),
            ("//[::1]]/x", some("/x")),
            ("http://[a]x:1/x", None),
            ("//[::1%2F]/x", None),
            ("//[fe80::1%25%41%20]:1/x", some("/x")),
            ("//[fe80::1%25%C3]/x", None),
            ("//[fe80::1%25 ]/x", None),
            ("//u:p@ss@h/x", some("/x")),
            ("//a b@h/x", None),
            ("//\u{fc}@h/x", None),
            ("//a%:1@h/x", None),
        ] {
            assert_eq!(path(uri), expected, "{uri:?}");
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
