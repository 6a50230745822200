package dev.zombi.iceberg;

import dev.zombi.hot.HotSegment;
import dev.zombi.hot.HotTasks;
import dev.zombi.hot.WatermarkTooOldException;
import dev.zombi.hot.Watermarks;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.stream.Collectors;
import org.apache.iceberg.CombinedScanTask;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.Schema;
import org.apache.iceberg.Snapshot;
import org.apache.iceberg.SnapshotRef;
import org.apache.iceberg.Table;
import org.apache.iceberg.TableScan;
import org.apache.iceberg.exceptions.ForbiddenException;
import org.apache.iceberg.exceptions.NotAuthorizedException;
import org.apache.iceberg.expressions.Expression;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.metrics.MetricsReporter;
import org.apache.iceberg.types.Types;
import org.apache.iceberg.util.TableScanUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Iceberg's own scan of a Zombi table plus the node's hot segments as extra data files.
 *
 * <p>Cold files come from the scanned snapshot S; hot files from the node's listing above S's
 * watermark map, so every acknowledged event is read exactly once. Hot files are pruned with the
 * scan's filter like cold ones (partition projection, then column metrics) and carry residuals.
 * A scan pinned to a snapshot, a ref other than main or a time is cold-only: the hot store holds
 * only what is newer than the current snapshot.
 */
final class HotTableScan implements TableScan {
  private static final Logger LOG = LoggerFactory.getLogger(HotTableScan.class);

  /** Plans per scan: a 410 reloads the table and plans again, this many times at most. */
  private static final int MAX_PLANS = 3;

  private final ZombiTable table;
  private final TableScan cold;
  private final boolean pinned;
  private final boolean ignoreResiduals;
  private final boolean keepStats;
  private final Collection<String> statsColumns;

  HotTableScan(ZombiTable table, TableScan cold) {
    this(table, cold, false, false, false, null);
  }

  private HotTableScan(
      ZombiTable table,
      TableScan cold,
      boolean pinned,
      boolean ignoreResiduals,
      boolean keepStats,
      Collection<String> statsColumns) {
    this.table = table;
    this.cold = cold;
    this.pinned = pinned;
    this.ignoreResiduals = ignoreResiduals;
    this.keepStats = keepStats;
    this.statsColumns = statsColumns;
  }

  private HotTableScan withCold(TableScan newCold) {
    return new HotTableScan(table, newCold, pinned, ignoreResiduals, keepStats, statsColumns);
  }

  @Override
  public Table table() {
    return table;
  }

  @Override
  public TableScan useSnapshot(long snapshotId) {
    return new HotTableScan(
        table, cold.useSnapshot(snapshotId), true, ignoreResiduals, keepStats, statsColumns);
  }

  @Override
  public TableScan useRef(String ref) {
    boolean main = SnapshotRef.MAIN_BRANCH.equals(ref);
    return new HotTableScan(
        table, cold.useRef(ref), pinned || !main, ignoreResiduals, keepStats, statsColumns);
  }

  @Override
  public TableScan asOfTime(long timestampMillis) {
    return new HotTableScan(
        table, cold.asOfTime(timestampMillis), true, ignoreResiduals, keepStats, statsColumns);
  }

  @Override
  public Snapshot snapshot() {
    return cold.snapshot();
  }

  @Override
  public TableScan option(String property, String value) {
    return withCold(cold.option(property, value));
  }

  @Override
  public TableScan project(Schema schema) {
    return withCold(cold.project(schema));
  }

  @Override
  public TableScan caseSensitive(boolean caseSensitive) {
    return withCold(cold.caseSensitive(caseSensitive));
  }

  @Override
  public boolean isCaseSensitive() {
    return cold.isCaseSensitive();
  }

  @Override
  public TableScan includeColumnStats() {
    return new HotTableScan(
        table, cold.includeColumnStats(), pinned, ignoreResiduals, true, null);
  }

  @Override
  public TableScan includeColumnStats(Collection<String> requestedColumns) {
    return new HotTableScan(
        table,
        cold.includeColumnStats(requestedColumns),
        pinned,
        ignoreResiduals,
        true,
        new ArrayList<>(requestedColumns));
  }

  @Override
  public TableScan select(Collection<String> columns) {
    return withCold(cold.select(columns));
  }

  @Override
  public TableScan filter(Expression expr) {
    return withCold(cold.filter(expr));
  }

  @Override
  public Expression filter() {
    return cold.filter();
  }

  @Override
  public TableScan ignoreResiduals() {
    return new HotTableScan(
        table, cold.ignoreResiduals(), pinned, true, keepStats, statsColumns);
  }

  @Override
  public TableScan planWith(ExecutorService executorService) {
    return withCold(cold.planWith(executorService));
  }

  @Override
  public TableScan metricsReporter(MetricsReporter reporter) {
    return withCold(cold.metricsReporter(reporter));
  }

