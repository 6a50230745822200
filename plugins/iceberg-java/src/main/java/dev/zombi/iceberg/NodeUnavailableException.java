package dev.zombi.iceberg;

/** The node did not answer a call in time, or answered with a server error. */
class NodeUnavailableException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  NodeUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }

  NodeUnavailableException(String message) {
    super(message);
  }
}
