//! Autocommit sessions (`Mapper::autocommit`) against a real server: each
//! write commits on its own on a shared connection, before it returns; a
//! failed write is reported and changes nothing; an acknowledged write
//! survives a server restart; nothing that needs a transaction is accepted.
//!
//! Run: `cargo test --test autocommit`

mod green_tasks;
mod orm_common;
mod support;

use std::time::Duration;

use odm::{Error, Isolation, Mapper, MapperError};
use orm_common::{green, mapper_with_models, Task};

/// Tasks in the table, counted by a shared statement outside any session.
fn stored_tasks(mp: &Mapper) -> i64 {
    mp.engine(None)
        .unwrap()
        .pool()
        .query_one("SELECT count(*) FROM task", &[])
        .unwrap()
        .get(0)
}

#[test]
fn an_autocommit_write_is_committed_before_it_returns_and_a_later_error_undoes_nothing() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let outcome: Result<(), Error> = mp.autocommit(|s| {
            assert!(s.is_autocommit());
            let mut task = Task::new("kept");
            s.add(&mut task)?;
            assert!(task.created.is_some(), "the server default is read back");
            assert_eq!(stored_tasks(s.mapper()), 1, "visible before the work ends");
            s.execute("SELECT 1/0", &[])?;
            Ok(())
        });
        let err = outcome.unwrap_err();
        assert_eq!(err.code(), Some("22012"), "{err}");
        assert_eq!(stored_tasks(&mp), 1);
    });
}

#[test]
fn a_failed_autocommit_write_is_reported_changes_nothing_and_the_next_write_runs() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.autocommit_session().unwrap();
        let mut first = Task::new("first");
        s.add(&mut first).unwrap();
        let duplicate = s.execute(
            "INSERT INTO task (id, subject) VALUES ($1, 'a'), (gen_random_uuid(), 'b'), ($1, 'c')",
            &[&first.id],
        );
        let err = duplicate.unwrap_err();
        assert_eq!(err.code(), Some("23505"), "{err}");
        assert_eq!(
            stored_tasks(&mp),
            1,
            "no row of the failed statement is kept"
        );
        s.add(&mut Task::new("second")).unwrap();
        let updated = s
            .query::<Task>()
            .filter(Task::ID.eq(first.id))
            .update([Task::SUBJECT.set("first, updated")])
            .unwrap();
        assert_eq!(updated, 1);
        let got = s.get::<Task>(first.id).unwrap().unwrap();
        assert_eq!(got.subject, "first, updated");
        s.commit().unwrap();
        assert_eq!(stored_tasks(&mp), 2);
    });
}

#[test]
fn an_autocommit_session_holds_no_connection_between_its_writes() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.autocommit_session().unwrap();
        s.add(&mut Task::new("written")).unwrap();
        // A session holding a connection of this pool would make this a
        // nested acquire.
        let conn = mp.engine(None).unwrap().pool().acquire().unwrap();
        drop(conn);
        assert!(!s.in_transaction());
        drop(s);
        assert_eq!(stored_tasks(&mp), 1, "dropping the session undoes nothing");
    });
}

#[test]
fn what_needs_a_transaction_is_refused_in_an_autocommit_session_before_anything_is_sent() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.autocommit_session().unwrap();
        let begin = s.execute("BEGIN", &[]).unwrap_err();
        assert!(matches!(begin, Error::NotShareable { .. }), "{begin:?}");
        let nested = s
            .nested(|s| s.add(&mut Task::new("never written")))
            .unwrap_err();
        assert!(
            matches!(
                nested,
                Error::Mapper(MapperError::NoTransactionInAutocommit {
                    operation: "nested"
                })
            ),
            "{nested:?}"
        );
        assert!(nested.to_string().contains("Mapper::begin"), "{nested}");
        let isolation = s.set_isolation(Isolation::Serializable).unwrap_err();
        assert!(
            matches!(
                isolation,
                Error::Mapper(MapperError::NoTransactionInAutocommit {
                    operation: "set_isolation"
                })
            ),
            "{isolation:?}"
        );
        assert_eq!(stored_tasks(&mp), 0);
    });
}

#[test]
fn autocommit_writers_keep_every_acknowledged_write_through_a_server_restart() {
    support::restart::writes_survive_a_restart(
        40,
        4,
        4,
        Duration::from_millis(1200),
        |mapper, task, seq| match mapper
            .autocommit(|s| s.execute("INSERT INTO r VALUES ($1, $2)", &[&task, &seq]))?
        {
            1 => Ok(()),
            n => panic!("one insert reported {n} rows"),
        },
    );
}
