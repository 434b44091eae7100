//! A test PKI built with rcgen: a CA, server and client certificates signed
//! by it, and the bad cases (an unrelated CA, an expired certificate, a
//! wrong host name, keys in every PEM form, encrypted, garbage and empty
//! files), written as PEM files to a directory.
//!
//! ```no_run
//! # async fn demo(dir: &std::path::Path) {
//! use plugin_tests::certs::TestPki;
//! use plugin_tests::server::{ClientAuth, FakePlugin};
//! let pki = TestPki::new(dir);
//! let plugin = FakePlugin::builder()
//!     .activate(&["VolumeDriver"])
//!     .tls(&pki.server(), ClientAuth::Required)
//!     .await;
//! // A client configured with pki.ca_cert, pki.client_cert and
//! // pki.client_key talks to plugin.url("https", "localhost").
//! # }
//! ```
//!
//! Keys: rcgen with ring generates ECDSA P-256 keys only (ring cannot
//! generate RSA keys), so the RSA client key is a fixed 2048-bit test key
//! embedded in this file; its certificate is still generated and signed by
//! the CA at run time. The material is generated once per process and
//! written to every directory asked for.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

/// A fixed RSA-2048 key (PKCS#8) for tests only; ring cannot generate RSA.
const RSA_TEST_KEY_PKCS8: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDESzxBRDGgIegL
n6K6bdIbbeETNM6T7LjZjuvMfAlo+B5Et90obbUnkcsTucLO2tl3yoQvYmJbPW97
UsZTDZJymweh+bsxOxzsRKEyNSSlvIZAPeR18PPST7mPDhKkOcAwN11XAutM9v4P
uCyDWZs+YxEgX33NFpzwsrlx62A4VL4R5AibDSCE3RduYDpRB8+U1g9LrnXW74QP
XQYqu6WxYzj2J6uModzhcIzW4afMkFCrl8zmhEYgBEk5PlQbg1ZwY5SFX1L/tDm6
4gmjHjG4UjSNTKzwnUAoM3sOx/lpqosA5ODY+uZzSpLewiLBnRjqMPMqgnWugepH
86+xZ5cJAgMBAAECggEABHYiMK/KGrz4xWyjpm39daVAI7Lyc3x7dGn69ghnPXX5
yiS4IIyqPLrjzSyHd913ThwnIsEEl0a9hiWZCiVSYT1Zs7pSBN9S29r/Bu+N1lkt
7b9sJ+TCxe7wnk3CBkPBwywe+IozVZS2rKxYgxn68m2cqrTPI9dLEW5XYSEGbGTb
yK6KiC/2CdU1198lvIpROTDBHaJ9s+PJn/f92/0sb+zIxnjskHUEhvs/PRi6VyWC
s9Og2hfAStllthaaQky1UqTsa53iz3zZhg2SfyaJ18a/HcvgA1QYueZjwPXDSfFA
8PrMiiyWBVlrl2Yx/q59i3VOuEqZ3crytGqAW0eA4QKBgQD2crOHqMzjqh0h4rQi
Xj3iyYOSGW6aYLl97+SvG06Lh8p+ue44zaRAw4JyTtgruXAZUycIB1IJme9ByIyX
+rfcbnexIuRQUZnhQOWEL1w1OrhgcXkyBx/e+R1AMxo6owjL/LuMq8AuZP73Io8F
11ldt0bXall35b9EehmCXY2zjQKBgQDL5uVmnxlR0ay6WmzqSVKAYDKpKiTa3JOQ
E1pQCUptWLTUtyOnSjIH5PyUJs5sGAo+X0IYtnTaa5eWSi5fIO8i43p3ZlyTE5lP
/tvF1YD3PhAbqc5H1WuSpJo0P4TWUIaXtwU0naAffZFgPoI8bOlx6uQU6CYtHNVa
QV3Emt+0bQKBgA1zezsHSo+OhGKKFhzeGfCb4RODUdcZOmaWRlwMWIAjHDlIeqkd
CD8ErMUCaqgQSf8H29SDWcXuYfGsOYg+BfUBDoVbiyybF5QEz8IkN5ssJk4VQ3Eo
lGO+IwuS/nZ+2YcQt0fZQ/cESipA959w/o6v5yzwwAtcPdFF/MhxxL8tAoGAeFvS
G7JcQsSu3c2UrvMbBPZD0UE0QhCj9g7GZ6okSclr7IgyPoR4ZdqQEW+at4m1Oj4G
iQniji+maitdlf+dyQ1X8/TzPkn6XJMG7Y9qsgbrgTjJr/NVrVkGQUMhSVR9Lj71
jqpgo1X+oz4iqEJtxjWt7n1eU5DKi508GVqGJD0CgYEAzTQWAiJH9yR47dXF8nAr
qnczDFfaQDx5Bz4Nw411sikaQtAKy6LWJEKzKT3QGEoYQlu3uK9tqGxjFZ1+ggwD
H9jo70JpBGDrdlQ4mDcJSL0acvSnkQ0/CgnEXPTfe8cOWGa1+QsjG56sCZl4EGJo
/Q6RVuSOpnANZEBy5FFUW60=
-----END PRIVATE KEY-----
";

