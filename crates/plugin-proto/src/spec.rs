//! Plugin spec files: the `.spec` text form and the `.json` form
//! (spec §1.4, §1.5; checklist 12, 13).
//!
//! [`SpecContent`] is the one type for both directions: [`parse_spec`] and
//! [`parse_json_spec`] read a file's bytes the way Docker does, and
//! [`encode_spec`] and [`encode_json_spec`] write bytes Docker reads back
//! as the same content. Reading and writing the files themselves (refusing
//! FIFOs and oversized files, replacing a file atomically) is the job of
//! `plugin-discovery` and `plugin-server`.

use std::path::PathBuf;

use crate::address::{Address, AddressError};
use crate::gojson::{self, DecodeError, GoValue};

/// go-connections' `tlsconfig.Options`, as a `.json` spec carries it.
///
/// Empty Go strings are `None` here. Only the client side of these options
/// is used when dialling a plugin (`ClientAuth` is a server setting and is
/// kept only so that it round-trips).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Extra CA certificates (PEM) to trust, on top of the system roots
    /// unless `exclusive_root_pools` is set.
    #[serde(rename = "CAFile", serialize_with = "path_or_empty")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM).
    #[serde(rename = "CertFile", serialize_with = "path_or_empty")]
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM: PKCS#8, PKCS#1 or SEC1; never encrypted).
    #[serde(rename = "KeyFile", serialize_with = "path_or_empty")]
    pub key_file: Option<PathBuf>,
    /// Skip certificate chain and name checks (the handshake signature is
    /// still verified, as in Go).
    #[serde(rename = "InsecureSkipVerify")]
    pub insecure_skip_verify: bool,
    /// Go's `tls.ClientAuthType` (a server-side setting).
    #[serde(rename = "ClientAuth")]
    pub client_auth: i64,
    /// Trust only `ca_file`, not the system roots.
    #[serde(rename = "ExclusiveRootPools")]
    pub exclusive_root_pools: bool,
    /// Minimum TLS version as Go's constant (`0x0303` = TLS 1.2); 0 means
    /// the default, TLS 1.2.
    #[serde(rename = "MinVersion")]
    pub min_version: u16,
}

fn path_or_empty<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(&p.to_string_lossy()),
        None => s.serialize_str(""),
    }
}

impl TlsOptions {
    /// Docker's default for sockets and `.spec` files (`NewLocalPlugin`):
    /// `InsecureSkipVerify: true` and nothing else (checklist 11, 12).
    pub fn insecure() -> TlsOptions {
        TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        }
    }

    /// Options that verify the server against the system roots plus `ca_file`.
    pub fn with_ca_file(ca_file: impl Into<PathBuf>) -> TlsOptions {
        TlsOptions {
            ca_file: Some(ca_file.into()),
            ..TlsOptions::default()
        }
    }

    /// Adds a client certificate and key.
    pub fn client_cert(
        mut self,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Self {
        self.cert_file = Some(cert_file.into());
        self.key_file = Some(key_file.into());
        self
    }
}

/// What a spec file says about a plugin: read by [`parse_spec`] and
/// [`parse_json_spec`], written by [`encode_spec`] and [`encode_json_spec`].
///
/// ```
/// use plugin_proto::{Address, SpecContent, TlsOptions, encode_json_spec, parse_json_spec};
///
/// let spec = SpecContent::new(Address::parse("https://plugins.example:8443")?)
///     .with_tls(TlsOptions::with_ca_file("/etc/ssl/plugins-ca.pem"))
///     .with_implements(["VolumeDriver"]);
/// let bytes = encode_json_spec(&spec, "example")?;
/// assert_eq!(parse_json_spec(&bytes)?, spec);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpecContent {
    /// The parsed address. Its text is Docker's `Plugin.Addr`.
    pub address: Address,
    /// TLS options: `.spec` files always carry Docker's insecure default;
    /// `.json` files carry theirs, or `None` when `TLSConfig` is absent.
    pub tls: Option<TlsOptions>,
    /// Extension: the subsystems a `.json` spec declares in `Implements`,
    /// so a registry can skip activating plugins of another kind. `None`
    /// when not declared (Docker ignores this field).
    pub implements: Option<Vec<String>>,
}

impl SpecContent {
    /// A spec holding only an address: no `TLSConfig`, no `Implements`.
    pub fn new(address: Address) -> SpecContent {
        SpecContent {
            address,
            tls: None,
            implements: None,
        }
    }

