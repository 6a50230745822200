//! What the node's errors have in common. Each subsystem has its own error enum that keeps
//! the errors it wraps as sources (`#[source]`), never flattened into strings; each variant
//! has an [`ErrorCode`], the class of failure a caller acts on; each HTTP surface maps codes
//! to statuses in one function (`http/error.rs`, and the catalog's `rest/error.rs`).
//!
//! A message says what failed, for the person reading it; the chain of sources says why,
//! for the log ([`Chain`]). Answers with a server-side code carry an error id instead of
//! the chain, which is logged under that id.

use std::error::Error;
use std::fmt;

/// The class of a failure, as whoever answers a request with it needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed or asks for something the node refuses.
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    /// What the request names existed and is gone for good (hot events already deleted).
    Gone,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// Too many requests of one kind run at once; retry shortly.
    Busy,
    /// The node is over its in-flight byte budget; retry later.
    Overloaded,
    ShuttingDown,
    /// This node does not own its log (`durability = "object"`): another node acknowledges
    /// the writes; a client should move to it.
    NotOwner,
    /// Something the node depends on failed (the warehouse, a table that cannot load yet);
    /// a retry may succeed.
    Unavailable,
    /// A bug, or state the node cannot make sense of.
    Internal,
}

impl ErrorCode {
    /// The code as it appears in error bodies and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Gone => "gone",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Busy | ErrorCode::Overloaded => "overloaded",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::NotOwner => "not_owner",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// Whether the failure is the node's rather than the request's: answered with an error
    /// id, its cause logged under the id.
    pub fn is_server_side(self) -> bool {
        matches!(self, ErrorCode::ShuttingDown | ErrorCode::Unavailable | ErrorCode::Internal)
    }
}

/// An error with a code: what every subsystem error of the node is.
pub trait CodedError: Error + Send + Sync + 'static {
    fn code(&self) -> ErrorCode;
}

/// An error and its sources as one line, `what failed: why: why`, for the log.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        write!(f, "{shown}")?;
        let mut source = self.0.source();
        while let Some(e) = source {
            // Some errors (iceberg-rust's) display their source themselves: not twice.
            let text = e.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot commit to the catalog")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_chain_shows_every_cause_in_order() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(Chain(&e).to_string(), "cannot commit to the catalog: disk full");
        assert_eq!(e.to_string(), "cannot commit to the catalog");
        // A source that shows its own source is not repeated.
        let iceberg = iceberg::Error::new(iceberg::ErrorKind::Unexpected, "write failed")
            .with_source(std::io::Error::other("disk full"));
        let chained = Chain(&iceberg).to_string();
        assert_eq!(chained.matches("disk full").count(), 1, "{chained}");
    }

    #[test]
    fn server_side_codes_are_the_5xx_ones() {
        let server: Vec<&str> = [
            ErrorCode::BadRequest,
            ErrorCode::Busy,
            ErrorCode::ShuttingDown,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ]
        .into_iter()
        .filter(|c| c.is_server_side())
        .map(ErrorCode::as_str)
        .collect();
        assert_eq!(server, ["shutting_down", "unavailable", "internal"]);
    }
}
