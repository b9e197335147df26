//! Tests of `TempCluster::start_tls`: the throwaway certificates it makes
//! (parsed with `x509-parser`, their chains checked with `webpki`, the
//! verifier inside rustls, and the client key loaded by rustls — no
//! `openssl` program needed) and the server it starts, checked with `psql`
//! (libpq is the reference for what a TLS client accepts).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use odm::testing::{
    shared_tls_cluster, TempCluster, TlsFiles, CERT_USER, CLEARTEXT_PASSWORD, CLEARTEXT_USER,
    MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER, SUPERUSER, SUPERUSER_PASSWORD,
    TLS_ONLY_PASSWORD, TLS_ONLY_USER, TLS_SERVER_NAME,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;

/// The process's TLS cluster, shared by the tests that only connect to it.
fn tls_cluster() -> &'static TempCluster {
    shared_tls_cluster().expect("a tls cluster starts")
}

fn tls_files(cluster: &TempCluster) -> &TlsFiles {
    cluster.tls().expect("a tls cluster has tls files")
}

/// Runs `sql` through `psql -X` on the keyword/value connection string
/// `conninfo`; `password`, if any, goes through `PGPASSWORD`, never the
/// command line. Returns the unaligned, tuples-only output, or psql's error.
fn psql(conninfo: &str, password: Option<&str>, sql: &str) -> Result<String, String> {
    let mut command = Command::new("psql");
    command
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "30")
        .env_remove("PGPASSWORD")
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env_remove("PGSSLCERT")
        .env_remove("PGSSLKEY")
        .env_remove("PGSERVICE");
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command.output().expect("psql runs");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// A keyword/value connection string for `user` on `cluster` at `host`,
/// followed by `extra` (e.g. `sslmode=require`).
fn conninfo(cluster: &TempCluster, host: &str, user: &str, extra: &str) -> String {
    format!(
        "host={host} port={} user={user} dbname=postgres {extra}",
        cluster.port()
    )
}

/// `verify-full` against the CA in `root_cert`.
fn verify_full(root_cert: &Path) -> String {
    format!("sslmode=verify-full sslrootcert='{}'", root_cert.display())
}

/// The one certificate in the PEM file at `path`.
fn certificate_der(path: &Path) -> CertificateDer<'static> {
    let certificates = CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(certificates.len(), 1, "{}", path.display());
    certificates.into_iter().next().unwrap()
}

/// What a test checks of a certificate: its subject's common name, its
/// subject alternative names and its basic constraints.
#[derive(Debug)]
struct CertificateFacts {
    common_name: String,
    dns_names: Vec<String>,
    ip_addresses: usize,
    /// `Some(true)` for `CA:TRUE`, `Some(false)` for `CA:FALSE`, `None`
    /// without the extension.
    ca: Option<bool>,
    /// The DER of the subject public key info.
    public_key: Vec<u8>,
}

/// Parses the certificate at `path` (it must be exactly one, well-formed).
fn certificate_facts(path: &Path) -> CertificateFacts {
    let der = certificate_der(path);
    let (rest, certificate) = x509_parser::parse_x509_certificate(&der)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(rest.is_empty(), "{}: trailing bytes", path.display());
    let common_name = certificate
        .subject()
        .iter_common_name()
        .map(|name| name.as_str().expect("a utf-8 common name").to_string())
        .collect::<Vec<_>>();
    assert_eq!(common_name.len(), 1, "{}", path.display());
    let names = certificate
        .subject_alternative_name()
        .expect("at most one subject alternative name extension")
        .map(|extension| extension.value.general_names.clone())
        .unwrap_or_default();
    CertificateFacts {
        common_name: common_name.into_iter().next().unwrap(),
        dns_names: names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_string()),
                _ => None,
            })
            .collect(),
        ip_addresses: names
            .iter()
            .filter(|name| matches!(name, GeneralName::IPAddress(_)))
            .count(),
        ca: certificate
            .basic_constraints()
            .expect("at most one basic constraints extension")
            .map(|extension| extension.value.ca),
        public_key: certificate.public_key().raw.to_vec(),
    }
}

