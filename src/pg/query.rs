//! Encoding requests and reading their answers: the simple query protocol
//! (`Query`) and the extended one (`Bind`/`Execute`/`Sync` on a prepared
//! statement).

use std::cell::RefCell;
use std::sync::Arc;

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use postgres_types::{IsNull, Type};

use super::client::Client;
use super::response::{Deadline, Frame, Response, Slot};
use super::row::Row;
use super::server_error::db_error;
use super::statement::{Column, Statement};
use super::Param;
use crate::Error;

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

/// Where the rows of an answer go.
pub(crate) enum RowSink<'a> {
    /// Rows are not wanted (execute).
    Discard,
    /// Rows are collected.
    Collect(&'a mut Vec<Row>),
}

impl Client {
    /// Encodes a request with `encode`, queues it and returns its answer.
    pub(crate) fn request<F>(&self, streaming: bool, encode: F) -> Result<Response, Error>
    where
        F: FnOnce(&mut BytesMut) -> Result<(), Error>,
    {
        self.request_until(streaming, self.deadline(), encode)
    }

    /// [`Client::request`] with an explicit deadline.
    pub(crate) fn request_until<F>(
        &self,
        streaming: bool,
        deadline: Option<Deadline>,
        encode: F,
    ) -> Result<Response, Error>
    where
        F: FnOnce(&mut BytesMut) -> Result<(), Error>,
    {
        let mut buf = take_scratch();
        if let Err(e) = encode(&mut buf) {
            put_scratch(buf);
            return Err(e);
        }
        let slot = Slot::new(streaming, self.is_shared());
        let sent = self.connection().send(&buf, Some(slot.clone()), false);
        put_scratch(buf);
        sent?;
        Ok(Response::new(slot, deadline))
    }

    /// The deadline of this client's requests, when `query_timeout` is set.
    pub(crate) fn deadline(&self) -> Option<Deadline> {
        self.config().query_timeout().map(|timeout| Deadline {
            timeout,
            connection: self.connection().clone(),
            cancel: true,
        })
    }

    /// Queues a request whose answer nobody waits for.
    pub(crate) fn request_detached<F>(&self, encode: F) -> Result<(), Error>
    where
        F: FnOnce(&mut BytesMut) -> Result<(), Error>,
    {
        let mut buf = take_scratch();
        if let Err(e) = encode(&mut buf) {
            put_scratch(buf);
            return Err(e);
        }
        let sent = self.connection().send(&buf, Some(Slot::abandoned()), false);
        put_scratch(buf);
        sent
    }

