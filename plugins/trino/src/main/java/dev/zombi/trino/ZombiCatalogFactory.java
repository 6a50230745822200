package dev.zombi.trino;

import static io.trino.spi.StandardErrorCode.GENERIC_USER_ERROR;

import com.google.inject.Inject;
import dev.zombi.hot.NodeCalls;
import io.airlift.log.Logger;
import io.trino.filesystem.Location;
import io.trino.filesystem.TrinoFileSystem;
import io.trino.filesystem.TrinoInputStream;
import io.trino.plugin.iceberg.IcebergFileSystemFactory;
import io.trino.plugin.iceberg.catalog.TrinoCatalog;
import io.trino.plugin.iceberg.catalog.TrinoCatalogFactory;
import io.trino.plugin.iceberg.catalog.rest.TrinoIcebergRestCatalogFactory;
import io.trino.plugin.iceberg.fileio.ForwardingFileIo;
import io.trino.spi.TrinoException;
import io.trino.spi.connector.SchemaTableName;
import io.trino.spi.security.ConnectorIdentity;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.iceberg.BaseTable;
import org.apache.iceberg.StaticTableOperations;
import org.apache.iceberg.Table;

/**
 * The node's REST catalog, each call bounded by the planning timeout; when the node does not
 * answer, a table is loaded from the warehouse instead (its {@code metadata/version-hint.text},
 * the pointer the node writes after every commit), so a query reads the committed rows without
 * an error. The table's folder is the one the catalog last gave for it, else {@code
 * zombi.warehouse}/namespace/table. After the node failed to answer, it is left alone for {@code
 * zombi.node-retry-interval-ms}: queries meanwhile read the warehouse at once.
 */
final class ZombiCatalogFactory implements TrinoCatalogFactory {
  private static final Logger LOG = Logger.get(ZombiCatalogFactory.class);

  private final TrinoIcebergRestCatalogFactory rest;
  private final IcebergFileSystemFactory fileSystems;
  private final ZombiConfig config;
  private final Map<SchemaTableName, String> locations = new ConcurrentHashMap<>();

  /** Until when the node is not asked (System.nanoTime()); 0: ask it. */
  private volatile long awayUntilNanos;

  @Inject
  ZombiCatalogFactory(
      TrinoIcebergRestCatalogFactory rest, IcebergFileSystemFactory fileSystems, ZombiConfig config) {
    this.rest = rest;
    this.fileSystems = fileSystems;
    this.config = config;
  }

  /** True while the node is left alone after it failed to answer. */
  boolean away() {
    long until = awayUntilNanos;
    return until != 0 && System.nanoTime() - until < 0;
  }

  /** The node did not answer: leave it alone for the retry interval. */
  void wentAway(String what, Throwable e) {
    awayUntilNanos = System.nanoTime() + config.nodeRetryIntervalMs * 1_000_000L;
    LOG.warn(
        "zombi: %s: the node %s did not answer, reading committed data from the warehouse for %s ms: %s",
        what, config.nodeUri, config.nodeRetryIntervalMs, NodeCalls.describe(e));
  }

  @Override
  public TrinoCatalog create(ConnectorIdentity identity) {
    TrinoCatalog catalog = null;
    if (!away()) {
      try {
        catalog = NodeCalls.bounded(() -> rest.create(identity), config.planningTimeoutMs, "catalog");
      } catch (RuntimeException e) {
        if (!NodeCalls.isUnavailable(e)) {
          throw e;
        }
        wentAway("catalog", e);
      }
    }
    TrinoCatalog node = catalog;
    Map<SchemaTableName, Table> offline = new ConcurrentHashMap<>();
    return (TrinoCatalog)
        Proxy.newProxyInstance(
            ZombiCatalogFactory.class.getClassLoader(),
            new Class<?>[] {TrinoCatalog.class},
            (proxy, method, args) -> {
              if (method.getDeclaringClass() == Object.class) {
                return method.getName().equals("equals")
                    ? proxy == args[0]
                    : method.getName().equals("hashCode")
                        ? System.identityHashCode(proxy)
                        : "zombi(" + node + ")";
              }
              return call(node, offline, identity, method, args);
            });
  }

  private Object call(
      TrinoCatalog node,
      Map<SchemaTableName, Table> offline,
      ConnectorIdentity identity,
      Method method,
      Object[] args)
      throws Throwable {
    String name = method.getName();
    boolean load = name.equals("loadTable") && args.length == 2;
    boolean lookup = name.equals("getView") || name.equals("getMaterializedView");
    if (node != null && (!(load || lookup) || !away())) {
      try {
        Object result =
            load || lookup
                ? NodeCalls.bounded(() -> invoke(node, method, args), config.planningTimeoutMs, name)
                : invoke(node, method, args);
        if (load && result instanceof Table) {
          locations.put((SchemaTableName) args[1], ((Table) result).location());
        }
        return result;
      } catch (Throwable e) {
        if (!(load || lookup) || !NodeCalls.isUnavailable(e)) {
          throw e;
        }
        wentAway(name + " " + args[1], e);
      }
    }
    if (lookup) {
      return Optional.empty();
    }
    if (load) {
      // One read of the pointer per catalog instance (a transaction): every load of the table
      // in one query sees the same snapshot.
      return offline.computeIfAbsent(
          (SchemaTableName) args[1], table -> fromWarehouse(identity, table));
    }
    throw new TrinoException(
        GENERIC_USER_ERROR,
        "zombi: the node " + config.nodeUri + " does not answer; only reads of named tables work without it");
  }

  private static Object invoke(Object target, Method method, Object[] args) throws Exception {
    try {
      return method.invoke(target, args);
    } catch (InvocationTargetException e) {
      Throwable cause = e.getCause();
      if (cause instanceof Exception) {
        throw (Exception) cause;
      }
      throw (Error) cause;
    }
  }

  private Table fromWarehouse(ConnectorIdentity identity, SchemaTableName table) {
    String location = locations.get(table);
    if (location == null && config.warehouse != null) {
      location = config.warehouse + "/" + table.getSchemaName() + "/" + table.getTableName();
    }
    if (location == null) {
      throw new TrinoException(
          GENERIC_USER_ERROR,
          "zombi: the node " + config.nodeUri + " does not answer and " + table
              + " was not loaded before: set zombi.warehouse to read committed data without the node");
    }
    TrinoFileSystem fs = fileSystems.create(identity, Map.of());
    String hint;
    Location hintFile = Location.of(location + "/metadata/version-hint.text");
    try (TrinoInputStream in = fs.newInputFile(hintFile).newStream()) {
      hint = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
    } catch (IOException e) {
      throw new TrinoException(
          GENERIC_USER_ERROR, "zombi: the node does not answer and " + hintFile + " cannot be read: " + e.getMessage(), e);
    }
    String metadata = location + "/metadata/v" + hint + ".metadata.json";
    LOG.info("zombi: %s: reading committed data from %s", table, metadata);
    return new BaseTable(
        new StaticTableOperations(metadata, new ForwardingFileIo(fs)),
        "\"" + table.getSchemaName() + "\".\"" + table.getTableName() + "\"");
  }
}
