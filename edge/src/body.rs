//! Reading request bodies within limits: a size cap on the body as sent and after
//! decompression, a deadline for the whole body, and a process-wide in-flight byte budget
//! so that a flood of requests gets 429s instead of exhausting memory. Bytes are reserved
//! as they arrive, before they are buffered: a request that announces 16 MiB and sends
//! nothing holds nothing, and its deadline ends it. A compressed body gives back each frame
//! once decoded.

use std::cell::Cell;
use std::io::{BufRead, Read};
use std::rc::Rc;
use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_ENCODING;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics;

/// Decompressed bytes are produced and budgeted in steps of this size.
const DECODE_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the decompressed request body is larger than the limit of {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    #[error("the edge is over its in-flight byte budget")]
    Overloaded,
    #[error("the request body did not arrive within {limit_ms} ms (limits.body_read_timeout_ms)")]
    Timeout { limit_ms: u128 },
    #[error("unsupported Content-Encoding '{0}'; use gzip, zstd or none")]
    UnsupportedEncoding(String),
    #[error("could not read the request body: {0}")]
    Read(String),
    #[error("could not decompress the {encoding} request body: {message}")]
    Corrupt { encoding: &'static str, message: String },
}

/// Request bytes the edge holds at once, across all requests.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    permits: Arc<Semaphore>,
}

impl ByteBudget {
    pub fn new(bytes: usize) -> Self {
        ByteBudget { permits: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))) }
    }

    /// An empty reservation that grows as bytes arrive.
    pub fn reserve(&self) -> Reservation {
        Reservation { permits: Arc::clone(&self.permits), permit: None }
    }

    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// Bytes held from a [`ByteBudget`]; returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    permits: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Gives back all but `bytes` of the reservation (nothing if it holds no more).
    pub fn shrink_to(&mut self, bytes: usize) {
        let held = self.bytes();
        if held <= bytes {
            return;
        }
        let Some(permit) = &mut self.permit else { return };
        let released = permit.split(held - bytes).map_or(0, |p| p.num_permits());
        metrics::inflight_bytes_changed(-(released as f64));
    }

    /// Reserves `bytes` more without waiting: an exhausted budget is an immediate 429.
    pub fn grow(&mut self, bytes: usize) -> Result<(), BodyError> {
        if bytes == 0 {
            return Ok(());
        }
        let n = u32::try_from(bytes).map_err(|_| BodyError::Overloaded)?;
        let more = Arc::clone(&self.permits)
            .try_acquire_many_owned(n)
            .map_err(|_| BodyError::Overloaded)?;
        metrics::inflight_bytes_changed(bytes as f64);
        match &mut self.permit {
            Some(permit) => permit.merge(more),
            None => self.permit = Some(more),
        }
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let bytes = self.bytes();
        if bytes > 0 {
            metrics::inflight_bytes_changed(-(bytes as f64));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, BodyError> {
        let mut values = headers.get_all(CONTENT_ENCODING).iter();
        let Some(value) = values.next() else { return Ok(Encoding::Identity) };
        let text = value.to_str().unwrap_or_default().trim();
        if values.next().is_some() {
            return Err(BodyError::UnsupportedEncoding("several Content-Encoding headers".into()));
        }
        if text.is_empty() || text.eq_ignore_ascii_case("identity") {
            Ok(Encoding::Identity)
        } else if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
            Ok(Encoding::Gzip)
        } else if text.eq_ignore_ascii_case("zstd") {
            Ok(Encoding::Zstd)
        } else {
            Err(BodyError::UnsupportedEncoding(String::from_utf8_lossy(value.as_bytes()).into()))
        }
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
        }
    }
}

/// A fully read, decompressed body together with the budget it holds.
#[derive(Debug)]
pub struct LimitedBody {
    pub bytes: Bytes,
    /// Keep until the node answered: the bytes, then the group encoded from them, are held
    /// that long.
    pub reservation: Reservation,
}

/// Bodies refused as too large are read and thrown away up to this size (and for at most
/// `DISCARD_TIMEOUT`), so a client still sending gets the 413 instead of a connection reset.
/// Nothing is buffered; larger bodies are cut off.
const DISCARD_LIMIT: usize = 1 << 20;
const DISCARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

async fn discard<S, E>(frames: &mut S)
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    let drain = async {
        let mut seen = 0;
        while let Some(Ok(frame)) = frames.next().await {
            seen += frame.len();
            if seen > DISCARD_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIMEOUT, drain).await;
}

