//! What [`#[odm::test]`](crate::test) runs: a test body on a green worker
//! with a fresh database (cargo feature `testing`).
//!
//! ```
//! # // A doc test cannot hold a #[test] function; the same body by hand:
//! # fn orders_are_counted(mp: odm::Mapper) -> odm::Result<()> {
//! #     let n: i64 = mp.session()?.query_raw("SELECT count(*) FROM orders", &[])?[0].get(0);
//! #     assert_eq!(n, 0);
//! #     Ok(())
//! # }
//! # odm::test_runner::run(
//! #     odm::test_runner::TestOptions {
//! #         name: "orders_are_counted",
//! #         migrations: Some(|| odm::embed_migrations!("tests/migrations")),
//! #         keep_on_failure: false,
//! #     },
//! #     orders_are_counted,
//! # );
//! // In tests/orders.rs, with green-odm (feature `testing`) as a dev-dependency:
//! #[odm::test(migrations = "tests/migrations")]
//! fn orders_are_counted(mp: odm::Mapper) -> odm::Result<()> {
//!     let n: i64 = mp.session()?.query_raw("SELECT count(*) FROM orders", &[])?[0].get(0);
//!     assert_eq!(n, 0);
//!     Ok(())
//! }
//! ```
//!
//! For each test:
//!
//! 1. a fresh database is created with [`testing::test_database`](odm_testing::test_database) (on the
//!    server `DATABASE_URL` names, else on a throwaway cluster started once
//!    per test binary);
//! 2. on a green worker (one [`GreenPool`] per test binary), the folder
//!    given as `migrations = "dir"` (relative to the package root, embedded
//!    at compile time by [`embed_migrations!`](crate::embed_migrations)) is
//!    applied, then the body runs with the value its parameter asks for
//!    ([`TestArgument`]: a [`Mapper`], an [`Engine`], a [`Pool`], a
//!    [`pg::Config`](green_postgres::Config) or the URL as a `String`; or no
//!    parameter);
//! 3. the test fails when the body panics or returns an `Err`
//!    ([`TestOutcome`]); the database is dropped afterwards, unless the test
//!    failed under `keep_on_failure`: then it is kept and its name printed
//!    (on a throwaway cluster it still goes when the test binary exits; on a
//!    `DATABASE_URL` server it stays).
//!
//! Other attributes (`#[should_panic]`, `#[ignore]`) go on the generated
//! `#[test]` function as usual. The expansion names the crate `::odm`, the
//! library name of the `green-odm` package.
//!
//! [`GreenPool`]: green::GreenPool

use std::fmt::Debug;
use std::sync::OnceLock;

use green::GreenPool;
use green_postgres::{Config, Pool};
use odm_testing::{test_database, TestDatabase};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::mapper::Mapper;
use crate::migrate::Migrations;

/// How a test is run: what `#[odm::test(...)]` was given.
#[derive(Debug, Clone, Copy)]
pub struct TestOptions {
    /// The test's path, for messages.
    pub name: &'static str,
    /// The migrations applied before the body runs.
    pub migrations: Option<fn() -> Result<Migrations>>,
    /// Whether a failed test keeps its database.
    pub keep_on_failure: bool,
}

/// A value a test body can take as its parameter, made from the fresh
/// database's URL on the green worker.
pub trait TestArgument: Sized {
    /// The value for the database at `url`.
    ///
    /// # Errors
    ///
    /// When the URL does not parse, which fails the test.
    fn from_database_url(url: &str) -> Result<Self>;
}

impl TestArgument for () {
    fn from_database_url(_url: &str) -> Result<()> {
        Ok(())
    }
}

impl TestArgument for Mapper {
    fn from_database_url(url: &str) -> Result<Mapper> {
        Mapper::new(url)
    }
}

impl TestArgument for Engine {
    fn from_database_url(url: &str) -> Result<Engine> {
        Engine::new(url)
    }
}

impl TestArgument for Pool {
    fn from_database_url(url: &str) -> Result<Pool> {
        Ok(Pool::from_url(url)?)
    }
}

impl TestArgument for Config {
    fn from_database_url(url: &str) -> Result<Config> {
        Ok(Config::parse(url)?)
    }
}

impl TestArgument for String {
    fn from_database_url(url: &str) -> Result<String> {
        Ok(url.to_owned())
    }
}

/// What a test body may return: nothing, or a `Result` whose `Err` fails
/// the test.
pub trait TestOutcome {
    /// `Err` with the failure's description when the test failed.
    ///
    /// # Errors
    ///
    /// The body's error, formatted with `Debug`.
    fn into_outcome(self) -> std::result::Result<(), String>;
}

impl TestOutcome for () {
    fn into_outcome(self) -> std::result::Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> TestOutcome for std::result::Result<(), E> {
    fn into_outcome(self) -> std::result::Result<(), String> {
        self.map_err(|err| format!("the test returned an error: {err:?}"))
    }
}

/// The test binary's green pool.
fn green() -> &'static GreenPool {
    static GREEN: OnceLock<GreenPool> = OnceLock::new();
    GREEN.get_or_init(GreenPool::new)
}

/// Runs `body` as `options` say (see the module's doc); panics, failing
/// the test, when it fails. What `#[odm::test]` expands to.
pub fn run<A, R>(options: TestOptions, body: fn(A) -> R)
where
    A: TestArgument + 'static,
    R: TestOutcome + 'static,
{
    let db = match test_database() {
        Ok(db) => db,
        Err(err) => panic!("{}: no test database: {err}", options.name),
    };
    let url = db.url();
    let migrations = options.migrations;
    let outcome = green().run(move || prepare_and_run(&url, migrations, body));
    let failure = match outcome {
        Ok(Ok(())) => return drop(db),
        Ok(Err(failure)) => failure,
        Err(panicked) => panicked.to_string(),
    };
    finish_failed(db, &options, &failure);
}

/// On the green worker: applies the migrations, then runs the body.
fn prepare_and_run<A, R>(
    url: &str,
    migrations: Option<fn() -> Result<Migrations>>,
    body: fn(A) -> R,
) -> std::result::Result<(), String>
where
    A: TestArgument,
    R: TestOutcome,
{
    if let Some(migrations) = migrations {
        migrate(url, migrations).map_err(|err| format!("the test's migrations failed: {err}"))?;
    }
    let argument = A::from_database_url(url)
        .map_err(|err| format!("the test's parameter could not be made: {err}"))?;
    body(argument).into_outcome()
}

fn migrate(url: &str, migrations: fn() -> Result<Migrations>) -> Result<()> {
    let mapper = Mapper::new(url)?;
    mapper.register_migrations(migrations()?)?;
    mapper.migrate()?;
    mapper.close();
    Ok::<(), Error>(())
}

/// Keeps the database if asked, then fails the test with `failure`.
fn finish_failed(db: TestDatabase, options: &TestOptions, failure: &str) -> ! {
    if options.keep_on_failure {
        let name = db.name().to_owned();
        db.keep();
        eprintln!("{}: kept the test database {name}", options.name);
    } else {
        drop(db);
    }
    panic!("{}: {failure}", options.name);
}
