//! The shape of a complete backend message's body, by its type
//! ([`check_body`]): counts that match what follows, strings that end,
//! values no longer than the message. [`next_message`] checks every
//! message the reader frames after login with it, without copying or
//! allocating, so a malformed message closes the connection before any
//! requester decodes it.
//!
//! [`next_message`]: super::frame::next_message

use super::frame::FrameError;

/// Checks that a complete message's body (after the 5-byte header) has its
/// type's shape, without copying or allocating. Only types that
/// [`check_header`](super::frame::check_header) accepts after login are checked here; startup parses
/// its few messages itself.
#[inline]
pub(crate) fn check_body(tag: u8, body: &[u8]) -> Result<(), FrameError> {
    let malformed = |what| Err(FrameError::Malformed { tag, what });
    let ok = match tag {
        b'1' | b'2' | b'3' | b'n' | b'I' | b's' | b'c' => body.is_empty(),
        b'Z' => body.len() == 1 && matches!(body[0], b'I' | b'T' | b'E'),
        // A NUL inside the tag ends it early; the requester reads up to
        // the first one.
        b'C' => body.last() == Some(&0),
        b'S' => cstrings(body, 2),
        b'A' => body.len() > 4 && cstrings(&body[4..], 2),
        b'E' | b'N' => fields(body),
        b'D' => return data_row(body).map_or_else(malformed, Ok),
        b'T' => return row_description(body).map_or_else(malformed, Ok),
        b't' => counted(body).is_some_and(|(n, rest)| rest.len() == 4 * n),
        b'G' | b'H' | b'W' => {
            counted(body.get(1..).unwrap_or_default()).is_some_and(|(n, rest)| rest.len() == 2 * n)
        }
        b'd' => true,
        _ => return Err(FrameError::UnknownType { tag }),
    };
    if ok {
        Ok(())
    } else {
        malformed("its body does not match its type")
    }
}

/// A 16-bit count and what follows it.
fn counted(body: &[u8]) -> Option<(usize, &[u8])> {
    let count = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    Some((count, &body[2..]))
}

/// Exactly `n` NUL-terminated strings.
fn cstrings(mut body: &[u8], n: usize) -> bool {
    for _ in 0..n {
        match body.iter().position(|&b| b == 0) {
            Some(end) => body = &body[end + 1..],
            None => return false,
        }
    }
    body.is_empty()
}

/// Error and notice fields: (code byte, string) pairs ending with a 0 code.
fn fields(mut body: &[u8]) -> bool {
    loop {
        match body.split_first() {
            Some((0, rest)) => return rest.is_empty(),
            Some((_, rest)) => match rest.iter().position(|&b| b == 0) {
                Some(end) => body = &rest[end + 1..],
                None => return false,
            },
            None => return false,
        }
    }
}

fn data_row(body: &[u8]) -> Result<(), &'static str> {
    let (count, mut rest) = counted(body).ok_or("no column count")?;
    for _ in 0..count {
        let Some((word, after)) = rest.split_first_chunk::<4>() else {
            return Err("a value's length is missing");
        };
        let length = i32::from_be_bytes(*word);
        rest = after;
        if length == -1 {
            continue;
        }
        let length = usize::try_from(length).map_err(|_| "a value has a negative length")?;
        rest = rest
            .get(length..)
            .ok_or("a value is longer than the message")?;
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err("bytes after the last value")
    }
}

fn row_description(body: &[u8]) -> Result<(), &'static str> {
    let (count, mut rest) = counted(body).ok_or("no column count")?;
    for _ in 0..count {
        if rest.is_empty() {
            return Err("shorter than its column count");
        }
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("a column name is not terminated")?;
        // Table oid, column number, type oid, type size, type modifier,
        // format code.
        rest = rest
            .get(end + 1 + 18..)
            .ok_or("shorter than its column count")?;
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err("bytes after the last column")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_against_their_type() {
        assert!(check_body(b'Z', b"I").is_ok());
        assert!(check_body(b'Z', b"X").is_err());
        assert!(check_body(b'C', b"SELECT 1\0").is_ok());
        assert!(check_body(b'C', b"SELECT 1").is_err());
        assert!(check_body(b'C', b"").is_err());
        assert!(check_body(b'2', b"").is_ok());
        assert!(check_body(b'2', b"x").is_err());
        // One column of 3 bytes, one NULL.
        let row = [0, 2, 0, 0, 0, 3, b'a', b'b', b'c', 0xff, 0xff, 0xff, 0xff];
        assert!(check_body(b'D', &row).is_ok());
        assert!(check_body(b'D', &row[..row.len() - 1]).is_err());
        let mut long = row.to_vec();
        long.push(0);
        assert!(check_body(b'D', &long).is_err());
        // A row description claiming two columns, holding one.
        let mut description = vec![0, 2];
        description.extend_from_slice(b"id\0");
        description.extend_from_slice(&[0; 18]);
        assert!(check_body(b'T', &description).is_err());
        description[1] = 1;
        assert!(check_body(b'T', &description).is_ok());
        assert!(check_body(b'E', b"SERROR\0Mboom\0\0").is_ok());
        assert!(check_body(b'E', b"SERROR\0Mboom\0").is_err());
        assert!(check_body(b't', &[0, 1, 0, 0, 0, 23]).is_ok());
        assert!(check_body(b't', &[0, 2, 0, 0, 0, 23]).is_err());
        assert!(check_body(b'H', &[0, 0, 1, 0, 0]).is_ok());
        assert!(check_body(b'A', b"\0\0\0\x07chan\0msg\0").is_ok());
        assert!(check_body(b'S', b"TimeZone\0UTC\0").is_ok());
        assert!(check_body(b'S', b"TimeZone\0UTC").is_err());
    }
}
