package dev.zombi.trino;

import com.google.inject.Binder;
import com.google.inject.Scopes;
import com.google.inject.util.Modules;
import io.airlift.configuration.ConfigurationAwareModule;
import io.airlift.configuration.ConfigurationFactory;
import io.trino.plugin.iceberg.catalog.IcebergCatalogModule;
import io.trino.plugin.iceberg.catalog.TrinoCatalogFactory;
import io.trino.plugin.iceberg.catalog.rest.TrinoIcebergRestCatalogFactory;

/**
 * Trino's Iceberg catalog module (the REST catalog) with its catalog factory replaced by {@link
 * ZombiCatalogFactory}, which reads the warehouse when the node does not answer.
 */
final class ZombiCatalogModule implements ConfigurationAwareModule {
  private final IcebergCatalogModule iceberg = new IcebergCatalogModule();

  @Override
  public void setConfigurationFactory(ConfigurationFactory configurationFactory) {
    iceberg.setConfigurationFactory(configurationFactory);
  }

  @Override
  public void configure(Binder binder) {
    binder.install(
        Modules.override(iceberg)
            .with(
                b -> {
                  b.bind(TrinoIcebergRestCatalogFactory.class).in(Scopes.SINGLETON);
                  b.bind(ZombiCatalogFactory.class).in(Scopes.SINGLETON);
                  b.bind(TrinoCatalogFactory.class).to(ZombiCatalogFactory.class);
                }));
  }
}
