//! [`TlsFiles`]: the throwaway certificates of a TLS
//! [`TempCluster`](super::TempCluster), made with `rcgen` when the cluster
//! starts.
//!
//! Two certificate authorities are made: the one that signs the server's and
//! the client's certificates, and an untrusted one that signs nothing the
//! server uses (to test that a client refuses a server it cannot trust). The
//! server's certificate names only the DNS name [`TLS_SERVER_NAME`], no IP
//! address, so a client that verifies host names accepts `localhost` and
//! refuses `127.0.0.1`. Keys are ECDSA P-256 signed with SHA-256, so the
//! `tls-server-end-point` channel binding of the server certificate is its
//! SHA-256 hash.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use super::scratch::{RunAs, ScratchDir};
use super::CERT_USER;
use crate::Error;

/// The only name the server certificate of a TLS cluster is valid for.
pub const TLS_SERVER_NAME: &str = "localhost";

/// The server's certificate, key and trusted client CA, by the names the
/// server settings use (relative to the data directory).
pub(crate) const SERVER_CERT_FILE: &str = "server.crt";
pub(crate) const SERVER_KEY_FILE: &str = "server.key";
pub(crate) const SERVER_CA_FILE: &str = "root.crt";

/// The certificates and keys of a TLS [`TempCluster`](super::TempCluster),
/// for clients to use. They live in the cluster's directory and are removed
/// with it.
///
/// The server's own copies (`server.crt`, `server.key` and `root.crt`, the
/// CA it trusts for client certificates) are in its data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// The CA certificate (PEM) that signed the server's and the client's
    /// certificates: `sslrootcert` for `verify-ca` and `verify-full`.
    pub root_cert: PathBuf,
    /// A second CA certificate (PEM) that signed nothing the server uses:
    /// verifying the server against it must fail.
    pub untrusted_root_cert: PathBuf,
    /// The server's certificate (PEM), as the server presents it; for
    /// checking channel-binding data (its SHA-256 hash).
    pub server_cert: PathBuf,
    /// A client certificate (PEM) whose common name is
    /// [`CERT_USER`](super::CERT_USER), signed by [`root_cert`](Self::root_cert):
    /// `sslcert` for a client-certificate login.
    pub client_cert: PathBuf,
    /// The private key (PEM, PKCS#8, mode 0600) of
    /// [`client_cert`](Self::client_cert): `sslkey`.
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// The host name the server certificate is valid for: `"localhost"`
    /// ([`TLS_SERVER_NAME`]). The cluster listens on 127.0.0.1, which the
    /// certificate does not name.
    pub fn server_name(&self) -> &'static str {
        TLS_SERVER_NAME
    }

    /// Makes the certificates: the client's files go to a `tls` directory in
    /// `scratch` (the client key owned by this process, mode 0600, as libpq
    /// demands), the server's into `data_dir`, owned by `run_as` (the user
    /// the server runs as) when set, its key with mode 0600 as the server
    /// demands.
    pub(crate) fn create(
        scratch: &ScratchDir,
        data_dir: &Path,
        run_as: Option<RunAs>,
    ) -> Result<TlsFiles, Error> {
        let made = Certificates::make()
            .map_err(|e| Error::Server(format!("cannot make the test certificates: {e}")))?;
        // Owned by the server's user, like the rest of the cluster's
        // directory, so that its watchdog can remove it.
        let dir = scratch.subdir("tls", run_as)?;
        let files = TlsFiles {
            root_cert: dir.join("root.crt"),
            untrusted_root_cert: dir.join("untrusted-root.crt"),
            server_cert: dir.join("server.crt"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        write_file(&files.root_cert, &made.root_cert, 0o644, None)?;
        write_file(
            &files.untrusted_root_cert,
            &made.untrusted_root_cert,
            0o644,
            None,
        )?;
        write_file(&files.server_cert, &made.server_cert, 0o644, None)?;
        write_file(&files.client_cert, &made.client_cert, 0o644, None)?;
        write_file(&files.client_key, &made.client_key, 0o600, None)?;

        write_file(
            &data_dir.join(SERVER_CERT_FILE),
            &made.server_cert,
            0o644,
            run_as,
        )?;
        write_file(
            &data_dir.join(SERVER_KEY_FILE),
            &made.server_key,
            0o600,
            run_as,
        )?;
        write_file(
            &data_dir.join(SERVER_CA_FILE),
            &made.root_cert,
            0o644,
            run_as,
        )?;
        Ok(files)
    }
}

/// The PEM text of every certificate and key a TLS cluster needs.
struct Certificates {
    root_cert: String,
    untrusted_root_cert: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

impl Certificates {
    fn make() -> Result<Certificates, rcgen::Error> {
        let root_key = KeyPair::generate()?;
        let root_params = ca_params("odm test root CA");
        let root_cert = root_params.self_signed(&root_key)?;
        let root = Issuer::new(root_params, root_key);

        let untrusted_key = KeyPair::generate()?;
        let untrusted_root_cert =
            ca_params("odm untrusted test root CA").self_signed(&untrusted_key)?;

        let server_key = KeyPair::generate()?;
        let mut server_params = leaf_params("odm test server", ExtendedKeyUsagePurpose::ServerAuth);
        server_params.subject_alt_names = vec![SanType::DnsName(TLS_SERVER_NAME.try_into()?)];
        let server_cert = server_params.signed_by(&server_key, &root)?;

        let client_key = KeyPair::generate()?;
        let client_cert = leaf_params(CERT_USER, ExtendedKeyUsagePurpose::ClientAuth)
            .signed_by(&client_key, &root)?;

        Ok(Certificates {
            root_cert: root_cert.pem(),
            untrusted_root_cert: untrusted_root_cert.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        })
    }
}

/// A certificate authority named `common_name` that may sign certificates.
fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_only(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// An end-entity certificate named `common_name`, for `usage`.
fn leaf_params(common_name: &str, usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_only(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    params
}

fn common_name_only(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Writes `contents` to the new file `path` with `mode`, owned by `owner`
/// when set.
fn write_file(path: &Path, contents: &str, mode: u32, owner: Option<RunAs>) -> Result<(), Error> {
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()));
    written.map_err(|e| Error::Server(format!("cannot write {}: {e}", path.display())))?;
    if let Some(owner) = owner {
        owner.chown(path)?;
    }
    Ok(())
}
