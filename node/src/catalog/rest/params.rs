//! Request parsing: path and query extractors that reject with an Iceberg `ErrorModel`,
//! namespace decoding, paging and the `snapshots` mode.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iceberg::{NamespaceIdent, TableIdent};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use zombi_shared::quote::quoted;

use super::error::CatalogError;

/// Separates the levels of a multi-level namespace in paths and the `parent` parameter
/// (`%1F` once percent-encoded), as the REST spec prescribes.
const NAMESPACE_SEPARATOR: char = '\u{1F}';

/// `axum::extract::Path`, but a malformed path is a `BadRequestException`.
pub(super) struct IcebergPath<T>(pub T);

impl<S, T> FromRequestParts<S> for IcebergPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = CatalogError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(IcebergPath(value)),
            Err(e) => Err(CatalogError::BadRequest(e.body_text())),
        }
    }
}

/// `axum::extract::Query`, but a malformed query is a `BadRequestException`.
pub(super) struct IcebergQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for IcebergQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = CatalogError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(IcebergQuery(value)),
            Err(e) => Err(CatalogError::BadRequest(e.body_text())),
        }
    }
}

// Numbers arrive as strings so that a bad value is reported in our own error format.

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListNamespacesQuery {
    pub parent: Option<String>,
    #[serde(rename = "pageToken")]
    pub page_token: Option<String>,
    #[serde(rename = "pageSize")]
    pub page_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListTablesQuery {
    #[serde(rename = "pageToken")]
    pub page_token: Option<String>,
    #[serde(rename = "pageSize")]
    pub page_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct LoadTableQuery {
    pub snapshots: Option<String>,
}

/// Decodes a namespace path segment (already percent-decoded by the router).
pub(super) fn namespace(raw: &str) -> Result<NamespaceIdent, CatalogError> {
    let levels: Vec<String> = raw.split(NAMESPACE_SEPARATOR).map(str::to_owned).collect();
    if levels.iter().any(String::is_empty) {
        return Err(CatalogError::BadRequest(format!(
            "invalid namespace {}: empty level",
            quoted(raw)
        )));
    }
    NamespaceIdent::from_vec(levels).map_err(|e| {
        CatalogError::BadRequest(format!("invalid namespace {}: {}", quoted(raw), e.message()))
    })
}

/// The `parent` parameter of a namespace listing; empty means absent, as the spec allows.
pub(super) fn parent(raw: Option<&str>) -> Result<Option<NamespaceIdent>, CatalogError> {
    raw.filter(|p| !p.is_empty()).map(namespace).transpose()
}

pub(super) fn table(namespace_raw: &str, name: String) -> Result<TableIdent, CatalogError> {
    if name.is_empty() {
        return Err(CatalogError::BadRequest("empty table name".to_owned()));
    }
    Ok(TableIdent::new(namespace(namespace_raw)?, name))
}

/// One page of a sorted listing: entries whose key sorts after `after`, at most `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PageRequest {
    pub after: Option<String>,
    pub size: Option<usize>,
}

impl PageRequest {
    /// Paging starts only when the client sends `pageToken`, even empty (Spark sends
    /// `pageToken=` for the first page); without it the spec wants the whole listing.
    pub(super) fn parse(
        token: Option<String>,
        size: Option<String>,
    ) -> Result<Option<PageRequest>, CatalogError> {
        let Some(token) = token else { return Ok(None) };
        let after = if token.is_empty() { None } else { Some(decode_token(&token)?) };
        let size = match size.as_deref() {
            None | Some("") => None,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(CatalogError::BadRequest(format!(
                        "pageSize must be a positive integer, got {}",
                        quoted(raw)
                    )));
                }
            },
        };
        Ok(Some(PageRequest { after, size }))
    }
}

/// Tokens are opaque to clients: the last key of the previous page, base64url so any
/// name survives a query string.
pub(super) fn encode_token(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_key)
}

fn decode_token(token: &str) -> Result<String, CatalogError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| CatalogError::BadRequest(format!("invalid pageToken {}", quoted(token))))
}

/// Which snapshots a loaded table's metadata carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SnapshotsMode {
    All,
    /// Only snapshots some branch or tag points at.
    Refs,
}

impl SnapshotsMode {
    pub(super) fn parse(raw: Option<&str>) -> Result<Self, CatalogError> {
        match raw {
            None | Some("") | Some("all") => Ok(SnapshotsMode::All),
            Some("refs") => Ok(SnapshotsMode::Refs),
            Some(other) => Err(CatalogError::BadRequest(format!(
                "snapshots must be `all` or `refs`, got {}",
                quoted(other)
            ))),
        }
    }
}
