package dev.zombi.trino;

import java.util.HashMap;
import java.util.Map;

/**
 * The connector's own properties ({@code zombi.*}); every other property of the catalog goes to
 * Trino's Iceberg connector as is. The node is the REST catalog, so its URL is {@code
 * iceberg.rest-catalog.uri}; the hot token defaults to the catalog's OAuth2 token.
 */
final class ZombiConfig {
  static final String PREFIX = "zombi.";

  final String nodeUri;
  final String hotToken;
  final boolean hotEnabled;
  final long planningTimeoutMs;
  final long hotReadTimeoutMs;
  final String warehouse;
  final long nodeRetryIntervalMs;
  final Map<String, String> iceberg;

  private ZombiConfig(Map<String, String> config) {
    Map<String, String> ours = new HashMap<>();
    Map<String, String> rest = new HashMap<>();
    config.forEach((k, v) -> (k.startsWith(PREFIX) ? ours : rest).put(k, v));
    String type = rest.getOrDefault("iceberg.catalog.type", "rest");
    if (!type.equalsIgnoreCase("rest")) {
      throw new IllegalArgumentException(
          "zombi connector: iceberg.catalog.type must be 'rest' (the Zombi node's catalog), not '"
              + type
              + "'");
    }
    rest.put("iceberg.catalog.type", "rest");
    String uri = rest.get("iceberg.rest-catalog.uri");
    if (uri == null || uri.isBlank()) {
      throw new IllegalArgumentException(
          "zombi connector: set iceberg.rest-catalog.uri to the node's URL, e.g. http://zombi-node:8090");
    }
    this.nodeUri = uri.replaceAll("/+$", "");
    String token = ours.remove("zombi.hot-token");
    if (token == null) {
      token = rest.get("iceberg.rest-catalog.oauth2.token");
    }
    this.hotToken = token;
    this.hotEnabled = Boolean.parseBoolean(ours.getOrDefault("zombi.hot-enabled", "true").trim());
    ours.remove("zombi.hot-enabled");
    this.planningTimeoutMs = millis(ours, "zombi.planning-timeout-ms", 5_000);
    this.hotReadTimeoutMs = millis(ours, "zombi.hot-read-timeout-ms", 120_000);
    this.nodeRetryIntervalMs = millis(ours, "zombi.node-retry-interval-ms", 10_000);
    String warehouse = ours.remove("zombi.warehouse");
    this.warehouse = warehouse == null ? null : warehouse.replaceAll("/+$", "");
    if (!ours.isEmpty()) {
      throw new IllegalArgumentException(
          "zombi connector: unknown properties "
              + ours.keySet()
              + " (known: zombi.hot-token, zombi.hot-enabled, zombi.planning-timeout-ms,"
              + " zombi.hot-read-timeout-ms, zombi.node-retry-interval-ms, zombi.warehouse)");
    }
    this.iceberg = Map.copyOf(rest);
  }

  static ZombiConfig parse(Map<String, String> config) {
    return new ZombiConfig(config);
  }

  private static long millis(Map<String, String> ours, String key, long dflt) {
    String value = ours.remove(key);
    if (value == null) {
      return dflt;
    }
    try {
      long ms = Long.parseLong(value.trim());
      if (ms <= 0) {
        throw new NumberFormatException();
      }
      return ms;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "zombi connector: " + key + " must be a positive number of milliseconds, not '" + value + "'");
    }
  }
}
