//! Connecting through a multi-host configuration as libpq does: the hosts
//! are tried in order (or shuffled under `load_balance_hosts=random`), each
//! within its own `connect_timeout`, and a host whose server does not
//! satisfy `target_session_attrs` is left for the next. When none fits, the
//! error names every host tried and why (never the password).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;

use crate::client::client::Client;
use crate::config::{Config, Host, LoadBalanceHosts, TargetSessionAttrs};
use crate::error::Error;
use crate::net::open_socket::target_of;

/// What a server reported about itself, as far as `target_session_attrs`
/// cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ServerState {
    /// In recovery: a hot standby.
    hot_standby: bool,
    /// Sessions are read-only by default.
    read_only: bool,
}

impl ServerState {
    fn describe(self) -> &'static str {
        match (self.hot_standby, self.read_only) {
            (true, _) => "a standby",
            (false, true) => "a read-only primary",
            (false, false) => "a read-write primary",
        }
    }
}

/// Whether a server in `state` satisfies `attrs` (`prefer-standby` is
/// satisfied by any server; the caller prefers a standby itself).
fn fits(attrs: TargetSessionAttrs, state: ServerState) -> bool {
    match attrs {
        TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => true,
        TargetSessionAttrs::ReadWrite => !state.read_only,
        TargetSessionAttrs::ReadOnly => state.read_only,
        TargetSessionAttrs::Primary => !state.hot_standby,
        TargetSessionAttrs::Standby => state.hot_standby,
    }
}

/// `on` / `off` of a reported parameter.
fn reported(client: &Client, name: &str) -> Option<bool> {
    client.parameter(name).map(|value| value == "on")
}

/// The server's state: from `in_hot_standby` and
/// `default_transaction_read_only` when the server reports them (14 and
/// later), else by asking (`pg_is_in_recovery()`, `transaction_read_only`).
fn server_state(client: &Client) -> Result<ServerState, Error> {
    let hot_standby = match reported(client, "in_hot_standby") {
        Some(on) => on,
        None => client
            .query_one("SELECT pg_is_in_recovery()", &[])?
            .try_get::<_, bool>(0)?,
    };
    let read_only = match reported(client, "default_transaction_read_only") {
        Some(on) => on || hot_standby,
        None => {
            let row = client.query_one("SHOW transaction_read_only", &[])?;
            row.try_get::<_, String>(0)? == "on"
        }
    };
    Ok(ServerState {
        hot_standby,
        read_only,
    })
}

/// Whether an open connection still satisfies the `target_session_attrs`
/// it was opened with, judged from what the server has reported since (a
/// promoted standby reports `in_hot_standby=off`); `true` when the server
/// reports nothing to judge by (PostgreSQL 13 and older: then
/// [`must_ask_whether_it_fits`] says whether [`asked_whether_it_fits`] is
/// needed).
pub(crate) fn still_fits(client: &Client) -> bool {
    let attrs = client.config().target_session_attrs();
    if matches!(
        attrs,
        TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby
    ) {
        return true;
    }
    let Some(hot_standby) = reported(client, "in_hot_standby") else {
        return true;
    };
    let read_only = hot_standby || reported(client, "default_transaction_read_only") == Some(true);
    fits(
        attrs,
        ServerState {
            hot_standby,
            read_only,
        },
    )
}

/// True when [`still_fits`] cannot tell from the server's reports whether
/// the connection still fits, and the answer can change while it stays
/// open: a `standby` or `read-only` connection to a server that does not
/// report `in_hot_standby` (PostgreSQL 13 and older), which a promotion
/// turns into a primary without closing it. (A primary turns standby only
/// through a restart, which closes its connections: `primary` and
/// `read-write` connections need no asking.)
pub(crate) fn must_ask_whether_it_fits(client: &Client) -> bool {
    matches!(
        client.config().target_session_attrs(),
        TargetSessionAttrs::Standby | TargetSessionAttrs::ReadOnly
    ) && reported(client, "in_hot_standby").is_none()
}

/// Asks the server (`pg_is_in_recovery()` and `transaction_read_only`, one
/// round trip) whether the connection still fits its
/// `target_session_attrs`.
pub(crate) fn asked_whether_it_fits(client: &Client) -> Result<bool, Error> {
    let row = client.query_one(
        "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
        &[],
    )?;
    let hot_standby: bool = row.try_get(0)?;
    let read_only: bool = row.try_get(1)?;
    Ok(fits(
        client.config().target_session_attrs(),
        ServerState {
            hot_standby,
            read_only: read_only || hot_standby,
        },
    ))
}

