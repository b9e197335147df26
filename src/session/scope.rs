//! [`Scope`]: one transaction of a task on a mapper — the connections it
//! holds (one per bind used), its savepoint levels — shared by the
//! sessions that joined it, and the coroutine-local registry that lets a
//! nested [`Mapper::begin`](crate::Mapper::begin) on the same task find it.
//!
//! A scope's connections are lent to one statement at a time: a statement
//! takes its bind's connection out of the scope (a short lock, no I/O under
//! it), runs, and puts it back. Sessions of one scope all run on the task
//! that opened it, one statement at a time, so a connection is never asked
//! for while it is out; if it is (a session moved to another coroutine, or a
//! connection lost to a panic), the statement fails with
//! [`MapperError::ConnectionBusy`].
//!
//! The registry is kept in `may`'s coroutine-local storage (a
//! `thread_local!` would be shared by every coroutine of a worker thread and
//! lost when a coroutine resumes on another thread). It holds weak
//! references: a scope leaves it when its last session is gone, and an
//! ended scope (committed or rolled back) is never joined.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::bind_connection::BindConnection;
use crate::error::{MapperError, Result};

/// What kind of entry point opened a scope, which decides who may join it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opening {
    /// A transaction block ([`Mapper::begin`](crate::Mapper::begin) or an
    /// independent one): nested `begin` *and* `session()` join it.
    Block,
    /// A session from [`Mapper::session`](crate::Mapper::session): a nested
    /// `begin` joins it; another `session()` stays a session of its own.
    Manual,
}

/// One transaction of a task on a mapper.
pub(super) struct Scope {
    opening: Opening,
    /// Whether its connections are taken beside the task's others
    /// ([`crate::Pool::acquire_another`]).
    pub(super) independent: bool,
    state: Mutex<ScopeState>,
}

struct ScopeState {
    /// One slot per bind used, in order of first use; `None` while its
    /// connection is lent to a statement.
    slots: Vec<(String, Option<BindConnection>)>,
    /// The innermost savepoint level handed out (0: none).
    depth: usize,
    /// Committed or rolled back: nothing more may run in it.
    ended: bool,
}

impl Scope {
    /// A new scope, registered as the task's current one for `mapper`.
    pub(super) fn open(mapper: usize, opening: Opening, independent: bool) -> Arc<Scope> {
        let scope = Arc::new(Scope {
            opening,
            independent,
            state: Mutex::new(ScopeState {
                slots: Vec::new(),
                depth: 0,
                ended: false,
            }),
        });
        REGISTRY.with(|registry| {
            let mut registry = registry.borrow_mut();
            registry.retain(|(_, weak)| weak.strong_count() > 0);
            registry.push((mapper, Arc::downgrade(&scope)));
        });
        scope
    }

    /// The task's current transaction on `mapper`: the innermost live
    /// scope that is a transaction block, or a manual session's scope that
    /// has started its transaction (a read-only session is passed over: a
    /// nested `begin` must not depend on its fate). With `blocks_only`, it
    /// is returned only if it is a block.
    pub(super) fn current(mapper: usize, blocks_only: bool) -> Option<Arc<Scope>> {
        // Looked at in place, without copying the registry (every ORM read
        // asks): under its borrow run only the scopes' short locks and
        // drops of `Arc`s, none of which reaches the registry again.
        let scope = REGISTRY.with(|registry| {
            registry
                .borrow()
                .iter()
                .rev()
                .filter(|(m, _)| *m == mapper)
                .filter_map(|(_, weak)| weak.upgrade())
                .find(|s| !s.is_ended() && (s.opening == Opening::Block || s.in_transaction(None)))
        })?;
        (!blocks_only || scope.opening == Opening::Block).then_some(scope)
    }

    /// Whether it was committed, rolled back or abandoned.
    pub(super) fn is_ended(&self) -> bool {
        self.state.lock().ended
    }

    /// Hands out the next savepoint level.
    pub(super) fn enter_level(&self) -> usize {
        let mut state = self.state.lock();
        state.depth += 1;
        state.depth
    }

    /// Gives level `level` (and any inside it) back.
    pub(super) fn leave_level(&self, level: usize) {
        let mut state = self.state.lock();
        state.depth = state.depth.min(level.saturating_sub(1));
    }

    /// Whether the scope holds a connection to bind `label`.
    pub(super) fn has_bind(&self, label: &str) -> bool {
        self.state.lock().slots.iter().any(|(l, _)| l == label)
    }

    /// Whether the scope uses no bind but `label` (it may not use that
    /// one yet).
    pub(super) fn only_bind(&self, label: &str) -> bool {
        self.state.lock().slots.iter().all(|(l, _)| l == label)
    }

    /// Whether any of its connections is in a transaction.
    pub(super) fn in_transaction(&self, label: Option<&str>) -> bool {
        self.state.lock().slots.iter().any(|(l, conn)| {
            label.is_none_or(|label| l == label) && conn.as_ref().is_some_and(|c| c.in_transaction)
        })
    }

