package dev.zombi.hot;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.iceberg.exceptions.ForbiddenException;
import org.apache.iceberg.exceptions.NotAuthorizedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * HTTP to the node's hot-segment API: the listing (driver, during planning) and segment bodies
 * (executors). Serializable so the hot FileIO can carry it; it holds the base URL, the hot token
 * and the timeouts, and builds its {@link HttpClient} lazily in each JVM.
 */
public final class HotHttp implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final Logger LOG = LoggerFactory.getLogger(HotHttp.class);

  /** One client per JVM and connect timeout: clients pool connections and own threads. */
  private static final Map<Long, HttpClient> CLIENTS = new ConcurrentHashMap<>();

  private static final long MAX_BACKOFF_MS = 2_000;

  private final String baseUri;
  private final String token;
  private final long connectTimeoutMs;
  private final long readTimeoutMs;

  public HotHttp(String baseUri, String token, long connectTimeoutMs, long readTimeoutMs) {
    this.baseUri = baseUri;
    this.token = token;
    this.connectTimeoutMs = connectTimeoutMs;
    this.readTimeoutMs = readTimeoutMs;
  }

  public String baseUri() {
    return baseUri;
  }

  private HttpClient client() {
    return CLIENTS.computeIfAbsent(
        connectTimeoutMs,
        ms ->
            HttpClient.newBuilder()
                // The node speaks HTTP/1.1; no h2c upgrade attempt.
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofMillis(ms))
                .followRedirects(HttpClient.Redirect.NEVER)
                .build());
  }

  /**
   * {@code GET /tables/{table}/hot/segments?watermarks=…}, answered within {@code timeoutMs} or
   * not at all. Returns the body of a 200.
   *
   * @throws WatermarkTooOldException on 410
   * @throws NotAuthorizedException on 401, ForbiddenException on 403: a configuration error
   * @throws NodeUnavailableException on no answer in time, a connection error or any other
   *     status
   */
  public byte[] listSegments(String table, String watermarks, long timeoutMs) {
    String path = "/tables/" + table + "/hot/segments?watermarks=" + watermarks;
    HttpResponse<byte[]> response;
    try {
      response = send(path, timeoutMs);
    } catch (IOException e) {
      throw new NodeUnavailableException(
          "hot segment listing " + path + ": " + NodeCalls.describe(e), e);
    }
    int status = response.statusCode();
    switch (status) {
      case 200:
        return response.body();
      case 410:
        throw new WatermarkTooOldException(
            "hot segment listing " + path + " answered 410: " + text(response));
      case 401:
        throw new NotAuthorizedException(
            "hot segment listing refused the token (401): set hot-token or token: %s",
            text(response));
      case 403:
        throw new ForbiddenException(
            "hot segment listing refused the token (403): set hot-token or token: %s",
            text(response));
      default:
        throw new NodeUnavailableException(
            "hot segment listing " + path + " answered " + status + ": " + text(response));
    }
  }

  /**
   * Reads one segment file whole. Retries 429 and 503 (the node's bound on concurrent hot reads)
   * with jittered exponential backoff, honouring Retry-After, until {@code readTimeoutMs} is
   * spent.
   */
  public byte[] readSegment(String path) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(readTimeoutMs);
    long backoffMs = 50;
    for (int attempt = 1; ; attempt++) {
      long remainingMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
      if (remainingMs <= 0) {
        throw new UncheckedIOException(
            new IOException(
                "hot segment " + path + ": not read within " + readTimeoutMs + " ms (busy node)"));
      }
      HttpResponse<byte[]> response;
      try {
        response = send(path, remainingMs);
      } catch (IOException e) {
        throw new UncheckedIOException("hot segment " + path + ": " + e.getMessage(), e);
      }
      int status = response.statusCode();
      if (status == 200) {
        return response.body();
      }
      if (status == 410) {
        throw new IllegalStateException(
            "hot segment "
                + path
                + " is gone (its lease expired and retention deleted part of it); run the query"
                + " again: "
                + text(response));
      }
      if (status != 429 && status != 503) {
        throw new UncheckedIOException(
            new IOException(
                "hot segment " + path + " answered " + status + ": " + text(response)));
      }
      long waitMs = retryAfterMs(response).orElse(backoffMs);
      waitMs = Math.min(waitMs, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
      waitMs += ThreadLocalRandom.current().nextLong(1 + waitMs / 5);
      LOG.debug(
          "hot segment {} answered {}; attempt {} retries in {} ms", path, status, attempt, waitMs);
      sleep(waitMs);
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
  }

  private HttpResponse<byte[]> send(String pathAndQuery, long timeoutMs) throws IOException {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create(baseUri + pathAndQuery))
            .timeout(Duration.ofMillis(timeoutMs))
            .GET();
    if (token != null && !token.isEmpty()) {
      request.header("Authorization", "Bearer " + token);
    }
    // The request timeout covers the wait for the headers only; the future's deadline covers
    // the body too.
    CompletableFuture<HttpResponse<byte[]>> future =
        client().sendAsync(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    try {
      return future.get(timeoutMs, TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      future.cancel(true);
      throw new IOException("no answer within " + timeoutMs + " ms", e);
    } catch (InterruptedException e) {
      future.cancel(true);
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException) {
        throw (IOException) cause;
      }
      throw new IOException(String.valueOf(cause), cause);
    }
  }

  private static java.util.Optional<Long> retryAfterMs(HttpResponse<?> response) {
    return response
        .headers()
        .firstValue("Retry-After")
        .flatMap(
            v -> {
              try {
                return java.util.Optional.of(Math.max(0, Long.parseLong(v.trim())) * 1000);
              } catch (NumberFormatException e) {
                return java.util.Optional.empty();
              }
            });
  }

  private static String text(HttpResponse<byte[]> response) {
    byte[] body = response.body();
    if (body == null) {
      return "";
    }
    String s = new String(body, StandardCharsets.UTF_8);
    return s.length() > 500 ? s.substring(0, 500) + "…" : s;
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(Math.max(0, ms));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new UncheckedIOException(new java.io.InterruptedIOException("interrupted"));
    }
  }
}
