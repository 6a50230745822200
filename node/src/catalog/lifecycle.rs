//! Table lifecycle, in one place: how a table comes to exist. A raw table (and a typed
//! table's dead-letter table) is created at its first write, unless the warehouse already
//! holds it, in which case it is adopted (see `adopt`); a typed table is declared through
//! the REST catalog or the node's config. At start-up the tables the warehouse holds and
//! the catalog does not know are adopted. The flusher and ingest ask; this decides.

use std::time::Duration;

use iceberg::table::Table;
use iceberg::{Catalog as _, ErrorKind, Result};
use tokio_util::sync::CancellationToken;
use zombi_shared::config::{NodeConfig, TableMode};

use super::ZombiCatalog;
use crate::schema::{self, dead_letter};
use crate::tasks::{BackgroundLoop, Backoff};
use crate::typed;

/// Why a typed table the config declares could not be created.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    #[error(transparent)]
    Columns(#[from] typed::TypedError),
    #[error("tables.{table}: {message}")]
    Invalid { table: String, message: String },
    #[error("tables.{table}: cannot create the table")]
    Create {
        table: String,
        #[source]
        source: iceberg::Error,
    },
    #[error("tables.{table}: cannot load the table")]
    Load {
        table: String,
        #[source]
        source: iceberg::Error,
    },
}