/// Whether the certificate at `leaf` chains to the CA at `root` for
/// `usage`, as webpki (the verifier inside rustls) decides.
fn chains_to(leaf: &Path, root: &Path, usage: webpki::KeyUsage) -> Result<(), webpki::Error> {
    let root = certificate_der(root);
    let anchor = webpki::anchor_from_trusted_cert(&root)?;
    let leaf = certificate_der(leaf);
    let leaf = webpki::EndEntityCert::try_from(&leaf)?;
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        UnixTime::now(),
        usage,
        None,
        None,
    )?;
    Ok(())
}

/// Whether the certificate at `path` is valid for the server name `name`.
fn valid_for_name(path: &Path, name: &str) -> Result<(), webpki::Error> {
    let der = certificate_der(path);
    let certificate = webpki::EndEntityCert::try_from(&der)?;
    certificate.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
}

const SSL_IN_USE: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[test]
fn a_tls_cluster_makes_certificates_that_parse_and_chain_to_its_root() {
    let cluster = tls_cluster();
    let files = tls_files(cluster);
    assert_eq!(files.server_name(), "localhost");
    assert_eq!(TLS_SERVER_NAME, "localhost");
    for path in [
        &files.root_cert,
        &files.untrusted_root_cert,
        &files.server_cert,
        &files.client_cert,
        &files.client_key,
    ] {
        assert!(path.is_file(), "{}", path.display());
        assert!(path.starts_with(cluster.data_dir().parent().unwrap()));
    }

    let root = certificate_facts(&files.root_cert);
    assert_eq!(root.common_name, "odm test root CA", "{root:?}");
    assert_eq!(root.ca, Some(true), "{root:?}");
    let untrusted = certificate_facts(&files.untrusted_root_cert);
    assert_eq!(
        untrusted.common_name, "odm untrusted test root CA",
        "{untrusted:?}"
    );
    assert_eq!(untrusted.ca, Some(true), "{untrusted:?}");

    let server = certificate_facts(&files.server_cert);
    assert_eq!(server.dns_names, ["localhost"], "{server:?}");
    assert_eq!(server.ip_addresses, 0, "{server:?}");
    assert_eq!(server.ca, Some(false), "{server:?}");
    valid_for_name(&files.server_cert, "localhost").unwrap();
    assert!(valid_for_name(&files.server_cert, "127.0.0.1").is_err());
    let client = certificate_facts(&files.client_cert);
    assert_eq!(client.common_name, CERT_USER, "{client:?}");
    assert_eq!(client.ca, Some(false), "{client:?}");

    let server_auth = || webpki::KeyUsage::server_auth();
    let client_auth = || webpki::KeyUsage::client_auth();
    chains_to(&files.server_cert, &files.root_cert, server_auth()).unwrap();
    chains_to(&files.client_cert, &files.root_cert, client_auth()).unwrap();
    assert!(chains_to(
        &files.server_cert,
        &files.untrusted_root_cert,
        server_auth()
    )
    .is_err());
    assert!(chains_to(
        &files.client_cert,
        &files.untrusted_root_cert,
        client_auth()
    )
    .is_err());

    let client_key = std::fs::metadata(&files.client_key).unwrap();
    assert_eq!(client_key.permissions().mode() & 0o777, 0o600);
    // The key parses, rustls can sign with it, and it is the client
    // certificate's.
    let key = PrivateKeyDer::from_pem_file(&files.client_key).unwrap();
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    let public_key = signing_key.public_key().expect("the key's public half");
    assert_eq!(public_key.as_ref(), client.public_key.as_slice());
    assert_eq!(
        std::fs::read_to_string(cluster.data_dir().join("server.crt")).unwrap(),
        std::fs::read_to_string(&files.server_cert).unwrap()
    );
    let server_key = std::fs::metadata(cluster.data_dir().join("server.key")).unwrap();
    assert_eq!(server_key.permissions().mode() & 0o777, 0o600);
    let data_dir = std::fs::metadata(cluster.data_dir()).unwrap();
    assert_eq!(server_key.uid(), data_dir.uid(), "the server owns its key");
}

#[test]
fn verify_full_with_the_cluster_root_and_host_localhost_connects_over_tls() {
    let cluster = tls_cluster();
    let files = tls_files(cluster);
    let target = conninfo(
        cluster,
        files.server_name(),
        SUPERUSER,
        &verify_full(&files.root_cert),
    );
    let answer = psql(&target, Some(SUPERUSER_PASSWORD), SSL_IN_USE).unwrap();
    assert_eq!(answer, "t");
}

