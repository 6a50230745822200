//! Table names end up in RocksDB keys, object-store paths and catalog identifiers, so they
//! are checked against one strict pattern before anything else looks at them:
//! `^[a-zA-Z][a-zA-Z0-9_-]{0,127}$`.

/// Longest accepted table name, in bytes (all accepted characters are ASCII).
pub const MAX_TABLE_NAME_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableNameError {
    #[error("table name is empty")]
    Empty,
    #[error("table name is {0} bytes long; at most {MAX_TABLE_NAME_LEN} are allowed")]
    TooLong(usize),
    #[error("table name must start with an ASCII letter")]
    BadFirstChar,
    #[error(
        "table name may contain only ASCII letters, digits, '_' and '-' (found {found} at byte {at})",
        found = crate::quote::quoted_char(*.0),
        at = .1
    )]
    BadChar(char, usize),
    #[error(
        "table names ending in {DEAD_LETTER_SUFFIX} are dead-letter tables, which only the node writes"
    )]
    Reserved,
}

/// Suffix of a typed table's dead-letter table (`orders__dlq`).
pub const DEAD_LETTER_SUFFIX: &str = "__dlq";

/// Checks a table name producers write to: [`validate_table_name`], and not a dead-letter
/// table's.
pub fn validate_producer_table(name: &str) -> Result<(), TableNameError> {
    validate_table_name(name)?;
    if name.ends_with(DEAD_LETTER_SUFFIX) {
        return Err(TableNameError::Reserved);
    }
    Ok(())
}

/// Checks `name` against `^[a-zA-Z][a-zA-Z0-9_-]{0,127}$`.
pub fn validate_table_name(name: &str) -> Result<(), TableNameError> {
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(TableNameError::Empty);
    };
    if bytes.len() > MAX_TABLE_NAME_LEN {
        return Err(TableNameError::TooLong(bytes.len()));
    }
    if !first.is_ascii_alphabetic() {
        return Err(TableNameError::BadFirstChar);
    }
    for (i, c) in name.char_indices() {
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(TableNameError::BadChar(c, i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_pattern() {
        for ok in ["a", "Events", "click_stream-2", &format!("a{}", "b".repeat(127))] {
            assert_eq!(validate_table_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let long = format!("a{}", "b".repeat(128));
        for bad in [
            "", "1abc", "_a", "-a", "a:b", "a/b", "..", "a..b", "a.b", "a%2Fb", "é", "aé", "a b",
            "a\0", &long,
        ] {
            assert!(validate_table_name(bad).is_err(), "{bad:?} must be rejected");
        }
        assert_eq!(validate_table_name(&long), Err(TableNameError::TooLong(129)));
    }
}
