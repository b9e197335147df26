//! The span of a transaction (feature `tracing`): `db.transaction`
//! (target `odm::sql`), opened when `Mapper::begin` (or `transaction`,
//! `begin_independent`, ...) starts a transaction of its own and closed
//! when it has committed or rolled back. Its parent is
//! [`green::trace::current_span`] (the green task's span), and it is the
//! current span of the work inside it, so each statement's `db.statement`
//! span, the `COMMIT` included, is its child. A transaction joined at a
//! savepoint has no span of its own: its statements sit in the outer one.
//!
//! Fields: `db.system` (`postgresql`), `db.namespace` (the default bind's
//! database), `otel.name` (`transaction`) and, once it ended,
//! `db.transaction.outcome` (`commit` or `rollback`). Without the feature
//! the work just runs.

use crate::mapper::Mapper;

/// Runs `work` (a whole transaction: the closure, then commit or rollback)
/// in the transaction's span.
#[cfg(feature = "tracing")]
pub(super) fn in_transaction_span<T, E>(
    mapper: &Mapper,
    work: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let parent = green::trace::current_span();
    let span = tracing::info_span!(
        target: "odm::sql",
        parent: &parent,
        "db.transaction",
        otel.name = "transaction",
        db.system = "postgresql",
        db.namespace = tracing::field::Empty,
        db.transaction.outcome = tracing::field::Empty,
    );
    if span.is_disabled() {
        return work();
    }
    if let Some(engine) = mapper.engine(None) {
        span.record("db.namespace", engine.database());
    }
    let outcome = green::trace::in_span(&span, work);
    span.record(
        "db.transaction.outcome",
        if outcome.is_ok() {
            "commit"
        } else {
            "rollback"
        },
    );
    outcome
}

/// Without the `tracing` feature: runs `work`.
#[cfg(not(feature = "tracing"))]
pub(super) fn in_transaction_span<T, E>(
    _mapper: &Mapper,
    work: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    work()
}
