//! Spec files: how Docker finds a plugin that is not a socket in
//! `/run/docker/plugins` — a `<name>.spec` holding its address, or a
//! `<name>.json` with the address and TLS settings (spec §1.4, §1.5).

use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use plugin_proto::{Address, SpecContent, TlsOptions, encode_json_spec, encode_spec};

use crate::ServeError;
use crate::listen::{ListenAddr, OwnedFile, check_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Spec,
    Json,
}

/// A spec file the server writes when it starts and removes when it stops
/// (only if it is still the file it wrote).
///
/// The file is written atomically (a temporary file, then a rename), so an
/// engine scanning the directory never reads half of it.
#[derive(Debug, Clone)]
#[must_use]
pub struct SpecFile {
    dir: PathBuf,
    name: String,
    format: Format,
    client_tls: Option<TlsOptions>,
    advertise: Option<String>,
}

impl SpecFile {
    /// `<dir>/<name>.spec`, holding the address: `tcp://host:port`, or
    /// `https://host:port` when serving TLS (Docker then connects with TLS
    /// but without verifying the certificate).
    pub fn spec(dir: impl Into<PathBuf>, name: impl Into<String>) -> SpecFile {
        SpecFile {
            dir: dir.into(),
            name: name.into(),
            format: Format::Spec,
            client_tls: None,
            advertise: None,
        }
    }

    /// `<dir>/<name>.json`: `{"Name","Addr","TLSConfig","Implements"}`.
    /// Without [`client_tls`](SpecFile::client_tls) there is no
    /// `TLSConfig`, so Docker verifies an `https` plugin against the system
    /// roots only. `Implements` lists the plugin's kinds so engines built
    /// on this workspace can skip activating it for other kinds; Docker
    /// ignores it.
    pub fn json(dir: impl Into<PathBuf>, name: impl Into<String>) -> SpecFile {
        SpecFile {
            format: Format::Json,
            ..SpecFile::spec(dir, name)
        }
    }

    /// The `TLSConfig` the engine should use (a `.json` spec only): the CA
    /// that signed the server certificate, and the client certificate when
    /// the server requires one.
    pub fn client_tls(mut self, tls: TlsOptions) -> SpecFile {
        self.client_tls = Some(tls);
        self
    }

    /// Writes `address` instead of the listener's own address (for a
    /// listener on `0.0.0.0` reached by a host name, say).
    pub fn advertise(mut self, address: impl Into<String>) -> SpecFile {
        self.advertise = Some(address.into());
        self
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        let ext = match self.format {
            Format::Spec => "spec",
            Format::Json => "json",
        };
        self.dir.join(format!("{}.{ext}", self.name))
    }

    /// The address to write for a listener.
    fn address(&self, addr: &ListenAddr, tls: bool) -> Result<Address, ServeError> {
        let text = match (&self.advertise, addr) {
            (Some(a), _) => a.clone(),
            (None, ListenAddr::Tcp(sa)) => {
                let scheme = if tls { "https" } else { "tcp" };
                format!("{scheme}://{}", reachable(*sa))
            }
            (None, ListenAddr::Unix(Some(path))) => {
                let abs = std::path::absolute(path)
                    .map_err(|e| ServeError::io("resolve socket path", path.clone(), e))?;
                format!("unix://{}", abs.display())
            }
            (None, ListenAddr::Unix(None)) => {
                return Err(ServeError::SpecAddress("an unnamed unix socket".into()));
            }
        };
        // Write only what the engine side of this workspace can read back.
        Address::parse(&text).map_err(|e| ServeError::SpecAddress(format!("{text:?}: {e}")))
    }

    /// The file's content: the address alone for a `.spec`; for a `.json`,
    /// also the client TLS options and the plugin's kinds.
    fn content(&self, address: &Address, implements: &[String]) -> Result<Vec<u8>, ServeError> {
        let spec = SpecContent::new(address.clone());
        let encoded = match self.format {
            Format::Spec => encode_spec(&spec),
            Format::Json => {
                let spec = spec.with_implements(implements.iter().cloned());
                let spec = match &self.client_tls {
                    Some(t) => spec.with_tls(t.clone()),
                    None => spec,
                };
                encode_json_spec(&spec, &self.name)
            }
        };
        encoded.map_err(|e| ServeError::SpecAddress(format!("{address}: {e}")))
    }

