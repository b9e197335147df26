//! Sessions and queries against a real server: transactions, savepoints,
//! retry, the query builder, inheritance, choices, hostile input.

mod green_tasks;
mod orm_common;

use green_tasks::green as pool;
use odm::{Error, Mapper, MapperError, Model};
use orm_common::{green, mapper_with_models, Employee, Engineer, Task, TaskType};

fn count_tasks(mp: &Mapper) -> u64 {
    mp.begin(|s| s.query::<Task>().count()).unwrap()
}

#[test]
fn a_session_dropped_without_commit_rolls_back() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        {
            let mut s = mp.session().unwrap();
            s.add(&mut Task::new("forgotten")).unwrap();
        }
        assert_eq!(count_tasks(&mp), 0);
        let mut s = mp.session().unwrap();
        s.add(&mut Task::new("kept")).unwrap();
        s.commit().unwrap();
        assert_eq!(count_tasks(&mp), 1);
        let mut s = mp.session().unwrap();
        s.add(&mut Task::new("rolled back")).unwrap();
        s.rollback().unwrap();
        assert_eq!(count_tasks(&mp), 1);
    });
}

#[test]
fn a_panic_inside_begin_rolls_back_and_the_panic_continues() {
    let (_db, mp) = mapper_with_models();
    let inner = mp.clone();
    let joined = pool()
        .submit(move || {
            let _: Result<(), Error> = inner.begin(|s| {
                s.add(&mut Task::new("panicking")).unwrap();
                panic!("boom inside begin");
            });
        })
        .unwrap()
        .join();
    let err = joined.unwrap_err();
    assert!(err.to_string().contains("boom inside begin"), "{err}");
    assert_eq!(green(move || count_tasks(&mp)), 0);
}

#[test]
fn nested_savepoints_undo_only_the_failed_scope() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            s.add(&mut Task::new("outer"))?;
            let failed: Result<(), Error> = s.nested(|s| {
                s.add(&mut Task::new("inner, undone"))?;
                s.nested(|s| s.add(&mut Task::new("innermost, undone too")))?;
                Err(Error::RowCount(0))
            });
            assert!(matches!(failed.unwrap_err(), Error::RowCount(0)));
            s.nested(|s| s.add(&mut Task::new("inner, kept")))?;
            Ok(())
        })
        .unwrap();
        let subjects: Vec<String> = mp
            .begin(|s| s.query::<Task>().order_by(Task::SUBJECT.asc()).all())
            .unwrap()
            .into_iter()
            .map(|t| t.subject)
            .collect();
        assert_eq!(subjects, ["inner, kept", "outer"]);
    });
}

#[test]
fn a_statement_error_inside_a_savepoint_keeps_the_transaction_usable() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            let mut task = Task::new("first");
            s.add(&mut task)?;
            let err = s
                .nested(|s| s.execute("INSERT INTO task (id) VALUES (NULL)", &[]))
                .unwrap_err();
            assert_eq!(err.code(), Some("23502"), "{err}");
            s.add(&mut Task::new("second"))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(count_tasks(&mp), 2);
    });
}

#[test]
fn begin_with_retry_runs_again_after_a_serialization_failure() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut runs = 0;
        let value = mp
            .begin_with_retry(3, |s| {
                runs += 1;
                if runs < 3 {
                    // a genuine 40001 raised by the server
                    s.execute(
                        "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$",
                        &[],
                    )?;
                }
                s.add(&mut Task::new("after retries"))?;
                Ok(runs)
            })
            .unwrap();
        assert_eq!(value, 3);
        assert_eq!(count_tasks(&mp), 1);
        let mut runs = 0;
        let err = mp
            .begin_with_retry(2, |s| {
                runs += 1;
                s.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = 'deadlock_detected'; END $$",
                    &[],
                )
            })
            .unwrap_err();
        assert_eq!(runs, 2);
        assert_eq!(err.code(), Some("40P01"));
        let mut runs = 0;
        let err = mp
            .begin_with_retry(5, |s| {
                runs += 1;
                s.execute("SELECT 1/0", &[])
            })
            .unwrap_err();
        assert_eq!((runs, err.code()), (1, Some("22012")));
    });
}

