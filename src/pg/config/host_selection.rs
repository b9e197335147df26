//! Choosing among several hosts (libpq's multi-host connection strings):
//! which server state is acceptable ([`TargetSessionAttrs`]), in which
//! order the hosts are tried ([`LoadBalanceHosts`]), and reading the host
//! and port lists (`host=h1,h2 port=5432,5433`).

use super::percent::Shown;
use super::settings::{parse_host, parse_port};
use super::{config_error, Host, DEFAULT_PORT};
use crate::Error;

/// Which servers a connection may stay on (libpq's `target_session_attrs`,
/// with libpq's meaning): checked after each host's connect, the next host
/// is tried when it does not hold.
///
/// PostgreSQL 14 and later report `in_hot_standby` and
/// `default_transaction_read_only` at startup, so no query is needed;
/// against an older server `SHOW transaction_read_only` or
/// `SELECT pg_is_in_recovery()` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetSessionAttrs {
    /// Any server (the default).
    #[default]
    Any,
    /// A server whose sessions accept writes by default (not a hot
    /// standby, `default_transaction_read_only` off).
    ReadWrite,
    /// A server whose sessions are read-only by default (a hot standby, or
    /// `default_transaction_read_only` on).
    ReadOnly,
    /// A server not in recovery.
    Primary,
    /// A hot standby (in recovery).
    Standby,
    /// A hot standby when one of the hosts is; otherwise any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    /// The libpq spelling (`read-write`, `prefer-standby`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    pub(super) fn parse(value: &str) -> Result<TargetSessionAttrs, Error> {
        Ok(match value {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            _ => {
                return Err(config_error(&format!(
                    "invalid target_session_attrs `{value}`: expected any, read-write, \
                     read-only, primary, standby or prefer-standby"
                )))
            }
        })
    }
}

/// In which order the hosts are tried (libpq 16's `load_balance_hosts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadBalanceHosts {
    /// In the order given (the default).
    #[default]
    Disable,
    /// In a random order, drawn anew for each connection, spreading
    /// connections over equivalent servers.
    Random,
}

impl LoadBalanceHosts {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalanceHosts::Disable => "disable",
            LoadBalanceHosts::Random => "random",
        }
    }

    pub(super) fn parse(value: &str) -> Result<LoadBalanceHosts, Error> {
        match value {
            "disable" => Ok(LoadBalanceHosts::Disable),
            "random" => Ok(LoadBalanceHosts::Random),
            _ => Err(config_error(&format!(
                "invalid load_balance_hosts `{value}`: expected disable or random"
            ))),
        }
    }
}

/// A comma-separated host list (`h1,h2,/run/postgresql`).
pub(super) fn parse_host_list(value: &str, shown: Shown) -> Result<Vec<Host>, Error> {
    value
        .split(',')
        .map(|host| parse_host(host.trim(), shown))
        .collect()
}

/// A comma-separated port list; an empty entry is the default port, as in
/// libpq (`port=,5433`).
pub(super) fn parse_port_list(value: &str, shown: Shown) -> Result<Vec<u16>, Error> {
    value
        .split(',')
        .map(|port| match port.trim() {
            "" => Ok(DEFAULT_PORT),
            port => parse_port(port, shown),
        })
        .collect()
}

/// Checks that the ports fit the hosts: none (the default for all), one
/// for all, or one per host.
pub(super) fn check_ports_fit(hosts: usize, ports: usize) -> Result<(), Error> {
    if ports <= 1 || ports == hosts {
        return Ok(());
    }
    Err(config_error(&format!(
        "port lists {ports} ports for {hosts} hosts: give one port for all hosts or one per host"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_libpq_spelling_of_target_session_attrs_round_trips() {
        for text in [
            "any",
            "read-write",
            "read-only",
            "primary",
            "standby",
            "prefer-standby",
        ] {
            assert_eq!(TargetSessionAttrs::parse(text).unwrap().as_str(), text);
        }
        let message = TargetSessionAttrs::parse("master").unwrap_err().to_string();
        assert!(
            message.contains("target_session_attrs `master`"),
            "{message}"
        );
    }

    #[test]
    fn an_empty_port_in_a_list_is_the_default_port() {
        assert_eq!(
            parse_port_list(",5433", Shown::Quoted).unwrap(),
            vec![DEFAULT_PORT, 5433]
        );
    }

    #[test]
    fn ports_fit_when_none_one_or_one_per_host() {
        assert!(check_ports_fit(3, 0).is_ok());
        assert!(check_ports_fit(3, 1).is_ok());
        assert!(check_ports_fit(3, 3).is_ok());
        let message = check_ports_fit(3, 2).unwrap_err().to_string();
        assert!(message.contains("2 ports for 3 hosts"), "{message}");
    }
}
