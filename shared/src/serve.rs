//! The HTTP/1 server of both binaries: `axum::serve` with a deadline on request headers.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never runs and a
//! client that opens connections and sends half a request line holds them forever. Here
//! each connection is served by hyper with a timer and `limits.header_read_timeout_ms`:
//! a request head that is not complete in time closes the connection (hyper runs the same
//! timer while a keep-alive connection idles). Body deadlines belong to the handlers, which
//! know what a body is for.

use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// The most a connection's read buffer grows to. hyper's default (about 400 KiB) let each
/// of 1,024 connections uploading bulk bodies hold a full buffer, outside the in-flight
/// budget: the edge peaked at 1.2 GiB under a 10× overload (docs/benchmarks.md). Bodies are
/// read in steps of this size instead.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown`; then stops accepting, lets every
/// connection finish its request in flight and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = TaskTracker::new();
    loop {
        let (stream, _peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone().map_request(|req: hyper::Request<Incoming>| req.map(axum::body::Body::new)),
        );
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .max_buf_size(READ_BUFFER_BYTES);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                () = shutdown.cancelled() => {}
            }
            // Answer the request in flight (if any), then close.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Errors of one incoming connection, not of the listener.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Cancels `shutdown` at the first SIGTERM or SIGINT. The handlers are installed when this
/// returns: a process that announces its address after calling it treats a signal sent right
/// after the announcement as a graceful shutdown, never as a kill.
pub fn cancel_on_signal(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutdown signal received");
        shutdown.cancel();
    });
    Ok(())
}
