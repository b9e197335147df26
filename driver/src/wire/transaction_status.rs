//! [`TransactionStatus`]: the transaction state a `ReadyForQuery` reports.

/// Whether the connection is inside a transaction, as reported by the
/// server's last `ReadyForQuery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TransactionStatus {
    /// Not in a transaction.
    Idle = b'I',
    /// In a transaction.
    InTransaction = b'T',
    /// In a failed transaction: only `ROLLBACK` will be accepted.
    Failed = b'E',
}

impl TransactionStatus {
    pub(crate) fn from_byte(b: u8) -> TransactionStatus {
        match b {
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => TransactionStatus::Idle,
        }
    }
}
