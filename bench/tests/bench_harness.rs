//! The benchmark's building blocks (the `odm-bench` crate): the latency
//! histogram, the batched update statement, workload parsing, resident
//! memory parsing, and the workloads, pgbench and the bulk section run
//! against a real server.

use odm_bench::{args, bulk, measure, odm_raw, on_green, peers, pgbench, scale, schema, workload};

use std::time::Duration;

use green::GreenPool;
use odm::pg::{Client, Config, Host};
use odm::testing::{find_server_bin_dir, test_database};

use measure::{Cell, Histogram};
use odm_raw::RawExecutor;
use workload::{Rng, Workload, World};

#[test]
fn histogram_quantiles_are_within_a_few_percent() {
    let mut histogram = Histogram::new();
    assert_eq!(histogram.quantile(0.5), None);
    for micros in 1..=10_000u64 {
        histogram.record(Duration::from_micros(micros));
    }
    let p50 = histogram.quantile(0.50).unwrap().as_micros() as f64;
    let p99 = histogram.quantile(0.99).unwrap().as_micros() as f64;
    assert!((p50 / 5_000.0 - 1.0).abs() < 0.04, "p50 {p50}");
    assert!((p99 / 9_900.0 - 1.0).abs() < 0.04, "p99 {p99}");
    let mut other = Histogram::new();
    other.record_micros_n(3, 10);
    histogram.merge(&other);
    assert_eq!(histogram.quantile(0.0), Some(Duration::from_micros(1)));
}

#[test]
fn the_batched_update_pairs_parameters_sorted_by_id() {
    assert_eq!(
        workload::update_sql(2),
        "UPDATE world SET randomnumber = v.r FROM (VALUES ($1::int, $2::int), ($3::int, $4::int)) \
         AS v (id, r) WHERE world.id = v.id"
    );
    let worlds = [
        World {
            id: 9,
            randomnumber: 1,
        },
        World {
            id: 2,
            randomnumber: 7,
        },
    ];
    assert_eq!(workload::update_params(&worlds), vec![2, 7, 9, 1]);
}

#[test]
fn workload_lists_parse_and_unknown_names_are_named() {
    assert_eq!(Workload::parse_list("all").unwrap(), Workload::ALL.to_vec());
    assert_eq!(
        Workload::parse_list("db, fortunes").unwrap(),
        vec![Workload::Db, Workload::Fortunes]
    );
    assert_eq!(
        Workload::parse_list("db,nope").unwrap_err(),
        "unknown workload `nope` (expected db, queries, updates, fortunes)"
    );
    assert_eq!(Workload::parse_list(",").unwrap_err(), "no workload given");
}

#[test]
fn resident_memory_is_read_from_proc_status() {
    assert_eq!(
        scale::parse_vm_rss("Name:\tx\nVmRSS:\t   1234 kB\nVmData: 1 kB\n"),
        Some(1234)
    );
    assert_eq!(scale::parse_vm_rss("Name:\tx\n"), None);
    assert!(scale::rss_kib().unwrap() > 0);
}

#[test]
fn every_workload_runs_and_checks_its_answers_on_a_real_server() {
    let db = test_database().unwrap();
    let config = Config::parse(&db.url()).unwrap();
    let green = GreenPool::with_max_workers(2);
    let ran = on_green(&green, move || {
        let setup = Client::connect(&config)?;
        schema::create(|sql| setup.batch_execute(sql))?;
        let executor = RawExecutor::connect(&config)?;
        let mut rng = Rng::new(7);
        let mut statements = Vec::new();
        for workload in Workload::ALL {
            let ran = workload::request(workload, &mut rng, &mut |op| executor.exec(op))
                .map_err(|e| odm::Error::Protocol(e.to_string()))?;
            statements.push(ran);
        }
        let fortunes = workload::fortunes(&mut |op| executor.exec(op))
            .map_err(|e| odm::Error::Protocol(e.to_string()))?;
        Ok::<_, odm::Error>((statements, fortunes))
    })
    .unwrap();
    assert_eq!(ran.0, vec![1, 20, 21, 1]);
    let messages: Vec<&str> = ran.1.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(messages.len(), 13);
    assert!(messages.windows(2).all(|w| w[0] <= w[1]), "{messages:?}");
    assert!(messages.contains(&workload::EXTRA_FORTUNE));
}

