//! The green HTTP app (`odm_bench::green_http`), served in-process on a
//! free port against a fresh test database, checked endpoint by endpoint
//! with a plain `std::net::TcpStream` client: status, `Content-Type`,
//! `Server`, `Date`, `Content-Length` and body.

use odm_bench::green_http as app;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use odm::pg::Client;
use odm::testing::{test_database, TestDatabase};

struct Served {
    port: u16,
    db: TestDatabase,
}

/// One server per test binary, started on first use.
fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let db = test_database().expect("a test database");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let running = app::start(&format!("127.0.0.1:{port}"), &db.url(), 4, 64, true)
            .expect("the app starts");
        // The accept loop runs until the test process exits.
        std::mem::forget(running);
        Served { port, db }
    })
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

/// Reads one response (status line, headers, `Content-Length` body).
fn read_response(reader: &mut BufReader<TcpStream>) -> HttpResponse {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("a status line");
    let mut parts = status_line.split_whitespace();
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a header line");
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("malformed header {line:?}"));
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no valid Content-Length in {headers:?}"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the whole body");
    HttpResponse {
        status,
        headers,
        body: String::from_utf8(body).expect("a UTF-8 body"),
    }
}

fn connect() -> BufReader<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", served().port)).expect("connect to the app");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("a read timeout");
    BufReader::new(stream)
}

fn send(reader: &mut BufReader<TcpStream>, path: &str) {
    write!(
        reader.get_mut(),
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .expect("send the request");
}

fn get(path: &str) -> HttpResponse {
    let mut reader = connect();
    send(&mut reader, path);
    let response = read_response(&mut reader);
    check_common_headers(&response);
    response
}

/// `Server` and `Date` on every response, and a `Content-Length` that
/// matches the body.
fn check_common_headers(response: &HttpResponse) {
    assert!(!response.header("Server").is_empty());
    let date = response.header("Date");
    // An IMF-fixdate: "Thu, 26 Nov 2026 14:25:00 GMT".
    assert_eq!(date.len(), 29, "Date {date:?}");
    assert!(date.ends_with(" GMT"), "Date {date:?}");
    assert_eq!(&date[3..5], ", ", "Date {date:?}");
    assert_eq!(
        response.header("Content-Length"),
        response.body.len().to_string()
    );
}

fn worlds(body: &str) -> Vec<(i32, i32)> {
    let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
    value
        .as_array()
        .unwrap_or_else(|| panic!("a JSON array: {body}"))
        .iter()
        .map(world)
        .collect()
}

fn world(value: &serde_json::Value) -> (i32, i32) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("a JSON object: {value}"));
    assert_eq!(object.len(), 2, "{value}");
    let id = object["id"].as_i64().expect("an integer id") as i32;
    let number = object["randomNumber"]
        .as_i64()
        .expect("an integer randomNumber") as i32;
    assert!((1..=10_000).contains(&id), "id {id}");
    assert!((1..=10_000).contains(&number), "randomNumber {number}");
    (id, number)
}

#[test]
fn json_answers_hello_world() {
    let response = get("/json");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("Content-Type"), "application/json");
    assert_eq!(response.body, r#"{"message":"Hello, World!"}"#);
}

#[test]
fn plaintext_answers_hello_world() {
    let response = get("/plaintext");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("Content-Type"), "text/plain");
    assert_eq!(response.body, "Hello, World!");
}

#[test]
fn db_answers_one_world_object() {
    let response = get("/db");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("Content-Type"), "application/json");
    let value: serde_json::Value = serde_json::from_str(&response.body).expect("JSON");
    world(&value);
}

#[test]
fn queries_answers_as_many_worlds_as_asked() {
    let response = get("/queries?queries=7");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("Content-Type"), "application/json");
    assert_eq!(worlds(&response.body).len(), 7);
}

#[test]
fn queries_clamps_the_count_to_one_and_five_hundred() {
    for (query, expected) in [
        ("?queries=0", 1),
        ("?queries=-5", 1),
        ("?queries=1", 1),
        ("?queries=500", 500),
        ("?queries=501", 500),
        ("?queries=100000", 500),
    ] {
        let response = get(&format!("/queries{query}"));
        assert_eq!(response.status, 200, "{query}: {}", response.body);
        assert_eq!(worlds(&response.body).len(), expected, "{query}");
    }
}

#[test]
fn queries_treats_a_missing_or_junk_count_as_one() {
    for query in [
        "",
        "?",
        "?queries=",
        "?queries=foo",
        "?queries=3x",
        "?queries=1.5",
        "?other=9",
    ] {
        let response = get(&format!("/queries{query}"));
        assert_eq!(response.status, 200, "{query}: {}", response.body);
        assert_eq!(worlds(&response.body).len(), 1, "{query}");
    }
}

