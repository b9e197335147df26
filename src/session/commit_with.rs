//! [`Session::commit_with`]: a transaction's last write and its `COMMIT`
//! in one write to the server, answered in one round trip.
//!
//! A transaction per request costs, besides its statements, the round trip
//! of its `COMMIT` (the session's `BEGIN` already rides in front of its
//! first statement). `commit_with` sends the `COMMIT` right behind the last
//! write, before that write's answer comes back, so a request that writes
//! once costs one round trip, as an autocommit statement does; the
//! connection is then handed to the next waiting task as soon as the
//! write's answer is read, before the `COMMIT`'s.
//!
//! What the answer means stays exact:
//!
//! - `Ok`: the write and the `COMMIT` both succeeded;
//! - the write failed (a constraint): the server rolled the transaction
//!   back (it answers the `COMMIT` with `ROLLBACK`), nothing of it is
//!   stored, and the answer is the write's own error;
//! - the connection broke after the `COMMIT` left:
//!   [`Error::CommitOutcomeUnknown`], as for [`Session::commit`]; before
//!   anything left: the connection's error, nothing stored.

use super::Session;
use crate::error::Result;

#[cfg(doc)]
use crate::error::{Error, MapperError};

impl Session {
    /// Runs `last`, the transaction's last step, and commits, sending the
    /// `COMMIT` in the same write as the first ORM write `last` makes
    /// ([`add`](Session::add), [`add_all`](Session::add_all),
    /// [`delete`](Session::delete), a query's
    /// [`update`](super::Query::update) or [`delete`](super::Query::delete))
    /// — behind that write's last statement, when it takes several (a
    /// child model's parent rows first, `add_all` rows of different
    /// shapes): one round trip for the write's last statement and the
    /// commit, where [`commit`](Session::commit) after the write costs two.
    /// The write's own answer (generated keys, row counts) is read as usual
    /// before `last` goes on. Locking reads, raw SQL and
    /// [`Query::iter`](super::Query::iter) never carry it.
    ///
    /// That write must be `last`'s last statement on its bind: any
    /// statement of the session on that bind after it is refused with
    /// [`MapperError::TransactionEnded`]. The `COMMIT` goes out the usual
    /// way, after `last`, when `last` makes no write, in a joined session
    /// (which only releases its savepoint), an autocommit session, inside
    /// [`Session::nested`], with `query_timeout` set, with
    /// `statement_cache=false`, or when the write is not to the only bind
    /// the transaction uses.
    ///
    /// ```no_run
    /// # #[derive(odm::Model, Debug, Clone, Default)]
    /// # struct World { #[odm(primary_key)] id: Option<i32>, randomnumber: i32 }
    /// # fn demo(mapper: &odm::Mapper, mut worlds: Vec<World>) -> odm::Result<()> {
    /// let mut session = mapper.session()?;
    /// // reads first, in the transaction or not ...
    /// session.commit_with(|s| s.add_all(&mut worlds))?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Session::commit`], and `last`'s error: when `last` fails
    /// before its write, the transaction is rolled back; when its write
    /// failed on the server, that error (nothing is stored). When `last`
    /// fails *after* its write was answered (a decoding error of what the
    /// write returned, a refused later statement), the `COMMIT` had
    /// already left: the error is `last`'s, but the write may be committed
    /// — unless the commit's own answer is an error, which is returned
    /// instead when it leaves the outcome unknown.
    pub fn commit_with<T>(mut self, last: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        self.commit_behind_next_write();
        let outcome = last(&mut self);
        self.commit_behind = false;
        match outcome {
            Ok(value) => self.commit().map(|()| value),
            Err(e) if self.commit_was_sent() => {
                let committed = self.commit();
                Err(match committed {
                    Err(c) if c.is_commit_outcome_unknown() && e.as_db_error().is_none() => c,
                    _ => e,
                })
            }
            Err(e) => {
                if let Err(rollback) = self.rollback() {
                    log::warn!("rolling back after a failed commit_with step failed: {rollback}");
                }
                Err(e)
            }
        }
    }

    /// Makes the session's next ORM write its transaction's last: `COMMIT`
    /// goes out behind its last statement in the same write, as in
    /// [`commit_with`](Session::commit_with), for code that cannot wrap its
    /// last step in a closure (a loop that learns only at its last item
    /// that it is the last). Call [`commit`](Session::commit) after the
    /// write: it reads the `COMMIT`'s answer (`Ok` when the write and the
    /// commit succeeded; [`Error::RolledBack`] with the write's error as the
    /// cause when the write failed, the error the write itself returned). A
    /// statement on that bind between the write and `commit` is refused
    /// with [`MapperError::TransactionEnded`]; dropping the session or
    /// [`rollback`](Session::rollback) reads the answer too, but cannot
    /// undo the commit. Without a write before `commit`, `commit` sends the
    /// `COMMIT` as usual. No effect in the sessions
    /// [`commit_with`](Session::commit_with) lists.
    pub fn commit_behind_next_write(&mut self) {
        self.commit_behind = !self.autocommit && !self.is_joined() && self.depth == 0;
    }

    /// Whether `COMMIT` already went out behind a write on one of the
    /// session's connections.
    fn commit_was_sent(&self) -> bool {
        let mut sent = false;
        let _ = self.scope.for_each(|conn| {
            sent |= conn.commit_was_sent();
            Ok(())
        });
        sent
    }

    /// Inside [`Session::commit_with`]: whether the write about to run on
    /// bind `label` carries the `COMMIT` (the first write, on the only bind
    /// the transaction uses); the request is used up either way.
    pub(super) fn take_commit_behind(&mut self, label: &str) -> bool {
        std::mem::take(&mut self.commit_behind) && self.scope.only_bind(label)
    }
}
