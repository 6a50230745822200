package dev.zombi.hot;

import java.util.Map;
import java.util.TreeMap;
import org.apache.iceberg.Snapshot;

/** The watermark map every snapshot Zombi commits carries in its summary (SPEC §4). */
public final class Watermarks {
  /** Snapshot summary key prefix of the watermark map. */
  public static final String PREFIX = "zombi.watermark.";

  private Watermarks() {}

  /**
   * The {@code watermarks} query value of a snapshot: {@code partition:next_sequence} pairs, or
   * "" for no snapshot (everything is hot). Null when the snapshot carries no watermark map: it
   * was not committed by Zombi, and reading hot events on top of it could duplicate rows.
   *
   * @throws NumberFormatException when a watermark key or value is not a number
   */
  public static String of(Snapshot snapshot) {
    if (snapshot == null) {
      return "";
    }
    Map<Long, String> byPartition = new TreeMap<>();
    Map<String, String> summary = snapshot.summary();
    if (summary != null) {
      summary.forEach(
          (key, value) -> {
            if (key.startsWith(PREFIX)) {
              long partition = Long.parseLong(key.substring(PREFIX.length()));
              byPartition.put(partition, partition + ":" + Long.parseLong(value.trim()));
            }
          });
    }
    return byPartition.isEmpty() ? null : String.join(",", byPartition.values());
  }
}
