package dev.zombi.iceberg;

import dev.zombi.hot.NodeCalls;
import java.util.HashMap;
import java.util.Map;
import org.apache.iceberg.BaseTable;
import org.apache.iceberg.PlanningMode;
import org.apache.iceberg.SerializableTable;
import org.apache.iceberg.TableOperations;
import org.apache.iceberg.TableProperties;
import org.apache.iceberg.TableScan;
import org.apache.iceberg.io.FileIO;
import org.apache.iceberg.metrics.MetricsReporter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Zombi table as the REST catalog loaded it (same operations, same metadata), whose scans add
 * the node's hot segments and whose FileIO reads them.
 */
final class ZombiTable extends BaseTable {
  private static final long serialVersionUID = 1L;
  private static final Logger LOG = LoggerFactory.getLogger(ZombiTable.class);

  private final String zombiName;
  private final transient HotSource hot;
  private final FileIO io;

  /** When the metadata was last loaded from the node. */
  private volatile long loadedAtNanos = System.nanoTime();

  ZombiTable(
      TableOperations ops,
      String name,
      MetricsReporter reporter,
      String zombiName,
      HotSource hot,
      FileIO delegateIO) {
    super(ops, name, reporter);
    this.zombiName = zombiName;
    this.hot = hot;
    this.io = hot.io(delegateIO);
  }

  /** The table's name on the node (the hot API has no namespace). */
  String zombiName() {
    return zombiName;
  }

  HotSource hot() {
    return hot;
  }

  /** Also Spark's and Flink's batch scans and Spark's aggregate push-down: they start here. */
  @Override
  public TableScan newScan() {
    TableScan scan = super.newScan();
    return hot.enabled() ? new HotTableScan(this, scan) : scan;
  }

  @Override
  public FileIO io() {
    return io;
  }

  /**
   * Distributed planning reads manifests on executors and never calls {@link #newScan()}, so it
   * would miss the hot files: this table reports local planning.
   */
  @Override
  public Map<String, String> properties() {
    Map<String, String> props = super.properties();
    if (!hot.enabled()) {
      return props;
    }
    Map<String, String> out = new HashMap<>(props);
    out.put(TableProperties.DATA_PLANNING_MODE, PlanningMode.LOCAL.modeName());
    out.put(TableProperties.DELETE_PLANNING_MODE, PlanningMode.LOCAL.modeName());
    return out;
  }

  /**
   * Bounded by the planning timeout; when the node cannot answer, the table keeps the metadata it
   * has (its committed data is still readable from the warehouse) instead of failing the query.
   */
  @Override
  public void refresh() {
    try {
      NodeCalls.bounded(
          () -> {
            super.refresh();
            loadedAtNanos = System.nanoTime();
            return null;
          },
          hot.planningTimeoutMs(),
          "refresh " + name());
    } catch (RuntimeException e) {
      if (!NodeCalls.isUnavailable(e)) {
        throw e;
      }
      LOG.warn(
          "{}: node unreachable on refresh, keeping snapshot {}: {}",
          name(),
          currentSnapshot() == null ? "none" : currentSnapshot().snapshotId(),
          e.getMessage());
    }
  }

  /**
   * Refreshes the table if its metadata is older than {@code zombi.max-table-age-ms}. Tables are
   * loaded per query when the engine's catalog cache is off, so this matters only with it on.
   */
  void refreshIfOld() {
    if (System.nanoTime() - loadedAtNanos > hot.maxTableAgeNanos()) {
      LOG.debug("{}: metadata older than the maximum table age, refreshing", name());
      refresh();
    }
  }

  /** Serialized as Iceberg serializes any table: a read-only copy carrying {@link #io()}. */
  Object writeReplace() {
    return SerializableTable.copyOf(this);
  }
}
