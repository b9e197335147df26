//! [`Notification`]: a message sent with `NOTIFY`, as the server delivers it.

/// A message sent with `NOTIFY channel, 'payload'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    process_id: i32,
    channel: String,
    payload: String,
}

impl Notification {
    pub(crate) fn new(process_id: i32, channel: String, payload: String) -> Notification {
        Notification {
            process_id,
            channel,
            payload,
        }
    }

    /// The backend process that sent it.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// The channel it was sent on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The payload (empty when none was given).
    pub fn payload(&self) -> &str {
        &self.payload
    }
}