    /// Parse + Describe + Sync: learns parameter types and result columns.
    pub(crate) fn describe(&self, name: String, sql: &str) -> Result<Statement, Error> {
        let mut response = self.request(false, |buf| {
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
                Message::RowDescription(body) => {
                    let mut fields = body.fields();
                    while let Some(field) = fallible_iterator::FallibleIterator::next(&mut fields)?
                    {
                        columns.push(Column::new(
                            field.name().to_owned(),
                            type_for_oid(field.type_oid()),
                        ));
                    }
                }
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
                self.id(),
                params,
                columns,
            )),
        }
    }

    /// Bind + Execute + Sync on a prepared statement (re-parsing the unnamed
    /// one); returns the affected-row count and fills `rows`.
    pub(crate) fn run(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
        rows: RowSink<'_>,
    ) -> Result<u64, Error> {
        let types = statement.params();
        if params.len() != types.len() {
            return Err(Error::ParameterCount {
                expected: types.len(),
                given: params.len(),
            });
        }
        let response = self.request(false, |buf| {
            if statement.is_unnamed() {
                frontend::parse("", statement.sql(), types.iter().map(Type::oid), buf)?;
            }
            encode_bind(statement, params, buf)?;
            frontend::execute("", 0, buf)?;
            frontend::sync(buf);
            Ok(())
        })?;
        self.read_results(response, statement.shared_columns(), rows)
    }

    /// Reads an extended-protocol answer up to `ReadyForQuery`.
    fn read_results(
        &self,
        mut response: Response,
        columns: &Arc<[Column]>,
        mut rows: RowSink<'_>,
    ) -> Result<u64, Error> {
        let mut affected = 0;
        let mut error = None;
        loop {
            let message = match response.next_light()? {
                Frame::Skip => continue,
                Frame::CommandComplete(count) => {
                    affected = count;
                    continue;
                }
                Frame::Ready => break,
                Frame::Message(message) => message,
            };
            match message {
                Message::DataRow(body) => {
                    if let (RowSink::Collect(rows), None) = (&mut rows, &error) {
                        match Row::new(columns.clone(), body) {
                            Ok(row) => rows.push(row),
                            Err(e) => error = Some(e),
                        }
                    }
                }
                Message::BindComplete | Message::ParseComplete => {}
                Message::CommandComplete(body) => {
                    let tag = body.tag()?;
                    self.note_command_tag(tag);
                    affected = rows_affected(tag);
                }
                Message::EmptyQueryResponse | Message::PortalSuspended => {}
                Message::ErrorResponse(body) => {
                    if error.is_none() {
                        error = Some(db_error(body.fields()));
                    }
                }
                Message::CopyInResponse(_) => {
                    error = error.or(Some(refuse_copy(self, true)?));
                }
                Message::CopyOutResponse(_) => error = error.or(Some(copy_out_refused())),
                Message::CopyData(_) | Message::CopyDone => {}
                Message::ReadyForQuery(_) => break,
                _ => error = error.or_else(|| Some(unexpected("query"))),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(affected),
        }
    }

    /// The simple query protocol: one or more statements, no parameters.
    /// Returns the command tag of the last statement that completed
    /// (`COMMIT`, `ROLLBACK`, `INSERT 0 1`, ...; empty when none did).
    pub(crate) fn simple_query(&self, sql: &str) -> Result<String, Error> {
        let mut response = self.request(false, |buf| {
            frontend::query(sql, buf)?;
            Ok(())
        })?;
        let mut error = None;
        let mut tag = String::new();
        loop {
            match response.next()? {
                Message::CommandComplete(body) => {
                    tag.clear();
                    tag.push_str(body.tag()?);
                }
                Message::ErrorResponse(body) if error.is_none() => {
                    error = Some(db_error(body.fields()));
                }
                Message::CopyInResponse(_) => {
                    error = error.or(Some(refuse_copy(self, false)?));
                }
                Message::CopyOutResponse(_) => error = error.or(Some(copy_out_refused())),
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        error.map_or(Ok(tag), Err)
    }
}

/// A `COPY ... FROM STDIN` met by a query method: the copy is ended on the
/// server (see `Connection::refuse_copy`)
/// and the caller gets [`Error::CopyNotAllowed`]; `Err` when the connection
/// had to be closed instead.
fn refuse_copy(client: &Client, extended: bool) -> Result<Error, Error> {
    if client.connection().refuse_copy(extended) {
        Ok(Error::CopyNotAllowed(
            "COPY ... FROM STDIN needs copy_in(), not a query method",
        ))
    } else {
        Err(client.connection().closed_error())
    }
}

fn copy_out_refused() -> Error {
    Error::CopyNotAllowed("COPY ... TO STDOUT needs copy_out(), not a query method")
}

fn unexpected(phase: &str) -> Error {
    Error::Protocol(format!("unexpected message in the answer to a {phase}"))
}

/// Encodes `Bind` for the unnamed portal, all values and results binary.
fn encode_bind(
    statement: &Statement,
    params: &[Param<'_>],
    buf: &mut BytesMut,
) -> Result<(), Error> {
    let mut failed_at = 0;
    let result = frontend::bind(
        "",
        statement.name(),
        Some(1),
        params.iter().zip(statement.params()).enumerate(),
        |(i, (param, ty)), buf| {
            failed_at = i;
            match param.to_sql_checked(ty, buf) {
                Ok(IsNull::No) => Ok(postgres_protocol::IsNull::No),
                Ok(IsNull::Yes) => Ok(postgres_protocol::IsNull::Yes),
                Err(e) => Err(e),
            }
        },
        Some(1),
        buf,
    );
    match result {
        Ok(()) => Ok(()),
        Err(frontend::BindError::Conversion(source)) => Err(Error::ToSql {
            index: failed_at + 1,
            source,
        }),
        Err(frontend::BindError::Serialization(e)) => Err(Error::ToSql {
            index: failed_at + 1,
            source: Box::new(e),
        }),
    }
}

/// The row count at the end of a command tag (`INSERT 0 5`, `UPDATE 2`).
pub(crate) fn rows_affected(tag: &str) -> u64 {
    tag.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The type for an OID; types outside the built-in catalog get a
/// placeholder that only raw access and `FromSql` impls accepting any type
/// can read.
pub(crate) fn type_for_oid(oid: u32) -> Type {
    Type::from_oid(oid).unwrap_or_else(|| {
        Type::new(
            format!("oid_{oid}"),
            oid,
            postgres_types::Kind::Simple,
            "public".to_owned(),
        )
    })
}