#[test]
fn pgbench_runs_the_same_statements_and_reports_queries_per_second() {
    let db = test_database().unwrap();
    let config = Config::parse(&db.url()).unwrap();
    let setup_config = config.clone();
    on_green(&GreenPool::with_max_workers(1), move || {
        let setup = Client::connect(&setup_config)?;
        Ok(schema::create(|sql| setup.batch_execute(sql))?)
    })
    .unwrap();
    let target = peers::Target {
        host: match config.host() {
            Host::Tcp(host) => host.clone(),
            Host::Unix(dir) => dir.display().to_string(),
        },
        port: config.port(),
        user: config.user().to_owned(),
        password: config.password().map(String::from),
        dbname: config.dbname().to_owned(),
        max_connections: 100,
    };
    let scratch = std::env::temp_dir().join(format!("odm-bench-test-{}", std::process::id()));
    let pgbench = pgbench::Pgbench::new(
        find_server_bin_dir().unwrap().join("pgbench"),
        scratch.clone(),
        target,
    )
    .unwrap();
    for (workload, pipeline) in [(Workload::Updates, false), (Workload::Queries, true)] {
        let cell = Cell {
            contender: "pgbench".into(),
            workload,
            level: 2,
            position: (1, 1),
        };
        let measured = pgbench
            .run(&cell, pipeline, Duration::from_secs(1))
            .unwrap();
        assert_eq!(measured.errors, 0, "{:?}", measured.first_error);
        assert!(measured.requests > 0);
        assert_eq!(
            measured.queries,
            measured.requests * workload.queries_per_request()
        );
        assert!(measured.qps() > 0.0);
    }
    let _ = std::fs::remove_dir_all(scratch);
}

fn parse(flags: &str) -> Result<args::Args, String> {
    args::Args::parse(flags.split_whitespace().map(String::from))
}

fn measurement(qps: f64) -> measure::Measurement {
    measure::Measurement {
        contender: "odm-raw".into(),
        workload: Workload::Db,
        level: 256,
        setup: String::new(),
        requests: qps as u64,
        queries: qps as u64,
        errors: 0,
        first_error: None,
        elapsed: Duration::from_secs(1),
        cpu: Duration::ZERO,
        latency: Histogram::new(),
        connections: Some(2),
        repeats: Vec::new(),
    }
}

#[test]
fn repeats_report_the_median_run_its_spread_and_throughput_per_connection() {
    let runs = vec![measurement(900.0), measurement(1000.0), measurement(1100.0)];
    let median = measure::Measurement::median_of(runs).unwrap();
    assert_eq!(median.qps(), 1000.0);
    assert_eq!(median.repeats, vec![900.0, 1000.0, 1100.0]);
    assert!((median.spread().unwrap() - 0.2).abs() < 1e-9);
    assert_eq!(median.qps_per_connection(), Some(500.0));
    let single = measure::Measurement::median_of(vec![measurement(10.0)]).unwrap();
    assert_eq!(single.spread(), None);
    assert!(measure::Measurement::median_of(Vec::new()).is_none());
}

