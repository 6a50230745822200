//! A JSON tree that borrows from the payload text and keeps every number's text, so a
//! `decimal(38, 10)` value converts exactly and a value moved to the `payload` remainder is
//! copied verbatim. Objects keep their keys in order; a repeated key reads as its last
//! value, as in `serde_json::Value`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_json::value::RawValue;

#[derive(Debug)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// The number as written, e.g. `-12.50e3`.
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A value and the exact text it was parsed from.
#[derive(Debug)]
pub struct Node<'a> {
    pub raw: &'a str,
    pub value: Json<'a>,
}

impl<'a> Node<'a> {
    /// The value of `key` in an object (the last one if it is repeated).
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match &self.value {
            Json::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Json::Null)
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// Parses one JSON document.
pub fn parse(text: &str) -> Result<Node<'_>, serde_json::Error> {
    let raw: &RawValue = serde_json::from_str(text)?;
    node(raw)
}

fn node(raw: &RawValue) -> Result<Node<'_>, serde_json::Error> {
    let text = raw.get().trim_start();
    let value = match text.as_bytes().first() {
        Some(b'{') => {
            let Entries(entries) = serde_json::from_str(text)?;
            Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((k.0, node(v)?)))
                    .collect::<Result<_, serde_json::Error>>()?,
            )
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text)?;
            Json::Array(items.into_iter().map(node).collect::<Result<_, _>>()?)
        }
        Some(b'"') => Json::String(serde_json::from_str::<Key>(text)?.0),
        Some(b't' | b'f') => Json::Bool(serde_json::from_str(text)?),
        Some(b'n') => Json::Null,
        _ => Json::Number(text.trim_end()),
    };
    Ok(Node { raw: text.trim_end(), value })
}

/// A string that borrows from the input unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An object's entries in order, values unparsed.
struct Entries<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_number_text_raw_values_and_order() {
        let text = r#" {"a": 12.50e3, "b": [1, {"c": "x\ny"}], "a": null, "d": "plain"} "#;
        let n = parse(text).unwrap();
        assert!(n.get("a").unwrap().is_null(), "the last repeated key wins");
        let Json::Object(entries) = &n.value else { panic!() };
        assert_eq!(
            entries.iter().map(|(k, _)| k.as_ref()).collect::<Vec<_>>(),
            ["a", "b", "a", "d"]
        );
        assert!(matches!(entries[0].1.value, Json::Number("12.50e3")));
        let b = n.get("b").unwrap();
        assert_eq!(b.raw, r#"[1, {"c": "x\ny"}]"#);
        let Json::Array(items) = &b.value else { panic!() };
        assert!(matches!(&items[1].get("c").unwrap().value, Json::String(s) if s == "x\ny"));
        assert!(matches!(&n.get("d").unwrap().value, Json::String(Cow::Borrowed("plain"))));
        assert!(parse("{\"a\": }").is_err());
        assert!(parse("[1, 2").is_err());
    }
}