/// A real PKCS#8 `ENCRYPTED PRIVATE KEY` (EC P-256, AES-256-CBC, password
/// `kit-test-password`).
const ENCRYPTED_PKCS8_KEY: &str = "\
-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhDIGXLFHzl1AICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEECpFdgjbmX+N5yvehfc9N/sEgZCr
l0WqlzePTMpSNtPjNIzWv5GEj9ngnCOmecBGd9i12O86zTVZCbtvMUgCRs3/WKyQ
M4Lc/hOorQKXZiZNSr4fVw+l1WU0jeBxkfa4a6Nh6YiqMZ1C/OWBMZCLrdS2o5C7
1W1fGjTJaunRwGtqdoqZi7HmOlbzCl6vIqjXhKJWQNObvaSeRYRo+voAWv3dXaQ=
-----END ENCRYPTED PRIVATE KEY-----
";

/// A legacy OpenSSL-encrypted SEC1 key (`Proc-Type: 4,ENCRYPTED`), which Go's
/// `x509.IsEncryptedPEMBlock` detects.
const ENCRYPTED_LEGACY_KEY: &str = "\
-----BEGIN EC PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-256-CBC,06063CA002E239F0B791A5071C7F63C3

wDs7HvX83HqExoTjvsm+LS+LT/ziweSsF539n4bwo5gcMCnZaX3tIPhjMn4nWg4b
cGubPpwpELJwLtMoWDa+PemdnRBaGyakJvmFai88DZOLNFI8wyh4tAVgUxsNUshM
inOaf1Y16I26KJvcDU9dkpDHye1psGIdKanIpHIsTmA=
-----END EC PRIVATE KEY-----
";

/// A PEM block whose contents are not a certificate or a key.
const GARBAGE_PEM: &str = "\
-----BEGIN CERTIFICATE-----
bm90IGEgY2VydGlmaWNhdGUsIGp1c3QgZ2FyYmFnZSBpbiBhIFBFTSBibG9jaw==
-----END CERTIFICATE-----
";

/// What a server presents: its chain and key, and the CA roots its client
/// certificates must chain to (used by [`crate::server::ClientAuth`]).
#[derive(Debug)]
pub struct ServerCerts {
    /// The server certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key.
    pub key: PrivateKeyDer<'static>,
    /// Roots accepted for client certificates (the test CA).
    pub client_ca: Vec<CertificateDer<'static>>,
}

impl Clone for ServerCerts {
    fn clone(&self) -> ServerCerts {
        ServerCerts {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            client_ca: self.client_ca.clone(),
        }
    }
}

/// A certificate and its key, as PEM and DER.
struct Leaf {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    key_pkcs8: Vec<u8>,
}

/// Everything generated, once per process.
struct Material {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    wrong_ca_pem: String,
    wrong_ca_der: CertificateDer<'static>,
    server: Leaf,
    client: Leaf,
    client_sec1_pem: String,
    client_rsa: Leaf,
    client_rsa_pkcs1_pem: String,
    wrong_ca_server: Leaf,
    expired_server: Leaf,
    wrong_host_server: Leaf,
}

