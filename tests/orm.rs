//! pulsar-odm's own test suite, ported: every scenario on a fresh database,
//! every body on a green worker.

pub(crate) mod green_tasks;
pub(crate) mod orm_common;

use std::time::Duration;

use odm::{Error, Mapper, MapperError};
use orm_common::{
    green, mapper_with_models, test_database, Employee, PersonalTasks, Task, TaskType,
};

#[test]
fn the_mapper_has_binds() {
    let (_db, mp) = mapper_with_models();
    let binds = mp.binds();
    assert_eq!(binds.len(), 1);
    assert_eq!(binds[0].0, "default");
}

#[test]
fn database_all_answers_with_the_databases_of_every_bind() {
    let (db, mp) = mapper_with_models();
    let all = green(move || mp.database_all()).unwrap();
    let names = &all["default"];
    assert!(names.iter().any(|n| n == db.name()), "{names:?}");
    assert!(names.iter().any(|n| n == "postgres"), "{names:?}");
}

#[test]
fn tables_lists_the_tables_but_not_the_view() {
    let (_db, mp) = mapper_with_models();
    let tables = green(move || mp.tables()).unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].0, "default");
    assert_eq!(tables[0].1, ["employee", "engineer", "task"]);
}

#[test]
fn database_drop_with_no_name_fails() {
    let (_db, mp) = mapper_with_models();
    let err = green(move || mp.database_drop("")).unwrap_err();
    assert!(matches!(
        err,
        Error::Mapper(MapperError::MissingDatabaseName {
            operation: "database_drop"
        })
    ));
    assert_eq!(err.to_string(), "database_drop needs a database name");
}

#[test]
fn a_task_with_a_uuid_key_and_an_enum_type_reads_back() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let task = mp.begin(|s| {
            let mut task = Task {
                r#type: TaskType::Personal,
                ..Task::new("simple task")
            };
            s.add(&mut task)?;
            Ok(task)
        })?;
        assert!(!task.id.is_nil());
        assert_eq!(task.r#type, TaskType::Personal);
        assert!(task.created.is_some(), "server default read back");
        assert!(!task.done);
        let loaded = mp.begin(|s| s.get::<Task>(task.id))?.expect("the task");
        assert_eq!(loaded.r#type, TaskType::Personal);
        assert_eq!(loaded, task);
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn a_tasks_json_info_and_done_update_across_sessions() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut task = mp.begin(|s| {
            let mut task = Task::new("simple task to update");
            task.info = Some(serde_json::json!({"extra": "extra info"}));
            s.add(&mut task)?;
            Ok(task)
        })?;
        assert!(!task.done);
        assert_eq!(task.info.as_ref().unwrap()["extra"], "extra info");
        task.done = true;
        mp.begin(|s| s.add(&mut task))?;
        let task = mp.begin(|s| s.get::<Task>(task.id))?.expect("the task");
        assert!(task.done);
        assert_eq!(task.info.as_ref().unwrap()["extra"], "extra info");
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn an_employee_has_tasks_through_the_foreign_key_and_a_choice_column() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let user = mp.begin(|s| {
            let mut user = Employee {
                name: "pippo".into(),
                sex: Some("male".into()),
                ..Default::default()
            };
            s.add(&mut user)?;
            Ok(user)
        })?;
        let user_id = user.id.expect("generated key read back");
        mp.begin(|s| {
            let mut task = Task {
                employee_id: Some(user_id),
                ..Task::new("simple task to update")
            };
            s.add(&mut task)
        })?;
        mp.begin(|s| {
            let user = s.get::<Employee>(user_id)?.expect("the employee");
            let tasks = s.related::<Task>(&user)?;
            assert_eq!(tasks.len(), 1);
            assert_eq!(tasks[0].subject, "simple task to update");
            assert_eq!(user.sex.as_deref(), Some("male"));
            Ok(())
        })
    })
    .unwrap();
}

#[test]
fn a_view_from_create_sql_sees_the_personal_tasks() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        mp.begin(|s| {
            for (subject, kind) in [
                ("simple task 1", TaskType::Personal),
                ("simple task 2", TaskType::Personal),
                ("simple task 3", TaskType::Work),
            ] {
                s.add(&mut Task {
                    r#type: kind,
                    ..Task::new(subject)
                })?;
            }
            Ok(())
        })?;
        let personal = mp.begin(|s| {
            s.query::<PersonalTasks>()
                .order_by(PersonalTasks::SUBJECT.asc())
                .all()
        })?;
        let subjects: Vec<&str> = personal.iter().map(|t| t.subject.as_str()).collect();
        assert_eq!(subjects, ["simple task 1", "simple task 2"]);
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn database_exist_answers_per_bind() {
    let (_db, mp) = mapper_with_models();
    let exist = green(move || mp.database_exist()).unwrap();
    assert_eq!(exist.len(), 1);
    assert!(exist["default"]);
}

#[test]
fn a_missing_database_does_not_exist() {
    let db = test_database().unwrap();
    let url = db.url().replace(db.name(), "odm_no_such_database");
    let mp = Mapper::new(&url).unwrap();
    let exist = green(move || mp.database_exist()).unwrap();
    assert!(!exist["default"]);
}

#[test]
fn pool_settings_come_from_the_url() {
    let db = test_database().unwrap();
    let mp = Mapper::new(&format!("{}?pool_size=7&pool_timeout=15", db.url())).unwrap();
    let engine = mp.engine(None).unwrap();
    assert_eq!(engine.pool().max_size(), 7);
    assert_eq!(engine.pool().timeout(), Duration::from_secs(15));
}

#[test]
fn the_dialect_of_task_is_postgresql() {
    let (_db, mp) = mapper_with_models();
    assert_eq!(mp.dialect("task"), Some("postgresql"));
    assert_eq!(mp.dialect("nothing"), None);
}

#[test]
fn an_err_inside_begin_leaves_nothing_behind() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let result: Result<(), Error> = mp.begin(|s| {
            s.add(&mut Task::new("doomed"))?;
            Err(Error::RowCount(0))
        });
        assert!(matches!(result.unwrap_err(), Error::RowCount(0)));
        let count = mp.begin(|s| s.query::<Task>().count())?;
        assert_eq!(count, 0);
        Ok::<_, Error>(())
    })
    .unwrap();
}

fn example(mp: &Mapper) -> Result<Task, Error> {
    mp.table_create()?;
    mp.begin(|s| {
        let mut task = Task::new("my task");
        s.add(&mut task)?;
        Ok(task)
    })
}

#[test]
fn the_example_called_from_main_is_refused() {
    let (_db, mp) = mapper_with_models();
    let err = example(&mp).unwrap_err();
    assert!(err.is_wrong_context());
    assert!(
        err.to_string().starts_with("acquire in main greenlet"),
        "{err}"
    );
    let err = mp.begin(|_| Ok(())).unwrap_err();
    assert!(err.to_string().starts_with("acquire in main greenlet"));
    // the same example on the pool works
    let task = green(move || example(&mp)).unwrap();
    assert_eq!(task.subject, "my task");
}