#[test]
fn the_command_line_has_defaults_and_takes_every_flag() {
    let defaults = parse("").unwrap();
    assert_eq!(defaults.levels, vec![1, 16, 256, 1024]);
    assert_eq!(defaults.workloads, Workload::ALL.to_vec());
    assert_eq!(defaults.contenders.len(), args::CONTENDERS.len());
    assert_eq!(defaults.scale, None);
    let given = parse(
        "--workloads db --levels 8,64 --duration 1.5 --warmup 0 --contenders odm-raw,pgbench \
         --connections 3 --orm-connections 5 --repeats 3 --scale --scale-pool 2",
    )
    .unwrap();
    assert_eq!(given.workloads, vec![Workload::Db]);
    assert_eq!(given.levels, vec![8, 64]);
    assert_eq!(given.duration, Duration::from_millis(1500));
    assert_eq!(given.warmup, Duration::ZERO);
    assert_eq!(given.contenders, vec!["odm-raw", "pgbench"]);
    assert_eq!((given.connections, given.orm_connections), (3, 5));
    assert_eq!((defaults.repeats, given.repeats), (1, 3));
    assert_eq!((given.scale, given.scale_pool), (Some(10_000), 2));
    assert_eq!(parse("--scale 500").unwrap().scale, Some(500));
    assert_eq!(defaults.orm_max_shared, None);
    assert_eq!(parse("--orm-max-shared 2").unwrap().orm_max_shared, Some(2));
    assert!(parse("--orm-max-shared 0").is_err());
    assert_eq!(
        (defaults.bulk, defaults.bulk_stream_rows),
        (None, 1_000_000)
    );
    assert!(!defaults.no_matrix);
    let bulk = parse("--bulk --no-matrix --bulk-stream-rows 5000").unwrap();
    assert_eq!((bulk.bulk, bulk.bulk_stream_rows), (Some(100_000), 5000));
    assert!(bulk.no_matrix);
    assert_eq!(parse("--bulk 300").unwrap().bulk, Some(300));
}

#[test]
fn the_bulk_section_writes_and_reads_every_row_with_each_contender() {
    let db = test_database().unwrap();
    let config = Config::parse(&db.url()).unwrap();
    let green = GreenPool::with_max_workers(2);
    let rows = bulk::run(&green, &config, 250, 2_000, 2).unwrap();
    let names: Vec<(&str, &str, usize)> = rows
        .iter()
        .map(|r| (r.operation, r.contender, r.rows))
        .collect();
    assert_eq!(
        names,
        [
            ("insert", "odm-orm", 25),
            ("insert", "odm-orm-add_all-100", 250),
            ("insert", "odm-orm-add_all", 250),
            ("insert", "odm-raw-copy", 250),
            ("stream", "odm-orm-iter", 2_000),
            ("stream", "odm-orm-all", 2_000),
        ]
    );
    for row in &rows {
        assert_eq!(row.rounds.len(), 2, "{row:?}");
        assert!(row.rows_per_second() > 0.0, "{row:?}");
        assert_eq!(row.rss_growth_kib.is_some(), row.operation == "stream");
    }
    let table = bulk::table(&rows);
    assert!(
        table.contains("| insert | odm-orm-add_all | 250 |"),
        "{table}"
    );
    assert_eq!(bulk::json(&rows).as_array().map(Vec::len), Some(6));
    let dropped = on_green(&green, move || {
        let client = Client::connect(&config)?;
        let row = client.query_one("SELECT to_regclass('bulk_item') IS NULL", &[])?;
        Ok(row.try_get::<_, bool>(0)?)
    })
    .unwrap();
    assert!(dropped, "the bulk table is dropped at the end");
}

#[test]
fn bad_flags_are_refused_with_a_message_naming_them() {
    assert_eq!(parse("--fast").unwrap_err(), "unknown flag `--fast`");
    assert_eq!(parse("--levels").unwrap_err(), "--levels needs a value");
    assert_eq!(
        parse("--levels 1,x").unwrap_err(),
        "--levels: `x` is not a positive integer"
    );
    assert_eq!(
        parse("--duration -1").unwrap_err(),
        "--duration: `-1` is not a positive number of seconds"
    );
    assert_eq!(
        parse("--contenders odm,pgbench").unwrap_err(),
        "--contenders: unknown contender `odm` (expected one of pgbench, pgbench-pipe, \
         odm-raw, odm-raw-tls, odm-pool, odm-pool-nocache, odm-pool-pgbouncer, odm-orm, \
         odm-orm-commit-with, odm-orm-autocommit, odm-orm-batch, tokio-postgres, postgres-sync)"
    );
    assert_eq!(
        parse("--bulk-stream-rows 0").unwrap_err(),
        "--bulk-stream-rows: `0` is not a positive integer"
    );
    assert_eq!(
        parse("--workloads plaintext").unwrap_err(),
        "unknown workload `plaintext` (expected db, queries, updates, fortunes)"
    );
    assert_eq!(parse("--help").unwrap_err(), "help");
}
