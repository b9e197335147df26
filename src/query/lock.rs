//! Locking reads: the row lock a query takes (`FOR UPDATE`,
//! `FOR NO KEY UPDATE`, `FOR SHARE`, `FOR KEY SHARE`) and what it does about
//! a row another transaction has locked — wait (the default), skip it
//! (`SKIP LOCKED`) or fail at once (`NOWAIT`, SQLSTATE 55P03, see
//! [`Error::is_lock_not_available`](crate::Error::is_lock_not_available)).
//!
//! The waiting policies are types ([`Wait`], [`SkipLocked`], [`NoWait`]), so
//! what makes no sense does not compile: `skip_locked()` or `nowait()`
//! without a lock mode, both together, a second lock mode, or `count()` of a
//! locking query. Nothing here talks to the database: the session's
//! [`Locked`](crate::session::Locked) query runs the clause.

use super::sql::Statement;

/// The row lock a locking read takes (PostgreSQL's lock strengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStrength {
    /// `FOR UPDATE`: the rows will be updated or deleted; blocks every
    /// other lock on them.
    Update,
    /// `FOR NO KEY UPDATE`: the rows will be updated but not their keys;
    /// does not block `FOR KEY SHARE` (foreign key checks).
    NoKeyUpdate,
    /// `FOR SHARE`: the rows must not change until the transaction ends;
    /// other `FOR SHARE` readers are allowed.
    Share,
    /// `FOR KEY SHARE`: the rows' keys must not change (what a foreign key
    /// check takes).
    KeyShare,
}

impl LockStrength {
    /// The clause, with its leading space: `" FOR UPDATE"`.
    pub fn sql(self) -> &'static str {
        match self {
            LockStrength::Update => " FOR UPDATE",
            LockStrength::NoKeyUpdate => " FOR NO KEY UPDATE",
            LockStrength::Share => " FOR SHARE",
            LockStrength::KeyShare => " FOR KEY SHARE",
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Wait {}
    impl Sealed for super::SkipLocked {}
    impl Sealed for super::NoWait {}
}

/// What a locking read does about rows locked by another transaction: one
/// of [`Wait`], [`SkipLocked`], [`NoWait`] (sealed).
pub trait WaitPolicy: sealed::Sealed {
    /// The clause after the lock strength, with its leading space (empty
    /// for [`Wait`]).
    const SQL: &'static str;
}

/// Wait until the other transaction ends (PostgreSQL's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wait;

/// `SKIP LOCKED`: leave out the rows another transaction holds (a job
/// queue's workers each take a different job).
#[derive(Debug, Clone, Copy, Default)]
pub struct SkipLocked;

/// `NOWAIT`: fail at once with SQLSTATE 55P03 (`lock_not_available`) when a
/// row is locked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWait;

impl WaitPolicy for Wait {
    const SQL: &'static str = "";
}

impl WaitPolicy for SkipLocked {
    const SQL: &'static str = " SKIP LOCKED";
}

impl WaitPolicy for NoWait {
    const SQL: &'static str = " NOWAIT";
}

/// The locking clause of `strength` and policy `W`: `" FOR UPDATE SKIP
/// LOCKED"`.
#[cfg(test)]
pub(crate) fn clause<W: WaitPolicy>(strength: LockStrength) -> String {
    format!("{}{}", strength.sql(), W::SQL)
}

/// Appends the locking clause to a `SELECT` (it goes last, after `LIMIT`
/// and `OFFSET`).
pub(crate) fn push_clause<W: WaitPolicy>(statement: &mut Statement<'_>, strength: LockStrength) {
    let sql = statement.sql.to_mut();
    sql.push_str(strength.sql());
    sql.push_str(W::SQL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strength_and_policy_renders_postgresql_syntax() {
        assert_eq!(clause::<Wait>(LockStrength::Update), " FOR UPDATE");
        assert_eq!(
            clause::<SkipLocked>(LockStrength::Update),
            " FOR UPDATE SKIP LOCKED"
        );
        assert_eq!(clause::<NoWait>(LockStrength::Share), " FOR SHARE NOWAIT");
        assert_eq!(
            clause::<Wait>(LockStrength::NoKeyUpdate),
            " FOR NO KEY UPDATE"
        );
        assert_eq!(
            clause::<SkipLocked>(LockStrength::KeyShare),
            " FOR KEY SHARE SKIP LOCKED"
        );
    }

    #[test]
    fn the_clause_goes_after_limit() {
        let mut statement = Statement {
            sql: "SELECT 1 FROM \"job\" LIMIT $1".into(),
            params: Vec::new(),
        };
        push_clause::<SkipLocked>(&mut statement, LockStrength::Update);
        assert_eq!(
            statement.sql,
            "SELECT 1 FROM \"job\" LIMIT $1 FOR UPDATE SKIP LOCKED"
        );
    }
}
