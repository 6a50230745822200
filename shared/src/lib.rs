//! Types shared by `zombi-edge` and `zombi-node`: the wire format between them, table-name
//! and envelope validation, the parsers of producer bodies, and configuration types. No
//! runtime, no storage.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod envelope;
pub mod parse;
pub mod table_name;
pub mod wire;

pub use table_name::{TableNameError, validate_table_name};
