//! The request engine: free functions over a [`Connection`] that encode a
//! request, queue it and read its answer — the simple query protocol
//! (`Query`), the extended one (`Parse`/`Describe`, `Bind`/`Execute`/`Sync`
//! on a prepared statement) and requests nobody waits for.
//! [`Client`](super::Client) is a thin face over these.
//!
//! Every statement that runs is logged ([`super::statement_log`]).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use crate::connection::connection::Connection;
use crate::connection::slot::{Effect, Slot};
use crate::connection::write_queue::Sending;
use crate::error::Error;
use crate::request::response::{Frame, QueryDeadline, Response};
use crate::request::statement_log::{log_statement, start_clock};
use crate::wire::bind_execute::{self, encode_bind_execute, Param};
use crate::wire::command_tag::{forgets_prepared_statements, rows_affected};
use crate::wire::row::Row;
use crate::wire::server_error::db_error;
use crate::wire::statement::{
    adopt_described_columns, columns_of, type_for_oid, Column, Statement,
};

use crate::request::row_sink::RowSink;

thread_local! {
    /// A reusable encoding buffer. It is taken out of the thread-local for
    /// the encoding and put back afterwards (on whatever thread the task
    /// then runs), so nothing is borrowed across a park.
    static SCRATCH: RefCell<Option<BytesMut>> = const { RefCell::new(None) };
}

const SCRATCH_KEEP: usize = 64 * 1024;

fn take_scratch() -> BytesMut {
    SCRATCH
        .with(|s| s.borrow_mut().take())
        .unwrap_or_else(|| BytesMut::with_capacity(1024))
}

fn put_scratch(mut buf: BytesMut) {
    if buf.capacity() <= SCRATCH_KEEP {
        buf.clear();
        SCRATCH.with(|s| *s.borrow_mut() = Some(buf));
    }
}

/// What the caller says a statement may do: it decides whether the
/// statement may share its `Sync` with other tasks' reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// It may change data or session state: it always ends with its own
    /// `Sync`.
    ReadWrite,
    /// The caller promises it changes nothing (a plain `SELECT`): on a
    /// busy pipelined connection it may share one `Sync` with other reads
    /// (see `connection::write_queue`).
    ReadOnly,
}

/// How a statement of the extended protocol ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    /// The row count of its command tag.
    pub(crate) rows: u64,
    /// Its tag was `DISCARD ALL` or `DEALLOCATE ALL`: the server knows no
    /// prepared statement of the session any more.
    pub(crate) forgot_statements: bool,
}

/// Encodes a request with `encode`, queues it and returns its answer,
/// bounded by the connection's `query_timeout`.
pub(crate) fn request<F>(
    conn: &Arc<Connection>,
    streaming: bool,
    encode: F,
) -> Result<Response, Error>
where
    F: FnOnce(&mut BytesMut) -> Result<(), Error>,
{
    request_until(conn, streaming, deadline(conn), Effect::Statements, encode)
}

/// [`request`] with an explicit deadline and what it may do to stored data
/// (which decides whether a break leaves its outcome unknown).
pub(crate) fn request_until<F>(
    conn: &Connection,
    streaming: bool,
    deadline: Option<QueryDeadline>,
    effect: Effect,
    encode: F,
) -> Result<Response, Error>
where
    F: FnOnce(&mut BytesMut) -> Result<(), Error>,
{
    queue_request(conn, streaming, deadline, effect, Sending::Now, encode)
}

/// Encodes a request with `encode`, queues it as `sending` says and
/// returns the reader of its answer.
pub(super) fn queue_request<F>(
    conn: &Connection,
    streaming: bool,
    deadline: Option<QueryDeadline>,
    effect: Effect,
    sending: Sending,
    encode: F,
) -> Result<Response, Error>
where
    F: FnOnce(&mut BytesMut) -> Result<(), Error>,
{
    let slot = Slot::new(streaming, conn.is_shared());
    if effect != Effect::Statements {
        slot.set_effect(effect);
    }
    encode_then_send(encode, |bytes| {
        conn.send_owned(bytes, Some(slot.clone()), sending)
    })?;
    Ok(Response::new(slot, deadline))
}

