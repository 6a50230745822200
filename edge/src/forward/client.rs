//! The HTTP client for the node's internal ingest endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use zombi_shared::config::EdgeConfig;
use zombi_shared::error_chain;
use zombi_shared::wire::{
    self, BatchResponse, COMMIT_WAIT_PATH, CommitWait, CommitWaitAnswer, EncodedGroup, INGEST_PATH,
    MSGPACK_CONTENT_TYPE,
};

use super::ForwardError;

/// Node error messages are shown to producers and logged; keep them short.
const MAX_NODE_MESSAGE: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    #[error("node_url {0} uses https, but this build speaks plain HTTP to the node only")]
    HttpsUnsupported(String),
}

/// One keep-alive connection pool to the node, shared by all batches.
///
/// `node_url` may name several nodes (an active node and its standbys, `durability =
/// "object"`): batches go to the one that answered last. A batch that a node certainly did
/// not take — the connection was refused, or the node answered 503 `not_owner` (a standby,
/// or a node that lost its log) or `shutting_down` — is sent to the next node at once.
/// Any other failure (a timeout, a reset after the body was sent) may have been written,
/// so it goes back to the producer as a 503 to retry, never to another node.
#[derive(Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    /// The nodes' ingest endpoints.
    urls: Arc<[String]>,
    /// The nodes' commit-wait endpoints, in the same order.
    commit_waits: Arc<[String]>,
    /// Index of the node batches go to.
    current: Arc<AtomicUsize>,
    token: Option<String>,
    /// `forward.request_timeout_ms`: a commit wait may take that much beyond its own timeout.
    request_timeout: Duration,
}

/// How one attempt on one node ended.
enum Attempt {
    Done(Result<BatchResponse, ForwardError>),
    /// The node did not take the batch and says (or shows) another may: try the next.
    NotHere(String),
}

