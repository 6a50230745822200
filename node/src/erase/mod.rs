//! `POST /tables/{table}/delete`: deletes the rows that match a predicate
//! ([`predicate`]), committed and hot, without delete files (see [deletes.md]).
//!
//! 1. The predicate is bound to the table's schema: nothing is flushed or written for a
//!    request that cannot apply.
//! 2. The table is flushed: every event acknowledged before the request is then in the
//!    current snapshot, and none of them is above its watermarks, so no real-time read
//!    (hot segments above a snapshot's watermarks) can show a matching row again once
//!    step 3 commits.
//! 3. The maintenance worker removes the matching rows of the current snapshot
//!    (`compact::remove`): files rewritten without them, one `overwrite` (or `delete`)
//!    commit, beside ingest (the flusher keeps appending; the commit rebases on it).
//!
//! Events acknowledged after the request arrived may be left. A repeated request finds
//! nothing to delete and commits nothing; a request cut short by a crash deleted either
//! nothing or everything it matched, and repeating it finishes the job.
//!
//! [deletes.md]: ../../../docs/deletes.md

pub mod predicate;

use std::sync::Arc;
use std::time::Instant;

use iceberg::Catalog as _;
use serde::Serialize;

use crate::catalog::ZombiCatalog;
use crate::compact::{Maintainer, MaintenanceError, Removal};
use crate::error::{CodedError, ErrorCode};
use crate::failpoints::crash_point;
use crate::flush::{FlushError, Flusher};
use predicate::{DeleteRequest, Predicate};

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("{0}")]
    BadRequest(String),
    #[error("table {0} does not exist")]
    UnknownTable(String),
    #[error("the catalog or the warehouse failed")]
    Iceberg(#[from] iceberg::Error),
    #[error("cannot flush {table} before the delete")]
    Flush {
        table: String,
        #[source]
        source: Box<FlushError>,
    },
    #[error("the delete failed")]
    Remove(#[source] MaintenanceError),
}

impl CodedError for EraseError {
    fn code(&self) -> ErrorCode {
        match self {
            EraseError::BadRequest(_) => ErrorCode::BadRequest,
            EraseError::UnknownTable(_) => ErrorCode::NotFound,
            EraseError::Iceberg(_) => ErrorCode::Unavailable,
            EraseError::Flush { source, .. } => source.code(),
            EraseError::Remove(e) => e.code(),
        }
    }
}

/// The answer of `POST /tables/{t}/delete`.
#[derive(Debug, Clone, Serialize)]
pub struct DeleteReport {
    pub table: String,
    /// What was removed; its `snapshot_id` is the `overwrite` or `delete` snapshot that
    /// removed the rows, or when nothing matched, the current snapshot (nothing was
    /// committed).
    #[serde(flatten)]
    pub removal: Removal,
    /// The snapshot of the flush that made every earlier acknowledged event cold.
    pub flushed_snapshot_id: Option<i64>,
    pub duration_ms: u64,
}

pub struct Eraser {
    catalog: Arc<ZombiCatalog>,
    flusher: Flusher,
    maintainer: Maintainer,
}

impl Eraser {
    pub fn new(catalog: Arc<ZombiCatalog>, flusher: Flusher, maintainer: Maintainer) -> Self {
        Eraser { catalog, flusher, maintainer }
    }

    /// Deletes the rows of `table` that `request` matches.
    pub async fn delete(
        &self,
        table: &str,
        request: &DeleteRequest,
    ) -> Result<DeleteReport, EraseError> {
        let started = Instant::now();
        let ident = self.catalog.ident(table);
        let loaded = match self.catalog.load_table(&ident).await {
            Ok(t) => t,
            Err(e) if e.kind() == iceberg::ErrorKind::TableNotFound => {
                return Err(EraseError::UnknownTable(table.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        let predicate = Predicate::bind(request, loaded.metadata().current_schema())
            .map_err(EraseError::BadRequest)?;
        let flushed = self.flusher.flush_now(table).await.map_err(|e| match e {
            FlushError::UnknownTable(t) => EraseError::UnknownTable(t),
            e => EraseError::Flush { table: table.to_owned(), source: Box::new(e) },
        })?;
        crash_point("delete-after-flush");
        let removal =
            self.maintainer.remove_rows(table, Arc::new(predicate)).await.map_err(|e| match e {
                MaintenanceError::UnknownTable(t) => EraseError::UnknownTable(t),
                e => EraseError::Remove(e),
            })?;
        let mut removal = removal;
        if removal.snapshot_id.is_none() {
            removal.snapshot_id =
                self.catalog.load_table(&ident).await?.metadata().current_snapshot_id();
        }
        Ok(DeleteReport {
            table: table.to_owned(),
            removal,
            flushed_snapshot_id: flushed.snapshot_id,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}
