//! Property tests of connection-string parsing (`odm::pg::Config::parse`):
//! it never panics, whatever the input, and no password (nor any piece of
//! one) reaches an error message or a `Debug` form, whatever characters it
//! holds. Parsing does no I/O, so no server is needed.

use odm::pg::Config;
use proptest::prelude::*;

/// The URL a password is put into; every other part is fixed and valid.
const BEFORE_USER: &str = "postgresql://";
const AFTER_PASSWORD: &str =
    "@db.example:5433/odm?application_name=props&statement_cache_capacity=3";

/// Characters that split URLs and connection strings, weighted heavily so
/// that random passwords hit every delimiter often.
const DELIMITERS: &[char] = &[
    '/', '?', '#', '@', ':', '%', '&', '=', '\'', '\\', ' ', '[', ']', '+',
];

/// A character of a random password: delimiters, ASCII, hex digits (so
/// `%XX` escapes, valid and not, come up), and any Unicode scalar.
fn password_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::sample::select(DELIMITERS),
        3 => proptest::char::range('!', '~'),
        2 => proptest::sample::select(&['0', '7', 'a', 'F', 'f'][..]),
        1 => any::<char>(),
    ]
}

fn password() -> impl Strategy<Value = String> {
    proptest::collection::vec(password_char(), 0..24).prop_map(|chars| chars.into_iter().collect())
}

/// Every run of `len` characters of `text`.
fn windows(text: &str, len: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(len)
        .map(|window| window.iter().collect())
        .collect()
}

/// Fails when `shown` contains `secret` or a 4-character piece of it that
/// is neither in `elsewhere` (the rest of the input) nor in `neutral` (what
/// `shown` holds anyway, without this secret).
fn assert_hidden(shown: &str, secret: &str, elsewhere: &str, neutral: &str) {
    if !secret.is_empty() && !elsewhere.contains(secret) && !neutral.contains(secret) {
        assert!(!shown.contains(secret), "{secret:?} shown in {shown:?}");
    }
    for piece in windows(secret, 4) {
        if !elsewhere.contains(&piece) && !neutral.contains(&piece) {
            assert!(
                !shown.contains(&piece),
                "{piece:?} of {secret:?} shown in {shown:?}"
            );
        }
    }
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The messages a URL whose only free part is the userinfo may fail with:
/// the text every error holds anyway.
fn userinfo_error_messages() -> String {
    [
        "postgresql://app:a/b@h/d",
        "postgresql://app:a@h/d#x",
        "postgresql://app:%zz@h/d",
        "postgresql://%zz:a@h/d",
    ]
    .iter()
    .map(|url| Config::parse(url).unwrap_err().to_string())
    .collect::<Vec<_>>()
    .join("\n")
}

proptest! {
    #[test]
    fn parsing_any_text_never_panics(text in any::<String>()) {
        let _ = Config::parse(&text);
    }

    #[test]
    fn parsing_any_url_never_panics(
        rest in proptest::collection::vec(password_char(), 0..60),
        scheme in proptest::sample::select(&["postgresql", "postgres", "postgresql+green"][..]),
    ) {
        let rest: String = rest.into_iter().collect();
        let _ = Config::parse(&format!("{scheme}://{rest}"));
    }

    #[test]
    fn parsing_any_key_value_text_never_panics(
        pairs in proptest::collection::vec(
            (
                proptest::sample::select(&[
                    "host", "port", "user", "password", "dbname", "pool_size",
                    "connect_timeout", "query_timeout", "statement_timeout", "sslmode",
                    "sslrootcert", "sslnegotiation",
                    "keepalives_count", "statement_cache_capacity", "channel_binding",
                    "require_auth", "bogus", "",
                ][..]),
                password(),
                proptest::sample::select(&["=", " = ", "='", " ", "=\\", ""][..]),
            ),
            0..6,
        )
    ) {
        let text: String = pairs
            .iter()
            .map(|(key, value, separator)| format!("{key}{separator}{value} "))
            .collect();
        let _ = Config::parse(&text);
    }

    #[test]
    fn no_piece_of_a_raw_password_in_a_url_reaches_an_error_or_debug(password in password()) {
        let user = "app";
        let url = format!("{BEFORE_USER}{user}:{password}{AFTER_PASSWORD}");
        let elsewhere = format!("{BEFORE_USER}{user}:\u{0}{AFTER_PASSWORD}");
        match Config::parse(&url) {
            Err(e) => assert_hidden(&e.to_string(), &password, &elsewhere, &userinfo_error_messages()),
            Ok(config) => {
                let neutral = format!(
                    "{:?}",
                    Config::parse(&format!("{BEFORE_USER}{user}:X{AFTER_PASSWORD}")).unwrap()
                );
                assert_hidden(&format!("{config:?}"), &password, &elsewhere, &neutral);
                prop_assert_eq!(config.user(), user);
                prop_assert_eq!(config.port(), 5433);
                prop_assert_eq!(config.dbname(), "odm");
                prop_assert_eq!(config.statement_cache_capacity(), 3);
            }
        }
    }

    #[test]
    fn no_piece_of_a_raw_user_name_or_password_in_a_url_reaches_an_error(
        user in password(),
        password in password(),
    ) {
        let url = format!("{BEFORE_USER}{user}:{password}{AFTER_PASSWORD}");
        let elsewhere = format!("{BEFORE_USER}\u{0}:\u{0}{AFTER_PASSWORD}");
        if let Err(e) = Config::parse(&url) {
            let message = e.to_string();
            let neutral = userinfo_error_messages();
            assert_hidden(&message, &user, &elsewhere, &neutral);
            assert_hidden(&message, &password, &elsewhere, &neutral);
        }
    }

    #[test]
    fn a_percent_encoded_random_password_parses_back_exactly(
        user in any::<String>(),
        password in any::<String>(),
    ) {
        let url = format!(
            "postgres://{}:{}@db.example/odm",
            percent_encode(&user),
            percent_encode(&password)
        );
        let config = Config::parse(&url).unwrap();
        prop_assert_eq!(config.password(), Some(password.as_str()));
        if !user.is_empty() {
            prop_assert_eq!(config.user(), user.as_str());
        }
        let in_query = format!("postgres://u@db.example/odm?password={}", percent_encode(&password));
        let from_query = Config::parse(&in_query).unwrap();
        prop_assert_eq!(from_query.password(), Some(password.as_str()));
        prop_assert_eq!(Config::parse(&config.to_url()).unwrap(), config);
    }
}
