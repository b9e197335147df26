//! `#[odm::test]`: each test on a green worker with a fresh database, its
//! migrations applied if asked, the value its parameter asks for, failures
//! from panics and from returned errors, the database dropped afterwards
//! or kept on failure when asked.
//!
//! Run: `cargo test --test test_attribute`

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use odm::pg::{Client, Config};
use odm::test_runner::{run, TestOptions};
use odm::{Engine, Mapper, Pool};

/// The customers table of `tests/migrations_with_down`.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
#[odm(table = "customers")]
struct Customer {
    #[odm(primary_key)]
    id: Option<i32>,
    name: String,
    email: Option<String>,
}

#[odm::test(migrations = "tests/migrations_with_down")]
fn a_mapper_on_a_migrated_fresh_database_stores_and_reads_models(mp: Mapper) -> odm::Result<()> {
    mp.register::<Customer>()?;
    let applied: i64 = mp
        .session()?
        .query_raw("SELECT count(*) FROM odm_migrations", &[])?[0]
        .get(0);
    assert_eq!(applied, 3);
    mp.begin(|session| {
        session.add(&mut Customer {
            name: "Ada".into(),
            email: Some("ada@example.com".into()),
            ..Customer::default()
        })
    })?;
    let all = mp.session()?.query::<Customer>().all()?;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].email.as_deref(), Some("ada@example.com"));
    Ok(())
}

#[odm::test]
fn a_pool_is_connected_to_a_fresh_empty_database(pool: Pool) {
    let conn = pool.acquire().unwrap();
    let name: String = conn
        .query_one("SELECT current_database()::text", &[])
        .unwrap()
        .get(0);
    assert!(name.starts_with("odm_test_"), "{name}");
    let tables: i64 = conn
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}

#[odm::test]
fn an_engine_a_config_or_the_url_can_be_asked_for(engine: Engine) {
    let config: Config = engine.config().clone();
    let client = Client::connect(&config).unwrap();
    client.batch_execute("CREATE TABLE t (id int)").unwrap();
}

#[odm::test]
fn the_body_runs_on_a_green_worker(url: String) {
    assert!(may::coroutine::is_coroutine());
    let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
    client.batch_execute("SELECT 1").unwrap();
}

#[odm::test]
fn a_test_may_take_nothing() {
    assert!(may::coroutine::is_coroutine());
}

#[odm::test]
#[should_panic(expected = "the test returned an error")]
fn a_returned_error_fails_the_test(mp: Mapper) -> odm::Result<()> {
    mp.session()?
        .query_raw("SELECT * FROM no_such_table", &[])?;
    Ok(())
}

#[odm::test]
#[should_panic(expected = "deliberately")]
fn a_panic_in_the_body_fails_the_test() {
    panic!("deliberately");
}

/// The database URL the last body below saw.
static SEEN: Mutex<Option<String>> = Mutex::new(None);

fn remember_and_fail(url: String) -> Result<(), &'static str> {
    *SEEN.lock().unwrap() = Some(url);
    Err("deliberate failure")
}

fn remember(url: String) {
    *SEEN.lock().unwrap() = Some(url);
}

/// Whether the database of `url` still exists on its server.
fn exists(url: &str) -> bool {
    let config = Config::parse(url).unwrap();
    let name = config.dbname().to_owned();
    let admin = config.with_dbname("postgres");
    odm::green::GreenPool::new()
        .run(move || {
            let client = Client::connect(&admin).unwrap();
            !client
                .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .unwrap()
                .is_empty()
        })
        .unwrap()
}

fn options(keep_on_failure: bool) -> TestOptions {
    TestOptions {
        name: "by_hand",
        migrations: None,
        keep_on_failure,
    }
}

#[test]
fn the_database_is_dropped_after_the_test_and_kept_on_failure_only_when_asked() {
    let _one_at_a_time = SEEN.lock().map(drop);
    // Passed: dropped.
    run(options(true), remember);
    let url = SEEN.lock().unwrap().take().unwrap();
    assert!(!exists(&url));
    // Failed without keep_on_failure: dropped, and the test fails.
    let failed = catch_unwind(AssertUnwindSafe(|| run(options(false), remember_and_fail)));
    let message = *failed.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("deliberate failure"), "{message}");
    let url = SEEN.lock().unwrap().take().unwrap();
    assert!(!exists(&url));
    // Failed with keep_on_failure: kept.
    let failed = catch_unwind(AssertUnwindSafe(|| run(options(true), remember_and_fail)));
    assert!(failed.is_err());
    let url = SEEN.lock().unwrap().take().unwrap();
    assert!(exists(&url));
    let config = Config::parse(&url).unwrap();
    let name = config.dbname().to_owned();
    let admin = config.with_dbname("postgres");
    odm::green::GreenPool::new()
        .run(move || {
            Client::connect(&admin)
                .unwrap()
                .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                .unwrap()
        })
        .unwrap();
}
