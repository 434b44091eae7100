//! Every piece of TLS construction in the crate (spec §3.2; checklist 28).
//!
//! This is the only module that names rustls types beyond the connector's
//! `TlsConnector`, so the coming rustls 0.24 bump (providers in their own
//! crates, `ClientConfig::builder(provider)`) touches this file alone.
//!
//! It mirrors go-connections' `tlsconfig.Client`: minimum TLS 1.2 (or the
//! requested `MinVersion`), the ECDHE AES-GCM / ChaCha20 suites (the ring
//! provider's defaults are exactly those, plus TLS 1.3's), roots = system
//! roots plus `CAFile` when verifying, a client certificate from
//! `CertFile`/`KeyFile`, and Go's error texts. Files are read when the
//! client is created, as Docker does, never per connection.

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use plugin_proto::{TlsOptions, go_quote};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, errno_text};

/// Go's `tls.VersionTLS10` .. `VersionTLS13`.
const TLS10: u16 = 0x0301;
const TLS12: u16 = 0x0303;
const TLS13: u16 = 0x0304;

/// A ready TLS client setup: what the connector needs to wrap a TCP stream.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The parts of go-connections' `tlsconfig.Client` that read files and
/// validate options. Docker runs it whenever TLS options are present, for
/// every scheme, so a bad `CAFile` fails client creation even for a
/// `tcp://` address that will never speak TLS.
pub(crate) struct LoadedOptions {
    verify: bool,
    /// `None`: system roots only (Go's `RootCAs == nil`).
    roots: Option<RootCertStore>,
    exclusive_roots: bool,
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    tls13_only: bool,
}

impl LoadedOptions {
    /// Go's default TLS config, used for `https://` without options:
    /// verification against the system roots.
    pub(crate) fn system_default() -> LoadedOptions {
        LoadedOptions {
            verify: true,
            roots: None,
            exclusive_roots: false,
            client_auth: None,
            tls13_only: false,
        }
    }

    /// Reads and checks the files named by `opts`, in go-connections' order:
    /// CA file (only when verifying), key pair, minimum version.
    pub(crate) fn load(opts: &TlsOptions) -> Result<LoadedOptions, Error> {
        let verify = !opts.insecure_skip_verify;
        let mut roots = None;
        if verify
            && let Some(ca) = opts
                .ca_file
                .as_deref()
                .filter(|p| !p.as_os_str().is_empty())
        {
            roots = Some(load_ca_file(ca)?);
        }
        let client_auth = load_key_pair(opts)?;
        let tls13_only = match opts.min_version {
            0 => false,
            v if !(TLS10..=TLS13).contains(&v) => {
                return Err(Error::tls_config(format!(
                    "invalid minimum TLS version: {v:x}"
                )));
            }
            v if v < TLS12 => {
                return Err(Error::tls_config(format!(
                    "requested minimum TLS version is too low. Should be at-least: {TLS12:x}"
                )));
            }
            v => v == TLS13,
        };
        Ok(LoadedOptions {
            verify,
            roots,
            exclusive_roots: opts.exclusive_root_pools,
            client_auth,
            tls13_only,
        })
    }

    /// Builds the rustls configuration for dialling `host` (the host part of
    /// the address: a DNS name or an IP address, which rustls verifies
    /// against IP SANs and sends no SNI for, as Go does).
    pub(crate) fn into_setup(self, host: &str) -> Result<TlsSetup, Error> {
        let server_name = ServerName::try_from(host.to_owned()).map_err(|e| {
            Error::tls_config(format!("invalid TLS server name {}: {e}", go_quote(host)))
        })?;
        let provider = provider();
        let versions: &[&'static rustls::SupportedProtocolVersion] = if self.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS12, &rustls::version::TLS13]
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| Error::tls_config(e.to_string()))?;
        let builder = if self.verify {
            let mut roots = match (self.roots, self.exclusive_roots) {
                (Some(ca), true) => ca,
                (Some(mut ca), false) => {
                    ca.roots.extend(system_roots().roots.iter().cloned());
                    ca
                }
                (None, _) => system_roots().clone(),
            };
            roots.roots.shrink_to_fit();
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipChainVerifier { provider }))
        };
        let config = match self.client_auth {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::tls_config(key_pair_error(&e)))?,
            None => builder.with_no_client_auth(),
        };
        Ok(TlsSetup {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

impl TlsSetup {
    /// Runs the client handshake over an established stream.
    pub(crate) async fn handshake<S>(
        &self,
        stream: S,
    ) -> io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        self.connector
            .connect(self.server_name.clone(), stream)
            .await
    }
}

/// `true` when `err` (or something it wraps) is a rustls error: a TLS
/// failure during or after the handshake.
pub(crate) fn is_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
            && inner.is::<rustls::Error>()
        {
            return true;
        }
        cur = e.source();
    }
    false
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The host's trust store, read once per process: it is only needed for
/// verifying `https://` plugins, and reading it costs a directory scan.
/// Unreadable entries are skipped, as Go's `SystemCertPool` does.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::debug!("loading system root certificates: {e}");
        }
        store.add_parsable_certificates(loaded.certs);
        store
    })
}

/// Go's `os.ReadFile` error text: `open <path>: <errno text>`.
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("open {}: {}", path.display(), errno_text(&e)))
}

