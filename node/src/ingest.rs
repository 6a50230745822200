//! The node's ingest service: validates an internal batch again (the node never trusts the
//! edge), opens each group's table (registering it within `limits.max_tables` and waiting
//! until it is ready), admits the batch against the in-flight budget and hands each group
//! to the combiner.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use zombi_shared::config::NodeConfig;
use zombi_shared::envelope::{EventLimits, check_event_strict, check_event_time};
use zombi_shared::validate_producer_table;
use zombi_shared::wire::{
    BatchResponse, Group, GroupError, GroupErrorCode, GroupResult, IngestBatch,
};

use crate::catalog::ZombiCatalog;
use crate::catalog::readiness::NotReady;
use crate::combiner::{Combiner, CombinerError};
use crate::error::{Chain, CodedError, ErrorCode};
use crate::hot::{HotError, HotStore};
use crate::metrics as m;
use crate::typed::{Registry, Typing};

/// Why a whole batch is refused. A refused group is answered in the batch's response
/// instead ([`GroupError`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("malformed batch: {0}")]
    Malformed(String),
    #[error("group {group}: {message}")]
    Invalid { group: usize, message: String },
    #[error("group {group}, event {event}: {message}")]
    InvalidEvent { group: usize, event: usize, message: String, too_large: bool },
    #[error("node is over its in-flight byte budget")]
    Overloaded,
}

impl CodedError for IngestError {
    fn code(&self) -> ErrorCode {
        match self {
            IngestError::Overloaded => ErrorCode::Overloaded,
            IngestError::InvalidEvent { too_large: true, .. } => ErrorCode::PayloadTooLarge,
            IngestError::Malformed(_)
            | IngestError::Invalid { .. }
            | IngestError::InvalidEvent { .. } => ErrorCode::BadRequest,
        }
    }
}

/// The `reason` label of `zombi_node_rejections_total` for a refused group.
pub fn group_rejection(e: &GroupError) -> &'static str {
    match e.code {
        GroupErrorCode::Invalid => "invalid",
        GroupErrorCode::NotReady => "not_ready",
        GroupErrorCode::TableLimit => "table_limit",
        GroupErrorCode::Overloaded => "overloaded",
        GroupErrorCode::Unavailable => "shutting_down",
        GroupErrorCode::Internal => "store",
    }
}

pub struct IngestService {
    combiner: Arc<Combiner>,
    store: Arc<HotStore>,
    /// Where a table's readiness for writes is known.
    catalog: Arc<ZombiCatalog>,
    /// A failure of `check_event_strict` refuses the whole batch (the edge checks the same);
    /// one of the event-time bounds, which depend on this node's clock, refuses only the
    /// request (group) holding the event.
    limits: EventLimits,
    max_tables: usize,
    ready_timeout: Duration,
    /// Which tables are typed: a `dead_letter` table's dead-letter table is opened with it.
    typing: Arc<Registry>,
}

impl IngestService {
    pub fn new(
        combiner: Arc<Combiner>,
        store: Arc<HotStore>,
        catalog: Arc<ZombiCatalog>,
        typing: Arc<Registry>,
        config: &NodeConfig,
    ) -> Self {
        IngestService {
            combiner,
            store,
            catalog,
            limits: config.limits.event_limits(),
            max_tables: usize::try_from(config.limits.max_tables).unwrap_or(usize::MAX),
            ready_timeout: Duration::from_millis(config.limits.table_ready_timeout_ms),
            typing,
        }
    }

    /// Makes `table` ready for writes: registers it if it is new (within the table limit)
    /// and waits until its flusher reconciled it with the Iceberg snapshot, so that no
    /// sequence Iceberg already holds is handed out again.
    async fn open_table(&self, table: &str) -> Result<(), GroupError> {
        if self.store.table_id(table).is_none() {
            let (store, name, limit) = (self.store.clone(), table.to_owned(), self.max_tables);
            let registered =
                tokio::task::spawn_blocking(move || store.ensure_table_within(&name, limit)).await;
            match registered {
                Ok(Ok(_)) => {}
                Err(e) => {
                    tracing::error!(%table, error = %Chain(&e), "table registration task failed");
                    return Err(GroupError {
                        code: GroupErrorCode::Internal,
                        message: "cannot register the table".to_owned(),
                    });
                }
                Ok(Err(e @ HotError::TableLimit { .. })) => {
                    return Err(GroupError {
                        code: GroupErrorCode::TableLimit,
                        message: e.to_string(),
                    });
                }
                Ok(Err(e)) => {
                    tracing::error!(%table, error = %Chain(&e), "cannot register a table");
                    return Err(CombinerError::from(e).to_wire());
                }
            }
        }
        self.catalog.readiness().wait(table, self.ready_timeout).await.map_err(|e| {
            let code = match e {
                NotReady::ShuttingDown => GroupErrorCode::Unavailable,
                _ => GroupErrorCode::NotReady,
            };
            GroupError { code, message: e.to_string() }
        })
    }

