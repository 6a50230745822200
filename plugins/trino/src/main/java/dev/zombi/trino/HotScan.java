package dev.zombi.trino;

import dev.zombi.hot.HotSegment;
import dev.zombi.hot.HotTasks;
import java.lang.reflect.Method;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.stream.Collectors;
import org.apache.iceberg.CombinedScanTask;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.Schema;
import org.apache.iceberg.Snapshot;
import org.apache.iceberg.Table;
import org.apache.iceberg.TableScan;
import org.apache.iceberg.expressions.Expression;
import org.apache.iceberg.io.CloseableIterable;
import org.apache.iceberg.metrics.MetricsReporter;
import org.apache.iceberg.types.Types;
import org.apache.iceberg.util.TableScanUtil;

/**
 * The hot half of a query: a scan whose files are the listed hot segments, pruned with the filter
 * Trino's Iceberg split source sets (as Iceberg prunes cold files), everything else delegated to
 * a scan of the same snapshot. Trino's own split source turns its tasks into splits.
 */
final class HotScan implements TableScan {
  private final TableScan base;
  private final List<HotSegment> segments;
  private final Map<Integer, PartitionSpec> specs;
  private final Schema schema;
  private final boolean keepStats;
  private final Collection<String> statsColumns;
  private final boolean ignoreResiduals;

  HotScan(
      TableScan base, List<HotSegment> segments, Map<Integer, PartitionSpec> specs, Schema schema) {
    this(base, segments, specs, schema, false, null, false);
  }

  private HotScan(
      TableScan base,
      List<HotSegment> segments,
      Map<Integer, PartitionSpec> specs,
      Schema schema,
      boolean keepStats,
      Collection<String> statsColumns,
      boolean ignoreResiduals) {
    this.base = base;
    this.segments = segments;
    this.specs = specs;
    this.schema = schema;
    this.keepStats = keepStats;
    this.statsColumns = statsColumns;
    this.ignoreResiduals = ignoreResiduals;
  }

  private HotScan with(TableScan newBase) {
    return new HotScan(
        newBase, segments, specs, schema, keepStats, statsColumns, ignoreResiduals);
  }

  @Override
  public CloseableIterable<FileScanTask> planFiles() {
    boolean caseSensitive = base.isCaseSensitive();
    Set<Integer> statsIds =
        statsColumns == null
            ? null
            : statsColumns.stream()
                .map(
                    name -> {
                      Types.NestedField field =
                          caseSensitive
                              ? schema.findField(name)
                              : schema.caseInsensitiveFindField(name);
                      return field == null ? null : field.fieldId();
                    })
                .filter(id -> id != null)
                .collect(Collectors.toSet());
    HotTasks.Planned planned =
        HotTasks.plan(
            segments,
            specs,
            schema,
            base.filter(),
            caseSensitive,
            ignoreResiduals,
            keepStats,
            statsIds);
    if (planned == null) {
      throw new IllegalStateException(
          "hot segments are of a partition spec the table's metadata does not hold; query again");
    }
    long sequence = base.snapshot() == null ? 0 : base.snapshot().sequenceNumber() + 1;
    for (FileScanTask task : planned.tasks) {
      setDataSequenceNumber(task.file(), sequence);
    }
    return CloseableIterable.withNoopClose(planned.tasks);
  }

  /**
   * Trino's split source reads every data file's data sequence number (for equality deletes,
   * which Zombi tables never have); a file that is not in a manifest has none, and Iceberg's
   * builders offer no way to set one. A hot file is newer than the snapshot it was listed above.
   */
  private static void setDataSequenceNumber(DataFile file, long sequence) {
    for (Class<?> type = file.getClass(); type != null; type = type.getSuperclass()) {
      try {
        Method setter = type.getDeclaredMethod("setDataSequenceNumber", Long.class);
        setter.setAccessible(true);
        setter.invoke(file, sequence);
        return;
      } catch (NoSuchMethodException e) {
        // declared higher up
      } catch (ReflectiveOperationException e) {
        throw new IllegalStateException("cannot set the data sequence number of " + file.location(), e);
      }
    }
    throw new IllegalStateException(
        "this Iceberg version's data files have no data sequence number setter: " + file.getClass());
  }

  @Override
  public CloseableIterable<CombinedScanTask> planTasks() {
    return TableScanUtil.planTasks(
        TableScanUtil.splitFiles(planFiles(), targetSplitSize()),
        targetSplitSize(),
        splitLookback(),
        splitOpenFileCost());
  }

  @Override
  public Table table() {
    return base.table();
  }

  @Override
  public TableScan useSnapshot(long snapshotId) {
    throw new UnsupportedOperationException("a hot scan is pinned to the snapshot it was listed for");
  }

  @Override
  public TableScan asOfTime(long timestampMillis) {
    throw new UnsupportedOperationException("a hot scan is pinned to the snapshot it was listed for");
  }

  @Override
  public Snapshot snapshot() {
    return base.snapshot();
  }

  @Override
  public TableScan option(String property, String value) {
    return with(base.option(property, value));
  }

  @Override
  public TableScan project(Schema projected) {
    return with(base.project(projected));
  }

  @Override
  public TableScan caseSensitive(boolean caseSensitive) {
    return with(base.caseSensitive(caseSensitive));
  }

  @Override
  public boolean isCaseSensitive() {
    return base.isCaseSensitive();
  }

  @Override
  public TableScan includeColumnStats() {
    return new HotScan(
        base.includeColumnStats(), segments, specs, schema, true, null, ignoreResiduals);
  }

  @Override
  public TableScan includeColumnStats(Collection<String> requestedColumns) {
    return new HotScan(
        base.includeColumnStats(requestedColumns),
        segments,
        specs,
        schema,
        true,
        List.copyOf(requestedColumns),
        ignoreResiduals);
  }

  @Override
  public TableScan select(Collection<String> columns) {
    return with(base.select(columns));
  }

  @Override
  public TableScan filter(Expression expr) {
    return with(base.filter(expr));
  }

  @Override
  public Expression filter() {
    return base.filter();
  }

  @Override
  public TableScan ignoreResiduals() {
    return new HotScan(
        base.ignoreResiduals(), segments, specs, schema, keepStats, statsColumns, true);
  }

  @Override
  public TableScan planWith(ExecutorService executorService) {
    return with(base.planWith(executorService));
  }

  @Override
  public TableScan metricsReporter(MetricsReporter reporter) {
    return with(base.metricsReporter(reporter));
  }

  @Override
  public Schema schema() {
    return schema;
  }

  @Override
  public long targetSplitSize() {
    return base.targetSplitSize();
  }

  @Override
  public int splitLookback() {
    return base.splitLookback();
  }

  @Override
  public long splitOpenFileCost() {
    return base.splitOpenFileCost();
  }
}
