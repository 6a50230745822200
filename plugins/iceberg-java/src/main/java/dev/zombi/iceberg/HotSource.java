package dev.zombi.iceberg;

import dev.zombi.hot.HotHttp;
import dev.zombi.hot.HotSegment;
import dev.zombi.hot.NodeUnavailableException;
import dev.zombi.hot.WatermarkTooOldException;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.iceberg.io.FileIO;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's hot segments as a catalog sees them: the listing for a snapshot's watermarks,
 * memoized so that every scan of one (table, snapshot) in a query (a self-join, Spark's
 * aggregate push-down attempt and the scan after it) plans the same hot set, while the next
 * query lists again and sees every event acknowledged before it. In a Spark driver the memo is
 * per query (Spark's SQL execution id, see {@link SparkQueries}); elsewhere it lasts {@code
 * zombi.hot-listing-ttl-ms}. Loading the table again ends it too (see {@link #forget}).
 */
final class HotSource {
  private static final Logger LOG = LoggerFactory.getLogger(HotSource.class);

  private final ZombiProperties props;
  private final HotHttp planningHttp;
  private final HotHttp readHttp;
  private final Map<String, Listing> listings = new ConcurrentHashMap<>();

  /** How long a listing memoized for one Spark query is kept (planning takes far less). */
  private static final long QUERY_MEMO_NANOS = TimeUnit.SECONDS.toNanos(60);

  /** When a listing last failed for want of an answer; 0 after a success. */
  private volatile long failedAtNanos;

  HotSource(ZombiProperties props) {
    this.props = props;
    this.planningHttp =
        new HotHttp(props.hotUri, props.hotToken, props.planningTimeoutMs, props.planningTimeoutMs);
    this.readHttp =
        new HotHttp(props.hotUri, props.hotToken, props.planningTimeoutMs, props.hotReadTimeoutMs);
  }

  boolean enabled() {
    return props.hotEnabled;
  }

  long planningTimeoutMs() {
    return props.planningTimeoutMs;
  }

  long maxTableAgeNanos() {
    return TimeUnit.MILLISECONDS.toNanos(props.maxTableAgeMs);
  }

  /** The table's FileIO for scans: hot files from the node, the rest from {@code delegate}. */
  FileIO io(FileIO delegate) {
    return new HotFileIO(delegate, readHttp);
  }

  /**
   * The hot segments above {@code watermarks} of {@code table} on the node.
   *
   * @throws WatermarkTooOldException when the node answers 410 (reload and plan again)
   * @throws NodeUnavailableException when the node does not answer in time or fails
   */
  List<HotSegment> segments(String table, String watermarks) {
    // In a Spark driver the memo is scoped to the query being planned; elsewhere, to a time.
    String execution = SparkQueries.currentExecutionId();
    String key = table + "?" + watermarks + (execution == null ? "" : "#" + execution);
    long ttl = ttlNanos();
    if (execution != null && ttl > 0) {
      ttl = Math.max(ttl, QUERY_MEMO_NANOS);
    }
    long now = System.nanoTime();
    listings.values().removeIf(l -> now - l.expiresAtNanos >= 0);
    Listing cached = listings.get(key);
    if (cached != null) {
      return cached.segments;
    }
    long failed = failedAtNanos;
    if (failed != 0 && now - failed < TimeUnit.MILLISECONDS.toNanos(props.nodeRetryIntervalMs)) {
      throw new NodeUnavailableException(
          "not asked: the node failed a listing "
              + TimeUnit.NANOSECONDS.toMillis(now - failed)
              + " ms ago (retried after "
              + ZombiProperties.NODE_RETRY_INTERVAL_MS
              + ")");
    }
    long started = System.nanoTime();
    byte[] body;
    try {
      body = planningHttp.listSegments(table, watermarks, props.planningTimeoutMs);
    } catch (NodeUnavailableException e) {
      // Every scan of the query (and of the next ones, for a while) reads cold at once instead
      // of waiting for the node again.
      long at = System.nanoTime();
      failedAtNanos = at == 0 ? 1 : at;
      throw e;
    }
    failedAtNanos = 0;
    List<HotSegment> segments = HotSegment.parseListing(body);
    LOG.debug(
        "hot segments of {} above [{}] for {}: {} in {} ms",
        table,
        watermarks,
        execution == null ? "a scan" : "Spark execution " + execution,
        segments.size(),
        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
    if (ttl > 0) {
      listings.put(key, new Listing(started + ttl, segments));
    }
    return segments;
  }

  /**
   * Drops the table's memoized listings. Called when the table is loaded: a query loads its
   * tables before it plans any scan, so the scans of one query share a listing while a later
   * query lists again and sees every event acknowledged before it started.
   */
  void forget(String table) {
    String prefix = table + "?";
    listings.keySet().removeIf(key -> key.startsWith(prefix));
  }

  private long ttlNanos() {
    return TimeUnit.MILLISECONDS.toNanos(props.hotListingTtlMs);
  }

  private static final class Listing {
    final long expiresAtNanos;
    final List<HotSegment> segments;

    Listing(long expiresAtNanos, List<HotSegment> segments) {
      this.expiresAtNanos = expiresAtNanos;
      this.segments = Objects.requireNonNull(segments);
    }
  }
}
