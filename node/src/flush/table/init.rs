//! A table's flusher starting: the Iceberg table loaded, adopted or created, and the
//! persisted watermarks reconciled with its current snapshot (the snapshot is the truth).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use super::{Pending, TableFlusher};
use crate::flush::FlushError;
use crate::hot;
use crate::schema::summary;

impl TableFlusher {
    /// Creates the Iceberg table if needed and reconciles the persisted watermarks with the
    /// current snapshot.
    pub(in crate::flush) async fn init(&mut self) -> Result<(), FlushError> {
        let table = self.ctx.catalog.load_or_create(&self.name).await?;
        let from_snapshot = table
            .metadata()
            .current_snapshot()
            .map(|s| summary::watermarks(&s.summary().additional_properties))
            .unwrap_or_default();
        let id = self.id;
        let store = self.ctx.store.clone();
        let (persisted, floors) = tokio::task::spawn_blocking(move || {
            Ok::<_, hot::HotError>((store.watermarks(id)?, store.floors(id)?))
        })
        .await??;
        if persisted != from_snapshot {
            // A crash between commit and persist (or a persisted map ahead of a lost
            // pointer): the snapshot decides.
            let mut fixed: BTreeMap<u32, u64> = persisted.keys().map(|p| (*p, 0)).collect();
            fixed.extend(from_snapshot.iter().map(|(p, w)| (*p, *w)));
            tracing::info!(table = %self.name, ?persisted, snapshot = ?from_snapshot, "reconciled watermarks with the snapshot");
            let store = self.ctx.store.clone();
            let to_write = fixed.clone();
            tokio::task::spawn_blocking(move || store.set_watermarks(id, &to_write)).await??;
        }
        for (p, floor) in &floors {
            let w = from_snapshot.get(p).copied().unwrap_or(0);
            if *floor > w {
                // Would mean events were deleted before reaching Iceberg.
                tracing::error!(table = %self.name, partition = p, floor, watermark = w, "deletion floor above the committed watermark");
                debug_assert!(false, "deletion floor above the committed watermark");
            }
        }
        self.committed = from_snapshot.clone();
        self.floors = floors;
        self.pending = Pending::default();
        // Deletion clocks restart with the process: conservative, never early.
        self.history = VecDeque::from([(Instant::now(), from_snapshot)]);
        {
            let mut status = self.status.lock().unwrap();
            status.snapshot_id = table.metadata().current_snapshot_id();
            status.watermarks = self.committed.clone();
            status.floors = self.floors.clone();
        }
        self.publish_committed();
        Ok(())
    }
}
