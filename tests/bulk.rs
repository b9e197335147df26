//! Bulk work against a real server: `add_all` (multi-row inserts reading
//! keys and defaults back), `#[odm(default_fn)]`, and streaming a query
//! through a server-side cursor in bounded memory, polymorphic loading.

mod green_tasks;
mod orm_common;

use std::sync::atomic::{AtomicI64, Ordering};

use odm::{Error, Mapper};
use orm_common::{green, mapper_with_models, test_database, Employee, Engineer, Task};
use uuid::Uuid;

static NEXT_TICKET: AtomicI64 = AtomicI64::new(1);

fn next_ticket() -> i64 {
    NEXT_TICKET.fetch_add(1, Ordering::Relaxed)
}

/// A model whose unset fields are filled by client-side functions.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Ticket {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(default_fn = "next_ticket")]
    number: Option<i64>,
    #[odm(default_fn = "uuid::Uuid::new_v4")]
    token: Option<Uuid>,
    #[odm(default = "'new'")]
    state: Option<String>,
}

/// A wide-ish row for the streaming test (about 150 bytes on disk).
#[derive(odm::Model, Debug, Clone, Default)]
struct Reading {
    #[odm(primary_key)]
    id: i64,
    payload: String,
}

/// A second kind of employee, beside `Engineer`.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Manager {
    #[odm(parent)]
    employee: Employee,
    reports: Option<i32>,
}

odm::polymorphic! {
    /// Every employee as what it is.
    #[derive(Debug, PartialEq)]
    enum Staff: Employee {
        Engineer(Engineer),
        Manager(Manager),
    }
}

fn employee(name: &str) -> Employee {
    Employee {
        name: name.into(),
        ..Default::default()
    }
}

fn mapper_with(register: impl FnOnce(&Mapper)) -> (odm::testing::TestDatabase, Mapper) {
    let db = test_database().expect("test database");
    let mp = Mapper::new(&orm_common::database_url(&db)).expect("mapper");
    register(&mp);
    let created = mp.clone();
    green(move || created.table_create()).expect("table_create");
    (db, mp)
}

/// The client's resident memory in bytes (`/proc/self/statm`, 4 KiB pages).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[test]
fn add_all_reads_generated_keys_and_server_defaults_back_in_order() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        // 2,500 employees: three statements (1,000 rows at most each)
        let mut staff: Vec<Employee> = (0..2_500).map(|i| employee(&format!("e{i}"))).collect();
        let mut tasks: Vec<Task> = (0..10).map(|i| Task::new(&format!("t{i}"))).collect();
        mp.begin(|s| {
            s.add_all(&mut staff)?;
            s.add_all(&mut tasks)
        })
        .unwrap();
        let ids: Vec<i32> = staff.iter().map(|e| e.id.expect("id read back")).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids follow input order"
        );
        let stored = mp
            .begin(|s| s.query::<Employee>().order_by(Employee::ID.asc()).all())
            .unwrap();
        assert_eq!(stored, staff);
        assert!(tasks.iter().all(|t| t.created.is_some() && !t.done));
        let stored = mp.begin(|s| s.get::<Task>(tasks[3].id)).unwrap();
        assert_eq!(stored.as_ref(), Some(&tasks[3]));
    });
}

#[test]
fn add_all_writes_the_parent_rows_of_child_models_first() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut engineers: Vec<Engineer> = (0..5)
            .map(|i| Engineer {
                employee: employee(&format!("eng{i}")),
                engineer_name: Some(format!("handle{i}")),
            })
            .collect();
        mp.begin(|s| s.add_all(&mut engineers)).unwrap();
        assert!(engineers.iter().all(|e| e.employee.id.is_some()));
        let stored = mp
            .begin(|s| s.query::<Engineer>().order_by(Employee::ID.asc()).all())
            .unwrap();
        assert_eq!(stored, engineers);
    });
}

