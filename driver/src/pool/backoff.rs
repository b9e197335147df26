//! Backing off after failed connects, so a server that is down, restarting
//! or full is not hammered by every caller of every pool at once.
//!
//! The policy (the pool's settings table repeats it for users):
//!
//! - A connect that fails because the server is **unreachable** (refused,
//!   unreachable, timed out, closed during startup) or **transiently
//!   unable** (SQLSTATE class 53 such as 53300 "too many connections",
//!   57P03 "the database system is starting up", 57P01/57P02 shutting down)
//!   arms the backoff: no connect of this pool starts before a delay that
//!   doubles with every failed round, 50 ms, 100 ms, … up to 2 s, each drawn
//!   at random from its upper half (jitter).
//! - While armed, one caller at a time is let through when the delay has
//!   passed (the *probe*); it holds the gate shut for another delay while it
//!   tries. Other callers that need a new connection park until the gate
//!   opens, or fail at once with a copy of the last connect error if it will
//!   not open before their own deadline.
//! - Failures of attempts that started before the last recorded failure
//!   belong to the same round and do not lengthen the delay: a pool whose
//!   ten connects fail together backs off 50 ms, not 25 s.
//! - A successful connect resets it, and so does a server error that is not
//!   transient (a wrong password, a missing database): the server is up and
//!   answering, and each caller should see its answer.
//!
//! - With [`PoolOptions::fail_fast`](super::PoolOptions::fail_fast), a
//!   caller that would park fails at once with a copy of the last connect
//!   error instead (the probe still goes through when the delay has
//!   passed, so the pool notices a recovered server as soon as without).
//!
//! This is pure bookkeeping under the pool lock; the parking is done by the
//! caller ([`super::opening`]).

use std::io;
use std::time::{Duration, Instant};

use super::jitter;
use crate::error::{sqlstate, DbError, Error};

/// The delay after the first failed round.
pub(crate) const FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest delay: how late, at most, a pool notices a recovered server.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(2);

/// What the backoff says to a caller about to connect.
#[derive(Debug)]
pub(crate) enum Gate {
    /// Connect now.
    Open,
    /// Park until then (never later than the caller's deadline), then ask
    /// again.
    Wait(Instant),
    /// The gate stays shut past the caller's deadline: fail with this copy
    /// of the last connect error.
    Refuse(Error),
}

/// How a connect failure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The server is unreachable: fail the caller, arm the backoff.
    Unavailable,
    /// The server is up but cannot take a connection yet: arm the backoff
    /// and let the caller retry within its deadline.
    Transient,
    /// The server rejected the login for good (or the error is not about
    /// the server at all): no backoff.
    Rejected,
}

/// A failed connect the backoff remembers, to tell callers it turns away.
#[derive(Debug, Clone)]
enum Replay {
    Connect {
        target: String,
        kind: io::ErrorKind,
        message: String,
    },
    Io {
        kind: io::ErrorKind,
        message: String,
    },
    Closed,
    QueryTimeout(Duration),
    Server(Box<DbError>),
}

impl Replay {
    fn error(&self) -> Error {
        match self {
            Replay::Connect {
                target,
                kind,
                message,
            } => Error::Connect {
                target: target.clone(),
                source: io::Error::new(*kind, message.clone()),
            },
            Replay::Io { kind, message } => Error::Io(io::Error::new(*kind, message.clone())),
            Replay::Closed => Error::Closed,
            Replay::QueryTimeout(timeout) => Error::QueryTimeout { timeout: *timeout },
            Replay::Server(db) => Error::Db(db.clone()),
        }
    }
}

/// How `err`, returned by a connect, counts, and its replayable copy.
fn classify(err: &Error) -> (Failure, Option<Replay>) {
    let replay = match err {
        Error::Db(db) if sqlstate::is_transient_refusal(&db.code) => {
            return (Failure::Transient, Some(Replay::Server(db.clone())));
        }
        Error::Connect { target, source } => Replay::Connect {
            target: target.clone(),
            kind: source.kind(),
            message: source.to_string(),
        },
        Error::Io(source) => Replay::Io {
            kind: source.kind(),
            message: source.to_string(),
        },
        Error::Closed => Replay::Closed,
        Error::QueryTimeout { timeout } => Replay::QueryTimeout(*timeout),
        _ => return (Failure::Rejected, None),
    };
    (Failure::Unavailable, Some(replay))
}

