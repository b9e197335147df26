//! What a `CommandComplete` tag says: how many rows the command touched,
//! and whether it made the server forget the session's prepared statements.

/// The row count at the end of a command tag (`INSERT 0 5`, `UPDATE 2`).
pub(crate) fn rows_affected(tag: &str) -> u64 {
    tag.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The row count at the end of a command tag (`INSERT 0 5`, `SELECT 1`),
/// 0 when the tag has none: as [`rows_affected`], on bytes.
pub(crate) fn tag_row_count(tag: &[u8]) -> u64 {
    let last = tag.rsplit(|&b| b == b' ').next().unwrap_or_default();
    if last.is_empty() {
        return 0;
    }
    last.iter()
        .try_fold(0u64, |count, &b| {
            if b.is_ascii_digit() {
                count.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            } else {
                None
            }
        })
        .unwrap_or(0)
}

/// True for the command tags of statements after which the server knows
/// no prepared statement of the session.
pub(crate) fn forgets_prepared_statements(tag: &[u8]) -> bool {
    tag == b"DISCARD ALL" || tag == b"DEALLOCATE ALL"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_row_counts_agree_with_the_string_parser() {
        for tag in [
            "SELECT 1",
            "INSERT 0 5",
            "UPDATE 20",
            "BEGIN",
            "",
            "COPY 18446744073709551615",
            "COPY 18446744073709551616",
            "DELETE -1",
            "SELECT 1 ",
        ] {
            assert_eq!(tag_row_count(tag.as_bytes()), rows_affected(tag), "{tag:?}");
        }
    }

    #[test]
    fn only_discard_all_and_deallocate_all_forget_prepared_statements() {
        assert!(forgets_prepared_statements(b"DISCARD ALL"));
        assert!(forgets_prepared_statements(b"DEALLOCATE ALL"));
        assert!(!forgets_prepared_statements(b"DEALLOCATE"));
        assert!(!forgets_prepared_statements(b"DISCARD PLANS"));
    }
}
