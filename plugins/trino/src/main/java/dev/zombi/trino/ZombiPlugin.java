package dev.zombi.trino;

import io.trino.spi.Plugin;
import io.trino.spi.connector.ConnectorFactory;
import java.util.List;

/** Trino plugin: the {@code zombi} connector (Iceberg tables of a Zombi node, hot rows too). */
public final class ZombiPlugin implements Plugin {
  @Override
  public Iterable<ConnectorFactory> getConnectorFactories() {
    return List.of(new ZombiConnectorFactory());
  }
}
