//! pulsar-odm's README example in Rust: a `Task` model, a green pool,
//! `register`, `table_create`, `begin` + `add`, print the task.
//!
//! ```text
//! cargo run --release --example readme
//! ```
//!
//! Uses the server named by `DATABASE_URL` when set, otherwise starts a
//! throwaway PostgreSQL (`odm::testing::TempCluster`) and removes it at exit.

use std::fmt;

use chrono::NaiveDateTime;
use green::GreenPool;
use odm::testing::TempCluster;
use odm::Mapper;

#[derive(odm::Model, Debug, Clone, Default)]
struct Task {
    #[odm(primary_key)]
    id: Option<i32>,
    #[odm(max_length = 250)]
    subject: String,
    #[odm(default = "false")]
    done: bool,
    #[odm(default = "now()")]
    created: Option<NaiveDateTime>,
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "{id}: {}", self.subject),
            None => write!(f, "(unsaved): {}", self.subject),
        }
    }
}

/// Plain synchronous code: it blocks on the database, and on a green worker
/// every such wait parks the coroutine instead of the thread.
fn example(mp: &Mapper) -> odm::Result<Task> {
    // Make sure the table is available
    mp.table_create()?;
    // Insert a new task in the table
    mp.begin(|session| {
        let mut task = Task {
            subject: "my task".into(),
            ..Default::default()
        };
        session.add(&mut task)?;
        Ok(task)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // DATABASE_URL, or a throwaway server kept alive until the end of main
    let (url, _cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let cluster = TempCluster::start()?;
            (cluster.url(), Some(cluster))
        }
    };

    let pool = GreenPool::new();
    let mp = Mapper::new(&url)?;
    mp.register::<Task>()?;

    let on_pool = mp.clone();
    let task = pool.submit(move || example(&on_pool))?.join()??;
    println!("{task}");
    println!("{task:?}");

    // The same function called from main (not a green worker) is refused at
    // once, before anything is sent or blocked.
    match example(&mp) {
        Ok(_) => return Err("expected the call from main to be refused".into()),
        Err(e) => println!("called from main: {e}"),
    }
    pool.shutdown();
    Ok(())
}