/// Sends one run of the extended protocol — the messages `encode` writes,
/// up to but not including `Sync` — and reads its answer with `columns`
/// into `rows`. A [read-only](Access::ReadOnly) run may share its `Sync`
/// with other reads; when the server skipped it (an earlier read of its
/// group failed) it is sent again with its own `Sync`, so the caller sees
/// exactly its own result either way.
pub(super) fn run_extended<F>(
    conn: &Arc<Connection>,
    access: Access,
    columns: &mut Arc<[Column]>,
    mut rows: RowSink<'_>,
    encode: F,
) -> Result<Completion, Error>
where
    F: Fn(&mut BytesMut) -> Result<(), Error>,
{
    let with_sync = |buf: &mut BytesMut| {
        encode(buf)?;
        frontend::sync(buf);
        Ok(())
    };
    let streaming = rows.streams();
    let mut response = match access {
        Access::ReadWrite => queue_request(
            conn,
            streaming,
            deadline(conn),
            Effect::Statements,
            Sending::Now,
            with_sync,
        )?,
        Access::ReadOnly => queue_request(
            conn,
            streaming,
            deadline(conn),
            Effect::Nothing,
            Sending::Coalescable,
            &encode,
        )?,
    };
    match read_results(conn, &mut response, columns, rows.reborrow()) {
        Err(_) if response.was_skipped() => {
            drop(response);
            let mut again = queue_request(
                conn,
                streaming,
                deadline(conn),
                Effect::Nothing,
                Sending::Now,
                with_sync,
            )?;
            read_results(conn, &mut again, columns, rows)
        }
        outcome => outcome,
    }
}

/// Encodes a request into a scratch buffer (given back afterwards) and
/// hands its bytes to `send`: the one place requests are encoded and sent.
pub(super) fn encode_then_send<F>(
    encode: F,
    send: impl FnOnce(&mut BytesMut) -> Result<(), Error>,
) -> Result<(), Error>
where
    F: FnOnce(&mut BytesMut) -> Result<(), Error>,
{
    let mut buf = take_scratch();
    let sent = encode(&mut buf)
        .map_err(not_sent)
        .and_then(|()| send(&mut buf));
    put_scratch(buf);
    sent
}

/// An encoding failure is the caller's, not the connection's: nothing was
/// sent, so an I/O error from the message writers (a NUL byte in the SQL
/// text or a name, a message over the protocol's size limit) becomes
/// [`Error::Encode`] and the connection stays usable.
#[cold]
fn not_sent(error: Error) -> Error {
    match error {
        Error::Io(e) if e.to_string().contains("embedded null") => {
            Error::Encode("the sql text or a name contains a nul byte".to_owned())
        }
        Error::Io(e) => Error::Encode(e.to_string()),
        other => other,
    }
}

/// The deadline of the connection's requests, when `query_timeout` is set.
pub(crate) fn deadline(conn: &Arc<Connection>) -> Option<QueryDeadline> {
    conn.config().query_timeout().map(|timeout| QueryDeadline {
        timeout,
        connection: conn.clone(),
        cancel: true,
    })
}

/// Queues a request whose answer nobody waits for.
pub(super) fn request_detached<F>(conn: &Connection, encode: F) -> Result<(), Error>
where
    F: FnOnce(&mut BytesMut) -> Result<(), Error>,
{
    encode_then_send(encode, |bytes| {
        conn.send_owned(bytes, Some(Slot::abandoned()), Sending::Now)
    })
}

/// Queues `Close` for `statements` (and one `Sync`) without waiting for
/// the answer.
pub(crate) fn close_statements(conn: &Connection, statements: &[Statement]) {
    if statements.is_empty() {
        return;
    }
    // A connection that cannot take the request is closed, and the
    // server-side statements went with it: nothing is left to close.
    let _ = request_detached(conn, |buf| {
        for statement in statements {
            frontend::close(b'S', statement.name(), buf)?;
        }
        frontend::sync(buf);
        Ok(())
    });
}

/// Checks that the server still answers: an empty query answered within
/// `timeout`, else the connection is closed (no cancel is tried).
pub(crate) fn check_alive(conn: &Arc<Connection>, timeout: Duration) -> Result<(), Error> {
    let deadline = QueryDeadline {
        timeout,
        connection: conn.clone(),
        cancel: false,
    };
    let mut response = request_until(conn, false, Some(deadline), Effect::Nothing, |buf| {
        frontend::query("", buf)?;
        Ok(())
    })?;
    response.drain()
}

