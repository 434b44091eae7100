//! Where a plugin listens, as one configuration a plugin binary takes from
//! its command line ([`ListenConfig`], with a `clap` derive behind the
//! `clap` feature) and turns into bound listeners, a spec file and TLS
//! ([`Bound`]) for the [`Server`](crate::Server).
//!
//! It must never bind anything before every setting has been checked and
//! every file it needs (TLS material, the socket group) has been read, so
//! a bad flag leaves no socket behind.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use plugin_proto::TlsOptions;

use crate::listen::check_name;
use crate::{DEFAULT_SOCKET_DIR, Listener, ServeError, SpecFile, TlsConfig};

/// Where a plugin listens: a unix socket (by the plugin's name in a
/// directory, or at a path; optionally given to a group with a mode), tcp
/// with a `.spec` or `.json` spec file and optional TLS, or the sockets
/// systemd passed.
///
/// Every field is the command-line flag of the same name (`socket_group`
/// is `--socket-group`). With the `clap` feature it derives
/// [`clap::Args`], so a plugin binary flattens it into its own arguments;
/// without it, start from [`ListenConfig::default`] (the plugin's socket
/// in [`DEFAULT_SOCKET_DIR`]) and set fields.
///
/// ```no_run
/// # #[cfg(feature = "clap")] mod demo {
/// use clap::Parser;
/// use plugin_server::{ListenConfig, Plugin, Server};
///
/// #[derive(Parser)]
/// struct Args {
///     /// The plugin's name.
///     #[arg(long, default_value = "myplugin")]
///     name: String,
///     #[command(flatten)]
///     listen: ListenConfig,
/// }
///
/// async fn run(plugin: Plugin) -> Result<(), Box<dyn std::error::Error>> {
///     let args = Args::parse();
///     let bound = args.listen.bind(&args.name)?;
///     Server::new(plugin).serve_bound(bound).await?;
///     Ok(())
/// }
/// # }
/// ```
///
/// Without `clap`:
///
/// ```no_run
/// use plugin_server::ListenConfig;
///
/// let mut listen = ListenConfig::default();
/// listen.tcp = Some("127.0.0.1:0".into());
/// listen.spec_dir = Some("/etc/docker/plugins".into());
/// let bound = listen.bind("myplugin")?; // myplugin.spec, once serving
/// # Ok::<(), plugin_server::ServeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[non_exhaustive]
pub struct ListenConfig {
    /// Listen on the unix socket at PATH [default: SOCKET_DIR/NAME.sock].
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "PATH", conflicts_with_all = ["socket_dir", "tcp", "systemd"])
    )]
    pub socket: Option<PathBuf>,

    /// The directory of the plugin's socket, NAME.sock (Docker finds
    /// plugins by name in its default).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "DIR", default_value = DEFAULT_SOCKET_DIR, conflicts_with_all = ["tcp", "systemd"])
    )]
    pub socket_dir: PathBuf,

    /// Give the socket file to GROUP (a name or a number); its mode is
    /// then 0660 unless --socket-mode says otherwise.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "GROUP", conflicts_with_all = ["tcp", "systemd"])
    )]
    pub socket_group: Option<String>,

    /// The socket file's permission bits, in octal (660, 0660 or 0o660).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "MODE", value_parser = parse_mode, conflicts_with_all = ["tcp", "systemd"])
    )]
    pub socket_mode: Option<u32>,

    /// Listen on tcp instead (127.0.0.1:0 picks a port); use with
    /// --spec-dir so Docker can find the plugin.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "ADDR", conflicts_with = "systemd")
    )]
    pub tcp: Option<String>,

    /// Use the sockets passed by systemd socket activation (those
    /// LISTEN_FDNAMES names NAME or NAME.socket, if any; all otherwise).
    #[cfg_attr(feature = "clap", arg(long))]
    pub systemd: bool,

    /// Write NAME.spec (or NAME.json with --json-spec) in DIR while
    /// serving, and remove it on exit.
    #[cfg_attr(feature = "clap", arg(long, value_name = "DIR"))]
    pub spec_dir: Option<PathBuf>,

    /// Write a .json spec instead of a .spec file.
    #[cfg_attr(feature = "clap", arg(long, requires = "spec_dir"))]
    pub json_spec: bool,

    /// Serve TLS on tcp with this certificate chain (PEM, leaf first).
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "FILE",
            requires = "tls_key",
            help_heading = "TLS (tcp only)"
        )
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "FILE",
            requires = "tls_cert",
            help_heading = "TLS (tcp only)"
        )
    )]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by a CA in FILE (PEM).
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "FILE",
            requires = "tls_cert",
            help_heading = "TLS (tcp only)"
        )
    )]
    pub tls_client_ca: Option<PathBuf>,

    /// The CA the engine verifies the plugin with, written as the .json
    /// spec's TLSConfig.CAFile.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "FILE",
            requires = "json_spec",
            help_heading = "TLS (tcp only)"
        )
    )]
    pub spec_ca: Option<PathBuf>,

    /// The client certificate the engine presents, written as the .json
    /// spec's TLSConfig.CertFile.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "FILE", requires_all = ["spec_ca", "spec_client_key"], help_heading = "TLS (tcp only)")
    )]
    pub spec_client_cert: Option<PathBuf>,

    /// The key of --spec-client-cert, written as TLSConfig.KeyFile.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "FILE",
            requires = "spec_client_cert",
            help_heading = "TLS (tcp only)"
        )
    )]
    pub spec_client_key: Option<PathBuf>,
}

