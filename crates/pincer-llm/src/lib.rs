//! Talking to model servers. So far: the typed error every upstream failure
//! becomes (so the router can decide on its kind alone), and usage → cost.
//! The three API dialects build on these.

mod error;
mod usage;

pub use error::{ErrorKind, ProviderError, classify_http, scrub};
pub use usage::{Usage, cost};
