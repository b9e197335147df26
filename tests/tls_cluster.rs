//! Tests of `TempCluster::start_tls`: the throwaway certificates it makes
//! (checked with `openssl`) and the server it starts, checked with `psql`
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

/// Runs `openssl` with `args` and returns its standard output.
fn openssl(args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The subject, subject alternative names and basic constraints of the
/// certificate at `path`, as `openssl x509` prints them.
fn certificate_text(path: &Path) -> String {
    openssl(&[
        "x509",
        "-in",
        &path.to_string_lossy(),
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,basicConstraints",
    ])
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

    let root = certificate_text(&files.root_cert);
    assert!(root.contains("CN = odm test root CA"), "{root}");
    assert!(root.contains("CA:TRUE"), "{root}");
    let untrusted = certificate_text(&files.untrusted_root_cert);
    assert!(
        untrusted.contains("CN = odm untrusted test root CA"),
        "{untrusted}"
    );
    assert!(untrusted.contains("CA:TRUE"), "{untrusted}");

    let server = certificate_text(&files.server_cert);
    assert!(server.contains("DNS:localhost"), "{server}");
    assert!(!server.contains("IP Address"), "{server}");
    assert!(server.contains("CA:FALSE"), "{server}");
    let client = certificate_text(&files.client_cert);
    assert!(client.contains(&format!("CN = {CERT_USER}")), "{client}");

    let root_cert = files.root_cert.to_string_lossy();
    for leaf in [&files.server_cert, &files.client_cert] {
        let verified = openssl(&["verify", "-CAfile", &root_cert, &leaf.to_string_lossy()]);
        assert!(verified.trim_end().ends_with(": OK"), "{verified}");
    }
    let untrusted_cert = files.untrusted_root_cert.to_string_lossy();
    let refused = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            &untrusted_cert,
            &files.server_cert.to_string_lossy(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());

    let client_key = std::fs::metadata(&files.client_key).unwrap();
    assert_eq!(client_key.permissions().mode() & 0o777, 0o600);
    openssl(&["pkey", "-in", &files.client_key.to_string_lossy(), "-noout"]);
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
    assert!(err.contains("no encryption"), "{err}");
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
        )) && err.contains("no encryption"),
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
