//! Plugin addresses: what Docker dials, which HTTP scheme it speaks and
//! which `Host` header it sends (spec §1.6, §3.2 steps 3–6; checklist 17–20).
//!
//! Docker keeps the address as a string and only parses it with Go's
//! `url.Parse` when it builds a client, so a typo surfaces at activation,
//! after retries. We parse once, up front, and reject what Docker would
//! silently misread (see the divergence table): relative `unix://` paths,
//! scheme-less `host:port`, unknown schemes and missing hosts or paths.
//! What Docker accepts and means, we accept and mean the same way.
//!
//! This module never touches the file system or the network.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::VIRTUAL_HOST;
use crate::goquote::quote;
use crate::gourl::GoUrl;

/// The longest unix socket path Docker accepts, in bytes: the size of
/// `sockaddr_un.sun_path` on Linux (checklist 20).
pub const MAX_UNIX_PATH_LEN: usize = 108;

/// A parsed plugin address such as `unix:///run/docker/plugins/x.sock`,
/// `tcp://127.0.0.1:8080` or `https://example.com`.
///
/// The original text is kept verbatim (it is Docker's `Plugin.Addr`), and
/// [`Display`](fmt::Display) prints it unchanged, so parsing what an address
/// displays gives the same address back.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address {
    raw: String,
    endpoint: Endpoint,
    tls: bool,
    host_header: String,
}

/// Where a connection to the plugin goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A unix domain socket at an absolute path.
    Unix(PathBuf),
    /// A TCP `host:port` (the port defaults to 80, or 443 for `https://`,
    /// as Go's HTTP transport does).
    Tcp(String),
    /// A Windows named pipe such as `//./pipe/name`. It parses on every
    /// platform; only Windows can dial it.
    NamedPipe(String),
}

/// Why an address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Empty, or no scheme at all (`/run/x.sock`). Docker's text.
    #[error("Unknown protocol")]
    UnknownProtocol,
    /// Go's `url.Parse` failed; the message is Go's
    /// (`parse "127.0.0.1:8080": first path segment in URL cannot contain colon`),
    /// followed by a hint where we can tell what was meant.
    #[error("parse {}: {reason}{}", quote(.address), hint(.suggestion))]
    Parse {
        /// The address as written.
        address: String,
        /// Go's reason text.
        reason: String,
        /// What the author probably meant, if we can tell.
        suggestion: Option<String>,
    },
    /// Divergence: a scheme other than `unix`, `tcp`, `http`, `https` or
    /// `npipe`. Docker accepts any scheme and then speaks plain HTTP.
    #[error(
        "unsupported scheme {} in plugin address {}: use unix, tcp, http, https or npipe{}",
        quote(.scheme), quote(.address), hint(.suggestion)
    )]
    UnsupportedScheme {
        /// The address as written.
        address: String,
        /// The scheme found.
        scheme: String,
        /// What the author probably meant, if we can tell.
        suggestion: Option<String>,
    },
    /// Divergence: `unix://relative/x.sock`. Docker would dial the first
    /// path segment (`relative`) as a socket path.
    #[error(
        "relative unix socket path in plugin address {}: Docker would dial {}{}",
        quote(.address), quote(.dialed), hint(&Some(.suggestion.clone()))
    )]
    RelativeUnixPath {
        /// The address as written.
        address: String,
        /// What Docker would have dialed.
        dialed: String,
        /// The absolute form that was probably meant.
        suggestion: String,
    },
    /// Divergence: `tcp://`, `unix://` or `npipe://` with nothing to dial.
    #[error("plugin address {} has no {what} to connect to", quote(.address))]
    Missing {
        /// The address as written.
        address: String,
        /// `host` or `socket path` or `pipe path`.
        what: &'static str,
    },
    /// The unix socket path does not fit in `sockaddr_un` (Docker's text;
    /// raised when a client is created, checklist 20).
    #[error("unix socket path {} is too long", quote(.0))]
    UnixPathTooLong(String),
    /// `npipe://` on a platform without named pipes (Docker's text).
    #[error("protocol not available")]
    ProtocolNotAvailable,
}

fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {}?)", quote(s)),
        None => String::new(),
    }
}

