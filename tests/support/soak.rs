//! [`InsertSoak`]: many green tasks inserting numbered rows for a bounded
//! time, each counting the inserts that were acknowledged, and the check
//! afterwards that every acknowledged row is in the table.
//!
//! It is the "nothing acknowledged is lost" test: run it through a
//! [`FaultProxy`](odm::testing::FaultProxy) (or while the server restarts, or while
//! backends are terminated), then count what is present over a direct
//! connection.
//!
//! Run with [`odm::testing::FaultProxy`] in `tests/fault_proxy.rs` and
//! `tests/faults.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use green::GreenPool;

use odm::pg::{Client, Config};
use odm::pg::{Error, Pool};
use postgres_protocol::escape::escape_identifier as quote_ident;

/// How many distinct error messages a report keeps.
const KEPT_ERRORS: usize = 8;

/// A soak of inserts: `tasks` green tasks, each inserting rows through
/// [`Pool::execute`] (shared mode),
/// `(task, 0), (task, 1), ...` into `table` until `duration` has passed,
/// counting which inserts returned `Ok`. After an error a task pauses
/// briefly and goes on with the next number, so a failed insert's number is
/// never reused.
///
/// The time is bounded only as well as each insert is: when a fault can
/// leave a request without an answer (a black hole), give the URL a
/// `query_timeout`, or an insert in flight waits as long as the driver does.
#[derive(Clone, Debug)]
pub struct InsertSoak {
    table: String,
    tasks: usize,
    duration: Duration,
    pause_after_error: Duration,
}

/// What a soak's tasks saw.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    acknowledged: Vec<(i32, i64)>,
    failed: u64,
    errors: Vec<String>,
}

impl SoakReport {
    /// How many inserts returned `Ok`: each of their rows must be present.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.len() as u64
    }

    /// The `(task, seq)` of every insert that returned `Ok`.
    pub fn acknowledged_rows(&self) -> &[(i32, i64)] {
        &self.acknowledged
    }

    /// How many inserts returned an error. Their rows may or may not be
    /// present: an insert can commit and still lose its answer.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// The first few distinct error messages, for a failing test's message.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    fn absorb(&mut self, other: SoakReport) {
        self.acknowledged.extend(other.acknowledged);
        self.failed += other.failed;
        for error in other.errors {
            self.note_error(error);
        }
    }

    fn note_error(&mut self, error: String) {
        if self.errors.len() < KEPT_ERRORS && !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }
}

impl InsertSoak {
    /// A soak into `table`: 8 tasks for 2 s in shared mode.
    pub fn new(table: &str) -> InsertSoak {
        InsertSoak {
            table: table.to_string(),
            tasks: 8,
            duration: Duration::from_secs(2),
            pause_after_error: Duration::from_millis(20),
        }
    }

    /// How many tasks insert at once.
    pub fn tasks(mut self, tasks: usize) -> InsertSoak {
        self.tasks = tasks;
        self
    }

    /// How long the tasks go on starting inserts.
    pub fn duration(mut self, duration: Duration) -> InsertSoak {
        self.duration = duration;
        self
    }

    /// Creates the table (`task integer, seq bigint`, primary key on both)
    /// if it does not exist, over `url`.
    ///
    /// # Errors
    ///
    /// The connect or server error.
    pub fn create_table(&self, green: &GreenPool, url: &str) -> Result<(), Error> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (task integer NOT NULL, seq bigint NOT NULL, \
             PRIMARY KEY (task, seq))",
            quote_ident(&self.table)
        );
        on_client(green, url, move |client| client.batch_execute(&sql))
    }

    /// Runs the soak through `url` and reports what the tasks saw. Blocks
    /// the calling thread until every task is done: call it from a test
    /// thread.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a bad URL, [`Error::Green`] when a task could
    /// not run. Insert errors are counted, not returned.
    pub fn run(&self, green: &GreenPool, url: &str) -> Result<SoakReport, Error> {
        let pool = Pool::from_url(url)?;
        let sql = format!(
            "INSERT INTO {} (task, seq) VALUES ($1, $2)",
            quote_ident(&self.table)
        );
        let deadline = Instant::now() + self.duration;
        let mut tasks = Vec::with_capacity(self.tasks);
        for task in 0..self.tasks {
            let pool = pool.clone();
            let sql = sql.clone();
            let pause = self.pause_after_error;
            let task = i32::try_from(task).unwrap_or(i32::MAX);
            tasks.push(green.submit(move || insert_until(&pool, &sql, task, deadline, pause))?);
        }
        let mut report = SoakReport::default();
        for task in tasks {
            report.absorb(task.join()?);
        }
        pool.close();
        Ok(report)
    }

    /// How many rows the table holds, counted over `url` (give it a direct
    /// URL, not the proxy's).
    ///
    /// # Errors
    ///
    /// The connect or server error.
    pub fn rows_present(&self, green: &GreenPool, url: &str) -> Result<u64, Error> {
        let sql = format!("SELECT count(*) FROM {}", quote_ident(&self.table));
        on_client(green, url, move |client| {
            let count: i64 = client.query_one(&sql, &[])?.try_get(0)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
    }

    /// The acknowledged rows of `report` that are not in the table, read
    /// over `url`: empty when nothing acknowledged was lost.
    ///
    /// # Errors
    ///
    /// The connect or server error.
    pub fn lost(
        &self,
        green: &GreenPool,
        url: &str,
        report: &SoakReport,
    ) -> Result<Vec<(i32, i64)>, Error> {
        let sql = format!("SELECT task, seq FROM {}", quote_ident(&self.table));
        let present = on_client(green, url, move |client| {
            client
                .query(&sql, &[])?
                .iter()
                .map(|row| Ok((row.try_get::<_, i32>(0)?, row.try_get::<_, i64>(1)?)))
                .collect::<Result<HashSet<(i32, i64)>, Error>>()
        })?;
        Ok(report
            .acknowledged
            .iter()
            .filter(|row| !present.contains(row))
            .copied()
            .collect())
    }
}

/// One task of a soak: inserts `(task, 0), (task, 1), ...` until `deadline`.
fn insert_until(
    pool: &Pool,
    sql: &str,
    task: i32,
    deadline: Instant,
    pause_after_error: Duration,
) -> SoakReport {
    let mut report = SoakReport::default();
    let mut seq: i64 = 0;
    while Instant::now() < deadline {
        match pool.execute(sql, &[&task, &seq]) {
            Ok(_) => report.acknowledged.push((task, seq)),
            Err(e) => {
                report.failed += 1;
                report.note_error(e.to_string());
                may::coroutine::sleep(pause_after_error);
            }
        }
        seq += 1;
    }
    report
}

/// Runs `work` with a fresh connection to `url` on a green worker.
fn on_client<T: Send + 'static>(
    green: &GreenPool,
    url: &str,
    work: impl FnOnce(&Client) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let config = Config::parse(url)?;
    green
        .submit(move || {
            let client = Client::connect(&config)?;
            let out = work(&client);
            let _ = client.close();
            out
        })?
        .join()?
}
