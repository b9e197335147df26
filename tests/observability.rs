//! Observability: every statement the driver runs is logged at debug level
//! under the one target `odm::sql` with its SQL text, duration and row count
//! (never a parameter value), and a statement slower than
//! `slow_statement_ms` at warn level. The log is captured by a test
//! `log::Log`; tests run in parallel, so each finds its own records by a
//! marker in its SQL.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use green::GreenPool;
use log::{Level, Log, Metadata, Record};
use odm::pg::{Client, Config, SQL_LOG_TARGET};
use odm::testing::test_database;

mod green_tasks;
mod orm_common;

use orm_common::{mapper_with_models, Task};

/// One captured log record.
#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    target: String,
    message: String,
}

/// Keeps every record of every target at every level.
struct CaptureLog {
    records: Mutex<Vec<Captured>>,
}

impl Log for CaptureLog {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        self.records.lock().unwrap().push(Captured {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
        });
    }

    fn flush(&self) {}
}

/// The process's logger, installed once.
fn capture() -> &'static CaptureLog {
    static CAPTURE: OnceLock<&'static CaptureLog> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static CaptureLog = Box::leak(Box::new(CaptureLog {
            records: Mutex::new(Vec::new()),
        }));
        log::set_logger(capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
        capture
    })
}

/// The captured records whose message contains `marker`.
fn records_with(marker: &str) -> Vec<Captured> {
    capture()
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.message.contains(marker))
        .cloned()
        .collect()
}

/// Fails when any captured record (of any target) contains `secret`.
fn assert_never_logged(secret: &str) {
    let records = capture().records.lock().unwrap();
    let leaked: Vec<_> = records
        .iter()
        .filter(|r| r.message.contains(secret))
        .collect();
    assert!(
        leaked.is_empty(),
        "a parameter value was logged: {leaked:?}"
    );
}

/// Runs `work` on a green worker with a fresh database's URL (plus
/// `settings`) and waits for its result.
fn on_green_with_database<T: Send + 'static>(
    settings: &str,
    work: impl FnOnce(Client) -> T + Send + 'static,
) -> T {
    static GREEN: OnceLock<GreenPool> = OnceLock::new();
    capture();
    let db = test_database().unwrap();
    let separator = if db.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}{settings}", db.url());
    let out = GREEN
        .get_or_init(GreenPool::new)
        .submit(move || work(Client::connect(&Config::parse(&url).unwrap()).unwrap()))
        .unwrap()
        .join()
        .unwrap();
    drop(db);
    out
}

#[test]
fn every_statement_is_logged_under_odm_sql_with_its_duration_and_row_count_but_no_parameter_value()
{
    on_green_with_database("application_name=observability", |client| {
        client
            .batch_execute("CREATE TABLE secrets_a (id int, secret text)")
            .unwrap();
        for id in 1..=3 {
            client
                .execute(
                    "INSERT INTO secrets_a (id, secret) VALUES ($1, $2)",
                    &[&id, &"hunter2-in-a-parameter"],
                )
                .unwrap();
        }
        let rows = client
            .query("SELECT secret FROM secrets_a WHERE id <= $1", &[&3i32])
            .unwrap();
        assert_eq!(rows.len(), 3);
    });
    let select = records_with("SELECT secret FROM secrets_a WHERE id <= $1");
    assert_eq!(select.len(), 1, "{select:?}");
    assert_eq!(select[0].target, SQL_LOG_TARGET);
    assert_eq!(select[0].target, "odm::sql");
    assert_eq!(select[0].level, Level::Debug);
    assert!(select[0].message.contains(" ms"), "{select:?}");
    assert!(select[0].message.contains("3 rows"), "{select:?}");
    let inserts = records_with("INSERT INTO secrets_a (id, secret) VALUES ($1, $2)");
    assert_eq!(inserts.len(), 3, "{inserts:?}");
    assert!(inserts.iter().all(|r| r.message.contains("1 rows")));
    let create = records_with("CREATE TABLE secrets_a");
    assert_eq!(create.len(), 1, "{create:?}");
    assert!(create[0].message.contains("(CREATE TABLE)"), "{create:?}");
    assert_never_logged("hunter2-in-a-parameter");
}

