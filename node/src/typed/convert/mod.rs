//! JSON → typed columns. A table's user columns compile into a tree of [`Column`]s; the
//! same scalar conversions serve both the check at ingest ([`Column::check`]: one event,
//! every error with its path) and the columnar build at flush ([`Column::build`]: many
//! events into one Arrow array), so what ingest accepted always converts.
//!
//! - `scalar`: the scalar types and how one JSON value converts into each;
//! - `compile`: a table's Iceberg fields into [`Column`]s;
//! - `check`: one event against its columns, at ingest;
//! - `build`: many events into Arrow arrays, at flush and for hot reads.

mod build;
mod check;
mod compile;
mod scalar;

use arrow_schema::FieldRef;

use super::json::{Json, Node};
pub use scalar::Scalar;

/// A value that does not fit its column: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `amount`, `customer.tier`, `tags[2]`, `attributes["k"]`; empty for the payload itself.
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "field {}: {}", self.path, self.reason)
        }
    }
}

impl FieldError {
    fn within(mut self, parent: &str) -> Self {
        self.path = format!("{parent}.{}", self.path);
        self
    }
}

/// Conversions a table allows beyond the strict ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coercions {
    /// `"42"` for an int, long, float, double or decimal column.
    pub numbers_in_strings: bool,
}

#[derive(Debug)]
enum Shape {
    Scalar(Scalar),
    Struct(Vec<Column>),
    List(Box<Column>),
    Map(Box<Column>),
}

/// One column (or nested field, list element or map value) and its Arrow field.
#[derive(Debug)]
pub struct Column {
    pub name: String,
    pub required: bool,
    shape: Shape,
    arrow: FieldRef,
}

/// What a check leaves over: fields the columns do not hold.
#[derive(Debug)]
pub enum Rest<'n> {
    /// This value as written.
    Whole(&'n str),
    /// Some fields of this object.
    Fields(Vec<(&'n str, Rest<'n>)>),
}

impl Rest<'_> {
    /// Appends the JSON text of these fields.
    pub fn write(&self, out: &mut String) {
        match self {
            Rest::Whole(raw) => out.push_str(raw),
            Rest::Fields(fields) => {
                out.push('{');
                for (i, (key, rest)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(key).expect("strings serialize"));
                    out.push(':');
                    rest.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// The path of the value being checked, for error messages.
#[derive(Debug, Default)]
pub struct Path(Vec<String>);

impl Path {
    pub fn push_field(&mut self, name: &str) {
        self.0.push(if self.0.is_empty() { name.to_owned() } else { format!(".{name}") });
    }
    fn push_index(&mut self, i: usize) {
        self.0.push(format!("[{i}]"));
    }
    fn push_key(&mut self, key: &str) {
        self.0.push(format!("[{}]", serde_json::to_string(key).expect("strings serialize")));
    }
    pub fn pop(&mut self) {
        self.0.pop();
    }
    fn error(&self, reason: String) -> FieldError {
        FieldError { path: self.0.concat(), reason }
    }
}

/// A short description of a value for error messages: its kind and its text, cut short.
pub fn describe(node: &Node) -> String {
    const MAX: usize = 40;
    let raw = node.raw;
    let text = if raw.len() > MAX {
        let mut end = MAX;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &raw[..end])
    } else {
        raw.to_owned()
    };
    match node.value {
        Json::Null => "null".into(),
        _ => format!("{} {text}", node.kind()),
    }
}
