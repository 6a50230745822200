//! The HTTP client for the node's internal ingest endpoint.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use zombi_shared::config::EdgeConfig;
use zombi_shared::wire::{self, BatchResponse, INGEST_PATH, IngestBatch, MSGPACK_CONTENT_TYPE};

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
#[derive(Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl std::fmt::Debug for NodeClient {
    // The internal token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl NodeClient {
    pub fn new(config: &EdgeConfig) -> Result<Self, ClientError> {
        // reqwest is built without TLS; fail at start rather than on every write.
        if config.node_url.starts_with("https://") {
            return Err(ClientError::HttpsUnsupported(config.node_url.clone()));
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
        let url = format!("{}{INGEST_PATH}", config.node_url.trim_end_matches('/'));
        Ok(NodeClient { http, url, token: config.auth.internal_token.clone() })
    }

    /// Sends one batch and returns the node's per-group results. It takes the batch so that
    /// its events are freed once encoded: while the node works, the edge holds the encoded
    /// body only.
    pub async fn send(&self, batch: IngestBatch) -> Result<BatchResponse, ForwardError> {
        let body = wire::encode(&batch);
        drop(batch);
        let mut request = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, MSGPACK_CONTENT_TYPE)
            .header(ACCEPT, MSGPACK_CONTENT_TYPE)
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        // Connection refused, connect timeout, reset and request timeout all mean the
        // same to a producer: the node cannot take the write now.
        let response = request.send().await.map_err(|e| ForwardError::Unavailable(chain(&e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| ForwardError::Unavailable(chain(&e)))?;
        match status {
            StatusCode::OK => wire::decode::<BatchResponse>(&body)
                .map_err(|e| ForwardError::Protocol(format!("undecodable batch response: {e}"))),
            StatusCode::TOO_MANY_REQUESTS => Err(ForwardError::NodeOverloaded(node_message(&body))),
            StatusCode::SERVICE_UNAVAILABLE => Err(ForwardError::Unavailable(node_message(&body))),
            status => Err(ForwardError::Rejected {
                status: status.as_u16(),
                message: node_message(&body),
            }),
        }
    }
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

/// reqwest's top-level message hides the cause ("error sending request"); include it.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
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
