//! A job queue on PostgreSQL, the greenlet way: many green workers, each
//! running plain blocking code — take one job with
//! `SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1`, do it, mark it done, commit.
//! Workers never wait for each other's jobs and no job is taken twice.
//!
//! ```text
//! cargo run --example job_queue
//! ```
//!
//! Uses the server named by `DATABASE_URL` when set, otherwise starts a
//! throwaway PostgreSQL (`odm::testing::TempCluster`) and removes it at exit.
//! `tests/locking.rs` runs [`run_workers`] and checks every job was done
//! exactly once.

use green::GreenPool;
use odm::testing::TempCluster;
use odm::Mapper;

/// One job: done once a worker has taken it; `takes` counts how many times
/// it was taken (1 when the queue is right).
#[derive(odm::Model, Debug, Clone, Default)]
pub struct Job {
    #[odm(primary_key)]
    pub id: Option<i32>,
    #[odm(max_length = 100)]
    pub payload: String,
    #[odm(default = "false")]
    pub done: bool,
    /// The worker that did the job.
    pub worker: Option<i32>,
    #[odm(default = "0")]
    pub takes: i32,
}

/// Adds `count` pending jobs in one transaction.
pub fn enqueue(mp: &Mapper, count: usize) -> odm::Result<()> {
    mp.begin(|s| {
        for n in 0..count {
            s.add(&mut Job {
                payload: format!("job {n}"),
                ..Job::default()
            })?;
        }
        Ok(())
    })
}

/// Takes the oldest pending job no other worker holds, does it and marks it
/// done, in one transaction; `None` when no job is left to take.
pub fn take_one(mp: &Mapper, worker: i32) -> odm::Result<Option<i32>> {
    mp.begin(|s| {
        let job = s
            .query::<Job>()
            .filter(Job::DONE.eq(false))
            .order_by(Job::ID.asc())
            .for_update()
            .skip_locked()
            .first()?;
        let Some(mut job) = job else {
            return Ok(None);
        };
        // the work itself would go here, with the row locked
        job.done = true;
        job.worker = Some(worker);
        job.takes += 1;
        s.add(&mut job)?;
        Ok(job.id)
    })
}

/// Runs `workers` green workers until the queue is empty; returns the ids
/// of the jobs each worker did.
pub fn run_workers(pool: &GreenPool, mp: &Mapper, workers: usize) -> odm::Result<Vec<Vec<i32>>> {
    let handles = (0..workers)
        .map(|worker| {
            let mp = mp.clone();
            pool.submit(move || {
                let worker = i32::try_from(worker).unwrap_or(i32::MAX);
                let mut done = Vec::new();
                while let Some(id) = take_one(&mp, worker)? {
                    done.push(id);
                }
                Ok::<_, odm::Error>(done)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    handles.into_iter().map(|h| h.join()?).collect()
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
    mp.register::<Job>()?;
    let setup = mp.clone();
    pool.submit(move || {
        setup.table_create()?;
        enqueue(&setup, 500)
    })?
    .join()??;

    let done = run_workers(&pool, &mp, 50)?;
    let total: usize = done.iter().map(Vec::len).sum();
    let busy = done.iter().filter(|jobs| !jobs.is_empty()).count();
    println!("{total} jobs done by {busy} of {} workers", done.len());
    pool.shutdown();
    Ok(())
}
