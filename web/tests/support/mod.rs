//! What both web examples' tests share: a small HTTP/1.1 client over
//! `std::net::TcpStream` (keep-alive, `Content-Length` bodies), the
//! endpoint-by-endpoint checks, and the bounded load.
#![allow(dead_code)] // each test binary uses a part

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A free local port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body ({e}): {:?}", self.body))
    }

    /// A header's value, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A keep-alive connection to the server on `port`.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects, retrying for up to 10 s while the server starts.
    pub fn connect(port: u16) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot connect to port {port}: {e}"),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// Sends `method path` with an optional raw body and reads the reply.
    pub fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let body = body.unwrap_or("");
        write!(
            self.reader.get_mut(),
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send the request");
        self.read_reply()
    }

    /// Sends `value` as JSON.
    pub fn send_json(&mut self, method: &str, path: &str, value: &Value) -> Reply {
        self.send(method, path, Some(&value.to_string()))
    }

    fn read_reply(&mut self) -> Reply {
        let mut status_line = String::new();
        self.reader
            .read_line(&mut status_line)
            .expect("a status line");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {status_line:?}"));
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("a header line");
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header");
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Content-Length in {headers:?}"));
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("the body");
        Reply {
            status,
            headers,
            body: String::from_utf8(body).expect("a UTF-8 body"),
        }
    }
}

/// Every endpoint once, with its errors: what both examples answer alike.
pub fn check_endpoints(port: u16) {
    let mut c = Client::connect(port);
    let created = c.send_json(
        "POST",
        "/todos",
        &json!({"title": "write docs", "tags": ["doc", "rust"]}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let todo = created.json();
    assert_eq!(todo["title"], "write docs");
    assert_eq!(todo["priority"], 3, "the default priority");
    assert_eq!(todo["done"], false, "the server default read back");
    let id = todo["id"].as_i64().expect("an id");
    assert!(created
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));

    let read = c.send("GET", &format!("/todos/{id}"), None);
    assert_eq!((read.status, read.json()), (200, todo.clone()));

    let changed = c.send_json(
        "PATCH",
        &format!("/todos/{id}"),
        &json!({"done": true, "priority": 1}),
    );
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(
        (
            changed.json()["done"].clone(),
            changed.json()["priority"].clone()
        ),
        (json!(true), json!(1))
    );

    let other = c.send_json(
        "POST",
        "/todos",
        &json!({"title": "ünïcødé ✓", "priority": 5}),
    );
    assert_eq!(other.status, 201, "{other:?}");
    let tagged = c.send("GET", "/todos?tag=rust", None);
    assert_eq!(tagged.status, 200);
    let ids: Vec<i64> = tagged
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert!(
        ids.contains(&id) && !ids.contains(&other.json()["id"].as_i64().unwrap()),
        "{ids:?}"
    );
    let encoded = c.send("GET", "/todos?tag=no%20such+tag", None);
    assert_eq!((encoded.status, encoded.json()), (200, json!([])));

    // validation errors are 4xx with a JSON reason, never 500
    let invalid = c.send_json("POST", "/todos", &json!({"title": " ", "priority": 9}));
    assert_eq!(invalid.status, 422, "{invalid:?}");
    let fields = &invalid.json()["fields"];
    assert!(
        fields["title"].is_string() && fields["priority"].is_string(),
        "{fields}"
    );
    let long = c.send_json("POST", "/todos", &json!({"title": "x".repeat(201)}));
    assert_eq!(long.status, 422);
    for (body, why) in [
        ("{not json", "syntax"),
        ("{\"title\": 7}", "type"),
        ("{\"title\": \"a\", \"owner\": 1}", "unknown field"),
        ("", "empty"),
    ] {
        let bad = c.send("POST", "/todos", Some(body));
        assert_eq!(bad.status, 400, "{why}: {bad:?}");
        assert!(bad.json()["error"].is_string());
    }
    let bad_patch = c.send_json("PATCH", &format!("/todos/{id}"), &json!({"priority": 0}));
    assert_eq!(bad_patch.status, 422);
    for path in ["/todos/999999", "/todos/abc", "/todos/-1", "/nowhere"] {
        let missing = c.send("GET", path, None);
        assert_eq!(missing.status, 404, "{path}: {missing:?}");
    }
    let missing_patch = c.send_json("PATCH", "/todos/999999", &json!({"done": true}));
    assert_eq!(missing_patch.status, 404);
    let wrong_method = c.send("DELETE", &format!("/todos/{id}"), None);
    assert_eq!(wrong_method.status, 405, "{wrong_method:?}");
    // the connection is still usable after every error
    assert_eq!(c.send("GET", &format!("/todos/{id}"), None).status, 200);
}

/// What a bounded load did.
#[derive(Debug, Default)]
pub struct Load {
    pub requests: usize,
    pub elapsed: Duration,
}

/// `clients` threads, each on its own keep-alive connection, each running
/// `rounds` rounds of create, read, change, list-by-tag and one invalid
/// create; every answer must be the expected one (no 5xx, no error).
pub fn bounded_load(port: u16, clients: usize, rounds: usize) -> Load {
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                let tag = format!("client-{client}");
                for round in 0..rounds {
                    let created = c.send_json(
                        "POST",
                        "/todos",
                        &json!({"title": format!("task {round}"), "tags": [tag], "priority": 1 + round % 5}),
                    );
                    assert_eq!(created.status, 201, "{created:?}");
                    let id = created.json()["id"].as_i64().unwrap();
                    let read = c.send("GET", &format!("/todos/{id}"), None);
                    assert_eq!(read.status, 200, "{read:?}");
                    let done = c.send_json("PATCH", &format!("/todos/{id}"), &json!({"done": true}));
                    assert_eq!(done.status, 200, "{done:?}");
                    assert_eq!(done.json()["done"], true);
                    let mine = c.send("GET", &format!("/todos?tag={tag}"), None);
                    assert_eq!(mine.status, 200, "{mine:?}");
                    assert_eq!(mine.json().as_array().unwrap().len(), round + 1, "only my todos");
                    let invalid = c.send_json("POST", "/todos", &json!({"title": ""}));
                    assert_eq!(invalid.status, 422, "{invalid:?}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a load client failed");
    }
    Load {
        requests: clients * rounds * 5,
        elapsed: started.elapsed(),
    }
}
