//! Choosing among several hosts (libpq's multi-host connection strings):
//! which server state is acceptable ([`TargetSessionAttrs`]), in which
//! order the hosts are tried ([`LoadBalanceHosts`]), and reading the host
//! and port lists (`host=h1,h2 port=5432,5433`).

use super::config::config_error;
use super::defaults::DEFAULT_PORT;
use super::percent::Shown;
use super::settings::{parse_host, parse_port};
use super::{Config, Host};
use crate::error::Error;

/// Which servers a connection may stay on (libpq's `target_session_attrs`,
/// with libpq's meaning): checked after each host's connect, the next host
/// is tried when it does not hold.
///
/// PostgreSQL 14 and later report `in_hot_standby` and
/// `default_transaction_read_only` at startup, so no query is needed;
/// against an older server `SHOW transaction_read_only` or
/// `SELECT pg_is_in_recovery()` asks. 14 and later also report a promotion
/// on open connections; on 13 the pool asks again (one round trip at each
/// checkout) for its `standby` and `read-only` connections.
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

impl Config {
    /// Gives every host its port: the default when none was given, the one
    /// port for all, or each its own; other counts are an error.
    pub(super) fn fit_ports_to_hosts(&mut self) -> Result<(), Error> {
        check_ports_fit(self.hosts.len(), self.ports.len())?;
        self.ports = self.hosts().into_iter().map(|(_, port)| port).collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(name: &str, port: u16) -> (Host, u16) {
        (Host::Tcp(name.to_owned()), port)
    }

    #[test]
    fn a_url_names_several_hosts_each_with_its_own_port_or_the_default() {
        let c = Config::parse(
            "postgresql://u:pw@h1:5433,[::1]:6000,h3/db?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(
            c.hosts(),
            vec![tcp("h1", 5433), tcp("::1", 6000), tcp("h3", DEFAULT_PORT)]
        );
        assert_eq!((c.host(), c.port()), (&Host::Tcp("h1".into()), 5433));
        assert_eq!(c.target_session_attrs(), TargetSessionAttrs::ReadWrite);
        assert_eq!(c.load_balance_hosts(), LoadBalanceHosts::Disable);
    }

    #[test]
    fn key_values_give_one_port_for_all_hosts_or_one_per_host() {
        let c = Config::parse("host=h1,h2 port=5433 load_balance_hosts=random").unwrap();
        assert_eq!(c.hosts(), vec![tcp("h1", 5433), tcp("h2", 5433)]);
        assert_eq!(c.load_balance_hosts(), LoadBalanceHosts::Random);
        let c = Config::parse("port=5433,5434 host=h1,/run/pg").unwrap();
        assert_eq!(
            c.hosts(),
            vec![tcp("h1", 5433), (Host::Unix("/run/pg".into()), 5434)]
        );
    }

    #[test]
    fn a_port_list_that_does_not_fit_the_hosts_is_a_typed_error() {
        for s in [
            "host=h1,h2,h3 port=1,2",
            "postgresql://u:secret@h1,h2/db?port=1,2,3",
        ] {
            let err = Config::parse(s).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{err:?}");
            assert!(err.to_string().contains("ports for"), "{err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let err = Config::parse("host=h1,h2 target_session_attrs=writable").unwrap_err();
        assert!(err.to_string().contains("`writable`"), "{err}");
    }

    #[test]
    fn a_multi_host_config_round_trips_through_its_url() {
        for s in [
            "postgresql://u:pw@h1:5433,h2:5434/db?target_session_attrs=standby",
            "host=h1,/tmp port=1,2 load_balance_hosts=random user=u",
            "postgresql://u@h1,[::1]/db?target_session_attrs=prefer-standby",
        ] {
            let c = Config::parse(s).unwrap();
            assert_eq!(Config::parse(&c.to_url()).unwrap(), c, "{}", c.to_url());
        }
    }

    #[test]
    fn the_builder_takes_a_host_list_and_the_session_attrs() {
        let c = Config::builder()
            .host("h1,h2")
            .port(6000)
            .target_session_attrs(TargetSessionAttrs::Primary)
            .build()
            .unwrap();
        assert_eq!(c.hosts(), vec![tcp("h1", 6000), tcp("h2", 6000)]);
        assert_eq!(c.target_session_attrs(), TargetSessionAttrs::Primary);
    }

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
