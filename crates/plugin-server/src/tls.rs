//! TLS for tcp listeners: rustls with the ring provider, a certificate
//! chain and key from PEM files, and optionally a client CA (mutual TLS).
//!
//! Docker speaks TLS to plugins only for `https://` addresses, from a
//! `.spec` (unverified) or a `.json` spec (verified when `TLSConfig` names
//! a CA), and never over unix sockets.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("reading {what} {}: {reason}", path.display())]
    Pem {
        /// `certificate`, `private key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (an OS error, or no PEM section of the right kind).
        reason: String,
    },
    /// rustls refused the material (a key that does not match the
    /// certificate, an unusable CA).
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A server-side TLS configuration (cheap to clone).
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Serves `cert` (a PEM chain, leaf first) with `key` (PEM: PKCS#8,
    /// PKCS#1 or SEC1). With `client_ca`, clients must present a
    /// certificate signed by one of its CAs.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
        client_ca: Option<&Path>,
    ) -> Result<TlsConfig, TlsError> {
        let chain = read_certs("certificate", cert.as_ref())?;
        let key = PrivateKeyDer::from_pem_file(key.as_ref()).map_err(|e| TlsError::Pem {
            what: "private key",
            path: key.as_ref().to_path_buf(),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs("client CA", ca)? {
                    roots.add(c).map_err(|e| {
                        TlsError::Config(format!("client CA {}: {e}", ca.display()))
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(TlsConfig {
            config: Arc::new(config),
        })
    }

    /// Uses a rustls configuration built elsewhere.
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> TlsConfig {
        TlsConfig { config }
    }
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE section found".into()));
    }
    Ok(certs)
}
