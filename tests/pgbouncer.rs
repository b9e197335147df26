//! odm through a real PgBouncer in transaction pooling mode
//! (`odm::testing::PgBouncer`, one in front of the shared test cluster for
//! the whole file, 4 server connections per database).
//!
//! Run: `cargo test --test pgbouncer`. Needs the `pgbouncer` program
//! (`apt-get install pgbouncer`; `.ci/run` installs it): without it every
//! test here fails, saying so.

mod green_tasks;
mod support;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use green_tasks::{green, on_green, spawn};
use odm::pg::{Client, Config};
use odm::testing::{
    shared_cluster, PgBouncer, TestDatabase, MD5_PASSWORD, MD5_USER, SCRAM_PASSWORD, SCRAM_USER,
    SUPERUSER, SUPERUSER_PASSWORD,
};
use odm::{Error, Pool};
use support::soak::InsertSoak;

/// Server connections per database and user.
const SERVER_CONNECTIONS: usize = 4;

/// The file's PgBouncer, started on first use; kept as a `Result` so that
/// every test fails with the same message when it cannot start (a panic
/// inside the `LazyLock` would poison it, and the other tests would only say
/// so).
static BOUNCER: LazyLock<Result<PgBouncer, odm::testing::Error>> = LazyLock::new(|| {
    PgBouncer::start(
        shared_cluster().expect("the test cluster"),
        SERVER_CONNECTIONS,
    )
});

/// The file's PgBouncer; without the `pgbouncer` program the test fails
/// with odm::testing's message, which names the package to install.
fn bouncer() -> &'static PgBouncer {
    BOUNCER.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh database on the cluster behind the bouncer.
fn database() -> TestDatabase {
    TestDatabase::create_on(shared_cluster().expect("the test cluster")).expect("a database")
}

/// `db` through the bouncer as the superuser, with `settings` appended.
fn bounced(db: &TestDatabase, settings: &str) -> Pool {
    let url = bouncer().url_for(SUPERUSER, SUPERUSER_PASSWORD, db.name());
    Pool::from_url(&format!("{url}&{settings}")).expect("the url parses")
}

#[test]
fn a_thousand_green_tasks_through_four_server_connections_keep_every_acknowledged_write() {
    let db = database();
    let url = format!(
        "{}&pool_size=16",
        bouncer().url_for(SUPERUSER, SUPERUSER_PASSWORD, db.name())
    );
    let soak = InsertSoak::new("soak")
        .tasks(1000)
        .duration(Duration::from_secs(3));
    soak.create_table(green(), &db.url()).unwrap();

    // The most server connections the bouncer held to the database while
    // the tasks wrote, counted on the server itself.
    let direct = Pool::new(Config::parse(&db.url()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (done, most, name) = (done.clone(), most.clone(), db.name().to_string());
        spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let row = direct
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .unwrap();
                most.fetch_max(row.get(0), Ordering::Relaxed);
                may::coroutine::sleep(Duration::from_millis(20));
            }
        })
    };
    // A worker each, so that all 1,000 tasks write at once.
    let writers = green::GreenPool::with_max_workers(1000);
    let report = soak.run(&writers, &url).unwrap();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    assert_eq!(report.failed(), 0, "{:?}", report.errors());
    let writing_tasks: std::collections::HashSet<i32> = report
        .acknowledged_rows()
        .iter()
        .map(|&(task, _)| task)
        .collect();
    assert_eq!(
        writing_tasks.len(),
        1000,
        "every task had a write acknowledged"
    );
    assert!(soak.lost(green(), &db.url(), &report).unwrap().is_empty());
    assert_eq!(
        soak.rows_present(green(), &db.url()).unwrap(),
        report.acknowledged()
    );
    let most = most.load(Ordering::Relaxed);
    eprintln!(
        "{} acknowledged inserts from 1000 tasks, at most {most} server connections",
        report.acknowledged()
    );
    assert!(
        (1..=SERVER_CONNECTIONS as i64).contains(&most),
        "{most} server connections"
    );
}

#[test]
fn scram_and_md5_roles_log_in_through_pgbouncer_with_their_own_passwords() {
    let db = database();
    for (user, password) in [
        (SUPERUSER, SUPERUSER_PASSWORD),
        (SCRAM_USER, SCRAM_PASSWORD),
        (MD5_USER, MD5_PASSWORD),
    ] {
        let config = Config::parse(&bouncer().url_for(user, password, db.name())).unwrap();
        let who: String = on_green(move || {
            let client = Client::connect(&config)?;
            Ok::<_, Error>(client.query_one("SELECT current_user::text", &[])?.get(0))
        })
        .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(who, user);
    }
    let config = Config::parse(&bouncer().url_for(SCRAM_USER, "wrong", db.name())).unwrap();
    let e = on_green(move || Client::connect(&config).map(drop)).unwrap_err();
    assert!(e.to_string().contains("authentication failed"), "{e}");
}