    /// Sets the TLS options (a `.json` spec's `TLSConfig`).
    pub fn with_tls(mut self, tls: TlsOptions) -> SpecContent {
        self.tls = Some(tls);
        self
    }

    /// Declares the subsystems the plugin implements (the `.json`
    /// extension `Implements`).
    pub fn with_implements<I, S>(mut self, kinds: I) -> SpecContent
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.implements = Some(kinds.into_iter().map(Into::into).collect());
        self
    }
}

/// Why a spec file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The address is unusable (`Unknown protocol`, a parse error, or one of
    /// the rejected forms).
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The `.json` file is not valid JSON, or a field has the wrong type
    /// (Go's texts, e.g. `unexpected EOF`).
    #[error(transparent)]
    Json(#[from] DecodeError),
    /// A `.spec` file that is not text.
    #[error("spec file is not valid UTF-8")]
    NotUtf8,
    /// The content cannot be written in the format asked for without
    /// changing what Docker reads back (the text says what).
    #[error("{0}")]
    Unwritable(String),
}

/// Parses a `.spec` file: its trimmed content is the address (checklist 12).
pub fn parse_spec(bytes: &[u8]) -> Result<SpecContent, SpecError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SpecError::NotUtf8)?;
    let address = Address::parse(text.trim())?;
    Ok(SpecContent {
        address,
        tls: Some(TlsOptions::insecure()),
        implements: None,
    })
}

/// Writes a `.spec` file: the address and a newline.
///
/// A `.spec` file holds nothing else, and Docker trims what it reads, so
/// content that would read back differently is refused: TLS options other
/// than Docker's insecure default, declared `Implements`, or an address
/// with leading or trailing white space.
pub fn encode_spec(spec: &SpecContent) -> Result<Vec<u8>, SpecError> {
    let text = spec.address.as_str();
    if text.trim() != text {
        return Err(SpecError::Unwritable(format!(
            "the address {text:?} begins or ends with white space, which a .spec file loses"
        )));
    }
    if spec
        .tls
        .as_ref()
        .is_some_and(|t| *t != TlsOptions::insecure())
    {
        return Err(SpecError::Unwritable(
            "a .spec file cannot hold TLS options: write a .json spec".into(),
        ));
    }
    if spec.implements.is_some() {
        return Err(SpecError::Unwritable(
            "a .spec file cannot hold Implements: write a .json spec".into(),
        ));
    }
    Ok(format!("{text}\n").into_bytes())
}