fn new_ca(name: &str) -> (rcgen::Certificate, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert, Issuer::new(params, key))
}

fn new_leaf(
    issuer: &Issuer<'static, KeyPair>,
    sans: &[&str],
    purpose: ExtendedKeyUsagePurpose,
    key: KeyPair,
    expired: bool,
) -> Leaf {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        sans.first().copied().unwrap_or("client"),
    );
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key_pem: key.serialize_pem(),
        key_pkcs8: key.serialize_der(),
    }
}

fn material() -> &'static Material {
    static M: OnceLock<Material> = OnceLock::new();
    M.get_or_init(|| {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        let gen_key = || KeyPair::generate().unwrap();
        let (ca, issuer) = new_ca("plugin-tests CA");
        let (wrong_ca, wrong_issuer) = new_ca("plugin-tests wrong CA");
        let hosts = ["localhost", "127.0.0.1"];
        let client = new_leaf(&issuer, &[], ClientAuth, gen_key(), false);
        let client_sec1_pem = pem("EC PRIVATE KEY", &pkcs8_ec_to_sec1(&client.key_pkcs8));
        let rsa_key = KeyPair::from_pem(RSA_TEST_KEY_PKCS8).unwrap();
        let client_rsa = new_leaf(&issuer, &[], ClientAuth, rsa_key, false);
        let client_rsa_pkcs1_pem = pem("RSA PRIVATE KEY", &pkcs8_inner_key(&client_rsa.key_pkcs8));
        Material {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            wrong_ca_pem: wrong_ca.pem(),
            wrong_ca_der: wrong_ca.der().clone(),
            server: new_leaf(&issuer, &hosts, ServerAuth, gen_key(), false),
            client,
            client_sec1_pem,
            client_rsa,
            client_rsa_pkcs1_pem,
            wrong_ca_server: new_leaf(&wrong_issuer, &hosts, ServerAuth, gen_key(), false),
            expired_server: new_leaf(&issuer, &hosts, ServerAuth, gen_key(), true),
            wrong_host_server: new_leaf(
                &issuer,
                &["wrong-host.example.invalid"],
                ServerAuth,
                gen_key(),
                false,
            ),
        }
    })
}

/// The test PKI's files in one directory. Every field is the path of a PEM
/// file that exists once [`TestPki::new`] returns.
#[derive(Clone, Debug)]
pub struct TestPki {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The test CA certificate (`ca.pem`).
    pub ca_cert: PathBuf,
    /// Server certificate for `localhost` and `127.0.0.1`, signed by the CA.
    pub server_cert: PathBuf,
    /// Its key (PKCS#8, ECDSA P-256).
    pub server_key: PathBuf,
    /// Client certificate (extended key usage: client auth), signed by the CA.
    pub client_cert: PathBuf,
    /// Its key as PKCS#8 (`PRIVATE KEY`, ECDSA P-256).
    pub client_key: PathBuf,
    /// The same key as SEC1 (`EC PRIVATE KEY`, with the curve parameters).
    pub client_key_sec1: PathBuf,
    /// A second client certificate, for an RSA-2048 key, signed by the CA.
    pub client_rsa_cert: PathBuf,
    /// Its key as PKCS#8 (`PRIVATE KEY`).
    pub client_rsa_key: PathBuf,
    /// The same RSA key as PKCS#1 (`RSA PRIVATE KEY`).
    pub client_rsa_key_pkcs1: PathBuf,
    /// An unrelated CA certificate ("wrong CA").
    pub wrong_ca_cert: PathBuf,
    /// Server certificate for `localhost`/`127.0.0.1` signed by the wrong CA.
    pub wrong_ca_server_cert: PathBuf,
    /// Its key.
    pub wrong_ca_server_key: PathBuf,
    /// Server certificate for `localhost`/`127.0.0.1`, signed by the CA,
    /// valid only in the year 2000.
    pub expired_server_cert: PathBuf,
    /// Its key.
    pub expired_server_key: PathBuf,
    /// Server certificate signed by the CA for `wrong-host.example.invalid`
    /// only.
    pub wrong_host_server_cert: PathBuf,
    /// Its key.
    pub wrong_host_server_key: PathBuf,
    /// A real password-protected PKCS#8 key (`ENCRYPTED PRIVATE KEY`).
    pub encrypted_key: PathBuf,
    /// A legacy encrypted key (`EC PRIVATE KEY` with `Proc-Type:
    /// 4,ENCRYPTED`).
    pub encrypted_legacy_key: PathBuf,
    /// A `CERTIFICATE` PEM block whose contents are not a certificate.
    pub garbage_pem: PathBuf,
    /// An empty file.
    pub empty_file: PathBuf,
}

