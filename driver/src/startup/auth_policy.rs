//! What the client lets a server ask for during authentication
//! (`require_auth`, `channel_binding`), and which SCRAM mechanism and
//! channel binding it answers a SASL request with. Every refusal happens
//! before anything derived from the password is sent.

use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, SCRAM_SHA_256_PLUS};

use crate::config::{AuthMethod, ChannelBindingMode, Config, RequireAuth};
use crate::error::Error;

/// The authentication policy of one connect.
pub(crate) struct AuthPolicy {
    require_auth: Option<RequireAuth>,
    channel_binding: ChannelBindingMode,
    /// The TLS socket's `tls-server-end-point` data; `None` on a plain
    /// socket or under `channel_binding=disable`.
    end_point: Option<Vec<u8>>,
    /// `host:port` (or the unix socket path), for errors.
    host: String,
}

/// The SCRAM exchange to run: the mechanism to name in
/// `SASLInitialResponse` and the channel binding (which sets the GS2 flag).
pub(crate) struct ScramChoice {
    pub(crate) mechanism: &'static str,
    pub(crate) binding: ChannelBinding,
}

impl AuthPolicy {
    /// The policy of `config` for a connection to `host` whose socket gives
    /// `end_point` as its channel-binding data.
    pub(crate) fn new(config: &Config, host: String, end_point: Option<Vec<u8>>) -> AuthPolicy {
        let channel_binding = config.channel_binding();
        AuthPolicy {
            require_auth: config.require_auth().copied(),
            channel_binding,
            end_point: end_point.filter(|_| channel_binding != ChannelBindingMode::Disable),
            host,
        }
    }

    /// Checks that the server may ask for `method`, before the client
    /// answers the request (`None`: the server asked for nothing).
    pub(crate) fn allow(&self, method: AuthMethod) -> Result<(), Error> {
        self.allow_named(Some(method), method.as_str())
    }

    /// Checks a request for a method `require_auth` has no name for
    /// (Kerberos V5, SCM credentials): refused under any `require_auth`.
    pub(crate) fn allow_unnamed(&self, name: &'static str) -> Result<(), Error> {
        self.allow_named(None, name)
    }

    fn allow_named(&self, method: Option<AuthMethod>, name: &'static str) -> Result<(), Error> {
        if let Some(require_auth) = &self.require_auth {
            if !method.is_some_and(|m| require_auth.allows(m)) {
                return Err(Error::AuthMethodRefused {
                    host: self.host.clone(),
                    method: name,
                });
            }
        }
        // Only a SASL exchange can bind to the channel; refuse everything
        // else before it sees the password (and a server that asks for
        // nothing, which would never prove who it is).
        if self.channel_binding == ChannelBindingMode::Require
            && method != Some(AuthMethod::ScramSha256)
        {
            return Err(self.channel_binding_required());
        }
        Ok(())
    }

