//! [`TempCluster`]: a throwaway PostgreSQL server started from the installed
//! server binaries.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::binaries::find_server_bin_dir;
use super::psql;
use super::scratch::{tail_of, RunAs, ScratchDir};
use super::server_process::ServerProcess;
use super::template;
use super::tls_files::{TlsFiles, SERVER_CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE};
use super::url::cluster_url;
use super::{
    CERT_USER, CLEARTEXT_PASSWORD, CLEARTEXT_USER, MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD,
    SCRAM_USER, SUPERUSER, SUPERUSER_PASSWORD, TLS_ONLY_PASSWORD, TLS_ONLY_USER,
};
use crate::Error;

/// How many fresh ports are tried when another process takes the chosen one
/// between choosing and binding it.
const PORT_ATTEMPTS: usize = 8;

/// How long a starting server may take to accept connections. Generous,
/// because many test binaries may start servers at once on a small machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The client authentication rules of every cluster: trust over the unix
/// socket; md5, cleartext password or SCRAM over TCP depending on the role.
const PG_HBA: &str = "\
# written by odm::testing::TempCluster
local all         all          trust
local replication all          trust
host  all odm_md5   127.0.0.1/32 md5
host  all odm_clear 127.0.0.1/32 password
host  all all       127.0.0.1/32 scram-sha-256
";

/// The client authentication rules of a TLS cluster ([`TempCluster::start_tls`]):
/// those of [`PG_HBA`], after rules for a role that logs in with a client
/// certificate and one that may only come over TLS. The `host` lines match
/// connections with and without TLS.
const PG_HBA_TLS: &str = "\
# written by odm::testing::TempCluster::start_tls
local     all all          trust
hostssl   all odm_cert     127.0.0.1/32 cert
hostnossl all odm_cert     127.0.0.1/32 reject
hostssl   all odm_tls_only 127.0.0.1/32 scram-sha-256
hostnossl all odm_tls_only 127.0.0.1/32 reject
host      all odm_md5      127.0.0.1/32 md5
host      all odm_clear    127.0.0.1/32 password
host      all all          127.0.0.1/32 scram-sha-256
";

/// A throwaway PostgreSQL server for tests and examples.
///
/// [`TempCluster::start`] runs `initdb` into a fresh temporary directory and
/// starts `postgres` on a free TCP port of 127.0.0.1 plus a private unix
/// socket directory, tuned for speed over durability (`fsync=off`), with
/// room for 300 connections. The roles [`SUPERUSER`], [`MD5_USER`],
/// [`SCRAM_USER`] and [`CLEARTEXT_USER`] exist, each with its password
/// constant and the authentication method its name says.
///
/// [`TempCluster::start_tls`] starts one with TLS on as well: a throwaway
/// certificate authority and server certificate ([`TlsFiles`]), and the
/// roles [`CERT_USER`] (client-certificate login) and [`TLS_ONLY_USER`]
/// (refused without TLS).
///
/// Dropping the cluster (also while a test panics) stops the server and
/// removes its directory. Should the process exit without running
/// destructors, a watchdog still stops the server and removes the directory.
#[derive(Debug)]
pub struct TempCluster {
    // Field order matters: the servers stop before their directory goes.
    server: ServerProcess,
    /// Watchdogs of attempts that lost their port to another process; kept
    /// leashed until the cluster is dropped, as they remove the directory.
    failed_attempts: Vec<ServerProcess>,
    scratch: ScratchDir,
    port: u16,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    /// The certificates of a TLS cluster; `None` for a plain one.
    tls: Option<TlsFiles>,
}

/// Whether a cluster keeps the WAL a streaming standby needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wal {
    /// `wal_level=minimal`, no WAL senders: fastest, no standby possible.
    Minimal,
    /// `wal_level=replica` with WAL senders: `pg_basebackup` and standbys
    /// can stream from it.
    Replica,
}

/// Whether a cluster is started with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `ssl=off`: plaintext only.
    Plain,
    /// `ssl=on` with throwaway certificates, and the TLS roles.
    Tls,
}

impl TempCluster {
    /// Starts a new cluster from the binaries found by
    /// [`find_server_bin_dir`](super::find_server_bin_dir); ready for
    /// connections, with the test roles created, when it returns.
    pub fn start() -> Result<TempCluster, Error> {
        TempCluster::start_with_bin_dir(&find_server_bin_dir()?)
    }

