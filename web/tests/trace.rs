//! The trace of one HTTP request of example (a), `examples/green_api.rs`,
//! with odm's `tracing` feature: a `tracing-subscriber` layer collects
//! every span of the process; the request's tree is the request span, its
//! green task, the task's transaction, and in it the two statements (the
//! locking read, the write) and the `COMMIT`, with OpenTelemetry's
//! database fields. Also the statement hook, seeing the same statements.

#[allow(dead_code)] // its main is the example's, not the test's
#[path = "../examples/green_api.rs"]
mod green_api;
mod support;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use green::GreenPool;
use odm::testing::{test_database, TestDatabase};
use odm::Mapper;
use serde_json::json;
use support::{free_port, Client};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One captured span.
#[derive(Debug, Clone)]
struct Captured {
    serial: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
    closed: bool,
}

/// The serial number of a span (the registry reuses ids of closed spans).
struct Serial(u64);

#[derive(Default)]
struct Spans(Mutex<Vec<Captured>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

struct Capture(Arc<Spans>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let serial = NEXT.fetch_add(1, Ordering::Relaxed);
        let span = ctx.span(id).expect("a new span");
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Serial>().map(|s| s.0));
        span.extensions_mut().insert(Serial(serial));
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0 .0.lock().unwrap().push(Captured {
            serial,
            name: attrs.metadata().name(),
            parent,
            fields,
            closed: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let serial = ctx
            .span(id)
            .and_then(|s| s.extensions().get::<Serial>().map(|s| s.0));
        let mut spans = self.0 .0.lock().unwrap();
        if let Some(span) = spans.iter_mut().find(|s| Some(s.serial) == serial) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let serial = ctx
            .span(&id)
            .and_then(|s| s.extensions().get::<Serial>().map(|s| s.0));
        let mut spans = self.0 .0.lock().unwrap();
        if let Some(span) = spans.iter_mut().find(|s| Some(s.serial) == serial) {
            span.closed = true;
        }
    }
}

/// The process's collector, installed once.
fn spans() -> Arc<Spans> {
    static SPANS: OnceLock<Arc<Spans>> = OnceLock::new();
    SPANS
        .get_or_init(|| {
            let spans = Arc::new(Spans::default());
            let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&spans)));
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
            spans
        })
        .clone()
}

fn start() -> (u16, TestDatabase) {
    let db = test_database().expect("a test database");
    let mapper = Mapper::new(&db.url()).expect("the mapper");
    let green = GreenPool::builder()
        .max_workers(16)
        .max_queued(64)
        .build()
        .unwrap();
    let port = free_port();
    let server = green_api::serve(&format!("127.0.0.1:{port}"), green, mapper).expect("the server");
    std::mem::forget(server);
    (port, db)
}

/// The tree under `root`, one line per span, indented by depth, with the
/// named fields.
fn tree(spans: &[Captured], root: u64, depth: usize, out: &mut Vec<String>) {
    let span = spans.iter().find(|s| s.serial == root).unwrap();
    let shown: Vec<String> = [
        "http.request.method",
        "url.path",
        "http.response.status_code",
        "db.operation.name",
        "db.response.returned_rows",
        "db.transaction.outcome",
    ]
    .iter()
    .filter_map(|f| span.fields.get(*f).map(|v| format!("{f}={v}")))
    .collect();
    out.push(format!(
        "{}{} {}",
        "  ".repeat(depth),
        span.name,
        shown.join(" ")
    ));
    for child in spans.iter().filter(|s| s.parent == Some(root)) {
        tree(spans, child.serial, depth + 1, out);
    }
}

