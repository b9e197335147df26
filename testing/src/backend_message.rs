//! The bytes of backend messages, for a [`ScriptedServer`](crate::ScriptedServer)
//! to send: well-formed ones to get a client logged in and answered, and
//! the raw [`message`] to build anything a hostile or broken server might
//! send (wrong lengths, unknown types, garbage bodies).

/// One backend message: `tag`, a length word counting itself and the body,
/// then `body`. Any tag and any body: nothing is checked.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(body.len() + 4).expect("a test message under 4 GB");
    header(tag, length)
        .into_iter()
        .chain(body.iter().copied())
        .collect()
}

/// Only the 5-byte header of a message announcing `length` (the length
/// word's value, which counts itself): what a server sends before
/// streaming a body, or a lie about one.
pub fn header(tag: u8, length: u32) -> Vec<u8> {
    let mut bytes = vec![tag];
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes
}

/// `AuthenticationOk`.
pub fn authentication_ok() -> Vec<u8> {
    message(b'R', &0u32.to_be_bytes())
}

/// `ParameterStatus` `name` = `value`.
pub fn parameter_status(name: &str, value: &str) -> Vec<u8> {
    let mut body = cstring(name);
    body.extend(cstring(value));
    message(b'S', &body)
}

/// `BackendKeyData`.
pub fn backend_key_data(process_id: i32, secret_key: i32) -> Vec<u8> {
    let mut body = process_id.to_be_bytes().to_vec();
    body.extend_from_slice(&secret_key.to_be_bytes());
    message(b'K', &body)
}

/// `ReadyForQuery` with transaction status `status` (`b'I'`, `b'T'`,
/// `b'E'`).
pub fn ready_for_query(status: u8) -> Vec<u8> {
    message(b'Z', &[status])
}

/// Everything a server sends after the startup message to let a client in
/// without a password: `AuthenticationOk`, the parameters a client
/// expects (UTF8, server version 15), the backend key, `ReadyForQuery`.
pub fn trust_login() -> Vec<u8> {
    let mut bytes = authentication_ok();
    for (name, value) in [
        ("client_encoding", "UTF8"),
        ("server_encoding", "UTF8"),
        ("server_version", "15.0"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "UTC"),
    ] {
        bytes.extend(parameter_status(name, value));
    }
    bytes.extend(backend_key_data(4242, 1717));
    bytes.extend(ready_for_query(b'I'));
    bytes
}

/// `ParseComplete`.
pub fn parse_complete() -> Vec<u8> {
    message(b'1', &[])
}

/// `BindComplete`.
pub fn bind_complete() -> Vec<u8> {
    message(b'2', &[])
}

/// `NoData`.
pub fn no_data() -> Vec<u8> {
    message(b'n', &[])
}

/// `ParameterDescription` with these parameter type oids.
pub fn parameter_description(oids: &[u32]) -> Vec<u8> {
    let count = u16::try_from(oids.len()).expect("at most 65535 parameters");
    let mut body = count.to_be_bytes().to_vec();
    for oid in oids {
        body.extend_from_slice(&oid.to_be_bytes());
    }
    message(b't', &body)
}

/// `RowDescription` of text-format columns, each a name and a type oid.
pub fn row_description(columns: &[(&str, u32)]) -> Vec<u8> {
    let count = u16::try_from(columns.len()).expect("at most 65535 columns");
    let mut body = count.to_be_bytes().to_vec();
    for (name, oid) in columns {
        body.extend(cstring(name));
        body.extend_from_slice(&0u32.to_be_bytes()); // table oid
        body.extend_from_slice(&0u16.to_be_bytes()); // column number
        body.extend_from_slice(&oid.to_be_bytes());
        body.extend_from_slice(&(-1i16).to_be_bytes()); // type size
        body.extend_from_slice(&(-1i32).to_be_bytes()); // type modifier
        body.extend_from_slice(&0u16.to_be_bytes()); // format: text
    }
    message(b'T', &body)
}

/// `DataRow` of these values (`None`: NULL).
pub fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let count = u16::try_from(values.len()).expect("at most 65535 values");
    let mut body = count.to_be_bytes().to_vec();
    for value in values {
        match value {
            Some(bytes) => {
                let length = i32::try_from(bytes.len()).expect("a value under 2 GB");
                body.extend_from_slice(&length.to_be_bytes());
                body.extend_from_slice(bytes);
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    message(b'D', &body)
}

/// `CommandComplete` with `tag` (`SELECT 1`, `INSERT 0 1`, ...).
pub fn command_complete(tag: &str) -> Vec<u8> {
    message(b'C', &cstring(tag))
}

/// `ErrorResponse` with severity `ERROR`, `code` and `text`.
pub fn error_response(code: &str, text: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [(b'S', "ERROR"), (b'V', "ERROR"), (b'C', code), (b'M', text)] {
        body.push(field);
        body.extend(cstring(value));
    }
    body.push(0);
    message(b'E', &body)
}

fn cstring(text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_counts_its_length_word_and_body() {
        assert_eq!(message(b'Z', b"I"), vec![b'Z', 0, 0, 0, 5, b'I']);
        assert_eq!(
            header(b'C', 1_500_000_000)[1..],
            1_500_000_000u32.to_be_bytes()
        );
        assert_eq!(authentication_ok(), vec![b'R', 0, 0, 0, 8, 0, 0, 0, 0]);
    }

    #[test]
    fn rows_and_descriptions_have_the_protocol_layout() {
        let row = data_row(&[Some(b"ab"), None]);
        assert_eq!(
            row,
            vec![b'D', 0, 0, 0, 16, 0, 2, 0, 0, 0, 2, b'a', b'b', 255, 255, 255, 255]
        );
        let description = row_description(&[("x", 23)]);
        assert_eq!(description.len(), 1 + 4 + 2 + 2 + 18);
    }
}