/// Writes a `.json` spec as Docker documents it (`docs/extend/plugin_api.md`):
/// `Name`, `Addr`, `TLSConfig` when there are TLS options, and the
/// `Implements` extension when declared, indented, with a final newline.
///
/// `TLSConfig` always has `InsecureSkipVerify`, `CAFile`, `CertFile` and
/// `KeyFile`; go-connections' other options (`ClientAuth`,
/// `ExclusiveRootPools`, `MinVersion`) only when set. Docker ignores `Name`
/// (a plugin is named by its file), so it is written for people reading
/// the file. A TLS file path that is not UTF-8 cannot be written as JSON
/// text and is refused.
///
/// Note Docker's reading rule: a `TLSConfig` without `CAFile` is read as
/// `InsecureSkipVerify: true` whatever the file says.
pub fn encode_json_spec(spec: &SpecContent, name: &str) -> Result<Vec<u8>, SpecError> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        #[serde(rename = "Name")]
        name: &'a str,
        #[serde(rename = "Addr")]
        addr: &'a str,
        #[serde(rename = "TLSConfig", skip_serializing_if = "Option::is_none")]
        tls: Option<Tls<'a>>,
        #[serde(rename = "Implements", skip_serializing_if = "Option::is_none")]
        implements: Option<&'a [String]>,
    }
    #[derive(serde::Serialize)]
    struct Tls<'a> {
        #[serde(rename = "InsecureSkipVerify")]
        insecure_skip_verify: bool,
        #[serde(rename = "CAFile")]
        ca_file: &'a str,
        #[serde(rename = "CertFile")]
        cert_file: &'a str,
        #[serde(rename = "KeyFile")]
        key_file: &'a str,
        #[serde(rename = "ClientAuth", skip_serializing_if = "is_zero_i64")]
        client_auth: i64,
        #[serde(rename = "ExclusiveRootPools", skip_serializing_if = "is_false")]
        exclusive_root_pools: bool,
        #[serde(rename = "MinVersion", skip_serializing_if = "is_zero_u16")]
        min_version: u16,
    }
    fn path_text(path: &Option<PathBuf>) -> Result<&str, SpecError> {
        match path {
            None => Ok(""),
            Some(p) => p.to_str().ok_or_else(|| {
                SpecError::Unwritable(format!("the TLS file path {p:?} is not valid UTF-8"))
            }),
        }
    }
    let tls = match &spec.tls {
        None => None,
        Some(t) => Some(Tls {
            insecure_skip_verify: t.insecure_skip_verify,
            ca_file: path_text(&t.ca_file)?,
            cert_file: path_text(&t.cert_file)?,
            key_file: path_text(&t.key_file)?,
            client_auth: t.client_auth,
            exclusive_root_pools: t.exclusive_root_pools,
            min_version: t.min_version,
        }),
    };
    let doc = Doc {
        name,
        addr: spec.address.as_str(),
        tls,
        implements: spec.implements.as_deref(),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&doc).map_err(|e| SpecError::Unwritable(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Parses a `.json` spec with Go's `encoding/json` rules (checklist 13):
/// first value only, case-insensitive keys, last duplicate wins, `null` as
/// absent, unknown keys and `Name` ignored. A `TLSConfig` without `CAFile`
/// forces `insecure_skip_verify`.
pub fn parse_json_spec(bytes: &[u8]) -> Result<SpecContent, SpecError> {
    let fields = decode_plugin_json(bytes)?;
    let address = Address::parse(&fields.addr)?;
    let mut tls = fields.tls;
    if let Some(t) = tls.as_mut()
        && t.ca_file.is_none()
    {
        t.insecure_skip_verify = true;
    }
    Ok(SpecContent {
        address,
        tls,
        implements: fields.implements,
    })
}

/// The raw fields of Docker's `Plugin` struct as Go decodes them, before the
/// address is checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PluginJson {
    pub(crate) addr: String,
    pub(crate) tls: Option<TlsOptions>,
    pub(crate) implements: Option<Vec<String>>,
}

pub(crate) fn decode_plugin_json(bytes: &[u8]) -> Result<PluginJson, DecodeError> {
    let mut out = PluginJson::default();
    let entries = match gojson::first_value(bytes)? {
        GoValue::Null => return Ok(out),
        GoValue::Object(entries) => entries,
        other => return Err(DecodeError::value(other.kind(), "plugins.Plugin")),
    };
    for (key, value) in &entries {
        if gojson::fold_eq(key, "Addr") {
            gojson::string_field(value, &mut out.addr, "Plugin", "Addr")?;
        } else if gojson::fold_eq(key, "TLSConfig") {
            match value {
                GoValue::Null => out.tls = None,
                GoValue::Object(tls_entries) => {
                    // Go decodes into the existing struct, so a second
                    // TLSConfig object updates the first one's fields.
                    let tls = out.tls.get_or_insert_with(TlsOptions::default);
                    decode_tls(tls_entries, tls)?;
                }
                other => {
                    return Err(DecodeError::field(
                        other.kind(),
                        "Plugin",
                        "TLSConfig",
                        "tlsconfig.Options",
                    ));
                }
            }
        } else if gojson::fold_eq(key, "Implements") {
            gojson::string_list_field(value, &mut out.implements, "Plugin", "Implements")?;
        }
    }
    Ok(out)
}

fn decode_tls(entries: &[(String, GoValue)], tls: &mut TlsOptions) -> Result<(), DecodeError> {
    const S: &str = "Plugin";
    for (key, v) in entries {
        let path_field = |slot: &mut Option<PathBuf>, name: &str| -> Result<(), DecodeError> {
            let mut s = slot
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            gojson::string_field(v, &mut s, S, &format!("TLSConfig.{name}"))?;
            *slot = (!s.is_empty()).then(|| PathBuf::from(s));
            Ok(())
        };
        if gojson::fold_eq(key, "CAFile") {
            path_field(&mut tls.ca_file, "CAFile")?;
        } else if gojson::fold_eq(key, "CertFile") {
            path_field(&mut tls.cert_file, "CertFile")?;
        } else if gojson::fold_eq(key, "KeyFile") {
            path_field(&mut tls.key_file, "KeyFile")?;
        } else if gojson::fold_eq(key, "InsecureSkipVerify") {
            gojson::bool_field(
                v,
                &mut tls.insecure_skip_verify,
                S,
                "TLSConfig.InsecureSkipVerify",
            )?;
        } else if gojson::fold_eq(key, "ExclusiveRootPools") {
            gojson::bool_field(
                v,
                &mut tls.exclusive_root_pools,
                S,
                "TLSConfig.ExclusiveRootPools",
            )?;
        } else if gojson::fold_eq(key, "ClientAuth") {
            gojson::int_field(
                v,
                &mut tls.client_auth,
                S,
                "TLSConfig.ClientAuth",
                "tls.ClientAuthType",
            )?;
        } else if gojson::fold_eq(key, "MinVersion") {
            gojson::int_field(v, &mut tls.min_version, S, "TLSConfig.MinVersion", "uint16")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Endpoint;

    #[test]
    fn spec_is_trimmed_and_insecure_by_default() {
        // checklist 12
        let s = parse_spec(b" \t\r\n tcp://localhost:8080 \r\n").unwrap();
        assert_eq!(s.address.as_str(), "tcp://localhost:8080");
        assert_eq!(s.tls, Some(TlsOptions::insecure()));
        assert!(s.tls.unwrap().insecure_skip_verify);
        let s = parse_spec("\u{a0}unix:///x.sock\u{2003}".as_bytes()).unwrap();
        assert_eq!(s.address.as_str(), "unix:///x.sock");
    }

    #[test]
    fn spec_empty_or_schemeless_is_unknown_protocol() {
        // checklist 12
        for b in [&b""[..], b"   \n", b"/run/x.sock"] {
            assert_eq!(parse_spec(b).unwrap_err().to_string(), "Unknown protocol");
        }
    }

    #[test]
    fn spec_ip_port_gives_gos_parse_error() {
        // checklist 12
        let e = parse_spec(b"127.0.0.1:8080").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "parse \"127.0.0.1:8080\": first path segment in URL cannot contain colon"
            ),
            "{e}"
        );
    }

    #[test]
    fn spec_schemes_docker_accepts_but_misreads_are_rejected() {
        // checklist 12 vs the divergence table: `localhost:8080` and `foo://x`.
        assert!(parse_spec(b"localhost:8080").is_err());
        assert!(parse_spec(b"foo://x").is_err());
    }

    #[test]
    fn spec_https_is_tls_without_verification() {
        let s = parse_spec(b"https://example.com:443").unwrap();
        assert!(s.address.is_tls());
        assert!(s.tls.unwrap().insecure_skip_verify);
    }

    #[test]
    fn json_documented_example() {
        // checklist 13, docs/extend/plugin_api.md
        let s = parse_json_spec(
            br#"{"Name":"plugin-example","Addr":"https://example.com/docker/plugin",
                "TLSConfig":{"InsecureSkipVerify":false,"CAFile":"/usr/shared/docker/certs/example-ca.pem",
                "CertFile":"/usr/shared/docker/certs/example-cert.pem","KeyFile":"/usr/shared/docker/certs/example-key.pem"}}"#,
        )
        .unwrap();
        assert_eq!(s.address.as_str(), "https://example.com/docker/plugin");
        let tls = s.tls.unwrap();
        assert_eq!(
            tls.ca_file.unwrap(),
            PathBuf::from("/usr/shared/docker/certs/example-ca.pem")
        );
        assert_eq!(
            tls.cert_file.unwrap(),
            PathBuf::from("/usr/shared/docker/certs/example-cert.pem")
        );
        assert_eq!(
            tls.key_file.unwrap(),
            PathBuf::from("/usr/shared/docker/certs/example-key.pem")
        );
        assert!(!tls.insecure_skip_verify, "a CAFile keeps the given value");
    }

    #[test]
    fn json_without_tlsconfig_has_no_tls_options() {
        // checklist 13
        let s = parse_json_spec(br#"{"Addr":"https://h"}"#).unwrap();
        assert_eq!(s.tls, None);
        let s = parse_json_spec(br#"{"Addr":"https://h","TLSConfig":null}"#).unwrap();
        assert_eq!(s.tls, None);
    }

    #[test]
    fn json_tlsconfig_without_cafile_forces_insecure() {
        // checklist 13
        let s =
            parse_json_spec(br#"{"Addr":"https://h","TLSConfig":{"InsecureSkipVerify":false}}"#)
                .unwrap();
        assert!(s.tls.unwrap().insecure_skip_verify);
        let s = parse_json_spec(br#"{"Addr":"https://h","TLSConfig":{"CAFile":""}}"#).unwrap();
        assert!(s.tls.unwrap().insecure_skip_verify);
    }

    #[test]
    fn json_keys_are_case_insensitive_and_last_duplicate_wins() {
        // checklist 13, spec §12
        let s = parse_json_spec(br#"{"addr":"tcp://a:1","ADDR":"tcp://b:2"}"#).unwrap();
        assert_eq!(s.address.as_str(), "tcp://b:2");
        let s = parse_json_spec(br#"{"Addr":"tcp://a:1","addr":"tcp://c:3"}"#).unwrap();
        assert_eq!(s.address.as_str(), "tcp://c:3");
        let s = parse_json_spec(
            "{\"Addr\":\"https://h\",\"TL\u{17f}Config\":{\"cafile\":\"/ca.pem\"}}".as_bytes(),
        )
        .unwrap();
        assert_eq!(s.tls.unwrap().ca_file, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn json_reads_only_the_first_value_and_ignores_name_and_unknown_keys() {
        // checklist 13
        let s =
            parse_json_spec(br#"{"NAME":"other","Addr":"tcp://h:1","Bogus":[1,{}]} trailing {"#)
                .unwrap();
        assert_eq!(s.address.as_str(), "tcp://h:1");
    }

    #[test]
    fn json_null_leaves_fields_alone() {
        let s = parse_json_spec(br#"{"Addr":"tcp://h:1","Addr":null}"#).unwrap();
        assert_eq!(s.address.as_str(), "tcp://h:1");
    }

    #[test]
    fn json_decode_errors_are_gos() {
        // spec §1.5: decode errors are returned as is.
        assert_eq!(
            parse_json_spec(br#"{"Addr":"#).unwrap_err().to_string(),
            "unexpected EOF"
        );
        assert_eq!(parse_json_spec(b"").unwrap_err().to_string(), "EOF");
        assert_eq!(
            parse_json_spec(br#"{"Addr":1}"#).unwrap_err().to_string(),
            "json: cannot unmarshal number into Go struct field Plugin.Addr of type string"
        );
        assert_eq!(
            parse_json_spec(br#"{"Addr":"tcp://h:1","TLSConfig":{"MinVersion":70000}}"#)
                .unwrap_err()
                .to_string(),
            "json: cannot unmarshal number 70000 into Go struct field Plugin.TLSConfig.MinVersion of type uint16"
        );
        assert_eq!(
            parse_json_spec(b"[]").unwrap_err().to_string(),
            "json: cannot unmarshal array into Go value of type plugins.Plugin"
        );
    }

    #[test]
    fn json_null_document_has_no_address() {
        // spec §12: Go gives an empty address; we reject it when reading.
        assert_eq!(
            parse_json_spec(b"null").unwrap_err().to_string(),
            "Unknown protocol"
        );
    }

    #[test]
    fn json_all_tls_fields_decode() {
        let s = parse_json_spec(
            br#"{"Addr":"https://h:1","TLSConfig":{"CAFile":"/ca","CertFile":"/c","KeyFile":"/k",
               "InsecureSkipVerify":true,"ClientAuth":4,"ExclusiveRootPools":true,"MinVersion":771}}"#,
        )
        .unwrap();
        let t = s.tls.unwrap();
        assert_eq!(
            (t.client_auth, t.exclusive_root_pools, t.min_version),
            (4, true, 771)
        );
        assert!(t.insecure_skip_verify);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"CAFile":"/ca","CertFile":"/c","KeyFile":"/k","InsecureSkipVerify":true,"ClientAuth":4,"ExclusiveRootPools":true,"MinVersion":771}"#
        );
    }

    #[test]
    fn json_implements_extension_is_exposed() {
        let s =
            parse_json_spec(br#"{"Addr":"unix:///x.sock","implements":["VolumeDriver"]}"#).unwrap();
        assert_eq!(s.implements, Some(vec!["VolumeDriver".to_owned()]));
        assert_eq!(s.address.endpoint(), &Endpoint::Unix("/x.sock".into()));
        let s = parse_json_spec(br#"{"Addr":"unix:///x.sock","Implements":null}"#).unwrap();
        assert_eq!(s.implements, None);
    }

    #[test]
    fn json_writer_gives_dockers_documented_form() {
        let spec = SpecContent::new(Address::parse("https://example.com/docker/plugin").unwrap())
            .with_tls(
                TlsOptions::with_ca_file("/usr/shared/docker/certs/example-ca.pem").client_cert(
                    "/usr/shared/docker/certs/example-cert.pem",
                    "/usr/shared/docker/certs/example-key.pem",
                ),
            );
        let text = String::from_utf8(encode_json_spec(&spec, "plugin-example").unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{
  "Name": "plugin-example",
  "Addr": "https://example.com/docker/plugin",
  "TLSConfig": {
    "InsecureSkipVerify": false,
    "CAFile": "/usr/shared/docker/certs/example-ca.pem",
    "CertFile": "/usr/shared/docker/certs/example-cert.pem",
    "KeyFile": "/usr/shared/docker/certs/example-key.pem"
  }
}
"#
        );
        assert_eq!(parse_json_spec(text.as_bytes()).unwrap(), spec);
    }

    #[test]
    fn json_writer_round_trips_every_field() {
        let mut tls = TlsOptions::with_ca_file("/ca").client_cert("/c", "/k");
        tls.client_auth = 4;
        tls.exclusive_root_pools = true;
        tls.min_version = 0x0304;
        let spec = SpecContent::new(Address::parse("tcp://h:1").unwrap())
            .with_tls(tls)
            .with_implements(["VolumeDriver", "authz"]);
        let bytes = encode_json_spec(&spec, "p").unwrap();
        assert_eq!(parse_json_spec(&bytes).unwrap(), spec);
        let bare = SpecContent::new(Address::parse("unix:///x.sock").unwrap());
        let bytes = encode_json_spec(&bare, "p").unwrap();
        assert_eq!(
            bytes,
            b"{\n  \"Name\": \"p\",\n  \"Addr\": \"unix:///x.sock\"\n}\n"
        );
        assert_eq!(parse_json_spec(&bytes).unwrap(), bare);
    }

    #[cfg(unix)]
    #[test]
    fn json_writer_refuses_paths_that_are_not_text() {
        use std::os::unix::ffi::OsStrExt;
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(b"/ca\xff.pem"));
        let spec = SpecContent::new(Address::parse("https://h").unwrap())
            .with_tls(TlsOptions::with_ca_file(path));
        let e = encode_json_spec(&spec, "p").unwrap_err();
        assert!(matches!(e, SpecError::Unwritable(_)), "{e}");
    }

    #[test]
    fn spec_writer_writes_the_address_and_refuses_what_it_would_lose() {
        let addr = Address::parse("tcp://127.0.0.1:8080").unwrap();
        let spec = SpecContent::new(addr.clone());
        assert_eq!(encode_spec(&spec).unwrap(), b"tcp://127.0.0.1:8080\n");
        let read = parse_spec(&encode_spec(&spec).unwrap()).unwrap();
        assert_eq!(read.address, addr);
        assert_eq!(encode_spec(&read).unwrap(), encode_spec(&spec).unwrap());
        for lossy in [
            spec.clone().with_tls(TlsOptions::with_ca_file("/ca")),
            spec.clone().with_implements(["VolumeDriver"]),
            SpecContent::new(Address::parse("unix:///x.sock ").unwrap()),
        ] {
            let e = encode_spec(&lossy).unwrap_err();
            assert!(matches!(e, SpecError::Unwritable(_)), "{lossy:?}: {e}");
        }
    }

    proptest::proptest! {
        /// Where serde and Go agree (exact key case, no duplicates, strings
        /// only), the Go-style decoder gives serde's answer.
        #[test]
        fn go_decoder_agrees_with_serde_on_plain_input(addr in "[ -~]{0,20}", ca in proptest::option::of("[a-z/]{1,10}")) {
            #[derive(serde::Deserialize)]
            #[allow(non_snake_case)]
            struct Tls { CAFile: String }
            #[derive(serde::Deserialize)]
            #[allow(non_snake_case)]
            struct P { Addr: String, TLSConfig: Option<Tls> }
            let doc = match &ca {
                Some(ca) => serde_json::json!({"Addr": addr, "TLSConfig": {"CAFile": ca}}),
                None => serde_json::json!({"Addr": addr}),
            };
            let bytes = serde_json::to_vec(&doc).unwrap();
            let ours = decode_plugin_json(&bytes).unwrap();
            let theirs: P = serde_json::from_slice(&bytes).unwrap();
            proptest::prop_assert_eq!(ours.addr, theirs.Addr);
            proptest::prop_assert_eq!(
                ours.tls.and_then(|t| t.ca_file).map(|p| p.to_string_lossy().into_owned()),
                theirs.TLSConfig.map(|t| t.CAFile)
            );
        }
    }
}
