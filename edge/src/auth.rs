//! Producer authentication: `Authorization: Bearer <token>` against the configured tokens.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

pub use zombi_shared::auth::AuthError;

#[derive(Clone, Default)]
pub struct ProducerAuth {
    tokens: Vec<String>,
}

impl std::fmt::Debug for ProducerAuth {
    // Tokens never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerAuth").field("tokens", &self.tokens.len()).finish()
    }
}

impl ProducerAuth {
    pub fn new(tokens: &[String]) -> Self {
        ProducerAuth { tokens: tokens.to_vec() }
    }

    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        zombi_shared::auth::check_bearer(
            headers.get(AUTHORIZATION).map(|v| v.as_bytes()),
            &self.tokens,
        )
    }
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