impl TestPki {
    /// Writes the PKI's files into `dir` (which must exist). Panics on IO
    /// errors.
    pub fn new(dir: impl AsRef<Path>) -> TestPki {
        let m = material();
        let dir = dir.as_ref().to_path_buf();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
            p
        };
        TestPki {
            ca_cert: write("ca.pem", &m.ca_pem),
            server_cert: write("server-cert.pem", &m.server.cert_pem),
            server_key: write("server-key.pem", &m.server.key_pem),
            client_cert: write("client-cert.pem", &m.client.cert_pem),
            client_key: write("client-key.pem", &m.client.key_pem),
            client_key_sec1: write("client-key-sec1.pem", &m.client_sec1_pem),
            client_rsa_cert: write("client-rsa-cert.pem", &m.client_rsa.cert_pem),
            client_rsa_key: write("client-rsa-key.pem", &m.client_rsa.key_pem),
            client_rsa_key_pkcs1: write("client-rsa-key-pkcs1.pem", &m.client_rsa_pkcs1_pem),
            wrong_ca_cert: write("wrong-ca.pem", &m.wrong_ca_pem),
            wrong_ca_server_cert: write("wrong-ca-server-cert.pem", &m.wrong_ca_server.cert_pem),
            wrong_ca_server_key: write("wrong-ca-server-key.pem", &m.wrong_ca_server.key_pem),
            expired_server_cert: write("expired-server-cert.pem", &m.expired_server.cert_pem),
            expired_server_key: write("expired-server-key.pem", &m.expired_server.key_pem),
            wrong_host_server_cert: write(
                "wrong-host-server-cert.pem",
                &m.wrong_host_server.cert_pem,
            ),
            wrong_host_server_key: write("wrong-host-server-key.pem", &m.wrong_host_server.key_pem),
            encrypted_key: write("encrypted-key.pem", ENCRYPTED_PKCS8_KEY),
            encrypted_legacy_key: write("encrypted-legacy-key.pem", ENCRYPTED_LEGACY_KEY),
            garbage_pem: write("garbage.pem", GARBAGE_PEM),
            empty_file: write("empty.pem", ""),
            dir,
        }
    }

    /// The good server: `localhost`/`127.0.0.1`, signed by the CA.
    pub fn server(&self) -> ServerCerts {
        server_certs(&material().server)
    }

    /// A server whose certificate is signed by the wrong CA.
    pub fn server_wrong_ca(&self) -> ServerCerts {
        server_certs(&material().wrong_ca_server)
    }

    /// A server whose certificate (signed by the CA) expired in 2001.
    pub fn server_expired(&self) -> ServerCerts {
        server_certs(&material().expired_server)
    }

    /// A server whose certificate (signed by the CA) names only
    /// `wrong-host.example.invalid`.
    pub fn server_wrong_host(&self) -> ServerCerts {
        server_certs(&material().wrong_host_server)
    }

    /// The CA certificate as DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        material().ca_der.clone()
    }

    /// The wrong CA's certificate as DER.
    pub fn wrong_ca_der(&self) -> CertificateDer<'static> {
        material().wrong_ca_der.clone()
    }

    /// A rustls root store trusting only the test CA.
    pub fn ca_roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der()).unwrap();
        roots
    }

    /// The ECDSA client certificate chain (leaf only) and its key.
    pub fn client_identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let c = &material().client;
        (
            vec![c.cert_der.clone()],
            PrivatePkcs8KeyDer::from(c.key_pkcs8.clone()).into(),
        )
    }

    /// The RSA client certificate chain (leaf only) and its key as PKCS#1.
    pub fn client_rsa_identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let c = &material().client_rsa;
        let pkcs1 = pkcs8_inner_key(&c.key_pkcs8);
        (
            vec![c.cert_der.clone()],
            PrivatePkcs1KeyDer::from(pkcs1).into(),
        )
    }
}