#[test]
fn verify_full_with_host_127_0_0_1_fails_on_the_host_name() {
    let cluster = tls_cluster();
    let files = tls_files(cluster);
    let target = conninfo(
        cluster,
        "127.0.0.1",
        SUPERUSER,
        &verify_full(&files.root_cert),
    );
    let err = psql(&target, Some(SUPERUSER_PASSWORD), "SELECT 1").unwrap_err();
    assert!(
        err.contains("does not match host name \"127.0.0.1\""),
        "{err}"
    );
}

#[test]
fn verify_ca_with_host_127_0_0_1_connects_as_it_checks_no_host_name() {
    let cluster = tls_cluster();
    let files = tls_files(cluster);
    let extra = format!(
        "sslmode=verify-ca sslrootcert='{}'",
        files.root_cert.display()
    );
    let target = conninfo(cluster, "127.0.0.1", SUPERUSER, &extra);
    assert_eq!(
        psql(&target, Some(SUPERUSER_PASSWORD), SSL_IN_USE).unwrap(),
        "t"
    );
}

#[test]
fn verify_full_with_the_untrusted_root_fails_on_the_certificate() {
    let cluster = tls_cluster();
    let files = tls_files(cluster);
    let target = conninfo(
        cluster,
        files.server_name(),
        SUPERUSER,
        &verify_full(&files.untrusted_root_cert),
    );
    let err = psql(&target, Some(SUPERUSER_PASSWORD), "SELECT 1").unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
}

