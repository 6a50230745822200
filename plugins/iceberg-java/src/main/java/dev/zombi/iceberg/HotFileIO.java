package dev.zombi.iceberg;

import dev.zombi.hot.HotHttp;
import dev.zombi.hot.HotSegment;
import java.io.IOException;
import java.util.Map;
import java.util.function.Function;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.hadoop.HadoopConfigurable;
import org.apache.iceberg.io.FileIO;
import org.apache.iceberg.io.InputFile;
import org.apache.iceberg.io.OutputFile;
import org.apache.iceberg.io.SeekableInputStream;
import org.apache.iceberg.util.SerializableSupplier;

/**
 * The FileIO of a Zombi table: {@code zombi-hot://} locations are read from the node with one GET
 * each, everything else goes to the table's own FileIO.
 *
 * <p>Spark ships it to executors inside the serialized table, so it is Serializable and carries
 * no secret but the hot token (the delegate is built without the catalog's credentials, see
 * {@link ZombiCatalog}).
 */
final class HotFileIO implements FileIO, HadoopConfigurable {
  private static final long serialVersionUID = 1L;

  private final FileIO delegate;
  private final HotHttp http;

  HotFileIO(FileIO delegate, HotHttp http) {
    this.delegate = delegate;
    this.http = http;
  }

  static boolean isHot(String location) {
    return location != null && location.startsWith(HotSegment.SCHEME);
  }

  @Override
  public InputFile newInputFile(String path) {
    return isHot(path) ? new HotInputFile(path, http) : delegate.newInputFile(path);
  }

  /**
   * A hot file's recorded size is only an upper bound of its length: the length hint is ignored
   * and the downloaded body's real length used.
   */
  @Override
  public InputFile newInputFile(String path, long length) {
    return isHot(path) ? new HotInputFile(path, http) : delegate.newInputFile(path, length);
  }

  @Override
  public OutputFile newOutputFile(String path) {
    if (isHot(path)) {
      throw new UnsupportedOperationException("hot files are read-only: " + path);
    }
    return delegate.newOutputFile(path);
  }

  @Override
  public void deleteFile(String path) {
    if (isHot(path)) {
      throw new UnsupportedOperationException("hot files are read-only: " + path);
    }
    delegate.deleteFile(path);
  }

  @Override
  public Map<String, String> properties() {
    return delegate.properties();
  }

  @Override
  public void initialize(Map<String, String> properties) {
    // Built by the catalog from an initialized delegate; nothing to do.
  }

  /** The delegate belongs to the catalog, which closes it. */
  @Override
  public void close() {}

  @Override
  public void serializeConfWith(
      Function<Configuration, SerializableSupplier<Configuration>> confSerializer) {
    if (delegate instanceof HadoopConfigurable) {
      ((HadoopConfigurable) delegate).serializeConfWith(confSerializer);
    }
  }

  @Override
  public void setConf(Configuration conf) {
    if (delegate instanceof HadoopConfigurable) {
      ((HadoopConfigurable) delegate).setConf(conf);
    }
  }

  @Override
  public Configuration getConf() {
    return delegate instanceof HadoopConfigurable
        ? ((HadoopConfigurable) delegate).getConf()
        : null;
  }

  /** One hot segment file, downloaded whole on first use and kept in memory. */
  private static final class HotInputFile implements InputFile {
    private final String location;
    private final HotHttp http;
    private byte[] body;

    HotInputFile(String location, HotHttp http) {
      this.location = location;
      this.http = http;
    }

    private synchronized byte[] body() {
      if (body == null) {
        body = http.readSegment(location.substring(HotSegment.SCHEME.length()));
      }
      return body;
    }

    @Override
    public long getLength() {
      return body().length;
    }

    @Override
    public SeekableInputStream newStream() {
      return new BytesInputStream(body());
    }

    @Override
    public String location() {
      return location;
    }

    @Override
    public boolean exists() {
      return true;
    }
  }

  /** A seekable stream over a byte array. */
  private static final class BytesInputStream extends SeekableInputStream {
    private final byte[] bytes;
    private int pos;
    private boolean closed;

    BytesInputStream(byte[] bytes) {
      this.bytes = bytes;
    }

    @Override
    public long getPos() throws IOException {
      checkOpen();
      return pos;
    }

    @Override
    public void seek(long newPos) throws IOException {
      checkOpen();
      if (newPos < 0 || newPos > bytes.length) {
        throw new IOException("seek to " + newPos + " outside [0, " + bytes.length + "]");
      }
      pos = (int) newPos;
    }

    @Override
    public int read() throws IOException {
      checkOpen();
      return pos < bytes.length ? bytes[pos++] & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      checkOpen();
      if (len == 0) {
        return 0;
      }
      if (pos >= bytes.length) {
        return -1;
      }
      int n = Math.min(len, bytes.length - pos);
      System.arraycopy(bytes, pos, b, off, n);
      pos += n;
      return n;
    }

    @Override
    public long skip(long n) throws IOException {
      checkOpen();
      long skipped = Math.max(0, Math.min(n, bytes.length - pos));
      pos += (int) skipped;
      return skipped;
    }

    @Override
    public int available() throws IOException {
      checkOpen();
      return bytes.length - pos;
    }

    @Override
    public void close() {
      closed = true;
    }

    private void checkOpen() throws IOException {
      if (closed) {
        throw new IOException("stream closed");
      }
    }
  }
}