fn load_ca_file(path: &Path) -> Result<RootCertStore, Error> {
    let shown = go_quote(&path.to_string_lossy());
    let pem = read_file(path)
        .map_err(|e| Error::tls_config(format!("could not read CA certificate {shown}: {e}")))?;
    let mut store = RootCertStore::empty();
    // Go's AppendCertsFromPEM skips blocks it cannot parse and fails only
    // when nothing was added.
    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::tls_config(format!(
            "failed to append certificates from PEM file: {shown}"
        )));
    }
    Ok(store)
}

type KeyPair = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// go-connections' `getCert`, with its errors under Docker's
/// `could not load X509 key pair: ` prefix.
fn load_key_pair(opts: &TlsOptions) -> Result<Option<KeyPair>, Error> {
    let empty =
        |p: &Option<std::path::PathBuf>| p.as_deref().is_none_or(|p| p.as_os_str().is_empty());
    if empty(&opts.cert_file) && empty(&opts.key_file) {
        return Ok(None);
    }
    let fail =
        |reason: String| Error::tls_config(format!("could not load X509 key pair: {reason}"));
    let path = |p: &Option<std::path::PathBuf>| p.clone().unwrap_or_default();
    let cert_pem = read_file(&path(&opts.cert_file)).map_err(fail)?;
    let key_pem = read_file(&path(&opts.key_file)).map_err(fail)?;
    check_private_key(&key_pem).map_err(|r| fail(r.to_owned()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("tls: failed to parse certificate PEM data: {e}")))?;
    if chain.is_empty() {
        return Err(fail(
            "tls: failed to find any PEM data in certificate input".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            fail("tls: failed to find any PEM data in key input".to_owned())
        }
        other => fail(format!("tls: failed to parse private key: {other}")),
    })?;
    // Go's X509KeyPair checks that the key matches the certificate when
    // the files are read, whatever the scheme; rustls would only check when
    // an https configuration is built.
    rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider())
        .map_err(|e| Error::tls_config(key_pair_error(&e)))?;
    Ok(Some((chain, key)))
}

/// go-connections' `getPrivateKey`: there must be a PEM block, and it must
/// not be encrypted. Go only spots legacy `DEK-Info` encryption and then
/// fails to parse PKCS#8 `ENCRYPTED PRIVATE KEY` blocks with a vaguer text;
/// both get the clear one here.
fn check_private_key(pem: &[u8]) -> Result<(), &'static str> {
    let text = String::from_utf8_lossy(pem);
    if !text.contains("-----BEGIN ") {
        return Err("no valid private key found");
    }
    if text.contains("DEK-Info:") || text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(
            "private key is encrypted; encrypted private keys are obsolete, and not supported",
        );
    }
    Ok(())
}

fn key_pair_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "could not load X509 key pair: tls: private key does not match public key".to_owned()
        }
        other => format!("could not load X509 key pair: {other}"),
    }
}

/// Go's `InsecureSkipVerify`: no chain, expiry or name checks, but the
/// server must still prove it holds the key of the certificate it sent, so
/// the handshake signatures are verified with the provider's algorithms.
#[derive(Debug)]
struct SkipChainVerifier {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SkipChainVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_version_texts_are_go_connections() {
        let opts = |v| {
            let mut o = TlsOptions::insecure();
            o.min_version = v;
            o
        };
        let err = |v| LoadedOptions::load(&opts(v)).err().map(|e| e.to_string());
        assert_eq!(
            err(0x0301).as_deref(),
            Some("requested minimum TLS version is too low. Should be at-least: 303")
        );
        assert_eq!(
            err(0x0302).as_deref(),
            Some("requested minimum TLS version is too low. Should be at-least: 303")
        );
        assert_eq!(
            err(0x0300).as_deref(),
            Some("invalid minimum TLS version: 300")
        );
        assert_eq!(
            err(0x9999).as_deref(),
            Some("invalid minimum TLS version: 9999")
        );
        assert_eq!(err(0), None);
        assert_eq!(err(0x0303), None);
        assert_eq!(err(0x0304), None);
    }

    #[test]
    fn encrypted_and_missing_keys_are_refused() {
        assert_eq!(
            check_private_key(b"garbage"),
            Err("no valid private key found")
        );
        assert!(
            check_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n")
                .unwrap_err()
                .contains("encrypted")
        );
        assert!(
            check_private_key(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAA==\n-----END RSA PRIVATE KEY-----\n")
                .unwrap_err()
                .contains("encrypted")
        );
    }

    #[test]
    fn missing_files_give_dockers_texts() {
        let e = LoadedOptions::load(&TlsOptions::with_ca_file("/nonexistent/ca.pem"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "could not read CA certificate \"/nonexistent/ca.pem\": open /nonexistent/ca.pem: no such file or directory"
            )
        );
        // Insecure options never read the CA file (go-connections).
        let mut insecure = TlsOptions::with_ca_file("/nonexistent/ca.pem");
        insecure.insecure_skip_verify = true;
        assert!(LoadedOptions::load(&insecure).is_ok());
        let e = LoadedOptions::load(
            &TlsOptions::insecure().client_cert("/nonexistent/c.pem", "/nonexistent/k.pem"),
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "could not load X509 key pair: open /nonexistent/c.pem: no such file or directory"
            )
        );
    }
}
