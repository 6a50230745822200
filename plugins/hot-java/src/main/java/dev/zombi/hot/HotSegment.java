package dev.zombi.hot;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.DataFiles;
import org.apache.iceberg.FileFormat;
import org.apache.iceberg.Metrics;
import org.apache.iceberg.PartitionField;
import org.apache.iceberg.PartitionSpec;
import org.apache.iceberg.Schema;
import org.apache.iceberg.StructLike;
import org.apache.iceberg.transforms.Transform;
import org.apache.iceberg.types.Conversions;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.Types;

/**
 * One entry of the node's hot-segment listing (docs/realtime.md): a pinned sequence range of one
 * partition, the rows of one partition value of one of the table's partition specs, and everything
 * an Iceberg data file carries about it.
 */
public final class HotSegment {
  /** Location scheme of hot files; each engine plugin reads them from the node. */
  public static final String SCHEME = "zombi-hot://";

  /**
   * Spark and Trino both bring an unshaded Jackson; Iceberg's own (shaded in Spark's runtime jar)
   * is not shared between the engines.
   */
  private static final ObjectMapper MAPPER = new ObjectMapper();

  /** Each segment file is one row group starting right after the "PAR1" magic. */
  private static final List<Long> SPLIT_OFFSETS = Collections.singletonList(4L);

  public final String path;
  public final long partition;
  public final long fromSequence;
  public final long toSequence;
  /** The partition spec of {@link #partitionValues}. */
  public final int specId;
  /** One JSON value per spec field, as a manifest stores it (docs/realtime.md). */
  final JsonNode partitionValues;
  public final long recordCount;
  public final long fileSizeInBytes;
  final Map<Integer, Long> valueCounts;
  final Map<Integer, Long> nullValueCounts;
  final Map<Integer, Long> lowerBounds;
  final Map<Integer, Long> upperBounds;

  private HotSegment(JsonNode node) {
    this.path = textField(node, "path");
    this.partition = longField(node, "partition");
    this.fromSequence = longField(node, "from_sequence");
    this.toSequence = longField(node, "to_sequence");
    this.specId = intField(node, "spec_id");
    this.partitionValues = field(node, "partition_values");
    if (!partitionValues.isArray()) {
      throw new IllegalArgumentException(
          "hot segment 'partition_values' is not an array: " + partitionValues);
    }
    this.recordCount = longField(node, "record_count");
    this.fileSizeInBytes = longField(node, "file_size_in_bytes");
    this.valueCounts = idMap("value_counts", node);
    this.nullValueCounts = idMap("null_value_counts", node);
    this.lowerBounds = idMap("lower_bounds", node);
    this.upperBounds = idMap("upper_bounds", node);
    if (!path.startsWith("/")) {
      throw new IllegalArgumentException("hot segment path must start with '/': " + path);
    }
  }

  /** Parses the {@code segments} array of a listing body. */
  public static List<HotSegment> parseListing(byte[] body) {
    JsonNode root;
    try {
      root = MAPPER.readTree(body);
    } catch (IOException e) {
      throw new UncheckedIOException("hot segment listing is not JSON", e);
    }
    JsonNode segments = root == null ? null : root.get("segments");
    if (segments == null || !segments.isArray()) {
      throw new IllegalArgumentException("hot segment listing has no 'segments' array");
    }
    List<HotSegment> out = new ArrayList<>(segments.size());
    for (JsonNode segment : segments) {
      out.add(new HotSegment(segment));
    }
    return out;
  }

  private static JsonNode field(JsonNode node, String property) {
    JsonNode value = node.get(property);
    if (value == null || value.isNull()) {
      throw new IllegalArgumentException("hot segment has no '" + property + "'");
    }
    return value;
  }

  private static String textField(JsonNode node, String property) {
    JsonNode value = field(node, property);
    if (!value.isTextual()) {
      throw new IllegalArgumentException("hot segment '" + property + "' is not a string: " + value);
    }
    return value.asText();
  }

  private static long longField(JsonNode node, String property) {
    JsonNode value = field(node, property);
    if (!value.canConvertToLong()) {
      throw new IllegalArgumentException("hot segment '" + property + "' is not an integer: " + value);
    }
    return value.asLong();
  }

  private static int intField(JsonNode node, String property) {
    JsonNode value = field(node, property);
    if (!value.canConvertToInt()) {
      throw new IllegalArgumentException("hot segment '" + property + "' is not an int: " + value);
    }
    return value.asInt();
  }

  private static Map<Integer, Long> idMap(String property, JsonNode node) {
    JsonNode map = node.get(property);
    if (map == null || map.isNull()) {
      return Collections.emptyMap();
    }
    Map<Integer, Long> out = new HashMap<>();
    for (Map.Entry<String, JsonNode> e : map.properties()) {
      if (!e.getValue().canConvertToLong()) {
        throw new IllegalArgumentException(
            "hot segment " + property + "[" + e.getKey() + "] is not an integer: " + e.getValue());
      }
      out.put(Integer.parseInt(e.getKey()), e.getValue().asLong());
    }
    return out;
  }