#[test]
fn get_returns_none_for_a_missing_key_and_delete_removes_the_row() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            assert!(s.get::<Employee>(12345)?.is_none());
            let mut e = Employee {
                name: "ann".into(),
                ..Default::default()
            };
            s.add(&mut e)?;
            assert!(s.delete(&e)?);
            assert!(!s.delete(&e)?);
            assert!(s.get::<Employee>(e.id.unwrap())?.is_none());
            let err = s.delete(&Employee::default()).unwrap_err();
            assert_eq!(
                err.to_string(),
                "cannot delete a `Employee` whose primary key `id` is not set"
            );
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn the_query_builder_filters_orders_pages_counts_updates_and_deletes() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            for i in 0..10 {
                let mut t = Task::new(&format!("task {i}"));
                t.done = i % 2 == 0;
                t.r#type = if i < 3 {
                    TaskType::Social
                } else {
                    TaskType::Work
                };
                s.add(&mut t)?;
            }
            let q = || Task::DONE.eq(false);
            assert_eq!(s.query::<Task>().filter(q()).count()?, 5);
            let page: Vec<String> = s
                .query::<Task>()
                .filter(q())
                .order_by(Task::SUBJECT.desc())
                .limit(2)
                .offset(1)
                .all()?
                .into_iter()
                .map(|t| t.subject)
                .collect();
            assert_eq!(page, ["task 7", "task 5"]);
            let first = s
                .query::<Task>()
                .order_by(Task::SUBJECT.asc())
                .first()?
                .unwrap();
            assert_eq!(first.subject, "task 0");
            assert!(s
                .query::<Task>()
                .filter(Task::SUBJECT.eq("nope"))
                .first()?
                .is_none());
            let one = s.query::<Task>().filter(Task::SUBJECT.eq("task 4")).one()?;
            assert!(one.done);
            let err = s.query::<Task>().filter(q()).one().unwrap_err();
            assert_eq!(err.to_string(), "expected exactly one row, got 5");
            let err = s
                .query::<Task>()
                .filter(Task::SUBJECT.eq("nope"))
                .one()
                .unwrap_err();
            assert!(matches!(err, Error::RowCount(0)));
            assert_eq!(
                s.query::<Task>()
                    .filter(Task::SUBJECT.in_(["task 1", "task 2", "zzz"]))
                    .count()?,
                2
            );
            assert_eq!(
                s.query::<Task>()
                    .filter(Task::SUBJECT.in_(Vec::<String>::new()))
                    .count()?,
                0
            );
            assert_eq!(
                s.query::<Task>()
                    .filter(Task::SUBJECT.like("task 1%"))
                    .count()?,
                1
            );
            assert_eq!(
                s.query::<Task>()
                    .filter(
                        Task::TYPE
                            .eq(TaskType::Social)
                            .or(Task::SUBJECT.eq("task 9"))
                    )
                    .count()?,
                4
            );
            assert_eq!(
                s.query::<Task>()
                    .filter(Task::DONE.eq(true).not())
                    .count()?,
                5
            );
            assert_eq!(s.query::<Task>().filter(Task::INFO.is_null()).count()?, 10);
            assert_eq!(
                s.query::<Task>()
                    .filter(Task::CREATED.is_not_null())
                    .count()?,
                10
            );
            assert!(s
                .query::<Task>()
                .filter(Task::SUBJECT.ge("task 9"))
                .exists()?);
            assert!(!s
                .query::<Task>()
                .filter(Task::SUBJECT.gt("task 9"))
                .exists()?);
            assert_eq!(
                s.query::<Task>()
                    .filter(Task::SUBJECT.lt("task 2"))
                    .count()?,
                2
            );
            assert_eq!(
                s.query::<Task>()
                    .filter(Task::SUBJECT.le("task 2"))
                    .count()?,
                3
            );
            assert_eq!(
                s.query::<Task>()
                    .filter(Task::SUBJECT.ne("task 2"))
                    .count()?,
                9
            );
            let updated = s.query::<Task>().filter(q()).update([
                Task::DONE.set(true),
                Task::INFO.set(serde_json::json!({"bulk": 1})),
            ])?;
            assert_eq!(updated, 5);
            assert_eq!(s.query::<Task>().filter(q()).count()?, 0);
            let deleted = s
                .query::<Task>()
                .filter(Task::TYPE.eq(TaskType::Social))
                .delete()?;
            assert_eq!(deleted, 3);
            assert_eq!(s.query::<Task>().count()?, 7);
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn hostile_strings_are_stored_verbatim() {
    let (_db, mp) = mapper_with_models();
    let hostile = [
        "Robert'); DROP TABLE task;--",
        "\"quoted\" and 'single' and `back`",
        "semi;colon; /* comment */ -- line comment",
        "back\\slash \\' \\\" \\\\",
        "$1 $$ dollar $tag$ quoting",
        "unicode ✓ \u{1F600} and tab\t and newline\n",
    ];
    green(move || {
        mp.begin(|s| {
            for h in hostile {
                s.add(&mut Task::new(h))?;
            }
            Ok(())
        })
        .unwrap();
        mp.begin(|s| {
            for h in hostile {
                let t = s.query::<Task>().filter(Task::SUBJECT.eq(h)).one()?;
                assert_eq!(t.subject, h);
            }
            assert_eq!(s.query::<Task>().count()?, hostile.len() as u64);
            Ok(())
        })
        .unwrap();
    });
}

