//! The shapes every piece of background work in the node takes, so each is written once:
//!
//! - [`Backoff`]: exponential delays after consecutive failures, capped;
//! - [`BackgroundLoop`]: one loop shape (a period, cancellation, backoff after failures cut
//!   short by cancellation, a warning and a counter when an iteration overruns its period,
//!   failures logged with the loop's name) that the flusher, maintenance, table adoption and
//!   replay run on;
//! - [`Supervisor`]: the node's long-running services in one named set, where a service
//!   that ends before shutdown is fatal.

mod background;
mod backoff;
mod supervisor;

pub use background::{BackgroundLoop, Iteration, Wake, describe};
pub use backoff::Backoff;
pub use supervisor::{Exit, Supervisor};
