//! [`BindConnection`]: a session's connection to one bind and the state of
//! its transaction there — whether `BEGIN` was sent, how many savepoint
//! levels exist, and, once a statement failed, the error that aborted it.
//!
//! `BEGIN` and `SAVEPOINT` are queued ahead of the statement that needs
//! them without waiting for their answers (no round trip of their own).
//! After every statement the connection's transaction status says whether
//! the transaction is aborted; the first error that aborted it is kept, so
//! the next statement is refused naming it and the commit reports it (see
//! [`crate::session`]).

use crate::error::{Error, MapperError, Result};
use crate::mapper::Mapper;
use green_postgres::pool::PooledConnection;
use green_postgres::seam::{self, require_green, PendingCommit, TransactionAbort};
use green_postgres::{self as pg, observe_statement, Client, TransactionStatus};

/// One bind's connection inside a session.
pub(super) struct BindConnection {
    conn: PooledConnection,
    /// Whether `BEGIN` has been sent on this connection.
    pub(super) in_transaction: bool,
    /// How many of the session's savepoint levels exist on this connection.
    savepoints: usize,
    /// The first failure of the transaction, while it is aborted.
    aborted: TransactionAbort,
    /// The `COMMIT` sent behind the transaction's last statement
    /// ([`Session::commit_with`](crate::Session::commit_with)), its answer
    /// not yet read: nothing more may run here.
    commit_sent: Option<PendingCommit>,
}

/// Queues a simple statement (`BEGIN`, `SAVEPOINT`) without waiting for
/// its answer: it goes out in the same write as the statement that needed
/// it, so it costs no round trip and no system call of its own. Neither can
/// fail on a healthy connection, and neither is sent in an aborted
/// transaction; when the connection broke, the statement that follows
/// reports it.
fn send_simple(client: &Client, sql: &str) -> pg::Result<()> {
    seam::queue_begin(client, sql)
}

/// A client whose next statement carries `COMMIT` behind it, for as long
/// as this lives: dropping it withdraws the request if no statement used
/// it (so a connection never goes back to its pool still armed).
struct ArmedCommit<'a>(&'a Client);

impl<'a> ArmedCommit<'a> {
    fn arm(client: &'a Client) -> ArmedCommit<'a> {
        seam::commit_behind_next_statement(client, true);
        ArmedCommit(client)
    }
}

impl Drop for ArmedCommit<'_> {
    fn drop(&mut self) {
        seam::commit_behind_next_statement(self.0, false);
    }
}

fn savepoint_name(level: usize) -> String {
    format!("odm_savepoint_{level}")
}

impl BindConnection {
    /// A connection checked out for a bind, not yet in a transaction.
    pub(super) fn new(conn: PooledConnection) -> BindConnection {
        BindConnection {
            conn,
            in_transaction: false,
            savepoints: 0,
            aborted: TransactionAbort::default(),
            commit_sent: None,
        }
    }

    /// Runs a statement in the transaction at savepoint level `depth`:
    /// `BEGIN` and any missing `SAVEPOINT`s are queued ahead of it. In an
    /// aborted transaction the statement is refused unless `sql` (the
    /// caller's own SQL, `None` for the ORM's) is a rollback; the error that
    /// aborts the transaction is kept. With `commit_behind` (a healthy
    /// transaction at the top level, no `query_timeout`) the statement is
    /// the transaction's last: `COMMIT` goes out behind it in the same
    /// write, and its answer is read by [`BindConnection::commit`]. After
    /// that, a statement is refused with
    /// [`MapperError::TransactionEnded`](crate::error::MapperError::TransactionEnded).
    pub(super) fn run<R>(
        &mut self,
        depth: usize,
        sql: Option<&str>,
        work: impl FnOnce(&Client) -> pg::Result<R>,
        commit_behind: bool,
    ) -> Result<R> {
        if self.commit_sent.is_some() {
            return Err(MapperError::TransactionEnded.into());
        }
        self.aborted.refuse_if_aborted(&self.conn, sql)?;
        if self.conn.transaction_status() != TransactionStatus::Failed {
            if !self.in_transaction {
                send_simple(&self.conn, "BEGIN")?;
                self.in_transaction = true;
            }
            while self.savepoints < depth {
                self.savepoints += 1;
                send_simple(
                    &self.conn,
                    &format!("SAVEPOINT {}", savepoint_name(self.savepoints)),
                )?;
            }
        }
        let commit_behind =
            commit_behind && depth == 0 && self.conn.config().query_timeout().is_none();
        let outcome = if commit_behind {
            let armed = ArmedCommit::arm(&self.conn);
            let outcome = work(armed.0);
            // Withdrawn (also when `work` panics) if `work` ran no
            // statement by SQL text.
            drop(armed);
            outcome
        } else {
            work(&self.conn)
        };
        if commit_behind {
            self.commit_sent = self.aborted.commit_sent_behind(&self.conn, &outcome);
            if self.commit_sent.is_some() {
                return Ok(outcome?);
            }
        }
        self.aborted.note(&self.conn, &outcome);
        Ok(outcome?)
    }

