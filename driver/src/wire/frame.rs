//! What a backend message may look like before anything is buffered for
//! it: its size by phase and type ([`check_header`]), its shape
//! ([`check_body`], in `message_shape.rs`), and whether it may follow the message before it
//! ([`MessageOrder`]). The reader of a connection and the startup phase
//! check every message with these, so a hostile or broken server (or
//! anyone on the path of a plain connection) is caught at the first bad
//! message, not when — or if — the answer ends.
//!
//! The limits follow libpq's: an authentication request is 8 to 2,000
//! bytes; before login nothing may exceed 30,000 bytes; after login only
//! the messages whose size follows the data (`RowDescription`,
//! `ParameterDescription`, `DataRow`, `CopyData`, `ErrorResponse`,
//! `NoticeResponse`, `NotificationResponse`) may exceed 30,000 bytes, up to
//! the connection's `max_message_bytes`.

use std::fmt;

use super::message_shape::check_body;

#[cfg(test)]
use crate::config::DEFAULT_MAX_MESSAGE_BYTES;

/// The largest message any type may have before login, and after login
/// every type whose size does not follow the data (libpq's bound).
const SMALL_MESSAGE_MAX: usize = crate::config::MIN_MAX_MESSAGE_BYTES;
/// The largest authentication request (libpq's bound).
const AUTH_REQUEST_MAX: usize = 2_000;
/// The smallest authentication request: its length word and its code.
const AUTH_REQUEST_MIN: usize = 8;

/// Which part of the conversation a message arrives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// From the startup message until the first `ReadyForQuery`.
    Startup,
    /// After login, with the connection's `max_message_bytes`.
    Ready {
        /// The bound of the messages that may be long.
        max_message_bytes: usize,
    },
}

/// Why a message was refused; the connection cannot continue after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A length word below 4 (it counts itself).
    BadLength { tag: u8, length: usize },
    /// A message longer than its phase and type allow.
    TooLong { tag: u8, length: usize, max: usize },
    /// A message type the backend never sends in this phase.
    UnknownType { tag: u8 },
    /// A message whose body does not have its type's shape.
    Malformed { tag: u8, what: &'static str },
    /// A message that cannot follow the one before it.
    OutOfOrder { tag: u8, after: u8 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::BadLength { tag, length } => {
                write!(f, "message {} has invalid length {length}", Shown(tag))
            }
            FrameError::TooLong { tag, length, max } => write!(
                f,
                "message {} announces {length} bytes, over the limit of {max}",
                Shown(tag)
            ),
            FrameError::UnknownType { tag } => {
                write!(f, "unexpected message type {}", Shown(tag))
            }
            FrameError::Malformed { tag, what } => {
                write!(f, "malformed message {}: {what}", Shown(tag))
            }
            FrameError::OutOfOrder { tag, after } => write!(
                f,
                "message {} cannot follow message {}",
                Shown(tag),
                Shown(after)
            ),
        }
    }
}

/// A message type as the protocol's documentation names it: the letter
/// when printable, else its byte value.
struct Shown(u8);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0 as char)
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

/// Checks a message's 5-byte header — its type and length word — against
/// the phase, before anything of its body is buffered. Returns the whole
/// message's size (tag included).
#[inline]
pub(crate) fn check_header(tag: u8, length_word: u32, phase: Phase) -> Result<usize, FrameError> {
    let length = length_word as usize;
    if length < 4 {
        return Err(FrameError::BadLength { tag, length });
    }
    let max = match phase {
        Phase::Ready { max_message_bytes } => match READY_CLASS[usize::from(tag)] {
            LONG => max_message_bytes,
            SMALL => SMALL_MESSAGE_MAX,
            _ => return Err(FrameError::UnknownType { tag }),
        },
        Phase::Startup => match tag {
            b'R' => {
                if length < AUTH_REQUEST_MIN {
                    return Err(FrameError::BadLength { tag, length });
                }
                AUTH_REQUEST_MAX
            }
            b'E' | b'N' | b'S' | b'K' | b'Z' | b'v' => SMALL_MESSAGE_MAX,
            _ => return Err(FrameError::UnknownType { tag }),
        },
    };
    if length > max {
        return Err(FrameError::TooLong { tag, length, max });
    }
    Ok(length + 1)
}

/// A message type the backend never sends after login.
const NEVER: u8 = 0;
/// A type bounded by [`SMALL_MESSAGE_MAX`] after login.
const SMALL: u8 = 1;
/// A type whose size follows the data, bounded by `max_message_bytes`.
const LONG: u8 = 2;

/// The class of each message type after login, by its type byte: one load
/// instead of a chain of comparisons on the hot path.
static READY_CLASS: [u8; 256] = {
    let mut class = [NEVER; 256];
    let long = *b"TtDdENA";
    let mut i = 0;
    while i < long.len() {
        class[long[i] as usize] = LONG;
        i += 1;
    }
    let small = *b"123CcGHWInsSZ";
    let mut i = 0;
    while i < small.len() {
        class[small[i] as usize] = SMALL;
        i += 1;
    }
    class
};

