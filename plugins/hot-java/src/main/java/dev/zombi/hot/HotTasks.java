package dev.zombi.hot;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.iceberg.BaseFileScanTask;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.FileScanTask;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.PartitionSpecParser;
import org.apache.iceberg.Schema;
import org.apache.iceberg.SchemaParser;
import org.apache.iceberg.StructLike;
import org.apache.iceberg.expressions.Evaluator;
import org.apache.iceberg.expressions.Expression;
import org.apache.iceberg.expressions.Expressions;
import org.apache.iceberg.expressions.InclusiveMetricsEvaluator;
import org.apache.iceberg.expressions.Projections;
import org.apache.iceberg.expressions.ResidualEvaluator;

/**
 * Hot segments as Iceberg file scan tasks, pruned with a scan's filter like cold files: the
 * partition projection first, then the column metrics; each task carries its residual. Every
 * engine plugin plans hot data through here, so they keep and drop the same segments.
 */
public final class HotTasks {
  /** The tasks, and how many rows and segments were kept. */
  public static final class Planned {
    public final List<FileScanTask> tasks;
    public final long rows;
    public final int listed;

    Planned(List<FileScanTask> tasks, long rows, int listed) {
      this.tasks = tasks;
      this.rows = rows;
      this.listed = listed;
    }
  }

  private HotTasks() {}

  /**
   * Plans {@code segments} of a table with {@code spec} and {@code schema}.
   *
   * @param filter the scan's filter
   * @param ignoreResiduals plan with an always-true residual
   * @param keepStats keep the column metrics on the data files (Iceberg's {@code
   *     includeColumnStats})
   * @param statsIds the field ids to keep metrics of; null for all
   * @return null when {@code spec} partitions by a column a segment does not fix: the caller must
   *     then read committed data only
   */
  public static Planned plan(
      List<HotSegment> segments,
      PartitionSpec spec,
      Schema schema,
      Expression filter,
      boolean caseSensitive,
      boolean ignoreResiduals,
      boolean keepStats,
      Set<Integer> statsIds) {
    Evaluator partitions =
        new Evaluator(
            spec.partitionType(),
            Projections.inclusive(spec, caseSensitive).project(filter),
            caseSensitive);
    InclusiveMetricsEvaluator metrics =
        new InclusiveMetricsEvaluator(schema, filter, caseSensitive);
    ResidualEvaluator residuals =
        ResidualEvaluator.of(
            spec, ignoreResiduals ? Expressions.alwaysTrue() : filter, caseSensitive);
    String schemaJson = SchemaParser.toJson(schema);
    String specJson = PartitionSpecParser.toJson(spec);

    List<FileScanTask> tasks = new ArrayList<>();
    long rows = 0;
    for (HotSegment segment : segments) {
      StructLike partition = segment.partitionIn(spec, schema);
      if (partition == null) {
        return null;
      }
      if (!partitions.eval(partition)) {
        continue;
      }
      DataFile file = segment.toDataFile(spec, schema, partition);
      if (!metrics.eval(file)) {
        continue;
      }
      DataFile kept =
          !keepStats
              ? file.copyWithoutStats()
              : statsIds == null ? file.copy() : file.copyWithStats(statsIds);
      tasks.add(new BaseFileScanTask(kept, null, schemaJson, specJson, residuals));
      rows += segment.recordCount;
    }
    return new Planned(tasks, rows, segments.size());
  }
}