    /// Picks the SCRAM mechanism for a SASL request offering `mechanisms`:
    /// `SCRAM-SHA-256-PLUS` with `tls-server-end-point` binding when the
    /// socket is TLS, binding is not disabled and the server offers it;
    /// else plain `SCRAM-SHA-256` with GS2 flag `y` (the client could bind
    /// but the server did not offer it, so a server that supports binding
    /// detects the offer was stripped) or `n` (the client cannot bind).
    pub(crate) fn choose_scram<'m>(
        &self,
        mechanisms: impl IntoIterator<Item = &'m str>,
    ) -> Result<ScramChoice, Error> {
        let (mut plain, mut plus) = (false, false);
        for mechanism in mechanisms {
            plain |= mechanism == SCRAM_SHA_256;
            plus |= mechanism == SCRAM_SHA_256_PLUS;
        }
        if let (true, Some(data)) = (plus, &self.end_point) {
            return Ok(ScramChoice {
                mechanism: SCRAM_SHA_256_PLUS,
                binding: ChannelBinding::tls_server_end_point(data.clone()),
            });
        }
        if self.channel_binding == ChannelBindingMode::Require {
            return Err(self.channel_binding_required());
        }
        if !plain {
            return Err(Error::Auth(
                "the server offers no supported sasl mechanism (need SCRAM-SHA-256)".to_owned(),
            ));
        }
        let binding = match self.end_point {
            Some(_) => ChannelBinding::unrequested(),
            None => ChannelBinding::unsupported(),
        };
        Ok(ScramChoice {
            mechanism: SCRAM_SHA_256,
            binding,
        })
    }

    fn channel_binding_required(&self) -> Error {
        Error::ChannelBindingRequired {
            host: self.host.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use postgres_protocol::authentication::sasl::ScramSha256;

    use super::*;

    const HOST: &str = "db.example:5432";

    fn policy(settings: &str, end_point: Option<&[u8]>) -> AuthPolicy {
        let config = Config::parse(&format!("postgres://u@db.example/d?{settings}")).unwrap();
        AuthPolicy::new(&config, HOST.to_owned(), end_point.map(<[u8]>::to_vec))
    }

    /// The mechanism and the GS2 header of the first SCRAM message.
    fn first_message(choice: ScramChoice) -> (&'static str, String) {
        let scram = ScramSha256::new(b"pw", choice.binding);
        let message = String::from_utf8(scram.message().to_vec()).unwrap();
        let header = message[..message.find(",n=").unwrap()].to_owned();
        (choice.mechanism, header)
    }

    fn choice(policy: &AuthPolicy, offered: &[&'static str]) -> (&'static str, String) {
        first_message(policy.choose_scram(offered.iter().copied()).unwrap())
    }

    const BOTH: &[&str] = &[SCRAM_SHA_256_PLUS, SCRAM_SHA_256];

    #[test]
    fn tls_with_plus_offered_binds_to_the_channel_unless_disabled() {
        let tls = Some(&b"hash"[..]);
        for settings in ["", "channel_binding=prefer", "channel_binding=require"] {
            assert_eq!(
                choice(&policy(settings, tls), BOTH),
                (SCRAM_SHA_256_PLUS, "p=tls-server-end-point,".to_owned()),
                "{settings}"
            );
        }
        assert_eq!(
            choice(&policy("channel_binding=disable", tls), BOTH),
            (SCRAM_SHA_256, "n,".to_owned())
        );
    }

    #[test]
    fn prefer_falls_back_with_y_over_tls_and_n_without() {
        let p = policy("channel_binding=prefer", Some(b"hash"));
        assert_eq!(
            choice(&p, &[SCRAM_SHA_256]),
            (SCRAM_SHA_256, "y,".to_owned())
        );
        let p = policy("channel_binding=prefer", None);
        assert_eq!(choice(&p, BOTH), (SCRAM_SHA_256, "n,".to_owned()));
    }

    #[test]
    fn require_without_tls_or_without_plus_is_refused() {
        for (end_point, offered) in [(None, BOTH), (Some(&b"hash"[..]), &[SCRAM_SHA_256][..])] {
            let p = policy("channel_binding=require", end_point);
            match p.choose_scram(offered.iter().copied()) {
                Err(Error::ChannelBindingRequired { host }) => assert_eq!(host, HOST),
                Err(other) => panic!("expected ChannelBindingRequired, got {other:?}"),
                Ok(choice) => panic!("chose {}", choice.mechanism),
            }
        }
    }

    #[test]
    fn require_refuses_every_method_but_scram_before_require_auth_allows_it() {
        let p = policy("channel_binding=require", Some(b"hash"));
        for method in [AuthMethod::Password, AuthMethod::Md5, AuthMethod::None] {
            assert!(
                matches!(p.allow(method), Err(Error::ChannelBindingRequired { .. })),
                "{method:?}"
            );
        }
        assert!(p.allow(AuthMethod::ScramSha256).is_ok());
        assert!(p.allow_unnamed("kerberos").is_err());
    }

    #[test]
    fn require_auth_names_the_refused_method_and_the_host() {
        let p = policy("require_auth=scram-sha-256", None);
        match p.allow(AuthMethod::Md5) {
            Err(Error::AuthMethodRefused { host, method }) => {
                assert_eq!((host.as_str(), method), (HOST, "md5"));
            }
            other => panic!("expected AuthMethodRefused, got {other:?}"),
        }
        assert!(matches!(
            p.allow(AuthMethod::None),
            Err(Error::AuthMethodRefused { method: "none", .. })
        ));
        assert!(matches!(
            p.allow_unnamed("kerberos"),
            Err(Error::AuthMethodRefused {
                method: "kerberos",
                ..
            })
        ));
        assert!(p.allow(AuthMethod::ScramSha256).is_ok());
        let p = policy("", None);
        assert!(p.allow(AuthMethod::Password).is_ok() && p.allow(AuthMethod::None).is_ok());
    }

    #[test]
    fn a_sasl_request_without_scram_is_an_auth_error() {
        let p = policy("", None);
        assert!(matches!(
            p.choose_scram(["OAUTHBEARER"]),
            Err(Error::Auth(_))
        ));
    }
}
