//! Bearer-token checks shared by edge and node.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed `Authorization: Bearer <token>` header")]
    Missing,
    #[error("token is not accepted here")]
    Rejected,
}

/// Checks an `Authorization` header value against `accepted` tokens. With no accepted
/// tokens, auth is off and any header (even `Bearer None`) passes.
pub fn check_bearer<S: AsRef<str>>(header: Option<&[u8]>, accepted: &[S]) -> Result<(), AuthError> {
    if accepted.is_empty() {
        return Ok(());
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let token = header
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.split_at_checked(7))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer "))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    // Check every token without early exit so timing does not reveal which one matched.
    let matched = accepted.iter().fold(false, |m, t| constant_time_eq(t.as_ref(), token) | m);
    if matched { Ok(()) } else { Err(AuthError::Rejected) }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_checks() {
        let tokens = ["secret-token-0123456789".to_string()];
        assert_eq!(check_bearer(Some(b"Bearer secret-token-0123456789"), &tokens), Ok(()));
        assert_eq!(check_bearer(Some(b"bearer secret-token-0123456789"), &tokens), Ok(()));
        assert_eq!(check_bearer(Some(b"Bearer wrong"), &tokens), Err(AuthError::Rejected));
        assert_eq!(check_bearer(Some(b"Basic xyz"), &tokens), Err(AuthError::Missing));
        assert_eq!(check_bearer(None, &tokens), Err(AuthError::Missing));
        let none: [String; 0] = [];
        assert_eq!(check_bearer(Some(b"Bearer None"), &none), Ok(()));
    }
}