impl Default for ListenConfig {
    /// The plugin's socket in [`DEFAULT_SOCKET_DIR`], no spec file, no TLS
    /// (what the command line means with no listening flag).
    fn default() -> ListenConfig {
        ListenConfig {
            socket: None,
            socket_dir: PathBuf::from(DEFAULT_SOCKET_DIR),
            socket_group: None,
            socket_mode: None,
            tcp: None,
            systemd: false,
            spec_dir: None,
            json_spec: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            spec_ca: None,
            spec_client_cert: None,
            spec_client_key: None,
        }
    }
}

/// What [`ListenConfig::bind`] made: the listeners, and the spec file and
/// TLS settings [`Server::serve_bound`](crate::Server::serve_bound) serves
/// them with.
#[derive(Debug)]
#[must_use = "the listeners close when dropped; serve them with `Server::serve_bound`"]
pub struct Bound {
    pub(crate) listeners: Vec<Listener>,
    pub(crate) spec: Option<SpecFile>,
    pub(crate) tls: Option<TlsConfig>,
}

impl Bound {
    /// The bound listeners (one, or what systemd passed), for their
    /// addresses.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// The spec file written once serving starts, if any.
    pub fn spec_path(&self) -> Option<PathBuf> {
        self.spec.as_ref().map(SpecFile::path)
    }
}

impl ListenConfig {
    /// Checks the settings, loads the TLS material, then binds the
    /// listeners for plugin `name` (the socket's and spec file's name, and
    /// the name picked out of `LISTEN_FDNAMES`).
    ///
    /// A socket given a group or mode gets them right after it is bound,
    /// before anything is served on it.
    pub fn bind(&self, name: &str) -> Result<Bound, ServeError> {
        check_name(name)?;
        self.check()?;
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(
                cert,
                key,
                self.tls_client_ca.as_deref(),
            )?),
            _ => None,
        };
        let gid = self.socket_group.as_deref().map(group_id).transpose()?;
        let mode = self.socket_mode.or(gid.map(|_| 0o660));
        let spec = self.spec_dir.as_ref().map(|dir| {
            if !self.json_spec {
                return SpecFile::spec(dir, name);
            }
            let spec = SpecFile::json(dir, name);
            match &self.spec_ca {
                Some(ca) => {
                    let mut opts = TlsOptions::with_ca_file(ca);
                    if let (Some(cert), Some(key)) = (&self.spec_client_cert, &self.spec_client_key)
                    {
                        opts = opts.client_cert(cert, key);
                    }
                    spec.client_tls(opts)
                }
                None => spec,
            }
        });
        let listeners = if self.systemd {
            Listener::systemd(name)?
        } else if let Some(addr) = &self.tcp {
            vec![Listener::tcp(addr.as_str())?]
        } else {
            let path = match &self.socket {
                Some(path) => path.clone(),
                None => self.socket_dir.join(format!("{name}.sock")),
            };
            vec![Listener::unix_with_access(&path, gid, mode)?]
        };
        Ok(Bound {
            listeners,
            spec,
            tls,
        })
    }

    /// The rules the `clap` derive enforces, for configurations built in
    /// code; the messages name the flags.
    fn check(&self) -> Result<(), ServeError> {
        let bad = |why: &'static str| Err(ServeError::ListenConfig(why));
        let unix_only = self.socket.is_some()
            || self.socket_group.is_some()
            || self.socket_mode.is_some()
            || self.socket_dir != Path::new(DEFAULT_SOCKET_DIR);
        if self.systemd && self.tcp.is_some() {
            return bad("--tcp and --systemd are exclusive");
        }
        if unix_only && (self.systemd || self.tcp.is_some()) {
            return bad(
                "--socket, --socket-dir, --socket-group and --socket-mode are for a unix socket, not --tcp or --systemd",
            );
        }
        if self.socket_mode.is_some_and(|m| m > 0o7777) {
            return bad("--socket-mode takes permission bits, at most 7777 in octal");
        }
        if self.json_spec && self.spec_dir.is_none() {
            return bad("--json-spec needs --spec-dir");
        }
        if self.spec_ca.is_some() && !self.json_spec {
            return bad("--spec-ca is written in a .json spec: add --json-spec");
        }
        if self.spec_client_cert.is_some() != self.spec_client_key.is_some()
            || (self.spec_client_cert.is_some() && self.spec_ca.is_none())
        {
            return bad("--spec-client-cert and --spec-client-key go together, with --spec-ca");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some()
            || (self.tls_client_ca.is_some() && self.tls_cert.is_none())
        {
            return bad("--tls-cert and --tls-key go together (and --tls-client-ca needs them)");
        }
        if self.tls_cert.is_some() && !self.systemd && self.tcp.is_none() {
            return bad("TLS is served on tcp only: add --tcp (or --systemd with tcp sockets)");
        }
        Ok(())
    }
}

