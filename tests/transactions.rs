//! Composable transactions against a real server: a nested `begin` joins
//! the task's transaction at a savepoint, the caller's own error type,
//! independent transactions on a second connection.

mod green_tasks;
mod orm_common;

use std::time::{Duration, Instant};

use odm::AsOdmError;
use odm::{Error, Mapper, MapperError};
use orm_common::{database_url, green, mapper_with_models, test_database, Employee, Task};

fn count_tasks(mp: &Mapper) -> u64 {
    mp.begin(|s| s.query::<Task>().count()).unwrap()
}

fn subjects(mp: &Mapper) -> Vec<String> {
    let mut names: Vec<String> = mp
        .begin(|s| s.query::<Task>().all())
        .unwrap()
        .into_iter()
        .map(|t| t.subject)
        .collect();
    names.sort();
    names
}

/// A business function that opens its own transaction.
fn add_task(mp: &Mapper, subject: &str) -> odm::Result<()> {
    mp.begin(|s| s.add(&mut Task::new(subject)))
}

#[derive(Debug, PartialEq)]
enum ShopError {
    OutOfStock(String),
    Db(String),
}

impl From<Error> for ShopError {
    fn from(e: Error) -> Self {
        ShopError::Db(e.to_string())
    }
}

/// A domain error keeping the odm error, so retries can see it.
#[derive(Debug)]
enum Retrying {
    Db(Error),
}

impl From<Error> for Retrying {
    fn from(e: Error) -> Self {
        Retrying::Db(e)
    }
}

impl AsOdmError for Retrying {
    fn as_odm_error(&self) -> Option<&Error> {
        match self {
            Retrying::Db(e) => Some(e),
        }
    }
}

#[test]
fn a_nested_begin_that_fails_rolls_back_only_its_own_writes() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            s.add(&mut Task::new("outer"))?;
            let failed = mp.begin(|inner| {
                assert!(inner.is_joined());
                inner.add(&mut Task::new("inner, undone"))?;
                Err::<(), _>(Error::Mapper(MapperError::TransactionEnded))
            });
            assert!(failed.is_err());
            s.add(&mut Task::new("outer, after"))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(subjects(&mp), ["outer", "outer, after"]);
    });
}

#[test]
fn a_nested_read_inside_a_writing_transaction_sees_the_outer_writes() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            s.add(&mut Task::new("uncommitted"))?;
            assert_eq!(mp.begin(|inner| inner.query::<Task>().count())?, 1);
            // a session asked for inside the block joins it too
            let mut joined = mp.session()?;
            assert!(joined.is_joined());
            assert_eq!(joined.query::<Task>().count()?, 1);
            joined.commit()?;
            // and the mapper's own reads run on the task's connection
            let tables = mp.tables()?;
            assert!(tables[0].1.iter().any(|t| t == "task"), "{tables:?}");
            Ok(())
        })
        .unwrap();
        assert_eq!(count_tasks(&mp), 1);
    });
}

#[test]
fn an_outer_rollback_discards_the_commits_of_nested_begins() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let outcome: odm::Result<()> = mp.begin(|s| {
            add_task(&mp, "nested, committed into the outer")?;
            s.add(&mut Task::new("outer"))?;
            Err(Error::Mapper(MapperError::TransactionEnded))
        });
        assert!(outcome.is_err());
        assert_eq!(count_tasks(&mp), 0);
    });
}

#[test]
fn three_functions_that_each_begin_compose_into_one_transaction() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let place_order = |mp: &Mapper| -> odm::Result<u64> {
            mp.begin(|s| {
                add_task(mp, "reserve stock")?;
                add_task(mp, "charge card")?;
                add_task(mp, "ship")?;
                s.query::<Task>().count()
            })
        };
        assert_eq!(place_order(&mp).unwrap(), 3);
        assert_eq!(subjects(&mp), ["charge card", "reserve stock", "ship"]);
        // the same functions work outside any transaction, each committing
        add_task(&mp, "alone").unwrap();
        assert_eq!(count_tasks(&mp), 4);
    });
}

#[test]
fn a_nested_begin_inside_a_session_that_wrote_joins_it() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.session().unwrap();
        s.add(&mut Task::new("manual")).unwrap();
        add_task(&mp, "joined").unwrap();
        assert_eq!(s.query::<Task>().count().unwrap(), 2);
        s.rollback().unwrap();
        assert_eq!(count_tasks(&mp), 0);
    });
}