impl std::fmt::Debug for NodeClient {
    // The internal token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("urls", &self.urls)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl NodeClient {
    pub fn new(config: &EdgeConfig) -> Result<Self, ClientError> {
        // reqwest is built without TLS; fail at start rather than on every write.
        let nodes = config.node_urls();
        if let Some(https) = nodes.iter().find(|u| u.starts_with("https://")) {
            return Err(ClientError::HttpsUnsupported(https.clone()));
        }
        let forward = &config.forward;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(forward.connect_timeout_ms))
            .timeout(Duration::from_millis(forward.request_timeout_ms))
            // Every batch slot keeps its connection between batches.
            .pool_max_idle_per_host(forward.max_inflight_batches as usize)
            .tcp_nodelay(true)
            // The node is addressed directly; an ambient HTTP_PROXY must not reroute it.
            .no_proxy()
            .build()?;
        let endpoint = |path: &str| -> Arc<[String]> {
            nodes.iter().map(|u| format!("{}{path}", u.trim_end_matches('/'))).collect()
        };
        Ok(NodeClient {
            http,
            urls: endpoint(INGEST_PATH),
            commit_waits: endpoint(COMMIT_WAIT_PATH),
            current: Arc::new(AtomicUsize::new(0)),
            token: config.auth.internal_token.clone(),
            request_timeout: Duration::from_millis(forward.request_timeout_ms),
        })
    }

    /// Sends one batch of `groups` and returns the node's per-group results. It takes the
    /// groups so that each is freed once copied into the batch: while the node works, the
    /// edge holds the batch's body only.
    pub async fn send(&self, groups: Vec<EncodedGroup>) -> Result<BatchResponse, ForwardError> {
        let body = bytes::Bytes::from(wire::encode_batch(groups));
        let first = self.current.load(Ordering::Acquire);
        let n = self.urls.len();
        let mut last = String::new();
        for attempt in 0..n {
            let i = (first + attempt) % n;
            match self.attempt(&self.urls[i], body.clone()).await {
                Attempt::Done(result) => {
                    if attempt > 0 {
                        self.current.store(i, Ordering::Release);
                        tracing::info!(node = %self.urls[i], "sending batches to another node");
                    }
                    // The node did not answer (a timeout, a reset): the batch goes back to
                    // its producers to retry, and the next batches go to whichever node says
                    // it is active, if another does (the one here may hang for good).
                    if n > 1 && matches!(result, Err(ForwardError::Unavailable(_))) {
                        self.follow_active(i).await;
                    }
                    return result;
                }
                Attempt::NotHere(why) => {
                    metrics::counter!(crate::metrics::NODE_FAILOVERS).increment(1);
                    last = why;
                }
            }
        }
        Err(ForwardError::Unavailable(last))
    }

    /// Waits at the node until the events of `wait` are in a committed snapshot, or its
    /// timeout runs out. Goes to the node batches go to, and to the next one if that one
    /// is not active (after a takeover, the new active node commits them).
    pub async fn commit_wait(&self, wait: &CommitWait) -> Result<CommitWaitAnswer, ForwardError> {
        let body = serde_json::to_vec(wait)
            .map_err(|e| ForwardError::Protocol(format!("cannot encode a commit wait: {e}")))?;
        // The node answers when the wait ends; allow it the time of a batch on top.
        let timeout = Duration::from_millis(wait.timeout_ms) + self.request_timeout;
        let first = self.current.load(Ordering::Acquire);
        let n = self.commit_waits.len();
        let mut last = String::new();
        for attempt in 0..n {
            let url = &self.commit_waits[(first + attempt) % n];
            let mut request = self
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/json")
                .timeout(timeout)
                .body(body.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() => {
                    last = error_chain(&e);
                    continue;
                }
                Err(e) => return Err(ForwardError::Unavailable(error_chain(&e))),
            };
            let status = response.status();
            let body =
                response.bytes().await.map_err(|e| ForwardError::Unavailable(error_chain(&e)))?;
            match status {
                StatusCode::OK => {
                    return serde_json::from_slice(&body).map_err(|e| {
                        ForwardError::Protocol(format!("undecodable commit-wait answer: {e}"))
                    });
                }
                StatusCode::SERVICE_UNAVAILABLE if another_node_may(&body) => {
                    last = node_message(&body);
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    return Err(ForwardError::Unavailable(node_message(&body)));
                }
                status => {
                    return Err(ForwardError::Rejected {
                        status: status.as_u16(),
                        message: node_message(&body),
                    });
                }
            }
        }
        Err(ForwardError::Unavailable(last))
    }

    /// Asks every other node whether it is active (`/health`, a short timeout each) and
    /// sends the next batches to the first that is.
    async fn follow_active(&self, failed: usize) {
        for (i, url) in self.urls.iter().enumerate() {
            if i == failed {
                continue;
            }
            let health = format!("{}/health", url.trim_end_matches(INGEST_PATH));
            let probe = self.http.get(&health).timeout(Duration::from_secs(1)).send().await;
            let active = match probe {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|v| v["role"].as_str() == Some("active")),
                Err(_) => false,
            };
            if active {
                self.current.store(i, Ordering::Release);
                metrics::counter!(crate::metrics::NODE_FAILOVERS).increment(1);
                tracing::warn!(node = %url, "the node did not answer; sending batches to the active one");
                return;
            }
        }
    }

    async fn attempt(&self, url: &str, body: bytes::Bytes) -> Attempt {
        let mut request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, MSGPACK_CONTENT_TYPE)
            .header(ACCEPT, MSGPACK_CONTENT_TYPE)
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        // Connection refused, connect timeout, reset and request timeout all mean the
        // same to a producer: the node cannot take the write now. Only a refused connection
        // proves the batch was not sent.
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Attempt::NotHere(error_chain(&e)),
            Err(e) => return Attempt::Done(Err(ForwardError::Unavailable(error_chain(&e)))),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Done(Err(ForwardError::Unavailable(error_chain(&e)))),
        };
        Attempt::Done(match status {
            StatusCode::OK => wire::decode::<BatchResponse>(&body)
                .map_err(|e| ForwardError::Protocol(format!("undecodable batch response: {e}"))),
            StatusCode::TOO_MANY_REQUESTS => Err(ForwardError::NodeOverloaded(node_message(&body))),
            StatusCode::SERVICE_UNAVAILABLE => {
                if another_node_may(&body) {
                    return Attempt::NotHere(node_message(&body));
                }
                Err(ForwardError::Unavailable(node_message(&body)))
            }
            status => Err(ForwardError::Rejected {
                status: status.as_u16(),
                message: node_message(&body),
            }),
        })
    }
}

/// Whether a node's 503 says it took nothing and another node may (`not_owner`: a standby
/// or a node that lost its log; `shutting_down`).
fn another_node_may(body: &[u8]) -> bool {
    matches!(node_code(body).as_deref(), Some("not_owner" | "shutting_down"))
}

/// The node's error code: the `error.code` of its JSON error body, if it has one.
fn node_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["error"]["code"].as_str().map(str::to_owned)
}

/// The node's error message: the `error.message` of its JSON error body if it has one,
/// else the start of the body as text.
fn node_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: ErrorDetail,
    }
    #[derive(serde::Deserialize)]
    struct ErrorDetail {
        message: String,
    }
    let mut message = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.error.message,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(MAX_NODE_MESSAGE)]).into_owned(),
    };
    if message.len() > MAX_NODE_MESSAGE {
        let mut end = MAX_NODE_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_refused_at_start() {
        let config = EdgeConfig { node_url: "https://node:8090".into(), ..EdgeConfig::default() };
        assert!(matches!(NodeClient::new(&config), Err(ClientError::HttpsUnsupported(_))));
    }

    #[test]
    fn node_messages_are_extracted_and_bounded() {
        assert_eq!(node_message(br#"{"error":{"code":"x","message":"bad group"}}"#), "bad group");
        assert_eq!(node_message(b"plain text"), "plain text");
        assert_eq!(node_message(&[b'a'; 2000]).len(), MAX_NODE_MESSAGE);
        let long = format!(r#"{{"error":{{"code":"x","message":"{}"}}}}"#, "é".repeat(600));
        let message = node_message(long.as_bytes());
        assert!(message.len() <= MAX_NODE_MESSAGE && message.starts_with('é'));
    }
}
