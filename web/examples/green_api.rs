//! (a) A small JSON API on the green HTTP server: `may_minihttp` runs each
//! connection on a `may` coroutine, the handler routes the request,
//! validates what the client sent (400, 422), and submits the database work
//! — plain synchronous odm code, `todos/` — to a [`GreenPool`] with a
//! bounded queue: when every worker is busy and the queue is full, the
//! request is answered `503 Service Unavailable` at once instead of
//! waiting behind an ever longer queue.
//!
//! ```text
//! cargo run -p odm-web-examples --example green_api              # throwaway database, port 8080
//! DATABASE_URL=postgresql://u:p@host/db PORT=9000 cargo run -p odm-web-examples --example green_api
//! curl -X POST localhost:8080/todos -d '{"title": "write docs", "tags": ["doc"]}'
//! curl localhost:8080/todos?tag=doc
//! curl -X PATCH localhost:8080/todos/1 -d '{"done": true}'
//! ```
//!
//! Each request has a `tracing` span `http.request`; with odm's `tracing`
//! feature its green task, the task's transaction and every statement
//! become its descendants (`tests/green_api.rs` captures one request's
//! trace). Install a subscriber (`tracing-subscriber`, an OpenTelemetry
//! layer) in `main` to see them.

mod todos;

use std::io::{self, Read};

use green::GreenPool;
use may_minihttp::{HttpServer, HttpService, Request, Response};
use odm::Mapper;
use serde::Serialize;
use todos::{parse_id, parse_json, query_param, ApiError, NewTodo, Todo, TodoChange, MAX_BODY};

/// The service: one clone per HTTP connection (both handles are cheap
/// `Arc`s).
#[derive(Debug, Clone)]
pub struct App {
    green: GreenPool,
    mapper: Mapper,
}

/// A response: status and JSON body.
type Answer = Result<(u16, String), ApiError>;

fn json(status: u16, value: &impl Serialize) -> Answer {
    serde_json::to_string(value)
        .map(|body| (status, body))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

impl App {
    /// The API over `mapper`, its database work on `green`.
    pub fn new(green: GreenPool, mapper: Mapper) -> App {
        App { green, mapper }
    }

    /// Runs `work` on a green worker and parks this connection's coroutine
    /// until it is done; a full queue is [`ApiError::Busy`] at once.
    fn on_green<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Mapper) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let mapper = self.mapper.clone();
        self.green.submit(move || work(&mapper))?.join()?
    }

    /// Routes one request.
    fn route(&self, method: &str, path: &str, query: &str, body: &[u8]) -> Answer {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", ["todos"]) => {
                let new: NewTodo = parse_json(body)?;
                new.validate()?;
                json(201, &self.on_green(move |mp| todos::create(mp, new))?)
            }
            ("GET", ["todos"]) => {
                let tag = query_param(query, "tag")?;
                json(200, &self.on_green(move |mp| todos::list(mp, tag))?)
            }
            ("GET", ["todos", id]) => {
                let id = parse_id(id)?;
                json(200, &self.on_green(move |mp| todos::get(mp, id))?)
            }
            ("PATCH", ["todos", id]) => {
                let id = parse_id(id)?;
                let change: TodoChange = parse_json(body)?;
                change.validate()?;
                let todo: Todo = self.on_green(move |mp| todos::update(mp, id, change))?;
                json(200, &todo)
            }
            (_, ["todos"] | ["todos", _]) => Err(ApiError::MethodNotAllowed),
            _ => Err(ApiError::NotFound),
        }
    }
}

/// The request's `Content-Length`: 0 when absent, 400 when malformed, 413
/// past [`MAX_BODY`] (checked before reading the body).
fn content_length(req: &Request) -> Result<usize, ApiError> {
    let Some(header) = req
        .headers()
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
    else {
        return Ok(0);
    };
    let length = std::str::from_utf8(header.value)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| ApiError::BadRequest("malformed Content-Length".into()))?;
    if length > MAX_BODY {
        return Err(ApiError::TooLarge);
    }
    Ok(length)
}

impl HttpService for App {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        let method = req.method().to_owned();
        let (path, query) = match req.path().split_once('?') {
            Some((path, query)) => (path.to_owned(), query.to_owned()),
            None => (req.path().to_owned(), String::new()),
        };
        let span = tracing::info_span!(
            "http.request",
            http.request.method = %method,
            url.path = %path,
            http.response.status_code = tracing::field::Empty,
        );
        // Current for this connection's coroutine, not entered: the request
        // parks while its task runs, and `tracing`'s entered spans are per
        // OS thread (see green::trace). Its green task and the task's
        // statements become its children.
        let answer = green::trace::in_span(&span, || {
            content_length(&req).and_then(|length| {
                let mut body = Vec::with_capacity(length);
                req.body().take(length as u64).read_to_end(&mut body)?;
                self.route(&method, &path, &query, &body)
            })
        });
        let (status, body) = answer.unwrap_or_else(|error| {
            if let ApiError::Internal(why) = &error {
                eprintln!("green_api: {method} {path}: {why}");
            }
            if let ApiError::Busy = error {
                rsp.header("Retry-After: 1");
            }
            (error.status(), error.body())
        });
        span.record("http.response.status_code", status);
        rsp.status_code(status as usize, reason(status));
        rsp.header("Content-Type: application/json");
        rsp.body_vec(body.into_bytes());
        Ok(())
    }
}

impl From<io::Error> for ApiError {
    fn from(error: io::Error) -> ApiError {
        ApiError::BadRequest(format!("cannot read the body: {error}"))
    }
}

/// Registers the model, creates its table, and serves the API on `addr`
/// until the process ends. `green` should be bounded
/// ([`green::GreenPoolBuilder::max_queued`]) so overload answers 503.
pub fn serve(
    addr: &str,
    green: GreenPool,
    mapper: Mapper,
) -> io::Result<may::coroutine::JoinHandle<()>> {
    mapper.register::<Todo>().map_err(io::Error::other)?;
    let setup = mapper.clone();
    green
        .run(move || todos::create_schema(&setup))
        .map_err(io::Error::other)?
        .map_err(io::Error::other)?;
    HttpServer(App::new(green, mapper)).start(addr)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // DATABASE_URL, or a throwaway database kept until the server stops
    let (url, _database) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => (url, None),
        _ => {
            let db = odm::testing::test_database()?;
            (db.url(), Some(db))
        }
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    // 256 requests' database work at once, 1024 more waiting, then 503
    let green = GreenPool::builder()
        .max_workers(256)
        .max_queued(1024)
        .build()?;
    let mapper = Mapper::new(&format!(
        "{url}{}pool_size=16",
        if url.contains('?') { '&' } else { '?' }
    ))?;
    let server = serve(&format!("0.0.0.0:{port}"), green, mapper)?;
    eprintln!("green_api: listening on http://0.0.0.0:{port}");
    server
        .join()
        .map_err(|_| "the server's coroutine panicked")?;
    Ok(())
}
