//! The ORM scenarios of `tests/orm.rs` once more, every connection over
//! TLS: the same file compiled a second time, whose shared helpers
//! (`tests/orm_common`) then put each scenario's database on the TLS test
//! cluster and its mapper on `sslmode=verify-full`.
//!
//! Run: `cargo test --test orm_over_tls`

#[path = "orm.rs"]
mod scenarios;

use scenarios::orm_common;

#[test]
fn the_scenarios_run_over_tls() {
    assert!(orm_common::over_tls());
    let (db, mp) = orm_common::mapper_with_models();
    let url = orm_common::database_url(&db);
    assert!(url.contains("sslmode=verify-full"), "{url}");
    let config = odm::pg::Config::parse(&url).unwrap();
    let ssl: bool = orm_common::green(move || {
        let client = odm::pg::Client::connect(&config)?;
        let row = client.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )?;
        Ok::<_, odm::Error>(row.get(0))
    })
    .unwrap();
    assert!(ssl);
    drop(mp);
}
