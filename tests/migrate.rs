//! Versioned migrations: `Mapper::migrate`, its dry run, the table of
//! applied versions, the advisory lock, and what is refused. Tests that
//! need one mapper on a fresh database are written with `#[odm::test]`.

use std::sync::LazyLock;

use green::GreenPool;
use odm::migrate::{MigrationError, NO_TRANSACTION};
use odm::testing::{test_database, TestDatabase};
use odm::{Error, Mapper, Migration, Migrations};

static POOL: LazyLock<GreenPool> = LazyLock::new(GreenPool::new);

/// Runs `work` on a green worker and waits for it.
fn green<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    POOL.submit(work)
        .expect("submit")
        .join()
        .expect("green task")
}

const MIGRATIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/migrations");

/// The model of the table the migrations create; `note` is added by V2.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
#[odm(table = "orders")]
struct Order {
    #[odm(primary_key)]
    id: Option<i32>,
    customer: String,
    note: Option<String>,
}

fn migration(version: i64, sql: &str) -> Migration {
    Migration::new(version, format!("step_{version}"), sql)
}

fn create_table(version: i64) -> Migration {
    migration(version, &format!("CREATE TABLE t{version} (id int)"))
}

/// A fresh database and a mapper on it with `migrations` registered.
fn mapper_with(migrations: Vec<Migration>) -> (TestDatabase, Mapper) {
    let db = test_database().expect("test database");
    let mp = Mapper::new(&db.url()).unwrap();
    mp.register_migrations(Migrations::new(migrations).unwrap())
        .unwrap();
    (db, mp)
}

/// `(version, name, checksum)` rows of `odm_migrations`.
fn recorded(mp: &Mapper) -> Vec<(i64, String, i64)> {
    let mp = mp.clone();
    green(move || {
        let rows = mp.session()?.query_raw(
            "SELECT version, name, checksum FROM odm_migrations ORDER BY version",
            &[],
        )?;
        Ok::<_, Error>(
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        )
    })
    .unwrap()
}

