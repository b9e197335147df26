//! ORM reads on read replicas (`odm::replicas`) against a real primary with
//! a streaming standby: reads before a session's first write are served by
//! the standby, writes and the reads after them by the primary, a pinned
//! session reads on the primary, and a replica that is down is skipped.
//!
//! Every read goes through `NoteSeen`, a view that adds
//! `pg_is_in_recovery()` to each row: the row itself says whether the
//! server that answered the read was the standby.
//!
//! Run: `cargo test --test replicas`

mod green_tasks;

use green_tasks::on_green;
use odm::testing::ReplicatedCluster;
use odm::{Engine, Mapper, ReadRoute};

/// A note, written on the primary.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
pub struct Note {
    #[odm(primary_key)]
    pub id: Option<i32>,
    pub body: String,
}

/// A note as the server that served the read sees it.
#[derive(odm::Model, Debug, Clone, PartialEq)]
#[odm(
    create_sql = "CREATE OR REPLACE VIEW {name} AS SELECT id, body, pg_is_in_recovery() AS in_recovery FROM note",
    drop_sql = "DROP VIEW {name}"
)]
pub struct NoteSeen {
    #[odm(primary_key)]
    pub id: i32,
    pub body: String,
    pub in_recovery: bool,
}

fn note(body: &str) -> Note {
    Note {
        id: None,
        body: body.into(),
    }
}

/// A mapper on `primary` with the replicas `replicas`, its models created,
/// reading from replicas.
fn replica_reading_mapper(primary: &str, replicas: &[String]) -> Mapper {
    let engine = Engine::new(primary)
        .unwrap()
        .with_replicas(replicas)
        .unwrap();
    let mp = Mapper::from_engines(vec![("default".into(), engine)]).unwrap();
    mp.register::<Note>().unwrap();
    mp.register::<NoteSeen>().unwrap();
    mp.set_read_route(ReadRoute::Replica);
    let setup = mp.clone();
    on_green(move || setup.table_create()).unwrap();
    mp
}

#[test]
fn reads_before_the_first_write_are_served_by_the_standby_and_later_reads_by_the_primary() {
    let pair = ReplicatedCluster::start().unwrap();
    let primary = pair.primary().unwrap().url();
    let mp = replica_reading_mapper(&primary, &[pair.standby().url()]);
    let first = {
        let mp = mp.clone();
        on_green(move || {
            mp.begin(|s| {
                let mut first = note("written before the session");
                s.add(&mut first)?;
                Ok(first.id.unwrap())
            })
        })
        .unwrap()
    };
    pair.wait_caught_up().unwrap();

    let (before, own, after_commit) = on_green(move || {
        let mut s = mp.session().unwrap();
        let before = s.get::<NoteSeen>(first).unwrap().unwrap();
        let mut mine = note("written in the session");
        s.add(&mut mine).unwrap();
        let own = s.get::<NoteSeen>(mine.id.unwrap()).unwrap();
        s.commit().unwrap();

        let mut pinned = mp.session().unwrap();
        pinned.pin_to_primary();
        let after_commit = pinned.get::<NoteSeen>(mine.id.unwrap()).unwrap();
        (before, own, after_commit)
    });

    assert!(
        before.in_recovery,
        "the read before the first write: {before:?}"
    );
    assert_eq!(before.body, "written before the session");
    let own = own.expect("the session reads its own write");
    assert!(!own.in_recovery, "the read after the first write: {own:?}");
    let after_commit = after_commit.expect("the committed write is on the primary");
    assert!(
        !after_commit.in_recovery,
        "the pinned read: {after_commit:?}"
    );
    assert_eq!(after_commit.body, "written in the session");
}

#[test]
fn a_committed_write_reaches_the_standby_and_sessions_read_it_there_once_it_has_replayed() {
    let pair = ReplicatedCluster::start().unwrap();
    let primary = pair.primary().unwrap().url();
    let mp = replica_reading_mapper(&primary, &[pair.standby().url()]);
    let writer = mp.clone();
    let id = on_green(move || {
        writer.begin(|s| {
            let mut written = note("replicated");
            s.add(&mut written)?;
            Ok(written.id.unwrap())
        })
    })
    .unwrap();
    pair.wait_caught_up().unwrap();

    let (seen, all_on_standby, primary_count) = on_green(move || {
        let mut s = mp.session().unwrap();
        let seen = s.get::<NoteSeen>(id).unwrap();
        let all_on_standby = s.query::<NoteSeen>().all().unwrap();
        let mut pinned = mp.session().unwrap();
        pinned.pin_to_primary();
        let primary_count = pinned.query::<Note>().count().unwrap();
        (seen, all_on_standby, primary_count)
    });
    let seen = seen.expect("the standby has the replayed row");
    assert!(seen.in_recovery, "{seen:?}");
    assert_eq!(seen.body, "replicated");
    assert!(
        all_on_standby.iter().all(|n| n.in_recovery),
        "{all_on_standby:?}"
    );
    assert_eq!(all_on_standby.len(), 1);
    assert_eq!(primary_count, 1);
}

#[test]
fn reads_fall_back_to_the_primary_when_the_replica_refuses_connections() {
    let db = odm::testing::test_database().unwrap();
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dead_replica = format!("postgresql://odm@127.0.0.1:{refused}/odm?connect_timeout=5");
    let mp = replica_reading_mapper(&db.url(), &[dead_replica]);
    let (first, second) = on_green(move || {
        let id = mp.begin(|s| {
            let mut written = note("only on the primary");
            s.add(&mut written)?;
            Ok(written.id.unwrap())
        })?;
        let first = mp.session()?.get::<NoteSeen>(id)?;
        let second = mp.session()?.get::<NoteSeen>(id)?;
        Ok::<_, odm::Error>((first, second))
    })
    .unwrap();
    for seen in [first, second] {
        let seen = seen.expect("the primary serves the read");
        assert!(!seen.in_recovery, "{seen:?}");
        assert_eq!(seen.body, "only on the primary");
    }
}

#[test]
fn a_mapper_without_replicas_reads_from_the_primary_when_told_to_read_from_replicas() {
    let db = odm::testing::test_database().unwrap();
    let mp = replica_reading_mapper(&db.url(), &[]);
    let seen = on_green(move || {
        let id = mp.begin(|s| {
            let mut written = note("no replicas");
            s.add(&mut written)?;
            Ok(written.id.unwrap())
        })?;
        mp.session()?.get::<NoteSeen>(id)
    })
    .unwrap()
    .expect("the primary serves the read");
    assert!(!seen.in_recovery, "{seen:?}");
}
