package dev.zombi.trino;

import static io.trino.plugin.iceberg.IcebergSessionProperties.getDynamicFilteringWaitTimeout;
import static io.trino.plugin.iceberg.IcebergSessionProperties.getMinimumAssignedSplitWeight;
import static io.trino.spi.StandardErrorCode.GENERIC_USER_ERROR;

import com.google.common.util.concurrent.ListeningExecutorService;
import com.google.inject.Inject;
import dev.zombi.hot.HotHttp;
import dev.zombi.hot.HotSegment;
import dev.zombi.hot.NodeCalls;
import dev.zombi.hot.WatermarkTooOldException;
import dev.zombi.hot.Watermarks;
import io.airlift.log.Logger;
import io.trino.filesystem.cache.CachingHostAddressProvider;
import io.trino.plugin.base.classloader.ClassLoaderSafeConnectorSplitSource;
import io.trino.plugin.iceberg.ForIcebergSplitSource;
import io.trino.plugin.iceberg.IcebergFileSystemFactory;
import io.trino.plugin.iceberg.IcebergSplitSource;
import io.trino.plugin.iceberg.IcebergTableHandle;
import io.trino.plugin.iceberg.TableType;
import io.trino.spi.TrinoException;
import io.trino.spi.classloader.ThreadContextClassLoader;
import io.trino.spi.connector.ConnectorSession;
import io.trino.spi.connector.ConnectorSplitManager;
import io.trino.spi.connector.ConnectorSplitSource;
import io.trino.spi.connector.ConnectorTableHandle;
import io.trino.spi.connector.ConnectorTransactionHandle;
import io.trino.spi.connector.Constraint;
import io.trino.spi.connector.DynamicFilter;
import io.trino.spi.type.TypeManager;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.apache.iceberg.Snapshot;
import org.apache.iceberg.Table;
import org.apache.iceberg.TableScan;
import org.apache.iceberg.metrics.InMemoryMetricsReporter;

/**
 * The Iceberg connector's splits of the scanned snapshot S, then the hot segments above S's
 * watermarks as more splits of the same kind (Trino's Iceberg page source reads them through
 * {@link HotFileSystemFactory}). Every event acknowledged before the listing is read exactly
 * once: below the watermarks it is in S only, above them in a segment only.
 *
 * <p>Committed data only, with a warning in the log, when the node does not answer within the
 * planning timeout, when S carries no watermarks, for time travel and for scans that rewrite
 * files. A 410 (S's hot events were deleted since) plans again from the table's current snapshot.
 */
final class ZombiSplitManager implements ConnectorSplitManager {
  private static final Logger LOG = Logger.get(ZombiSplitManager.class);
  private static final int MAX_PLANS = 3;

  private final ConnectorSplitManager iceberg;
  private final ZombiCatalogFactory catalogs;
  private final IcebergFileSystemFactory fileSystems;
  private final TypeManager types;
  private final ListeningExecutorService splitSourceExecutor;
  private final CachingHostAddressProvider hosts;
  private final ZombiConfig config;
  private final HotHttp http;
  private final Pins pins;

  @Inject
  ZombiSplitManager(
      ConnectorSplitManager iceberg,
      ZombiCatalogFactory catalogs,
      IcebergFileSystemFactory fileSystems,
      TypeManager types,
      @ForIcebergSplitSource ListeningExecutorService splitSourceExecutor,
      CachingHostAddressProvider hosts,
      ZombiConfig config,
      HotHttp http,
      Pins pins) {
    this.iceberg = iceberg;
    this.catalogs = catalogs;
    this.fileSystems = fileSystems;
    this.types = types;
    this.splitSourceExecutor = splitSourceExecutor;
    this.hosts = hosts;
    this.config = config;
    this.http = http;
    this.pins = pins;
  }