/// What the start of a receive buffer holds, by [`next_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framed {
    /// Fewer than the 5 bytes of a header.
    NeedHeader,
    /// A message whose header passed [`check_header`], not complete yet:
    /// `total` bytes in all (the most its buffer need hold).
    Partial { total: usize },
    /// A complete message of `total` bytes whose header, body and order
    /// passed every check.
    Message { tag: u8, total: usize },
}

/// Frames the message at the start of `buf`: checks its header as soon as
/// the 5 bytes are there, its body and its order (in `order`, which then
/// counts it) once it is complete.
#[inline]
pub(crate) fn next_message(
    buf: &[u8],
    phase: Phase,
    order: &mut MessageOrder,
) -> Result<Framed, FrameError> {
    let Some(&[tag, a, b, c, d]) = buf.first_chunk::<5>() else {
        return Ok(Framed::NeedHeader);
    };
    let total = check_header(tag, u32::from_be_bytes([a, b, c, d]), phase)?;
    if buf.len() < total {
        return Ok(Framed::Partial { total });
    }
    check_body(tag, &buf[5..total])?;
    order.accept(tag)?;
    Ok(Framed::Message { tag, total })
}

/// The order of an answer's messages, as far as the reader can tell it
/// without knowing the requests: rows only after a description (or a
/// `BindComplete`, whose statement's description the requester cached),
/// copy data only inside a COPY.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageOrder {
    /// The last message that was not asynchronous (`A`, `N`, `S`).
    last: u8,
    /// Inside `COPY TO STDOUT` (or `COPY BOTH`): `d` and `c` may come.
    copy_out: bool,
}

impl Default for MessageOrder {
    /// After login: the last message was `ReadyForQuery`.
    fn default() -> MessageOrder {
        MessageOrder {
            last: b'Z',
            copy_out: false,
        }
    }
}

impl MessageOrder {
    /// Accepts `tag` after the messages seen so far, or says why not.
    #[inline]
    pub(crate) fn accept(&mut self, tag: u8) -> Result<(), FrameError> {
        let fits = match tag {
            b'A' | b'N' | b'S' => return Ok(()),
            b'D' => matches!(self.last, b'T' | b'D' | b'2'),
            b'd' => self.copy_out,
            b'c' => std::mem::replace(&mut self.copy_out, false),
            b'H' | b'W' => {
                self.copy_out = true;
                true
            }
            b'C' | b'E' | b'Z' => {
                self.copy_out = false;
                true
            }
            _ => true,
        };
        if !fits {
            return Err(FrameError::OutOfOrder {
                tag,
                after: self.last,
            });
        }
        self.last = tag;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const READY: Phase = Phase::Ready {
        max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
    };

    #[test]
    fn an_authentication_request_is_bounded_as_libpq_bounds_it() {
        assert_eq!(check_header(b'R', 8, Phase::Startup), Ok(9));
        assert!(matches!(
            check_header(b'R', 7, Phase::Startup),
            Err(FrameError::BadLength { .. })
        ));
        assert!(matches!(
            check_header(b'R', 2_001, Phase::Startup),
            Err(FrameError::TooLong { max: 2_000, .. })
        ));
        assert!(matches!(
            check_header(b'R', 1_500_000_000, Phase::Startup),
            Err(FrameError::TooLong { .. })
        ));
    }

    #[test]
    fn before_login_nothing_may_be_long_and_rows_are_unknown() {
        assert_eq!(check_header(b'E', 30_000, Phase::Startup), Ok(30_001));
        assert!(check_header(b'E', 30_001, Phase::Startup).is_err());
        assert_eq!(
            check_header(b'D', 10, Phase::Startup),
            Err(FrameError::UnknownType { tag: b'D' })
        );
    }

    #[test]
    fn after_login_only_data_sized_types_may_be_long() {
        assert!(check_header(b'D', 500_000_000, READY).is_ok());
        assert!(check_header(b'T', 100_000, READY).is_ok());
        assert!(matches!(
            check_header(b'C', 1_500_000_000, READY),
            Err(FrameError::TooLong { max: 30_000, .. })
        ));
        assert!(check_header(b'D', 1 << 30, READY).is_err());
        let small = Phase::Ready {
            max_message_bytes: 1_000,
        };
        assert!(check_header(b'D', 1_001, small).is_err());
        assert!(check_header(b'Z', 5, small).is_ok());
        assert_eq!(
            check_header(b'R', 8, READY),
            Err(FrameError::UnknownType { tag: b'R' })
        );
        assert_eq!(
            check_header(b'x', 4, READY),
            Err(FrameError::UnknownType { tag: b'x' })
        );
        assert!(matches!(
            check_header(b'D', 3, READY),
            Err(FrameError::BadLength { .. })
        ));
    }

    #[test]
    fn rows_need_a_description_and_copy_data_a_copy() {
        let mut order = MessageOrder::default();
        assert!(order.accept(b'D').is_err());
        let mut order = MessageOrder::default();
        for tag in [
            b'1', b'2', b'T', b'D', b'N', b'D', b'C', b'Z', b'2', b'D', b'C', b'Z',
        ] {
            order.accept(tag).unwrap();
        }
        assert!(order.accept(b'd').is_err());
        let mut order = MessageOrder::default();
        for tag in [b'H', b'd', b'd', b'c', b'C', b'Z'] {
            order.accept(tag).unwrap();
        }
        assert!(order.accept(b'c').is_err());
    }

    /// Feeds `stream` to [`next_message`] in chunks of the given sizes, as
    /// the reader does, consuming whole messages. Returns how it ended:
    /// `Ok(leftover)` (bytes of an incomplete message still wanted) or the
    /// error; checks on the way that no message ever asks for room over
    /// its bound.
    fn feed(stream: &[u8], chunks: &[usize], max: usize) -> Result<usize, FrameError> {
        let phase = Phase::Ready {
            max_message_bytes: max,
        };
        let mut order = MessageOrder::default();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut chunk = chunks.iter().cycle();
        while fed < stream.len() {
            let n = (*chunk.next().unwrap()).clamp(1, stream.len() - fed);
            buf.extend_from_slice(&stream[fed..fed + n]);
            fed += n;
            loop {
                match next_message(&buf, phase, &mut order)? {
                    Framed::NeedHeader => break,
                    Framed::Partial { total } => {
                        assert!(total <= max + 1, "asked for {total} bytes");
                        break;
                    }
                    Framed::Message { total, .. } => {
                        assert!(total <= max + 1);
                        buf.drain(..total);
                    }
                }
            }
        }
        Ok(buf.len())
    }

    /// A well-formed answer: each element one message's bytes.
    fn answer() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let row = prop::collection::vec(
            prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
            0..6,
        );
        (prop::collection::vec(row, 0..8), 0..3usize).prop_map(|(rows, shape)| {
            let mut messages = Vec::new();
            match shape {
                0 => {
                    messages.push(message(b'1', b""));
                    messages.push(message(b'2', b""));
                    messages.push(message(b'T', &description(2)));
                }
                1 => messages.push(message(b'2', b"")),
                _ => messages.push(message(b'T', &description(1))),
            }
            messages.push(message(b'N', b"SNOTICE\0Mhi\0\0"));
            for values in rows {
                messages.push(message(b'D', &data_row(&values)));
            }
            messages.push(message(b'C', b"SELECT 1\0"));
            messages.push(message(b'Z', b"I"));
            messages
        })
    }

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    fn description(columns: u16) -> Vec<u8> {
        let mut body = columns.to_be_bytes().to_vec();
        for _ in 0..columns {
            body.extend_from_slice(b"c\0");
            body.extend_from_slice(&[0; 18]);
        }
        body
    }