#[test]
fn add_all_updates_objects_whose_key_exists_already() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut staff = vec![employee("ann"), employee("bob")];
        mp.begin(|s| s.add_all(&mut staff)).unwrap();
        staff[0].name = "ann (renamed)".into();
        let mut again = vec![staff[0].clone(), employee("cid"), staff[1].clone()];
        mp.begin(|s| s.add_all(&mut again)).unwrap();
        let names: Vec<String> = mp
            .begin(|s| s.query::<Employee>().order_by(Employee::ID.asc()).all())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["ann (renamed)", "bob", "cid"]);
        assert_eq!(again[1].id.map(|id| id > staff[1].id.unwrap()), Some(true));
    });
}

#[test]
fn an_invalid_choice_fails_add_all_before_anything_is_written() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut bad = employee("x");
        bad.sex = Some("neither".into());
        let mut staff = vec![employee("ok"), bad];
        let err = mp.begin(|s| s.add_all(&mut staff)).unwrap_err();
        assert!(matches!(err, Error::InvalidChoice { .. }), "{err:?}");
        assert_eq!(mp.begin(|s| s.query::<Employee>().count()).unwrap(), 0);
        assert!(staff[0].id.is_none());
    });
}

#[test]
fn a_default_fn_fills_unset_fields_once_per_object_on_add_and_add_all() {
    let (_db, mp) = mapper_with(|mp| mp.register::<Ticket>().unwrap());
    green(move || {
        let preset = Uuid::new_v4();
        let mut one = Ticket::default();
        let mut many = vec![
            Ticket::default(),
            Ticket {
                token: Some(preset),
                number: Some(-1),
                ..Default::default()
            },
            Ticket::default(),
        ];
        mp.begin(|s| {
            s.add(&mut one)?;
            s.add_all(&mut many)
        })
        .unwrap();
        assert!(one.number.is_some() && one.token.is_some());
        assert_eq!(
            one.state.as_deref(),
            Some("new"),
            "server defaults still apply"
        );
        assert_eq!((many[1].token, many[1].number), (Some(preset), Some(-1)));
        let mut numbers: Vec<i64> = std::iter::once(&one)
            .chain(&many)
            .map(|t| t.number.unwrap())
            .collect();
        numbers.dedup();
        assert_eq!(
            numbers.len(),
            4,
            "each object got its own value: {numbers:?}"
        );
        assert_ne!(many[0].token, many[2].token);
        let stored = mp
            .begin(|s| s.query::<Ticket>().order_by(Ticket::ID.asc()).all())
            .unwrap();
        assert_eq!(stored[1..], many[..]);
    });
}

