//! The column list of a typed table declared in the node's config
//! (`[tables.<name>] mode = "typed"`, `columns = "…"`): the same declaration as a SQL
//! `CREATE TABLE`, with Iceberg's type names.
//!
//! ```text
//! columns := column ("," column)*
//! column  := name type ["not null"]
//! type    := boolean | int | long | float | double | decimal(P, S) | date | time
//!          | timestamp | timestamptz | string | uuid | fixed(N) | binary
//!          | struct<name[:] type ["not null"], …> | list<type> | map<string, type>
//! ```
//! Also accepted: `bigint` (long), `integer` (int), `array<…>` (list), `varchar` (string).
//! `timestamp` is Iceberg's timestamp without time zone; `timestamptz` is an instant.

/// A declared column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDecl {
    pub name: String,
    pub column_type: ColumnType,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Decimal { precision: u32, scale: u32 },
    Date,
    Time,
    Timestamp,
    Timestamptz,
    String,
    Uuid,
    Fixed(u64),
    Binary,
    Struct(Vec<ColumnDecl>),
    List(Box<ColumnType>),
    Map(Box<ColumnType>, Box<ColumnType>),
}

/// Parses a column list; the error says where and what was expected.
pub fn parse_columns(text: &str) -> Result<Vec<ColumnDecl>, String> {
    let mut p = Parser { text, pos: 0 };
    let columns = p.fields(None)?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(p.error("a comma and another column"));
    }
    if columns.is_empty() {
        return Err("declares no column".into());
    }
    Ok(columns)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, expected: &str) -> String {
        let rest: String = self.text[self.pos..].chars().take(20).collect();
        if rest.is_empty() {
            format!("expected {expected} at the end")
        } else {
            format!(
                "expected {expected} at {} (character {})",
                crate::quote::quoted(&rest),
                self.pos + 1
            )
        }
    }

    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.text[self.pos..].chars().next().map_or(1, char::len_utf8);
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&crate::quote::quoted(token).to_string()))
        }
    }

    /// A name: letters, digits and `_` (not starting with a digit), or anything between
    /// backquotes.
    fn name(&mut self) -> Result<String, String> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        if let Some(quoted) = rest.strip_prefix('`') {
            let end = quoted.find('`').ok_or_else(|| self.error("a closing backquote"))?;
            self.pos += end + 2;
            return Ok(quoted[..end].to_owned());
        }
        let len =
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.error("a column name"));
        }
        self.pos += len;
        Ok(rest[..len].to_owned())
    }

    fn number(&mut self) -> Result<u64, String> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n = rest[..len].parse().map_err(|_| self.error("a number"))?;
        self.pos += len;
        Ok(n)
    }

    /// Columns (or struct fields, `close` = ">") up to the end or `close`.
    fn fields(&mut self, close: Option<&str>) -> Result<Vec<ColumnDecl>, String> {
        let mut out: Vec<ColumnDecl> = Vec::new();
        loop {
            self.skip_ws();
            if self.pos == self.text.len()
                || close.is_some_and(|c| self.text[self.pos..].starts_with(c))
            {
                return Ok(out);
            }
            if !out.is_empty() && !self.eat(",") {
                return Err(self.error("a comma and another column"));
            }
            let name = self.name()?;
            if close.is_some() {
                self.eat(":");
            }
            let column_type = self.column_type()?;
            let required = self.not_null();
            if out.iter().any(|c| c.name.eq_ignore_ascii_case(&name)) {
                return Err(format!("declares {name} twice"));
            }
            out.push(ColumnDecl { name, column_type, required });
        }
    }

    fn not_null(&mut self) -> bool {
        self.skip_ws();
        let rest = self.text[self.pos..].to_ascii_lowercase();
        let mut words = rest.split_whitespace();
        if words.next() == Some("not") && words.next().is_some_and(|w| w.starts_with("null")) {
            let at = rest.find("null").expect("found") + 4;
            self.pos += at;
            true
        } else {
            false
        }
    }

    fn column_type(&mut self) -> Result<ColumnType, String> {
        self.skip_ws();
        let start = self.pos;
        let word = self.name().map_err(|_| {
            self.pos = start;
            self.error("a type")
        })?;
        Ok(match word.to_ascii_lowercase().as_str() {
            "boolean" | "bool" => ColumnType::Boolean,
            "int" | "integer" => ColumnType::Int,
            "long" | "bigint" => ColumnType::Long,
            "float" | "real" => ColumnType::Float,
            "double" => ColumnType::Double,
            "date" => ColumnType::Date,
            "time" => ColumnType::Time,
            "timestamp" => ColumnType::Timestamp,
            "timestamptz" => ColumnType::Timestamptz,
            "string" | "varchar" => ColumnType::String,
            "uuid" => ColumnType::Uuid,
            "binary" => ColumnType::Binary,
            "decimal" => {
                self.expect("(")?;
                let precision = self.number()? as u32;
                self.expect(",")?;
                let scale = self.number()? as u32;
                self.expect(")")?;
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(format!(
                        "decimal({precision}, {scale}): precision must be 1 to 38 and scale at most the precision"
                    ));
                }
                ColumnType::Decimal { precision, scale }
            }
            "fixed" => {
                let close = if self.eat("[") { "]" } else { self.expect("(").map(|()| ")")? };
                let n = self.number()?;
                self.expect(close)?;
                ColumnType::Fixed(n)
            }
            "struct" => {
                self.expect("<")?;
                let fields = self.fields(Some(">"))?;
                self.expect(">")?;
                if fields.is_empty() {
                    return Err("a struct needs at least one field".into());
                }
                ColumnType::Struct(fields)
            }
            "list" | "array" => {
                self.expect("<")?;
                let element = self.column_type()?;
                self.expect(">")?;
                ColumnType::List(Box::new(element))
            }
            "map" => {
                self.expect("<")?;
                let key = self.column_type()?;
                self.expect(",")?;
                let value = self.column_type()?;
                self.expect(">")?;
                ColumnType::Map(Box::new(key), Box::new(value))
            }
            other => {
                self.pos = start;
                return Err(format!(
                    "unknown type {}; the types are boolean, int, long, float, double, decimal(P, S), date, time, timestamp, timestamptz, string, uuid, fixed(N), binary, struct<…>, list<…> and map<…>",
                    crate::quote::quoted(other)
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sql_like_list() {
        let cols = parse_columns(
            "order_id bigint NOT NULL, amount decimal(12, 2), placed_at timestamptz,
             customer struct<id: string, tier string not null>, tags array<string>,
             attrs map<string, int>, `odd name` fixed[4]",
        )
        .unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["order_id", "amount", "placed_at", "customer", "tags", "attrs", "odd name"]
        );
        assert!(cols[0].required && !cols[1].required);
        assert_eq!(cols[1].column_type, ColumnType::Decimal { precision: 12, scale: 2 });
        let ColumnType::Struct(fields) = &cols[3].column_type else { panic!() };
        assert!(fields[1].required && fields[1].column_type == ColumnType::String);
        assert_eq!(cols[4].column_type, ColumnType::List(Box::new(ColumnType::String)));
        assert_eq!(cols[6].column_type, ColumnType::Fixed(4));
    }

    #[test]
    fn says_what_is_wrong_and_where() {
        for (text, want) in [
            ("a int,", "expected a column name at the end"),
            ("a integr", "unknown type \"integr\""),
            ("a decimal(40, 2)", "precision must be 1 to 38"),
            ("a int b int", "expected a comma and another column"),
            ("a int, A long", "declares A twice"),
            ("a struct<>", "at least one field"),
            ("", "declares no column"),
            ("a map<string int>", "expected \",\""),
        ] {
            let e = parse_columns(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
