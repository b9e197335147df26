//! [`RowSink`]: where the rows of an extended-protocol answer go while
//! [`read_results`](super::request::read_results) reads it — nowhere
//! (`execute`), into a `Vec<Row>` (`query`), or to a caller's function as
//! each row is decoded ([`EachRow`], `Client::for_each_row`), in which case
//! the requester is woken as parts of the answer arrive, so a large result
//! is decoded while the rest is still on the wire and no row is kept.

use crate::error::Error;
use crate::wire::row::Row;

/// Where the rows of an answer go.
pub(crate) enum RowSink<'a> {
    /// Rows are not wanted (execute).
    Discard,
    /// Rows are handed over one at a time as they are decoded: kept in a
    /// `Vec<Row>`, or given to a caller's function ([`EachRow`]).
    Collect(&'a mut dyn RowReceiver),
}

/// What takes the rows of an answer, one at a time, as they are decoded.
pub(crate) trait RowReceiver {
    /// Takes one row; an error stops the delivery (the rest of the answer
    /// is read and dropped) and becomes the request's answer.
    fn receive(&mut self, row: Row) -> Result<(), Error>;
    /// The statement runs again (it had to be prepared again): forget the
    /// rows received so far.
    fn clear(&mut self);
    /// Whether rows should be handed over while the answer still arrives
    /// (the requester is then woken as parts of it arrive, not once at
    /// its end).
    fn streams(&self) -> bool {
        false
    }
}

impl RowReceiver for Vec<Row> {
    fn receive(&mut self, row: Row) -> Result<(), Error> {
        self.push(row);
        Ok(())
    }

    fn clear(&mut self) {
        Vec::clear(self);
    }
}

/// A receiver handed on (the retry paths pass the sink they were given
/// again).
impl RowReceiver for &mut dyn RowReceiver {
    fn receive(&mut self, row: Row) -> Result<(), Error> {
        (**self).receive(row)
    }

    fn clear(&mut self) {
        (**self).clear();
    }

    fn streams(&self) -> bool {
        (**self).streams()
    }
}

/// A caller's function given each row as it is decoded, while the rest of
/// the answer is still arriving, so no row is kept by the driver
/// ([`Client::for_each_row`](crate::client::client::Client::for_each_row)).
pub(crate) struct EachRow<F> {
    on_row: F,
    delivered: u64,
    /// The statement ran again after rows had been delivered: they cannot
    /// be taken back, so the run fails instead of delivering them twice.
    restarted_late: bool,
}

impl<F: FnMut(Row) -> Result<(), Error>> EachRow<F> {
    pub(crate) fn new(on_row: F) -> Self {
        EachRow {
            on_row,
            delivered: 0,
            restarted_late: false,
        }
    }

    /// How many rows the function took.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }
}

impl<F: FnMut(Row) -> Result<(), Error>> RowReceiver for EachRow<F> {
    fn receive(&mut self, row: Row) -> Result<(), Error> {
        if self.restarted_late {
            return Err(Error::Protocol(
                "a statement ran again after it had delivered rows".to_owned(),
            ));
        }
        self.delivered += 1;
        (self.on_row)(row)
    }

    fn clear(&mut self) {
        // The statements that run again (one the server no longer knows,
        // a stale description, a grouped read the server skipped) fail
        // before their first row.
        self.restarted_late |= self.delivered > 0;
    }

    fn streams(&self) -> bool {
        true
    }
}

impl RowSink<'_> {
    /// The same sink, borrowed for one more run (the first was skipped
    /// and left nothing in it).
    pub(crate) fn reborrow(&mut self) -> RowSink<'_> {
        match self {
            RowSink::Discard => RowSink::Discard,
            RowSink::Collect(rows) => RowSink::Collect(rows),
        }
    }

    /// Whether the requester is woken as parts of the answer arrive (rows
    /// are then decoded while the rest is still on its way) rather than
    /// once at its end.
    pub(crate) fn streams(&self) -> bool {
        matches!(self, RowSink::Collect(rows) if rows.streams())
    }
}