    /// Runs `work` on the connection to bind `label`, opening one with
    /// `connect` when the scope has none yet.
    pub(super) fn with_bind<R>(
        &self,
        label: &str,
        connect: impl FnOnce() -> Result<BindConnection>,
        work: impl FnOnce(&mut BindConnection) -> Result<R>,
    ) -> Result<R> {
        let mut conn = match self.take(label)? {
            Some(conn) => conn,
            None => connect()?,
        };
        let outcome = work(&mut conn);
        self.put(label, conn);
        outcome
    }

    /// Runs `work` on the connection to bind `label` if the scope has one;
    /// `None` otherwise.
    pub(super) fn with_existing<R>(
        &self,
        label: &str,
        work: impl FnOnce(&mut BindConnection) -> Result<R>,
    ) -> Option<Result<R>> {
        match self.take(label) {
            Ok(Some(mut conn)) => {
                let outcome = work(&mut conn);
                self.put(label, conn);
                Some(outcome)
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Runs `work` on every connection of the scope, in order of first use;
    /// the first error is returned after all ran.
    pub(super) fn for_each(
        &self,
        mut work: impl FnMut(&mut BindConnection) -> Result<()>,
    ) -> Result<()> {
        let labels: Vec<String> = self
            .state
            .lock()
            .slots
            .iter()
            .map(|(l, _)| l.clone())
            .collect();
        let mut failure = None;
        for label in labels {
            if let Some(Err(e)) = self.with_existing(&label, &mut work) {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Ends the scope: takes all its connections out (to commit or roll
    /// back) and refuses every later statement. `false` when one of them
    /// was lost (to a panic inside a statement), or the scope had already
    /// ended: its transaction is gone, so committing the rest would store
    /// only part of it.
    pub(super) fn end(&self) -> (Vec<BindConnection>, bool) {
        let mut state = self.state.lock();
        let mut complete = !state.ended;
        state.ended = true;
        let mut connections = Vec::new();
        for (_, conn) in state.slots.drain(..) {
            match conn {
                Some(conn) => connections.push(conn),
                None => complete = false,
            }
        }
        (connections, complete)
    }

    /// Ends the scope without I/O (while unwinding): its connections are
    /// dropped, and the pool discards them, which rolls back.
    pub(super) fn abandon(&self) {
        let (connections, _) = self.end();
        drop(connections);
    }

    fn take(&self, label: &str) -> Result<Option<BindConnection>> {
        let mut state = self.state.lock();
        if state.ended {
            return Err(MapperError::TransactionEnded.into());
        }
        match state.slots.iter_mut().find(|(l, _)| l == label) {
            None => Ok(None),
            Some((_, slot)) => match slot.take() {
                Some(conn) => Ok(Some(conn)),
                None => Err(MapperError::ConnectionBusy {
                    label: label.to_owned(),
                }
                .into()),
            },
        }
    }

    fn put(&self, label: &str, conn: BindConnection) {
        let mut state = self.state.lock();
        if state.ended {
            // Ended while the connection was out (cannot happen on one
            // task); dropping it returns it to the pool, which rolls back.
            return;
        }
        match state.slots.iter_mut().find(|(l, _)| l == label) {
            Some((_, slot)) => *slot = Some(conn),
            None => state.slots.push((label.to_owned(), Some(conn))),
        }
    }
}

type Registry = RefCell<Vec<(usize, Weak<Scope>)>>;

may::coroutine_local!(static REGISTRY: Registry = RefCell::new(Vec::new()));

#[cfg(test)]
mod tests {
    use super::*;

    // Off a coroutine, `may`'s coroutine-local storage falls back to the
    // thread's, so the registry's rules can be checked on a test thread.

    #[test]
    fn a_block_is_the_current_transaction_until_it_ends() {
        let block = Scope::open(1, Opening::Block, false);
        let current = Scope::current(1, false).expect("the block");
        assert!(Arc::ptr_eq(&current, &block));
        assert!(Scope::current(1, true).is_some());
        let (connections, complete) = block.end();
        assert!(connections.is_empty() && complete);
        assert!(Scope::current(1, false).is_none());
        let (_, complete) = block.end();
        assert!(!complete, "a second end is not a complete transaction");
    }

    #[test]
    fn a_manual_session_that_has_not_written_is_passed_over() {
        let block = Scope::open(2, Opening::Block, false);
        let _reader = Scope::open(2, Opening::Manual, false);
        let current = Scope::current(2, false).expect("the block");
        assert!(Arc::ptr_eq(&current, &block));
    }

    #[test]
    fn another_mappers_transaction_is_not_joined() {
        let _block = Scope::open(3, Opening::Block, false);
        assert!(Scope::current(4, false).is_none());
    }

    #[test]
    fn a_dropped_scope_leaves_the_registry() {
        drop(Scope::open(5, Opening::Block, false));
        assert!(Scope::current(5, false).is_none());
    }

    #[test]
    fn savepoint_levels_nest_and_are_given_back() {
        let block = Scope::open(6, Opening::Block, false);
        assert_eq!(block.enter_level(), 1);
        assert_eq!(block.enter_level(), 2);
        block.leave_level(1);
        assert_eq!(block.enter_level(), 1);
    }

    #[test]
    fn a_statement_after_the_end_is_refused() {
        let block = Scope::open(7, Opening::Block, false);
        block.abandon();
        let err = block
            .with_bind(
                "default",
                || unreachable!("no connection is opened"),
                |_| Ok(()),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the transaction this session belongs to has ended"
        );
    }
}