/// `--socket-mode`: octal permission bits.
#[cfg(any(feature = "clap", test))]
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "{s:?} is not a file mode in octal (such as 660 or 0o660)"
        )),
    }
}

/// A group name or number, as a gid.
fn group_id(group: &str) -> Result<u32, ServeError> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let unknown = || ServeError::UnknownGroup(group.to_owned());
    let cname = CString::new(group).map_err(|_| unknown())?;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: `group` is plain old data; all-zero is a valid value.
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the sizes given; the strings
        // getgrnam_r stores in `buf` are not read, only the gid.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(ServeError::io(
                "look up socket group",
                None,
                io::Error::from_raw_os_error(rc),
            ));
        }
        if found.is_null() {
            return Err(unknown());
        }
        return Ok(entry.gr_gid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("689").is_err());
        assert!(parse_mode("17777").is_err());
        assert!(parse_mode("").is_err());
    }

    #[test]
    fn groups_by_number_or_name() {
        assert_eq!(group_id("1234").unwrap(), 1234);
        assert_eq!(group_id("root").unwrap(), 0);
        let e = group_id("no-such-group-here").unwrap_err();
        assert!(matches!(e, ServeError::UnknownGroup(_)), "{e}");
        assert!(matches!(
            group_id("a\0b").unwrap_err(),
            ServeError::UnknownGroup(_)
        ));
    }

    #[test]
    fn conflicting_settings_are_refused_before_binding() {
        let conflict = |f: fn(&mut ListenConfig)| {
            let mut c = ListenConfig::default();
            f(&mut c);
            match c.check() {
                Err(ServeError::ListenConfig(why)) => why,
                other => panic!("{c:?}: {other:?}"),
            }
        };
        assert!(
            conflict(|c| {
                c.tcp = Some("127.0.0.1:0".into());
                c.systemd = true;
            })
            .contains("exclusive")
        );
        assert!(
            conflict(|c| {
                c.tcp = Some("127.0.0.1:0".into());
                c.socket_group = Some("root".into());
            })
            .contains("--socket-group")
        );
        assert!(conflict(|c| c.json_spec = true).contains("--spec-dir"));
        assert!(
            conflict(|c| {
                c.spec_dir = Some("/d".into());
                c.spec_ca = Some("/ca".into());
            })
            .contains("--json-spec")
        );
        assert!(conflict(|c| c.tls_cert = Some("/c".into())).contains("--tls-key"));
        assert!(
            conflict(|c| {
                c.tls_cert = Some("/c".into());
                c.tls_key = Some("/k".into());
            })
            .contains("tcp only")
        );
        let ok = ListenConfig {
            tcp: Some("127.0.0.1:0".into()),
            tls_cert: Some("/c".into()),
            tls_key: Some("/k".into()),
            ..ListenConfig::default()
        };
        assert!(ok.check().is_ok());
        assert!(ListenConfig::default().check().is_ok());
    }
}