    fn data_row(values: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut body = (values.len() as u16).to_be_bytes().to_vec();
        for value in values {
            match value {
                Some(v) => {
                    body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    body.extend_from_slice(v);
                }
                None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        body
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Arbitrary bytes: never a panic, never room asked over the bound
        /// (64 KiB here), and garbage is refused within the stream — what
        /// is left is at most one incomplete message with a valid header.
        #[test]
        fn arbitrary_bytes_never_panic_or_ask_for_more_than_the_bound(
            stream in prop::collection::vec(any::<u8>(), 0..4096),
            chunks in prop::collection::vec(1usize..512, 1..8),
        ) {
            let max = 65_536;
            if let Ok(left) = feed(&stream, &chunks, max) {
                if left >= 5 {
                    let start = stream.len() - left;
                    let word = u32::from_be_bytes(stream[start + 1..start + 5].try_into().unwrap());
                    let phase = Phase::Ready { max_message_bytes: max };
                    let valid = check_header(stream[start], word, phase).is_ok();
                    prop_assert!(valid, "an invalid header was left waiting");
                }
            }
        }

        /// Well-formed answers pass whole, however the bytes are chunked.
        #[test]
        fn well_formed_answers_pass_in_any_chunking(
            answers in prop::collection::vec(answer(), 1..4),
            chunks in prop::collection::vec(1usize..64, 1..8),
        ) {
            let stream: Vec<u8> = answers.into_iter().flatten().flatten().collect();
            prop_assert_eq!(feed(&stream, &chunks, 65_536), Ok(0));
        }

        /// One byte of a well-formed answer changed: never a panic, and
        /// either refused or still well-formed (some changes are harmless,
        /// e.g. inside a value).
        #[test]
        fn a_corrupted_answer_never_panics(
            answer in answer(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            chunks in prop::collection::vec(1usize..64, 1..8),
        ) {
            let mut stream: Vec<u8> = answer.into_iter().flatten().collect();
            let i = at.index(stream.len());
            stream[i] = byte;
            let _ = feed(&stream, &chunks, 65_536);
        }
    }
}
