//! The ORM scenarios of `tests/orm.rs` once more, every mapper connection
//! through a real PgBouncer in transaction pooling mode with the statement
//! cache off: the same file compiled a third time, whose shared helpers
//! (`tests/orm_common`) then give each scenario's mapper a PgBouncer URL.
//!
//! Run: `cargo test --test orm_over_pgbouncer`. Needs the `pgbouncer`
//! program (`apt-get install pgbouncer`; `.ci/run` installs it): without it
//! every test here fails, saying so.

#[path = "orm.rs"]
mod scenarios;

use scenarios::orm_common;

#[test]
fn the_scenarios_run_through_pgbouncer_in_transaction_mode() {
    assert!(orm_common::through_pgbouncer());
    let (db, mp) = orm_common::mapper_with_models();
    let url = orm_common::database_url(&db);
    assert!(
        url.contains(&format!(":{}/", orm_common::bouncer().port())),
        "{url}"
    );
    assert!(url.contains("statement_cache=false"), "{url}");
    let config = odm::pg::Config::parse(&url).unwrap();
    // The mapper's port is PgBouncer's, and what answers behind it is the
    // test cluster.
    let served: i32 = orm_common::green(move || {
        let client = odm::pg::Client::connect(&config)?;
        let row = client.query_one("SELECT inet_server_port()", &[])?;
        Ok::<_, odm::Error>(row.get(0))
    })
    .unwrap();
    assert_eq!(
        served,
        i32::from(odm::testing::shared_cluster().unwrap().port())
    );
    assert_ne!(
        orm_common::bouncer().port(),
        odm::testing::shared_cluster().unwrap().port()
    );
    drop(mp);
}
