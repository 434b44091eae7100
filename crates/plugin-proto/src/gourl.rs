//! Go's `net/url.Parse`, the one place this workspace reads a URL as Docker
//! does: plugin addresses (which Docker dials through `url.Parse`) and the
//! request URIs of the authorization chain (whose body Docker's `sendBody`
//! shows to plugins only when `url.Parse` accepts the URI).
//!
//! The rules are those of Go 1.19, the Go of the Docker build the behaviour
//! contract was verified against. Later Go releases refuse a few more hosts
//! (an IP literal in brackets must be an IPv6 address, since Go 1.25.2;
//! `http` and `https` hosts take one colon, since Go 1.26); Go 1.19 accepts
//! them, and so does this module.
//!
//! **What it must never do:** accept what Go refuses or refuse what Go
//! accepts, or report another error than Go's for the same text. Stricter
//! rules (plugin addresses refuse some hosts Go accepts) belong to the
//! caller, on top of this parse.

use crate::goquote::{quote, quote_bytes};

/// A URL as Go's `url.Parse` reads it: the parts Docker uses, decoded as Go
/// decodes them.
///
/// ```
/// use plugin_proto::GoUrl;
///
/// let url = GoUrl::parse("http://docker/v1.41/containers%2Fjson?all=1")?;
/// assert_eq!(url.scheme(), "http");
/// assert_eq!(url.host(), "docker");
/// assert_eq!(url.path(), "/v1.41/containers/json");
///
/// // Go refuses a bad escape in the host, so Docker shows no body for it.
/// let err = GoUrl::parse("//%eeee%%eeeeee").unwrap_err();
/// assert_eq!(err.to_string(), r#"parse "//%eeee%%eeeeee": invalid URL escape "%%e""#);
/// # Ok::<(), plugin_proto::GoUrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoUrl {
    scheme: String,
    opaque: Option<String>,
    authority: Option<Authority>,
    path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    /// The host and port as written (after any `user@`).
    raw_host: String,
    /// Go's `URL.Host`: `raw_host` unescaped.
    host: String,
}

/// Go's `*url.Error` for `Op` `"parse"`: the URL as Go quotes it and the
/// reason (`invalid URL escape "%zz"`, `net/url: invalid userinfo`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("parse {}: {reason}", quote(.url))]
pub struct GoUrlError {
    url: String,
    reason: String,
    colon_in_first_segment: bool,
}

impl GoUrlError {
    /// The URL Go names in the error: the text parsed, without its
    /// fragment unless the fragment is what Go refused.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Go's reason, the text after `parse "…": `.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// `true` for a relative URL whose first segment holds a colon
    /// (`127.0.0.1:8080`, Go's `first path segment in URL cannot contain
    /// colon`).
    pub(crate) fn is_colon_in_first_segment(&self) -> bool {
        self.colon_in_first_segment
    }
}

const FIRST_SEGMENT_COLON: &str = "first path segment in URL cannot contain colon";

impl GoUrl {
    /// Parses `raw` as Go's `url.Parse(raw)` does, with Go's error texts.
    pub fn parse(raw: &str) -> Result<GoUrl, GoUrlError> {
        let (before_fragment, fragment) = match raw.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (raw, None),
        };
        let url = parse_without_fragment(before_fragment).map_err(|reason| GoUrlError {
            url: before_fragment.to_owned(),
            colon_in_first_segment: reason == FIRST_SEGMENT_COLON,
            reason,
        })?;
        // Go checks the fragment's escapes (and nothing else: not even
        // control characters) after the rest has parsed.
        if let Some(fragment) = fragment {
            unescape(fragment, Mode::Fragment).map_err(|reason| GoUrlError {
                url: raw.to_owned(),
                reason,
                colon_in_first_segment: false,
            })?;
        }
        Ok(url)
    }

    /// The scheme, lower-cased (`""` for a relative URL).
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// What follows `scheme:` when it does not start with `/`
    /// (`localhost:8080` has the opaque part `8080`), query removed.
    pub fn opaque(&self) -> Option<&str> {
        self.opaque.as_deref()
    }

    /// Go's `URL.Host`: the authority's `host[:port]`, unescaped (invalid
    /// UTF-8 shown as U+FFFD); `""` when there is no authority.
    pub fn host(&self) -> &str {
        self.authority.as_ref().map_or("", |a| &a.host)
    }

    /// Go's `URL.Path`: the path, unescaped (invalid UTF-8 shown as
    /// U+FFFD); `""` for an opaque URL.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The authority's `host[:port]` as written, if the URL has an
    /// authority (`//…`).
    pub(crate) fn raw_host(&self) -> Option<&str> {
        self.authority.as_ref().map(|a| a.raw_host.as_str())
    }
}

