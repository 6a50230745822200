//! An error with its causes on one line, for messages people read: HTTP clients hide the
//! cause behind "error sending request".

/// `error: cause: cause of the cause…`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
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
    /// An error with a message and an optional cause.
    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn causes_follow_the_error() {
        let e = E(
            "error sending request",
            Some(Box::new(E("tcp connect", Some(Box::new(E("refused", None)))))),
        );
        assert_eq!(super::error_chain(&e), "error sending request: tcp connect: refused");
        assert_eq!(super::error_chain(&E("alone", None)), "alone");
    }
}