    /// Whether `COMMIT` went out behind the last statement.
    pub(super) fn commit_was_sent(&self) -> bool {
        self.commit_sent.is_some()
    }

    /// Ends savepoint level `level` if it exists here: released when `keep`,
    /// else rolled back to. A savepoint cannot be kept in an aborted
    /// transaction: it is rolled back to and the answer is
    /// [`Error::RolledBack`](crate::Error::RolledBack). Either way the
    /// transaction is healthy afterwards.
    pub(super) fn end_savepoint(&mut self, level: usize, keep: bool) -> Result<()> {
        if self.savepoints < level {
            return Ok(());
        }
        self.savepoints = level - 1;
        let name = savepoint_name(level);
        let ended = if keep {
            self.aborted.release_savepoint(&self.conn, &name)
        } else {
            self.aborted.rollback_to_savepoint(&self.conn, &name)
        };
        Ok(ended?)
    }

    /// Sends `COMMIT`; [`Error::RolledBack`](crate::Error::RolledBack) when
    /// it did not commit.
    ///
    /// A healthy transaction's connection is handed to the next task
    /// waiting for one as soon as `COMMIT` is sent, before its answer comes
    /// (see [`PooledConnection::pass_on`]): that task's statements follow
    /// the `COMMIT` on the wire, so the connection is not held for the
    /// commit's round trip and this task's wake-up. The answer is still
    /// read before this returns, and what it says is reported exactly as
    /// before. Not with `query_timeout` set: a `COMMIT` that passed it is
    /// cancelled only while it is alone on its connection.
    pub(super) fn commit(self) -> Result<()> {
        let BindConnection {
            conn,
            mut aborted,
            commit_sent,
            ..
        } = self;
        if let Some(pending) = commit_sent {
            // Sent behind the last statement, whose answer has been read:
            // hand the connection on, then read the commit's answer.
            let kept = seam::pass_on(conn);
            let outcome = pending.outcome();
            drop(kept);
            return Ok(outcome?);
        }
        let database = conn.config().dbname().to_owned();
        // observed as one statement (hook, span), from sending to the answer
        let committed = observe_statement(
            &database,
            "COMMIT",
            |_| None,
            || {
                let healthy = conn.transaction_status() == TransactionStatus::InTransaction;
                if !healthy || conn.config().query_timeout().is_some() {
                    return aborted.commit(&conn);
                }
                let pending = aborted.send_commit(&conn)?;
                // Kept (nobody waits for a connection): given back once the
                // answer is in, as usual.
                let kept = seam::pass_on(conn);
                let outcome = pending.outcome();
                drop(kept);
                outcome
            },
        );
        Ok(committed?)
    }

    /// Sends `ROLLBACK`. When `COMMIT` already went out behind the last
    /// statement, nothing can be rolled back any more: its answer is read
    /// and returned (`Ok` when it committed).
    pub(super) fn rollback(self) -> Result<()> {
        if self.commit_sent.is_some() {
            return self.commit();
        }
        Ok(self.conn.batch_execute("ROLLBACK")?)
    }
}

/// The session's new connection to bind `label`: taken beside the task's
/// other connections for an independent transaction
/// ([`Pool::acquire_another`](crate::Pool::acquire_another)).
pub(super) fn connect(mapper: &Mapper, label: &str, independent: bool) -> Result<BindConnection> {
    require_green("session")?;
    let engine = mapper
        .engine(Some(label))
        .ok_or_else(|| MapperError::UnknownBind {
            label: label.to_owned(),
        })?;
    let conn = if independent {
        engine.pool().acquire_another()?
    } else {
        engine.pool().acquire()?
    };
    Ok(BindConnection::new(conn))
}

pub(super) fn busy(label: &str) -> Error {
    MapperError::ConnectionBusy {
        label: label.to_owned(),
    }
    .into()
}
