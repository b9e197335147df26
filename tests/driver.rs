//! Integration tests of the coroutine PostgreSQL driver (`odm::pg`).

use odm::pg::{Client, Config};

const URL: &str = "postgresql://odm:odmtest@127.0.0.1:54329/postgres";

fn on_coroutine<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    may::config().set_workers(2).set_stack_size(0x8000);
    match may::go!(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn smoke() {
    on_coroutine(|| {
        let config = Config::parse(URL).unwrap();
        let client = Client::connect(&config).unwrap();
        client.batch_execute("SELECT 1").unwrap();
        let rows = client
            .query("SELECT $1::int4 + 1 AS x, 'hi'::text AS t", &[&41i32])
            .unwrap();
        let x: i32 = rows[0].get("x");
        let t: &str = rows[0].get(1);
        assert_eq!((x, t), (42, "hi"));
        let e = client.query("SELEC 1", &[]).unwrap_err();
        assert_eq!(e.code(), Some("42601"));
        let n: i64 = client
            .query_one("SELECT count(*) FROM generate_series(1, 10)", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 10);
    });
}
