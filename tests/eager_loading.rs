//! Batched eager loading against a real server:
//! `s.query::<Owner>().with_related::<Pet>().all()` loads the children of
//! every owner in ONE more statement, with the owners' keys as one array
//! parameter. Statements are counted from the driver's `odm::sql` debug log,
//! captured by a test `log::Log`.

mod green_tasks;
mod orm_common;

use std::sync::{Mutex, OnceLock};

use log::{Log, Metadata, Record};
use odm::Mapper;
use orm_common::{green, Employee, Engineer, Task};

#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Owner {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(max_length = 40)]
    name: String,
}

#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Pet {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(max_length = 40)]
    name: String,
    #[odm(foreign_key = "owner.id", index)]
    owner_id: Option<i32>,
}

/// Models used only by the statement-counting test, so that no other test
/// of this binary logs the same SQL.
#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Shelter {
    #[odm(primary_key)]
    id: Option<i32>,
}

#[derive(odm::Model, Debug, Clone, Default, PartialEq)]
struct Cat {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(foreign_key = "shelter.id")]
    shelter_id: Option<i32>,
}

/// Keeps the SQL text of every `odm::sql` debug record.
struct StatementLog {
    messages: Mutex<Vec<String>>,
}

impl Log for StatementLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "odm::sql"
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.messages
                .lock()
                .unwrap()
                .push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn statement_log() -> &'static StatementLog {
    static LOG: OnceLock<&'static StatementLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static StatementLog = Box::leak(Box::new(StatementLog {
            messages: Mutex::new(Vec::new()),
        }));
        log::set_logger(log).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Debug);
        log
    })
}

/// The logged statements mentioning `needle`.
fn logged(needle: &str) -> Vec<String> {
    let messages = statement_log().messages.lock().unwrap();
    messages
        .iter()
        .filter(|m| m.contains(needle))
        .cloned()
        .collect()
}

/// A fresh database with every model of this file and pulsar-odm's.
fn mapper() -> (odm::testing::TestDatabase, Mapper) {
    let db = odm::testing::test_database().expect("test database");
    let mp = Mapper::new(&db.url()).expect("mapper");
    mp.register::<Owner>().unwrap();
    mp.register::<Pet>().unwrap();
    mp.register::<Shelter>().unwrap();
    mp.register::<Cat>().unwrap();
    mp.register::<Employee>().unwrap();
    mp.register::<Engineer>().unwrap();
    mp.register::<Task>().unwrap();
    let created = mp.clone();
    green(move || created.table_create()).expect("table_create");
    (db, mp)
}

#[test]
fn each_owner_comes_with_its_children_in_key_order_and_childless_owners_with_none() {
    let (_db, mp) = mapper();
    green(move || {
        mp.begin(|s| {
            let mut owners = Vec::new();
            for name in ["carol", "alice", "bob"] {
                let mut owner = Owner {
                    name: name.into(),
                    ..Owner::default()
                };
                s.add(&mut owner)?;
                owners.push(owner);
            }
            // interleaved, so that grouping (not insertion order) decides
            for (pet, owner) in [("rex", 1), ("tom", 0), ("fido", 1), ("kit", 0), ("bo", 1)] {
                s.add(&mut Pet {
                    name: pet.into(),
                    owner_id: owners[owner].id,
                    ..Pet::default()
                })?;
            }
            Ok(())
        })?;
        mp.begin(|s| {
            let loaded = s
                .query::<Owner>()
                .order_by(Owner::NAME.asc())
                .with_related::<Pet>()
                .all()?;
            let names: Vec<(&str, Vec<&str>)> = loaded
                .iter()
                .map(|(o, pets)| {
                    (
                        o.name.as_str(),
                        pets.iter().map(|p| p.name.as_str()).collect(),
                    )
                })
                .collect();
            assert_eq!(
                names,
                [
                    ("alice", vec!["rex", "fido", "bo"]),
                    ("bob", vec![]),
                    ("carol", vec!["tom", "kit"]),
                ]
            );
            for (owner, pets) in &loaded {
                assert!(pets.iter().all(|p| p.owner_id == owner.id));
                assert_eq!(pets, &s.related::<Pet>(owner)?, "as related() loads them");
            }
            // filters and limits apply to the owners
            let only = s
                .query::<Owner>()
                .filter(Owner::NAME.like("c%"))
                .with_related::<Pet>()
                .limit(5)
                .all()?;
            assert_eq!(only.len(), 1);
            assert_eq!(only[0].1.len(), 2);
            Ok(())
        })
    })
    .unwrap();
}

#[test]
fn the_children_of_any_number_of_owners_load_in_one_statement_with_one_array_parameter() {
    let (_db, mp) = mapper();
    statement_log();
    green(move || {
        mp.begin(|s| {
            for n in 0..300 {
                let mut shelter = Shelter::default();
                s.add(&mut shelter)?;
                if n % 3 != 0 {
                    s.add(&mut Cat {
                        shelter_id: shelter.id,
                        ..Cat::default()
                    })?;
                }
            }
            Ok(())
        })?;
        let needle = r#""cat"."shelter_id" = ANY($1)"#;
        assert!(logged(needle).is_empty());
        let few = mp.begin(|s| s.query::<Shelter>().limit(3).with_related::<Cat>().all())?;
        assert_eq!(few.len(), 3);
        let all = mp.begin(|s| s.query::<Shelter>().with_related::<Cat>().all())?;
        assert_eq!(all.len(), 300);
        assert_eq!(all.iter().map(|(_, cats)| cats.len()).sum::<usize>(), 200);
        let statements = logged(needle);
        assert_eq!(
            statements.len(),
            2,
            "one statement per load: {statements:#?}"
        );
        let sql = |m: &str| m[m.find("SELECT").expect("the SQL text")..].to_owned();
        assert_eq!(
            sql(&statements[0]),
            sql(&statements[1]),
            "the same text for 3 and for 300 owners"
        );
        Ok::<_, odm::Error>(())
    })
    .unwrap();
}

#[test]
fn an_inherited_owner_gets_the_children_pointing_at_its_parent_row() {
    let (_db, mp) = mapper();
    green(move || {
        mp.begin(|s| {
            let mut grace = Engineer {
                employee: Employee {
                    name: "grace".into(),
                    ..Employee::default()
                },
                engineer_name: Some("hopper".into()),
            };
            s.add(&mut grace)?;
            for subject in ["compile", "debug"] {
                s.add(&mut Task {
                    employee_id: grace.employee.id,
                    ..Task::new(subject)
                })?;
            }
            let loaded = s.query::<Engineer>().with_related::<Task>().all()?;
            assert_eq!(loaded.len(), 1);
            assert_eq!(loaded[0].0, grace);
            let mut subjects: Vec<&str> = loaded[0].1.iter().map(|t| t.subject.as_str()).collect();
            subjects.sort_unstable();
            assert_eq!(subjects, ["compile", "debug"]);
            Ok(())
        })
    })
    .unwrap();
}

#[test]
fn with_related_without_a_foreign_key_is_an_error_naming_both_models() {
    let (_db, mp) = mapper();
    green(move || {
        let err = mp
            .begin(|s| s.query::<Owner>().with_related::<Task>().all())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "model `Task` has no foreign key to `owner`"
        );
        let none = mp.begin(|s| s.query::<Owner>().with_related::<Pet>().all())?;
        assert!(none.is_empty(), "no owners, no second query");
        Ok::<_, odm::Error>(())
    })
    .unwrap();
}