  public String location() {
    return SCHEME + path;
  }

  /**
   * The segment's partition tuple in {@code spec}, the spec the listing names ({@link #specId}),
   * its values converted to the Java types Iceberg keeps partition values in.
   */
  public StructLike partitionIn(PartitionSpec spec, Schema schema) {
    List<PartitionField> fields = spec.fields();
    if (spec.specId() != specId || partitionValues.size() != fields.size()) {
      throw new IllegalArgumentException(
          "hot segment " + path + " has " + partitionValues.size() + " values of spec " + specId
              + ", not a tuple of spec " + spec.specId() + " (" + fields.size() + " fields)");
    }
    Object[] values = new Object[fields.size()];
    for (int i = 0; i < values.length; i++) {
      PartitionField field = fields.get(i);
      Type source = schema.findType(field.sourceId());
      if (source == null) {
        throw new IllegalArgumentException(
            "partition field " + field.name() + " has no source column in the schema");
      }
      values[i] = partitionValue(field.name(), field.transform().getResultType(source), partitionValues.get(i));
    }
    return new Tuple(values);
  }

  private Object partitionValue(String name, Type type, JsonNode value) {
    if (value == null || value.isNull()) {
      return null;
    }
    switch (type.typeId()) {
      case BOOLEAN:
        if (value.isBoolean()) {
          return value.asBoolean();
        }
        break;
      case INTEGER:
      case DATE:
        if (value.canConvertToInt()) {
          return value.asInt();
        }
        break;
      case LONG:
      case TIME:
      case TIMESTAMP:
        if (value.canConvertToLong()) {
          return value.asLong();
        }
        break;
      case STRING:
        if (value.isTextual()) {
          return value.asText();
        }
        break;
      case DECIMAL:
        if (value.isTextual()) {
          return new java.math.BigDecimal(value.asText());
        }
        break;
      default:
        break;
    }
    throw new IllegalArgumentException(
        "hot segment " + path + ": partition value " + value + " of " + name + " is not a " + type);
  }

  /** The segment as a data file of {@code spec}, with exact counts and bounds. */
  public DataFile toDataFile(PartitionSpec spec, Schema schema, StructLike partitionTuple) {
    Metrics metrics =
        new Metrics(
            recordCount,
            null,
            known(valueCounts, schema),
            known(nullValueCounts, schema),
            null,
            bounds(lowerBounds, schema),
            bounds(upperBounds, schema));
    DataFiles.Builder builder =
        DataFiles.builder(spec)
            .withPath(location())
            .withFormat(FileFormat.PARQUET)
            .withFileSizeInBytes(fileSizeInBytes)
            .withMetrics(metrics)
            .withSplitOffsets(SPLIT_OFFSETS);
    if (spec.isPartitioned()) {
      builder.withPartition(partitionTuple);
    }
    return builder.build();
  }

  private static Map<Integer, Long> known(Map<Integer, Long> counts, Schema schema) {
    Map<Integer, Long> out = new HashMap<>();
    counts.forEach(
        (id, n) -> {
          if (schema.findField(id) != null) {
            out.put(id, n);
          }
        });
    return out;
  }

  /**
   * Bounds arrive as JSON integers in Iceberg's representation (date: days, timestamptz:
   * microseconds); only columns whose type takes such a value get one. A column without bounds
   * is never pruned on, which is always correct.
   */
  private static Map<Integer, ByteBuffer> bounds(Map<Integer, Long> bounds, Schema schema) {
    Map<Integer, ByteBuffer> out = new HashMap<>();
    bounds.forEach(
        (id, value) -> {
          Type type = schema.findType(id);
          if (type == null) {
            return;
          }
          switch (type.typeId()) {
            case INTEGER:
            case DATE:
              if (value >= Integer.MIN_VALUE && value <= Integer.MAX_VALUE) {
                out.put(id, Conversions.toByteBuffer(type, value.intValue()));
              }
              break;
            case LONG:
            case TIMESTAMP:
              out.put(id, Conversions.toByteBuffer(type, value));
              break;
            default:
              break;
          }
        });
    return out;
  }

  @Override
  public String toString() {
    return path + " (" + recordCount + " rows)";
  }

  /** A partition tuple; {@link DataFiles.Builder#withPartition} copies it. */
  private static final class Tuple implements StructLike {
    private final Object[] values;

    Tuple(Object[] values) {
      this.values = values;
    }

    @Override
    public int size() {
      return values.length;
    }

    @Override
    public <T> T get(int pos, Class<T> javaClass) {
      return javaClass.cast(values[pos]);
    }

    @Override
    public <T> void set(int pos, T value) {
      throw new UnsupportedOperationException("hot partition tuples are read-only");
    }
  }
}
