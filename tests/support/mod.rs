//! Support shared by the fault tests (`tests/fault_proxy.rs`,
//! `tests/faults.rs`, `tests/pgbouncer.rs`): the insert soak, and a fault
//! proxy in front of a test database. Each test binary uses a part of it.
#![allow(dead_code)]

pub mod restart;
pub mod soak;

use odm::pg::{Config, Host};
use odm::testing::FaultProxy;

/// A [`FaultProxy`] in front of the TCP server `url` names (read by odm's
/// own [`Config`]); panics, failing the test, on a unix-socket URL.
pub fn proxy_in_front_of(url: &str) -> FaultProxy {
    let config = Config::parse(url).expect("the test url parses");
    let host = match config.host() {
        Host::Tcp(host) => host.clone(),
        Host::Unix(_) => panic!("a fault proxy needs a tcp host, not a unix socket"),
    };
    FaultProxy::in_front_of(&host, config.port()).expect("the proxy starts")
}
