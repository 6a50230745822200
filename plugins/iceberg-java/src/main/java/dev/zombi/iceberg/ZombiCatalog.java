package dev.zombi.iceberg;

import dev.zombi.hot.NodeCalls;
import dev.zombi.hot.NodeUnavailableException;
import java.io.IOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.iceberg.BaseTable;
import org.apache.iceberg.CatalogProperties;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.Schema;
import org.apache.iceberg.Table;
import org.apache.iceberg.Transaction;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.TableCommit;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.exceptions.NoSuchViewException;
import org.apache.iceberg.io.FileIO;
import org.apache.iceberg.io.ResolvingFileIO;
import org.apache.iceberg.io.StorageCredential;
import org.apache.iceberg.io.SupportsStorageCredentials;
import org.apache.iceberg.metrics.MetricsReporter;
import org.apache.iceberg.rest.RESTCatalog;
import org.apache.iceberg.view.View;
import org.apache.iceberg.view.ViewBuilder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Zombi's Iceberg catalog: Iceberg's REST catalog on the Zombi node, whose tables also read the
 * node's hot (not yet committed) events, and which reads committed data straight from the
 * warehouse when the node cannot answer.
 *
 * <p>Use it as {@code catalog-impl} (Spark: {@code spark.sql.catalog.X.catalog-impl}); see
 * plugins/iceberg-java/README.md for the properties.
 *
 * <ul>
 *   <li>{@link #loadTable} wraps each data table in a {@link ZombiTable}: same operations and
 *       metadata, scans that add the hot segments above the scanned snapshot's watermarks.
 *   <li>Every call to the node is bounded by {@code zombi.planning-timeout-ms}. When the node
 *       does not answer (refused, hung, 5xx), tables load from the warehouse's version hint:
 *       committed data only, read-only, no error. After such a failure the node is asked again
 *       only after {@code zombi.node-retry-interval-ms}.
 *   <li>If the node cannot be reached when the catalog starts, the catalog still starts, offline,
 *       and connects on a later call once the node answers.
 * </ul>
 */
public class ZombiCatalog extends RESTCatalog {
  private static final Logger LOG = LoggerFactory.getLogger(ZombiCatalog.class);

  private static final String CONNECTION_TIMEOUT_MS = "rest.client.connection-timeout-ms";
  private static final String SOCKET_TIMEOUT_MS = "rest.client.socket-timeout-ms";

  /** Catalog properties never handed to a FileIO (FileIOs travel to executors). */
  private static final Set<String> SECRET_KEYS =
      Set.of("token", "credential", ZombiProperties.HOT_TOKEN);

  private static final List<String> SECRET_PREFIXES =
      List.of("header.", "rest.", "urn:ietf:params:oauth:token-type:");

  private String catalogName;
  private Map<String, String> userProps;
  private Map<String, String> restProps;
  private ZombiProperties zombi;
  private HotSource hot;
  private Object hadoopConf;

  /** True once RESTCatalog's initialization (GET /v1/config) succeeded. */
  private volatile boolean connected;

  private Future<Void> connecting;

  /** When the node last failed to answer; 0 when it answered since. */
  private volatile long lastFailureNanos;

  /** The node's configuration once known: the warehouse and storage settings for fallback. */
  private volatile Map<String, String> nodeProps;

  private final Map<List<Object>, FileIO> scanIOs = new ConcurrentHashMap<>();
  private FileIO warehouseIO;

  public ZombiCatalog() {
    super();
  }

  @Override
  public void setConf(Object conf) {
    this.hadoopConf = conf;
    super.setConf(conf);
  }

  @Override
  public void initialize(String name, Map<String, String> props) {
    this.catalogName = name;
    this.userProps = Map.copyOf(props);
    this.zombi = ZombiProperties.parse(props);
    this.hot = new HotSource(zombi);
    // The REST client's own bounds on a connect and a socket read; the user's settings win.
    Map<String, String> rest = new HashMap<>(props);
    rest.putIfAbsent(CONNECTION_TIMEOUT_MS, Long.toString(zombi.planningTimeoutMs));
    rest.putIfAbsent(SOCKET_TIMEOUT_MS, Long.toString(zombi.planningTimeoutMs));
    this.restProps = Map.copyOf(rest);
    if (!"false".equalsIgnoreCase(props.get(CatalogProperties.CACHE_ENABLED))) {
      // Spark and Flink keep loaded tables (their snapshot, or a warehouse fallback) for a
      // while. Still correct (old tables are refreshed before hot planning, see
      // zombi.max-table-age-ms), but a table loaded per query is fresher and cheaper.
      LOG.warn(
          "zombi catalog {}: {}=false is recommended: each query then loads the table afresh",
          name,
          CatalogProperties.CACHE_ENABLED);
    }
    if (!connect()) {
      LOG.warn(
          "zombi catalog {}: node {} unreachable; committed data is read from the warehouse"
              + " until it answers",
          name,
          zombi.uri);
    }
  }

  @Override
  public String name() {
    return catalogName;
  }

  @Override
  public Map<String, String> properties() {
    return connected ? super.properties() : userProps;
  }

  // ---------------------------------------------------------------------------------------
  // Reads: bounded, with the warehouse as fallback.

  @Override
  public Table loadTable(TableIdentifier ident) {
    if (nodeMayAnswer() && connect()) {
      try {
        Table table =
            NodeCalls.bounded(
                () -> super.loadTable(ident), zombi.planningTimeoutMs, "load table " + ident);
        nodeAnswered();
        hot.forget(ident.name());
        return wrap(ident, table);
      } catch (RuntimeException e) {
        if (!NodeCalls.isUnavailable(e)) {
          throw e;
        }
        nodeFailed(e);
      }
    }
    Warehouse warehouse = warehouse();
    Table table = warehouse.load(ident);
    LOG.warn(
        "zombi catalog {}: node {} unreachable; {} read from warehouse {} (committed data only)",
        catalogName,
        zombi.uri,
        ident,
        warehouse.location());
    return table;
  }

  @Override
  public boolean tableExists(TableIdentifier ident) {
    return orWarehouse(
        () -> super.tableExists(ident), w -> w.exists(ident), "table exists " + ident);
  }

  @Override
  public List<TableIdentifier> listTables(Namespace ns) {
    return orWarehouse(() -> super.listTables(ns), w -> w.listTables(ns), "list tables " + ns);
  }

  @Override
  public List<Namespace> listNamespaces(Namespace ns) {
    return orWarehouse(
        () -> super.listNamespaces(ns), w -> w.listNamespaces(ns), "list namespaces " + ns);
  }

  @Override
  public boolean namespaceExists(Namespace ns) {
    return orWarehouse(
        () -> super.namespaceExists(ns), w -> w.namespaceExists(ns), "namespace exists " + ns);
  }

  @Override
  public Map<String, String> loadNamespaceMetadata(Namespace ns) {
    return orWarehouse(
        () -> super.loadNamespaceMetadata(ns),
        w -> {
          if (!w.namespaceExists(ns)) {
            throw new org.apache.iceberg.exceptions.NoSuchNamespaceException(
                "Namespace does not exist: %s", ns);
          }
          return Map.of();
        },
        "load namespace " + ns);
  }

  @Override
  public void invalidateTable(TableIdentifier ident) {
    if (connected) {
      super.invalidateTable(ident);
    }
  }

  @Override
  public List<TableIdentifier> listViews(Namespace ns) {
    return orWarehouse(() -> super.listViews(ns), w -> List.of(), "list views " + ns);
  }

  @Override
  public boolean viewExists(TableIdentifier ident) {
    return orWarehouse(() -> super.viewExists(ident), w -> false, "view exists " + ident);
  }

  @Override
  public View loadView(TableIdentifier ident) {
    return orWarehouse(
        () -> super.loadView(ident),
        w -> {
          throw new NoSuchViewException("View does not exist: %s (node unreachable)", ident);
        },
        "load view " + ident);
  }

  @Override
  public void invalidateView(TableIdentifier ident) {
    if (connected) {
      super.invalidateView(ident);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Changes: only through the node, unbounded (commits must not be cut short).

  @Override
  public TableBuilder buildTable(TableIdentifier ident, Schema schema) {
    requireNode();
    return super.buildTable(ident, schema);
  }

  @Override
  public Table createTable(
      TableIdentifier ident,
      Schema schema,
      PartitionSpec spec,
      String location,
      Map<String, String> props) {
    requireNode();
    return super.createTable(ident, schema, spec, location, props);
  }

  @Override
  public Table createTable(
      TableIdentifier ident, Schema schema, PartitionSpec spec, Map<String, String> props) {
    requireNode();
    return super.createTable(ident, schema, spec, props);
  }

  @Override
  public Table createTable(TableIdentifier ident, Schema schema, PartitionSpec spec) {
    requireNode();
    return super.createTable(ident, schema, spec);
  }

  @Override
  public Table createTable(TableIdentifier ident, Schema schema) {
    requireNode();
    return super.createTable(ident, schema);
  }

  @Override
  public Transaction newCreateTableTransaction(
      TableIdentifier ident,
      Schema schema,
      PartitionSpec spec,
      String location,
      Map<String, String> props) {
    requireNode();
    return super.newCreateTableTransaction(ident, schema, spec, location, props);
  }

  @Override
  public Transaction newCreateTableTransaction(
      TableIdentifier ident, Schema schema, PartitionSpec spec, Map<String, String> props) {
    requireNode();
    return super.newCreateTableTransaction(ident, schema, spec, props);
  }

  @Override
  public Transaction newCreateTableTransaction(
      TableIdentifier ident, Schema schema, PartitionSpec spec) {
    requireNode();
    return super.newCreateTableTransaction(ident, schema, spec);
  }

  @Override
  public Transaction newCreateTableTransaction(TableIdentifier ident, Schema schema) {
    requireNode();
    return super.newCreateTableTransaction(ident, schema);
  }

  @Override
  public Transaction newReplaceTableTransaction(
      TableIdentifier ident,
      Schema schema,
      PartitionSpec spec,
      String location,
      Map<String, String> props,
      boolean orCreate) {
    requireNode();
    return super.newReplaceTableTransaction(ident, schema, spec, location, props, orCreate);
  }

  @Override
  public Transaction newReplaceTableTransaction(
      TableIdentifier ident,
      Schema schema,
      PartitionSpec spec,
      Map<String, String> props,
      boolean orCreate) {
    requireNode();
    return super.newReplaceTableTransaction(ident, schema, spec, props, orCreate);
  }

  @Override
  public Transaction newReplaceTableTransaction(
      TableIdentifier ident, Schema schema, PartitionSpec spec, boolean orCreate) {
    requireNode();
    return super.newReplaceTableTransaction(ident, schema, spec, orCreate);
  }

  @Override
  public Transaction newReplaceTableTransaction(
      TableIdentifier ident, Schema schema, boolean orCreate) {
    requireNode();
    return super.newReplaceTableTransaction(ident, schema, orCreate);
  }

  @Override
  public boolean dropTable(TableIdentifier ident) {
    requireNode();
    return super.dropTable(ident);
  }

  @Override
  public boolean dropTable(TableIdentifier ident, boolean purge) {
    requireNode();
    return super.dropTable(ident, purge);
  }

  @Override
  public void renameTable(TableIdentifier from, TableIdentifier to) {
    requireNode();
    super.renameTable(from, to);
  }

  @Override
  public Table registerTable(TableIdentifier ident, String metadataFileLocation) {
    requireNode();
    return super.registerTable(ident, metadataFileLocation);
  }

  @Override
  public void createNamespace(Namespace ns, Map<String, String> props) {
    requireNode();
    super.createNamespace(ns, props);
  }

  @Override
  public boolean dropNamespace(Namespace ns) {
    requireNode();
    return super.dropNamespace(ns);
  }

  @Override
  public boolean setProperties(Namespace ns, Map<String, String> props) {
    requireNode();
    return super.setProperties(ns, props);
  }

  @Override
  public boolean removeProperties(Namespace ns, Set<String> props) {
    requireNode();
    return super.removeProperties(ns, props);
  }

  @Override
  public void commitTransaction(List<TableCommit> commits) {
    requireNode();
    super.commitTransaction(commits);
  }

  @Override
  public void commitTransaction(TableCommit... commits) {
    requireNode();
    super.commitTransaction(commits);
  }

  @Override
  public ViewBuilder buildView(TableIdentifier ident) {
    requireNode();
    return super.buildView(ident);
  }

  @Override
  public boolean dropView(TableIdentifier ident) {
    requireNode();
    return super.dropView(ident);
  }

  @Override
  public void renameView(TableIdentifier from, TableIdentifier to) {
    requireNode();
    super.renameView(from, to);
  }

  @Override
  public void close() throws IOException {
    try {
      if (connected) {
        super.close();
      }
    } finally {
      scanIOs.values().forEach(FileIO::close);
      scanIOs.clear();
      synchronized (this) {
        if (warehouseIO != null) {
          warehouseIO.close();
          warehouseIO = null;
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // The node's availability.

  /**
   * True when RESTCatalog is initialized. Otherwise starts (at most one at a time, and not
   * within the retry interval of a failure) an initialization and waits for it at most the
   * planning timeout. An attempt given up on keeps running and may still connect the catalog.
   */
  private boolean connect() {
    if (connected) {
      return true;
    }
    Future<Void> attempt;
    synchronized (this) {
      if (connecting == null || (connecting.isDone() && nodeMayAnswer())) {
        connecting =
            NodeCalls.submit(
                () -> {
                  try {
                    super.initialize(catalogName, restProps);
                  } catch (RuntimeException e) {
                    if (NodeCalls.isUnavailable(e)) {
                      nodeFailed(e);
                    }
                    throw e;
                  }
                  nodeProps = super.properties();
                  connected = true;
                  return null;
                });
      }
      attempt = connecting;
    }
    try {
      attempt.get(zombi.planningTimeoutMs, TimeUnit.MILLISECONDS);
      nodeAnswered();
      return connected;
    } catch (TimeoutException e) {
      nodeFailed(new NodeUnavailableException("no catalog configuration within the timeout", e));
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (!NodeCalls.isUnavailable(cause)) {
        // An answer, e.g. 401 for a wrong token: a configuration error to report.
        if (cause instanceof RuntimeException) {
          throw (RuntimeException) cause;
        }
        throw new IllegalStateException(cause);
      }
      return false;
    }
  }

  /** False within the retry interval after the node last failed to answer. */
  private boolean nodeMayAnswer() {
    long failed = lastFailureNanos;
    return failed == 0
        || System.nanoTime() - failed >= TimeUnit.MILLISECONDS.toNanos(zombi.nodeRetryIntervalMs);
  }

  private void nodeAnswered() {
    lastFailureNanos = 0;
  }

  private void nodeFailed(Throwable e) {
    long now = System.nanoTime();
    lastFailureNanos = now == 0 ? 1 : now;
    LOG.warn(
        "zombi catalog {}: node {} did not answer: {}", catalogName, zombi.uri, NodeCalls.describe(e));
  }

  /** The failure and its root cause in one line ("… request: Connection refused"). */
  private void requireNode() {
    if (!connect()) {
      throw new NodeUnavailableException(
          "zombi catalog " + catalogName + ": node " + zombi.uri + " unreachable");
    }
  }

  private interface NodeCall<T> {
    T call();
  }

  private interface WarehouseCall<T> {
    T call(Warehouse warehouse);
  }

  /** {@code node} bounded by the planning timeout, or {@code offline} when the node is away. */
  private <T> T orWarehouse(NodeCall<T> node, WarehouseCall<T> offline, String what) {
    if (nodeMayAnswer() && connect()) {
      try {
        T result = NodeCalls.bounded(node::call, zombi.planningTimeoutMs, what);
        nodeAnswered();
        return result;
      } catch (RuntimeException e) {
        if (!NodeCalls.isUnavailable(e)) {
          throw e;
        }
        nodeFailed(e);
      }
    }
    return offline.call(warehouse());
  }

  // ---------------------------------------------------------------------------------------
  // Tables and FileIOs.

  private Table wrap(TableIdentifier ident, Table table) {
    // Metadata tables (t.snapshots, …) and anything unexpected pass through as loaded.
    if (table.getClass() != BaseTable.class) {
      return table;
    }
    BaseTable base = (BaseTable) table;
    return new ZombiTable(
        base.operations(),
        base.name(),
        detached(base.reporter()),
        ident.name(),
        hot,
        scanIO(base.operations().io()));
  }

  /** Scan reports go to the node off the planning thread: a hung node must not stall a query. */
  private static MetricsReporter detached(MetricsReporter reporter) {
    return report ->
        NodeCalls.submit(
            () -> {
              reporter.report(report);
              return null;
            });
  }

  /**
   * The table's FileIO rebuilt without the catalog's credentials: it travels to executors with
   * the table, and only the hot token (in {@link HotFileIO}) should travel with it. Storage
   * settings and vended storage credentials stay.
   */
  private FileIO scanIO(FileIO io) {
    Map<String, String> props;
    try {
      props = io.properties();
    } catch (UnsupportedOperationException e) {
      return io;
    }
    Map<String, String> clean = withoutSecrets(props);
    if (clean.size() == props.size()) {
      return io;
    }
    List<StorageCredential> credentials =
        io instanceof SupportsStorageCredentials
            ? ((SupportsStorageCredentials) io).credentials()
            : List.of();
    List<Object> key = Arrays.asList(io.getClass().getName(), new TreeMap<>(clean), credentials);
    return scanIOs.computeIfAbsent(
        key,
        k -> {
          FileIO rebuilt = CatalogUtil.loadFileIO(io.getClass().getName(), clean, hadoopConf);
          if (!credentials.isEmpty() && rebuilt instanceof SupportsStorageCredentials) {
            ((SupportsStorageCredentials) rebuilt).setCredentials(credentials);
          }
          return rebuilt;
        });
  }

  static Map<String, String> withoutSecrets(Map<String, String> props) {
    Map<String, String> out = new HashMap<>();
    props.forEach(
        (key, value) -> {
          if (!SECRET_KEYS.contains(key) && SECRET_PREFIXES.stream().noneMatch(key::startsWith)) {
            out.put(key, value);
          }
        });
    return out;
  }

  /**
   * The warehouse for reads without the node: the one the node reported ({@code
   * zombi.warehouse}, else its {@code warehouse} default) while it answered, else the {@code
   * warehouse} catalog property.
   */
  private synchronized Warehouse warehouse() {
    Map<String, String> known = nodeProps != null ? nodeProps : userProps;
    String location = known.get(ZombiProperties.NODE_WAREHOUSE);
    if (location == null) {
      location = known.get(CatalogProperties.WAREHOUSE_LOCATION);
    }
    if (location == null) {
      location = userProps.get(CatalogProperties.WAREHOUSE_LOCATION);
    }
    if (location == null || location.isEmpty()) {
      throw new NodeUnavailableException(
          "zombi catalog "
              + catalogName
              + ": node "
              + zombi.uri
              + " unreachable and no warehouse known; set the catalog property 'warehouse'");
    }
    if (warehouseIO == null) {
      Map<String, String> ioProps = withoutSecrets(known);
      String impl =
          ioProps.getOrDefault(CatalogProperties.FILE_IO_IMPL, ResolvingFileIO.class.getName());
      warehouseIO = CatalogUtil.loadFileIO(impl, ioProps, hadoopConf);
    }
    return new Warehouse(catalogName, location, warehouseIO, hadoopConf);
  }
}
