//! `[auth]`: the node's tokens.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, check_token, check_tokens};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeAuth {
    /// Tokens edges must present on `/internal/…`. Empty: no internal auth.
    pub internal_tokens: Vec<String>,
    /// Token for admin endpoints (`/tables/{t}/flush`, `/stats`, …). None: no admin auth.
    pub admin_token: Option<String>,
    /// Token engines present to the Iceberg REST catalog and read APIs. None: no auth.
    pub catalog_token: Option<String>,
    /// Token the real-time readers present for hot segments only (listing and reads), so
    /// the token shipped to query executors opens nothing else. The catalog token is
    /// accepted there too. None: only the catalog token.
    pub hot_token: Option<String>,
}

impl NodeAuth {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_tokens("auth.internal_tokens", &self.internal_tokens)?;
        if let Some(t) = &self.admin_token {
            check_token("auth.admin_token", t)?;
        }
        if let Some(t) = &self.catalog_token {
            check_token("auth.catalog_token", t)?;
        }
        if let Some(t) = &self.hot_token {
            check_token("auth.hot_token", t)?;
        }
        Ok(())
    }
}
