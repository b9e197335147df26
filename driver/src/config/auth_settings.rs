//! The authentication settings that keep a server (or a man in the middle)
//! from downgrading the login: `channel_binding` and `require_auth`, with
//! libpq's names, values and meaning, and their parsing.

use std::fmt;

use super::config::config_error;
use crate::error::Error;

/// Whether SCRAM authentication binds itself to the TLS channel
/// (`channel_binding`, libpq's setting; default [`ChannelBindingMode::Prefer`]).
///
/// Channel binding (`SCRAM-SHA-256-PLUS` with `tls-server-end-point`) proves
/// to the client that the server that checked the password is the one at
/// the other end of the TLS connection, not a relay in the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBindingMode {
    /// Never bind: plain `SCRAM-SHA-256`, even when `-PLUS` is offered.
    Disable,
    /// Bind when the connection is TLS and the server offers
    /// `SCRAM-SHA-256-PLUS`; otherwise log in without it.
    #[default]
    Prefer,
    /// Log in only with `SCRAM-SHA-256-PLUS` over TLS. Any other request of
    /// the server (plain SCRAM, md5, cleartext, or no authentication at
    /// all) fails with [`Error::ChannelBindingRequired`] and nothing
    /// derived from the password is sent.
    Require,
}

impl ChannelBindingMode {
    /// The libpq spelling: `disable`, `prefer` or `require`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBindingMode::Disable => "disable",
            ChannelBindingMode::Prefer => "prefer",
            ChannelBindingMode::Require => "require",
        }
    }

    pub(super) fn parse(value: &str) -> Result<ChannelBindingMode, Error> {
        match value {
            "disable" => Ok(ChannelBindingMode::Disable),
            "prefer" => Ok(ChannelBindingMode::Prefer),
            "require" => Ok(ChannelBindingMode::Require),
            _ => Err(config_error(&format!(
                "invalid channel_binding `{value}`: expected disable, prefer or require"
            ))),
        }
    }
}

/// An authentication method a server can ask for, as `require_auth` names
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Cleartext password (`password`).
    Password,
    /// MD5-hashed password (`md5`).
    Md5,
    /// SCRAM-SHA-256, with or without channel binding (`scram-sha-256`).
    ScramSha256,
    /// GSSAPI / Kerberos (`gss`); this driver cannot perform it.
    Gss,
    /// Windows SSPI (`sspi`); this driver cannot perform it.
    Sspi,
    /// No authentication at all: the server answers the startup message
    /// with `AuthenticationOk` (`trust`, `peer`, ...).
    None,
}

impl AuthMethod {
    /// Every method, in the order `require_auth` lists are written back.
    const ALL: [AuthMethod; 6] = [
        AuthMethod::Password,
        AuthMethod::Md5,
        AuthMethod::ScramSha256,
        AuthMethod::Gss,
        AuthMethod::Sspi,
        AuthMethod::None,
    ];

