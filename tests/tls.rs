//! TLS against real servers: the `sslmode` × server matrix with libpq's
//! outcome for each cell, `prefer` on one socket, certificate checks and
//! their typed errors, client-certificate login, `sslnegotiation=direct`
//! (encrypted on PostgreSQL 17+, a handshake error before), many handshakes at once, and heavy pipelining and
//! COPY through the encrypted stream.
//!
//! Run: `cargo test --test tls`

mod green_tasks;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use green_tasks::{on_green, spawn};
use odm::pg::{Client, Config};
use odm::pg::{Error, TlsFailure};
use odm::testing::{
    shared_cluster, shared_tls_cluster, FaultProxy, TempCluster, CERT_USER, TLS_ONLY_PASSWORD,
    TLS_ONLY_USER,
};

/// The superuser URL of `cluster`'s maintenance database at `host`, with
/// `settings` as its query.
fn url_at(cluster: &TempCluster, host: &str, settings: &str) -> String {
    format!(
        "postgresql+green://odm:odmtest@{host}:{}/postgres?{settings}",
        cluster.port()
    )
}

fn tls_cluster() -> &'static TempCluster {
    shared_tls_cluster().expect("the tls test cluster starts")
}

fn plain_cluster() -> &'static TempCluster {
    shared_cluster().expect("the plain test cluster starts")
}

/// `sslrootcert=<the TLS cluster's CA>`.
fn trusted_root() -> String {
    let files = tls_cluster().tls().expect("tls files");
    format!("sslrootcert={}", files.root_cert.display())
}

/// Connects to `url` on a green worker and says whether the session is
/// encrypted, as the server sees it.
fn encrypted(url: &str) -> Result<bool, Error> {
    let config = Config::parse(url).expect("a valid url");
    on_green(move || {
        let client = Client::connect(&config)?;
        let row = client.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )?;
        Ok(row.get(0))
    })
}

fn tls_failure(result: Result<bool, Error>) -> (TlsFailure, String) {
    match result {
        Err(e @ Error::Tls { failure, .. }) => (failure, e.to_string()),
        other => panic!("expected a tls error, got {other:?}"),
    }
}

#[test]
fn each_sslmode_against_a_plain_and_a_tls_server_gives_libpqs_outcome() {
    // (sslmode, plain server: Some(encrypted) or refused, tls server)
    let cells: [(&str, Option<bool>, bool); 6] = [
        ("disable", Some(false), false),
        ("allow", Some(false), false),
        ("prefer", Some(false), true),
        ("require", None, true),
        ("verify-ca", None, true),
        ("verify-full", None, true),
    ];
    let root = trusted_root();
    for (mode, on_plain, on_tls) in cells {
        let settings = format!("sslmode={mode}&{root}");
        let plain = encrypted(&url_at(plain_cluster(), "localhost", &settings));
        match on_plain {
            Some(expected) => assert_eq!(plain.unwrap(), expected, "sslmode={mode} on plain"),
            None => {
                let (failure, text) = tls_failure(plain);
                assert_eq!(failure, TlsFailure::ServerRefused, "sslmode={mode}: {text}");
                let target = format!("localhost:{}", plain_cluster().port());
                assert!(text.contains(&target), "{text}");
            }
        }
        let tls = encrypted(&url_at(tls_cluster(), "localhost", &settings));
        assert_eq!(tls.unwrap(), on_tls, "sslmode={mode} on tls");
    }
}

#[test]
fn the_default_sslmode_is_prefer_and_encrypts_against_a_tls_server() {
    assert!(encrypted(&url_at(tls_cluster(), "127.0.0.1", "")).unwrap());
    assert!(!encrypted(&url_at(plain_cluster(), "127.0.0.1", "")).unwrap());
}

#[test]
fn prefer_against_a_tls_server_opens_exactly_one_tcp_connection() {
    let proxy = FaultProxy::in_front_of("127.0.0.1", tls_cluster().port()).unwrap();
    let url = proxy.proxied_url(&tls_cluster().url()).unwrap();
    assert!(encrypted(&format!("{url}?sslmode=prefer")).unwrap());
    assert_eq!(proxy.connections_accepted(), 1);
}