/// Go's `parse(rawURL, false)`: errors are Go's reason texts.
fn parse_without_fragment(raw: &str) -> Result<GoUrl, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = GoUrl {
        scheme: String::new(),
        opaque: None,
        authority: None,
        path: String::new(),
    };
    if raw == "*" {
        url.path = raw.to_owned();
        return Ok(url);
    }
    let (scheme, rest) = split_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    // The query is kept raw by Go and never checked.
    let mut rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = Some(rest.to_owned());
            return Ok(url);
        }
        // `cache_object:foo/bar` must not read as a path (RFC 3986 §3.3).
        if rest.split('/').next().is_some_and(|s| s.contains(':')) {
            return Err(FIRST_SEGMENT_COLON.into());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = after.find('/').map_or((after, ""), |i| after.split_at(i));
        url.authority = Some(parse_authority(authority)?);
        rest = path;
    }
    url.path = lossy(unescape(rest, Mode::Path)?);
    Ok(url)
}

/// Go's `getScheme`: `[a-zA-Z][a-zA-Z0-9+-.]*` before the first `:`.
fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme".into()),
            ':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseAuthority`: the host after the last `@` is checked first,
/// then the user information before it.
fn parse_authority(authority: &str) -> Result<Authority, String> {
    let (userinfo, raw_host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    let host = parse_host(raw_host)?;
    if let Some(userinfo) = userinfo {
        if !userinfo.chars().all(userinfo_char_ok) {
            return Err("net/url: invalid userinfo".into());
        }
        // The name and the password are unescaped apart, name first.
        let (name, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        unescape(name, Mode::UserInfo)?;
        unescape(password, Mode::UserInfo)?;
    }
    Ok(Authority {
        raw_host: raw_host.to_owned(),
        host,
    })
}

/// Go's `validUserinfo` for one character (RFC 3986 §3.2.1, plus `@`).
fn userinfo_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c)
}

/// Go's `parseHost`: a port must be digits; an IP literal's zone
/// (`%25…`) may escape more than the rest of a host.
fn parse_host(host: &str) -> Result<String, String> {
    let port_ok = |colon_port: &str| {
        colon_port.is_empty()
            || colon_port
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
    };
    let invalid_port = |colon_port: &str| format!("invalid port {} after host", quote(colon_port));
    if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        let colon_port = &host[close + 1..];
        if !port_ok(colon_port) {
            return Err(invalid_port(colon_port));
        }
        if let Some(zone) = host[..close].find("%25") {
            let mut out = unescape(&host[..zone], Mode::Host)?;
            out.extend(unescape(&host[zone..close], Mode::Zone)?);
            out.extend(unescape(&host[close..], Mode::Host)?);
            return Ok(lossy(out));
        }
    } else if let Some(colon) = host.rfind(':')
        && !port_ok(&host[colon..])
    {
        return Err(invalid_port(&host[colon..]));
    }
    Ok(lossy(unescape(host, Mode::Host)?))
}

/// The part of a URL being unescaped, which decides what Go lets through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserInfo,
    Fragment,
}

