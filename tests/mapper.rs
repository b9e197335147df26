//! The Mapper: binds, registry, DDL order and idempotence, databases.

mod green_tasks;
mod orm_common;

use odm::testing::test_database;
use odm::{Error, Mapper, MapperError};
use orm_common::{green, Employee, Engineer, PersonalTasks, Task};

#[test]
fn a_mapper_without_a_default_bind_is_refused() {
    let err = Mapper::with_binds([("archive", "postgresql://odm@127.0.0.1/x")]).unwrap_err();
    assert!(matches!(
        err,
        Error::Mapper(MapperError::MissingDefaultBind)
    ));
    assert_eq!(err.to_string(), "default datastore not specified");
    let err = Mapper::with_binds(Vec::<(String, String)>::new()).unwrap_err();
    assert_eq!(err.to_string(), "default datastore not specified");
}

#[test]
fn a_bind_label_given_twice_is_refused() {
    let err = Mapper::with_binds([
        ("default", "postgresql://odm@127.0.0.1/a"),
        ("default", "postgresql://odm@127.0.0.1/b"),
    ])
    .unwrap_err();
    assert_eq!(err.to_string(), "bind `default` is given twice");
}

#[test]
fn a_malformed_url_is_a_config_error() {
    let err = Mapper::new("mysql://nope").unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[test]
fn creating_a_mapper_does_no_io() {
    // nothing listens on port 1; construction must still succeed
    let mp = Mapper::with_binds([
        (
            "default",
            "postgresql+green://odm:x@127.0.0.1:1/a?pool_size=3",
        ),
        ("archive", "postgresql+green://odm:x@127.0.0.1:1/b"),
    ])
    .unwrap();
    assert_eq!(mp.engine(None).unwrap().pool().max_size(), 3);
    assert_eq!(mp.engine(Some("archive")).unwrap().database(), "b");
    assert!(mp.engine(Some("nope")).is_none());
    assert_eq!(mp.engine(None).unwrap().pool().size(), 0);
}

/// A model routed to the `archive` bind.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
#[odm(bind = "archive")]
struct Archived {
    #[odm(primary_key)]
    id: Option<i32>,
    note: String,
}

#[test]
fn registering_a_model_on_a_missing_bind_is_an_error() {
    let mp = Mapper::new("postgresql://odm@127.0.0.1/a").unwrap();
    let err = mp.register::<Archived>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "model `Archived` is bound to `archive`, which is not a bind of this mapper"
    );
}

/// Another model claiming the `task` table.
#[derive(odm::Model, Debug, Clone)]
#[odm(table = "task")]
struct Impostor {
    #[odm(primary_key)]
    id: i32,
}

#[test]
fn two_models_cannot_share_a_table_and_registering_twice_is_harmless() {
    let mp = Mapper::new("postgresql://odm@127.0.0.1/a").unwrap();
    mp.register::<Task>().unwrap();
    mp.register::<Task>().unwrap();
    assert_eq!(mp.models().len(), 1);
    let err = mp.register::<Impostor>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "table `task` of model `Impostor` is already registered by model `Task`"
    );
}

#[test]
fn models_are_found_by_lower_case_name_and_children_register_their_parents() {
    let mp = Mapper::new("postgresql://odm@127.0.0.1/a").unwrap();
    mp.register::<Engineer>().unwrap();
    mp.register::<PersonalTasks>().unwrap();
    assert_eq!(mp.model("employee").unwrap().name, "employee");
    assert_eq!(mp.model("engineer").unwrap().model, "Engineer");
    assert_eq!(mp.model("personaltasks").unwrap().name, "personaltasks");
    assert!(mp.model("task").is_none());
    assert_eq!(mp.dialect("engineer"), Some("postgresql"));
}

