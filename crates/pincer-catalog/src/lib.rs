//! The model catalog: the built-in models.dev snapshot merged with the
//! user's `models.providers`, model refs, aliases, agents' model chains and
//! allowlists.
//!
//! Data flows one way: `pincer_config::Config` → [`Catalog`] → (router).

mod builtin;
mod catalog;
mod check;
pub mod discovery;
mod model_ref;
mod selection;

pub use catalog::{
    Catalog, Cost, DEFAULT_CONTEXT_WINDOW, DEFAULT_MAX_TOKENS, DEFAULT_MODEL, EMBEDDED_PROVIDER,
    ModelSpec, Origin, Origins, Provider, is_local_url,
};
pub use check::check;

/// Parse the built-in catalog without the process-wide cache (for benchmarks).
pub use builtin::parse_uncached as parse_builtin_catalog;
pub use model_ref::{ModelRef, RefError};
pub use selection::{
    AgentModels, Alias, Aliases, Allowlist, ChainError, DEFAULT_AGENT_ID, ResolveError, Resolved,
    agents, candidate_chain, configured_refs, resolve, roles, turn_candidates,
};
