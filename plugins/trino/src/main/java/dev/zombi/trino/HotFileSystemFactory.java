package dev.zombi.trino;

import dev.zombi.hot.HotHttp;
import dev.zombi.hot.HotSegment;
import io.airlift.slice.Slices;
import io.trino.filesystem.FileIterator;
import io.trino.filesystem.Location;
import io.trino.filesystem.TrinoFileSystem;
import io.trino.filesystem.TrinoFileSystemFactory;
import io.trino.filesystem.TrinoInput;
import io.trino.filesystem.TrinoInputFile;
import io.trino.filesystem.TrinoInputStream;
import io.trino.filesystem.TrinoOutputFile;
import io.trino.filesystem.memory.MemoryInputFile;
import io.trino.spi.security.ConnectorIdentity;
import java.io.IOException;
import java.time.Instant;
import java.util.Optional;
import java.util.Set;

/**
 * Trino's file system for {@code zombi-hot://} locations: a hot segment's Parquet file, read whole
 * from the node when the page source first touches it (the listing gives only an upper bound of
 * its size; {@link TrinoInputFile#length()} is the real one). Read-only.
 */
final class HotFileSystemFactory implements TrinoFileSystemFactory {
  static final String SCHEME = HotSegment.SCHEME.substring(0, HotSegment.SCHEME.indexOf(':'));

  private final HotHttp http;

  HotFileSystemFactory(HotHttp http) {
    this.http = http;
  }

  @Override
  public TrinoFileSystem create(ConnectorIdentity identity) {
    return new HotFileSystem();
  }

  private final class HotFileSystem implements TrinoFileSystem {
    @Override
    public TrinoInputFile newInputFile(Location location) {
      return new HotInputFile(location);
    }

    @Override
    public TrinoInputFile newInputFile(Location location, long length) {
      return new HotInputFile(location);
    }

    @Override
    public TrinoInputFile newInputFile(Location location, long length, Instant lastModified) {
      return new HotInputFile(location);
    }

    @Override
    public TrinoOutputFile newOutputFile(Location location) {
      throw readOnly(location);
    }

    @Override
    public void deleteFile(Location location) {
      throw readOnly(location);
    }

    @Override
    public void deleteDirectory(Location location) {
      throw readOnly(location);
    }

    @Override
    public void renameFile(Location source, Location target) {
      throw readOnly(source);
    }

    @Override
    public FileIterator listFiles(Location location) {
      throw readOnly(location);
    }

    @Override
    public Optional<Boolean> directoryExists(Location location) {
      return Optional.of(false);
    }

    @Override
    public void createDirectory(Location location) {
      throw readOnly(location);
    }

    @Override
    public void renameDirectory(Location source, Location target) {
      throw readOnly(source);
    }

    @Override
    public Set<Location> listDirectories(Location location) {
      return Set.of();
    }

    @Override
    public Optional<Location> createTemporaryDirectory(
        Location targetPath, String temporaryPrefix, String relativePrefix) {
      throw readOnly(targetPath);
    }
  }

  private static UnsupportedOperationException readOnly(Location location) {
    return new UnsupportedOperationException(
        "hot segments are read-only: " + location + " cannot be written, listed or deleted");
  }

  /** The segment, fetched once on first use; every read is then served from memory. */
  private final class HotInputFile implements TrinoInputFile {
    private final Location location;
    private MemoryInputFile body;

    HotInputFile(Location location) {
      this.location = location;
    }

    private synchronized MemoryInputFile body() throws IOException {
      if (body == null) {
        String text = location.toString();
        if (!text.startsWith(HotSegment.SCHEME)) {
          throw new IOException("not a hot segment location: " + text);
        }
        byte[] bytes;
        try {
          bytes = http.readSegment(text.substring(HotSegment.SCHEME.length()));
        } catch (RuntimeException e) {
          throw new IOException(e.getMessage(), e);
        }
        body = new MemoryInputFile(location, Slices.wrappedBuffer(bytes));
      }
      return body;
    }

    @Override
    public TrinoInput newInput() throws IOException {
      return body().newInput();
    }

    @Override
    public TrinoInputStream newStream() throws IOException {
      return body().newStream();
    }

    @Override
    public long length() throws IOException {
      return body().length();
    }

    @Override
    public Instant lastModified() {
      return Instant.EPOCH;
    }

    @Override
    public boolean exists() {
      return true;
    }

    @Override
    public Location location() {
      return location;
    }
  }
}
