package dev.zombi.trino;

import io.trino.spi.connector.ConnectorTransactionHandle;
import io.trino.spi.connector.SchemaTableName;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The snapshots a transaction's queries pinned with {@code FOR VERSION AS OF} / {@code FOR
 * TIMESTAMP AS OF}: scans of them read committed data only. Kept per transaction, dropped at its
 * commit or rollback.
 */
final class Pins {
  private final Map<ConnectorTransactionHandle, Set<String>> byTransaction =
      new ConcurrentHashMap<>();

  void pin(ConnectorTransactionHandle transaction, SchemaTableName table, long snapshotId) {
    byTransaction
        .computeIfAbsent(transaction, t -> ConcurrentHashMap.newKeySet())
        .add(key(table, snapshotId));
  }

  boolean pinned(ConnectorTransactionHandle transaction, SchemaTableName table, long snapshotId) {
    Set<String> pins = byTransaction.get(transaction);
    return pins != null && pins.contains(key(table, snapshotId));
  }

  void end(ConnectorTransactionHandle transaction) {
    byTransaction.remove(transaction);
  }

  private static String key(SchemaTableName table, long snapshotId) {
    return table + "@" + snapshotId;
  }
}
