//! A primary with a streaming standby (`odm::testing::ReplicatedCluster`):
//! the standby is in recovery, follows the primary's writes, refuses its
//! own, and takes writes once promoted.
//!
//! Run: `cargo test --test standby`

mod green_tasks;

use green_tasks::on_green;
use odm::pg::Error;
use odm::pg::{Client, Config};
use odm::testing::{ReplicatedCluster, Standby};

/// The answer of `sql` (one `bool` or `text` column) on a fresh connection
/// to `url`.
fn one<T: for<'a> odm::pg::FromSql<'a> + Send + 'static>(url: &str, sql: &str) -> Result<T, Error> {
    let config = Config::parse(url).expect("the url parses");
    let sql = sql.to_string();
    on_green(move || {
        let client = Client::connect(&config)?;
        Ok(client.query_one(&sql, &[])?.get(0))
    })
}

fn execute(url: &str, sql: &str) -> Result<u64, Error> {
    let config = Config::parse(url).expect("the url parses");
    let sql = sql.to_string();
    on_green(move || Client::connect(&config)?.execute(&sql, &[]))
}

#[test]
fn a_standby_is_in_recovery_and_sees_a_row_written_on_the_primary_but_refuses_writes() {
    let pair = ReplicatedCluster::start().unwrap();
    let primary = pair.primary().unwrap().url();
    let standby = pair.standby().url();
    assert!(pair.standby().is_in_recovery().unwrap());
    assert!(one::<bool>(&standby, "SELECT pg_is_in_recovery()").unwrap());
    assert!(!one::<bool>(&primary, "SELECT pg_is_in_recovery()").unwrap());

    execute(&primary, "CREATE TABLE t (id int4, v text)").unwrap();
    execute(&primary, "INSERT INTO t VALUES (1, 'from the primary')").unwrap();
    pair.wait_caught_up().unwrap();
    let v: String = one(&standby, "SELECT v FROM t WHERE id = 1").unwrap();
    assert_eq!(v, "from the primary");

    let e = execute(&standby, "INSERT INTO t VALUES (2, 'on the standby')").unwrap_err();
    assert_eq!(e.code(), Some("25006"), "{e}");
}

#[test]
fn a_standby_promoted_after_the_primary_stops_accepts_writes_keeps_the_primarys_rows_and_is_removed_on_drop(
) {
    let mut pair = ReplicatedCluster::start().unwrap();
    let primary = pair.primary().unwrap().url();
    let standby = pair.standby().url();
    execute(&primary, "CREATE TABLE t (id int4)").unwrap();
    execute(&primary, "INSERT INTO t VALUES (1)").unwrap();
    pair.wait_caught_up().unwrap();

    pair.stop_primary();
    assert!(pair.primary().is_none());
    assert!(execute(&primary, "SELECT 1").is_err());
    let e = pair.wait_caught_up().unwrap_err();
    assert!(e.to_string().contains("primary was stopped"), "{e}");

    pair.promote().unwrap();
    assert!(!pair.standby().is_in_recovery().unwrap());
    assert_eq!(execute(&standby, "INSERT INTO t VALUES (2)").unwrap(), 1);
    let ids: String = one(
        &standby,
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM t",
    )
    .unwrap();
    assert_eq!(ids, "1,2");

    let data_dir = pair.standby().data_dir().to_path_buf();
    assert!(data_dir.exists());
    drop(pair);
    assert!(!data_dir.exists(), "{}", data_dir.display());
}

#[test]
fn a_standby_of_a_cluster_without_replication_is_refused_with_the_reason() {
    let cluster = odm::testing::TempCluster::start().unwrap();
    let e = Standby::start_from(&cluster).unwrap_err();
    assert!(matches!(e, odm::testing::Error::Server(_)), "{e:?}");
    assert!(e.to_string().contains("start_primary"), "{e}");
}

#[test]
fn a_standby_copied_by_file_without_pg_basebackup_follows_the_primary_and_takes_writes_once_promoted(
) {
    let primary = odm::testing::TempCluster::start_primary().unwrap();
    let primary_url = primary.url();
    execute(&primary_url, "CREATE TABLE t (id int4)").unwrap();
    execute(&primary_url, "INSERT INTO t VALUES (1)").unwrap();
    let standby = Standby::start_by_file_copy_from(&primary).unwrap();
    assert!(standby.is_in_recovery().unwrap());
    execute(&primary_url, "INSERT INTO t VALUES (2)").unwrap();
    standby.wait_caught_up(&primary).unwrap();
    let count: i64 = one(&standby.url(), "SELECT count(*) FROM t").unwrap();
    assert_eq!(count, 2);

    drop(primary);
    standby.promote().unwrap();
    assert!(!standby.is_in_recovery().unwrap());
    execute(&standby.url(), "INSERT INTO t VALUES (3)").unwrap();
    let count: i64 = one(&standby.url(), "SELECT count(*) FROM t").unwrap();
    assert_eq!(count, 3);
}

#[test]
fn a_file_copy_standby_of_a_cluster_without_replication_is_refused_with_the_reason() {
    let cluster = odm::testing::TempCluster::start().unwrap();
    let e = Standby::start_by_file_copy_from(&cluster).unwrap_err();
    assert!(matches!(e, odm::testing::Error::Server(_)), "{e:?}");
    assert!(e.to_string().contains("start_primary"), "{e}");
}