#[test]
fn a_panic_in_a_nested_begin_rolls_back_to_its_savepoint_and_the_outer_goes_on() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            s.add(&mut Task::new("outer"))?;
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = mp.begin(|inner| {
                    inner.add(&mut Task::new("inner, panicking")).unwrap();
                    panic!("boom inside a nested begin");
                    #[allow(unreachable_code)]
                    Ok(())
                });
            }));
            assert!(caught.is_err());
            s.add(&mut Task::new("outer, after"))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(subjects(&mp), ["outer", "outer, after"]);
    });
}

#[test]
fn a_domain_error_rolls_back_and_comes_back_unchanged() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let err = mp
            .transaction(|s| {
                s.add(&mut Task::new("reserved"))?;
                Err::<(), _>(ShopError::OutOfStock("widget".into()))
            })
            .unwrap_err();
        assert_eq!(err, ShopError::OutOfStock("widget".into()));
        assert_eq!(count_tasks(&mp), 0);
        // nested, the domain error rolls back only the inner block
        mp.transaction(|s| -> Result<(), ShopError> {
            s.add(&mut Task::new("kept"))?;
            let inner = mp.transaction(|inner| {
                inner.add(&mut Task::new("undone"))?;
                Err::<(), _>(ShopError::OutOfStock("gadget".into()))
            });
            assert_eq!(inner, Err(ShopError::OutOfStock("gadget".into())));
            Ok(())
        })
        .unwrap();
        assert_eq!(subjects(&mp), ["kept"]);
    });
}

#[test]
fn a_domain_error_carrying_a_serialization_failure_is_retried() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut runs = 0;
        let err = mp
            .transaction_with_retry(3, |s| -> Result<(), Retrying> {
                runs += 1;
                s.add(&mut Task::new("attempt"))?;
                s.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$",
                    &[],
                )?;
                Ok(())
            })
            .unwrap_err();
        let Retrying::Db(e) = err;
        assert!(e.is_retryable(), "{e}");
        assert_eq!(runs, 3);
        assert_eq!(count_tasks(&mp), 0);
    });
}

#[test]
fn an_independent_transaction_commits_even_when_the_outer_rolls_back() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let outcome: odm::Result<()> = mp.begin(|s| {
            s.add(&mut Task::new("outer"))?;
            mp.begin_independent(|audit| {
                assert!(!audit.is_joined());
                // its own snapshot: the outer write is not visible
                assert_eq!(audit.query::<Task>().count()?, 0);
                audit.add(&mut Task::new("audit"))
            })?;
            Err(Error::Mapper(MapperError::TransactionEnded))
        });
        assert!(outcome.is_err());
        assert_eq!(subjects(&mp), ["audit"]);
    });
}

#[test]
fn an_independent_transaction_on_a_pool_the_task_fills_fails_at_once() {
    let db = test_database().expect("test database");
    let url = format!("{}?pool_size=1&pool_timeout=30", database_url(&db));
    let mp = Mapper::new(&url).unwrap();
    mp.register::<Employee>().unwrap();
    mp.register::<Task>().unwrap();
    green(move || {
        mp.table_create().unwrap();
        let started = Instant::now();
        let outcome: odm::Result<()> = mp.begin(|s| {
            s.add(&mut Task::new("outer"))?;
            let err = mp
                .begin_independent(|audit| audit.add(&mut Task::new("audit")))
                .unwrap_err();
            assert!(matches!(err, Error::PoolHeldByTask { size: 1 }), "{err:?}");
            assert_eq!(
                err.to_string(),
                "pool exhausted by this task: it already holds all 1 connections of the pool"
            );
            Ok(())
        });
        outcome.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(count_tasks(&mp), 1);
    });
}

#[test]
fn a_joined_session_that_outlives_its_transaction_is_refused() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut escaped = mp.begin(|_| mp.session()).unwrap();
        assert!(escaped.is_joined());
        let err = escaped.add(&mut Task::new("late")).unwrap_err();
        assert!(
            matches!(err, Error::Mapper(MapperError::TransactionEnded)),
            "{err:?}"
        );
        assert_eq!(count_tasks(&mp), 0);
    });
}

#[test]
fn a_panic_without_a_message_in_a_nested_begin_abandons_the_whole_transaction() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let outcome = mp.begin(|s| {
            s.add(&mut Task::new("outer"))?;
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = mp.begin(|inner| -> odm::Result<()> {
                    inner.add(&mut Task::new("inner"))?;
                    std::panic::panic_any(42_u32)
                });
            }));
            assert!(caught.is_err());
            let err = s.add(&mut Task::new("after")).unwrap_err();
            assert!(
                matches!(err, Error::Mapper(MapperError::TransactionEnded)),
                "{err:?}"
            );
            Ok(())
        });
        let err = outcome.unwrap_err();
        assert!(matches!(err, Error::RolledBack { cause: None }), "{err:?}");
        assert_eq!(count_tasks(&mp), 0);
    });
}