/// The state of an armed backoff.
#[derive(Debug)]
struct Armed {
    /// No connect starts before this.
    not_before: Instant,
    /// The current round's (jittered) delay.
    delay: Duration,
    /// When the last failure was recorded.
    failed_at: Instant,
    /// The last failure.
    last: Replay,
}

/// A pool's connect backoff (see the [module documentation](self)).
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// Failed rounds in a row; 0 when not backing off.
    rounds: u32,
    armed: Option<Armed>,
}

impl Backoff {
    /// True while connects are being held back.
    #[cfg(test)]
    fn is_armed(&self) -> bool {
        self.armed.is_some()
    }

    /// Failed rounds in a row.
    pub(crate) fn rounds(&self) -> u32 {
        self.rounds
    }

    /// May a caller whose deadline is `deadline` connect at `now`? A caller
    /// let through while armed is the probe: the gate stays shut for others
    /// for one more delay while it tries.
    pub(crate) fn gate(&mut self, now: Instant, deadline: Instant) -> Gate {
        let Some(armed) = &mut self.armed else {
            return Gate::Open;
        };
        if now >= armed.not_before {
            armed.not_before = now + armed.delay;
            Gate::Open
        } else if armed.not_before <= deadline {
            Gate::Wait(armed.not_before)
        } else {
            Gate::Refuse(armed.last.error())
        }
    }

    /// A copy of the last connect error while the backoff is armed.
    pub(crate) fn last_error(&self) -> Option<Error> {
        self.armed.as_ref().map(|armed| armed.last.error())
    }

    /// A connect succeeded: back to normal.
    pub(crate) fn succeeded(&mut self) {
        self.rounds = 0;
        self.armed = None;
    }

    /// Records a connect that started at `started` and failed at `now` with
    /// `err`; `spread` (in `[0, 1)`) places the delay in its jitter range.
    /// Returns how the failure counts and, when armed, the earliest time of
    /// the next attempt.
    pub(crate) fn failed(
        &mut self,
        err: &Error,
        started: Instant,
        now: Instant,
        spread: f64,
    ) -> (Failure, Option<Instant>) {
        let (failure, replay) = classify(err);
        let Some(last) = replay else {
            self.succeeded();
            return (failure, None);
        };
        let new_round = self
            .armed
            .as_ref()
            .is_none_or(|armed| started > armed.failed_at);
        if new_round {
            self.rounds = self.rounds.saturating_add(1);
        }
        let delay = jittered(self.rounds, spread);
        let not_before = match &self.armed {
            Some(armed) if !new_round => armed.not_before.max(now + delay),
            _ => now + delay,
        };
        self.armed = Some(Armed {
            not_before,
            delay,
            failed_at: now,
            last,
        });
        (failure, Some(not_before))
    }
}

