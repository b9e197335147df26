//! Down migrations and the migration status: `U<version>__<name>.sql`
//! down scripts, `Mapper::migrate_revert` and its dry run, what a revert
//! refuses, `Mapper::migrate_status`, and `embed_migrations!` of a whole
//! folder.

use std::sync::LazyLock;

use green::GreenPool;
use odm::migrate::{MigrationError, MigrationState};
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

const FOLDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/migrations_with_down");

/// The folder's migrations (V3 has no down script).
fn folder() -> Migrations {
    Migrations::from_dir(FOLDER).unwrap()
}

/// The folder's migrations with a down script for V3 too.
fn all_reversible() -> Migrations {
    let mut list = folder().list().to_vec();
    list[2] = list[2].clone().with_down("DROP TABLE invoices");
    Migrations::new(list).unwrap()
}

/// A fresh database and a mapper on it with `migrations` registered.
fn mapper_with(migrations: Migrations) -> (TestDatabase, Mapper) {
    let db = test_database().expect("test database");
    let mp = Mapper::new(&db.url()).unwrap();
    mp.register_migrations(migrations).unwrap();
    (db, mp)
}

fn recorded_versions(mp: &Mapper) -> Vec<i64> {
    let mp = mp.clone();
    green(move || {
        let rows = mp
            .session()?
            .query_raw("SELECT version FROM odm_migrations ORDER BY version", &[])?;
        Ok::<_, Error>(rows.iter().map(|r| r.get(0)).collect())
    })
    .unwrap()
}

fn column_exists(mp: &Mapper, table: &'static str, column: &'static str) -> bool {
    let mp = mp.clone();
    green(move || {
        let rows = mp.session()?.query_raw(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_name = $1 AND column_name = $2",
            &[&table, &column],
        )?;
        Ok::<bool, Error>(rows[0].get::<_, i64>(0) == 1)
    })
    .unwrap()
}

fn migrate(mp: &Mapper) -> odm::Result<Vec<i64>> {
    let mp = mp.clone();
    green(move || mp.migrate()).map(|report| report.applied.iter().map(|a| a.version).collect())
}

fn revert(mp: &Mapper, steps: usize) -> odm::Result<Vec<i64>> {
    let mp = mp.clone();
    green(move || mp.migrate_revert(steps))
        .map(|report| report.reverted.iter().map(|a| a.version).collect())
}

fn revert_plan(mp: &Mapper, steps: usize) -> odm::Result<Vec<i64>> {
    let mp = mp.clone();
    green(move || mp.migrate_revert_plan(steps))
        .map(|plan| plan.iter().map(|p| p.version).collect())
}

fn migration_error(err: &Error) -> &MigrationError {
    match err {
        Error::Migration(e) => e,
        other => panic!("expected a migration error, got {other:?}"),
    }
}

#[test]
fn embed_migrations_of_a_folder_embeds_every_file_with_its_down_script() {
    let embedded = odm::embed_migrations!("tests/migrations_with_down").unwrap();
    assert_eq!(embedded.list(), folder().list());
    let downs: Vec<Option<&str>> = embedded.list().iter().map(Migration::down_sql).collect();
    assert_eq!(
        downs,
        [
            Some("DROP TABLE customers;\n"),
            Some("ALTER TABLE customers DROP COLUMN email;\n"),
            None
        ]
    );
    // The older form, a folder and a list of files, still works.
    let listed = odm::embed_migrations!("migrations", ["V1__create_orders.sql"]).unwrap();
    assert_eq!(listed.list()[0].name(), "create_orders");
}

#[test]
fn a_revert_runs_the_down_scripts_newest_first_and_forgets_the_migrations() {
    let (_db, mp) = mapper_with(all_reversible());
    assert_eq!(migrate(&mp).unwrap(), [1, 2, 3]);
    // The dry run lists what would be undone and undoes nothing.
    assert_eq!(revert_plan(&mp, 2).unwrap(), [3, 2]);
    assert_eq!(recorded_versions(&mp), [1, 2, 3]);
    assert_eq!(revert(&mp, 2).unwrap(), [3, 2]);
    assert_eq!(recorded_versions(&mp), [1]);
    assert!(!column_exists(&mp, "customers", "email"));
    // Applied again, they come back.
    assert_eq!(migrate(&mp).unwrap(), [2, 3]);
    assert!(column_exists(&mp, "customers", "email"));
    // More steps than applied undo everything; then there is nothing left.
    assert_eq!(revert(&mp, 10).unwrap(), [3, 2, 1]);
    assert_eq!(recorded_versions(&mp), Vec::<i64>::new());
    assert_eq!(revert(&mp, 1).unwrap(), Vec::<i64>::new());
}

