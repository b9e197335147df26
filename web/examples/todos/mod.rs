//! The domain both web examples share: a `Todo` model, the validation of
//! what clients send, and each endpoint as a plain synchronous function
//! over an [`odm::Mapper`] — the code a green worker runs. Nothing here
//! knows HTTP beyond the status code an error maps to.
//!
//! | endpoint | does | answers |
//! |---|---|---|
//! | `POST /todos` `{"title", "priority"?, "tags"?}` | adds a todo | 201 and the todo; 400 (not JSON), 422 (invalid fields) |
//! | `GET /todos/{id}` | reads one | 200; 404 |
//! | `GET /todos?tag=t` | lists, optionally those tagged `t` (`= ANY(tags)`) | 200 and an array |
//! | `PATCH /todos/{id}` `{"title"?, "priority"?, "done"?}` | changes one in a transaction (a locking read, the write, the commit) | 200 and the todo; 404, 400, 422 |
//! | any, when the green pool's queue is full | nothing | 503 with `Retry-After: 1` |
#![allow(dead_code)] // each example uses the part it serves

use std::fmt;

use green::GreenError;
use odm::Mapper;
use serde::{Deserialize, Serialize};

/// The longest title accepted (the column is `VARCHAR(200)`).
pub const MAX_TITLE: usize = 200;
/// The largest request body read, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// A todo, as stored and as sent back.
#[derive(odm::Model, Debug, Clone, Default, PartialEq, Serialize)]
#[odm(table = "todos")]
pub struct Todo {
    #[odm(primary_key)]
    pub id: Option<i32>,
    #[odm(max_length = 200)]
    pub title: String,
    pub priority: i16,
    #[odm(default = "false")]
    pub done: bool,
    pub tags: Vec<String>,
}

/// The body of `POST /todos`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTodo {
    pub title: String,
    #[serde(default = "default_priority")]
    pub priority: i16,
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_priority() -> i16 {
    3
}

/// The body of `PATCH /todos/{id}`: the fields to change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TodoChange {
    pub title: Option<String>,
    pub priority: Option<i16>,
    pub done: Option<bool>,
}