/// A table and columns whose names need quoting.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
#[odm(table = "Odd Table; \"quoted\"")]
struct Odd {
    #[odm(primary_key)]
    id: Option<i64>,
    #[odm(column = "select", unique)]
    selected: String,
    #[odm(column = "Mixed Case \"col\"", index)]
    mixed: Option<i32>,
}

#[test]
fn a_model_whose_table_and_columns_need_quoting_works() {
    let db = odm::testing::test_database().unwrap();
    let mp = Mapper::new(&db.url()).unwrap();
    mp.register::<Odd>().unwrap();
    green(move || {
        mp.table_create().unwrap();
        mp.table_create().unwrap();
        let mut odd = Odd {
            selected: "a".into(),
            mixed: Some(3),
            ..Default::default()
        };
        mp.begin(|s| s.add(&mut odd)).unwrap();
        assert!(odd.id.is_some());
        odd.mixed = None;
        mp.begin(|s| s.add(&mut odd)).unwrap();
        let back = mp
            .begin(|s| s.query::<Odd>().filter(Odd::SELECTED.eq("a")).one())
            .unwrap();
        assert_eq!(back, odd);
        let err = mp
            .begin(|s| {
                s.add(&mut Odd {
                    selected: "a".into(),
                    ..Default::default()
                })
            })
            .unwrap_err();
        assert_eq!(err.code(), Some("23505"), "{err}");
        let tables = mp.tables().unwrap();
        assert_eq!(tables[0].1, ["Odd Table; \"quoted\""]);
        mp.table_drop().unwrap();
        mp.table_drop().unwrap();
        assert!(mp.tables().unwrap()[0].1.is_empty());
    });
}

#[test]
fn a_stored_value_matching_no_variant_is_an_error_naming_column_and_value() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            let mut t = Task::new("odd type");
            s.add(&mut t)?;
            s.execute("UPDATE task SET type = 42 WHERE id = $1", &[&t.id])?;
            let err = s.get::<Task>(t.id).unwrap_err();
            assert!(matches!(err, Error::InvalidChoice { .. }));
            assert_eq!(
                err.to_string(),
                "column `type` holds 42, which is not a valid TaskType"
            );
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn a_code_outside_the_choices_is_refused_before_and_by_the_server() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let err = mp
            .begin(|s| {
                s.add(&mut Employee {
                    name: "x".into(),
                    sex: Some("robot".into()),
                    ..Default::default()
                })
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "column `sex` holds \"robot\", which is not a valid choice"
        );
        let err = mp
            .begin(|s| {
                s.execute(
                    "INSERT INTO employee (name, sex) VALUES ('x', 'robot')",
                    &[],
                )
            })
            .unwrap_err();
        assert_eq!(err.code(), Some("23514"), "{err}");
    });
}

