package dev.zombi.iceberg;

import java.util.Map;
import org.apache.iceberg.CatalogProperties;
import org.apache.iceberg.util.PropertyUtil;

/**
 * The catalog properties this plugin reads on top of the standard RESTCatalog ones, with their
 * defaults. Parsed once, in {@link ZombiCatalog#initialize}.
 */
final class ZombiProperties {
  /** Bearer token for the hot-segment API; defaults to the catalog {@code token}. */
  static final String HOT_TOKEN = "hot-token";

  /** Base URL of the node's hot-segment API; defaults to the catalog {@code uri}. */
  static final String HOT_URI = "zombi.hot-uri";

  /** Bounds every call to the node while a query is planned (connect and answer). */
  static final String PLANNING_TIMEOUT_MS = "zombi.planning-timeout-ms";

  static final long PLANNING_TIMEOUT_MS_DEFAULT = 5_000;

  /** Whether scans add the node's hot segments; false gives plain Iceberg reads. */
  static final String HOT_ENABLED = "zombi.hot-enabled";

  /** Bounds one segment download on an executor, retries on 429 included. */
  static final String HOT_READ_TIMEOUT_MS = "zombi.hot-read-timeout-ms";

  static final long HOT_READ_TIMEOUT_MS_DEFAULT = 120_000;

  /** How long one segment listing is reused for scans of the same table and snapshot. */
  static final String HOT_LISTING_TTL_MS = "zombi.hot-listing-ttl-ms";

  static final long HOT_LISTING_TTL_MS_DEFAULT = 2_000;

  /**
   * After the node failed to answer, how long catalog calls go straight to the warehouse
   * instead of waiting for the node again.
   */
  static final String NODE_RETRY_INTERVAL_MS = "zombi.node-retry-interval-ms";

  static final long NODE_RETRY_INTERVAL_MS_DEFAULT = 10_000;

  /**
   * Before a scan plans hot data, a table loaded or refreshed longer ago than this is refreshed:
   * a table kept in an engine's catalog cache must not hold an old snapshot, whose watermarks
   * would make the node keep (lease) and serve ever more hot events.
   */
  static final String MAX_TABLE_AGE_MS = "zombi.max-table-age-ms";

  static final long MAX_TABLE_AGE_MS_DEFAULT = 30_000;

  /** The warehouse the node reports in {@code GET /v1/config}. */
  static final String NODE_WAREHOUSE = "zombi.warehouse";

  final String uri;
  final String hotUri;
  final String hotToken;
  final long planningTimeoutMs;
  final boolean hotEnabled;
  final long hotReadTimeoutMs;
  final long hotListingTtlMs;
  final long nodeRetryIntervalMs;
  final long maxTableAgeMs;

  private ZombiProperties(Map<String, String> props) {
    this.uri = trimSlash(props.get(CatalogProperties.URI));
    this.hotUri = trimSlash(props.getOrDefault(HOT_URI, uri));
    this.hotToken = props.getOrDefault(HOT_TOKEN, props.get("token"));
    this.planningTimeoutMs = positive(props, PLANNING_TIMEOUT_MS, PLANNING_TIMEOUT_MS_DEFAULT);
    this.hotEnabled = PropertyUtil.propertyAsBoolean(props, HOT_ENABLED, true);
    this.hotReadTimeoutMs = positive(props, HOT_READ_TIMEOUT_MS, HOT_READ_TIMEOUT_MS_DEFAULT);
    this.hotListingTtlMs =
        PropertyUtil.propertyAsLong(props, HOT_LISTING_TTL_MS, HOT_LISTING_TTL_MS_DEFAULT);
    this.nodeRetryIntervalMs =
        PropertyUtil.propertyAsLong(props, NODE_RETRY_INTERVAL_MS, NODE_RETRY_INTERVAL_MS_DEFAULT);
    this.maxTableAgeMs = positive(props, MAX_TABLE_AGE_MS, MAX_TABLE_AGE_MS_DEFAULT);
    if (uri == null || uri.isEmpty()) {
      throw new IllegalArgumentException("zombi catalog: 'uri' (the node's URL) is required");
    }
    if (hotListingTtlMs < 0 || nodeRetryIntervalMs < 0) {
      throw new IllegalArgumentException(
          "zombi catalog: "
              + HOT_LISTING_TTL_MS
              + " and "
              + NODE_RETRY_INTERVAL_MS
              + " must not be negative");
    }
  }

  static ZombiProperties parse(Map<String, String> props) {
    return new ZombiProperties(props);
  }

  private static long positive(Map<String, String> props, String key, long defaultValue) {
    long value = PropertyUtil.propertyAsLong(props, key, defaultValue);
    if (value <= 0) {
      throw new IllegalArgumentException("zombi catalog: " + key + " must be positive: " + value);
    }
    return value;
  }

  static String trimSlash(String s) {
    if (s == null) {
      return null;
    }
    String out = s.trim();
    while (out.endsWith("/")) {
      out = out.substring(0, out.length() - 1);
    }
    return out;
  }
}