#[test]
fn a_failed_statement_is_logged_with_its_sqlstate_and_not_the_server_message() {
    let error = on_green_with_database("", |client| {
        client
            .batch_execute("CREATE TABLE secrets_b (secret text PRIMARY KEY)")
            .unwrap();
        let insert = "INSERT INTO secrets_b (secret) VALUES ($1)";
        client.execute(insert, &[&"swordfish-key"]).unwrap();
        client.execute(insert, &[&"swordfish-key"]).unwrap_err()
    });
    // The server's detail quotes the value: it must stay in the error only.
    assert_eq!(error.code(), Some("23505"));
    let inserts = records_with("INSERT INTO secrets_b (secret) VALUES ($1)");
    assert_eq!(inserts.len(), 2, "{inserts:?}");
    assert!(
        inserts[1].message.contains("failed: SQLSTATE 23505"),
        "{inserts:?}"
    );
    assert_never_logged("swordfish-key");
}

#[test]
fn a_statement_slower_than_slow_statement_ms_is_logged_as_a_warning() {
    on_green_with_database("slow_statement_ms=100", |client| {
        client
            .execute("SELECT pg_sleep(0.3) /* slow-c */", &[])
            .unwrap();
        client.execute("SELECT 1 /* fast-c */", &[]).unwrap();
    });
    let slow = records_with("/* slow-c */");
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(slow[0].target, "odm::sql");
    assert_eq!(slow[0].level, Level::Warn);
    assert!(slow[0].message.contains("slow statement"), "{slow:?}");
    assert!(
        slow[0].message.contains("slow_statement_ms=100"),
        "{slow:?}"
    );
    assert!(slow[0].message.contains("1 rows"), "{slow:?}");
    let fast = records_with("/* fast-c */");
    assert_eq!(fast.len(), 1, "{fast:?}");
    assert_eq!(fast[0].level, Level::Debug);
}

#[test]
fn slow_statement_ms_defaults_to_one_second_and_zero_turns_it_off() {
    let default = Config::parse("postgres://u@h/d").unwrap();
    assert_eq!(default.slow_statement(), Some(Duration::from_secs(1)));
    assert!(!default.to_url().contains("slow_statement_ms"));
    let off = Config::parse("postgres://u@h/d?slow_statement_ms=0").unwrap();
    assert_eq!(off.slow_statement(), None);
    let again = Config::parse(&off.to_url()).unwrap();
    assert_eq!(again.slow_statement(), None);
    let custom = Config::parse("postgres://u@h/d?slow_statement_ms=250").unwrap();
    assert_eq!(custom.slow_statement(), Some(Duration::from_millis(250)));
    let error = Config::parse("postgres://u@h/d?slow_statement_ms=soon").unwrap_err();
    assert!(error.to_string().contains("slow_statement_ms"), "{error}");
}

#[test]
fn a_session_s_queued_begin_and_its_orm_statements_are_logged_without_values() {
    capture();
    let (_db, mp) = mapper_with_models();
    orm_common::green(move || {
        mp.begin(|s| s.add(&mut Task::new("opal-title-in-a-parameter")))
            .unwrap();
    });
    // The session queues BEGIN ahead of its first statement, unanswered.
    let begin = records_with("queued without waiting for its answer: BEGIN");
    assert!(!begin.is_empty(), "no queued BEGIN was logged");
    assert!(begin.iter().all(|r| r.target == "odm::sql"));
    let insert = records_with("INSERT INTO");
    assert!(!insert.is_empty(), "the session's INSERT was not logged");
    assert!(insert.iter().all(|r| r.message.contains(" ms")));
    let commit = records_with("(COMMIT): COMMIT");
    assert!(!commit.is_empty(), "the session's COMMIT was not logged");
    assert_never_logged("opal-title-in-a-parameter");
}

#[test]
fn a_copy_is_logged_when_it_ends_with_its_row_count() {
    use std::io::{Read, Write};
    on_green_with_database("", |client| {
        client
            .batch_execute("CREATE TABLE copied_e (secret text)")
            .unwrap();
        let mut writer = client.copy_in("COPY copied_e FROM STDIN").unwrap();
        writer.write_all(b"copy-secret-1\ncopy-secret-2\n").unwrap();
        assert_eq!(writer.finish().unwrap(), 2);
        let mut reader = client.copy_out("COPY copied_e TO STDOUT").unwrap();
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        assert_eq!(out.lines().count(), 2);
    });
    let copy_in = records_with("COPY copied_e FROM STDIN");
    assert_eq!(copy_in.len(), 1, "{copy_in:?}");
    assert!(copy_in[0].message.contains("2 rows"), "{copy_in:?}");
    let copy_out = records_with("COPY copied_e TO STDOUT");
    assert_eq!(copy_out.len(), 1, "{copy_out:?}");
    assert!(copy_out[0].message.contains("2 rows"), "{copy_out:?}");
    assert_never_logged("copy-secret");
}
