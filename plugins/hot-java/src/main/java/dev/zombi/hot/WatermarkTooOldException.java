package dev.zombi.hot;

/**
 * The node answered 410 to a segment listing: a watermark of the scanned snapshot is below the
 * partition's deletion floor, so the reader must reload the table and plan again.
 */
public class WatermarkTooOldException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public WatermarkTooOldException(String message) {
    super(message);
  }
}
