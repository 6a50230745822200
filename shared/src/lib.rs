//! Types shared by `zombi-edge` and `zombi-node`: the wire format between them, table-name
//! and envelope validation, the parsers of producer bodies, and configuration types (the
//! `zombi` CLI uses some of them too). No
//! storage, and no runtime except the HTTP accept loop behind the `server` feature.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod envelope;
pub mod error_chain;
pub mod parse;
pub mod properties;
pub mod quote;
#[cfg(feature = "server")]
pub mod serve;
pub mod table_name;
pub mod wire;

pub use error_chain::error_chain;
pub use table_name::{
    DEAD_LETTER_SUFFIX, TableNameError, validate_producer_table, validate_table_name,
};