#[test]
fn a_revert_reaching_a_migration_without_a_down_script_undoes_nothing() {
    let (_db, mp) = mapper_with(folder());
    assert_eq!(migrate(&mp).unwrap(), [1, 2, 3]);
    for err in [
        revert(&mp, 2).unwrap_err(),
        revert_plan(&mp, 1).unwrap_err(),
    ] {
        match migration_error(&err) {
            MigrationError::NoDown { version: 3, name } => assert_eq!(name, "create_invoices"),
            other => panic!("expected NoDown for version 3, got {other:?}"),
        }
        assert!(err.to_string().contains("U3__create_invoices.sql"), "{err}");
    }
    assert_eq!(recorded_versions(&mp), [1, 2, 3]);
    assert!(column_exists(&mp, "customers", "email"));
}

#[test]
fn a_failing_down_script_rolls_back_and_keeps_the_migration_recorded() {
    let list = vec![
        Migration::new(1, "a", "CREATE TABLE a (id int)").with_down("DROP TABLE a"),
        Migration::new(2, "b", "CREATE TABLE b (id int)")
            .with_down("DROP TABLE a; DROP TABLE nope"),
    ];
    let (_db, mp) = mapper_with(Migrations::new(list).unwrap());
    migrate(&mp).unwrap();
    let err = revert(&mp, 2).unwrap_err();
    assert_eq!(migration_error(&err).version(), Some(2));
    assert_eq!(err.code(), Some("42P01"), "{err}");
    assert_eq!(recorded_versions(&mp), [1, 2]);
    // `DROP TABLE a` ran in the down script's transaction, rolled back.
    assert!(column_exists(&mp, "a", "id"));
}

#[test]
fn a_revert_is_refused_when_an_applied_migration_was_edited() {
    let (db, mp) = mapper_with(all_reversible());
    migrate(&mp).unwrap();
    let mut edited = all_reversible().list().to_vec();
    edited[0] = Migration::new(1, "create_customers", "CREATE TABLE customers ()")
        .with_down("DROP TABLE customers");
    let mp2 = Mapper::new(&db.url()).unwrap();
    mp2.register_migrations(Migrations::new(edited).unwrap())
        .unwrap();
    let err = revert(&mp2, 1).unwrap_err();
    assert!(matches!(
        migration_error(&err),
        MigrationError::ChecksumMismatch { version: 1, .. }
    ));
    assert_eq!(recorded_versions(&mp), [1, 2, 3]);
}

#[test]
fn the_status_shows_applied_pending_edited_and_unknown_migrations() {
    let (db, mp) = mapper_with(folder());
    let status = |mp: &Mapper| {
        let mp = mp.clone();
        green(move || mp.migrate_status()).unwrap()
    };
    let states = |mp: &Mapper| -> Vec<(i64, MigrationState)> {
        status(mp).iter().map(|s| (s.version, s.state)).collect()
    };
    assert_eq!(
        states(&mp),
        [
            (1, MigrationState::Pending),
            (2, MigrationState::Pending),
            (3, MigrationState::Pending)
        ]
    );
    assert!(status(&mp)[0].has_down && !status(&mp)[2].has_down);
    migrate(&mp).unwrap();
    assert!(status(&mp).iter().all(|s| s.is_in_sync()));
    // A program holding an edited V2 and not V3.
    let mut list = folder().list()[..2].to_vec();
    list[1] = Migration::new(
        2,
        "add_customer_email",
        "ALTER TABLE customers ADD email text",
    );
    let older = Mapper::new(&db.url()).unwrap();
    older
        .register_migrations(Migrations::new(list).unwrap())
        .unwrap();
    let lines = status(&older);
    assert_eq!(lines[0].state, MigrationState::Applied);
    assert!(matches!(lines[1].state, MigrationState::Changed { .. }));
    assert_eq!(
        (lines[2].version, lines[2].name.as_str(), lines[2].state),
        (3, "create_invoices", MigrationState::Unknown)
    );
}