#[test]
fn one_request_s_trace_is_the_request_its_task_its_transaction_two_statements_and_the_commit() {
    let spans = spans();
    let (port, db) = start();
    let mut c = Client::connect(port);
    let created = c.send_json("POST", "/todos", &json!({"title": "traced"}));
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_i64().unwrap();
    let path = format!("/todos/{id}");
    let changed = c.send_json("PATCH", &path, &json!({"done": true}));
    assert_eq!(changed.status, 200);

    let spans = spans.0.lock().unwrap().clone();
    let requests: Vec<&Captured> = spans
        .iter()
        .filter(|s| {
            s.name == "http.request"
                && s.fields.get("url.path") == Some(&path)
                && s.fields.get("http.request.method").map(String::as_str) == Some("PATCH")
        })
        .collect();
    assert_eq!(requests.len(), 1, "one PATCH request span");
    let request = requests[0];
    let mut lines = Vec::new();
    tree(&spans, request.serial, 0, &mut lines);
    eprintln!("the trace of PATCH {path}:\n{}", lines.join("\n"));

    let children = |parent: u64| -> Vec<&Captured> {
        spans.iter().filter(|s| s.parent == Some(parent)).collect()
    };
    assert_eq!(
        request
            .fields
            .get("http.response.status_code")
            .map(String::as_str),
        Some("200")
    );
    let task = children(request.serial);
    assert_eq!(
        task.iter().map(|s| s.name).collect::<Vec<_>>(),
        ["green.task"]
    );
    let transaction = children(task[0].serial);
    assert_eq!(
        transaction.iter().map(|s| s.name).collect::<Vec<_>>(),
        ["db.transaction"]
    );
    assert_eq!(
        transaction[0]
            .fields
            .get("db.transaction.outcome")
            .map(String::as_str),
        Some("commit")
    );
    assert_eq!(
        transaction[0].fields.get("db.namespace"),
        Some(&db.name().to_owned())
    );
    let statements = children(transaction[0].serial);
    let operations: Vec<&str> = statements
        .iter()
        .map(|s| {
            s.fields
                .get("db.operation.name")
                .map(String::as_str)
                .unwrap_or("")
        })
        .collect();
    assert_eq!(
        operations,
        ["SELECT", "INSERT", "COMMIT"],
        "the locking read, the upsert, the commit"
    );
    for statement in &statements {
        assert_eq!(statement.name, "db.statement");
        assert_eq!(
            statement.fields.get("db.system").map(String::as_str),
            Some("postgresql")
        );
        assert_eq!(
            statement.fields.get("db.namespace"),
            Some(&db.name().to_owned())
        );
        assert!(
            statement
                .fields
                .contains_key("db.client.operation.duration"),
            "{statement:?}"
        );
        assert!(
            !statement.fields.contains_key("error.type"),
            "{statement:?}"
        );
        assert!(statement.closed, "{statement:?}");
    }
    let select = &statements[0].fields["db.query.text"];
    assert!(
        select.contains("FOR UPDATE") && select.contains("$1"),
        "no values in the text: {select}"
    );
    assert!(!select.contains(&format!("= {id}")), "{select}");
    assert_eq!(
        statements[0]
            .fields
            .get("db.response.returned_rows")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        statements[1]
            .fields
            .get("db.response.returned_rows")
            .map(String::as_str),
        Some("1")
    );
    assert!(request.closed && task[0].closed && transaction[0].closed);
}

/// What the hook saw of a statement: operation, rows, error type.
type HookSeen = (String, Option<u64>, Option<String>);

#[test]
fn a_failed_statement_s_span_and_hook_event_carry_its_sqlstate() {
    let spans = spans();
    let seen: Arc<Mutex<Vec<HookSeen>>> = Arc::default();
    let sink = Arc::clone(&seen);
    odm::pg::set_statement_hook(move |event| {
        if event.sql.contains("odm_trace_marker") {
            sink.lock()
                .unwrap()
                .push((event.operation.to_owned(), event.rows, event.error_type()));
        }
    });
    let db = test_database().expect("a test database");
    let mapper = Mapper::new(&db.url()).expect("the mapper");
    let pool = GreenPool::new();
    let outcome = pool
        .run(move || {
            mapper.begin(|s| {
                s.query_raw("SELECT 1 AS odm_trace_marker UNION ALL SELECT 2", &[])?;
                s.execute("SELECT 1 / 0 AS odm_trace_marker", &[])
            })
        })
        .unwrap();
    odm::pg::clear_statement_hook();
    assert_eq!(outcome.unwrap_err().code(), Some("22012"));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("SELECT".to_owned(), Some(2), None),
            ("SELECT".to_owned(), None, Some("22012".to_owned()))
        ]
    );
    let spans = spans.0.lock().unwrap();
    let failed = spans
        .iter()
        .find(|s| {
            s.fields
                .get("db.query.text")
                .is_some_and(|t| t.contains("1 / 0 AS odm_trace_marker"))
        })
        .expect("the failed statement's span");
    assert_eq!(
        failed.fields.get("error.type").map(String::as_str),
        Some("22012")
    );
    assert_eq!(
        failed
            .fields
            .get("db.response.status_code")
            .map(String::as_str),
        Some("22012")
    );
    let transaction = spans
        .iter()
        .find(|s| Some(s.serial) == failed.parent)
        .unwrap();
    assert_eq!(
        transaction
            .fields
            .get("db.transaction.outcome")
            .map(String::as_str),
        Some("rollback")
    );
}
