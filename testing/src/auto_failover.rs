//! [`AutoFailover`]: a throwaway pg_auto_failover formation — a monitor
//! and two (or more) PostgreSQL nodes on local ports, each run by its own
//! `pg_autoctl … --run` keeper, which promotes a secondary by itself when
//! the primary fails, with synchronous replication by default.
//!
//! Every keeper runs under the same watchdog as a [`TempCluster`]'s server
//! (a pipe from the test process is its leash): when the formation is
//! dropped, or the test process dies in any way, each keeper gets SIGINT
//! (it stops its PostgreSQL with a fast shutdown) and its scratch
//! directory — data directory, log, and the `pg_autoctl` configuration and
//! state, kept there through `XDG_CONFIG_HOME`, `XDG_DATA_HOME` and
//! `XDG_RUNTIME_DIR` — is removed. Nothing is left in a home directory.
//!
//! Needs `pg_autoctl` (Debian: `pg-auto-failover-cli`) and the
//! `pgautofailover` extension in the server installation
//! (`postgresql-<major>-auto-failover`): the formation runs on the first
//! installation that has it (`ODM_PG_BIN_DIR`'s when it does, else Debian's
//! `/usr/lib/postgresql/<major>/bin`, highest first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::binaries::{find_on_path, find_server_bin_dir, versioned_bin_dirs, VERSIONED_ROOT};
use super::cluster::{free_port, open_log};
use super::psql;
use super::scratch::{tail_of, RunAs, ScratchDir, SERVER_USER};
use super::server_process::ServerProcess;
use super::url::cluster_url;
use super::{SUPERUSER, SUPERUSER_PASSWORD};
use crate::Error;

/// How long the monitor or a node may take to come up, and the formation
/// to settle after a failover or switchover.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// One `pg_autoctl … --run` keeper with its PostgreSQL.
#[derive(Debug)]
struct Member {
    // Field order matters: the keeper stops before its directory goes.
    // Only held: dropping it stops the keeper.
    _keeper: ServerProcess,
    scratch: ScratchDir,
    name: String,
    port: u16,
    data_dir: PathBuf,
}

/// A pg_auto_failover monitor and its nodes (node 1 the first primary),
/// stopped and removed on drop.
///
/// ```no_run
/// use odm_testing::AutoFailover;
///
/// let formation = AutoFailover::start()?;
/// println!("{}", formation.url()); // two hosts, target_session_attrs=read-write
/// formation.kill_primary_postgres()?;
/// formation.wait_settled()?;
/// # Ok::<(), odm_testing::Error>(())
/// ```
#[derive(Debug)]
pub struct AutoFailover {
    // Field order matters: the nodes stop before the monitor.
    nodes: Vec<Member>,
    monitor: Member,
    pg_autoctl: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<RunAs>,
}

/// A node as the monitor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    /// The node's name (`node_1`, `node_2`, …).
    pub name: String,
    /// Its PostgreSQL port on 127.0.0.1.
    pub port: u16,
    /// The state its keeper last reported (`primary`, `secondary`,
    /// `demoted`, `catchingup`, …).
    pub reported: String,
    /// The state the monitor assigned it.
    pub assigned: String,
}

impl AutoFailover {
    /// A monitor and two nodes; returns once node 1 is the primary and
    /// node 2 its secondary, with the [`SUPERUSER`] role created.
    pub fn start() -> Result<AutoFailover, Error> {
        AutoFailover::start_with_nodes(2)
    }

    /// A monitor and `nodes` nodes (2 or more).
    pub fn start_with_nodes(nodes: usize) -> Result<AutoFailover, Error> {
        if nodes < 2 {
            return Err(Error::Server(format!(
                "a pg_auto_failover formation needs 2 nodes or more, not {nodes}"
            )));
        }
        let bin_dir = auto_failover_bin_dir()?;
        let pg_autoctl = find_pg_autoctl(&bin_dir)?;
        let run_as = RunAs::for_server()?;
        let monitor = Member::start(&pg_autoctl, &bin_dir, run_as, "monitor", None)?;
        let monitor_uri = format!(
            "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
            monitor.port
        );
        let mut formation = AutoFailover {
            nodes: Vec::new(),
            monitor,
            pg_autoctl,
            bin_dir,
            run_as,
        };
        formation.wait_for(|_| Ok(true), "the monitor to accept connections")?;
        for i in 1..=nodes {
            let name = format!("node_{i}");
            let member = Member::start(
                &formation.pg_autoctl,
                &formation.bin_dir,
                run_as,
                &name,
                Some(&monitor_uri),
            )?;
            formation.nodes.push(member);
            formation.wait_settled()?;
        }
        formation.create_superuser()?;
        Ok(formation)
    }

