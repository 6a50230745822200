package dev.zombi.trino;

import static com.google.inject.multibindings.MapBinder.newMapBinder;

import com.google.inject.Inject;
import com.google.inject.Module;
import com.google.inject.Scopes;
import dev.zombi.hot.HotHttp;
import io.trino.filesystem.TrinoFileSystemFactory;
import io.trino.plugin.iceberg.IcebergConnectorFactory;
import io.trino.spi.connector.Connector;
import io.trino.spi.connector.ConnectorContext;
import io.trino.spi.connector.ConnectorFactory;
import java.util.Map;
import java.util.Optional;

/**
 * {@code connector.name=zombi}: Trino's Iceberg connector on the node's REST catalog, built with
 * one more module: the {@code zombi-hot} file system and the split manager that adds hot
 * segments.
 */
public final class ZombiConnectorFactory implements ConnectorFactory {
  @Override
  public String getName() {
    return "zombi";
  }

  @Override
  public Connector create(String catalogName, Map<String, String> config, ConnectorContext context) {
    ZombiConfig zombi = ZombiConfig.parse(config);
    HotHttp planning =
        new HotHttp(zombi.nodeUri, zombi.hotToken, zombi.planningTimeoutMs, zombi.planningTimeoutMs);
    HotHttp reads =
        new HotHttp(zombi.nodeUri, zombi.hotToken, zombi.planningTimeoutMs, zombi.hotReadTimeoutMs);
    Pins pins = new Pins();
    Holder holder = new Holder();
    Module module =
        binder -> {
          newMapBinder(binder, String.class, TrinoFileSystemFactory.class)
              .addBinding(HotFileSystemFactory.SCHEME)
              .toInstance(new HotFileSystemFactory(reads));
          binder.bind(ZombiConfig.class).toInstance(zombi);
          binder.bind(HotHttp.class).toInstance(planning);
          binder.bind(Pins.class).toInstance(pins);
          binder.bind(ZombiSplitManager.class).in(Scopes.SINGLETON);
          binder.requestInjection(holder);
        };
    Connector iceberg =
        IcebergConnectorFactory.createConnector(
            catalogName, zombi.iceberg, context, module, Optional.of(new ZombiCatalogModule()));
    return ZombiConnector.wrap(iceberg, holder.splits, pins);
  }

  /** Receives the split manager Guice built beside the Iceberg connector's own. */
  static final class Holder {
    ZombiSplitManager splits;

    @Inject
    void set(ZombiSplitManager splits) {
      this.splits = splits;
    }
  }
}
