package dev.zombi.hot;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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

  /** What pruning and planning need of one spec. */
  private static final class PerSpec {
    final Evaluator partitions;
    final ResidualEvaluator residuals;
    final String specJson;

    PerSpec(PartitionSpec spec, Expression filter, boolean caseSensitive, boolean ignoreResiduals) {
      this.partitions =
          new Evaluator(
              spec.partitionType(),
              Projections.inclusive(spec, caseSensitive).project(filter),
              caseSensitive);
      this.residuals =
          ResidualEvaluator.of(
              spec, ignoreResiduals ? Expressions.alwaysTrue() : filter, caseSensitive);
      this.specJson = PartitionSpecParser.toJson(spec);
    }
  }

  /**
   * Plans {@code segments} of a table with {@code specs} (by id) and {@code schema}; each segment is
   * a file of the spec its listing entry names.
   *
   * @param filter the scan's filter
   * @param ignoreResiduals plan with an always-true residual
   * @param keepStats keep the column metrics on the data files (Iceberg's {@code
   *     includeColumnStats})
   * @param statsIds the field ids to keep metrics of; null for all
   * @return null when a segment's spec is not one of {@code specs} (the table's spec changed after
   *     the caller loaded it): the caller must then read committed data only, or load again
   */
  public static Planned plan(
      List<HotSegment> segments,
      Map<Integer, PartitionSpec> specs,
      Schema schema,
      Expression filter,
      boolean caseSensitive,
      boolean ignoreResiduals,
      boolean keepStats,
      Set<Integer> statsIds) {
    InclusiveMetricsEvaluator metrics =
        new InclusiveMetricsEvaluator(schema, filter, caseSensitive);
    String schemaJson = SchemaParser.toJson(schema);
    Map<Integer, PerSpec> perSpec = new HashMap<>();

    List<FileScanTask> tasks = new ArrayList<>();
    long rows = 0;
    for (HotSegment segment : segments) {
      PartitionSpec spec = specs.get(segment.specId);
      if (spec == null) {
        return null;
      }
      PerSpec of =
          perSpec.computeIfAbsent(
              spec.specId(),
              id -> new PerSpec(spec, filter, caseSensitive, ignoreResiduals));
      StructLike partition = segment.partitionIn(spec, schema);
      if (!of.partitions.eval(partition)) {
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
      tasks.add(new BaseFileScanTask(kept, null, schemaJson, of.specJson, of.residuals));
      rows += segment.recordCount;
    }
    return new Planned(tasks, rows, segments.size());
  }
}