    /// Starts a new cluster from the server binaries in `bin_dir`.
    pub fn start_with_bin_dir(bin_dir: &Path) -> Result<TempCluster, Error> {
        TempCluster::start_with_ports(bin_dir, Transport::Plain, Wal::Minimal, free_port)
    }

    /// Starts a new cluster a streaming standby can be made of
    /// ([`Standby::start_from`](super::Standby::start_from)): as
    /// [`TempCluster::start`], with `wal_level=replica`, WAL senders and
    /// replication connections trusted over the unix socket.
    pub fn start_primary() -> Result<TempCluster, Error> {
        TempCluster::start_with_ports(
            &find_server_bin_dir()?,
            Transport::Plain,
            Wal::Replica,
            free_port,
        )
    }

    /// Starts a new cluster with TLS on (`ssl=on`), from the binaries found
    /// by [`find_server_bin_dir`](super::find_server_bin_dir).
    ///
    /// A throwaway certificate authority, a server certificate it signed for
    /// the host name `localhost` only (no IP address: `verify-full` passes
    /// with `host=localhost` and fails with `host=127.0.0.1`) and a client
    /// certificate for [`CERT_USER`] are made at start; [`TempCluster::tls`]
    /// gives their paths. Besides the roles of [`TempCluster::start`], with
    /// the same methods over TCP with or without TLS, [`CERT_USER`] logs in
    /// over TLS with its client certificate (`cert`) and [`TLS_ONLY_USER`]
    /// with its password over TLS (`scram-sha-256`); both are rejected
    /// without TLS.
    pub fn start_tls() -> Result<TempCluster, Error> {
        TempCluster::start_tls_with_bin_dir(&find_server_bin_dir()?)
    }

    /// Starts a new cluster with TLS on, as [`TempCluster::start_tls`] does,
    /// from the server binaries in `bin_dir`.
    pub fn start_tls_with_bin_dir(bin_dir: &Path) -> Result<TempCluster, Error> {
        TempCluster::start_with_ports(bin_dir, Transport::Tls, Wal::Minimal, free_port)
    }

    /// Starts a new cluster on the first port from `next_port` that the
    /// server can bind (up to [`PORT_ATTEMPTS`] ports are asked for).
    fn start_with_ports(
        bin_dir: &Path,
        transport: Transport,
        wal: Wal,
        mut next_port: impl FnMut() -> Result<u16, Error>,
    ) -> Result<TempCluster, Error> {
        let run_as = RunAs::for_server()?;
        let scratch = ScratchDir::create(run_as)?;
        let socket_dir = scratch.subdir("socket", run_as)?;
        let data_dir = scratch.path().join("data");
        template::create_data_dir(bin_dir, &data_dir, run_as)?;
        let (pg_hba, tls) = match transport {
            Transport::Plain => (PG_HBA, None),
            Transport::Tls => (
                PG_HBA_TLS,
                Some(TlsFiles::create(&scratch, &data_dir, run_as)?),
            ),
        };
        std::fs::write(data_dir.join("pg_hba.conf"), pg_hba)
            .map_err(|e| Error::Server(format!("cannot write pg_hba.conf: {e}")))?;

        let mut failed_attempts = Vec::new();
        let (server, port) = loop {
            let attempt = failed_attempts.len() + 1;
            let port = next_port()?;
            let log_path = scratch.path().join(format!("postgres-{attempt}.log"));
            let log = open_log(&log_path)?;
            let exited_marker = scratch.path().join(format!("postgres-{attempt}.exited"));
            let command = postgres_command(bin_dir, &data_dir, &socket_dir, port, transport, wal);
            let mut server = ServerProcess::spawn(
                &command,
                scratch.path(),
                &data_dir,
                &exited_marker,
                log,
                run_as,
            )
            .map_err(|e| Error::Server(format!("cannot start the postgres watchdog: {e}")))?;
            match wait_ready(&mut server, &log_path) {
                Ok(()) => break (server, port),
                Err(failure) if failure.port_taken && attempt < PORT_ATTEMPTS => {
                    failed_attempts.push(server);
                }
                Err(failure) if failure.port_taken => {
                    return Err(Error::Server(format!(
                        "{PORT_ATTEMPTS} tcp ports in a row were taken before postgres could bind \
                         them; {}",
                        failure.message
                    )))
                }
                Err(failure) => return Err(Error::Server(failure.message)),
            }
        };

        let cluster = TempCluster {
            server,
            failed_attempts,
            scratch,
            port,
            data_dir,
            socket_dir,
            bin_dir: bin_dir.to_path_buf(),
            tls,
        };
        cluster.create_roles()?;
        Ok(cluster)
    }

