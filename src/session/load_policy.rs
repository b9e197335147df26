//! The N+1 policy: a session counts how often each relation is loaded row
//! by row with [`Session::related`](crate::Session::related) and, past
//! [`N_PLUS_ONE_THRESHOLD`], allows, warns or refuses as its
//! [`LoadPolicy`] says. The cure is batched eager loading,
//! [`Query::with_related`](crate::Query::with_related): one query for the
//! children of all owners.

use crate::error::MapperError;

/// How many times one relation may be loaded with
/// [`Session::related`](crate::Session::related) in a session before it
/// counts as an N+1 pattern.
pub const N_PLUS_ONE_THRESHOLD: usize = 10;

/// What a session does when it sees an N+1 pattern: the same relation loaded
/// with [`Session::related`](crate::Session::related) once per owner, more
/// than [`N_PLUS_ONE_THRESHOLD`] times. (On coroutines a load in a loop
/// simply blocks and works — there is no "MissingGreenlet" — so the cost to
/// watch is the round trips.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadPolicy {
    /// Load silently.
    Allow,
    /// Load, and log one warning per relation naming it (the default).
    #[default]
    Warn,
    /// Refuse the load past the threshold with
    /// [`MapperError::NPlusOne`].
    Raise,
}

/// A session's `related` loads per relation (table, foreign key column),
/// and its policy.
#[derive(Debug, Default)]
pub(super) struct RelatedLoads {
    pub(super) policy: LoadPolicy,
    calls: Vec<((&'static str, &'static str), usize)>,
}

impl RelatedLoads {
    /// Counts a load of `model` through `table.column` and applies the
    /// policy.
    pub(super) fn note(
        &mut self,
        model: &'static str,
        table: &'static str,
        column: &'static str,
    ) -> Result<(), MapperError> {
        let key = (table, column);
        let calls = match self.calls.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.calls.push((key, 1));
                1
            }
        };
        if calls <= N_PLUS_ONE_THRESHOLD {
            return Ok(());
        }
        let error = MapperError::NPlusOne {
            model,
            table,
            column,
            calls,
        };
        match self.policy {
            LoadPolicy::Allow => Ok(()),
            LoadPolicy::Warn => {
                if calls == N_PLUS_ONE_THRESHOLD + 1 {
                    log::warn!("{error}");
                }
                Ok(())
            }
            LoadPolicy::Raise => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_refuses_the_load_past_the_threshold_naming_the_relation() {
        let mut loads = RelatedLoads {
            policy: LoadPolicy::Raise,
            ..RelatedLoads::default()
        };
        for _ in 0..N_PLUS_ONE_THRESHOLD {
            loads.note("Task", "task", "owner_id").unwrap();
        }
        let err = loads.note("Task", "task", "owner_id").unwrap_err();
        assert!(
            matches!(err, MapperError::NPlusOne { calls, .. } if calls == N_PLUS_ONE_THRESHOLD + 1)
        );
        assert!(err.to_string().contains("`task.owner_id`"));
        loads.note("Task", "task", "other_id").unwrap();
    }
}