  @Override
  public ConnectorSplitSource getSplits(
      ConnectorTransactionHandle transaction,
      ConnectorSession session,
      ConnectorTableHandle handle,
      DynamicFilter dynamicFilter,
      Constraint constraint) {
    // Iceberg and the REST client load classes through the thread's context class loader.
    try (ThreadContextClassLoader _ =
        new ThreadContextClassLoader(ZombiSplitManager.class.getClassLoader())) {
      return splits(transaction, session, handle, dynamicFilter, constraint);
    }
  }

  private ConnectorSplitSource splits(
      ConnectorTransactionHandle transaction,
      ConnectorSession session,
      ConnectorTableHandle handle,
      DynamicFilter dynamicFilter,
      Constraint constraint) {
    if (!(handle instanceof IcebergTableHandle) || !config.hotEnabled) {
      return iceberg.getSplits(transaction, session, handle, dynamicFilter, constraint);
    }
    IcebergTableHandle asked = (IcebergTableHandle) handle;
    if (asked.getTableType() != TableType.DATA
        || asked.isRecordScannedFiles()
        || asked.getSnapshotId().map(id -> pins.pinned(transaction, asked.getSchemaTableName(), id)).orElse(false)) {
      return iceberg.getSplits(transaction, session, handle, dynamicFilter, constraint);
    }

    IcebergTableHandle table = asked;
    for (int plan = 1; ; plan++) {
      Hot hot = listHot(session, table);
      if (hot.tooOld && plan < MAX_PLANS) {
        Optional<IcebergTableHandle> newer = newerHandle(table, hot.table);
        if (newer.isPresent()) {
          LOG.info("%s: snapshot %s is too old for the hot store; planning again from snapshot %s",
              table.getSchemaTableName(), table.getSnapshotId().orElse(null), newer.get().getSnapshotId().orElse(null));
          table = newer.get();
          continue;
        }
      }
      ConnectorSplitSource cold = iceberg.getSplits(transaction, session, table, dynamicFilter, constraint);
      if (hot.segments.isEmpty()) {
        if (hot.tooOld) {
          LOG.warn("%s: the node still finds the watermarks of snapshot %s too old; reading committed data only",
              table.getSchemaTableName(), table.getSnapshotId().orElse(null));
        }
        return cold;
      }
      ConnectorSplitSource hotSplits;
      try {
        hotSplits = hotSplits(session, table, hot, dynamicFilter, constraint);
      } catch (RuntimeException e) {
        cold.close();
        throw e;
      }
      return new ConcatSplitSource(cold, hotSplits);
    }
  }

  /** What the node listed above one snapshot. */
  private static final class Hot {
    final Table table;
    final Snapshot snapshot;
    final List<HotSegment> segments;
    final boolean tooOld;

    Hot(Table table, Snapshot snapshot, List<HotSegment> segments, boolean tooOld) {
      this.table = table;
      this.snapshot = snapshot;
      this.segments = segments;
      this.tooOld = tooOld;
    }

    static Hot none(Table table) {
      return new Hot(table, null, List.of(), false);
    }
  }

  private Hot listHot(ConnectorSession session, IcebergTableHandle handle) {
    String name = handle.getSchemaTableName().toString();
    if (catalogs.away()) {
      LOG.info("%s: the node did not answer recently; reading committed data only", name);
      return Hot.none(null);
    }
    // The catalog bounds the load and reads the warehouse when the node does not answer.
    Table table = catalogs.create(session.getIdentity()).loadTable(session, handle.getSchemaTableName());
    if (catalogs.away()) {
      return Hot.none(table);
    }
    Snapshot snapshot = null;
    if (handle.getSnapshotId().isPresent()) {
      snapshot = table.snapshot(handle.getSnapshotId().get());
      if (snapshot == null) {
        // Expired since the query began: the events above it may be committed and gone.
        return new Hot(table, null, List.of(), true);
      }
    }
    String watermarks;
    try {
      watermarks = Watermarks.of(snapshot);
    } catch (NumberFormatException e) {
      watermarks = null;
    }
    if (watermarks == null) {
      LOG.warn("%s: snapshot %s has no valid zombi.watermark.* summary (not committed by Zombi?); reading committed data only",
          name, snapshot.snapshotId());
      return Hot.none(table);
    }
    byte[] body;
    try {
      body = http.listSegments(handle.getTableName(), watermarks, config.planningTimeoutMs);
    } catch (WatermarkTooOldException e) {
      return new Hot(table, snapshot, List.of(), true);
    } catch (RuntimeException e) {
      if (!NodeCalls.isUnavailable(e)) {
        throw new TrinoException(GENERIC_USER_ERROR, "zombi: hot segments of " + name + ": " + e.getMessage(), e);
      }
      catalogs.wentAway("hot segments of " + name, e);
      return Hot.none(table);
    }
    List<HotSegment> segments = HotSegment.parseListing(body);
    LOG.debug("%s: snapshot %s: %s hot segments", name, snapshot == null ? "none" : snapshot.snapshotId(), segments.size());
    return new Hot(table, snapshot, segments, false);
  }