#[test]
fn binds_route_each_model_to_its_engine() {
    let a = test_database().unwrap();
    let b = test_database().unwrap();
    let mp = Mapper::with_binds([("default", a.url()), ("archive", b.url())]).unwrap();
    mp.register::<Task>().unwrap();
    mp.register::<Employee>().unwrap();
    mp.register::<Archived>().unwrap();
    green(move || {
        mp.table_create().unwrap();
        let tables = mp.tables().unwrap();
        assert_eq!(
            tables,
            [
                (
                    "default".to_string(),
                    vec!["employee".to_string(), "task".to_string()]
                ),
                ("archive".to_string(), vec!["archived".to_string()]),
            ]
        );
        mp.begin(|s| {
            s.add(&mut Task::new("current"))?;
            let mut old = Archived {
                note: "old".into(),
                ..Default::default()
            };
            s.add(&mut old)?;
            assert_eq!(old.id, Some(1));
            Ok(())
        })
        .unwrap();
        let notes = mp.begin(|s| s.query::<Archived>().all()).unwrap();
        assert_eq!(notes.len(), 1);
        let exist = mp.database_exist().unwrap();
        assert_eq!(exist.len(), 2);
        assert!(exist["default"] && exist["archive"]);
        // the archive row is in database b only
        let b_mapper = Mapper::new(&mp.engine(Some("archive")).unwrap().config().to_url()).unwrap();
        let rows = b_mapper
            .begin(|s| s.query_raw("SELECT note FROM archived", &[]))
            .unwrap();
        assert_eq!(rows[0].get::<_, String>(0), "old");
        mp.table_drop().unwrap();
        let tables = mp.tables().unwrap();
        assert!(tables.iter().all(|(_, t)| t.is_empty()), "{tables:?}");
    });
}

#[test]
fn table_create_and_drop_are_idempotent_and_respect_foreign_keys() {
    let db = test_database().unwrap();
    let mp = Mapper::new(&db.url()).unwrap();
    // registered children first: the DDL must still create parents first
    mp.register::<PersonalTasks>().unwrap();
    mp.register::<Task>().unwrap();
    mp.register::<Engineer>().unwrap();
    green(move || {
        mp.table_create().unwrap();
        mp.table_create().unwrap();
        let tables = mp.tables().unwrap();
        assert_eq!(tables[0].1, ["employee", "engineer", "task"]);
        let views = mp
            .begin(|s| {
                s.query_raw(
                    "SELECT viewname::text FROM pg_views WHERE schemaname = current_schema()",
                    &[],
                )
            })
            .unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].get::<_, String>(0), "personaltasks");
        mp.table_drop().unwrap();
        mp.table_drop().unwrap();
        assert!(mp.tables().unwrap()[0].1.is_empty());
        let views = mp
            .begin(|s| {
                s.query_raw(
                    "SELECT 1 FROM pg_views WHERE schemaname = current_schema()",
                    &[],
                )
            })
            .unwrap();
        assert!(views.is_empty());
    });
}

#[test]
fn database_create_returns_a_mapper_on_the_new_database_and_drop_removes_it() {
    let db = test_database().unwrap();
    let mp = Mapper::new(&db.url()).unwrap();
    mp.register::<Task>().unwrap();
    let name = format!("{}_created", db.name());
    green(move || {
        let created = mp.database_create(&name).unwrap();
        assert!(created.models().is_empty());
        assert_eq!(created.engine(None).unwrap().database(), name);
        assert!(mp.database_all().unwrap()["default"].contains(&name));
        created.register::<Employee>().unwrap();
        created.register::<Task>().unwrap();
        created.table_create().unwrap();
        created
            .begin(|s| s.add(&mut Task::new("in the new db")))
            .unwrap();
        assert!(created.database_exist().unwrap()["default"]);
        let err = mp.database_create(&name).unwrap_err();
        assert_eq!(err.code(), Some("42P04"), "{err}");
        let url = created.engine(None).unwrap().config().to_url();
        created.close();
        mp.database_drop(&name).unwrap();
        assert!(!mp.database_all().unwrap()["default"].contains(&name));
        let gone = Mapper::new(&url).unwrap();
        assert!(!gone.database_exist().unwrap()["default"]);
        mp.database_drop(&name).unwrap();
        let err = mp.database_create("  ").unwrap_err();
        assert_eq!(err.to_string(), "database_create needs a database name");
    });
}

#[test]
fn a_closed_mapper_refuses_new_sessions_work() {
    let (_db, mp) = orm_common::mapper_with_models();
    green(move || {
        mp.close();
        let err = mp.begin(|s| s.query::<Task>().count()).unwrap_err();
        assert!(matches!(err, Error::PoolClosed), "{err}");
    });
}

#[test]
fn mappers_are_cheap_send_and_sync_handles() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Mapper>();
    let mp = Mapper::new("postgresql://odm@127.0.0.1/a").unwrap();
    let clone = mp.clone();
    clone.register::<Task>().unwrap();
    // clones share the registry
    assert_eq!(mp.models().len(), 1);
}