    /// The superuser URL of the maintenance database:
    /// `postgresql+green://odm:odmtest@127.0.0.1:{port}/postgres`.
    pub fn url(&self) -> String {
        self.url_for(SUPERUSER, SUPERUSER_PASSWORD, "postgres")
    }

    /// A TCP URL for `user` with `password` to database `dbname`.
    pub fn url_for(&self, user: &str, password: &str, dbname: &str) -> String {
        cluster_url(self.port, user, password, dbname)
    }

    /// The certificates of a cluster started with
    /// [`TempCluster::start_tls`]; `None` for a plain one.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server's unix socket
    /// (`.s.PGSQL.{port}`); connections there are trusted.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The data directory (removed on drop).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How many ports the server tried before one was free (1 unless
    /// another process took the chosen port first).
    pub fn port_attempts(&self) -> usize {
        self.failed_attempts.len() + 1
    }

    /// The directory of the server binaries this cluster runs.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        self.scratch.newest_log_tail()
    }

    /// Restarts the server with a fast shutdown, as `pg_ctl restart -m
    /// fast` does: every open connection is ended, committed work is kept,
    /// and the same port, data and certificates serve again when this
    /// returns.
    ///
    /// # Errors
    ///
    /// [`Error::Server`] when the server did not come back within 30 s
    /// (the message carries the end of the server log).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.server.restart().map_err(|e| {
            Error::Server(format!(
                "restarting the server failed: {e}; server log:\n{}",
                self.log_tail()
            ))
        })
    }

    /// True while the server process is running.
    pub fn is_running(&mut self) -> bool {
        !self.server.has_exited()
    }

    /// Where `psql` reaches `dbname` as the superuser: the unix socket
    /// (trusted, no password needed).
    pub(crate) fn socket_target(&self, dbname: &str) -> psql::Target {
        psql::socket_target(&self.socket_dir, self.port, SUPERUSER, dbname)
    }

    /// Sets the superuser's password and creates the other test roles (and
    /// those of a TLS cluster).
    fn create_roles(&self) -> Result<(), Error> {
        let role = |name: &str, password: &str| {
            format!(
                "CREATE ROLE {} LOGIN PASSWORD {}",
                psql::quote_ident(name),
                psql::quote_literal(password)
            )
        };
        let mut statements = vec![
            "SET password_encryption = 'scram-sha-256'".to_string(),
            format!(
                "ALTER ROLE {} PASSWORD {}",
                psql::quote_ident(SUPERUSER),
                psql::quote_literal(SUPERUSER_PASSWORD)
            ),
            role(SCRAM_USER, SCRAM_PASSWORD),
            role(CLEARTEXT_USER, CLEARTEXT_PASSWORD),
            "SET password_encryption = 'md5'".to_string(),
            role(MD5_USER, MD5_PASSWORD),
        ];
        if self.tls.is_some() {
            statements.extend([
                "SET password_encryption = 'scram-sha-256'".to_string(),
                role(TLS_ONLY_USER, TLS_ONLY_PASSWORD),
                format!("CREATE ROLE {} LOGIN", psql::quote_ident(CERT_USER)),
            ]);
        }
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        let psql_program = psql::psql_program(Some(&self.bin_dir))?;
        psql::run(
            &psql_program,
            &self.socket_target("postgres"),
            &statements,
            "creating the test roles",
        )
        .map_err(|e| match e {
            Error::Server(message) => {
                Error::Server(format!("{message}\nserver log:\n{}", self.log_tail()))
            }
            other => other,
        })
    }
}