  /** The handle re-pointed at the table's current snapshot, if that is another one. */
  private static Optional<IcebergTableHandle> newerHandle(IcebergTableHandle handle, Table table) {
    if (table == null) {
      return Optional.empty();
    }
    table.refresh();
    Snapshot current = table.currentSnapshot();
    if (current == null || handle.getSnapshotId().equals(Optional.of(current.snapshotId()))) {
      return Optional.empty();
    }
    return Optional.of(
        new IcebergTableHandle(
            handle.getCatalog(),
            handle.getSchemaName(),
            handle.getTableName(),
            handle.getTableType(),
            Optional.of(current.snapshotId()),
            handle.getTableSchemaJson(),
            handle.getPartitionSpecJson(),
            handle.getFormatVersion(),
            handle.getUnenforcedPredicate(),
            handle.getEnforcedPredicate(),
            handle.getLimit(),
            handle.getProjectedColumns(),
            handle.getNameMappingJson(),
            handle.getTableLocation(),
            handle.getStorageProperties(),
            handle.getTablePartitioning(),
            handle.isRecordScannedFiles(),
            handle.getMaxScannedFileSize(),
            handle.getConstraintColumns(),
            handle.getForAnalyze()));
  }

  private ConnectorSplitSource hotSplits(
      ConnectorSession session,
      IcebergTableHandle handle,
      Hot hot,
      DynamicFilter dynamicFilter,
      Constraint constraint) {
    TableScan base = hot.table.newScan();
    if (hot.snapshot != null) {
      base = base.useSnapshot(hot.snapshot.snapshotId());
    }
    HotScan scan = new HotScan(base, hot.segments, hot.table.specs(), hot.table.schema());
    IcebergSplitSource source =
        new IcebergSplitSource(
            fileSystems,
            session,
            handle,
            hot.table,
            scan,
            handle.getMaxScannedFileSize(),
            dynamicFilter,
            getDynamicFilteringWaitTimeout(session),
            constraint,
            types,
            false,
            getMinimumAssignedSplitWeight(session),
            hosts,
            new InMemoryMetricsReporter(),
            splitSourceExecutor);
    return new ClassLoaderSafeConnectorSplitSource(source, ZombiSplitManager.class.getClassLoader());
  }

  /** The cold splits, then the hot ones. */
  private static final class ConcatSplitSource implements ConnectorSplitSource {
    private final ConnectorSplitSource first;
    private final ConnectorSplitSource second;

    ConcatSplitSource(ConnectorSplitSource first, ConnectorSplitSource second) {
      this.first = first;
      this.second = second;
    }

    @Override
    public CompletableFuture<ConnectorSplitBatch> getNextBatch(int maxSize) {
      if (!first.isFinished()) {
        return first.getNextBatch(maxSize)
            .thenApply(batch -> new ConnectorSplitBatch(batch.getSplits(), false));
      }
      return second.getNextBatch(maxSize);
    }

    @Override
    public void close() {
      try {
        first.close();
      } finally {
        second.close();
      }
    }

    @Override
    public boolean isFinished() {
      return first.isFinished() && second.isFinished();
    }
  }
}