    pub(crate) fn write(
        &self,
        addr: &ListenAddr,
        tls: bool,
        implements: &[String],
    ) -> Result<OwnedFile, ServeError> {
        check_name(&self.name)?;
        let address = self.address(addr, tls)?;
        let content = self.content(&address, implements)?;
        let path = self.path();
        write_atomically(&self.dir, &path, &content)
            .map_err(|e| ServeError::io("write spec file", path.clone(), e))?;
        tracing::info!(path = %path.display(), %address, "wrote plugin spec file");
        OwnedFile::record(&path).map_err(|e| ServeError::io("inspect spec file", path, e))
    }
}

/// A listener on the unspecified address is reached through loopback.
fn reachable(sa: SocketAddr) -> SocketAddr {
    match sa.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), sa.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), sa.port())
        }
        _ => sa,
    }
}

fn write_atomically(dir: &Path, path: &Path, content: &[u8]) -> io::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)?;
    }
    // The temporary name ends in `.tmp`, an extension discovery ignores.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let s = SpecFile::spec("/d", "p");
        let tcp = ListenAddr::Tcp("0.0.0.0:8080".parse().unwrap());
        let text = |s: &SpecFile, a: &ListenAddr, tls: bool| s.address(a, tls).unwrap().to_string();
        assert_eq!(text(&s, &tcp, false), "tcp://127.0.0.1:8080");
        assert_eq!(text(&s, &tcp, true), "https://127.0.0.1:8080");
        let v6 = ListenAddr::Tcp("[::]:1".parse().unwrap());
        assert_eq!(text(&s, &v6, false), "tcp://[::1]:1");
        let unix = ListenAddr::Unix(Some("/run/p.sock".into()));
        assert_eq!(text(&s, &unix, false), "unix:///run/p.sock");
        assert!(s.address(&ListenAddr::Unix(None), false).is_err());
        let s = s.advertise("tcp://plugins.example:80");
        assert_eq!(text(&s, &tcp, false), "tcp://plugins.example:80");
        let s = SpecFile::spec("/d", "p").advertise("localhost:80");
        assert!(
            s.address(&tcp, false).is_err(),
            "scheme-less addresses are refused"
        );
    }

    #[test]
    fn contents_read_back_as_written() {
        let tcp = ListenAddr::Tcp("127.0.0.1:8080".parse().unwrap());
        let kinds = ["VolumeDriver".to_owned()];
        let spec = SpecFile::spec("/d", "p");
        let address = spec.address(&tcp, false).unwrap();
        let text = spec.content(&address, &kinds).unwrap();
        assert_eq!(
            text, b"tcp://127.0.0.1:8080\n",
            "a .spec holds the address only"
        );

        let tls = TlsOptions::with_ca_file("/ca.pem").client_cert("/c.pem", "/k.pem");
        let json = SpecFile::json("/d", "p").client_tls(tls.clone());
        let address = json.address(&tcp, true).unwrap();
        let read = plugin_proto::parse_json_spec(&json.content(&address, &kinds).unwrap()).unwrap();
        assert_eq!(read.address.as_str(), "https://127.0.0.1:8080");
        assert_eq!(read.tls, Some(tls));
        assert_eq!(read.implements.as_deref(), Some(&kinds[..]));

        // Docker trims a .spec: an advertised address it would misread is refused.
        let padded = SpecFile::spec("/d", "p").advertise("unix:///run/p.sock ");
        let address = padded.address(&tcp, false).unwrap();
        assert!(padded.content(&address, &kinds).is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(SpecFile::spec("/d", "p").path(), Path::new("/d/p.spec"));
        assert_eq!(SpecFile::json("/d", "p").path(), Path::new("/d/p.json"));
    }
}