#[test]
fn an_engineer_is_an_employee_in_two_joined_tables() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let eng = mp
            .begin(|s| {
                let mut eng = Engineer {
                    employee: Employee {
                        name: "grace".into(),
                        sex: Some("female".into()),
                        ..Default::default()
                    },
                    engineer_name: Some("cobol".into()),
                };
                s.add(&mut eng)?;
                Ok(eng)
            })
            .unwrap();
        let id = eng.employee.id.expect("key generated by the parent row");
        mp.begin(|s| {
            let back = s.get::<Engineer>(id)?.expect("the engineer");
            assert_eq!(back, eng);
            // the parent row is an employee too
            let as_employee = s.get::<Employee>(id)?.expect("the employee row");
            assert_eq!(as_employee.name, "grace");
            // filters on both tables
            let found = s
                .query::<Engineer>()
                .filter(Employee::NAME.eq("grace") & Engineer::ENGINEER_NAME.eq("cobol"))
                .all()?;
            assert_eq!(found, std::slice::from_ref(&eng));
            // update through add touches both rows
            let mut changed = eng.clone();
            changed.employee.name = "grace hopper".into();
            changed.engineer_name = None;
            s.add(&mut changed)?;
            let back = s.get::<Engineer>(id)?.unwrap();
            assert_eq!(back.employee.name, "grace hopper");
            assert_eq!(back.engineer_name, None);
            // a plain employee is not an engineer
            let mut plain = Employee {
                name: "plain".into(),
                ..Default::default()
            };
            s.add(&mut plain)?;
            assert!(s.get::<Engineer>(plain.id.unwrap())?.is_none());
            assert_eq!(s.query::<Engineer>().count()?, 1);
            assert_eq!(s.query::<Employee>().count()?, 2);
            // tasks of an engineer through the parent's key
            s.add(&mut Task {
                employee_id: Some(id),
                ..Task::new("engineer's task")
            })?;
            assert_eq!(s.related::<Task>(&back)?.len(), 1);
            // bulk update across both tables
            let n = s
                .query::<Engineer>()
                .filter(Employee::NAME.like("grace%"))
                .update([Employee::NAME.set("g"), Engineer::ENGINEER_NAME.set("rust")])?;
            assert_eq!(n, 1);
            let back = s.get::<Engineer>(id)?.unwrap();
            assert_eq!(
                (back.employee.name.as_str(), back.engineer_name.as_deref()),
                ("g", Some("rust"))
            );
            s.execute("DELETE FROM task", &[])?;
            assert!(s.delete(&back)?);
            assert!(s.get::<Employee>(id)?.is_none());
            assert_eq!(s.query::<Employee>().count()?, 1);
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn bulk_delete_of_a_child_removes_the_parent_rows_too() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            for name in ["a", "b", "c"] {
                s.add(&mut Engineer {
                    employee: Employee {
                        name: name.into(),
                        ..Default::default()
                    },
                    engineer_name: None,
                })?;
            }
            let n = s
                .query::<Engineer>()
                .filter(Employee::NAME.in_(["a", "b"]))
                .delete()?;
            assert_eq!(n, 2);
            assert_eq!(s.query::<Employee>().count()?, 1);
            assert_eq!(s.query::<Engineer>().count()?, 1);
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn related_without_a_foreign_key_is_an_error() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            let task = Task::new("t");
            let err = s.related::<Employee>(&task).unwrap_err();
            assert_eq!(
                err.to_string(),
                "model `Employee` has no foreign key to `task`"
            );
            let err = s.related::<Task>(&Employee::default()).unwrap_err();
            assert_eq!(err.to_string(), "`employee.id` of the owner is not set");
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn raw_sql_runs_in_the_session_transaction() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            let mut t = Task::new("raw");
            s.add(&mut t)?;
            let n = s.execute("UPDATE task SET done = $1 WHERE id = $2", &[&true, &t.id])?;
            assert_eq!(n, 1);
            let rows = s.query_raw("SELECT subject, done FROM task WHERE id = $1", &[&t.id])?;
            assert_eq!(rows[0].get::<_, String>(0), "raw");
            assert!(rows[0].get::<_, bool>(1));
            let task = Task::from_row(&s.query_raw("SELECT * FROM task", &[])?[0])?;
            assert!(task.done);
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn sessions_refuse_to_start_off_the_green_pool() {
    let (_db, mp) = mapper_with_models();
    let err = mp.session().unwrap_err();
    assert!(matches!(
        err,
        Error::WrongContext {
            operation: "session"
        }
    ));
    assert_eq!(
        err.to_string(),
        "acquire in main greenlet: session must run on a green worker (submit it to a green::GreenPool)"
    );
    for err in [
        mp.table_create().unwrap_err(),
        mp.table_drop().unwrap_err(),
        mp.tables().unwrap_err(),
        mp.database_all().unwrap_err(),
        mp.database_exist().unwrap_err(),
        mp.database_create("x").unwrap_err(),
        mp.database_drop("x").unwrap_err(),
        mp.begin(|_| Ok(())).unwrap_err(),
        mp.begin_with_retry(3, |_| Ok(())).unwrap_err(),
    ] {
        assert!(
            err.to_string().starts_with("acquire in main greenlet"),
            "{err}"
        );
    }
}

#[test]
fn objects_stay_usable_after_their_session_ends() {
    let (_db, mp) = mapper_with_models();
    let task = green(move || {
        mp.begin(|s| {
            let mut t = Task::new("kept around");
            s.add(&mut t)?;
            Ok(t)
        })
        .unwrap()
    });
    assert_eq!(task.subject, "kept around");
    assert!(task.created.is_some());
}

/// A mood stored by variant name.
#[derive(odm::Choice, Debug, Clone, Copy, PartialEq, Eq)]
#[odm(text)]
enum Mood {
    Happy,
    Grumpy,
}

/// A model with two foreign keys to `employee` and a text choice.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Review {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "employee.id")]
    author: Option<i32>,
    #[odm(foreign_key = "employee.id")]
    reviewer: Option<i32>,
    mood: Option<Mood>,
}

/// A model whose foreign key names a column `employee` does not have.
#[derive(odm::Model, Debug, Clone, Default)]
struct Dangling {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "employee.nope")]
    employee: Option<i32>,
}

