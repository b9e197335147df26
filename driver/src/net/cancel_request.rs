//! The `CancelRequest`: sent on a socket of its own to ask the server to
//! cancel what one backend is running.

use std::io::{self, Read, Write};
use std::time::Instant;

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use crate::config::Config;
use crate::error::Error;
use crate::net::deadline::whole_millis;
use crate::net::open_socket::open_socket;

/// Sends a `CancelRequest` for backend `process_id` on a fresh socket and
/// waits until the server closed it (it has signalled the backend then), all
/// before `deadline`.
pub(crate) fn send_cancel(
    config: &Config,
    process_id: i32,
    secret_key: i32,
    deadline: Instant,
) -> Result<(), Error> {
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .map(whole_millis)
            .ok_or_else(|| Error::Io(io::Error::new(io::ErrorKind::TimedOut, "cancel timed out")))
    };
    let mut socket = open_socket(config, Some(deadline))?;
    socket.set_timeouts(Some(left()?))?;
    let mut buf = BytesMut::with_capacity(16);
    frontend::cancel_request(process_id, secret_key, &mut buf);
    socket.write_all(&buf)?;
    let mut sink = [0u8; 64];
    loop {
        socket.set_timeouts(Some(left()?))?;
        match socket.read(&mut sink) {
            Ok(0) => return Ok(()),
            // Over TLS: the server hung up without a `close_notify`.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