impl Address {
    /// Parses an address the way Docker's client reads it, with the
    /// divergences listed in the crate docs.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let parse_err = |reason: &str, suggestion: Option<String>| AddressError::Parse {
            address: text.to_owned(),
            reason: reason.to_owned(),
            suggestion,
        };
        // Go lets control characters through in a fragment; an address has
        // no use for them, so they are refused wherever they are.
        if text.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(parse_err("net/url: invalid control character in URL", None));
        }
        let url = GoUrl::parse(text).map_err(|e| {
            // `127.0.0.1:8080` was meant as a TCP address.
            let suggestion = e.is_colon_in_first_segment().then(|| {
                let before_query = text.split(['#', '?']).next().unwrap_or(text);
                format!("tcp://{before_query}")
            });
            parse_err(e.reason(), suggestion)
        })?;
        let (host, has_port) = match url.raw_host() {
            Some(raw) => dial_host(raw, url.host()).map_err(|r| parse_err(&r, None))?,
            None => (String::new(), false),
        };
        let path = url.path();
        let scheme = url.scheme();
        if scheme.is_empty() {
            return Err(AddressError::UnknownProtocol);
        }
        if let Some(opaque) = url.opaque() {
            // `localhost:8080` parses in Go as scheme `localhost` with opaque
            // data `8080`; Docker then dials `plugin.moby.localhost:80`.
            let suggestion = match scheme {
                "unix" | "npipe" => format!("{scheme}:///{opaque}"),
                "tcp" | "http" | "https" => format!("{scheme}://{opaque}"),
                _ => format!("tcp://{text}"),
            };
            return Err(match scheme {
                "unix" | "tcp" | "http" | "https" | "npipe" => {
                    parse_err("missing \"//\" after the scheme", Some(suggestion))
                }
                _ => AddressError::UnsupportedScheme {
                    address: text.to_owned(),
                    scheme: scheme.to_owned(),
                    suggestion: Some(suggestion),
                },
            });
        }
        let missing = |what| AddressError::Missing {
            address: text.to_owned(),
            what,
        };
        let (endpoint, tls, host_header) = match scheme {
            "unix" => {
                if !host.is_empty() {
                    let dialed = host.clone();
                    return Err(AddressError::RelativeUnixPath {
                        address: text.to_owned(),
                        suggestion: format!("unix:///{host}{path}"),
                        dialed,
                    });
                }
                if path.is_empty() {
                    return Err(missing("socket path"));
                }
                (
                    Endpoint::Unix(PathBuf::from(path)),
                    false,
                    VIRTUAL_HOST.to_owned(),
                )
            }
            "npipe" => {
                let target = if host.is_empty() { path } else { &host };
                if target.is_empty() {
                    return Err(missing("pipe path"));
                }
                (
                    Endpoint::NamedPipe(target.to_owned()),
                    false,
                    VIRTUAL_HOST.to_owned(),
                )
            }
            "tcp" | "http" | "https" => {
                if host.is_empty() {
                    return Err(missing("host"));
                }
                let tls = scheme == "https";
                let dial = if has_port {
                    host.clone()
                } else {
                    format!("{host}:{}", if tls { 443 } else { 80 })
                };
                (Endpoint::Tcp(dial), tls, host)
            }
            other => {
                return Err(AddressError::UnsupportedScheme {
                    address: text.to_owned(),
                    scheme: other.to_owned(),
                    suggestion: (!host.is_empty()).then(|| format!("tcp://{host}")),
                });
            }
        };
        Ok(Address {
            raw: text.to_owned(),
            endpoint,
            tls,
            host_header,
        })
    }

    /// The address of a unix socket, spelled as Docker spells socket hits:
    /// `"unix://" + path` (checklist 11).
    pub fn unix(path: impl AsRef<Path>) -> Address {
        let path = path.as_ref();
        Address {
            raw: format!("unix://{}", path.display()),
            endpoint: Endpoint::Unix(path.to_path_buf()),
            tls: false,
            host_header: VIRTUAL_HOST.to_owned(),
        }
    }

    /// The address exactly as written (Docker's `Plugin.Addr`).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Where to connect.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `true` only for `https://` (checklist 18): `tcp://` never uses TLS,
    /// even with TLS options present.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The URL scheme of requests: `https` or `http`.
    pub fn http_scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The `Host` header: `plugin.moby.localhost` for unix sockets and named
    /// pipes, otherwise the address's `host[:port]` as written (checklist 17).
    pub fn host_header(&self) -> &str {
        &self.host_header
    }

    /// `true` for the local transports (unix sockets, named pipes), on which
    /// Go disables compression and never uses a proxy.
    pub fn is_local(&self) -> bool {
        matches!(self.endpoint, Endpoint::Unix(_) | Endpoint::NamedPipe(_))
    }

    /// The checks Docker makes when it creates a client (checklist 20): a
    /// unix path longer than [`MAX_UNIX_PATH_LEN`] bytes, and named pipes
    /// off Windows.
    pub fn check_dialable(&self) -> Result<(), AddressError> {
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let text = path.to_string_lossy();
                if path.as_os_str().len() > MAX_UNIX_PATH_LEN {
                    return Err(AddressError::UnixPathTooLong(text.into_owned()));
                }
                Ok(())
            }
            Endpoint::NamedPipe(_) if !cfg!(windows) => Err(AddressError::ProtocolNotAvailable),
            _ => Ok(()),
        }
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({:?})", self.raw)
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