/// The `task` table read through a model that does not accept NULL info.
#[derive(odm::Model, Debug, Clone)]
#[odm(table = "task")]
struct StrictTask {
    #[odm(primary_key)]
    id: uuid::Uuid,
    info: serde_json::Value,
}

/// A model on a bind the test mappers do not have.
#[derive(odm::Model, Debug, Clone, Default)]
#[odm(bind = "archive")]
struct Elsewhere {
    #[odm(primary_key)]
    id: Option<i32>,
}

#[test]
fn a_text_choice_round_trips_and_an_unknown_name_is_an_error() {
    let (_db, mp) = mapper_with_models();
    mp.register::<Review>().unwrap();
    green(move || {
        mp.table_create().unwrap();
        mp.begin(|s| {
            let mut r = Review {
                mood: Some(Mood::Grumpy),
                ..Default::default()
            };
            s.add(&mut r)?;
            let back = s.get::<Review>(r.id.unwrap())?.unwrap();
            assert_eq!(back.mood, Some(Mood::Grumpy));
            let n = s
                .query::<Review>()
                .filter(Review::MOOD.eq(Mood::Grumpy))
                .count()?;
            assert_eq!(n, 1);
            assert_eq!(
                s.query_raw("SELECT mood FROM review", &[])?[0].get::<_, String>(0),
                "Grumpy"
            );
            s.execute("UPDATE review SET mood = 'Sleepy'", &[])?;
            let err = s.get::<Review>(r.id.unwrap()).unwrap_err();
            assert!(matches!(err, Error::InvalidChoice { .. }));
            assert_eq!(
                err.to_string(),
                "column `mood` holds \"Sleepy\", which is not a valid Mood"
            );
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn related_through_an_ambiguous_or_dangling_foreign_key_is_an_error() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            let owner = Employee {
                id: Some(1),
                ..Default::default()
            };
            let err = s.related::<Review>(&owner).unwrap_err();
            assert_eq!(
                err.to_string(),
                "model `Review` has several foreign keys to `employee`; filter with a query instead"
            );
            let err = s.related::<Dangling>(&owner).unwrap_err();
            assert_eq!(
                err.to_string(),
                "foreign key `dangling.employee` references `employee.nope`, which does not exist"
            );
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn a_null_in_a_non_option_field_is_an_error_naming_the_column() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            let t = Task::new("no info");
            s.add(&mut t.clone())?;
            let err = s.get::<StrictTask>(t.id).unwrap_err();
            assert!(matches!(err, Error::FromSql { .. }), "{err}");
            assert!(
                err.to_string()
                    .starts_with("cannot decode column `info`: the value is NULL; use Option<"),
                "{err}"
            );
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn a_model_on_a_bind_the_mapper_lacks_is_an_error_naming_it() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let err = mp.begin(|s| s.query::<Elsewhere>().all()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "model `Elsewhere` is bound to `archive`, which is not a bind of this mapper"
        );
        let err = mp.begin(|s| s.add(&mut Elsewhere::default())).unwrap_err();
        assert!(matches!(
            err,
            Error::Mapper(MapperError::UnboundModel {
                model: "Elsewhere",
                label: "archive"
            })
        ));
        let err = mp
            .begin(|s| s.query_raw_on("archive", "SELECT 1", &[]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bind `archive` is not a bind of this mapper"
        );
    });
}

#[test]
fn a_session_that_only_reads_never_opens_a_transaction() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.session().unwrap();
        assert!(s.get::<Employee>(1).unwrap().is_none());
        assert_eq!(s.query::<Task>().count().unwrap(), 0);
        assert!(!s.in_transaction());
        s.add(&mut Task::new("write")).unwrap();
        assert!(s.in_transaction());
        // reads after the first write see the uncommitted row
        assert_eq!(s.query::<Task>().count().unwrap(), 1);
        let status = s
            .query_raw("SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND state = 'active' AND backend_xid IS NOT NULL", &[])
            .unwrap();
        assert_eq!(
            status[0].get::<_, i64>(0),
            1,
            "the write holds a transaction id"
        );
        s.rollback().unwrap();
        assert_eq!(count_tasks(&mp), 0);
        let s = mp.session().unwrap();
        s.commit().unwrap();
    });
}