  @Override
  public Schema schema() {
    return cold.schema();
  }

  @Override
  public long targetSplitSize() {
    return cold.targetSplitSize();
  }

  @Override
  public int splitLookback() {
    return cold.splitLookback();
  }

  @Override
  public long splitOpenFileCost() {
    return cold.splitOpenFileCost();
  }

  @Override
  public CloseableIterable<FileScanTask> planFiles() {
    if (pinned || !table.hot().enabled()) {
      return cold.planFiles();
    }
    table.refreshIfOld();
    for (int plan = 1; ; plan++) {
      Snapshot snapshot = cold.snapshot();
      List<FileScanTask> hot;
      try {
        hot = hotTasks(snapshot);
      } catch (WatermarkTooOldException e) {
        if (plan >= MAX_PLANS) {
          LOG.warn(
              "{}: the node still finds the watermarks too old after {} reloads; reading committed"
                  + " data only: {}",
              table.name(),
              plan - 1,
              e.getMessage());
          return cold.planFiles();
        }
        LOG.info("{}: {}; reloading the table and planning again", table.name(), e.getMessage());
        table.refresh();
        continue;
      }
      CloseableIterable<FileScanTask> coldTasks = cold.planFiles();
      if (!sameSnapshot(snapshot, cold.snapshot())) {
        // The table was refreshed while planning: plan both halves again from one snapshot.
        close(coldTasks);
        if (plan < MAX_PLANS) {
          continue;
        }
        LOG.warn(
            "{}: the table kept changing while planning; reading committed data only",
            table.name());
        return cold.planFiles();
      }
      if (hot.isEmpty()) {
        return coldTasks;
      }
      return CloseableIterable.concat(
          Arrays.asList(coldTasks, CloseableIterable.withNoopClose(hot)));
    }
  }

  @Override
  public CloseableIterable<CombinedScanTask> planTasks() {
    CloseableIterable<FileScanTask> split =
        TableScanUtil.splitFiles(planFiles(), targetSplitSize());
    return TableScanUtil.planTasks(split, targetSplitSize(), splitLookback(), splitOpenFileCost());
  }

  /**
   * The hot files above {@code snapshot}'s watermarks that may match the filter. Empty, with a
   * warning, when the node cannot answer: the scan then reads committed data only.
   */
  private List<FileScanTask> hotTasks(Snapshot snapshot) {
    String watermarks;
    try {
      watermarks = Watermarks.of(snapshot);
    } catch (NumberFormatException e) {
      watermarks = null;
    }
    if (watermarks == null) {
      LOG.warn(
          "{}: snapshot {} has no valid zombi.watermark.* summary (not committed by Zombi?);"
              + " reading committed data only",
          table.name(),
          snapshot.snapshotId());
      return List.of();
    }

    List<HotSegment> segments;
    try {
      segments = table.hot().segments(table.zombiName(), watermarks);
    } catch (WatermarkTooOldException | NotAuthorizedException | ForbiddenException e) {
      throw e;
    } catch (RuntimeException e) {
      LOG.warn(
          "{}: hot segments unavailable, reading committed data only: {}",
          table.name(),
          e.getMessage());
      return List.of();
    }

    HotTasks.Planned planned =
        HotTasks.plan(
            segments,
            table.specs(),
            table.schema(),
            cold.filter(),
            cold.isCaseSensitive(),
            ignoreResiduals,
            keepStats,
            statsColumnIds(table.schema(), cold.isCaseSensitive()));
    if (planned == null) {
      LOG.warn(
          "{}: hot segments are of a partition spec this table's metadata does not hold yet; reading committed data only",
          table.name());
      return List.of();
    }
    LOG.info(
        "{}: snapshot {}: {} of {} hot segments ({} rows) match the scan",
        table.name(),
        snapshot == null ? "none" : snapshot.snapshotId(),
        planned.tasks.size(),
        planned.listed,
        planned.rows);
    return planned.tasks;
  }

  private Set<Integer> statsColumnIds(Schema schema, boolean caseSensitive) {
    if (statsColumns == null) {
      return null;
    }
    return statsColumns.stream()
        .map(
            name -> {
              Types.NestedField field =
                  caseSensitive ? schema.findField(name) : schema.caseInsensitiveFindField(name);
              if (field == null) {
                throw new IllegalArgumentException("Cannot find column for stats: " + name);
              }
              return field.fieldId();
            })
        .collect(Collectors.toSet());
  }

  private static boolean sameSnapshot(Snapshot a, Snapshot b) {
    return Objects.equals(
        a == null ? null : a.snapshotId(), b == null ? null : b.snapshotId());
  }

  private static void close(CloseableIterable<?> iterable) {
    try {
      iterable.close();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public String toString() {
    return "HotTableScan(" + cold + (pinned ? ", pinned: cold only" : "") + ")";
  }
}