/// The host a TCP address dials, and whether it names a port, from the
/// authority's `host[:port]` as written (`raw`) and Go's `URL.Host` for it
/// (`go_host`, already checked by [`GoUrl::parse`]).
///
/// Plugin addresses are stricter than Go here: Go accepts these hosts and
/// Docker then fails to dial them, or dials something else. A host name
/// holds no `:`, `[`, `]`, `<`, `>`, `"`, non-ASCII white space or
/// control character; an IP literal ends at its first `]` and holds no
/// such character either (except `:`); an empty port is no port.
fn dial_host(raw: &str, go_host: &str) -> Result<(String, bool), String> {
    let invalid_char =
        |c: char| format!("invalid character {} in host name", quote(&c.to_string()));
    if let Some(inner) = raw.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err("missing ']' in host".into());
        };
        // Found by fuzzing (addr_parse): `[::1 ]` gave a Host header with
        // a space, before Go's own checks were applied here.
        if let Some(bad) = inner[..close]
            .chars()
            .find(|c| !host_char_ok(*c) && *c != ':')
        {
            return Err(invalid_char(bad));
        }
        let port = &inner[close + 1..];
        if !port.is_empty() {
            let Some(digits) = port.strip_prefix(':') else {
                return Err(format!("invalid port {} after host", quote(port)));
            };
            check_port(digits)?;
        }
        // An empty port (`[::1]:`) is no port, as for other hosts: Go dials
        // the default port and drops the colon from `Host`. The literal is
        // kept as written (`%25` zones stay escaped).
        let host = if port == ":" {
            &raw[..raw.len() - 1]
        } else {
            raw
        };
        return Ok((host.to_owned(), port.len() > 1));
    }
    let (name, port) = raw.rsplit_once(':').unwrap_or((raw, ""));
    if let Some(bad) = name.chars().find(|c| !host_char_ok(*c)) {
        return Err(invalid_char(bad));
    }
    // Go keeps a trailing colon in Host; the dialer then fails. Treat an
    // empty port as no port so the default applies.
    let host = if raw.ends_with(':') {
        go_host.strip_suffix(':').unwrap_or(go_host)
    } else {
        go_host
    };
    Ok((host.to_owned(), !port.is_empty()))
}

fn check_port(port: &str) -> Result<(), String> {
    if port.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "invalid port {} after host",
            quote(&format!(":{port}"))
        ))
    }
}

