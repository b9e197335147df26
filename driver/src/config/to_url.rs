//! Writing a [`Config`] back as a URL that parses to an equal `Config`.

use std::time::Duration;

use super::defaults::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVES_COUNT, DEFAULT_KEEPALIVES_IDLE,
    DEFAULT_KEEPALIVES_INTERVAL, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SLOW_STATEMENT,
    DEFAULT_STATEMENT_CACHE_CAPACITY,
};
use super::percent::percent_encode;
use super::{
    ChannelBindingMode, Config, Host, LoadBalanceHosts, SslMode, SslNegotiation, TargetSessionAttrs,
};

impl Config {
    /// [`Config::to_url`]: the scheme, user, hosts, database and every
    /// setting not at its default.
    pub(super) fn write_url(&self) -> String {
        let mut url = format!("{}://{}@", self.scheme, self.userinfo());
        let mut query = self.host_parameters();
        if query.is_empty() {
            url.push_str(&self.authority());
        }
        url.push_str(&format!("/{}", percent_encode(&self.dbname)));
        query.extend(self.changed_settings());
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.push_str(&percent_encode(value));
        }
        url
    }

    /// `user` or `user:password`, percent-encoded.
    fn userinfo(&self) -> String {
        let mut userinfo = percent_encode(&self.user);
        if let Some(password) = &self.password {
            userinfo.push(':');
            userinfo.push_str(&percent_encode(password));
        }
        userinfo
    }

    /// The hosts as the URL's authority, `host:port,...` (an IPv6 address in
    /// brackets); only for TCP hosts (see [`Config::host_parameters`]).
    fn authority(&self) -> String {
        self.hosts()
            .iter()
            .map(|(host, port)| match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{}:{port}", percent_encode(name)),
                Host::Unix(dir) => format!("{}:{port}", dir.to_string_lossy()),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// With a unix-socket host among the hosts (a directory cannot be an
    /// authority), every host and port as the `host` and `port`
    /// parameters, libpq's way; else none.
    fn host_parameters(&self) -> Vec<(&'static str, String)> {
        let hosts = self.hosts();
        if !hosts.iter().any(|(host, _)| matches!(host, Host::Unix(_))) {
            return Vec::new();
        }
        let text = |host: &Host| match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(dir) => dir.to_string_lossy().into_owned(),
        };
        let list =
            |f: &dyn Fn(&(Host, u16)) -> String| hosts.iter().map(f).collect::<Vec<_>>().join(",");
        vec![
            ("host", list(&|(host, _)| text(host))),
            ("port", list(&|(_, port)| port.to_string())),
        ]
    }

    /// Every setting that differs from its default, as `(key, value)` in
    /// the URL's order.
    fn changed_settings(&self) -> Vec<(&'static str, String)> {
        let mut query: Vec<(&'static str, String)> = Vec::new();
        if self.target_session_attrs != TargetSessionAttrs::Any {
            query.push((
                "target_session_attrs",
                self.target_session_attrs.as_str().to_owned(),
            ));
        }
        if self.load_balance_hosts != LoadBalanceHosts::Disable {
            query.push((
                "load_balance_hosts",
                self.load_balance_hosts.as_str().to_owned(),
            ));
        }
        if let Some(name) = &self.application_name {
            query.push(("application_name", name.clone()));
        }
        if self.connect_timeout != Some(DEFAULT_CONNECT_TIMEOUT) {
            let timeout = self.connect_timeout.unwrap_or_default();
            query.push(("connect_timeout", format_seconds(timeout)));
        }
        if let Some(timeout) = self.statement_timeout {
            query.push(("statement_timeout", timeout.as_millis().to_string()));
        }
        if let Some(timeout) = self.query_timeout {
            query.push(("query_timeout", format_millis(timeout)));
        }
        if self.max_message_bytes != DEFAULT_MAX_MESSAGE_BYTES {
            query.push(("max_message_bytes", self.max_message_bytes.to_string()));
        }
        if self.slow_statement != Some(DEFAULT_SLOW_STATEMENT) {
            let threshold = self.slow_statement.unwrap_or_default();
            query.push(("slow_statement_ms", format_millis(threshold)));
        }
        if !self.keepalives {
            query.push(("keepalives", "0".to_owned()));
        }
        if self.keepalives_idle != DEFAULT_KEEPALIVES_IDLE {
            query.push(("keepalives_idle", format_seconds(self.keepalives_idle)));
        }
        if self.keepalives_interval != DEFAULT_KEEPALIVES_INTERVAL {
            query.push((
                "keepalives_interval",
                format_seconds(self.keepalives_interval),
            ));
        }
        if self.keepalives_count != DEFAULT_KEEPALIVES_COUNT {
            query.push(("keepalives_count", self.keepalives_count.to_string()));
        }
        if let Some(timeout) = self.tcp_user_timeout {
            query.push(("tcp_user_timeout", format_millis(timeout)));
        }
        if let Some(options) = &self.options {
            query.push(("options", options.clone()));
        }
        if self.ssl_mode != SslMode::Prefer {
            query.push(("sslmode", self.ssl_mode.as_str().to_owned()));
        }
        if self.channel_binding != ChannelBindingMode::Prefer {
            query.push(("channel_binding", self.channel_binding.as_str().to_owned()));
        }
        if let Some(require_auth) = &self.require_auth {
            query.push(("require_auth", require_auth.to_string()));
        }
        if let Some(path) = &self.ssl_root_cert {
            query.push(("sslrootcert", path.clone()));
        }
        if let Some(path) = &self.ssl_cert {
            query.push(("sslcert", path.clone()));
        }
        if let Some(path) = &self.ssl_key {
            query.push(("sslkey", path.clone()));
        }
        if self.ssl_negotiation != SslNegotiation::Postgres {
            query.push(("sslnegotiation", self.ssl_negotiation.as_str().to_owned()));
        }
        if !self.statement_cache {
            query.push(("statement_cache", "false".to_owned()));
        }
        if !self.coalesce_reads {
            query.push(("coalesce_reads", "false".to_owned()));
        }
        if self.statement_cache_capacity != DEFAULT_STATEMENT_CACHE_CAPACITY {
            query.push((
                "statement_cache_capacity",
                self.statement_cache_capacity.to_string(),
            ));
        }
        query
    }
}

pub(super) fn format_seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        d.as_secs_f64().to_string()
    }
}