fn server_certs(leaf: &Leaf) -> ServerCerts {
    ServerCerts {
        chain: vec![leaf.cert_der.clone()],
        key: PrivatePkcs8KeyDer::from(leaf.key_pkcs8.clone()).into(),
        client_ca: vec![material().ca_der.clone()],
    }
}

// ---------------------------------------------------------------------------
// Minimal DER and PEM handling for the key-format conversions
// ---------------------------------------------------------------------------

/// Splits one DER TLV off `input`: (tag, whole TLV, contents, rest).
fn tlv(input: &[u8]) -> (u8, &[u8], &[u8], &[u8]) {
    let tag = input[0];
    let (len, hdr) = match input[1] {
        n if n < 0x80 => (n as usize, 2),
        n => {
            let k = (n & 0x7f) as usize;
            let len = input[2..2 + k]
                .iter()
                .fold(0usize, |a, &b| (a << 8) | b as usize);
            (len, 2 + k)
        }
    };
    (
        tag,
        &input[..hdr + len],
        &input[hdr..hdr + len],
        &input[hdr + len..],
    )
}

/// Encodes a DER TLV.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = contents.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// The `privateKey` OCTET STRING contents of a PKCS#8 `PrivateKeyInfo`: the
/// PKCS#1 `RSAPrivateKey` for RSA, the SEC1 `ECPrivateKey` for EC.
fn pkcs8_inner_key(pkcs8: &[u8]) -> Vec<u8> {
    let (_, _, info, _) = tlv(pkcs8);
    let (_, _, _version, rest) = tlv(info);
    let (_, _, _alg, rest) = tlv(rest);
    let (tag, _, key, _) = tlv(rest);
    assert_eq!(tag, 0x04, "PKCS#8 privateKey is an OCTET STRING");
    key.to_vec()
}

/// Converts a PKCS#8 EC key to SEC1, adding the `[0] parameters` (named
/// curve) that ring leaves out, since Go's `x509.ParseECPrivateKey` needs
/// them.
fn pkcs8_ec_to_sec1(pkcs8: &[u8]) -> Vec<u8> {
    let (_, _, info, _) = tlv(pkcs8);
    let (_, _, _version, rest) = tlv(info);
    let (_, _, alg, _) = tlv(rest);
    let (_, _, _ec_public_key_oid, alg_rest) = tlv(alg);
    let (_, curve_oid, _, _) = tlv(alg_rest);
    let inner = pkcs8_inner_key(pkcs8);
    let (_, _, mut fields, _) = tlv(&inner);
    let mut out = Vec::new();
    let mut has_params = false;
    let mut index = 0;
    while !fields.is_empty() {
        let (tag, whole, _, rest) = tlv(fields);
        if tag == 0xa0 {
            has_params = true;
        }
        if tag == 0xa1 && !has_params {
            out.extend_from_slice(&der(0xa0, curve_oid));
            has_params = true;
        }
        out.extend_from_slice(whole);
        index += 1;
        fields = rest;
    }
    if !has_params && index >= 2 {
        out.extend_from_slice(&der(0xa0, curve_oid));
    }
    der(0x30, &out)
}

/// PEM-encodes `der` with the given label.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &b)| a | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_matches_known_base64() {
        assert_eq!(
            pem("X", b"Man"),
            "-----BEGIN X-----\nTWFu\n-----END X-----\n"
        );
        assert_eq!(
            pem("X", b"Ma"),
            "-----BEGIN X-----\nTWE=\n-----END X-----\n"
        );
        assert_eq!(pem("X", b"M"), "-----BEGIN X-----\nTQ==\n-----END X-----\n");
    }
}
