//! Files being written whose commit is not settled yet. Writers (the flusher, for its data
//! files and for the manifests of a commit) register a token that appears in every such
//! file's name before they write the first one, and drop the guard once the files are
//! committed or abandoned. File cleanup never deletes a file whose name holds a registered
//! token, so it cannot race a commit in progress.
//!
//! Cleanup reads the tokens *before* it loads the table's current metadata: a token gone
//! from the registry means its files are committed (and so referenced) or garbage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct InFlight {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next: AtomicU64,
    tokens: Mutex<HashMap<String, HashMap<u64, String>>>,
}

/// Keeps a token registered until dropped.
pub struct InFlightGuard {
    inner: Arc<Inner>,
    table: String,
    id: u64,
}

impl InFlight {
    pub fn protect(&self, table: &str, token: String) -> InFlightGuard {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.tokens.lock().unwrap().entry(table.to_owned()).or_default().insert(id, token);
        InFlightGuard { inner: self.inner.clone(), table: table.to_owned(), id }
    }

    /// The tokens registered for `table` now.
    pub fn tokens(&self, table: &str) -> Vec<String> {
        let tokens = self.inner.tokens.lock().unwrap();
        tokens.get(table).map(|t| t.values().cloned().collect()).unwrap_or_default()
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut tokens = self.inner.tokens.lock().unwrap();
        if let Some(t) = tokens.get_mut(&self.table) {
            t.remove(&self.id);
            if t.is_empty() {
                tokens.remove(&self.table);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_registered_while_its_guard_lives() {
        let f = InFlight::default();
        let a = f.protect("t", "flush-a".into());
        let b = f.protect("t", "flush-b".into());
        let mut tokens = f.tokens("t");
        tokens.sort();
        assert_eq!(tokens, vec!["flush-a", "flush-b"]);
        assert!(f.tokens("other").is_empty());
        drop(a);
        assert_eq!(f.tokens("t"), vec!["flush-b"]);
        drop(b);
        assert!(f.tokens("t").is_empty());
    }
}