/// [`recorded`] from a body already on a green worker (`#[odm::test]`).
fn recorded_on_green(mp: &Mapper) -> odm::Result<Vec<(i64, String, i64)>> {
    let rows = mp.session()?.query_raw(
        "SELECT version, name, checksum FROM odm_migrations ORDER BY version",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

fn relation_exists(mp: &Mapper, name: &'static str) -> bool {
    let mp = mp.clone();
    green(move || {
        let rows = mp
            .session()?
            .query_raw("SELECT to_regclass($1) IS NOT NULL", &[&name])?;
        Ok::<bool, Error>(rows[0].get(0))
    })
    .unwrap()
}

fn migrate(mp: &Mapper) -> odm::Result<Vec<i64>> {
    let mp = mp.clone();
    green(move || mp.migrate()).map(|report| report.applied.iter().map(|a| a.version).collect())
}

fn migration_error(err: &Error) -> &MigrationError {
    match err {
        Error::Migration(e) => e,
        other => panic!("expected a migration error, got {other:?}"),
    }
}

#[odm::test]
fn migrations_from_a_folder_are_applied_in_order_and_recorded_with_their_checksums(
    mp: Mapper,
) -> odm::Result<()> {
    let migrations = Migrations::from_dir(MIGRATIONS_DIR)?;
    let expected: Vec<(i64, String, i64)> = migrations
        .list()
        .iter()
        .map(|m| (m.version(), m.name().to_owned(), m.checksum() as i64))
        .collect();
    mp.register::<Order>()?;
    mp.register_migrations(migrations)?;

    let report = mp.migrate()?;
    let applied: Vec<(i64, &str)> = report
        .applied
        .iter()
        .map(|a| (a.version, a.name.as_str()))
        .collect();
    assert_eq!(applied, [(1, "create_orders"), (2, "add_order_note")]);
    assert!(report.applied.iter().all(|a| a.bind == "default"));
    assert_eq!(recorded_on_green(&mp)?, expected);

    // the column V2 added is the model's
    mp.begin(|s| {
        s.add(&mut Order {
            customer: "ada".into(),
            note: Some("ring twice".into()),
            ..Default::default()
        })
    })?;
    let stored = mp.session()?.query::<Order>().first()?.unwrap();
    assert_eq!(stored.note.as_deref(), Some("ring twice"));
    Ok(())
}

#[test]
fn embedded_migrations_are_the_folder_s_migrations_wherever_it_is_read() {
    let embedded = odm::embed_migrations!(
        "migrations",
        ["V2__add_order_note.sql", "V1__create_orders.sql"]
    )
    .unwrap();
    let read = Migrations::from_dir(MIGRATIONS_DIR).unwrap();
    assert_eq!(embedded.list(), read.list());
    // on a green worker the folder is read on a helper thread
    let read_on_green = green(|| Migrations::from_dir(MIGRATIONS_DIR)).unwrap();
    assert_eq!(embedded.list(), read_on_green.list());
    assert_eq!(embedded.list()[0].name(), "create_orders");
}

#[odm::test]
fn a_second_run_applies_nothing(mp: Mapper) -> odm::Result<()> {
    mp.register_migrations(Migrations::new(vec![create_table(1), create_table(2)])?)?;
    assert_eq!(mp.migrate()?.applied.len(), 2);
    assert!(mp.migrate()?.applied.is_empty());
    assert_eq!(recorded_on_green(&mp)?.len(), 2);
    Ok(())
}

#[test]
fn a_new_migration_is_applied_incrementally() {
    let (_db, mp) = mapper_with(vec![create_table(1)]);
    assert_eq!(migrate(&mp).unwrap(), [1]);
    let grown = Migrations::new(vec![create_table(1), create_table(2), create_table(3)]).unwrap();
    mp.register_migrations(grown).unwrap();
    assert_eq!(migrate(&mp).unwrap(), [2, 3]);
    assert!(relation_exists(&mp, "t3"));
}

#[test]
fn a_failing_migration_rolls_back_only_itself_and_names_its_version() {
    let failing = migration(2, "CREATE TABLE half_done (id int); SELECT 1 / 0");
    let (_db, mp) = mapper_with(vec![create_table(1), failing, create_table(3)]);
    let err = migrate(&mp).unwrap_err();
    assert!(
        matches!(
            migration_error(&err),
            MigrationError::Failed { version: 2, .. }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("22012"), "the SQLSTATE is kept");
    assert!(
        err.to_string()
            .starts_with("migration version 2 (`step_2`) failed: "),
        "{err}"
    );
    assert!(relation_exists(&mp, "t1"), "the earlier one stays applied");
    assert!(
        !relation_exists(&mp, "half_done"),
        "the failed one rolled back"
    );
    assert!(
        !relation_exists(&mp, "t3"),
        "the run stopped at the failure"
    );
    let versions: Vec<i64> = recorded(&mp).iter().map(|r| r.0).collect();
    assert_eq!(versions, [1]);
}

#[test]
fn an_edited_applied_migration_is_refused_before_anything_runs() {
    let (_db, mp) = mapper_with(vec![create_table(1)]);
    migrate(&mp).unwrap();
    let edited = migration(1, "CREATE TABLE t1 (id bigint)");
    let edited = Migrations::new(vec![edited, create_table(2)]).unwrap();
    mp.register_migrations(edited).unwrap();
    let err = migrate(&mp).unwrap_err();
    assert!(
        matches!(
            migration_error(&err),
            MigrationError::ChecksumMismatch { version: 1, .. }
        ),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("migration version 1 (`step_1`) was edited after it was applied"));
    assert!(!relation_exists(&mp, "t2"));
    let plan_err = green({
        let mp = mp.clone();
        move || mp.migrate_plan()
    })
    .unwrap_err();
    assert_eq!(
        plan_err.to_string(),
        err.to_string(),
        "the dry run refuses too"
    );
}

#[test]
fn an_applied_version_unknown_to_the_program_is_refused() {
    let (_db, mp) = mapper_with(vec![create_table(1), create_table(2)]);
    migrate(&mp).unwrap();
    mp.register_migrations(Migrations::new(vec![create_table(1)]).unwrap())
        .unwrap();
    let err = migrate(&mp).unwrap_err();
    assert_eq!(
        err.to_string(),
        "migration version 2 (`step_2`) is applied in the database but unknown to this program"
    );
}

#[test]
fn two_mappers_migrating_one_database_at_once_apply_each_migration_exactly_once() {
    // the first migration sleeps so the two runs overlap
    let slow = migration(1, "SELECT pg_sleep(0.5); CREATE TABLE t1 (id int)");
    let set = Migrations::new(vec![slow, create_table(2), create_table(3)]).unwrap();
    let db = test_database().unwrap();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            // separate mappers, separate pools: as two processes
            let mp = Mapper::new(&db.url()).unwrap();
            mp.register_migrations(set.clone()).unwrap();
            POOL.submit(move || mp.migrate()).unwrap()
        })
        .collect();
    let mut applied: Vec<i64> = Vec::new();
    for run in runs {
        let report = run.join().unwrap().expect("both runs succeed");
        applied.extend(report.applied.iter().map(|a| a.version));
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        [1, 2, 3],
        "each migration applied by exactly one run"
    );
    let mp = Mapper::new(&db.url()).unwrap();
    assert_eq!(recorded(&mp).len(), 3);
}

#[test]
fn the_dry_run_lists_pending_migrations_without_applying_them() {
    let (_db, mp) = mapper_with(vec![create_table(1), create_table(2)]);
    let plan = green({
        let mp = mp.clone();
        move || mp.migrate_plan()
    })
    .unwrap();
    let listed: Vec<(i64, &str)> = plan.iter().map(|p| (p.version, p.name.as_str())).collect();
    assert_eq!(listed, [(1, "step_1"), (2, "step_2")]);
    assert!(!relation_exists(&mp, "odm_migrations"), "nothing created");
    assert!(!relation_exists(&mp, "t1"));

    mp.register_migrations(Migrations::new(vec![create_table(1)]).unwrap())
        .unwrap();
    migrate(&mp).unwrap();
    mp.register_migrations(Migrations::new(vec![create_table(1), create_table(2)]).unwrap())
        .unwrap();
    let plan = green({
        let mp = mp.clone();
        move || mp.migrate_plan()
    })
    .unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!((plan[0].version, plan[0].transactional), (2, true));
    assert!(!relation_exists(&mp, "t2"));
}

#[odm::test]
fn a_migration_marked_no_transaction_can_create_an_index_concurrently(
    mp: Mapper,
) -> odm::Result<()> {
    let concurrently = migration(
        2,
        &format!("{NO_TRANSACTION}\nCREATE INDEX CONCURRENTLY t1_id ON t1 (id)"),
    );
    mp.register_migrations(Migrations::new(vec![create_table(1), concurrently])?)?;
    assert_eq!(mp.migrate()?.applied.len(), 2);
    let index: bool = mp
        .session()?
        .query_raw("SELECT to_regclass('t1_id') IS NOT NULL", &[])?[0]
        .get(0);
    assert!(index);
    assert_eq!(recorded_on_green(&mp)?.len(), 2);
    Ok(())
}

#[test]
fn migrations_can_target_another_bind() {
    let default_db = test_database().unwrap();
    let archive_db = test_database().unwrap();
    let mp =
        Mapper::with_binds([("default", default_db.url()), ("archive", archive_db.url())]).unwrap();
    let set = Migrations::new(vec![create_table(1)]).unwrap();
    mp.register_migrations(set.clone().on_bind("archive"))
        .unwrap();
    let report = green({
        let mp = mp.clone();
        move || mp.migrate()
    })
    .unwrap();
    assert_eq!(report.applied[0].bind, "archive");
    let on_archive = Mapper::new(&archive_db.url()).unwrap();
    assert!(relation_exists(&on_archive, "t1"));
    assert!(!relation_exists(&mp, "t1"), "the default bind is untouched");

    let err = mp.register_migrations(set.on_bind("nowhere")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "migrations are bound to `nowhere`, which is not a bind of this mapper"
    );
}

#[test]
fn migrating_off_the_green_pool_is_refused_at_once() {
    let mp = Mapper::new("postgresql://odm@127.0.0.1:1/nowhere").unwrap();
    mp.register_migrations(Migrations::new(vec![create_table(1)]).unwrap())
        .unwrap();
    for err in [mp.migrate().unwrap_err(), mp.migrate_plan().unwrap_err()] {
        assert!(err.is_wrong_context(), "{err:?}");
        assert!(
            err.to_string().contains("acquire in main greenlet"),
            "{err}"
        );
    }
}

#[test]
fn a_missing_migrations_folder_is_a_read_error_naming_it() {
    let err = Migrations::from_dir("/nonexistent/migrations").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read migrations from /nonexistent/migrations: "),
        "{err}"
    );
}

#[test]
fn migrating_inside_a_session_that_holds_a_connection_is_a_nested_acquire() {
    let (_db, mp) = mapper_with(vec![create_table(1)]);
    let err = green(move || {
        mp.begin(|s| {
            s.execute("CREATE TABLE held (id int)", &[])?;
            mp.migrate()
        })
    })
    .unwrap_err();
    assert!(matches!(err, Error::NestedAcquire), "{err:?}");
}
