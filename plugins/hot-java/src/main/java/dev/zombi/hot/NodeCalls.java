package dev.zombi.hot;

import java.io.IOException;
import java.net.http.HttpTimeoutException;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.iceberg.exceptions.RESTException;
import org.apache.iceberg.exceptions.ServiceFailureException;
import org.apache.iceberg.exceptions.ServiceUnavailableException;

/**
 * Calls to the node with a hard deadline, and the one rule for which failures mean "the node
 * cannot answer now" (and so a cold read instead of an error).
 *
 * <p>The REST client's own timeouts bound a connect and each socket read, but it retries 5xx
 * answers with backoff for up to half a minute; running the call on a worker thread and waiting
 * at most the planning timeout bounds everything. A call given up on finishes or times out on
 * its worker by itself.
 */
public final class NodeCalls {
  private static final AtomicInteger THREADS = new AtomicInteger();

  private static final ExecutorService WORKERS =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "zombi-node-call-" + THREADS.incrementAndGet());
            t.setDaemon(true);
            return t;
          });

  private NodeCalls() {}

  public static <T> Future<T> submit(Callable<T> call) {
    return WORKERS.submit(call);
  }

  /**
   * Runs {@code call} and waits for it at most {@code timeoutMs}. A failure of the call is
   * rethrown as is (unchecked); running out of time throws {@link NodeUnavailableException}.
   */
  public static <T> T bounded(Callable<T> call, long timeoutMs, String what) {
    return await(WORKERS.submit(call), timeoutMs, what);
  }

  public static <T> T await(Future<T> future, long timeoutMs, String what) {
    try {
      return future.get(timeoutMs, TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      future.cancel(true);
      throw new NodeUnavailableException(what + ": no answer within " + timeoutMs + " ms", e);
    } catch (InterruptedException e) {
      future.cancel(true);
      Thread.currentThread().interrupt();
      throw new NodeUnavailableException(what + ": interrupted", e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof RuntimeException) {
        throw (RuntimeException) cause;
      }
      if (cause instanceof Error) {
        throw (Error) cause;
      }
      throw new NodeUnavailableException(what + ": " + cause, cause);
    }
  }

  /**
   * True when {@code e} says the node did not answer usefully: no connection, no answer in time,
   * a broken answer, or a 5xx. Client errors (401, 403, 404, 400) are not: they are answers.
   */
  public static boolean isUnavailable(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof NodeUnavailableException
          || t instanceof ServiceUnavailableException
          || t instanceof ServiceFailureException
          || t instanceof IOException
          || t instanceof HttpTimeoutException) {
        return true;
      }
      if (t.getClass() == RESTException.class && t.getCause() instanceof IOException) {
        return true;
      }
      if (t.getCause() == t) {
        break;
      }
    }
    return false;
  }

  /** A failure as one line: its message and, when it differs, its root cause. */
  public static String describe(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return root == e ? e.toString() : e.getMessage() + ": " + root;
  }
}
