//! The green HTTP app ([`odm_bench::green_http`]) as a program:
//!
//! ```text
//! cargo run --release --example green_http                    # throwaway cluster, port 8080
//! PORT=9000 DATABASE_URL=postgresql://u:p@host/db cargo run --release --example green_http
//! cargo run --release --example green_http -- --port 9000 --connections 4 --workers 1024 \
//!     --database-url postgresql://...
//! ```

use odm_bench::green_http::start;

fn arg_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = arg_value(&args, "--port")
        .or_else(|| std::env::var("PORT").ok())
        .unwrap_or_else(|| "8080".into());
    let port: u16 = match port.parse() {
        Ok(p) => p,
        Err(_) => {
            eprintln!("green_http: invalid port `{port}`");
            std::process::exit(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let connections = match arg_value(&args, "--connections").map(|c| c.parse::<usize>()) {
        None => 2 * cores,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("green_http: --connections needs a positive integer");
            std::process::exit(2);
        }
    };
    let workers = match arg_value(&args, "--workers").map(|c| c.parse::<usize>()) {
        None => 1024,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("green_http: --workers needs a positive integer");
            std::process::exit(2);
        }
    };
    let given = arg_value(&args, "--database-url")
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| !u.trim().is_empty());
    // Keep the throwaway database alive for as long as the server runs.
    let (url, database) = match given {
        Some(url) => (url, None),
        None => {
            eprintln!("green_http: no DATABASE_URL, starting a throwaway cluster...");
            match odm::testing::test_database() {
                Ok(db) => (db.url(), Some(db)),
                Err(e) => {
                    eprintln!("green_http: {e}");
                    std::process::exit(1);
                }
            }
        }
    };
    let fresh = database.is_some();
    match start(
        &format!("0.0.0.0:{port}"),
        &url,
        connections,
        workers,
        fresh,
    ) {
        Ok(running) => {
            eprintln!(
                "green_http: listening on http://{} ({connections} database connections, \
                 {workers} green workers)",
                running.addr
            );
            let _ = running.server.join();
        }
        Err(e) => {
            eprintln!("green_http: {e}");
            std::process::exit(1);
        }
    }
}