    /// The name `require_auth` uses: `password`, `md5`, `scram-sha-256`,
    /// `gss`, `sspi` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Gss => "gss",
            AuthMethod::Sspi => "sspi",
            AuthMethod::None => "none",
        }
    }

    fn from_name(name: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The authentication methods a server may ask for (`require_auth`,
/// libpq 16's setting), checked before anything derived from the password
/// is sent.
///
/// Written as a comma-separated list of allowed methods
/// (`scram-sha-256`, `md5,scram-sha-256`, `none`) or of refused ones, each
/// with a leading `!` (`!password,!md5`); the two forms cannot be mixed.
/// `none` stands for a server that asks for no authentication: a list of
/// allowed methods without `none` also refuses a server that lets the
/// client in without asking, while a list of refused methods allows that
/// unless it names `!none`. A refused request fails with
/// [`Error::AuthMethodRefused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequireAuth {
    /// One bit per [`AuthMethod`]: the methods listed.
    listed: u8,
    /// Whether the list names refused (`!method`) rather than allowed ones.
    negated: bool,
}

impl RequireAuth {
    /// Whether a server asking for `method` is allowed to proceed.
    pub fn allows(&self, method: AuthMethod) -> bool {
        let listed = self.listed & method.bit() != 0;
        listed != self.negated
    }

    /// Whether the list names refused methods (`!md5,!password`) rather
    /// than allowed ones.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// Parses a `require_auth` value; `None` for an empty one (libpq: no
    /// requirement).
    pub(super) fn parse(value: &str) -> Result<Option<RequireAuth>, Error> {
        if value.trim().is_empty() {
            return Ok(None);
        }
        let invalid = |why: &str| config_error(&format!("invalid require_auth `{value}`: {why}"));
        let mut listed = 0u8;
        let mut negated = None;
        for item in value.split(',') {
            let item = item.trim();
            let (is_negated, name) = match item.strip_prefix('!') {
                Some(name) => (true, name),
                None => (false, item),
            };
            if *negated.get_or_insert(is_negated) != is_negated {
                return Err(invalid(
                    "refused (`!method`) and allowed methods cannot be mixed",
                ));
            }
            let method = AuthMethod::from_name(name).ok_or_else(|| {
                invalid(&format!(
                    "unknown method `{name}`: expected password, md5, scram-sha-256, gss, \
                     sspi or none, each optionally with a leading `!`"
                ))
            })?;
            if listed & method.bit() != 0 {
                return Err(invalid(&format!("`{name}` is listed twice")));
            }
            listed |= method.bit();
        }
        Ok(Some(RequireAuth {
            listed,
            negated: negated.unwrap_or(false),
        }))
    }
}

/// The list as `require_auth` writes it, methods in a fixed order.
impl fmt::Display for RequireAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for method in AuthMethod::ALL {
            if self.listed & method.bit() == 0 {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if self.negated {
                f.write_str("!")?;
            }
            f.write_str(method.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn require_auth(value: &str) -> RequireAuth {
        RequireAuth::parse(value).unwrap().unwrap()
    }

    fn err(s: &str) -> String {
        Config::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn a_list_of_methods_allows_exactly_those() {
        let r = require_auth("scram-sha-256");
        assert!(r.allows(AuthMethod::ScramSha256));
        for refused in [
            AuthMethod::Password,
            AuthMethod::Md5,
            AuthMethod::Gss,
            AuthMethod::Sspi,
            AuthMethod::None,
        ] {
            assert!(!r.allows(refused), "{refused:?}");
        }
        let r = require_auth("md5, none");
        assert!(r.allows(AuthMethod::Md5) && r.allows(AuthMethod::None));
        assert!(!r.allows(AuthMethod::Password) && !r.allows(AuthMethod::ScramSha256));
    }

    #[test]
    fn a_list_of_refused_methods_allows_the_others_and_no_authentication() {
        let r = require_auth("!password,!md5");
        assert!(r.is_negated());
        assert!(!r.allows(AuthMethod::Password) && !r.allows(AuthMethod::Md5));
        assert!(r.allows(AuthMethod::ScramSha256) && r.allows(AuthMethod::None));
        assert!(!require_auth("!none").allows(AuthMethod::None));
    }

    #[test]
    fn an_empty_require_auth_is_no_requirement() {
        assert_eq!(RequireAuth::parse("").unwrap(), None);
        assert_eq!(
            Config::parse("postgres://u@h/d?require_auth=")
                .unwrap()
                .require_auth(),
            None
        );
    }

    #[test]
    fn auth_settings_default_to_prefer_and_no_requirement() {
        let c = Config::parse("postgres://u@h/d").unwrap();
        assert_eq!(c.channel_binding(), ChannelBindingMode::Prefer);
        assert_eq!(c.require_auth(), None);
    }

    #[test]
    fn auth_settings_parse_in_both_forms_and_round_trip() {
        for s in [
            "postgres://u:p@h/d?channel_binding=require&require_auth=scram-sha-256",
            "postgres://u@h/d?channel_binding=disable&require_auth=%21password%2C%21md5",
            "host=h user=u channel_binding=prefer require_auth='md5,scram-sha-256,none'",
            "host=h user=u require_auth=!none",
        ] {
            let c = Config::parse(s).unwrap();
            assert_eq!(
                Config::parse(&c.to_url()).unwrap(),
                c,
                "{s} -> {}",
                c.to_url()
            );
        }
        let c = Config::parse("postgres://u@h/d?channel_binding=require&require_auth=none,md5")
            .unwrap();
        assert_eq!(c.channel_binding(), ChannelBindingMode::Require);
        assert_eq!(c.require_auth().unwrap().to_string(), "md5,none");
        let debug = format!("{c:?}");
        assert!(debug.contains("channel_binding: Require"), "{debug}");
        assert!(debug.contains("require_auth"), "{debug}");
    }

    #[test]
    fn bad_auth_settings_name_the_key_and_the_value_but_never_the_password() {
        assert_eq!(
            err("postgres://u:s3cret@h/d?channel_binding=maybe"),
            "invalid configuration: invalid channel_binding `maybe`: expected disable, prefer or require"
        );
        assert_eq!(
            err("postgres://u:s3cret@h/d?require_auth=!password,md5"),
            "invalid configuration: invalid require_auth `!password,md5`: refused (`!method`) \
             and allowed methods cannot be mixed"
        );
        assert_eq!(
            err("postgres://u:s3cret@h/d?require_auth=md5,md5"),
            "invalid configuration: invalid require_auth `md5,md5`: `md5` is listed twice"
        );
        let e = err("require_auth=scram password=s3cret");
        assert!(
            e.starts_with(
                "invalid configuration: invalid require_auth `scram`: unknown method `scram`"
            ),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
        let e = err("postgres://u@h/d?require_auth=md5,");
        assert!(e.contains("require_auth `md5,`: unknown method ``"), "{e}");
    }
}