/// Reads `body`, enforcing `max_bytes` on the body as sent and after decompression and
/// `deadline` on its arrival, and reserving every byte from `budget` before buffering it.
pub async fn read_body(
    body: Body,
    encoding: Encoding,
    max_bytes: usize,
    deadline: std::time::Duration,
    budget: &ByteBudget,
) -> Result<LimitedBody, BodyError> {
    // A declared length above the limit is refused before reading any of the body.
    let declared = body.size_hint().exact();
    let mut reservation = budget.reserve();
    let mut frames = body.into_data_stream();
    if let Some(len) = declared {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > max_bytes {
            if len <= DISCARD_LIMIT {
                discard(&mut frames).await;
            }
            return Err(BodyError::TooLarge { limit: max_bytes });
        }
    }

    // Memory follows what arrived, not what was announced: the frames are kept as they
    // came and joined once, at the end.
    let mut received = Vec::new();
    let mut total = 0;
    let read = async {
        while let Some(frame) = frames.next().await {
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            total += frame.len();
            if total > max_bytes {
                discard(&mut frames).await;
                return Err(BodyError::TooLarge { limit: max_bytes });
            }
            reservation.grow(frame.len())?;
            received.push(frame);
        }
        Ok(())
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(result) => result?,
        Err(_) => return Err(BodyError::Timeout { limit_ms: deadline.as_millis() }),
    }
    metrics::body_read(total);

    if encoding == Encoding::Identity {
        return Ok(LimitedBody { bytes: join(received, total), reservation });
    }
    // Decompression is CPU work; keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let decoded = decompress(encoding, received, max_bytes, &mut reservation)?;
        Ok(LimitedBody { bytes: decoded.into(), reservation })
    })
    .await
    .map_err(|e| BodyError::Read(format!("decompression task failed: {e}")))?
}

/// The frames of a body as one buffer: the frame itself if there is one, else one copy.
fn join(mut frames: Vec<Bytes>, total: usize) -> Bytes {
    if frames.len() == 1 {
        return frames.pop().unwrap_or_default();
    }
    let mut bytes = Vec::with_capacity(total);
    for frame in frames {
        bytes.extend_from_slice(&frame);
    }
    bytes.into()
}

/// Streams the `compressed` frames through a decoder, reserving each decoded chunk before
/// keeping it, so a small bomb stops at `max_bytes` instead of expanding in memory. Each
/// frame is dropped, and its bytes given back to the budget, once decoded: a request holds
/// about the larger of its compressed and decompressed sizes, not their sum.
fn decompress(
    encoding: Encoding,
    compressed: Vec<Bytes>,
    max_bytes: usize,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, BodyError> {
    let corrupt = |e: std::io::Error| BodyError::Corrupt {
        encoding: encoding.name(),
        message: e.to_string(),
    };
    let released = Rc::new(Cell::new(0));
    let frames = Frames { frames: compressed.into(), consumed: 0, released: Rc::clone(&released) };
    let mut decoder: Box<dyn Read> = match encoding {
        Encoding::Identity => Box::new(frames),
        Encoding::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(frames)),
        Encoding::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(frames).map_err(corrupt)?;
            // A frame may ask for a window far larger than any body we accept; cap what the
            // decoder allocates.
            decoder.window_log_max(window_log_for(max_bytes)).map_err(corrupt)?;
            Box::new(decoder)
        }
    };
    let mut out = Vec::new();
    let mut chunk = vec![0u8; DECODE_CHUNK];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        if out.len() + n > max_bytes {
            return Err(BodyError::DecompressedTooLarge { limit: max_bytes });
        }
        reservation.shrink_to(reservation.bytes().saturating_sub(released.take()));
        reservation.grow(n)?;
        out.extend_from_slice(&chunk[..n]);
    }
    // Every compressed frame is gone with the decoder: what is held is what was decoded.
    drop(decoder);
    reservation.shrink_to(out.len());
    Ok(out)
}

/// Compressed frames read in order, each dropped once read to its end; `released` adds up
/// the sizes of the frames dropped.
struct Frames {
    frames: std::collections::VecDeque<Bytes>,
    /// Bytes read of the first frame.
    consumed: usize,
    released: Rc<Cell<usize>>,
}