/// Milliseconds as [`super::settings`] reads them: whole, or decimal.
fn format_millis(d: Duration) -> String {
    let micros = d.as_micros();
    if micros.is_multiple_of(1000) {
        (micros / 1000).to_string()
    } else {
        format!("{}", micros as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn to_url_round_trips() {
        for url in [
            "postgresql+green://odm:odm%20t@st@127.0.0.1:5433/odmtests?statement_cache_capacity=7",
            "postgresql://u:p@[::1]:6000/d?application_name=a%26b&connect_timeout=3&statement_timeout=250\
             &options=-c%20x%3D1&sslmode=disable&statement_cache=false",
            "postgres://u@/d?host=/tmp/pg%20dir&port=5439",
            "postgresql://app@db.example.com/app?sslmode=verify-full&sslrootcert=system\
             &sslcert=/etc/odm/client%20cert.pem&sslkey=/etc/odm/client.key&sslnegotiation=direct",
            "postgres://u@h/d?connect_timeout=0&query_timeout=2000&keepalives=0\
             &keepalives_idle=5&keepalives_interval=2&keepalives_count=3&tcp_user_timeout=10000",
            "postgres://u@h/d?query_timeout=1.5&channel_binding=require&require_auth=scram-sha-256",
        ] {
            let c = Config::parse(url).unwrap();
            let again = Config::parse(&c.to_url()).unwrap();
            assert_eq!(c, again, "{url} -> {}", c.to_url());
        }
    }

    #[test]
    fn a_built_config_round_trips_through_its_url() {
        let c = Config::builder()
            .host("/run/postgresql")
            .port(5439)
            .user("a b")
            .password("p@ss/w?rd")
            .application_name("odm test")
            .build()
            .unwrap();
        assert_eq!(Config::parse(&c.to_url()).unwrap(), c, "{}", c.to_url());
    }
}