#[test]
fn allow_retries_with_tls_when_the_server_rejects_a_plain_connection() {
    let url = tls_cluster().url_for(TLS_ONLY_USER, TLS_ONLY_PASSWORD, "postgres");
    let proxy = FaultProxy::in_front_of("127.0.0.1", tls_cluster().port()).unwrap();
    let proxied = proxy.proxied_url(&url).unwrap();
    assert!(encrypted(&format!("{proxied}?sslmode=allow")).unwrap());
    assert_eq!(proxy.connections_accepted(), 2, "plain, then tls");
}

#[test]
fn disable_against_a_tls_only_role_is_the_servers_refusal() {
    let url = tls_cluster().url_for(TLS_ONLY_USER, TLS_ONLY_PASSWORD, "postgres");
    match encrypted(&format!("{url}?sslmode=disable")) {
        Err(Error::Db(e)) => assert_eq!(e.code, "28000", "{e}"),
        other => panic!("expected the pg_hba rejection, got {other:?}"),
    }
}

#[test]
fn verify_full_against_a_name_the_certificate_lacks_is_a_hostname_mismatch() {
    // The server certificate names `localhost` only, not 127.0.0.1.
    let url = url_at(
        tls_cluster(),
        "127.0.0.1",
        &format!("sslmode=verify-full&{}", trusted_root()),
    );
    let (failure, text) = tls_failure(encrypted(&url));
    assert_eq!(failure, TlsFailure::HostnameMismatch, "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", tls_cluster().port())),
        "{text}"
    );
}

#[test]
fn verify_ca_does_not_check_the_host_name() {
    let url = url_at(
        tls_cluster(),
        "127.0.0.1",
        &format!("sslmode=verify-ca&{}", trusted_root()),
    );
    assert!(encrypted(&url).unwrap());
}

#[test]
fn verify_full_against_an_untrusted_authority_is_an_untrusted_certificate() {
    let files = tls_cluster().tls().unwrap();
    let settings = format!(
        "sslmode=verify-full&sslrootcert={}",
        files.untrusted_root_cert.display()
    );
    let (failure, text) = tls_failure(encrypted(&url_at(tls_cluster(), "localhost", &settings)));
    assert_eq!(failure, TlsFailure::UntrustedCertificate, "{text}");
}

#[test]
fn require_with_a_root_certificate_checks_the_chain_as_verify_ca() {
    let files = tls_cluster().tls().unwrap();
    let settings = format!(
        "sslmode=require&sslrootcert={}",
        files.untrusted_root_cert.display()
    );
    let (failure, _) = tls_failure(encrypted(&url_at(tls_cluster(), "localhost", &settings)));
    assert_eq!(failure, TlsFailure::UntrustedCertificate);
}

#[test]
fn a_missing_root_certificate_file_is_a_certificate_file_error_naming_it() {
    let settings = "sslmode=verify-full&sslrootcert=/nonexistent/odm/root.crt";
    let (failure, text) = tls_failure(encrypted(&url_at(tls_cluster(), "localhost", settings)));
    assert_eq!(failure, TlsFailure::CertificateFile, "{text}");
    assert!(text.contains("/nonexistent/odm/root.crt"), "{text}");
}

#[test]
fn a_client_certificate_logs_in_the_cert_role() {
    let files = tls_cluster().tls().unwrap();
    let url = format!(
        "postgresql+green://{CERT_USER}@localhost:{}/postgres?sslmode=verify-full&{}\
         &sslcert={}&sslkey={}",
        tls_cluster().port(),
        trusted_root(),
        files.client_cert.display(),
        files.client_key.display()
    );
    let config = Config::parse(&url).unwrap();
    let user: String = on_green(move || {
        let client = Client::connect(&config)?;
        Ok::<_, Error>(client.query_one("SELECT current_user::text", &[])?.get(0))
    })
    .unwrap();
    assert_eq!(user, CERT_USER);
}