#[test]
fn a_query_iterator_yields_what_all_returns_in_batches_of_fetch_size() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut staff: Vec<Employee> = (0..25).map(|i| employee(&format!("e{i:02}"))).collect();
        let mut tasks: Vec<Task> = (0..7).map(|i| Task::new(&format!("t{i}"))).collect();
        mp.begin(|s| {
            s.add_all(&mut staff)?;
            s.add_all(&mut tasks)
        })
        .unwrap();
        mp.begin(|s| {
            let filter = || Employee::NAME.like("e1%");
            let all = s
                .query::<Employee>()
                .filter(filter())
                .order_by(Employee::ID.desc())
                .all()?;
            let streamed: Vec<Employee> = s
                .query::<Employee>()
                .filter(filter())
                .order_by(Employee::ID.desc())
                .iter()?
                .fetch_size(3)
                .collect::<odm::Result<_>>()?;
            assert_eq!(streamed, all);
            assert_eq!(all.len(), 10);
            // another model on the same connection: its own cursor and columns
            let streamed: Vec<Task> = s.query::<Task>().iter()?.collect::<odm::Result<_>>()?;
            assert_eq!(streamed.len(), 7);
            let exact: Vec<Employee> = s
                .query::<Employee>()
                .iter()?
                .fetch_size(25)
                .collect::<odm::Result<_>>()?;
            assert_eq!(exact.len(), 25);
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn dropping_a_query_iterator_early_leaves_the_session_usable() {
    let (_db, mp) = mapper_with_models();
    green(move || {
        let mut staff: Vec<Employee> = (0..10).map(|i| employee(&format!("e{i}"))).collect();
        mp.begin(|s| s.add_all(&mut staff)).unwrap();
        let mut s = mp.session().unwrap();
        let first_three: Vec<Employee> = s
            .query::<Employee>()
            .order_by(Employee::ID.asc())
            .iter()
            .unwrap()
            .fetch_size(2)
            .take(3)
            .collect::<odm::Result<_>>()
            .unwrap();
        assert_eq!(first_three, staff[..3]);
        // the same query again: its cursor was closed, so it can be declared anew
        let again = s
            .query::<Employee>()
            .order_by(Employee::ID.asc())
            .iter()
            .unwrap();
        assert_eq!(again.count(), 10);
        s.add(&mut employee("after")).unwrap();
        s.commit().unwrap();
        assert_eq!(mp.begin(|s| s.query::<Employee>().count()).unwrap(), 11);
    });
}

#[test]
fn iterating_a_query_streams_a_million_rows_in_bounded_memory() {
    const ROWS: i64 = 1_000_000;
    let (_db, mp) = mapper_with(|mp| mp.register::<Reading>().unwrap());
    green(move || {
        let table_bytes: i64 = mp
            .begin(|s| {
                s.execute(
                    "INSERT INTO reading (id, payload) \
                     SELECT g, repeat('x', 100) || g FROM generate_series(1, $1::bigint) g",
                    &[&ROWS],
                )?;
                Ok(
                    s.query_raw("SELECT pg_total_relation_size('reading')", &[])?[0]
                        .try_get(0usize)?,
                )
            })
            .unwrap();
        assert!(table_bytes > 100 << 20, "the table is {table_bytes} bytes");
        let mut s = mp.session().unwrap();
        let before = resident_bytes();
        let mut peak = before;
        let (mut count, mut id_sum) = (0i64, 0i64);
        for reading in s.query::<Reading>().iter().unwrap() {
            let reading = reading.unwrap();
            count += 1;
            id_sum += reading.id;
            assert!(reading.payload.ends_with(&reading.id.to_string()));
            if count % 10_000 == 0 {
                peak = peak.max(resident_bytes());
            }
        }
        assert_eq!((count, id_sum), (ROWS, ROWS * (ROWS + 1) / 2));
        let growth = peak.saturating_sub(before);
        eprintln!(
            "streamed {count} rows of a {table_bytes}-byte table; resident growth {growth} bytes"
        );
        assert!(growth < 64 << 20, "resident memory grew by {growth} bytes");
        s.commit().unwrap();
    });
}

#[test]
fn a_polymorphic_query_on_the_base_returns_each_row_as_its_kind_in_order() {
    let (_db, mp) = mapper_with(|mp| {
        mp.register::<Employee>().unwrap();
        mp.register::<Engineer>().unwrap();
        mp.register::<Manager>().unwrap();
    });
    green(move || {
        let mut plain = vec![employee("a plain"), employee("d plain")];
        let mut engineers = vec![Engineer {
            employee: employee("b engineer"),
            engineer_name: Some("rustacean".into()),
        }];
        let mut managers = vec![Manager {
            employee: employee("c manager"),
            reports: Some(3),
        }];
        mp.begin(|s| {
            s.add_all(&mut plain)?;
            s.add_all(&mut engineers)?;
            s.add_all(&mut managers)
        })
        .unwrap();
        let staff = mp
            .begin(|s| {
                s.query::<Employee>()
                    .order_by(Employee::NAME.asc())
                    .polymorphic::<Staff>()
            })
            .unwrap();
        assert_eq!(
            staff,
            [
                Staff::Employee(plain[0].clone()),
                Staff::Engineer(engineers[0].clone()),
                Staff::Manager(managers[0].clone()),
                Staff::Employee(plain[1].clone()),
            ]
        );
        let filtered = mp
            .begin(|s| {
                s.query::<Employee>()
                    .filter(Employee::NAME.like("%engineer"))
                    .polymorphic::<Staff>()
            })
            .unwrap();
        assert_eq!(filtered, [Staff::Engineer(engineers[0].clone())]);
    });
}