/// Parse + Describe + Sync: learns parameter types and result columns of
/// `sql`, prepared as `name` on connection `connection_id`.
pub(crate) fn describe(
    conn: &Arc<Connection>,
    connection_id: u64,
    name: String,
    sql: &str,
) -> Result<Statement, Error> {
    let mut response = request_until(conn, false, deadline(conn), Effect::Nothing, |buf| {
        frontend::parse(&name, sql, std::iter::empty(), buf)?;
        frontend::describe(b'S', &name, buf)?;
        frontend::sync(buf);
        Ok(())
    })?;
    let mut params = Vec::new();
    let mut columns = Vec::new();
    let mut error = None;
    loop {
        match response.next()? {
            Message::ParseComplete | Message::NoData => {}
            Message::ParameterDescription(body) => {
                let mut oids = body.parameters();
                while let Some(oid) = fallible_iterator::FallibleIterator::next(&mut oids)? {
                    params.push(type_for_oid(oid));
                }
            }
            Message::RowDescription(body) => columns = columns_of(&body)?,
            Message::ErrorResponse(body) => {
                if error.is_none() {
                    error = Some(db_error(body.fields()));
                }
            }
            Message::ReadyForQuery(_) => break,
            _ => error = error.or_else(|| Some(unexpected("describe"))),
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(Statement::new(
            name,
            sql.to_owned(),
            connection_id,
            params,
            columns,
        )),
    }
}

/// Bind + Execute + Sync on a named prepared statement (an unnamed one
/// runs through [`super::unnamed_statement::run`]), the `Sync` shared with other
/// reads when `access` allows ([`run_extended`]); fills `rows` and returns
/// how the statement ended.
pub(crate) fn run(
    conn: &Arc<Connection>,
    statement: &Statement,
    params: &[Param<'_>],
    rows: RowSink<'_>,
    access: Access,
) -> Result<Completion, Error> {
    statement.check_param_count(params.len())?;
    let types = statement.params();
    let started = start_clock(conn);
    let mut columns = statement.shared_columns().clone();
    let outcome = run_extended(conn, access, &mut columns, rows, |buf| {
        encode_bind_execute(statement.name(), types, params, buf)
    });
    if let Some(started) = started {
        let rows = outcome.as_ref().map(|done| done.rows);
        log_statement(conn, statement.sql(), started, rows, None);
    }
    outcome
}

/// Reads an extended-protocol answer of one statement up to
/// `ReadyForQuery`. Rows are decoded with `columns`, which a
/// `RowDescription` in the answer (the `Describe` of an unnamed run)
/// replaces when it differs.
pub(super) fn read_results(
    conn: &Connection,
    response: &mut Response,
    columns: &mut Arc<[Column]>,
    mut rows: RowSink<'_>,
) -> Result<Completion, Error> {
    let mut done = Completion {
        rows: 0,
        forgot_statements: false,
    };
    let mut error = None;
    loop {
        let end = read_statement(
            conn,
            response,
            columns,
            &mut rows,
            &mut done,
            &mut error,
            AnswerTo::Query,
        )?;
        if let StatementEnd::Ready(_) = end {
            break;
        }
    }
    error.map_or(Ok(done), Err)
}

/// What a request's answer is read for: it names the request in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AnswerTo {
    /// A query method (`query`, `execute`, ...).
    Query,
    /// An atomic batch.
    AtomicBatch,
}

impl AnswerTo {
    fn copy_in_refused(self) -> Error {
        Error::CopyNotAllowed(match self {
            AnswerTo::Query => "COPY ... FROM STDIN needs copy_in(), not a query method",
            AnswerTo::AtomicBatch => "COPY ... FROM STDIN needs copy_in(), not an atomic batch",
        })
    }

    fn copy_out_refused(self) -> Error {
        Error::CopyNotAllowed(match self {
            AnswerTo::Query => "COPY ... TO STDOUT needs copy_out(), not a query method",
            AnswerTo::AtomicBatch => "COPY ... TO STDOUT needs copy_out(), not an atomic batch",
        })
    }

    pub(super) fn unexpected(self) -> Error {
        Error::Protocol(match self {
            AnswerTo::Query => "unexpected message in the answer to a query".to_owned(),
            AnswerTo::AtomicBatch => {
                "unexpected message in the answer to an atomic batch".to_owned()
            }
        })
    }
}

/// How one statement's part of an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StatementEnd {
    /// Its `CommandComplete` or `EmptyQueryResponse`: the next statement's
    /// part (or the `ReadyForQuery`) follows.
    Completed,
    /// The request's `ReadyForQuery` came instead (after an error the
    /// server skips to it), with the transaction status it reported.
    Ready(u8),
}

