//! Producer authentication: `Authorization: Bearer <token>` against the configured tokens.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed `Authorization: Bearer <token>` header")]
    Missing,
    #[error("the bearer token is not accepted")]
    Rejected,
}

/// The accepted producer tokens; empty means auth is off.
#[derive(Clone, Default)]
pub struct ProducerAuth {
    tokens: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ProducerAuth {
    // Tokens never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerAuth").field("tokens", &self.tokens.len()).finish()
    }
}

impl ProducerAuth {
    pub fn new(tokens: &[String]) -> Self {
        ProducerAuth { tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect() }
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        if !self.is_enabled() {
            return Ok(());
        }
        let given = bearer_token(headers).ok_or(AuthError::Missing)?;
        // Every token is compared, in constant time, so timing reveals neither which token
        // matched nor how much of one did.
        let accepted = self.tokens.iter().fold(false, |found, token| found | ct_eq(token, given));
        if accepted { Ok(()) } else { Err(AuthError::Rejected) }
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Compares without an early exit on the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn off_without_tokens() {
        assert_eq!(ProducerAuth::new(&[]).check(&headers(None)), Ok(()));
    }

    #[test]
    fn checks_bearer_tokens() {
        let auth =
            ProducerAuth::new(&["token-aaaaaaaaaaaaaaaa".into(), "token-bbbbbbbbbbbbbbbb".into()]);
        assert_eq!(auth.check(&headers(Some("Bearer token-bbbbbbbbbbbbbbbb"))), Ok(()));
        assert_eq!(auth.check(&headers(Some("bearer token-aaaaaaaaaaaaaaaa"))), Ok(()));
        assert_eq!(auth.check(&headers(None)), Err(AuthError::Missing));
        assert_eq!(auth.check(&headers(Some("Basic dXNlcjpwdw=="))), Err(AuthError::Missing));
        assert_eq!(auth.check(&headers(Some("Bearer "))), Err(AuthError::Missing));
        assert_eq!(
            auth.check(&headers(Some("Bearer token-cccccccccccccccc"))),
            Err(AuthError::Rejected)
        );
        assert_eq!(auth.check(&headers(Some("Bearer token-aaaa"))), Err(AuthError::Rejected));
    }
}
