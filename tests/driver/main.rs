//! Integration tests of the coroutine PostgreSQL driver (`odm::pg`), each on
//! a fresh database of the test server, grouped by area.

mod concurrency;
mod connecting;
mod copy;
mod server_errors;
mod statement_cache;
mod transactions_and_notifications;
mod types;
mod unnamed_statements;

use std::sync::{Arc, Once};

use odm::pg::Error;
use odm::pg::{Client, Config};

use odm::testing::test_database;

/// Runs `f` on a coroutine of the `may` scheduler (two worker threads) and
/// returns its result, re-raising its panic.
fn on_coroutine<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match go(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Spawns a coroutine on the `may` scheduler, configured once for two
/// worker threads.
fn go<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> may::coroutine::JoinHandle<T> {
    static CONFIGURE: Once = Once::new();
    CONFIGURE.call_once(|| {
        may::config().set_workers(2).set_stack_size(0x8000);
    });
    // yield before ending: dodges may's Park-drop livelock (green/src/pool.rs)
    may::go!(move || {
        let value = f();
        may::coroutine::yield_now();
        value
    })
}

/// A fresh database and a connection to it, on a coroutine.
fn with_client<T: Send + 'static>(f: impl FnOnce(Client, &str) -> T + Send + 'static) -> T {
    let db = test_database().unwrap();
    let url = db.url();
    let out = on_coroutine(move || {
        let client = Client::connect(&Config::parse(&url).unwrap()).unwrap();
        f(client, &url)
    });
    drop(db);
    out
}

fn connect(url: &str) -> Client {
    Client::connect(&Config::parse(url).unwrap()).unwrap()
}

fn connect_error(url: String) -> Error {
    on_coroutine(move || Client::connect(&Config::parse(&url).unwrap()).unwrap_err())
}

/// A fake server on 127.0.0.1 that runs `serve` for each accepted socket
/// on a plain thread; returns its port.
fn fake_server(serve: impl Fn(usize, std::net::TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let serve = serve.clone();
            std::thread::spawn(move || serve(n, stream));
        }
    });
    port
}

#[test]
fn client_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
    assert_send_sync::<odm::pg::Statement>();
    assert_send_sync::<odm::pg::Row>();
    assert_send_sync::<odm::pg::CancelToken>();
}