/// Go's `unescape`: every `%` takes two hex digits. In a host, an escape
/// may only encode a non-ASCII byte or `%` (`%25`), and ASCII characters
/// Go would escape are refused; in a zone, an escape may encode what a
/// host may hold unescaped, or a space. The first fault in the text is
/// the one reported.
fn unescape(s: &str, mode: Mode) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            if matches!(mode, Mode::Host | Mode::Zone) && b.is_ascii() && !host_byte_ok(b) {
                return Err(format!(
                    "invalid character {} in host name",
                    quote(&char::from(b).to_string())
                ));
            }
            out.push(b);
            i += 1;
            continue;
        }
        let escape = &bytes[i..bytes.len().min(i + 3)];
        let bad_escape = || format!("invalid URL escape {}", quote_bytes(escape));
        let [_, hi, lo] = *escape else {
            return Err(bad_escape());
        };
        let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo)) else {
            return Err(bad_escape());
        };
        let value = hi << 4 | lo;
        let percent_sign = escape == b"%25";
        let refused = match mode {
            Mode::Host => hi < 8 && !percent_sign,
            Mode::Zone => !percent_sign && value != b' ' && !host_byte_ok(value),
            Mode::Path | Mode::UserInfo | Mode::Fragment => false,
        };
        if refused {
            return Err(bad_escape());
        }
        out.push(value);
        i += 3;
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The bytes Go's `shouldEscape(c, encodeHost)` leaves alone: letters,
/// digits, `-._~`, the sub-delimiters, and `:[]<>"` (ports, IP literals,
/// and characters that could not be escaped anyway). Non-ASCII bytes are
/// not asked about.
fn host_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]<>\"".contains(&b)
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error text of `url.Parse(s)`, or its host and path.
    fn parse(s: &str) -> Result<(String, String), String> {
        GoUrl::parse(s)
            .map(|u| (u.host().to_owned(), u.path().to_owned()))
            .map_err(|e| e.to_string())
    }

    fn refused(s: &str, reason: &str) {
        let quoted = quote(s.split_once('#').map_or(s, |(u, _)| u));
        assert_eq!(parse(s), Err(format!("parse {quoted}: {reason}")), "{s:?}");
    }

    #[test]
    fn paths_are_unescaped_and_queries_left_alone() {
        assert_eq!(
            parse("/v1.41/containers/a%2Fb/json?x=%zz"),
            Ok((String::new(), "/v1.41/containers/a/b/json".into()))
        );
        assert_eq!(parse("*"), Ok((String::new(), "*".into())));
        assert_eq!(parse("///x"), Ok((String::new(), "///x".into())));
        refused("/v1.41/%zz", "invalid URL escape \"%zz\"");
        refused("/v1.41/%+1", "invalid URL escape \"%+1\"");
        refused("/v1.41/%4", "invalid URL escape \"%4\"");
        // An escape that cuts a character is quoted byte by byte, as Go does.
        refused("/%zé", "invalid URL escape \"%z\\xc3\"");
    }

    #[test]
    fn an_authority_with_a_bad_escape_is_refused() {
        // Finding 10 of the authz_body_rules fuzz target: Docker shows no
        // body for this URI, because Go cannot parse its host.
        refused("//%eeee%%eeeeee", "invalid URL escape \"%%e\"");
        refused("http://docker%zz/v1.41/info", "invalid URL escape \"%zz\"");
    }

    #[test]
    fn hosts_may_escape_only_non_ascii_bytes_and_the_percent_sign() {
        refused("//a%41/x", "invalid URL escape \"%41\"");
        refused("//a%2F/x", "invalid URL escape \"%2F\"");
        assert_eq!(parse("//a%25b/x"), Ok(("a%b".into(), "/x".into())));
        assert_eq!(parse("//b%C3%BC/x"), Ok(("bü".into(), "/x".into())));
        // The first fault in the host is reported.
        refused("//a%41 /x", "invalid URL escape \"%41\"");
        refused("//a %41/x", "invalid character \" \" in host name");
    }

    #[test]
    fn hosts_hold_only_characters_go_leaves_unescaped() {
        for (s, bad) in [("//a b/x", " "), ("//a{b}/x", "{"), ("//a\\b", "\\")] {
            refused(
                s,
                &format!(
                    "invalid character \"{}\" in host name",
                    bad.replace('\\', "\\\\")
                ),
            );
        }
        // Brackets, colons and quotes are let through, as Go 1.19 does.
        assert_eq!(parse("//a[b]/x"), Ok(("a[b]".into(), "/x".into())));
        assert_eq!(parse("//a:b:1/x"), Ok(("a:b:1".into(), "/x".into())));
        assert_eq!(parse("//h:/x"), Ok(("h:".into(), "/x".into())));
    }

    #[test]
    fn ports_must_be_digits() {
        refused("//h:x/y", "invalid port \":x\" after host");
        refused("//h:1%41/x", "invalid port \":1%41\" after host");
        refused("http://[::1]%41/x", "invalid port \"%41\" after host");
        refused("//[a/b", "missing ']' in host");
        // Go looks for the last `]`.
        assert_eq!(parse("//[::1]]/x"), Ok(("[::1]]".into(), "/x".into())));
    }

    #[test]
    fn ip_literal_zones_may_escape_what_a_host_may_hold() {
        assert_eq!(
            parse("//[fe80::1%25eth0]:1/x"),
            Ok(("[fe80::1%eth0]:1".into(), "/x".into()))
        );
        assert_eq!(
            parse("//[fe80::1%25%41%20]:1/x"),
            Ok(("[fe80::1%A ]:1".into(), "/x".into()))
        );
        refused("//[fe80::1%25%2F]:1/x", "invalid URL escape \"%2F\"");
        refused("//[::1%2F]/x", "invalid URL escape \"%2F\"");
    }

    #[test]
    fn user_information_is_checked_as_go_checks_it() {
        refused("//a b@h/x", "net/url: invalid userinfo");
        refused("//\u{fc}@h/x", "net/url: invalid userinfo");
        refused("//a%zz@h/x", "invalid URL escape \"%zz\"");
        // The name and the password are unescaped apart.
        refused("//a%:1@h/x", "invalid URL escape \"%\"");
        // The host comes first; `@` may appear in the user information.
        refused("//a b@h:x/", "invalid port \":x\" after host");
        assert_eq!(parse("//u:p@ss@h/x"), Ok(("h".into(), "/x".into())));
    }

    #[test]
    fn relative_urls_cannot_start_with_a_colon_segment() {
        refused("1a:b", FIRST_SEGMENT_COLON);
        refused("a_b:c/d", FIRST_SEGMENT_COLON);
        refused(":foo", "missing protocol scheme");
        assert!(
            GoUrl::parse("127.0.0.1:8080")
                .unwrap_err()
                .is_colon_in_first_segment()
        );
        assert_eq!(parse("a/b:c"), Ok((String::new(), "a/b:c".into())));
    }

    #[test]
    fn opaque_urls_have_no_path() {
        let url = GoUrl::parse("Localhost:%zz?q").unwrap();
        assert_eq!(url.scheme(), "localhost");
        assert_eq!(url.opaque(), Some("%zz"));
        assert_eq!(url.path(), "");
    }

    #[test]
    fn fragments_are_checked_last_and_named_in_the_error() {
        assert_eq!(
            GoUrl::parse("/x#%zz").unwrap_err().to_string(),
            "parse \"/x#%zz\": invalid URL escape \"%zz\""
        );
        assert_eq!(
            GoUrl::parse("/%zz#%zz").unwrap_err().to_string(),
            "parse \"/%zz\": invalid URL escape \"%zz\""
        );
        // Go checks control characters before the fragment only.
        refused("/x\u{1}#y", "net/url: invalid control character in URL");
        assert_eq!(parse("/x#\u{1}"), Ok((String::new(), "/x".into())));
        assert_eq!(parse("*#x"), Ok((String::new(), "*".into())));
    }
}