/// The stored random numbers of these worlds, read with the driver.
fn stored_numbers(ids: Vec<i32>) -> HashMap<i32, i32> {
    let url = served().db.url();
    let green = green::GreenPool::with_max_workers(1);
    odm_bench::on_green(&green, move || {
        let client = Client::connect(&odm::pg::Config::parse(&url)?)?;
        let rows = client.query(
            "SELECT id, randomnumber FROM world WHERE id = ANY($1)",
            &[&ids],
        )?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<HashMap<i32, i32>, odm::Error>>()
    })
    .expect("read back the worlds")
}

/// Serializes the tests that update `world`, so that one cannot overwrite
/// the rows another reads back.
static UPDATES: Mutex<()> = Mutex::new(());

#[test]
fn updates_writes_the_new_random_numbers() {
    let _serial = UPDATES.lock().unwrap_or_else(|p| p.into_inner());
    let response = get("/updates?queries=12");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("Content-Type"), "application/json");
    let updated = worlds(&response.body);
    assert_eq!(updated.len(), 12);
    // A world drawn twice is written once, with either number: check the
    // worlds drawn once.
    let mut seen: HashMap<i32, usize> = HashMap::new();
    for (id, _) in &updated {
        *seen.entry(*id).or_default() += 1;
    }
    let stored = stored_numbers(updated.iter().map(|(id, _)| *id).collect());
    for (id, number) in &updated {
        if seen[id] == 1 {
            assert_eq!(stored.get(id), Some(number), "world {id}");
        }
    }
}

#[test]
fn updates_clamps_and_defaults_the_count() {
    let _serial = UPDATES.lock().unwrap_or_else(|p| p.into_inner());
    for (query, expected) in [
        ("", 1),
        ("?queries=junk", 1),
        ("?queries=0", 1),
        ("?queries=501", 500),
    ] {
        let response = get(&format!("/updates{query}"));
        assert_eq!(response.status, 200, "{query}: {}", response.body);
        assert_eq!(worlds(&response.body).len(), expected, "{query}");
    }
}

const FORTUNES_HTML: &str = concat!(
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>",
    "<tr><th>id</th><th>message</th></tr>",
    "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr>",
    "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>",
    "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>",
    "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#x27;t broken.</td></tr>",
    "<tr><td>8</td><td>A list is only as strong as its weakest link. \u{2014} Donald Knuth</td></tr>",
    "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>",
    "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>",
    "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>",
    "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>",
    "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \u{2014} Tom Christaensen</td></tr>",
    "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>",
    "<tr><td>1</td><td>fortune: No such file or directory</td></tr>",
    "<tr><td>12</td><td>\u{30d5}\u{30ec}\u{30fc}\u{30e0}\u{30ef}\u{30fc}\u{30af}\u{306e}\u{30d9}\u{30f3}\u{30c1}\u{30de}\u{30fc}\u{30af}</td></tr>",
    "</table></body></html>",
);

#[test]
fn fortunes_renders_the_escaped_sorted_table_with_the_extra_fortune() {
    let response = get("/fortunes");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("Content-Type"), "text/html; charset=utf-8");
    assert_eq!(response.body, FORTUNES_HTML);
    assert!(!response.body.contains("<script>"));
}

#[test]
fn an_unknown_path_is_not_found() {
    let response = get("/nope");
    assert_eq!(response.status, 404);
    assert_eq!(response.body, "not found");
}

#[test]
fn one_connection_serves_many_requests_in_order() {
    let mut reader = connect();
    for path in [
        "/json",
        "/db",
        "/plaintext",
        "/queries?queries=3",
        "/fortunes",
    ] {
        send(&mut reader, path);
    }
    let responses: Vec<HttpResponse> = (0..5).map(|_| read_response(&mut reader)).collect();
    for response in &responses {
        assert_eq!(response.status, 200, "{}", response.body);
        check_common_headers(response);
    }
    assert_eq!(responses[0].body, r#"{"message":"Hello, World!"}"#);
    assert_eq!(responses[2].body, "Hello, World!");
    assert_eq!(worlds(&responses[3].body).len(), 3);
    assert_eq!(responses[4].body, FORTUNES_HTML);
}

#[test]
fn concurrent_clients_all_get_their_worlds() {
    let threads: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(|| {
                let mut reader = connect();
                for _ in 0..20 {
                    send(&mut reader, "/queries?queries=5");
                    let response = read_response(&mut reader);
                    assert_eq!(response.status, 200, "{}", response.body);
                    assert_eq!(worlds(&response.body).len(), 5);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client thread");
    }
}

#[test]
fn starting_with_a_malformed_url_is_a_configuration_error() {
    let error = app::start("127.0.0.1:0", "mysql://nowhere", 1, 1, false).unwrap_err();
    assert!(error.starts_with("invalid configuration"), "{error}");
}

#[test]
fn starting_against_a_missing_database_names_it() {
    let url = served().db.url();
    let missing = odm::pg::Config::parse(&url)
        .expect("the test URL parses")
        .with_dbname("odm_no_such_database")
        .to_url();
    let error = app::start("127.0.0.1:0", &missing, 1, 1, false).unwrap_err();
    assert!(
        error.contains("odm_no_such_database") && error.contains("does not exist"),
        "{error}"
    );
}
