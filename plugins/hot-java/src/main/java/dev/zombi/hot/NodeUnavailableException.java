package dev.zombi.hot;

/** The node did not answer a call in time, or answered with a server error. */
public class NodeUnavailableException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public NodeUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }

  public NodeUnavailableException(String message) {
    super(message);
  }
}
