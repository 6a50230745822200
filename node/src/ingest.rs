//! The node's ingest service: validates an internal batch again (the node never trusts the
//! edge), admits it against the in-flight budget and hands each group to the combiner.

use std::sync::Arc;

use futures::future::join_all;
use zombi_shared::config::NodeConfig;
use zombi_shared::envelope::{EventLimits, check_event};
use zombi_shared::validate_table_name;
use zombi_shared::wire::{BatchResponse, GroupResult, IngestBatch};

use crate::combiner::{Combiner, CombinerError};
use crate::metrics as m;

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

pub struct IngestService {
    combiner: Arc<Combiner>,
    limits: EventLimits,
}

impl IngestService {
    pub fn new(combiner: Arc<Combiner>, config: &NodeConfig) -> Self {
        let limits = EventLimits {
            max_event_bytes: config.limits.max_event_bytes as usize,
            max_partition: config.limits.max_partition,
        };
        IngestService { combiner, limits }
    }

    /// Decodes and validates `body` completely before anything is admitted or stored.
    pub async fn ingest(&self, body: &[u8]) -> Result<BatchResponse, IngestError> {
        let batch: IngestBatch =
            zombi_shared::wire::decode(body).map_err(|e| IngestError::Malformed(e.to_string()))?;
        let weight = self.validate(&batch)?;
        let events: usize = batch.groups.iter().map(|g| g.events.len()).sum();
        metrics::counter!(m::INGEST_EVENTS).increment(events as u64);

        // All groups of the batch are admitted together, so a batch is refused whole.
        let admission = Arc::new(self.combiner.admit(weight).map_err(|_| {
            metrics::counter!(m::REJECTIONS, "reason" => "overloaded").increment(1);
            IngestError::Overloaded
        })?);
        let results =
            join_all(batch.groups.into_iter().map(|g| self.combiner.submit(g, admission.clone())))
                .await;
        let groups = results
            .into_iter()
            .map(|r| match r {
                Ok(acks) => GroupResult::Ok(acks),
                Err(e) => {
                    let reason = match e {
                        CombinerError::Overloaded => "overloaded",
                        CombinerError::ShuttingDown => "shutting_down",
                        CombinerError::Store(_) => "store",
                    };
                    metrics::counter!(m::REJECTIONS, "reason" => reason).increment(1);
                    GroupResult::Err(e.to_wire())
                }
            })
            .collect();
        Ok(BatchResponse { groups })
    }

    /// Returns the batch's weight for the in-flight budget.
    fn validate(&self, batch: &IngestBatch) -> Result<u64, IngestError> {
        if batch.groups.is_empty() {
            return Err(IngestError::Malformed("batch has no groups".into()));
        }
        let mut weight = 0u64;
        for (gi, group) in batch.groups.iter().enumerate() {
            validate_table_name(&group.table)
                .map_err(|e| IngestError::Invalid { group: gi, message: e.to_string() })?;
            if group.events.is_empty() {
                return Err(IngestError::Invalid {
                    group: gi,
                    message: "group has no events".into(),
                });
            }
            for (ei, event) in group.events.iter().enumerate() {
                check_event(event, &self.limits).map_err(|e| IngestError::InvalidEvent {
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