#[test]
fn set_isolation_starts_the_transaction_with_that_level() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            s.set_isolation(odm::Isolation::RepeatableRead)?;
            assert!(s.in_transaction());
            let level = s.query_raw("SHOW transaction_isolation", &[])?;
            assert_eq!(level[0].get::<_, String>(0), "repeatable read");
            Ok(())
        })
        .unwrap();
        let err = mp
            .begin(|s| {
                s.add(&mut Task::new("first"))?;
                s.set_isolation(odm::Isolation::Serializable)
            })
            .unwrap_err();
        assert_eq!(err.code(), Some("25001"), "{err}");
        assert_eq!(count_tasks(&mp), 0);
    });
}

#[test]
fn loading_a_relation_row_by_row_is_flagged_as_n_plus_one() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            let mut owners = Vec::new();
            for i in 0..12 {
                let mut e = Employee {
                    name: format!("e{i}"),
                    ..Default::default()
                };
                s.add(&mut e)?;
                s.add(&mut Task {
                    employee_id: e.id,
                    ..Task::new(&format!("t{i}"))
                })?;
                owners.push(e);
            }
            // the default policy warns and loads
            for e in &owners {
                assert_eq!(s.related::<Task>(e)?.len(), 1);
            }
            Ok(owners)
        })
        .and_then(|owners| {
            let mut s = mp.session()?;
            s.set_load_policy(odm::LoadPolicy::Raise);
            for e in &owners[..odm::session::N_PLUS_ONE_THRESHOLD] {
                s.related::<Task>(e)?;
            }
            let err = s.related::<Task>(&owners[10]).unwrap_err();
            assert!(matches!(
                err,
                Error::Mapper(MapperError::NPlusOne { calls: 11, .. })
            ));
            assert_eq!(
                err.to_string(),
                "n+1 loading: related::<Task> through `task.employee_id` ran 11 times in one session; \
                 load them for all owners at once with query::<Owner>().with_related::<Task>()"
            );
            s.set_load_policy(odm::LoadPolicy::Allow);
            assert_eq!(s.related::<Task>(&owners[11])?.len(), 1);
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn a_session_that_only_read_holds_no_connection_so_another_session_can_write() {
    let db = odm::testing::test_database().unwrap();
    let url = format!("{}?pool_size=1&pool_timeout=2", db.url());
    let mp = Mapper::new(&url).unwrap();
    mp.register::<Employee>().unwrap();
    mp.register::<Engineer>().unwrap();
    mp.register::<Task>().unwrap();
    green(move || {
        mp.table_create().unwrap();
        let mut reader = mp.session().unwrap();
        assert_eq!(reader.query::<Task>().count().unwrap(), 0);
        // the only connection went back to the pool after the read
        assert_eq!(mp.engine(None).unwrap().pool().available(), 1);
        // so a second session in the same task can write (no nested acquire,
        // no pool timeout) while the first is still open
        let mut writer = mp.session().unwrap();
        writer.add(&mut Task::new("written")).unwrap();
        writer.commit().unwrap();
        assert_eq!(reader.query::<Task>().count().unwrap(), 1);
        reader.commit().unwrap();
    });
}

/// A statement that fails with 23502 (a null primary key). The bug the
/// tests below guard against: `work` ignores its error and returns `Ok`, the
/// server answers `COMMIT` with `ROLLBACK`, and the rows written before it
/// are silently gone.
const NULL_INTO_NOT_NULL: &str = "INSERT INTO task (id) VALUES (NULL)";

#[test]
fn a_commit_answered_with_rollback_is_an_error() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let err = mp
            .begin(|s| {
                s.add(&mut Task::new("acknowledged"))?;
                let _ = s.execute(NULL_INTO_NOT_NULL, &[]);
                Ok(())
            })
            .unwrap_err();
        assert!(err.is_rolled_back(), "{err}");
        assert_eq!(err.code(), Some("23502"), "{err}");
        assert_eq!(err.as_db_error().unwrap().column.as_deref(), Some("id"));
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .starts_with("the transaction was rolled back, not committed: error 23502: "),
            "{err}"
        );
        assert_eq!(count_tasks(&mp), 0);
    });
}

