package dev.zombi.iceberg;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.iceberg.BaseTable;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.MetadataTableType;
import org.apache.iceberg.MetadataTableUtils;
import org.apache.iceberg.StaticTableOperations;
import org.apache.iceberg.Table;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.exceptions.NoSuchNamespaceException;
import org.apache.iceberg.exceptions.NoSuchTableException;
import org.apache.iceberg.exceptions.NotFoundException;
import org.apache.iceberg.io.FileIO;
import org.apache.iceberg.io.InputFile;

/**
 * Committed data straight from the warehouse, for when the node (which is also the catalog)
 * cannot answer: each table folder {@code <warehouse>/<namespace>/<table>} keeps {@code
 * metadata/version-hint.text} holding N, and the current metadata is {@code v<N>.metadata.json}
 * beside it (docs/realtime.md). Tables loaded this way are read-only.
 */
final class Warehouse {
  private static final String HINT = "metadata/version-hint.text";

  private final String catalogName;
  private final String location;
  private final FileIO io;
  private final Object hadoopConf;

  Warehouse(String catalogName, String location, FileIO io, Object hadoopConf) {
    this.catalogName = catalogName;
    this.location = ZombiProperties.trimSlash(location);
    this.io = io;
    this.hadoopConf = hadoopConf;
  }

  String location() {
    return location;
  }

  /** The table's current committed state, or a metadata table of it ({@code t.snapshots}). */
  Table load(TableIdentifier ident) {
    String metadata = metadataLocation(ident);
    if (metadata != null) {
      return new BaseTable(new StaticTableOperations(metadata, io), fullName(ident));
    }
    MetadataTableType type = MetadataTableType.from(ident.name());
    if (type != null && !ident.namespace().isEmpty()) {
      TableIdentifier baseIdent = TableIdentifier.of(ident.namespace().levels());
      String baseMetadata = metadataLocation(baseIdent);
      if (baseMetadata != null) {
        Table base =
            new BaseTable(new StaticTableOperations(baseMetadata, io), fullName(baseIdent));
        return MetadataTableUtils.createMetadataTableInstance(base, type);
      }
    }
    throw new NoSuchTableException(
        "Table does not exist: %s (no %s under %s)", ident, HINT, tableFolder(ident));
  }

  boolean exists(TableIdentifier ident) {
    return metadataLocation(ident) != null;
  }

  /** The metadata file the table's version hint names, or null when there is no hint. */
  String metadataLocation(TableIdentifier ident) {
    String folder = tableFolder(ident);
    InputFile hint = io.newInputFile(folder + "/" + HINT);
    String text;
    try (InputStream in = hint.newStream()) {
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
    } catch (NotFoundException e) {
      return null;
    } catch (IOException e) {
      throw new UncheckedIOException("reading " + hint.location(), e);
    } catch (UncheckedIOException e) {
      if (e.getCause() instanceof java.io.FileNotFoundException) {
        return null;
      }
      throw e;
    }
    int version;
    try {
      version = Integer.parseInt(text);
    } catch (NumberFormatException e) {
      throw new IllegalStateException(
          hint.location() + " does not hold a metadata version: '" + text + "'", e);
    }
    return folder + "/metadata/v" + version + ".metadata.json";
  }

  String tableFolder(TableIdentifier ident) {
    return folderOf(ident.namespace()) + "/" + ident.name();
  }

  /** Table folders (those with a version hint) directly in the namespace's folder. */
  List<TableIdentifier> listTables(Namespace namespace) {
    List<TableIdentifier> out = new ArrayList<>();
    for (String name : childFolders(namespace, true)) {
      out.add(TableIdentifier.of(namespace, name));
    }
    return out;
  }

  /** Folders directly in the parent's folder that are not tables. */
  List<Namespace> listNamespaces(Namespace parent) {
    List<Namespace> out = new ArrayList<>();
    for (String name : childFolders(parent, false)) {
      String[] levels = new String[parent.length() + 1];
      System.arraycopy(parent.levels(), 0, levels, 0, parent.length());
      levels[parent.length()] = name;
      out.add(Namespace.of(levels));
    }
    return out;
  }

  /** Names of the folders directly in the namespace's folder that are tables, or are not. */
  private List<String> childFolders(Namespace namespace, boolean tables) {
    Path folder = new Path(folderOf(namespace));
    List<String> out = new ArrayList<>();
    try {
      FileSystem fs = folder.getFileSystem(conf());
      if (!fs.exists(folder)) {
        throw new NoSuchNamespaceException("Namespace does not exist: %s", namespace);
      }
      for (FileStatus child : fs.listStatus(folder)) {
        if (child.isDirectory() && fs.exists(new Path(child.getPath(), HINT)) == tables) {
          out.add(child.getPath().getName());
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("listing " + folder, e);
    }
    return out;
  }

  boolean namespaceExists(Namespace namespace) {
    Path folder = new Path(folderOf(namespace));
    try {
      return folder.getFileSystem(conf()).exists(folder);
    } catch (IOException e) {
      throw new UncheckedIOException("checking " + folder, e);
    }
  }

  private String folderOf(Namespace namespace) {
    StringBuilder out = new StringBuilder(location);
    for (String level : namespace.levels()) {
      out.append('/').append(level);
    }
    return out.toString();
  }

  private Configuration conf() {
    return hadoopConf instanceof Configuration ? (Configuration) hadoopConf : new Configuration();
  }

  private String fullName(TableIdentifier ident) {
    return CatalogUtil.fullTableName(catalogName, ident);
  }
}