#[test]
fn session_state_through_transaction_pooling_is_refused_in_shared_mode_and_kept_inside_a_transaction(
) {
    let db = database();
    let pool = bounced(&db, "pool_size=2");
    let p = pool.clone();
    on_green(move || {
        // What would outlive its transaction on a PgBouncer server
        // connection, odm refuses before sending.
        for sql in [
            "SET search_path = nowhere",
            "LISTEN jobs",
            "PREPARE p AS SELECT 1",
            "BEGIN",
        ] {
            let e = p.execute(sql, &[]).unwrap_err();
            assert!(
                matches!(e, odm::pg::Error::NotShareable { .. }),
                "{sql}: {e:?}"
            );
        }
        // Transaction-scoped state is what transaction pooling keeps: a
        // SET LOCAL and a transaction-level advisory lock, inside one
        // transaction on an acquired connection.
        let mut conn = p.acquire().unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute("SET LOCAL application_name = 'in_tx'", &[])
            .unwrap();
        let locked: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock(42)", &[])
            .unwrap()
            .get(0);
        assert!(locked);
        let name: String = tx
            .query_one("SELECT current_setting('application_name')", &[])
            .unwrap()
            .get(0);
        assert_eq!(name, "in_tx");
        tx.commit().unwrap();
    });
    assert_eq!(pool.stats().connections_discarded, 0);
}

#[test]
fn the_installed_pgbouncer_decides_whether_the_statement_cache_may_stay_on() {
    let version = bouncer().version().to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap());
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    assert_eq!(
        bouncer().supports_prepared_statements(),
        (major, minor) >= (1, 21),
        "{version}"
    );
    if !bouncer().supports_prepared_statements() {
        eprintln!(
            "PgBouncer {version} has no protocol-level prepared statements (1.21+): \
             statement_cache=false is required through it"
        );
        return;
    }
    let db = database();
    let pool = bounced(&db, "statement_cache=true&pool_size=8");
    let tasks: Vec<_> = (0..200i64)
        .map(|i| {
            let pool = pool.clone();
            spawn(move || {
                for j in 0..20i64 {
                    let row = pool.query_one("SELECT $1::int8 * 2", &[&(i * j)]).unwrap();
                    assert_eq!(row.get::<_, i64>(0), i * j * 2);
                }
            })
        })
        .collect();
    for task in tasks {
        task.join().unwrap();
    }
}

#[test]
fn a_pgbouncer_dropped_while_a_transaction_is_open_stops_at_once_and_a_pool_of_zero_is_refused() {
    let cluster = shared_cluster().unwrap();
    let e = PgBouncer::start(cluster, 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "test server: a pgbouncer pool_size must be at least 1"
    );
    let mut bouncer = PgBouncer::start(cluster, 1).unwrap_or_else(|e| panic!("{e}"));
    assert!(bouncer.is_running());
    let port = bouncer.port();
    // A client holds a transaction open through it.
    let config = Config::parse(&bouncer.url()).unwrap();
    let (opened_tx, opened) = std::sync::mpsc::channel();
    let (release_tx, release) = may::sync::mpsc::channel::<()>();
    let client = spawn(move || {
        let mut client = Client::connect(&config).unwrap();
        let tx = client.transaction().unwrap();
        tx.execute("SELECT 1", &[]).unwrap();
        opened_tx.send(()).unwrap();
        let _ = release.recv();
        // The bouncer is gone: the transaction cannot commit.
        tx.commit().unwrap_err();
    });
    opened.recv().unwrap();
    let started = std::time::Instant::now();
    drop(bouncer);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped within 10 s"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    release_tx.send(()).unwrap();
    client.join().unwrap();
}

/// `tasks` green tasks each running `runs` point queries through `pool`,
/// with `check` on every row, and asking now and then how many named
/// statements their server connection holds.
fn point_queries(pool: &Pool, tasks: i32, runs: i32, check: fn(&odm::pg::Row, i32)) {
    let workers: Vec<_> = (0..tasks)
        .map(|t| {
            let pool = pool.clone();
            spawn(move || {
                let tag = t.to_string();
                for n in 0..runs {
                    let id = (t * runs + n) % 100;
                    let row = pool
                        .query_one("SELECT v, $2::text FROM t WHERE id = $1", &[&id, &tag])
                        .unwrap();
                    check(&row, id);
                    assert_eq!(row.get::<_, String>(1), tag);
                    if n % 10 == 0 {
                        let named: i64 = pool
                            .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
                            .unwrap()
                            .get(0);
                        assert_eq!(named, 0, "a named statement on a server connection");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}

#[test]
fn uncached_statements_from_more_tasks_than_server_connections_are_decoded_with_the_columns_of_their_own_run(
) {
    let db = database();
    let pool = bounced(&db, "pool_size=8");
    let p = pool.clone();
    on_green(move || {
        p.execute("CREATE TABLE t (id int4 PRIMARY KEY, v int4)", &[])
            .unwrap();
        p.execute(
            "INSERT INTO t SELECT i, i * 10 FROM generate_series(0, 99) i",
            &[],
        )
        .unwrap();
    });
    point_queries(&pool, 64, 40, |row, id| {
        assert_eq!(row.get::<_, i32>(0), id * 10)
    });
    // Every client connection described `v` as int4; float4 has the same
    // width, so rows decoded with that description would read wrong
    // integers instead of failing.
    let p = pool.clone();
    on_green(move || {
        p.execute("ALTER TABLE t ALTER v TYPE float4", &[]).unwrap();
    });
    point_queries(&pool, 64, 40, |row, id| {
        assert_eq!(row.get::<_, f32>(0), (id * 10) as f32);
        assert!(row.try_get::<_, i32>(0).is_err());
    });
    assert_eq!(pool.stats().connections_discarded, 0);
}