#[test]
fn session_commit_after_an_ignored_failure_is_rolled_back() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut s = mp.session().unwrap();
        s.add(&mut Task::new("acknowledged")).unwrap();
        let failed = s.execute(NULL_INTO_NOT_NULL, &[]).unwrap_err();
        assert_eq!(failed.code(), Some("23502"));
        let err = s.commit().unwrap_err();
        assert!(err.is_rolled_back(), "{err}");
        assert_eq!(err.code(), Some("23502"), "{err}");
        assert_eq!(count_tasks(&mp), 0);
        // the connection went back clean: the next session commits
        let mut s = mp.session().unwrap();
        s.add(&mut Task::new("later")).unwrap();
        s.commit().unwrap();
        assert_eq!(count_tasks(&mp), 1);
    });
}

#[test]
fn the_statement_after_an_ignored_failure_is_refused_naming_the_first_error() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let err = mp
            .begin(|s| {
                s.add(&mut Task::new("acknowledged"))?;
                let _ = s.execute(NULL_INTO_NOT_NULL, &[]);
                let refused = s.add(&mut Task::new("never sent")).unwrap_err();
                assert!(refused.is_transaction_aborted(), "{refused}");
                assert_eq!(refused.code(), Some("25P02"));
                let message = refused.to_string();
                assert!(
                    message.starts_with(
                        "the transaction is aborted, statement not sent: aborted by error 23502: "
                    ),
                    "{message}"
                );
                assert!(message.contains("\"id\""), "{message}");
                let Error::TransactionAborted { cause: Some(cause) } = &refused else {
                    panic!("no cause in {refused:?}");
                };
                assert_eq!(cause.code, "23502");
                // reads on the session's connection and raw SQL are refused too
                assert!(s
                    .query::<Task>()
                    .count()
                    .unwrap_err()
                    .is_transaction_aborted());
                assert!(s
                    .query_raw("SELECT 1", &[])
                    .unwrap_err()
                    .is_transaction_aborted());
                Ok(())
            })
            .unwrap_err();
        // the commit names the first error, not the refusals
        assert!(err.is_rolled_back(), "{err}");
        assert_eq!(err.code(), Some("23502"), "{err}");
        assert_eq!(count_tasks(&mp), 0);
    });
}

#[test]
fn a_failed_statement_in_a_nested_savepoint_rolled_back_keeps_the_outer_transaction_committable() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            s.add(&mut Task::new("outer"))?;
            let err = s
                .nested(|s| {
                    s.add(&mut Task::new("inner, undone"))?;
                    s.execute(NULL_INTO_NOT_NULL, &[])
                })
                .unwrap_err();
            assert_eq!(err.code(), Some("23502"), "{err}");
            Ok(())
        })
        .unwrap();
        let subjects: Vec<String> = mp
            .begin(|s| s.query::<Task>().all())
            .unwrap()
            .into_iter()
            .map(|t| t.subject)
            .collect();
        assert_eq!(subjects, ["outer"]);
    });
}

