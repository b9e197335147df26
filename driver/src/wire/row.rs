//! Result rows: the raw `DataRow` bytes, decoded lazily through `FromSql`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::DataRowBody;
use postgres_types::{FromSql, WasNull, WrongType};

use crate::error::Error;
use crate::wire::statement::Column;

/// Something that picks a column of a row: a `usize` position or a `&str`
/// name.
pub trait RowIndex: fmt::Display {
    /// The position of the column in `columns`, if there is one.
    fn index(&self, columns: &[Column]) -> Option<usize>;
}

impl RowIndex for usize {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl RowIndex for str {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        columns.iter().position(|c| c.name() == self).or_else(|| {
            columns
                .iter()
                .position(|c| c.name().eq_ignore_ascii_case(self))
        })
    }
}

impl RowIndex for String {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        self.as_str().index(columns)
    }
}

impl<T: RowIndex + ?Sized> RowIndex for &T {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        (**self).index(columns)
    }
}

/// How many value positions a row keeps without a heap allocation.
const INLINE_VALUES: usize = 8;

/// Where each value lies in a row's bytes: inline for narrow rows (no
/// allocation per row), on the heap for wide ones.
enum Ranges {
    /// `(start, length)` per value; a length of `u32::MAX` is NULL.
    Inline([(u32, u32); INLINE_VALUES]),
    Heap(Vec<Option<Range<usize>>>),
}

impl Ranges {
    fn collect(body: &DataRowBody, count: usize) -> Result<Ranges, std::io::Error> {
        let mut iter = body.ranges();
        if count > INLINE_VALUES {
            return Ok(Ranges::Heap(iter.collect()?));
        }
        let mut inline = [(0, 0); INLINE_VALUES];
        let mut seen = 0;
        while let Some(range) = iter.next()? {
            if seen < INLINE_VALUES {
                // A DataRow is at most 1 GiB, so offsets fit in u32.
                inline[seen] = match range {
                    Some(r) => (r.start as u32, (r.end - r.start) as u32),
                    None => (0, u32::MAX),
                };
            }
            seen += 1;
        }
        if seen == count {
            Ok(Ranges::Inline(inline))
        } else {
            // The caller reports the mismatch with the real count.
            Ok(Ranges::Heap(body.ranges().collect()?))
        }
    }

    fn len(&self, columns: usize) -> usize {
        match self {
            Ranges::Inline(_) => columns,
            Ranges::Heap(ranges) => ranges.len(),
        }
    }

    fn get(&self, i: usize) -> Option<Option<Range<usize>>> {
        match self {
            Ranges::Inline(inline) => inline.get(i).map(|&(start, len)| {
                (len != u32::MAX).then(|| start as usize..start as usize + len as usize)
            }),
            Ranges::Heap(ranges) => ranges.get(i).cloned(),
        }
    }
}

/// One result row.
pub struct Row {
    columns: Arc<[Column]>,
    body: DataRowBody,
    ranges: Ranges,
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Row")
            .field("columns", &self.columns)
            .field("bytes", &self.body.buffer().len())
            .finish()
    }
}

impl Row {
    pub(crate) fn new(columns: Arc<[Column]>, body: DataRowBody) -> Result<Row, Error> {
        let ranges = Ranges::collect(&body, columns.len())
            .map_err(|e| Error::Protocol(format!("malformed data row: {e}")))?;
        let values = ranges.len(columns.len());
        if values != columns.len() {
            return Err(Error::Protocol(format!(
                "data row has {values} values for {} columns",
                columns.len()
            )));
        }
        Ok(Row {
            columns,
            body,
            ranges,
        })
    }

    /// The row's columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True when the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The value of a column, by position or name.
    ///
    /// # Panics
    ///
    /// When the column does not exist or its value cannot be decoded into
    /// `T` (as rust-postgres does); [`Row::try_get`] returns the error.
    #[track_caller]
    pub fn get<'a, I, T>(&'a self, idx: I) -> T
    where
        I: RowIndex,
        T: FromSql<'a>,
    {
        match self.try_get(idx) {
            Ok(value) => value,
            Err(e) => panic!("{e}"),
        }
    }

    /// The value of a column, by position or name, or
    /// [`Error::ColumnNotFound`] / [`Error::FromSql`] naming the column.
    pub fn try_get<'a, I, T>(&'a self, idx: I) -> Result<T, Error>
    where
        I: RowIndex,
        T: FromSql<'a>,
    {
        let i = idx
            .index(&self.columns)
            .ok_or_else(|| Error::ColumnNotFound(idx.to_string()))?;
        let column = &self.columns[i];
        let ty = column.type_();
        if !T::accepts(ty) {
            return Err(Error::FromSql {
                column: column.name().to_owned(),
                source: Box::new(WrongType::new::<T>(ty.clone())),
            });
        }
        let raw = self.ranges.get(i).flatten().map(|r| &self.body.buffer()[r]);
        T::from_sql_nullable(ty, raw).map_err(|source| {
            let source = if source.is::<WasNull>() {
                format!(
                    "the value is NULL; use Option<{}>",
                    std::any::type_name::<T>()
                )
                .into()
            } else {
                source
            };
            Error::FromSql {
                column: column.name().to_owned(),
                source,
            }
        })
    }

    /// The raw binary value of a column (`None` for NULL).
    pub fn raw(&self, idx: usize) -> Option<&[u8]> {
        if idx >= self.columns.len() {
            return None;
        }
        self.ranges.get(idx)?.map(|r| &self.body.buffer()[r])
    }
}