    /// The URL a client should use: every node, in order, with
    /// `target_session_attrs=read-write`, as [`SUPERUSER`].
    pub fn url(&self) -> String {
        self.url_with("target_session_attrs=read-write")
    }

    /// Every node's `127.0.0.1:port`, in order, as [`SUPERUSER`] to
    /// database `postgres`, with `params` as the query.
    pub fn url_with(&self, params: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!(
            "postgresql+green://{SUPERUSER}:{SUPERUSER_PASSWORD}@{}/postgres?{params}",
            hosts.join(",")
        )
    }

    /// The URL of node `index` (0-based) alone.
    pub fn node_url(&self, index: usize) -> String {
        cluster_url(
            self.nodes[index].port,
            SUPERUSER,
            SUPERUSER_PASSWORD,
            "postgres",
        )
    }

    /// The nodes' ports, in order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// Every node as the monitor sees it, by node id.
    pub fn states(&self) -> Result<Vec<NodeState>, Error> {
        let answer = self.monitor_query(
            "SELECT nodename, nodeport, reportedstate, goalstate FROM pgautofailover.node \
             ORDER BY nodeid",
        )?;
        answer
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                let fields: Vec<&str> = line.split('|').collect();
                match fields.as_slice() {
                    [name, port, reported, assigned] => Ok(NodeState {
                        name: name.to_string(),
                        port: port.parse().unwrap_or(0),
                        reported: reported.to_string(),
                        assigned: assigned.to_string(),
                    }),
                    _ => Err(Error::Server(format!(
                        "the monitor answered {line:?} for a node"
                    ))),
                }
            })
            .collect()
    }

    /// The index (0-based) of the node that is the primary, settled.
    pub fn primary_index(&self) -> Result<usize, Error> {
        let states = self.states()?;
        let primary = states
            .iter()
            .find(|s| s.reported == "primary" && s.assigned == "primary")
            .ok_or_else(|| Error::Server(format!("no settled primary: {states:?}")))?;
        self.nodes
            .iter()
            .position(|node| node.port == primary.port)
            .ok_or_else(|| Error::Server(format!("the primary is no node of ours: {primary:?}")))
    }

    /// Waits (up to 120 s) until the formation is settled: every node's
    /// reported state is its assigned one, one node is `primary` (or
    /// `single`, alone) and the others `secondary`.
    pub fn wait_settled(&self) -> Result<(), Error> {
        let count = self.nodes.len();
        self.wait_for(
            |states| {
                let settled = states.len() == count
                    && states.iter().all(|s| s.reported == s.assigned)
                    && states
                        .iter()
                        .filter(|s| s.reported == "primary" || s.reported == "single")
                        .count()
                        == 1
                    && states
                        .iter()
                        .all(|s| matches!(s.reported.as_str(), "primary" | "single" | "secondary"));
                Ok(settled)
            },
            "the formation to settle (one primary, the others secondary)",
        )
    }

    /// Waits (up to 120 s) until a node other than `old` (an index, 0-based)
    /// is the primary and the formation is settled again (the old primary
    /// back as a secondary); the new primary's index.
    pub fn wait_new_primary(&self, old: usize) -> Result<usize, Error> {
        let old_port = self.nodes[old].port;
        let count = self.nodes.len();
        self.wait_for(
            |states| {
                Ok(states.len() == count
                    && states.iter().all(|s| s.reported == s.assigned)
                    && states
                        .iter()
                        .any(|s| s.reported == "primary" && s.port != old_port)
                    && states
                        .iter()
                        .filter(|s| s.port != old_port || s.reported == "secondary")
                        .count()
                        == count)
            },
            "another node to become the primary, and the old one a secondary",
        )?;
        self.primary_index()
    }

    /// Kills the current primary's postmaster with SIGKILL (`kill -9`); its
    /// keeper stays, and the monitor decides what happens next.
    pub fn kill_primary_postgres(&self) -> Result<usize, Error> {
        let index = self.primary_index()?;
        let node = &self.nodes[index];
        let pid = std::fs::read_to_string(node.data_dir.join("postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(|line| line.trim().to_string()))
            .ok_or_else(|| Error::Server(format!("{} has no postmaster.pid", node.name)))?;
        let status = Command::new("kill")
            .args(["-KILL", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| Error::Server(format!("cannot run kill: {e}")))?;
        if !status.success() {
            return Err(Error::Server(format!(
                "kill -9 {pid} ({}'s postmaster) failed",
                node.name
            )));
        }
        Ok(index)
    }

    /// `pg_autoctl perform switchover` (waits until it is done, up to
    /// 60 s): the primary steps down and a secondary takes over.
    pub fn perform_switchover(&self) -> Result<(), Error> {
        let index = self.primary_index()?;
        let output = self
            .node_command(
                &self.nodes[index],
                &["perform", "switchover", "--wait", "60"],
            )
            .output()
            .map_err(|e| Error::Server(format!("cannot run pg_autoctl: {e}")))?;
        if !output.status.success() {
            return Err(Error::Server(format!(
                "pg_autoctl perform switchover failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    /// The last lines of node `index`'s keeper log (its PostgreSQL's own
    /// log is in the data directory).
    pub fn log_tail(&self, index: usize) -> String {
        tail_of(&self.nodes[index].scratch.path().join("keeper.log"))
    }

    /// Polls the monitor's view every 100 ms until `done` says so.
    fn wait_for(
        &self,
        done: impl Fn(&[NodeState]) -> Result<bool, Error>,
        what: &str,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let last = match self.states() {
                Ok(states) if done(&states)? => return Ok(()),
                Ok(states) => format!("{states:?}"),
                Err(e) => e.to_string(),
            };
            let members = std::iter::once(&self.monitor).chain(self.nodes.iter());
            for member in members {
                if member.keeper_has_exited() {
                    return Err(Error::Server(format!(
                        "the pg_autoctl keeper of {} exited while waiting for {what}; its log:\n{}",
                        member.name,
                        tail_of(&member.scratch.path().join("keeper.log"))
                    )));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Server(format!(
                    "waited {READY_TIMEOUT:?} for {what}; last seen: {last}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The rows of `sql` on the monitor (`psql -At`).
    fn monitor_query(&self, sql: &str) -> Result<String, Error> {
        let target = psql::Target {
            conninfo: format!(
                "host=127.0.0.1 port={} dbname=pg_auto_failover user=autoctl_node sslmode=disable \
                 connect_timeout=5",
                self.monitor.port
            ),
            password: None,
        };
        psql::query(
            &psql::psql_program(Some(&self.bin_dir))?,
            &target,
            sql,
            "asking the pg_auto_failover monitor",
        )
    }

    /// Creates [`SUPERUSER`] on the primary (the secondaries get it by
    /// replication), as the keepers' own superuser.
    fn create_superuser(&self) -> Result<(), Error> {
        let primary = &self.nodes[self.primary_index()?];
        let target = psql::Target {
            conninfo: format!(
                "host=127.0.0.1 port={} dbname=postgres user={} sslmode=disable",
                primary.port,
                keeper_user(self.run_as)?
            ),
            password: None,
        };
        psql::run(
            &psql::psql_program(Some(&self.bin_dir))?,
            &target,
            &[&format!(
                "CREATE ROLE {} SUPERUSER LOGIN PASSWORD {}",
                psql::quote_ident(SUPERUSER),
                psql::quote_literal(SUPERUSER_PASSWORD)
            )],
            "creating the test role on the pg_auto_failover primary",
        )
    }

    /// `pg_autoctl <args> --pgdata <node's>` with the node's environment.
    fn node_command(&self, member: &Member, args: &[&str]) -> Command {
        let mut command = Command::new(&self.pg_autoctl);
        command
            .args(args)
            .arg("--pgdata")
            .arg(&member.data_dir)
            .envs(member_env(member.scratch.path(), &self.bin_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(run_as) = self.run_as {
            run_as.apply(&mut command);
        }
        command
    }
}

impl Member {
    /// Starts `pg_autoctl create monitor --run` (`monitor` is `None`) or
    /// `pg_autoctl create postgres --run` registering with `monitor`, in a
    /// fresh scratch directory on a free port.
    fn start(
        pg_autoctl: &Path,
        bin_dir: &Path,
        run_as: Option<RunAs>,
        name: &str,
        monitor: Option<&str>,
    ) -> Result<Member, Error> {
        let scratch = ScratchDir::create(run_as)?;
        for dir in ["config", "data", "run"] {
            scratch.subdir(dir, run_as)?;
        }
        let data_dir = scratch.path().join("pgdata");
        let port = free_port()?;
        let mut command: Vec<String> = vec!["env".to_string()];
        command.extend(
            member_env(scratch.path(), bin_dir)
                .into_iter()
                .map(|(key, value)| format!("{key}={value}")),
        );
        command.push(pg_autoctl.to_string_lossy().into_owned());
        command.extend(["create".to_string()]);
        command.push(
            if monitor.is_some() {
                "postgres"
            } else {
                "monitor"
            }
            .to_string(),
        );
        command.extend([
            "--pgdata".to_string(),
            data_dir.to_string_lossy().into_owned(),
            "--pgport".to_string(),
            port.to_string(),
            "--pgctl".to_string(),
            bin_dir.join("pg_ctl").to_string_lossy().into_owned(),
            "--hostname".to_string(),
            "127.0.0.1".to_string(),
            "--auth".to_string(),
            "trust".to_string(),
            "--no-ssl".to_string(),
        ]);
        if let Some(monitor) = monitor {
            command.extend([
                "--name".to_string(),
                name.to_string(),
                "--monitor".to_string(),
                monitor.to_string(),
            ]);
        }
        command.push("--run".to_string());
        let log = open_log(&scratch.path().join("keeper.log"))?;
        let keeper = ServerProcess::spawn(
            &command,
            scratch.path(),
            &data_dir,
            &scratch.path().join("keeper.exited"),
            log,
            run_as,
        )
        .map_err(|e| Error::Server(format!("cannot start the {name} keeper's watchdog: {e}")))?;
        Ok(Member {
            _keeper: keeper,
            scratch,
            name: name.to_string(),
            port,
            data_dir,
        })
    }

    fn keeper_has_exited(&self) -> bool {
        self.scratch.path().join("keeper.exited").exists()
    }
}

/// The environment of a keeper and of `pg_autoctl` commands about it: its
/// configuration and state inside its scratch directory, the server
/// installation first on `PATH`.
fn member_env(scratch: &Path, bin_dir: &Path) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_default();
    vec![
        (
            "XDG_CONFIG_HOME".to_string(),
            scratch.join("config").to_string_lossy().into_owned(),
        ),
        (
            "XDG_DATA_HOME".to_string(),
            scratch.join("data").to_string_lossy().into_owned(),
        ),
        (
            "XDG_RUNTIME_DIR".to_string(),
            scratch.join("run").to_string_lossy().into_owned(),
        ),
        (
            "PATH".to_string(),
            format!("{}:{path}", bin_dir.to_string_lossy()),
        ),
    ]
}

/// The user the keepers (and so PostgreSQL's bootstrap superuser) run as.
fn keeper_user(run_as: Option<RunAs>) -> Result<String, Error> {
    if run_as.is_some() {
        return Ok(SERVER_USER.to_string());
    }
    let output = Command::new("id")
        .arg("-un")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Server(format!("cannot run id -un: {e}")))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The first server installation with the `pgautofailover` extension:
/// [`find_server_bin_dir`]'s, then Debian's versioned ones.
fn auto_failover_bin_dir() -> Result<PathBuf, Error> {
    let mut candidates: Vec<PathBuf> = find_server_bin_dir().into_iter().collect();
    candidates.extend(versioned_bin_dirs(Path::new(VERSIONED_ROOT)));
    candidates
        .into_iter()
        .find(|dir| has_extension(dir))
        .ok_or_else(|| {
            Error::Server(
                "no postgresql installation with the pgautofailover extension: install \
                 pg_auto_failover (Debian: `apt-get install postgresql-15-auto-failover \
                 pg-auto-failover-cli`, the major of the installed server)"
                    .to_string(),
            )
        })
}

/// True when `bin_dir`'s installation has `pgautofailover.control` in its
/// extension folder (`pg_config --sharedir`, else Debian's layout).
fn has_extension(bin_dir: &Path) -> bool {
    let sharedir = Command::new(bin_dir.join("pg_config"))
        .arg("--sharedir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let debian = bin_dir
        .parent()
        .and_then(Path::file_name)
        .map(|major| Path::new("/usr/share/postgresql").join(major));
    sharedir
        .into_iter()
        .chain(debian)
        .any(|dir| dir.join("extension/pgautofailover.control").is_file())
}

/// `pg_autoctl` on `PATH`, in `/usr/bin`, or in `bin_dir`.
fn find_pg_autoctl(bin_dir: &Path) -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    find_on_path("pg_autoctl", &path)
        .or_else(|| find_on_path("pg_autoctl", "/usr/bin".as_ref()))
        .or_else(|| find_on_path("pg_autoctl", bin_dir.as_os_str()))
        .ok_or_else(|| {
            Error::Server(
                "pg_autoctl not found: install pg_auto_failover (Debian: `apt-get install \
                 pg-auto-failover-cli`)"
                    .to_string(),
            )
        })
}
