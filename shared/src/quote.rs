//! Quoting what a person sent back to them in messages: in double quotes, with control
//! characters, quotes and backslashes escaped, so that an empty value, spaces or an invisible
//! byte stay visible and the message stays one line.

use std::fmt;

/// `value` in double quotes, escaped: `"a\tb"`.
pub fn quoted(value: &str) -> Quoted<'_> {
    Quoted(value)
}

pub struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_debug())
    }
}

/// One character in single quotes, escaped: `'\u{0}'`.
pub fn quoted_char(c: char) -> String {
    format!("'{}'", c.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_keep_invisible_characters_visible() {
        assert_eq!(quoted("a b").to_string(), "\"a b\"");
        assert_eq!(quoted("").to_string(), "\"\"");
        assert_eq!(quoted("a\tb\n\"c\"").to_string(), r#""a\tb\n\"c\"""#);
        assert_eq!(quoted_char(':'), "':'");
        assert_eq!(quoted_char('\0'), r"'\0'");
    }
}
