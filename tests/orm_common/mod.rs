//! Models and helpers shared by the ORM integration tests: pulsar-odm's test
//! models (Task, Employee, Engineer, PersonalTasks) and a green pool runner.
#![allow(dead_code)]

use std::sync::LazyLock;

use chrono::NaiveDateTime;
use odm::testing::{shared_cluster, shared_tls_cluster, PgBouncer, TestDatabase};
use odm::Mapper;
use uuid::Uuid;

/// pulsar-odm's `TaskType` enum, stored as its integer discriminant.
#[derive(odm::Choice, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskType {
    #[default]
    Work = 1,
    Personal = 2,
    Social = 3,
}

/// pulsar-odm's `Task`: UUID key, enum type, JSON info, employee foreign key.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
pub struct Task {
    #[odm(primary_key)]
    pub id: Uuid,
    #[odm(max_length = 250)]
    pub subject: String,
    #[odm(default = "false")]
    pub done: bool,
    #[odm(default = "now()")]
    pub created: Option<NaiveDateTime>,
    pub info: Option<serde_json::Value>,
    #[odm(json)]
    pub info2: Option<serde_json::Value>,
    #[odm(default = "1")]
    pub r#type: TaskType,
    #[odm(foreign_key = "employee.id", index)]
    pub employee_id: Option<i32>,
}

impl Task {
    pub fn new(subject: &str) -> Task {
        Task {
            id: Uuid::new_v4(),
            subject: subject.into(),
            ..Default::default()
        }
    }
}

/// pulsar-odm's `Employee`, with a dict-style choice column `sex`.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
pub struct Employee {
    #[odm(primary_key)]
    pub id: Option<i32>,
    #[odm(max_length = 80)]
    pub name: String,
    #[odm(choices = "female,male")]
    pub sex: Option<String>,
}

/// pulsar-odm's `Engineer`: joined-table inheritance from `Employee`.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
pub struct Engineer {
    #[odm(parent)]
    pub employee: Employee,
    #[odm(max_length = 30)]
    pub engineer_name: Option<String>,
}

/// pulsar-odm's `PersonalTasks`: a view over `task` from `create_sql`.
#[derive(odm::Model, Debug, Clone, PartialEq)]
#[odm(
    create_sql = "CREATE OR REPLACE VIEW {name} AS (SELECT id, subject, done, created FROM task WHERE type = 2)",
    drop_sql = "DROP VIEW {name}"
)]
pub struct PersonalTasks {
    #[odm(primary_key)]
    pub id: Uuid,
    pub subject: String,
    pub done: bool,
    pub created: Option<NaiveDateTime>,
}

// Runs work on the test binary's green pool (`tests/green_tasks`).
pub use super::green_tasks::on_green as green;

/// Whether these helpers serve the scenarios run over TLS:
/// `tests/orm_over_tls.rs` compiles `tests/orm.rs` (and so this module) a
/// second time, as its module `scenarios`.
pub fn over_tls() -> bool {
    module_path!().starts_with("orm_over_tls::")
}

/// Whether these helpers serve the scenarios run through PgBouncer:
/// `tests/orm_over_pgbouncer.rs` compiles `tests/orm.rs` a third time.
pub fn through_pgbouncer() -> bool {
    module_path!().starts_with("orm_over_pgbouncer::")
}

/// The PgBouncer (transaction mode, 4 server connections per database) in
/// front of the shared test cluster, started on first use. When it cannot
/// start (no `pgbouncer` program), every caller fails with odm::testing's
/// message, which names the package to install — not only the first, as a
/// panic inside the `LazyLock` would poison it for the others.
pub fn bouncer() -> &'static PgBouncer {
    static BOUNCER: LazyLock<Result<PgBouncer, odm::testing::Error>> =
        LazyLock::new(|| PgBouncer::start(shared_cluster().expect("the test cluster"), 4));
    BOUNCER.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh database: on the TLS test cluster when [`over_tls`] (where
/// the default `sslmode=prefer` encrypts every connection), on the cluster
/// behind [`bouncer`] when [`through_pgbouncer`], else
/// [`odm::testing::test_database`].
pub fn test_database() -> Result<TestDatabase, odm::Error> {
    if over_tls() {
        Ok(TestDatabase::create_on(shared_tls_cluster()?)?)
    } else if through_pgbouncer() {
        Ok(TestDatabase::create_on(shared_cluster()?)?)
    } else {
        Ok(odm::testing::test_database()?)
    }
}

/// `db`'s URL; over TLS with `sslmode=verify-full` against the cluster's
/// certificate authority and its host name `localhost`; through
/// PgBouncer with `statement_cache=false`.
pub fn database_url(db: &TestDatabase) -> String {
    if through_pgbouncer() {
        return bouncer().url_for(
            odm::testing::SUPERUSER,
            odm::testing::SUPERUSER_PASSWORD,
            db.name(),
        );
    }
    if !over_tls() {
        return db.url();
    }
    let files = shared_tls_cluster()
        .expect("the tls cluster")
        .tls()
        .expect("tls files");
    format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.url()
            .replacen("@127.0.0.1:", &format!("@{}:", files.server_name()), 1),
        files.root_cert.display()
    )
}

/// A fresh database and a mapper on it with pulsar-odm's models registered
/// and their tables created.
pub fn mapper_with_models() -> (TestDatabase, Mapper) {
    let db = test_database().expect("test database");
    let mp = Mapper::new(&database_url(&db)).expect("mapper");
    mp.register::<Employee>().unwrap();
    mp.register::<Engineer>().unwrap();
    mp.register::<Task>().unwrap();
    mp.register::<PersonalTasks>().unwrap();
    let created = mp.clone();
    green(move || created.table_create()).expect("table_create");
    (db, mp)
}