/// The `postgres` command line: TCP on 127.0.0.1:`port` only, the socket in
/// `socket_dir`, durability off for speed; with `Transport::Tls`, TLS on with
/// the certificate files in the data directory; with `Wal::Replica`, the WAL
/// and senders a standby streams from (a standby runs with these too).
pub(crate) fn postgres_command(
    bin_dir: &Path,
    data_dir: &Path,
    socket_dir: &Path,
    port: u16,
    transport: Transport,
    wal: Wal,
) -> Vec<String> {
    let mut command = vec![
        bin_dir.join("postgres").to_string_lossy().into_owned(),
        "-D".to_string(),
        data_dir.to_string_lossy().into_owned(),
        "-p".to_string(),
        port.to_string(),
    ];
    let mut settings = vec![
        "listen_addresses=127.0.0.1".to_string(),
        format!("unix_socket_directories={}", socket_dir.to_string_lossy()),
        "max_connections=300".to_string(),
        "shared_buffers=32MB".to_string(),
        "fsync=off".to_string(),
        "synchronous_commit=off".to_string(),
        "full_page_writes=off".to_string(),
        "huge_pages=off".to_string(),
    ];
    settings.extend(match wal {
        Wal::Minimal => [
            "wal_level=minimal".to_string(),
            "max_wal_senders=0".to_string(),
        ],
        Wal::Replica => [
            "wal_level=replica".to_string(),
            "max_wal_senders=4".to_string(),
        ],
    });
    if transport == Transport::Tls {
        // Relative paths are taken from the data directory.
        settings.extend([
            "ssl=on".to_string(),
            format!("ssl_cert_file={SERVER_CERT_FILE}"),
            format!("ssl_key_file={SERVER_KEY_FILE}"),
            format!("ssl_ca_file={SERVER_CA_FILE}"),
        ]);
    }
    for setting in settings {
        command.push("-c".to_string());
        command.push(setting);
    }
    command
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, Error> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| Error::Server(format!("cannot find a free tcp port on 127.0.0.1: {e}")))
}

pub(crate) fn open_log(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            Error::Server(format!(
                "cannot create the server log {}: {e}",
                path.display()
            ))
        })
}

/// Why a server did not become ready.
struct StartFailure {
    /// The server exited because its port was taken: retry on another.
    port_taken: bool,
    message: String,
}

/// Waits until the postmaster reports `ready` and accepts TCP connections.
fn wait_ready(server: &mut ServerProcess, log_path: &Path) -> Result<(), StartFailure> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if server.postmaster_status().as_deref() == Some("ready") {
            return Ok(());
        }
        if server.has_exited() {
            let tail = tail_of(log_path);
            let port_taken = tail.contains("could not bind")
                || tail.contains("Address already in use")
                || tail.contains("could not create any TCP/IP sockets");
            return Err(StartFailure {
                port_taken,
                message: format!("postgres exited during startup; server log:\n{tail}"),
            });
        }
        if Instant::now() >= deadline {
            return Err(StartFailure {
                port_taken: false,
                message: format!(
                    "postgres did not become ready within {READY_TIMEOUT:?}; server log:\n{}",
                    tail_of(log_path)
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_whose_port_is_taken_starts_on_another_one() {
        let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let mut offered = Vec::new();
        let cluster = TempCluster::start_with_ports(
            &find_server_bin_dir().unwrap(),
            Transport::Plain,
            Wal::Minimal,
            || {
                let port = if offered.is_empty() {
                    taken_port
                } else {
                    free_port()?
                };
                offered.push(port);
                Ok(port)
            },
        )
        .unwrap();
        assert_eq!(offered.len(), 2);
        assert_eq!(cluster.port_attempts(), 2);
        assert_eq!(cluster.port(), offered[1]);
        assert_ne!(cluster.port(), taken_port);
        let first_log = tail_of(&cluster.scratch.path().join("postgres-1.log"));
        assert!(first_log.contains("could not bind"), "{first_log}");
    }

    #[test]
    fn a_cluster_gives_up_when_every_port_it_tries_is_taken() {
        let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let mut asked = 0;
        let err = TempCluster::start_with_ports(
            &find_server_bin_dir().unwrap(),
            Transport::Plain,
            Wal::Minimal,
            || {
                asked += 1;
                Ok(taken_port)
            },
        )
        .unwrap_err();
        assert_eq!(asked, PORT_ATTEMPTS);
        assert!(matches!(err, Error::Server(_)), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(
                "test server: 8 tcp ports in a row were taken before postgres could bind them; \
                 postgres exited during startup; server log:\n"
            ),
            "{message}"
        );
        assert!(message.contains("could not bind"), "{message}");
    }
}
