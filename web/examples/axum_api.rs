//! (b) The JSON API of `green_api.rs` in axum: the same endpoints and
//! answers, tokio serving HTTP, and the database work — the same plain
//! synchronous odm code, `todos/` — submitted to a bounded [`GreenPool`]
//! and awaited: `Submitted<T>` is a `Future`, so a handler awaits it
//! without blocking tokio's threads. A full green queue answers 503 at once.
//!
//! ```text
//! cargo run -p odm-web-examples --example axum_api               # throwaway database, port 8080
//! DATABASE_URL=postgresql://u:p@host/db PORT=9000 cargo run -p odm-web-examples --example axum_api
//! ```

mod todos;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use green::GreenPool;
use odm::Mapper;
use serde::Serialize;
use todos::{parse_id, parse_json, query_param, ApiError, NewTodo, Todo, TodoChange, MAX_BODY};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    green: GreenPool,
    mapper: Mapper,
}

impl AppState {
    /// The API over `mapper`, its database work on `green`.
    pub fn new(green: GreenPool, mapper: Mapper) -> AppState {
        AppState { green, mapper }
    }

    /// Runs `work` on a green worker and awaits it; a full queue is
    /// [`ApiError::Busy`] at once.
    async fn on_green<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Mapper) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let mapper = self.mapper.clone();
        self.green.submit(move || work(&mapper))?.await?
    }
}

/// An [`ApiError`] as axum's response: its status and JSON body.
struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let error = self.0;
        if let ApiError::Internal(why) = &error {
            eprintln!("axum_api: {why}");
        }
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            error.body(),
        )
            .into_response();
        if let ApiError::Busy = error {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

type Answer = Result<Response, Failure>;

fn json(status: StatusCode, value: &impl Serialize) -> Answer {
    let body = serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn create(State(app): State<AppState>, body: Bytes) -> Answer {
    let new: NewTodo = parse_json(&body)?;
    new.validate()?;
    let todo = app.on_green(move |mp| todos::create(mp, new)).await?;
    json(StatusCode::CREATED, &todo)
}

async fn list(State(app): State<AppState>, RawQuery(query): RawQuery) -> Answer {
    let tag = query_param(query.as_deref().unwrap_or(""), "tag")?;
    json(
        StatusCode::OK,
        &app.on_green(move |mp| todos::list(mp, tag)).await?,
    )
}

async fn read(State(app): State<AppState>, Path(id): Path<String>) -> Answer {
    let id = parse_id(&id)?;
    json(
        StatusCode::OK,
        &app.on_green(move |mp| todos::get(mp, id)).await?,
    )
}

async fn update(State(app): State<AppState>, Path(id): Path<String>, body: Bytes) -> Answer {
    let id = parse_id(&id)?;
    let change: TodoChange = parse_json(&body)?;
    change.validate()?;
    let todo: Todo = app
        .on_green(move |mp| todos::update(mp, id, change))
        .await?;
    json(StatusCode::OK, &todo)
}

async fn not_found() -> Failure {
    Failure(ApiError::NotFound)
}

async fn method_not_allowed() -> Failure {
    Failure(ApiError::MethodNotAllowed)
}

/// The routes. Bodies past [`MAX_BODY`] are refused by axum with 413.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/todos",
            get(list).post(create).fallback(method_not_allowed),
        )
        .route(
            "/todos/{id}",
            get(read).patch(update).fallback(method_not_allowed),
        )
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Registers the model and creates its table (on the green pool).
pub async fn prepare(green: &GreenPool, mapper: &Mapper) -> Result<(), ApiError> {
    mapper.register::<Todo>()?;
    let setup = mapper.clone();
    green
        .submit(move || todos::create_schema(&setup))?
        .await??;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _database) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => (url, None),
        _ => {
            let db = odm::testing::test_database()?;
            (db.url(), Some(db))
        }
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let green = GreenPool::builder()
        .max_workers(256)
        .max_queued(1024)
        .build()?;
    let mapper = Mapper::new(&url)?;
    prepare(&green, &mapper).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await?;
    eprintln!("axum_api: listening on http://0.0.0.0:{port}");
    axum::serve(listener, router(AppState::new(green, mapper))).await?;
    Ok(())
}