/// Why a request failed, and the status it answers with.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body is not the JSON the endpoint reads.
    BadRequest(String),
    /// 404: no such todo (or no such route).
    NotFound,
    /// 405: the route has no such method.
    MethodNotAllowed,
    /// 413: the body is larger than [`MAX_BODY`].
    TooLarge,
    /// 422: well-formed, but a field is out of range: `(field, reason)`.
    Invalid(Vec<(&'static str, String)>),
    /// 503: the green pool's queue is full; retry later.
    Busy,
    /// 500: anything else (logged, not shown to the client).
    Internal(String),
}

impl ApiError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::TooLarge => 413,
            ApiError::Invalid(_) => 422,
            ApiError::Busy => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The JSON body: `{"error": "...", "fields": {..}}`.
    pub fn body(&self) -> String {
        let value = match self {
            ApiError::Invalid(fields) => serde_json::json!({
                "error": "invalid fields",
                "fields": fields
                    .iter()
                    .map(|(field, reason)| (field.to_string(), serde_json::Value::from(reason.as_str())))
                    .collect::<serde_json::Map<_, _>>(),
            }),
            ApiError::Internal(_) => serde_json::json!({ "error": "internal error" }),
            other => serde_json::json!({ "error": other.to_string() }),
        };
        value.to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::BadRequest(why) => write!(f, "bad request: {why}"),
            ApiError::NotFound => f.write_str("not found"),
            ApiError::MethodNotAllowed => f.write_str("method not allowed"),
            ApiError::TooLarge => write!(f, "the body is larger than {MAX_BODY} bytes"),
            ApiError::Invalid(fields) => write!(f, "{} invalid fields", fields.len()),
            ApiError::Busy => f.write_str("busy, retry later"),
            ApiError::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

impl From<odm::Error> for ApiError {
    fn from(error: odm::Error) -> ApiError {
        if error.is_queue_full() {
            ApiError::Busy
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

impl From<GreenError> for ApiError {
    fn from(error: GreenError) -> ApiError {
        if error.is_queue_full() {
            ApiError::Busy
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

/// Reads a JSON body of type `T`; 400 with serde's reason otherwise.
pub fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::TooLarge);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A todo id from a path segment; 404 when it is not one.
pub fn parse_id(segment: &str) -> Result<i32, ApiError> {
    segment
        .parse::<i32>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound)
}

fn check_title(title: &str, out: &mut Vec<(&'static str, String)>) {
    if title.trim().is_empty() {
        out.push(("title", "must not be empty".into()));
    } else if title.chars().count() > MAX_TITLE {
        out.push(("title", format!("must be at most {MAX_TITLE} characters")));
    }
}

fn check_priority(priority: i16, out: &mut Vec<(&'static str, String)>) {
    if !(1..=5).contains(&priority) {
        out.push(("priority", "must be 1 to 5".into()));
    }
}

impl NewTodo {
    /// 422 naming every invalid field, before any database work.
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut invalid = Vec::new();
        check_title(&self.title, &mut invalid);
        check_priority(self.priority, &mut invalid);
        if self.tags.len() > 10 || self.tags.iter().any(|t| t.is_empty() || t.len() > 40) {
            invalid.push(("tags", "at most 10 tags of 1 to 40 bytes".into()));
        }
        if invalid.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(invalid))
        }
    }
}

impl TodoChange {
    /// 422 naming every invalid field, before any database work.
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut invalid = Vec::new();
        if let Some(title) = &self.title {
            check_title(title, &mut invalid);
        }
        if let Some(priority) = self.priority {
            check_priority(priority, &mut invalid);
        }
        if invalid.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(invalid))
        }
    }
}

/// Creates the table (at start-up).
pub fn create_schema(mp: &Mapper) -> odm::Result<()> {
    mp.table_create()
}

/// `POST /todos`: adds the todo (validated by the caller).
pub fn create(mp: &Mapper, new: NewTodo) -> Result<Todo, ApiError> {
    let mut todo = Todo {
        title: new.title,
        priority: new.priority,
        tags: new.tags,
        ..Todo::default()
    };
    mp.begin(|s| s.add(&mut todo))?;
    Ok(todo)
}

/// `GET /todos/{id}`.
pub fn get(mp: &Mapper, id: i32) -> Result<Todo, ApiError> {
    mp.begin(|s| s.get::<Todo>(id))?.ok_or(ApiError::NotFound)
}

/// `GET /todos?tag=t`: every todo, or those tagged `tag`, by id.
pub fn list(mp: &Mapper, tag: Option<String>) -> Result<Vec<Todo>, ApiError> {
    Ok(mp.begin(|s| {
        let query = s.query::<Todo>().order_by(Todo::ID.asc());
        match tag {
            Some(tag) => query.filter(Todo::TAGS.contains(tag)).all(),
            None => query.all(),
        }
    })?)
}

/// `PATCH /todos/{id}`: in one transaction, reads the todo locking its row
/// (so concurrent changes apply one after the other), writes the change,
/// commits.
pub fn update(mp: &Mapper, id: i32, change: TodoChange) -> Result<Todo, ApiError> {
    let updated = mp.begin(|s| {
        let Some(mut todo) = s
            .query::<Todo>()
            .filter(Todo::ID.eq(id))
            .for_update()
            .first()?
        else {
            return Ok(None);
        };
        if let Some(title) = change.title {
            todo.title = title;
        }
        if let Some(priority) = change.priority {
            todo.priority = priority;
        }
        if let Some(done) = change.done {
            todo.done = done;
        }
        s.add(&mut todo)?;
        Ok(Some(todo))
    })?;
    updated.ok_or(ApiError::NotFound)
}

/// The value of `name` in a query string (`a=1&tag=x`), percent-decoding
/// `%XX` and `+`; `None` when absent, 400 when malformed.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(raw.len());
    let mut input = raw.bytes();
    while let Some(b) = input.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = [input.next(), input.next()];
                let digits = match hex {
                    [Some(h), Some(l)] => std::str::from_utf8(&[h, l])
                        .ok()
                        .and_then(|s| u8::from_str_radix(s, 16).ok()),
                    _ => None,
                };
                bytes.push(
                    digits.ok_or_else(|| ApiError::BadRequest(format!("malformed `{name}`")))?,
                );
            }
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| ApiError::BadRequest(format!("`{name}` is not UTF-8")))
}