#[test]
fn a_nested_block_that_ignores_a_failed_statement_is_rolled_back_to_its_savepoint() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            s.add(&mut Task::new("outer"))?;
            let err = s
                .nested(|s| {
                    s.add(&mut Task::new("inner, undone"))?;
                    let _ = s.execute(NULL_INTO_NOT_NULL, &[]);
                    Ok(())
                })
                .unwrap_err();
            assert!(err.is_rolled_back(), "{err}");
            assert_eq!(err.code(), Some("23502"), "{err}");
            // the outer transaction is healthy again
            s.add(&mut Task::new("after"))?;
            Ok(())
        })
        .unwrap();
        let subjects: Vec<String> = mp
            .begin(|s| s.query::<Task>().order_by(Task::SUBJECT.asc()).all())
            .unwrap()
            .into_iter()
            .map(|t| t.subject)
            .collect();
        assert_eq!(subjects, ["after", "outer"]);
    });
}

#[test]
fn a_deferred_foreign_key_violated_at_commit_is_rolled_back() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            s.batch_execute_on(
                "default",
                "CREATE TABLE parent (id int PRIMARY KEY);
                 CREATE TABLE child (parent_id int REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
            )
        })
        .unwrap();
        let err = mp
            .begin(|s| {
                s.add(&mut Task::new("acknowledged"))?;
                s.execute("INSERT INTO child VALUES (42)", &[])?;
                Ok(())
            })
            .unwrap_err();
        assert!(err.is_rolled_back(), "{err}");
        assert_eq!(err.code(), Some("23503"), "{err}");
        assert_eq!(
            err.as_db_error().unwrap().constraint.as_deref(),
            Some("child_parent_id_fkey")
        );
        assert!(!err.is_retryable());
        assert_eq!(count_tasks(&mp), 0);
    });
}

/// Two serializable transactions that each read what the other writes
/// (write skew): the second to commit must fail with 40001.
fn write_skew_table(mp: &Mapper) {
    mp.begin(|s| {
        s.batch_execute_on(
            "default",
            "CREATE TABLE skew (class int NOT NULL, value int NOT NULL);
             INSERT INTO skew VALUES (1, 10), (2, 20)",
        )
    })
    .unwrap();
}

/// Reads the sum of class `read` and inserts it as a row of class `write`,
/// in a serializable transaction.
fn copy_sum(s: &mut odm::Session, read: i32, write: i32) -> odm::Result<()> {
    s.set_isolation(odm::Isolation::Serializable)?;
    s.execute(
        "INSERT INTO skew SELECT $2, sum(value) FROM skew WHERE class = $1",
        &[&read, &write],
    )?;
    Ok(())
}

#[test]
fn a_serialization_failure_at_commit_is_rolled_back_and_retryable() {
    let (db, mp) = mapper_with_models();
    // a second pool, so one task can hold two connections
    let other = Mapper::new(&db.url()).unwrap();
    green(move || {
        write_skew_table(&mp);
        let mut first = mp.session().unwrap();
        copy_sum(&mut first, 1, 2).unwrap();
        other.begin(|s| copy_sum(s, 2, 1)).unwrap();
        let err = first.commit().unwrap_err();
        assert!(err.is_rolled_back(), "{err}");
        assert_eq!(err.code(), Some("40001"), "{err}");
        assert!(err.is_retryable());
        let rows = mp
            .begin(|s| s.query_raw("SELECT count(*) FROM skew", &[]))
            .unwrap();
        assert_eq!(rows[0].get::<_, i64>(0), 3);
    });
}

#[test]
fn begin_with_retry_runs_again_after_a_serialization_failure_at_commit() {
    let (db, mp) = mapper_with_models();
    let other = Mapper::new(&db.url()).unwrap();
    green(move || {
        write_skew_table(&mp);
        let mut runs = 0;
        mp.begin_with_retry(3, |s| {
            runs += 1;
            copy_sum(s, 1, 2)?;
            if runs == 1 {
                // commits first, so this run's commit fails with 40001
                other.begin(|s| copy_sum(s, 2, 1))?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, 2);
        let rows = mp
            .begin(|s| s.query_raw("SELECT class, value FROM skew ORDER BY class, value", &[]))
            .unwrap();
        let values: Vec<(i32, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        // the retry saw the other transaction's row of class 1 (20)
        assert_eq!(values, [(1, 10), (1, 20), (2, 20), (2, 30)]);
    });
}