/// The delay after `rounds` failed rounds, before jitter: 50 ms doubling,
/// at most [`MAX_DELAY`].
pub(crate) fn full_delay(rounds: u32) -> Duration {
    let doublings = rounds.saturating_sub(1).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// The delay after `rounds` failed rounds: uniformly in the upper half of
/// [`full_delay`] ("equal jitter"), so pools that failed together spread
/// out yet every delay still grows.
fn jittered(rounds: u32, spread: f64) -> Duration {
    let full = full_delay(rounds);
    full / 2 + jitter::part_of(full / 2, spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Error {
        Error::Connect {
            target: "127.0.0.1:1".into(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"),
        }
    }

    #[test]
    fn the_last_error_is_kept_while_armed_and_forgotten_after_a_success() {
        let mut backoff = Backoff::default();
        assert!(backoff.last_error().is_none());
        let now = Instant::now();
        backoff.failed(&refused(), now, now, 0.5);
        let copy = backoff.last_error().expect("armed");
        assert!(copy.is_connection_error(), "{copy:?}");
        assert!(copy.to_string().contains("connection refused"), "{copy}");
        backoff.succeeded();
        assert!(backoff.last_error().is_none());
    }

    fn server(code: &str) -> Error {
        Error::Db(Box::new(DbError {
            severity: "FATAL".into(),
            code: code.into(),
            message: "no".into(),
            ..DbError::default()
        }))
    }

    #[test]
    fn delays_double_from_fifty_milliseconds_up_to_two_seconds() {
        let delays: Vec<u64> = (1..=8).map(|r| full_delay(r).as_millis() as u64).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(full_delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn jitter_keeps_each_delay_in_the_upper_half() {
        assert_eq!(jittered(1, 0.0), Duration::from_millis(25));
        assert!(jittered(1, 0.999) < Duration::from_millis(50));
        assert_eq!(jittered(3, 0.5), Duration::from_millis(150));
    }

    #[test]
    fn errors_are_classified_by_what_they_say_about_the_server() {
        assert_eq!(classify(&refused()).0, Failure::Unavailable);
        assert_eq!(classify(&Error::Closed).0, Failure::Unavailable);
        for code in [
            sqlstate::CANNOT_CONNECT_NOW,
            sqlstate::TOO_MANY_CONNECTIONS,
            sqlstate::OUT_OF_MEMORY,
            sqlstate::ADMIN_SHUTDOWN,
        ] {
            assert_eq!(classify(&server(code)).0, Failure::Transient, "{code}");
        }
        assert_eq!(
            classify(&server(sqlstate::INVALID_PASSWORD)).0,
            Failure::Rejected
        );
        assert_eq!(
            classify(&server(sqlstate::INVALID_CATALOG_NAME)).0,
            Failure::Rejected
        );
        assert_eq!(classify(&Error::TlsUnsupported).0, Failure::Rejected);
    }

    #[test]
    fn a_failure_arms_the_gate_and_a_success_opens_it() {
        let mut backoff = Backoff::default();
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(60);
        assert!(matches!(backoff.gate(t0, far), Gate::Open));
        let (failure, next) = backoff.failed(&refused(), t0, t0, 0.0);
        assert_eq!(failure, Failure::Unavailable);
        assert_eq!(next, Some(t0 + Duration::from_millis(25)));
        assert!(
            matches!(backoff.gate(t0, far), Gate::Wait(t) if t == t0 + Duration::from_millis(25))
        );
        backoff.succeeded();
        assert!(!backoff.is_armed());
        assert!(matches!(backoff.gate(t0, far), Gate::Open));
    }

    #[test]
    fn a_caller_whose_deadline_ends_first_gets_the_last_error_at_once() {
        let mut backoff = Backoff::default();
        let t0 = Instant::now();
        backoff.failed(&refused(), t0, t0, 0.0);
        match backoff.gate(t0, t0 + Duration::from_millis(10)) {
            Gate::Refuse(err) => {
                assert!(matches!(err, Error::Connect { .. }), "{err:?}");
                assert_eq!(err.to_string(), refused().to_string());
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        backoff.succeeded();
        backoff.failed(&server(sqlstate::CANNOT_CONNECT_NOW), t0, t0, 0.0);
        match backoff.gate(t0, t0 + Duration::from_millis(10)) {
            Gate::Refuse(err) => assert_eq!(err.code(), Some(sqlstate::CANNOT_CONNECT_NOW)),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn only_one_probe_passes_when_the_delay_is_over() {
        let mut backoff = Backoff::default();
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(60);
        backoff.failed(&refused(), t0, t0, 0.0);
        let later = t0 + Duration::from_millis(30);
        assert!(matches!(backoff.gate(later, far), Gate::Open));
        assert!(matches!(backoff.gate(later, far), Gate::Wait(_)));
        // The probe fails: a new round, twice the delay.
        let (_, next) = backoff.failed(&refused(), later, later, 0.0);
        assert_eq!(backoff.rounds(), 2);
        assert_eq!(next, Some(later + Duration::from_millis(50)));
    }

    #[test]
    fn failures_of_one_round_lengthen_the_delay_once() {
        let mut backoff = Backoff::default();
        let t0 = Instant::now();
        for i in 0..10 {
            let now = t0 + Duration::from_millis(i);
            backoff.failed(&refused(), t0, now, 0.0);
        }
        assert_eq!(backoff.rounds(), 1);
    }

    #[test]
    fn a_rejected_login_resets_the_backoff() {
        let mut backoff = Backoff::default();
        let t0 = Instant::now();
        backoff.failed(&refused(), t0, t0, 0.0);
        let (failure, next) = backoff.failed(&server(sqlstate::INVALID_PASSWORD), t0, t0, 0.0);
        assert_eq!((failure, next), (Failure::Rejected, None));
        assert!(!backoff.is_armed());
        assert_eq!(backoff.rounds(), 0);
    }
}
