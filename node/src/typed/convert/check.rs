//! One event checked against its columns at ingest: every error with its path, and what
//! the columns do not hold.

use super::scalar::convert;
use super::*;
use crate::typed::json::{Json, Node};

impl Column {
    /// Checks one value (`None`: the field is missing) and returns what the column does not
    /// hold of it: unknown fields of objects, and whole lists or maps with unknown fields.
    pub fn check<'n>(
        &self,
        value: Option<&'n Node<'n>>,
        path: &mut Path,
        c: Coercions,
    ) -> Result<Option<Rest<'n>>, FieldError> {
        let Some(node) = value.filter(|n| !n.is_null()) else {
            return if self.required {
                Err(path.error("is required and missing or null".into()))
            } else {
                Ok(None)
            };
        };
        match &self.shape {
            Shape::Scalar(s) => {
                convert(*s, node, c).map_err(|reason| path.error(reason))?;
                Ok(None)
            }
            Shape::Struct(children) => {
                let Json::Object(entries) = &node.value else {
                    return Err(path.error(format!("expected an object, got {}", describe(node))));
                };
                let mut rest = Vec::new();
                for child in children {
                    // The last entry of a repeated key, as `Node::get` reads it.
                    let entry = entries.iter().rev().find(|(k, _)| *k == child.name);
                    path.push_field(&child.name);
                    let r = child.check(entry.map(|(_, v)| v), path, c);
                    path.pop();
                    if let (Some(r), Some((key, _))) = (r?, entry) {
                        rest.push((key.as_ref(), r));
                    }
                }
                for (key, value) in entries {
                    if !children.iter().any(|c| c.name == *key) {
                        rest.push((key.as_ref(), Rest::Whole(value.raw)));
                    }
                }
                Ok((!rest.is_empty()).then_some(Rest::Fields(rest)))
            }
            Shape::List(element) => {
                let Json::Array(items) = &node.value else {
                    return Err(path.error(format!("expected an array, got {}", describe(node))));
                };
                let mut unknown = false;
                for (i, item) in items.iter().enumerate() {
                    path.push_index(i);
                    let r = element.check(Some(item), path, c);
                    path.pop();
                    unknown |= r?.is_some();
                }
                Ok(unknown.then_some(Rest::Whole(node.raw)))
            }
            Shape::Map(value) => {
                let Json::Object(entries) = &node.value else {
                    return Err(path.error(format!("expected an object, got {}", describe(node))));
                };
                let mut unknown = false;
                for (key, item) in entries {
                    path.push_key(key);
                    let r = value.check(Some(item), path, c);
                    path.pop();
                    unknown |= r?.is_some();
                }
                Ok(unknown.then_some(Rest::Whole(node.raw)))
            }
        }
    }
}