impl Read for Frames {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Frames {
    /// Drops the frames read to their end (and empty ones).
    fn drop_read(&mut self) {
        while let Some(front) = self.frames.front()
            && self.consumed >= front.len()
        {
            self.consumed -= front.len();
            self.released.set(self.released.get() + front.len());
            self.frames.pop_front();
        }
    }
}

impl BufRead for Frames {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.drop_read();
        Ok(self.frames.front().map_or(&[][..], |f| &f[self.consumed..]))
    }

    fn consume(&mut self, n: usize) {
        self.consumed += n;
        self.drop_read();
    }
}

/// Largest zstd window the decoder may allocate: enough for any body of `max_bytes`, and at
/// least 8 MiB (log 23), which streaming compressors use at levels up to 19 when they do
/// not know the input size; never beyond zstd's default limit of 128 MiB (log 27).
fn window_log_for(max_bytes: usize) -> u32 {
    let needed = usize::BITS - max_bytes.saturating_sub(1).leading_zeros();
    needed.clamp(23, 27)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const LONG: std::time::Duration = std::time::Duration::from_secs(30);

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
    }

    /// A body without a Content-Length, as sent with chunked transfer encoding.
    fn chunked(chunks: Vec<Vec<u8>>) -> Body {
        Body::from_stream(futures::stream::iter(
            chunks.into_iter().map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        ))
    }

    #[tokio::test]
    async fn reads_within_limits_and_releases_the_budget() {
        let budget = ByteBudget::new(1000);
        let body = read_body(Body::from(vec![7u8; 300]), Encoding::Identity, 500, LONG, &budget)
            .await
            .unwrap();
        assert_eq!(body.bytes, vec![7u8; 300]);
        assert_eq!(budget.available(), 700);
        drop(body);
        assert_eq!(budget.available(), 1000);

        let body = read_body(
            chunked(vec![vec![1; 200], vec![2; 200]]),
            Encoding::Identity,
            500,
            LONG,
            &budget,
        )
        .await
        .unwrap();
        assert_eq!(body.bytes.len(), 400);
        assert_eq!(body.reservation.bytes(), 400);
    }

    #[test]
    fn a_reservation_shrinks_to_what_it_still_holds() {
        let budget = ByteBudget::new(1000);
        let mut reservation = budget.reserve();
        reservation.grow(600).unwrap();
        reservation.shrink_to(800);
        assert_eq!((reservation.bytes(), budget.available()), (600, 400));
        reservation.shrink_to(250);
        assert_eq!((reservation.bytes(), budget.available()), (250, 750));
        reservation.grow(100).unwrap();
        reservation.shrink_to(0);
        assert_eq!((reservation.bytes(), budget.available()), (0, 1000));
        reservation.grow(10).unwrap();
        drop(reservation);
        assert_eq!(budget.available(), 1000);
    }

    #[tokio::test]
    async fn content_length_over_the_limit_is_rejected_unread() {
        let budget = ByteBudget::new(10_000);
        let err = read_body(Body::from(vec![0u8; 501]), Encoding::Identity, 500, LONG, &budget)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 500 }), "{err}");
        assert_eq!(budget.available(), 10_000);
    }

    #[tokio::test]
    async fn chunked_body_over_the_limit_is_rejected() {
        let budget = ByteBudget::new(10_000);
        let err = read_body(chunked(vec![vec![0; 300]; 3]), Encoding::Identity, 500, LONG, &budget)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 500 }), "{err}");
        assert_eq!(budget.available(), 10_000);
    }

    #[tokio::test]
    async fn exhausted_budget_is_overloaded() {
        let budget = ByteBudget::new(1000);
        let held = read_body(Body::from(vec![0u8; 800]), Encoding::Identity, 1000, LONG, &budget)
            .await
            .unwrap();
        let err = read_body(Body::from(vec![0u8; 300]), Encoding::Identity, 1000, LONG, &budget)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::Overloaded), "{err}");
        // Chunked: the first frame fits, the second does not.
        let err = read_body(
            chunked(vec![vec![0; 150], vec![0; 150]]),
            Encoding::Identity,
            1000,
            LONG,
            &budget,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BodyError::Overloaded), "{err}");
        drop(held);
        assert_eq!(budget.available(), 1000);
    }

    #[tokio::test]
    async fn a_stalled_body_holds_only_what_it_sent_until_its_deadline() {
        let budget = ByteBudget::new(1000);
        let stalled = Body::from_stream(
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 100]))])
                .chain(futures::stream::pending()),
        );
        let deadline = std::time::Duration::from_millis(200);
        let read = read_body(stalled, Encoding::Identity, 1000, deadline, &budget);
        let mut read = std::pin::pin!(read);
        // While it waits for more, the request holds the 100 bytes it sent.
        assert!(futures::poll!(read.as_mut()).is_pending());
        assert_eq!(budget.available(), 900);
        let err = read.await.unwrap_err();
        assert!(matches!(err, BodyError::Timeout { limit_ms: 200 }), "{err}");
        assert_eq!(budget.available(), 1000);
    }

    #[tokio::test]
    async fn gzip_and_zstd_round_trip() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let budget = ByteBudget::new(1 << 20);
        for (encoding, compressed) in [(Encoding::Gzip, gzip(&data)), (Encoding::Zstd, zstd(&data))]
        {
            let body = read_body(Body::from(compressed.clone()), encoding, 300_000, LONG, &budget)
                .await
                .unwrap();
            assert_eq!(body.bytes, data, "{encoding:?}");
            // The compressed bytes were given back as they were decoded.
            assert_eq!(body.reservation.bytes(), data.len());
        }
        assert_eq!(budget.available(), 1 << 20);
    }

    #[tokio::test]
    async fn decompression_bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 4 << 20];
        let budget = ByteBudget::new(1 << 30);
        for (encoding, compressed) in
            [(Encoding::Gzip, gzip(&zeros)), (Encoding::Zstd, zstd(&zeros))]
        {
            assert!(compressed.len() < 20_000, "{encoding:?} compressed to {}", compressed.len());
            let err = read_body(Body::from(compressed), encoding, 100_000, LONG, &budget)
                .await
                .unwrap_err();
            assert!(matches!(err, BodyError::DecompressedTooLarge { limit: 100_000 }), "{err}");
        }
        assert_eq!(budget.available(), 1 << 30);
    }

    #[tokio::test]
    async fn a_compressed_body_holds_about_its_larger_size_not_both() {
        // Incompressible bytes: compressed and decompressed are each about 300 KB.
        let mut x = 1u64;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        for (encoding, compressed) in [(Encoding::Gzip, gzip(&data)), (Encoding::Zstd, zstd(&data))]
        {
            assert!(compressed.len() > 290_000, "{encoding:?}");
            // Less than both together: each frame goes once decoded.
            let budget = ByteBudget::new(400_000);
            let frames = compressed.chunks(8192).map(<[u8]>::to_vec).collect();
            let body = read_body(chunked(frames), encoding, 400_000, LONG, &budget).await.unwrap();
            assert_eq!(body.bytes, data, "{encoding:?}");
            assert_eq!(budget.available(), 100_000);
            drop(body);
            assert_eq!(budget.available(), 400_000);
        }
    }

    #[tokio::test]
    async fn decompressed_bytes_count_against_the_budget() {
        let data = vec![b'x'; 200_000];
        let budget = ByteBudget::new(100_000);
        let err = read_body(Body::from(gzip(&data)), Encoding::Gzip, 300_000, LONG, &budget)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::Overloaded), "{err}");
        assert_eq!(budget.available(), 100_000);
    }

    #[tokio::test]
    async fn corrupt_compressed_bodies_are_errors() {
        let budget = ByteBudget::new(1 << 20);
        for encoding in [Encoding::Gzip, Encoding::Zstd] {
            let err = read_body(
                Body::from(b"definitely not compressed".to_vec()),
                encoding,
                1000,
                LONG,
                &budget,
            )
            .await
            .unwrap_err();
            assert!(matches!(err, BodyError::Corrupt { .. }), "{err}");
        }
    }

    #[test]
    fn content_encoding_header() {
        let parse = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(CONTENT_ENCODING, v.parse().unwrap());
            }
            Encoding::from_headers(&h)
        };
        assert_eq!(parse(None).unwrap(), Encoding::Identity);
        assert_eq!(parse(Some("identity")).unwrap(), Encoding::Identity);
        assert_eq!(parse(Some("GZIP")).unwrap(), Encoding::Gzip);
        assert_eq!(parse(Some("zstd")).unwrap(), Encoding::Zstd);
        assert!(parse(Some("br")).is_err());
        assert!(parse(Some("gzip, zstd")).is_err());
    }

    #[test]
    fn zstd_window_covers_the_limit() {
        assert_eq!(window_log_for(1), 23);
        assert_eq!(window_log_for(16 << 20), 24);
        assert_eq!(window_log_for((16 << 20) + 1), 25);
        assert_eq!(window_log_for(usize::MAX), 27);
    }
}