    /// Decodes and validates `body` completely before anything is admitted or stored.
    pub async fn ingest(&self, body: &[u8]) -> Result<BatchResponse, IngestError> {
        let batch: IngestBatch =
            zombi_shared::wire::decode(body).map_err(|e| IngestError::Malformed(e.to_string()))?;
        let weight = self.validate(&batch)?;
        let events: usize = batch.groups.iter().map(|g| g.events.len()).sum();
        metrics::counter!(m::INGEST_EVENTS).increment(events as u64);

        let refused: Vec<Option<GroupError>> =
            batch.groups.iter().map(|g| self.outside_time_bounds(g)).collect();
        // Every table of the batch is opened before anything is admitted: waiting for a
        // table holds no budget.
        let names: Vec<String> = {
            let mut names: Vec<String> = batch
                .groups
                .iter()
                .zip(&refused)
                .filter(|(_, r)| r.is_none())
                .map(|(g, _)| g.table.clone())
                .collect();
            names.sort_unstable();
            names.dedup();
            names
        };
        let mut opened: BTreeMap<String, Result<(), GroupError>> =
            join_all(names.iter().map(|t| self.open_table(t)))
                .await
                .into_iter()
                .zip(names)
                .map(|(r, t)| (t, r))
                .collect();
        // A typed table that dead-letters needs its dead-letter table ready too: its
        // sequences continue what Iceberg holds (after an adoption, say) only once its
        // flusher reconciled them.
        for (table, result) in opened.iter_mut() {
            let dead_letters = matches!(
                self.typing.get(table),
                Some(Typing::Typed(t)) if t.settings().dead_letter
            );
            if result.is_ok() && dead_letters {
                *result = self.open_table(&crate::schema::dead_letter::table_of(table)).await;
            }
        }
        // All groups of the batch are admitted together, so a batch is refused whole.
        let admission = Arc::new(self.combiner.admit(weight).map_err(|_| IngestError::Overloaded)?);
        let results = join_all(batch.groups.into_iter().zip(refused).map(|(g, refused)| {
            let admission = admission.clone();
            let open = match refused {
                Some(e) => Err(e),
                None => opened[&g.table].clone(),
            };
            async move {
                match open {
                    Ok(()) => self.combiner.submit(g, admission).await.map_err(|e| e.to_wire()),
                    Err(e) => Err(e),
                }
            }
        }))
        .await;
        let groups = results
            .into_iter()
            .map(|r| match r {
                Ok(acks) => GroupResult::Ok(acks),
                Err(e) => GroupResult::Err(e),
            })
            .collect();
        Ok(BatchResponse { groups })
    }

    /// The refusal of `group` if one of its events lies outside the event-time bounds.
    fn outside_time_bounds(&self, group: &Group) -> Option<GroupError> {
        group.events.iter().enumerate().find_map(|(i, event)| {
            check_event_time(event, &self.limits).err().map(|e| GroupError {
                code: GroupErrorCode::Invalid,
                message: format!("record {i}: {e}"),
            })
        })
    }

    /// Returns the batch's weight for the in-flight budget.
    fn validate(&self, batch: &IngestBatch) -> Result<u64, IngestError> {
        if batch.groups.is_empty() {
            return Err(IngestError::Malformed("batch has no groups".into()));
        }
        let mut weight = 0u64;
        for (gi, group) in batch.groups.iter().enumerate() {
            validate_producer_table(&group.table)
                .map_err(|e| IngestError::Invalid { group: gi, message: e.to_string() })?;
            if group.events.is_empty() {
                return Err(IngestError::Invalid {
                    group: gi,
                    message: "group has no events".into(),
                });
            }
            for (ei, event) in group.events.iter().enumerate() {
                check_event_strict(event, &self.limits).map_err(|e| IngestError::InvalidEvent {
                    group: gi,
                    event: ei,
                    too_large: e.is_too_large(),
                    message: e.to_string(),
                })?;
                weight += event.weight() as u64;
            }
        }
        Ok(weight)
    }
}