impl ZombiCatalog {
    /// The Iceberg table of `name`: loaded, or adopted from the warehouse (this node lost
    /// its data directory), or created as the table's first write needs it.
    pub async fn load_or_create(&self, name: &str) -> Result<Table> {
        let ident = self.ident(name);
        match self.load_table(&ident).await {
            Err(e) if e.kind() == ErrorKind::TableNotFound => {}
            loaded => return loaded,
        }
        if let Some(t) = self.adopt(name).await? {
            return Ok(t);
        }
        let creation = match dead_letter::source_of(name) {
            // Only the combiner writes such a table: for a typed table's bad events.
            Some(source) => dead_letter::creation(source),
            None => schema::raw_creation(name),
        };
        match self.create_raw(creation).await {
            Ok(t) => {
                tracing::info!(table = %name, "created iceberg table");
                Ok(t)
            }
            // Created (or adopted) meanwhile; if it cannot be loaded, the refusal says more
            // than "does not exist".
            Err(e) if e.kind() == ErrorKind::TableAlreadyExists => {
                self.load_table(&ident).await.map_err(|_| e)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates the typed tables the config declares (and the raw tables it gives a
    /// `partition_by`) that the catalog does not hold yet; a declared table the catalog
    /// holds keeps its own schema and spec (they evolve through the catalog), and what the
    /// config says beyond them is logged.
    pub async fn create_configured(
        &self,
        config: &NodeConfig,
    ) -> std::result::Result<(), DeclareError> {
        for (name, table) in &config.tables {
            if table.mode != TableMode::Typed {
                if let Some(items) = &table.partition_by {
                    self.create_configured_raw(name, items).await?;
                }
                continue;
            }
            // Its message names the key (`tables.<name>.columns: …`).
            let creation = typed::declare::from_config(name, table)?;
            let ident = self.ident(name);
            match self.load_table(&ident).await {
                Ok(existing) => {
                    let schema = existing.metadata().current_schema();
                    if !typed::is_typed(existing.metadata()) {
                        tracing::error!(table = %name, "the config declares a typed table, but the catalog holds a raw table of this name: it stays raw");
                        continue;
                    }
                    let missing: Vec<&str> = creation
                        .schema
                        .as_struct()
                        .fields()
                        .iter()
                        .filter(|f| schema.field_by_name(&f.name).is_none())
                        .map(|f| f.name.as_str())
                        .collect();
                    if !missing.is_empty() {
                        tracing::warn!(table = %name, missing = %missing.join(", "), "the config declares columns the table does not have; add them through the catalog (ALTER TABLE … ADD COLUMN)");
                    }
                    warn_other_spec(name, &existing, table.partition_by.as_deref());
                }
                Err(e) if e.kind() == ErrorKind::TableNotFound => {
                    match self.create_table(ident.namespace(), creation).await {
                        Ok(_) => {
                            tracing::info!(table = %name, "created the typed table the config declares")
                        }
                        // The warehouse holds it and adoption, still running, will bring it.
                        Err(e) if e.kind() == ErrorKind::TableAlreadyExists => {
                            tracing::warn!(table = %name, error = %e.message(), "the config declares a table the warehouse already holds; it is adopted as it is")
                        }
                        Err(e) if e.kind() == ErrorKind::DataInvalid => {
                            let message = e.message().to_owned();
                            return Err(DeclareError::Invalid { table: name.clone(), message });
                        }
                        Err(source) => {
                            return Err(DeclareError::Create { table: name.clone(), source });
                        }
                    }
                }
                Err(source) => return Err(DeclareError::Load { table: name.clone(), source }),
            }
        }
        Ok(())
    }

    /// Creates the raw table `name` with the config's `partition_by`, unless it exists.
    async fn create_configured_raw(
        &self,
        name: &str,
        items: &[String],
    ) -> std::result::Result<(), DeclareError> {
        let invalid = |message: String| DeclareError::Invalid { table: name.to_owned(), message };
        let schema = schema::schema();
        let spec = schema::partitioning::parse_partition_by(&schema, items)
            .and_then(|spec| schema::partitioning::bind_checked(&schema, spec))
            .map_err(invalid)?;
        match self.load_table(&self.ident(name)).await {
            Ok(existing) => {
                warn_other_spec(name, &existing, Some(items));
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::TableNotFound => {
                let mut creation = schema::raw_creation(name);
                creation.partition_spec = Some(spec);
                match self.create_raw(creation).await {
                    Ok(_) => {
                        tracing::info!(table = %name, "created the raw table the config partitions");
                        Ok(())
                    }
                    Err(e) if e.kind() == ErrorKind::TableAlreadyExists => Ok(()),
                    Err(e) if e.kind() == ErrorKind::DataInvalid => {
                        Err(invalid(e.message().to_owned()))
                    }
                    Err(source) => Err(DeclareError::Create { table: name.to_owned(), source }),
                }
            }
            Err(source) => Err(DeclareError::Load { table: name.to_owned(), source }),
        }
    }
}

/// Logs when the config's `partition_by` is not the spec `table` has.
fn warn_other_spec(name: &str, table: &Table, items: Option<&[String]>) {
    let Some(items) = items else { return };
    let metadata = table.metadata();
    let configured = schema::partitioning::parse_partition_by(metadata.current_schema(), items);
    let current = metadata.default_partition_spec();
    let same = configured.is_ok_and(|c| {
        c.fields().len() == current.fields().len()
            && c.fields()
                .iter()
                .zip(current.fields())
                .all(|(a, b)| a.source_id == b.source_id && a.transform == b.transform)
    });
    if !same {
        tracing::warn!(table = %name, "the config's partition_by is not the table's partition spec; the table keeps its own (change it through the catalog: ALTER TABLE … ADD/DROP PARTITION FIELD)");
    }
}

impl ZombiCatalog {
    /// Adopts the tables the warehouse holds and the catalog does not know (see `adopt`),
    /// retrying with backoff until one pass succeeds, then makes every table's
    /// `version-hint.text` name its current metadata, retrying likewise. Ends early when
    /// `cancel` fires.
    pub async fn adopt_and_repair(&self, cancel: CancellationToken) {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut adoption = BackgroundLoop::new("adoption", Duration::ZERO, backoff, cancel.clone());
        loop {
            let iteration = adoption.begin();
            match self.adopt_all().await {
                Ok(adopted) => {
                    adoption.succeeded(iteration);
                    if !adopted.is_empty() {
                        tracing::warn!(tables = %adopted.join(", "), "adopted tables from the warehouse; events acknowledged but not yet committed before the data directory was lost are gone");
                    }
                    break;
                }
                Err(e) => {
                    adoption.failed(iteration, &e);
                    if !adoption.sleep(adoption.next_wait(false)).await {
                        return;
                    }
                }
            }
        }
        let mut hints = BackgroundLoop::new("version_hints", Duration::ZERO, backoff, cancel);
        loop {
            let iteration = hints.begin();
            match self.repair_version_hints().await {
                Ok(()) => return hints.succeeded(iteration),
                Err(e) => {
                    hints.failed(iteration, &e);
                    if !hints.sleep(hints.next_wait(false)).await {
                        return;
                    }
                }
            }
        }
    }
}

impl crate::error::CodedError for DeclareError {
    fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode;
        match self {
            DeclareError::Columns(e) => crate::error::CodedError::code(e),
            DeclareError::Invalid { .. } => ErrorCode::BadRequest,
            DeclareError::Create { .. } | DeclareError::Load { .. } => ErrorCode::Unavailable,
        }
    }
}
