//! Test servers: a throwaway PostgreSQL ([`TempCluster`]) and fresh
//! databases on it ([`TestDatabase`], [`test_database`]), and the network
//! faults to test against them: [`FaultProxy`] (forward, black-hole, delay,
//! truncate, reset, refuse), [`SilentListener`] (accepts and never
//! answers) and [`ScriptedServer`] (a fake PostgreSQL playing a script of
//! answers, lies, garbage and silence; its messages from
//! [`backend_message`]). It knows nothing of odm itself (it runs `initdb`, `postgres`
//! and `psql`), so odm can re-export it as `odm::testing` (cargo feature
//! `testing`, off by default: a dev-dependency feature), where [`Error`]
//! converts into `odm::Error`.
//! The deployments past one server: a [`PgBouncer`] in transaction mode in
//! front of a cluster, and a primary with a streaming [`Standby`]
//! ([`ReplicatedCluster`]).
//!
//! Tests and examples need a real server and no setup. When the environment
//! variable `DATABASE_URL` is set, [`test_database`] uses that server;
//! otherwise it starts one [`TempCluster`] per process from the installed
//! PostgreSQL server binaries (the folder `ODM_PG_BIN_DIR` names, else found
//! on `PATH`, via `pg_config --bindir`, or in
//! `/usr/lib/postgresql/<version>/bin`) and stops it when the process exits. When the process runs as root, the server runs as the `postgres`
//! system user.
//!
//! [`TempCluster::start_tls`] (or [`shared_tls_cluster`]) starts a cluster
//! with TLS on and throwaway certificates ([`TlsFiles`]): the server's is
//! valid for `localhost` only, and the roles [`CERT_USER`] (client
//! certificate) and [`TLS_ONLY_USER`] log in only over TLS.
//!
//! ```no_run
//! let db = odm_testing::test_database()?;
//! println!("a fresh database at {}", db.url());
//! # Ok::<(), odm_testing::Error>(())
//! ```

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod auto_failover;
pub mod backend_message;
mod binaries;
mod cluster;
mod database;
mod error;
mod fault_link;
mod fault_proxy;
mod file_backup;
mod pgbouncer;
mod psql;
mod scratch;
mod scripted_server;
mod server_process;
mod silent_listener;
mod standby;
mod template;
mod tls_files;
mod url;

use std::sync::Mutex;

pub use auto_failover::{AutoFailover, NodeState};
pub use binaries::{
    chosen_bin_dir, find_server_bin_dir, find_server_bin_dir_in, BIN_DIR_VARIABLE, VERSIONED_ROOT,
};
pub use cluster::TempCluster;
pub use database::TestDatabase;
pub use error::Error;
pub use fault_proxy::{Direction, FaultProxy};
pub use pgbouncer::PgBouncer;
pub use scripted_server::{ScriptedServer, Step};
pub use silent_listener::SilentListener;
pub use standby::{ReplicatedCluster, Standby};
pub use tls_files::{TlsFiles, TLS_SERVER_NAME};

/// The superuser of a [`TempCluster`] (authenticates with SCRAM over TCP).
pub const SUPERUSER: &str = "odm";
/// The password of [`SUPERUSER`].
pub const SUPERUSER_PASSWORD: &str = "odmtest";
/// A role whose password is stored as md5 and checked with `md5` over TCP.
pub const MD5_USER: &str = "odm_md5";
/// The password of [`MD5_USER`].
pub const MD5_PASSWORD: &str = "md5secret";
/// A role checked with `scram-sha-256` over TCP.
pub const SCRAM_USER: &str = "odm_scram";
/// The password of [`SCRAM_USER`].
pub const SCRAM_PASSWORD: &str = "scramsecret";
/// A role checked with cleartext `password` authentication over TCP.
pub const CLEARTEXT_USER: &str = "odm_clear";
/// The password of [`CLEARTEXT_USER`].
pub const CLEARTEXT_PASSWORD: &str = "clearsecret";

/// A role of a TLS cluster ([`TempCluster::start_tls`]) that logs in over
/// TLS with a client certificate (`cert`: the certificate's common name is
/// the role's name, [`TlsFiles::client_cert`]); it has no password and is
/// rejected without TLS.
pub const CERT_USER: &str = "odm_cert";
/// A role of a TLS cluster ([`TempCluster::start_tls`]) checked with
/// `scram-sha-256` over TLS and rejected without TLS.
pub const TLS_ONLY_USER: &str = "odm_tls_only";
/// The password of [`TLS_ONLY_USER`].
pub const TLS_ONLY_PASSWORD: &str = "tlsonlysecret";

/// The environment variable naming an existing server to test against.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// A fresh database on the process-wide test server: the server named by
/// `DATABASE_URL` when set, else one [`TempCluster`] started lazily once per
/// process (and stopped when it exits).
pub fn test_database() -> Result<TestDatabase, Error> {
    match std::env::var(DATABASE_URL) {
        Ok(url) if !url.trim().is_empty() => TestDatabase::create_on_url(url.trim()),
        _ => TestDatabase::create_on(shared_cluster()?),
    }
}

/// The process-wide cluster, started on first use. It lives in a `static`
/// and is never dropped; its watchdog stops it when the process exits.
pub fn shared_cluster() -> Result<&'static TempCluster, Error> {
    static SHARED: Mutex<Option<&'static TempCluster>> = Mutex::new(None);
    shared(&SHARED, TempCluster::start)
}

/// The process-wide TLS cluster ([`TempCluster::start_tls`]), started on
/// first use, for tests that only connect to it. Like [`shared_cluster`] it
/// is never dropped; its watchdog stops it and removes its directory, the
/// certificates with it, when the process exits.
pub fn shared_tls_cluster() -> Result<&'static TempCluster, Error> {
    static SHARED: Mutex<Option<&'static TempCluster>> = Mutex::new(None);
    shared(&SHARED, TempCluster::start_tls)
}

/// The cluster in `slot`, started with `start` (and leaked) on first use.
fn shared(
    slot: &Mutex<Option<&'static TempCluster>>,
    start: fn() -> Result<TempCluster, Error>,
) -> Result<&'static TempCluster, Error> {
    let mut shared = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(cluster) = *shared {
        return Ok(cluster);
    }
    let cluster: &'static TempCluster = Box::leak(Box::new(start()?));
    *shared = Some(cluster);
    Ok(cluster)
}