#[test]
fn the_cert_user_logs_in_with_its_client_certificate_and_no_password() {
    let cluster = tls_cluster();
    let files = tls_files(cluster);
    let extra = format!(
        "{} sslcert='{}' sslkey='{}'",
        verify_full(&files.root_cert),
        files.client_cert.display(),
        files.client_key.display()
    );
    let target = conninfo(cluster, files.server_name(), CERT_USER, &extra);
    let who = psql(
        &target,
        None,
        "SELECT current_user || ' ' || ssl || ' ' || client_dn \
         FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .unwrap();
    assert_eq!(who, format!("{CERT_USER} true /CN={CERT_USER}"));
}

#[test]
fn the_cert_user_is_refused_without_a_client_certificate_or_without_tls() {
    let cluster = tls_cluster();
    let files = tls_files(cluster);
    let over_tls = conninfo(
        cluster,
        files.server_name(),
        CERT_USER,
        &verify_full(&files.root_cert),
    );
    let err = psql(&over_tls, None, "SELECT 1").unwrap_err();
    assert!(
        err.contains(&format!(
            "certificate authentication failed for user \"{CERT_USER}\""
        )) || err.contains("connection requires a valid client certificate"),
        "{err}"
    );
    let plain = conninfo(cluster, "127.0.0.1", CERT_USER, "sslmode=disable");
    let err = psql(&plain, None, "SELECT 1").unwrap_err();
    assert!(refused_unencrypted(&err), "{err}");
}

/// pg_hba's refusal of a connection without TLS: "no encryption" since
/// PostgreSQL 14, "SSL off" on 13.
fn refused_unencrypted(message: &str) -> bool {
    message.contains("no encryption") || message.contains("SSL off")
}

#[test]
fn the_tls_only_role_logs_in_over_tls_and_is_rejected_without_it() {
    let cluster = tls_cluster();
    let over_tls = conninfo(cluster, "127.0.0.1", TLS_ONLY_USER, "sslmode=require");
    assert_eq!(
        psql(&over_tls, Some(TLS_ONLY_PASSWORD), SSL_IN_USE).unwrap(),
        "t"
    );
    let plain = conninfo(cluster, "127.0.0.1", TLS_ONLY_USER, "sslmode=disable");
    let err = psql(&plain, Some(TLS_ONLY_PASSWORD), "SELECT 1").unwrap_err();
    assert!(
        err.contains(&format!(
            "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"{TLS_ONLY_USER}\""
        )) && refused_unencrypted(&err),
        "{err}"
    );
}

#[test]
fn the_other_roles_of_a_tls_cluster_log_in_with_and_without_tls() {
    let cluster = tls_cluster();
    let roles = [
        (SUPERUSER, SUPERUSER_PASSWORD),
        (MD5_USER, MD5_PASSWORD),
        (SCRAM_USER, SCRAM_PASSWORD),
        (CLEARTEXT_USER, CLEARTEXT_PASSWORD),
    ];
    for (user, password) in roles {
        for (sslmode, ssl) in [("require", "t"), ("disable", "f")] {
            let target = conninfo(cluster, "127.0.0.1", user, &format!("sslmode={sslmode}"));
            assert_eq!(
                psql(&target, Some(password), SSL_IN_USE),
                Ok(ssl.to_string()),
                "{user} with sslmode={sslmode}"
            );
        }
    }
    let rules = psql(
        &conninfo(cluster, "127.0.0.1", SUPERUSER, "sslmode=require"),
        Some(SUPERUSER_PASSWORD),
        "SELECT string_agg(type || ' ' || array_to_string(user_name, ',') || ' ' || auth_method, \
         '; ' ORDER BY line_number) FROM pg_hba_file_rules",
    )
    .unwrap();
    assert_eq!(
        rules,
        "local all trust; hostssl odm_cert cert; hostnossl odm_cert reject; \
         hostssl odm_tls_only scram-sha-256; hostnossl odm_tls_only reject; \
         host odm_md5 md5; host odm_clear password; host all scram-sha-256"
    );
}

#[test]
fn a_scram_login_over_tls_with_channel_binding_required_connects() {
    let cluster = tls_cluster();
    let files = tls_files(cluster);
    let extra = format!("{} channel_binding=require", verify_full(&files.root_cert));
    for (user, password) in [
        (SCRAM_USER, SCRAM_PASSWORD),
        (TLS_ONLY_USER, TLS_ONLY_PASSWORD),
    ] {
        let target = conninfo(cluster, files.server_name(), user, &extra);
        assert_eq!(
            psql(&target, Some(password), SSL_IN_USE),
            Ok("t".to_string()),
            "{user}"
        );
    }
}

#[test]
fn an_md5_login_over_tls_fails_when_channel_binding_is_required() {
    let cluster = tls_cluster();
    let target = conninfo(
        cluster,
        "127.0.0.1",
        MD5_USER,
        "sslmode=require channel_binding=require",
    );
    let err = psql(&target, Some(MD5_PASSWORD), "SELECT 1").unwrap_err();
    assert!(err.contains("channel binding required"), "{err}");
}

#[test]
fn a_plain_cluster_has_no_tls_files_and_refuses_tls() {
    let cluster = TempCluster::start().unwrap();
    assert!(cluster.tls().is_none());
    let target = conninfo(&cluster, "127.0.0.1", SUPERUSER, "sslmode=require");
    let err = psql(&target, Some(SUPERUSER_PASSWORD), "SELECT 1").unwrap_err();
    assert!(err.contains("server does not support SSL"), "{err}");
    let plain = conninfo(&cluster, "127.0.0.1", SUPERUSER, "sslmode=prefer");
    assert_eq!(
        psql(&plain, Some(SUPERUSER_PASSWORD), SSL_IN_USE).unwrap(),
        "f"
    );
}

#[test]
fn a_dropped_tls_cluster_takes_its_certificates_with_it() {
    let cluster = TempCluster::start_tls().unwrap();
    let files = tls_files(&cluster).clone();
    assert!(files.client_key.is_file());
    drop(cluster);
    for path in [&files.root_cert, &files.client_cert, &files.client_key] {
        assert!(!path.exists(), "{}", path.display());
    }
}

/// Also run as a child process by the next test, which then checks that the
/// shared TLS cluster is cleaned up once that process has exited.
#[test]
fn the_shared_tls_cluster_is_started_once_per_process() {
    let first = shared_tls_cluster().unwrap();
    assert!(std::ptr::eq(first, shared_tls_cluster().unwrap()));
    let files = tls_files(first);
    println!("ODM_SHARED_TLS_FILES={}", files.client_key.display());
}

#[test]
fn the_shared_tls_cluster_and_its_certificates_are_removed_when_its_process_exits() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_shared_tls_cluster_is_started_once_per_process",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let client_key = stdout
        .lines()
        .find_map(|line| line.split_once("ODM_SHARED_TLS_FILES=").map(|(_, p)| p))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no tls file printed: {stdout}"));
    // The scratch directory: .../odm-pg-<pid>-.../tls/client.key
    let scratch = client_key.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        scratch.starts_with(std::env::temp_dir()),
        "{}",
        scratch.display()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while scratch.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!scratch.exists(), "{} still exists", scratch.display());
}