fn host_char_ok(c: char) -> bool {
    // Go's url.Parse lets C1 controls (U+0080–U+009F) through, and the
    // request then fails on every retry (invalid Host header): refuse them
    // here. Found by fuzzing (addr_parse).
    c.is_ascii_alphanumeric()
        || "-._~!$&'()*+,;=%".contains(c)
        || (!c.is_ascii() && !c.is_whitespace() && !c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Address {
        Address::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn unix_absolute_dials_the_path_with_the_virtual_host() {
        // checklist 17, 19
        let a = parse("unix:///run/docker/plugins/x.sock");
        assert_eq!(
            a.endpoint(),
            &Endpoint::Unix("/run/docker/plugins/x.sock".into())
        );
        assert_eq!(a.host_header(), "plugin.moby.localhost");
        assert_eq!(a.http_scheme(), "http");
        assert!(a.is_local());
        assert_eq!(a.to_string(), "unix:///run/docker/plugins/x.sock");
    }

    #[test]
    fn unix_single_slash_form_is_the_same_socket() {
        let a = parse("unix:/run/x.sock");
        assert_eq!(a.endpoint(), &Endpoint::Unix("/run/x.sock".into()));
    }

    #[test]
    fn relative_unix_path_is_rejected_with_what_docker_would_dial() {
        // checklist 19 (divergence: Docker dials "var")
        let e = Address::parse("unix://var/lib/docker/plugins/echo.sock").unwrap_err();
        assert_eq!(
            e.to_string(),
            "relative unix socket path in plugin address \"unix://var/lib/docker/plugins/echo.sock\": \
             Docker would dial \"var\" (did you mean \"unix:///var/lib/docker/plugins/echo.sock\"?)"
        );
    }

    #[test]
    fn tcp_host_header_is_host_port_and_scheme_is_http() {
        // checklist 17, 18
        let a = parse("tcp://127.0.0.1:8080");
        assert_eq!(a.endpoint(), &Endpoint::Tcp("127.0.0.1:8080".into()));
        assert_eq!(a.host_header(), "127.0.0.1:8080");
        assert_eq!(a.http_scheme(), "http");
        assert!(!a.is_tls());
        assert!(!a.is_local());
    }

    #[test]
    fn https_is_the_only_tls_scheme_and_defaults_to_443() {
        // checklist 18
        let a = parse("https://example.com/docker/plugin");
        assert!(a.is_tls());
        assert_eq!(a.http_scheme(), "https");
        assert_eq!(a.endpoint(), &Endpoint::Tcp("example.com:443".into()));
        assert_eq!(a.host_header(), "example.com");
        assert_eq!(parse("http://h").endpoint(), &Endpoint::Tcp("h:80".into()));
        assert_eq!(parse("tcp://h").endpoint(), &Endpoint::Tcp("h:80".into()));
    }

    #[test]
    fn path_query_and_user_info_are_ignored() {
        // checklist 18, spec §1.6
        let a = parse("http://user:pw@127.0.0.1:1/base?x=1#frag");
        assert_eq!(a.endpoint(), &Endpoint::Tcp("127.0.0.1:1".into()));
        assert_eq!(a.host_header(), "127.0.0.1:1");
        assert_eq!(a.as_str(), "http://user:pw@127.0.0.1:1/base?x=1#frag");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let a = parse("tcp://[::1]:9000");
        assert_eq!(a.endpoint(), &Endpoint::Tcp("[::1]:9000".into()));
        assert_eq!(a.host_header(), "[::1]:9000");
        assert_eq!(
            parse("https://[::1]").endpoint(),
            &Endpoint::Tcp("[::1]:443".into())
        );
    }

    #[test]
    fn scheme_is_case_insensitive() {
        assert!(parse("HTTPS://h:1").is_tls());
        assert!(matches!(
            parse("UNIX:///x.sock").endpoint(),
            Endpoint::Unix(_)
        ));
    }

    #[test]
    fn npipe_parses_everywhere_and_is_refused_off_windows() {
        // checklist 20
        let a = parse("npipe:////./pipe/docker_plugin");
        assert_eq!(
            a.endpoint(),
            &Endpoint::NamedPipe("//./pipe/docker_plugin".into())
        );
        assert_eq!(a.host_header(), "plugin.moby.localhost");
        if !cfg!(windows) {
            assert_eq!(
                a.check_dialable().unwrap_err().to_string(),
                "protocol not available"
            );
        }
    }

    #[test]
    fn unix_path_limit_is_108_bytes() {
        // checklist 20
        let ok = format!("/{}", "a".repeat(107));
        assert!(Address::unix(&ok).check_dialable().is_ok());
        let long = format!("/{}", "a".repeat(108));
        assert_eq!(
            Address::unix(&long)
                .check_dialable()
                .unwrap_err()
                .to_string(),
            format!("unix socket path \"{long}\" is too long")
        );
    }

    #[test]
    fn empty_and_schemeless_are_unknown_protocol() {
        // checklist 12
        for s in ["", "/run/x.sock", "x.sock"] {
            assert_eq!(
                Address::parse(s).unwrap_err(),
                AddressError::UnknownProtocol,
                "{s}"
            );
        }
    }

    #[test]
    fn ip_port_without_scheme_keeps_gos_parse_error() {
        // checklist 12: Docker's text, plus what was meant.
        let e = Address::parse("127.0.0.1:8080").unwrap_err();
        assert_eq!(
            e.to_string(),
            "parse \"127.0.0.1:8080\": first path segment in URL cannot contain colon \
             (did you mean \"tcp://127.0.0.1:8080\"?)"
        );
    }

    #[test]
    fn host_port_without_scheme_is_rejected() {
        // divergence: Go reads `localhost:8080` as scheme "localhost".
        let e = Address::parse("localhost:8080").unwrap_err();
        assert!(matches!(e, AddressError::UnsupportedScheme { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("did you mean \"tcp://localhost:8080\"?"),
            "{e}"
        );
    }

    #[test]
    fn unknown_schemes_are_rejected() {
        // divergence: Go accepts `foo://bar:1` and speaks http to bar:1.
        let e = Address::parse("foo://bar:1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported scheme \"foo\" in plugin address \"foo://bar:1\": use unix, tcp, http, \
             https or npipe (did you mean \"tcp://bar:1\"?)"
        );
    }

    #[test]
    fn missing_hosts_and_paths_are_rejected() {
        // divergence: Docker accepts these and fails at activation.
        for (s, what) in [
            ("tcp://", "host"),
            ("http:///x", "host"),
            ("unix://", "socket path"),
            ("npipe://", "pipe path"),
        ] {
            assert_eq!(
                Address::parse(s).unwrap_err(),
                AddressError::Missing {
                    address: s.into(),
                    what
                },
                "{s}"
            );
        }
    }

    #[test]
    fn go_parse_errors_are_reported_in_gos_words() {
        let e = Address::parse("tcp://h:abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "parse \"tcp://h:abc\": invalid port \":abc\" after host"
        );
        let e = Address::parse("://x").unwrap_err();
        assert_eq!(e.to_string(), "parse \"://x\": missing protocol scheme");
        let e = Address::parse("unix:///a%zz").unwrap_err();
        assert_eq!(
            e.to_string(),
            "parse \"unix:///a%zz\": invalid URL escape \"%zz\""
        );
        let e = Address::parse("tcp://a b:1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "parse \"tcp://a b:1\": invalid character \" \" in host name"
        );
    }

    #[test]
    fn ipv6_host_with_an_empty_port_dials_the_default_port() {
        // Found by fuzzing (addr_parse): the dial target was "[::1]::80".
        let a = parse("tcp://[::1]:");
        assert_eq!(a.endpoint(), &Endpoint::Tcp("[::1]:80".into()));
        assert_eq!(a.host_header(), "[::1]");
        let a = parse("https://[::1]:/x");
        assert_eq!(a.endpoint(), &Endpoint::Tcp("[::1]:443".into()));
    }

    #[test]
    fn ipv6_literals_refuse_characters_go_refuses() {
        // Found by fuzzing (addr_parse): spaces reached the Host header.
        assert_eq!(
            Address::parse("https://[::1 ]:1").unwrap_err().to_string(),
            "parse \"https://[::1 ]:1\": invalid character \" \" in host name"
        );
        assert_eq!(
            parse("tcp://[fe80::1%25eth0]:1").endpoint(),
            &Endpoint::Tcp("[fe80::1%25eth0]:1".into())
        );
    }

    #[test]
    fn hosts_refuse_c1_control_characters() {
        // Found by fuzzing (addr_parse): U+0096 reached the Host header.
        assert_eq!(
            Address::parse("https://a\u{96}b").unwrap_err().to_string(),
            "parse \"https://a\\u0096b\": invalid character \"\\u0096\" in host name"
        );
        assert_eq!(
            parse("https://b\u{fc}cher.example").host_header(),
            "b\u{fc}cher.example"
        );
    }

    #[test]
    fn hosts_cannot_percent_encode_ascii() {
        // Found by fuzzing (addr_parse): `a%3Ab` became the host "a:b".
        // Go: "in the host component %-encoding can only be used for
        // non-ASCII bytes" (and %25).
        for (s, bad) in [
            ("tcp://a%3Ab:1", "%3A"),
            ("http://a%2Fb", "%2F"),
            ("tcp://%41:1", "%41"),
        ] {
            assert_eq!(
                Address::parse(s).unwrap_err().to_string(),
                format!("parse \"{s}\": invalid URL escape \"{bad}\""),
            );
        }
        assert_eq!(parse("tcp://a%25b:1").host_header(), "a%b:1");
        assert_eq!(parse("tcp://b%C3%BC:1").host_header(), "bü:1");
        assert_eq!(
            Address::parse("tcp://a%zz%3A:1").unwrap_err().to_string(),
            "parse \"tcp://a%zz%3A:1\": invalid URL escape \"%zz\""
        );
    }

    #[test]
    fn addresses_go_cannot_parse_are_refused_in_gos_words() {
        // Go's url.Parse checks user information, escapes inside IP
        // literals and the fragment; Docker then fails to build a client.
        for (s, reason) in [
            ("tcp://a b@h:1", "net/url: invalid userinfo"),
            ("tcp://\u{fc}@h:1", "net/url: invalid userinfo"),
            ("tcp://a%zz@h:1", "invalid URL escape \"%zz\""),
            ("tcp://[::1%2F]:1", "invalid URL escape \"%2F\""),
            ("tcp://[fe80::1%25%2F]:1", "invalid URL escape \"%2F\""),
            ("tcp://h:1#%zz", "invalid URL escape \"%zz\""),
            ("unix:///a%z\u{e9}", "invalid URL escape \"%z\\xc3\""),
        ] {
            assert_eq!(
                Address::parse(s).unwrap_err().to_string(),
                format!("parse {}: {reason}", quote(s)),
            );
        }
        // What Go accepts there still parses.
        assert_eq!(
            parse("tcp://u:p%41@h:1#frag%20x").endpoint(),
            &Endpoint::Tcp("h:1".into())
        );
    }

    #[test]
    fn percent_escapes_in_unix_paths_are_decoded_like_go() {
        let a = parse("unix:///tmp/a%20b.sock");
        assert_eq!(a.endpoint(), &Endpoint::Unix("/tmp/a b.sock".into()));
    }

    #[test]
    fn socket_hits_are_spelled_like_docker() {
        // checklist 11
        let a = Address::unix("/run/docker/plugins/a.sock");
        assert_eq!(a.as_str(), "unix:///run/docker/plugins/a.sock");
        assert_eq!(Address::parse(a.as_str()).unwrap(), a);
    }

    proptest::proptest! {
        #[test]
        fn parse_display_parse_round_trips(s in "(unix|tcp|http|https|npipe|UNIX|foo|)(:|://|:///)[a-z0-9./:@%\\[\\]-]{0,24}") {
            if let Ok(a) = Address::parse(&s) {
                let shown = a.to_string();
                proptest::prop_assert_eq!(&shown, &s);
                proptest::prop_assert_eq!(Address::parse(&shown).unwrap(), a);
            }
        }

        #[test]
        fn tcp_addresses_always_dial_host_and_port(host in "[a-z][a-z0-9.-]{0,12}", port in proptest::option::of(1u16..)) {
            let s = match port { Some(p) => format!("tcp://{host}:{p}"), None => format!("tcp://{host}") };
            let a = Address::parse(&s).unwrap();
            let want = format!("{host}:{}", port.unwrap_or(80));
            proptest::prop_assert_eq!(a.endpoint(), &Endpoint::Tcp(want));
        }
    }
}