/// Connects to the first host that accepts and fits `target_session_attrs`
/// (a standby first under `prefer-standby`), opening each with
/// `connect_one`.
pub(crate) fn connect_any(
    config: &Config,
    connect_one: impl Fn(&Config) -> Result<Client, Error>,
) -> Result<Client, Error> {
    let attrs = config.target_session_attrs();
    let mut hosts = config.hosts();
    if hosts.len() == 1 && attrs == TargetSessionAttrs::Any {
        return connect_one(config);
    }
    if config.load_balance_hosts() == LoadBalanceHosts::Random {
        shuffle(&mut hosts);
    }
    let mut tried: Vec<(String, Result<ServerState, Error>)> = Vec::new();
    let mut fallback = None;
    for (host, port) in hosts {
        let single = config.with_single_host(host, port);
        let target = target_of(&single);
        let state = connect_one(&single).and_then(|client| Ok((server_state(&client)?, client)));
        match state {
            Ok((state, client)) => {
                if attrs == TargetSessionAttrs::PreferStandby && !state.hot_standby {
                    log::debug!(target: "odm::pg", "{target} is {}: trying for a standby", state.describe());
                    fallback.get_or_insert(client);
                } else if fits(attrs, state) {
                    return Ok(client);
                } else {
                    log::debug!(target: "odm::pg", "{target} is {}: not {}", state.describe(), attrs.as_str());
                }
                tried.push((target, Ok(state)));
            }
            Err(err) => {
                log::debug!(target: "odm::pg", "could not use {target}: {err}");
                tried.push((target, Err(err)));
            }
        }
    }
    if let Some(client) = fallback {
        return Ok(client);
    }
    Err(none_fits(attrs, tried))
}

/// The error when no host fits: a single host's own error when that is
/// the only story; otherwise a connect error naming every host and why.
fn none_fits(
    attrs: TargetSessionAttrs,
    mut tried: Vec<(String, Result<ServerState, Error>)>,
) -> Error {
    if tried.len() == 1 && tried[0].1.is_err() {
        if let Some((_, Err(err))) = tried.pop() {
            return err;
        }
    }
    let kind = match tried.iter().all(|(_, result)| {
        matches!(result, Err(Error::Connect { source, .. }) if source.kind() == io::ErrorKind::TimedOut)
    }) {
        true => io::ErrorKind::TimedOut,
        false => io::ErrorKind::Other,
    };
    let targets: Vec<&str> = tried.iter().map(|(target, _)| target.as_str()).collect();
    let reasons: Vec<String> = tried
        .iter()
        .map(|(target, result)| match result {
            Ok(state) => format!("{target} is {}", state.describe()),
            Err(Error::Connect { source, .. }) => format!("{target}: {source}"),
            Err(err) => format!("{target}: {err}"),
        })
        .collect();
    Error::Connect {
        target: targets.join(","),
        source: io::Error::new(
            kind,
            format!(
                "no host fits target_session_attrs={} ({})",
                attrs.as_str(),
                reasons.join("; ")
            ),
        ),
    }
}

/// Fisher–Yates with the standard library's randomly keyed hasher.
fn shuffle(hosts: &mut [(Host, u16)]) {
    let keys = RandomState::new();
    for i in (1..hosts.len()).rev() {
        let j = (keys.hash_one(i) % (i as u64 + 1)) as usize;
        hosts.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: ServerState = ServerState {
        hot_standby: false,
        read_only: false,
    };
    const STANDBY: ServerState = ServerState {
        hot_standby: true,
        read_only: true,
    };
    const READ_ONLY_PRIMARY: ServerState = ServerState {
        hot_standby: false,
        read_only: true,
    };

    #[test]
    fn each_target_accepts_the_servers_libpq_accepts() {
        use TargetSessionAttrs::*;
        let table = [
            (Any, [true, true, true]),
            (ReadWrite, [true, false, false]),
            (ReadOnly, [false, true, true]),
            (Primary, [true, false, true]),
            (Standby, [false, true, false]),
            (PreferStandby, [true, true, true]),
        ];
        for (attrs, expected) in table {
            let got = [PRIMARY, STANDBY, READ_ONLY_PRIMARY].map(|state| fits(attrs, state));
            assert_eq!(got, expected, "{}", attrs.as_str());
        }
    }

    #[test]
    fn a_shuffle_keeps_every_host() {
        let mut hosts: Vec<(Host, u16)> =
            (1..=5).map(|port| (Host::Tcp("h".into()), port)).collect();
        shuffle(&mut hosts);
        let mut ports: Vec<u16> = hosts.iter().map(|(_, port)| *port).collect();
        ports.sort_unstable();
        assert_eq!(ports, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_error_when_none_fits_names_every_host_and_why() {
        let refused = Error::Connect {
            target: "a:1".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        let err = none_fits(
            TargetSessionAttrs::ReadWrite,
            vec![("a:1".into(), Err(refused)), ("b:2".into(), Ok(STANDBY))],
        );
        let message = err.to_string();
        assert!(
            message.contains("target_session_attrs=read-write"),
            "{message}"
        );
        assert!(message.contains("a:1: connection refused"), "{message}");
        assert!(message.contains("b:2 is a standby"), "{message}");
        assert!(err.is_connection_error());
    }
}