/// Reads one statement's part of an extended-protocol answer — the one
/// place such answers are read: its rows into `rows`, decoded with
/// `columns` (which a `RowDescription` replaces when it differs), its row
/// count into `done`, and the first error of the request (the server's, a
/// row's, a refused COPY) into `error`, after which rows are dropped. Ends
/// at the statement's completion or at the request's `ReadyForQuery`.
#[inline]
pub(super) fn read_statement(
    conn: &Connection,
    response: &mut Response,
    columns: &mut Arc<[Column]>,
    rows: &mut RowSink<'_>,
    done: &mut Completion,
    error: &mut Option<Error>,
    answer_to: AnswerTo,
) -> Result<StatementEnd, Error> {
    loop {
        let message = match response.next_frame()? {
            Frame::Skip => continue,
            Frame::CommandComplete(count) => {
                done.rows = count;
                return Ok(StatementEnd::Completed);
            }
            Frame::EmptyQuery => return Ok(StatementEnd::Completed),
            Frame::Ready(status) => return Ok(StatementEnd::Ready(status)),
            Frame::Message(message) => message,
        };
        match message {
            Message::DataRow(body) => {
                if let (RowSink::Collect(rows), None) = (&mut *rows, &*error) {
                    if let Err(e) =
                        Row::new(columns.clone(), body).and_then(|row| rows.receive(row))
                    {
                        *error = Some(e);
                    }
                }
            }
            Message::BindComplete | Message::ParseComplete | Message::NoData => {}
            Message::RowDescription(body) => adopt_described_columns(columns, &body)?,
            Message::CommandComplete(body) => {
                let tag = body.tag()?;
                done.forgot_statements |= forgets_prepared_statements(tag.as_bytes());
                done.rows = rows_affected(tag);
                return Ok(StatementEnd::Completed);
            }
            Message::EmptyQueryResponse => return Ok(StatementEnd::Completed),
            Message::PortalSuspended => {}
            Message::ErrorResponse(body) => {
                if error.is_none() {
                    *error = Some(db_error(body.fields()));
                }
            }
            Message::CopyInResponse(_) => {
                if !conn.refuse_copy(true) {
                    return Err(conn.closed_error());
                }
                *error = error.take().or(Some(answer_to.copy_in_refused()));
            }
            Message::CopyOutResponse(_) => {
                *error = error.take().or(Some(answer_to.copy_out_refused()));
            }
            Message::CopyData(_) | Message::CopyDone => {}
            Message::ReadyForQuery(body) => return Ok(StatementEnd::Ready(body.status())),
            _ => *error = error.take().or_else(|| Some(answer_to.unexpected())),
        }
    }
}

/// A `COPY ... FROM STDIN` met by a query method: the copy is ended on the
/// server (see `Connection::refuse_copy`)
/// and the caller gets [`Error::CopyNotAllowed`]; `Err` when the connection
/// had to be closed instead.
pub(super) fn refuse_copy(conn: &Connection, extended: bool) -> Result<Error, Error> {
    if conn.refuse_copy(extended) {
        Ok(Error::CopyNotAllowed(
            "COPY ... FROM STDIN needs copy_in(), not a query method",
        ))
    } else {
        Err(conn.closed_error())
    }
}

pub(super) fn copy_out_refused() -> Error {
    Error::CopyNotAllowed("COPY ... TO STDOUT needs copy_out(), not a query method")
}

fn unexpected(phase: &str) -> Error {
    Error::Protocol(format!("unexpected message in the answer to a {phase}"))
}

/// Encodes `Bind` of `statement` for the unnamed portal, all values and
/// results binary.
pub(super) fn encode_bind(
    statement: &Statement,
    params: &[Param<'_>],
    buf: &mut BytesMut,
) -> Result<(), Error> {
    bind_execute::encode_bind(statement.name(), statement.params(), params, buf)
}
