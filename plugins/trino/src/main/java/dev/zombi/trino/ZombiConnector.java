package dev.zombi.trino;

import io.trino.plugin.iceberg.IcebergTableHandle;
import io.trino.spi.connector.Connector;
import io.trino.spi.connector.ConnectorMetadata;
import io.trino.spi.connector.ConnectorTransactionHandle;
import io.trino.spi.connector.SchemaTableName;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.Optional;

/**
 * Trino's Iceberg connector with two changes: its split manager adds the hot segments above the
 * scanned snapshot ({@link ZombiSplitManager}), and its metadata notes which scans are pinned to
 * a version (time travel reads committed data only). Everything else is the Iceberg connector's.
 */
final class ZombiConnector {
  private ZombiConnector() {}

  static Connector wrap(Connector iceberg, ZombiSplitManager splits, Pins pins) {
    return proxy(
        Connector.class,
        iceberg,
        (method, args) -> {
          switch (method.getName()) {
            case "getSplitManager":
              return splits;
            case "getMetadata":
              return metadata(
                  (ConnectorMetadata) call(iceberg, method, args),
                  (ConnectorTransactionHandle) args[1],
                  pins);
            case "commit":
            case "rollback":
              try {
                return call(iceberg, method, args);
              } finally {
                pins.end((ConnectorTransactionHandle) args[0]);
              }
            default:
              return call(iceberg, method, args);
          }
        });
  }

  private static ConnectorMetadata metadata(
      ConnectorMetadata metadata, ConnectorTransactionHandle transaction, Pins pins) {
    return proxy(
        ConnectorMetadata.class,
        metadata,
        (method, args) -> {
          Object result = call(metadata, method, args);
          if (method.getName().equals("getTableHandle")
              && args != null
              && args.length == 4
              && args[3] instanceof Optional
              && ((Optional<?>) args[3]).isPresent()
              && result instanceof IcebergTableHandle) {
            IcebergTableHandle table = (IcebergTableHandle) result;
            table
                .getSnapshotId()
                .ifPresent(id -> pins.pin(transaction, (SchemaTableName) args[1], id));
          }
          return result;
        });
  }

  private interface Handler {
    Object handle(Method method, Object[] args) throws Throwable;
  }

  private static <T> T proxy(Class<T> type, T delegate, Handler handler) {
    InvocationHandler invocation =
        (proxy, method, args) -> {
          if (method.getDeclaringClass() == Object.class) {
            switch (method.getName()) {
              case "equals":
                return proxy == args[0];
              case "hashCode":
                return System.identityHashCode(proxy);
              case "toString":
                return "zombi(" + delegate + ")";
              default:
                return call(delegate, method, args);
            }
          }
          return handler.handle(method, args);
        };
    return type.cast(
        Proxy.newProxyInstance(ZombiConnector.class.getClassLoader(), new Class<?>[] {type}, invocation));
  }

  private static Object call(Object target, Method method, Object[] args) throws Throwable {
    try {
      return method.invoke(target, args);
    } catch (InvocationTargetException e) {
      throw e.getCause();
    }
  }
}
