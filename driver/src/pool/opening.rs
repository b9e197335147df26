//! Opening a connection for a caller whose slot the pool has counted:
//! within the caller's deadline, and not before the backoff lets it.
//!
//! The connect gets `connect_timeout` cut to what is left of the caller's
//! `pool_timeout`, so [`Pool::acquire`](crate::Pool::acquire) never waits
//! longer than `pool_timeout` in total, even for a server that accepts and
//! never answers. After a failure the [backoff](super::backoff) holds the
//! pool's next connects back; a caller that must wait for it parks its
//! coroutine (no spinning), and one whose deadline ends before the backoff
//! does fails at once.

use std::time::Instant;

use super::backoff::{Failure, Gate};
use super::connector::Connector;
use super::jitter;
use super::keeper::Keeper;
use super::lifecycle::Age;
use super::state::{Checkout, Effects, Lease};
use super::waiter::{park_duration, AcquireDeadline};
use crate::error::Error;

/// A connection slot reserved for opening; gives the slot back if opening
/// fails or the coroutine unwinds.
pub(super) struct Opening<'a, K: Connector> {
    keeper: &'a Keeper<K>,
    /// The exclusive holder registered for this slot, if any.
    holder: Option<u64>,
    armed: bool,
}

impl<'a, K: Connector> Opening<'a, K> {
    /// The slot counted for `holder` (an exclusive caller) or for a shared
    /// statement (`None`).
    pub(super) fn new(keeper: &'a Keeper<K>, holder: Option<u64>) -> Opening<'a, K> {
        Opening {
            keeper,
            holder,
            armed: true,
        }
    }
}

impl<K: Connector> Drop for Opening<'_, K> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut fx = Effects::default();
        {
            let mut state = self.keeper.state();
            state.opening_ended(self.holder.is_none());
            if let Some(task) = self.holder {
                state.release_holder(task);
            }
            state.dispatch(Instant::now(), &mut fx);
        }
        self.keeper.finish(fx);
    }
}

impl<K: Connector> Keeper<K> {
    /// Opens a connection for an exclusive checkout whose slot is counted.
    pub(super) fn open_exclusive(
        &self,
        task: u64,
        deadline: &AcquireDeadline,
    ) -> Result<Checkout<K::Conn>, Error> {
        let mut opening = Opening::new(self, Some(task));
        let (conn, age) = self.connect(deadline)?;
        opening.armed = false;
        let mut state = self.state();
        state.opening_ended(false);
        if state.closed {
            state.release_holder(task);
            drop(state);
            self.counters.discarded();
            drop(conn);
            return Err(Error::PoolClosed);
        }
        state.size += 1;
        drop(state);
        self.counters.acquired();
        Ok(Checkout { conn, age })
    }

    /// Opens a connection for a shared statement whose slot is counted; the
    /// new connection joins the pool and queued statements pile onto it.
    pub(super) fn open_shared(&self, deadline: &AcquireDeadline) -> Result<Lease<K::Conn>, Error> {
        let mut opening = Opening::new(self, None);
        let (conn, age) = self.connect(deadline)?;
        opening.armed = false;
        let mut fx = Effects::default();
        let lease = {
            let mut state = self.state();
            state.opening_ended(true);
            if state.closed {
                fx.close.push(conn);
                None
            } else {
                state.size += 1;
                let lease = state.insert_lent(conn, age);
                state.dispatch(Instant::now(), &mut fx);
                Some(lease)
            }
        };
        self.finish(fx);
        lease.ok_or(Error::PoolClosed)
    }

    /// Connects once the backoff allows it, within `deadline`; retries a
    /// transient refusal (the server is starting up, or full) as long as
    /// the deadline allows.
    fn connect(&self, deadline: &AcquireDeadline) -> Result<(K::Conn, Age), Error> {
        loop {
            let now = Instant::now();
            let gate = self.state().backoff.gate(now, deadline.at);
            match gate {
                Gate::Open => {}
                Gate::Wait(until) => {
                    if self.fail_fast {
                        let last = self.state().backoff.last_error();
                        if let Some(err) = last {
                            self.counters.backoff_refused();
                            return Err(err);
                        }
                    }
                    self.counters.backoff_wait();
                    may::coroutine::sleep(park_duration(until.saturating_duration_since(now)));
                    continue;
                }
                Gate::Refuse(err) => {
                    self.counters.backoff_refused();
                    return Err(err);
                }
            }
            let within = deadline.remaining(now);
            if within.is_zero() {
                return Err(self.timed_out(deadline));
            }
            match self.connector.connect(within) {
                Ok(conn) => {
                    self.state().backoff.succeeded();
                    self.counters.opened();
                    let age = self.lifecycle.born(Instant::now(), jitter::fraction());
                    return Ok((conn, age));
                }
                Err(err) => {
                    self.counters.connect_failed();
                    let (failure, next) =
                        self.state()
                            .backoff
                            .failed(&err, now, Instant::now(), jitter::fraction());
                    match next {
                        Some(next) if failure == Failure::Transient && next <= deadline.at => {}
                        _ => return Err(err),
                    }
                }
            }
        }
    }
}