#[test]
fn a_private_key_others_can_read_is_refused_before_connecting() {
    use std::os::unix::fs::PermissionsExt;
    let files = tls_cluster().tls().unwrap();
    let loose = std::env::temp_dir().join(format!("odm-loose-{}.key", std::process::id()));
    std::fs::copy(&files.client_key, &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!(
        "postgresql+green://{CERT_USER}@localhost:{}/postgres?sslmode=verify-full&{}\
         &sslcert={}&sslkey={}",
        tls_cluster().port(),
        trusted_root(),
        files.client_cert.display(),
        loose.display()
    );
    let config = Config::parse(&url).unwrap();
    let e = on_green(move || Client::connect(&config).map(drop)).unwrap_err();
    let _ = std::fs::remove_file(&loose);
    assert!(
        matches!(
            e,
            Error::Tls {
                failure: TlsFailure::CertificateFile,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("permissions 0644"), "{e}");
}

#[test]
fn the_cert_role_without_a_client_certificate_is_refused_by_the_server() {
    let url = format!(
        "postgresql+green://{CERT_USER}@localhost:{}/postgres?sslmode=verify-full&{}",
        tls_cluster().port(),
        trusted_root()
    );
    assert!(matches!(encrypted(&url), Err(Error::Db(_))));
}

/// The TLS cluster's `server_version_num` (e.g. 150004).
fn tls_server_version() -> i32 {
    let config = Config::parse(&url_at(tls_cluster(), "localhost", "sslmode=disable")).unwrap();
    on_green(move || {
        let version: String = Client::connect(&config)?
            .query_one("SHOW server_version_num", &[])?
            .get(0);
        Ok::<_, Error>(version.parse().expect("a number"))
    })
    .unwrap()
}

#[test]
fn direct_tls_is_encrypted_on_postgresql_17_and_later_and_fails_at_once_with_a_handshake_error_before(
) {
    if tls_server_version() >= 170_000 {
        let settings = format!(
            "sslmode=verify-full&sslnegotiation=direct&connect_timeout=10&{}",
            trusted_root()
        );
        assert!(encrypted(&url_at(tls_cluster(), "localhost", &settings)).unwrap());
        return;
    }
    let settings = "sslmode=require&sslnegotiation=direct&connect_timeout=10";
    let started = Instant::now();
    let (failure, text) = tls_failure(encrypted(&url_at(tls_cluster(), "localhost", settings)));
    assert_eq!(failure, TlsFailure::Handshake, "{text}");
    assert!(text.contains("PostgreSQL 17"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn direct_tls_with_a_mode_that_allows_plain_is_a_configuration_error() {
    let settings = "sslmode=prefer&sslnegotiation=direct";
    match encrypted(&url_at(tls_cluster(), "localhost", settings)) {
        Err(Error::Config(text)) => assert!(text.contains("sslnegotiation=direct"), "{text}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn two_hundred_tls_handshakes_run_at_once_on_green_tasks() {
    let url = url_at(
        tls_cluster(),
        "localhost",
        &format!("sslmode=verify-full&{}", trusted_root()),
    );
    let config = Config::parse(&url).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i: i32| {
            let config = config.clone();
            spawn(move || {
                let client = Client::connect(&config)?;
                let row = client.query_one(
                    "SELECT $1::int4, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[&i],
                )?;
                Ok::<_, Error>((row.get::<_, i32>(0), row.get::<_, bool>(1)))
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (echo, ssl) = task.join().unwrap().unwrap();
        assert_eq!(echo, i as i32);
        assert!(ssl);
    }
}

#[test]
fn a_tls_connection_survives_heavy_pipelining_from_many_tasks() {
    let url = url_at(
        tls_cluster(),
        "localhost",
        &format!("sslmode=verify-full&{}", trusted_root()),
    );
    let config = Config::parse(&url).unwrap();
    let client = Arc::new(on_green(move || Client::connect(&config)).unwrap());
    let tasks: Vec<_> = (0..256)
        .map(|task: i32| {
            let client = client.clone();
            spawn(move || {
                for n in 0..50 {
                    let value = task * 1000 + n;
                    let row = client
                        .query_one("SELECT $1::int4 + 1, repeat('x', $2)", &[&value, &(n * 40)])?;
                    assert_eq!(row.get::<_, i32>(0), value + 1);
                    assert_eq!(row.get::<_, String>(1).len(), (n * 40) as usize);
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.join().unwrap().unwrap();
    }
}

#[test]
fn a_large_copy_goes_both_ways_over_tls() {
    let url = url_at(
        tls_cluster(),
        "localhost",
        &format!("sslmode=verify-full&{}", trusted_root()),
    );
    let config = Config::parse(&url).unwrap();
    on_green(move || {
        let c = Client::connect(&config)?;
        c.batch_execute("CREATE TEMP TABLE big (id int8, name text)")?;
        let mut w = c.copy_in("COPY big FROM STDIN")?;
        for i in 0..200_000 {
            writeln!(w, "{i}\tname number {i} padded to be a little longer")?;
        }
        assert_eq!(w.finish()?, 200_000);
        let mut data = Vec::new();
        let mut r = c.copy_out("COPY big TO STDOUT")?;
        r.read_to_end(&mut data)?;
        drop(r);
        assert!(data.len() > 10_000_000, "{}", data.len());
        let text = String::from_utf8(data).unwrap();
        assert_eq!(text.lines().count(), 200_000);
        let row = c.query_one("SELECT count(*), sum(id)::int8 FROM big", &[])?;
        assert_eq!(row.get::<_, i64>(0), 200_000);
        assert_eq!(row.get::<_, i64>(1), 199_999 * 200_000 / 2);
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn a_query_past_query_timeout_is_cancelled_over_tls_and_the_connection_is_reused() {
    let url = url_at(
        tls_cluster(),
        "localhost",
        &format!("sslmode=verify-full&{}&query_timeout=300", trusted_root()),
    );
    let config = Config::parse(&url).unwrap();
    on_green(move || {
        let client = Client::connect(&config).unwrap();
        let started = Instant::now();
        let e = client.query("SELECT pg_sleep(10)", &[]).unwrap_err();
        assert!(e.is_query_timeout(), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(!client.is_closed());
        let n: i32 = client.query_one("SELECT 7", &[]).unwrap().get(0);
        assert_eq!(n, 7);
    });
}

#[test]
fn cancel_query_reaches_a_server_that_requires_tls() {
    let url = tls_cluster().url_for(TLS_ONLY_USER, TLS_ONLY_PASSWORD, "postgres");
    let config = Config::parse(&format!("{url}?sslmode=require")).unwrap();
    let client = Arc::new(on_green(move || Client::connect(&config)).unwrap());
    let token = client.cancel_token();
    let sleeper = client.clone();
    let sleeping = spawn(move || sleeper.query("SELECT pg_sleep(10)", &[]).map(|_| ()));
    let started = Instant::now();
    // The sleep may not have reached the server yet: cancel until it ends.
    while !sleeping.is_finished() && started.elapsed() < Duration::from_secs(5) {
        let token = token.clone();
        on_green(move || token.cancel_query()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    match sleeping.join().unwrap() {
        Err(Error::Db(e)) => assert_eq!(e.code, "57014", "{e}"),
        other => panic!("expected the cancellation, got {other:?}"),
    }
}

#[test]
fn a_server_that_accepts_tls_and_then_goes_silent_fails_within_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut request = [0u8; 8];
        client.read_exact(&mut request).unwrap();
        client.write_all(b"S").unwrap();
        // Hold the socket open and say nothing more.
        std::thread::sleep(Duration::from_secs(10));
        drop(client);
    });
    let url =
        format!("postgresql+green://u:p@127.0.0.1:{port}/d?sslmode=require&connect_timeout=1");
    let started = Instant::now();
    match encrypted(&url) {
        Err(Error::Connect { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{source}")
        }
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn sslrootcert_system_refuses_a_certificate_no_platform_root_vouches_for_even_under_require() {
    // The test CA is in no platform trust store: the system roots refuse
    // the server, where plain `require` would have accepted any certificate.
    let settings = "sslmode=require&sslrootcert=system";
    let (failure, text) = tls_failure(encrypted(&url_at(tls_cluster(), "localhost", settings)));
    assert!(
        matches!(
            failure,
            TlsFailure::UntrustedCertificate | TlsFailure::CertificateFile
        ),
        "{text}"
    );
}
